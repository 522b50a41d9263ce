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
CURL = ["exec", "-n", "shop", "web", "--", "curl", "-sS", "-m", "2", "https://api.example.test/health"]


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


CANARY_DENY = """apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: deny-canary-egress, namespace: shop}
spec:
  podSelector: {matchLabels: {role: canary}}
  policyTypes: [Egress]
"""
WGET_WHOAMI = ["--", "timeout", "3", "wget", "-qO-", "http://198.51.100.15"]   # whoami by address: an earlier test broke DNS


def test_pods_created_through_the_api_get_their_own_network_namespace(kubectl_lab, lab):
    from kdlab import Lab, system

    for name, image in (("canary", "busybox:1.36"), ("probe", "nicolaka/netshoot:v0.13"), ("bare", "gcr.io/distroless/static-debian12")):
        created = kubectl_lab("run", name, "-n", "shop", f"--image={image}", "--labels=role=" + name, "--", "sleep", "infinity")
        assert created.returncode == 0, created.stderr
    canary_ip = kubectl_lab("get", "pod", "-n", "shop", "canary", "-o", "jsonpath={.status.podIP}").stdout
    assert canary_ip.startswith("10.244.0.") and canary_ip not in {p.ip for p in lab.pods}
    assert kubectl_lab("exec", "-n", "shop", "canary", "--", "cat", "/etc/resolv.conf").stdout.startswith(
        "search shop.svc.cluster.local svc.cluster.local cluster.local\nnameserver 10.96.0.10\n")
    assert kubectl_lab("exec", "-n", "shop", "canary", *WGET_WHOAMI).stdout == "203.0.113.10"   # its own address, SNATed by the node
    missing = kubectl_lab("exec", "-n", "shop", "canary", "--", "curl", "-V")     # the busybox image has no curl
    assert missing.returncode != 0 and 'exec: "curl": executable file not found in $PATH' in missing.stderr
    probe = kubectl_lab("exec", "-n", "shop", "probe", "--", "ip", "-4", "-o", "addr", "show", "eth0")
    assert probe.returncode == 0 and f"{canary_ip}/24" not in probe.stdout and "10.244.0." in probe.stdout
    assert "executable file not found" in kubectl_lab("exec", "-n", "shop", "bare", "--", "sh", "-c", "true").stderr

    # NetworkPolicies select them by their labels, like any pod.
    assert kubectl_lab("apply", "-f", "-", stdin=CANARY_DENY).returncode == 0
    assert eventually(lambda: kubectl_lab("exec", "-n", "shop", "canary", *WGET_WHOAMI).returncode != 0)
    assert kubectl_lab("exec", "-n", "shop", "probe", "--", "curl", "-sS", "-m", "3", "http://198.51.100.15").stdout == "203.0.113.10"
    assert kubectl_lab("delete", "netpol", "-n", "shop", "deny-canary-egress").returncode == 0

    netns = Lab.load(lab.dir).pod("shop/canary").netns     # other processes (the CLI, tests) see the added pods too
    assert system.netns_inode(netns) is not None
    for name in ("canary", "probe", "bare"):
        assert kubectl_lab("delete", "pod", "-n", "shop", name, "--wait=false").returncode == 0
    assert system.netns_inode(netns) is None
    assert {p.ref for p in Lab.load(lab.dir).pods} == {p.ref for p in lab.pods}
    assert not os.path.exists(os.path.join("/etc/netns", netns))


def test_an_ephemeral_container_joins_the_pod_with_the_netshoot_tools(kubectl_lab):
    created = kubectl_lab("run", "plain", "-n", "shop", "--image=busybox:1.36", "--env=APP_ONLY=1", "--", "sleep", "infinity")
    assert created.returncode == 0, created.stderr
    pod_ip = kubectl_lab("get", "pod", "-n", "shop", "plain", "-o", "jsonpath={.status.podIP}").stdout
    assert "executable file not found" in kubectl_lab("exec", "-n", "shop", "plain", "--", "dig", "-v").stderr
    added = kubectl_lab("debug", "-n", "shop", "plain", "--image=nicolaka/netshoot", "--target=plain", "--container=dbg", "--", "sleep", "infinity")
    assert added.returncode == 0, added.stderr
    inside = kubectl_lab("exec", "-n", "shop", "plain", "-c", "dbg", "--", "sh", "-c",
                         "ip -4 -o addr show eth0; for t in dig curl openssl; do command -v $t; done; grep nameserver /etc/resolv.conf; env; pwd")
    assert inside.returncode == 0, inside.stderr
    print(inside.stdout)
    assert f" {pod_ip}/24 " in inside.stdout                                # the pod's network namespace
    assert inside.stdout.count("/bin/") >= 3 and "nameserver 10.96.0.10" in inside.stdout   # netshoot's tools, the pod's resolv.conf
    assert "APP_ONLY" not in inside.stdout and "HOSTNAME=plain" in inside.stdout            # its own env, the pod's hostname
    assert inside.stdout.endswith("\n/\n")                                                  # a container starts in /
    assert kubectl_lab("delete", "pod", "-n", "shop", "plain", "--wait=false").returncode == 0
