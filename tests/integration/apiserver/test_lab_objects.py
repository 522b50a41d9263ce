"""Bundled scenarios express their faults as cluster objects, and the lab's packets follow those objects: what a diagnosis
reads through the API is what the network does, and fixing the object fixes the network (as a remediation would)."""

import os
import subprocess
import time

import pytest

pytestmark = pytest.mark.lab
WHOAMI = ["curl", "-sS", "--max-time", "2", "http://whoami.example.test"]


@pytest.fixture
def scenario(tmp_path):
    """scenario(name) -> (Lab, CoreV1Api, AppsV1Api) for a lab brought up with its API server; always taken down."""
    from kdlab import Lab, LabError, build
    from kubernetes import client, config

    if os.geteuid() != 0:
        pytest.fail("the lab needs root (it creates network namespaces); run as root")
    directories = []

    def up(name: str):
        directory = str(tmp_path / name)
        directories.append(directory)
        try:
            lab = build.up(name, directory)
        except LabError as error:
            pytest.fail(str(error))
        configuration = client.Configuration()
        config.load_kube_config(config_file=Lab.load(directory).info["kubeconfig"], context="lab", client_configuration=configuration)
        api = client.ApiClient(configuration)
        return lab, client.CoreV1Api(api), client.AppsV1Api(api)

    yield up
    for directory in directories:
        build.down(directory)


def run_in_pod(lab, argv: list[str]) -> subprocess.CompletedProcess:
    from kdlab.testing import run_in

    return run_in(lab, argv, pod="shop/web")


def eventually(check, seconds: float = 5.0):
    deadline = time.monotonic() + seconds
    while not (result := check()) and time.monotonic() < deadline:
        time.sleep(0.2)
    return result


def test_missing_snat_is_the_ip_masq_agent_configmap_and_fixing_it_restores_egress(scenario):
    lab, core, apps = scenario("nat.missing_snat")
    agent = core.read_namespaced_config_map("ip-masq-agent", "kube-system")
    assert "- 0.0.0.0/0" in agent.data["config"]
    assert "anetd" in {d.metadata.name for d in apps.list_namespaced_daemon_set("kube-system").items}
    assert run_in_pod(lab, WHOAMI).returncode == 28
    core.patch_namespaced_config_map("ip-masq-agent", "kube-system", {"data": {"config": "nonMasqueradeCIDRs:\n  - 10.0.0.0/8\n"}})
    assert eventually(lambda: run_in_pod(lab, WHOAMI).stdout == "203.0.113.10")


def test_dns_scaled_to_zero_shows_in_the_api(scenario):
    lab, core, apps = scenario("dns.cluster_dns_unreachable")
    assert apps.read_namespaced_deployment("coredns", "kube-system").spec.replicas == 0
    assert core.list_namespaced_pod("kube-system", label_selector="k8s-app=kube-dns").items == []
    assert run_in_pod(lab, ["nslookup", "-timeout=1", "-retry=0", "kubernetes.default.svc.cluster.local"]).returncode != 0


def test_the_forwarding_fault_is_the_corefile(scenario):
    lab, core, _apps = scenario("dns.upstream_forwarding")
    corefile = core.read_namespaced_config_map("coredns", "kube-system").data["Corefile"]
    assert "forward . 192.0.2.99" in corefile and corefile == lab.corefile("lab")
