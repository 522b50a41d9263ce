"""Table-driven tests of the Istio egress analysis: injection, mesh config, Sidecar scoping, ServiceEntry matching."""

import importlib.util
from pathlib import Path

import pytest
import yaml

from ansible_collections.kubediag.egress.plugins.module_utils.cluster.mesh import (
    MeshError,
    egress_gateways,
    mesh_config,
    mesh_egress,
    pod_injected,
    service_entries_for,
)

CASES = Path(__file__).parent / "mesh_cases"
_SUBSET_SPEC = importlib.util.spec_from_file_location("kubediag_subset", Path(__file__).with_name("_subset.py"))
_SUBSET = importlib.util.module_from_spec(_SUBSET_SPEC)
_SUBSET_SPEC.loader.exec_module(_SUBSET)
assert_subset = _SUBSET.assert_subset

SCENARIOS = yaml.safe_load((CASES / "egress.yaml").read_text())
CHECKS = [(scenario, check) for scenario in SCENARIOS for check in scenario["checks"]]


@pytest.mark.parametrize(("scenario", "check"), CHECKS,
                         ids=[f"{scenario['id']}-{check['pod']}-{check['host']}:{check['port']}" for scenario, check in CHECKS])
def test_mesh_egress(scenario, check):
    result = mesh_egress(scenario["pods"][check["pod"]], check["host"], check["port"], scenario["objects"], check.get("dest_ips"))
    assert_subset(check["expect"], result)
    for wanted in check.get("reasons", []):
        assert any(wanted in reason for reason in result["reasons"]), result["reasons"]


def test_service_entries_for_filters_by_namespace():
    entries = SCENARIOS[0]["objects"]["service_entries"]
    assert [entry["name"] for entry in service_entries_for("db.partner.example", 5432, "billing", entries)] == ["private-db"]
    assert service_entries_for("db.partner.example", 5432, "shop", entries) == []
    assert [entry["name"] for entry in service_entries_for("db.partner.example", 5432, "shop", [
        {**entries[2], "spec": {**entries[2]["spec"], "exportTo": ["shop"]}}])] == ["private-db"]


def test_default_service_export_to_from_mesh_config():
    entry = {"metadata": {"name": "e", "namespace": "ops"}, "spec": {"hosts": ["x.example"], "ports": [{"number": 443, "protocol": "TLS"}]}}
    assert service_entries_for("x.example", 443, "shop", [entry], default_export_to=["."]) == []
    assert len(service_entries_for("x.example", 443, "ops", [entry], default_export_to=["."])) == 1


@pytest.mark.parametrize(("mesh", "expected"), [
    (None, {"outbound_traffic_policy": "ALLOW_ANY", "explicit": False, "parser": None}),
    ("outboundTrafficPolicy:\n  mode: REGISTRY_ONLY\n", {"outbound_traffic_policy": "REGISTRY_ONLY", "explicit": True, "parser": "yaml"}),
    ("rootNamespace: mesh-root\ndefaultServiceExportTo: ['.']\n", {"outbound_traffic_policy": "ALLOW_ANY", "root_namespace": "mesh-root",
                                                                   "default_service_export_to": ["."]}),
    ("", {"outbound_traffic_policy": "ALLOW_ANY", "explicit": False}),
])
def test_mesh_config(mesh, expected):
    configmap = None if mesh is None else {"metadata": {"name": "istio", "namespace": "istio-system"}, "data": {"mesh": mesh}}
    assert_subset(expected, mesh_config(configmap))


def test_pod_with_injection_marks_but_no_proxy():
    pod = {"metadata": {"name": "p", "namespace": "n", "annotations": {"sidecar.istio.io/status": "{}"}}, "spec": {"containers": [{"name": "app"}]}}
    result = pod_injected(pod)
    assert result["injected"] is False
    assert "carries injection marks (sidecar.istio.io/status annotation) but no istio-proxy container" in result["reasons"][0]


def test_egress_gateways_ignores_other_workloads():
    ingress_gateway = {"kind": "Service", "metadata": {"name": "istio-ingressgateway", "namespace": "istio-system",
                                                       "labels": {"istio": "ingressgateway"}}}
    assert egress_gateways([ingress_gateway]) == []


POD = {"metadata": {"name": "p", "namespace": "n"}, "spec": {"containers": [{"name": "istio-proxy"}]}}


@pytest.mark.parametrize(("call", "message"), [
    (lambda: mesh_egress(POD, "x; touch pwned", 443), "expected a host name or IP"),
    (lambda: mesh_egress(POD, "example.com", "443"), "expected a whole number from 1 to 65535"),
    (lambda: mesh_egress(POD, "example.com", 0), "expected a whole number"),
    (lambda: mesh_egress(POD, "example.com", 443, objects=[]), "expected a dict of mesh objects"),
    (lambda: mesh_egress(POD, "example.com", 443, dest_ips=["not-an-ip"]), "dest_ips"),
    (lambda: mesh_egress("pod", "example.com", 443), "expected a Pod object"),
    (lambda: mesh_egress(POD, "example.com", 443, {"service_entries": "se"}), "service_entries: expected a list"),
    (lambda: mesh_config({"metadata": {"name": "istio", "namespace": "istio-system"}, "data": {}}), "no 'mesh' key"),
    (lambda: mesh_config({"metadata": {"name": "istio"}, "data": {"mesh": "outboundTrafficPolicy:\n  mode: DENY\n"}}), "neither ALLOW_ANY nor REGISTRY_ONLY"),
    (lambda: mesh_config({"metadata": {"name": "istio"}, "data": {"mesh": "a: [\n"}}), "not valid YAML"),
])
def test_bad_input_gets_clear_errors(call, message):
    with pytest.raises(MeshError, match=message):
        call()
