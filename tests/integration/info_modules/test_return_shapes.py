"""What the fact modules return in the lab, run through Ansible, matches their RETURN documentation (tests/return_shapes.py):
one lab API server, each module on the cluster built to show its richest answer (policies that block, a dead CoreDNS
upstream with logged timeouts, SNAT turned off, a meshed pod under REGISTRY_ONLY), pod_probe on two pods with their node."""

import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
import return_shapes  # tests/return_shapes.py

RUNS = {
    "egress_pods_info": ("netpol", {"pod": "shop/app=web"}),
    "netpol_egress_info": ("netpol", {"namespace": "shop", "pod": "web", "port": 443,
                                      "destinations": ["203.0.113.10", {"to": "10.244.0.2", "port": 53, "protocol": "UDP"}]}),
    "coredns_info": ("dns", {"probe_upstream": True, "probe_pod": "shop/web", "tail_lines": 50}),
    "cluster_network_info": ("snat", {"destination": "203.0.113.10", "vpc_cidrs": ["172.20.0.0/16"]}),
    "mesh_egress_info": ("mesh", {"namespace": "shop", "pod": "meshed", "destination": "api.example.test", "port": 80}),
}


@pytest.mark.parametrize("module", sorted(RUNS))
def test_an_info_module_returns_its_documented_shape(run, module):
    context, args = RUNS[module]
    result = run(module, context, **args)
    assert not result.get("failed"), result.get("msg")
    assert return_shapes.shape_problems(module, result) == []


def test_pod_probe_returns_its_documented_shape(run):
    """Two pods and their node, as the diagnose role probes: the per-pod results, the node part, a pod that is missing."""
    result = run("pod_probe", "netpol", pods=[{"namespace": "shop", "name": "web"}, {"namespace": "shop", "name": "client"},
                                              {"namespace": "shop", "name": "gone"}],
                 targets=["https://api.example.test/health", "udp://127.0.0.1:9", "tcp://127.0.0.1:9"], timeout=2,
                 external_resolver="127.0.0.1", node_probe=True)
    assert not result.get("failed"), result.get("msg")
    web, client, gone = result["results"]
    assert web["probed"] and web["checks"] and web["node"]["probed"] and web["node"]["checks"], web.get("notes")
    assert client["probed"] and gone["failed"]
    assert return_shapes.shape_problems("pod_probe", result) == []
