"""The info modules on the bundled lab scenarios (`python -m kdlab up`, real network namespaces, the lab's API server):
each names what its scenario breaks. Needs root."""

import json
import os
import subprocess
import sys

import pytest
from ansible_module import run_module
from infolab import LAB_ROOT

pytestmark = pytest.mark.lab


@pytest.fixture
def scenario(tmp_path):
    """scenario(name): bring the scenario up in a private directory (always taken down), return its lab.json."""
    directories = []

    def up(name):
        directory = str(tmp_path / name)
        directories.append(directory)
        subprocess.run([sys.executable, "-m", "kdlab", "up", "--scenario", name, "--lab", directory], cwd=LAB_ROOT, check=True,
                       capture_output=True, timeout=120)
        with open(os.path.join(directory, "lab.json"), encoding="utf-8") as handle:
            info = json.load(handle)
        assert info["kubeconfig"], f"kdlab up did not start the lab API server for {name} (lab.json kubeconfig is null)"
        info["dir"] = directory
        return info

    yield up
    for directory in directories:
        subprocess.run([sys.executable, "-m", "kdlab", "down", "--lab", directory], cwd=LAB_ROOT, check=False, capture_output=True, timeout=60)


def endpoint_ip(info, host):
    return next(endpoint["ip"] for endpoint in info["endpoints"] if endpoint["host"] == host)


def lab_exec(info, pod, argv):
    return subprocess.run([sys.executable, "-m", "kdlab", "exec", "--lab", info["dir"], "--pod", pod, "--", *argv], cwd=LAB_ROOT,
                          capture_output=True, text=True, timeout=60, check=False)


def test_netpol_scenario_names_the_policy(scenario, tmp_path):
    info = scenario("netpol.egress_blocked")
    api = endpoint_ip(info, "api.example.test")
    result = run_module("netpol_egress_info", {"kubeconfig": info["kubeconfig"], "namespace": "shop", "pod": "web", "port": 443,
                                               "destinations": [{"to": "api.example.test", "ips": [api]}]}, str(tmp_path))
    [answer] = result["destinations"]
    assert (answer["allowed"], answer["selected_by"]) == (False, ["shop/deny-external"])
    assert answer["reasons"][-1] == f"no egress rule of shop/deny-external allows TCP {api}:443"
    assert result["dns"]["allowed"] is True  # the scenario's policy lets DNS through: only the outside is cut


def test_dns_forwarding_scenario_names_the_dead_upstream_and_the_log_errors(scenario, tmp_path):
    info = scenario("dns.upstream_forwarding")
    lookup = lab_exec(info, "shop/web", ["dig", "+time=3", "+tries=1", "api.example.test"])
    assert "SERVFAIL" in lookup.stdout  # CoreDNS tried the dead upstream, which is what it logs
    result = run_module("coredns_info", {"kubeconfig": info["kubeconfig"], "probe_upstream": True, "probe_pod": "shop/web", "tail_lines": 100},
                        str(tmp_path))
    assert [upstream["raw"] for upstream in result["upstreams"]] == ["192.0.2.99"]
    [probe] = result["upstream_probes"]
    assert (probe["upstream"], probe["answered"], probe["status"]) == ("192.0.2.99", False, "timeout")
    assert result["logs"]["dominant_error"] == "upstream_timeout"
    assert [entry["address"] for entry in result["logs"]["upstreams_in_errors"]] == ["192.0.2.99:53"]
    assert result["pods_ready"] is True


def test_no_snat_scenario_names_the_setting(scenario, tmp_path):
    info = scenario("nat.missing_snat")
    result = run_module("cluster_network_info", {"kubeconfig": info["kubeconfig"], "destination": endpoint_ip(info, "api.example.test")},
                        str(tmp_path))
    assert result["snat"]["snat"] is False
    assert result["snat"]["by"] == "GKE Dataplane V2"
    assert "nonMasqueradeCIDRs 0.0.0.0/0 (ConfigMap kube-system/ip-masq-agent" in result["snat"]["mechanisms"][0]["reason"]
