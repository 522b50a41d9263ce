"""The API server inside a real lab: `kdlab up` starts it, exec runs in the pod's network namespace, and the data plane
follows the objects (NetworkPolicy -> the pod's egress chain, the coredns ConfigMap -> the lab's CoreDNS)."""

import os
import time

import pytest
from apiserver_testlib import KUBECTL

pytestmark = pytest.mark.lab

NETPOL_DENY = """apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: deny-all-egress, namespace: shop}
spec:
  podSelector: {matchLabels: {app: web}}
  policyTypes: [Egress]
"""
CURL = ["exec", "-n", "shop", "web", "--", "curl", "-sS", "-m", "3", "https://api.example.test/health"]


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    from kdlab import Lab, LabError, build

    if os.geteuid() != 0:
        pytest.fail("the lab needs root (it creates network namespaces); run as root")
    path = str(tmp_path_factory.mktemp("lab") / "lab")
    try:
        build.up("netpol.egress_blocked", path)
        yield Lab.load(path)
    except LabError as error:
        pytest.fail(str(error))
    finally:
        build.down(path)


@pytest.fixture
def kubectl_lab(lab, tmp_path):
    import subprocess

    def run(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(tmp_path), "KUBECONFIG": lab.info["kubeconfig"]}
        return subprocess.run([KUBECTL.format(minor=31), "--context", "lab", *args], input=stdin, capture_output=True, text=True, env=env,
                              timeout=60, check=False)
    return run


def eventually(check, seconds: float = 10.0):
    deadline = time.monotonic() + seconds
    while not (result := check()) and time.monotonic() < deadline:
        time.sleep(0.2)
    return result


def test_networkpolicy_objects_drive_the_pod_egress(kubectl_lab):
    blocked = kubectl_lab(*CURL)
    assert blocked.returncode == 28, blocked.stderr  # the scenario's deny-external policy: curl times out
    assert kubectl_lab("delete", "netpol", "-n", "shop", "deny-external").returncode == 0
    assert eventually(lambda: kubectl_lab(*CURL).returncode == 0)
    assert kubectl_lab("apply", "-f", "-", stdin=NETPOL_DENY).returncode == 0
    assert eventually(lambda: kubectl_lab(*CURL).returncode == 28)
    assert kubectl_lab("delete", "netpol", "-n", "shop", "deny-all-egress").returncode == 0
    assert eventually(lambda: kubectl_lab(*CURL).returncode == 0)


def test_corefile_edits_drive_cluster_dns(kubectl_lab, lab):
    dig = ["exec", "-n", "shop", "web", "--", "dig", "+time=1", "+tries=1", "+short", "api.example.test"]
    assert eventually(lambda: kubectl_lab(*dig).stdout.strip() == "198.51.100.10")
    patch = '{"data":{"Corefile":"' + lab.corefile("lab").replace("\n", "\\n").replace("/etc/resolv.conf", "192.0.2.99") + '"}}'
    assert kubectl_lab("patch", "cm", "-n", "kube-system", "coredns", "--type=merge", "-p", patch).returncode == 0
    assert eventually(lambda: "192.0.2.99" in lab.corefile("lab"))
    assert eventually(lambda: kubectl_lab(*dig).returncode == 9)  # dig: no servers could be reached (the forward times out)


def test_exec_runs_in_the_pod_namespace_and_debug_pods_on_the_node(kubectl_lab):
    address = kubectl_lab("exec", "-n", "shop", "web", "--", "ip", "-4", "-o", "addr", "show", "eth0")
    assert "10.244.0.3/24" in address.stdout
    created = kubectl_lab("run", "node-debug", "-n", "default", "--image=nicolaka/netshoot", "--overrides",
                          '{"spec":{"hostNetwork":true,"nodeName":"node-1"}}', "--", "sleep", "infinity")
    assert created.returncode == 0, created.stderr
    on_node = kubectl_lab("exec", "-n", "default", "node-debug", "--", "ip", "-4", "-o", "addr")
    assert "172.20.0.10/" in on_node.stdout
