"""Table-driven tests of CNI / kube-proxy / ip-masq-agent / node identity reading and the SNAT conclusion."""

import importlib.util
from pathlib import Path

import pytest
import yaml

from ansible_collections.kubediag.egress.plugins.module_utils.cluster import network as cluster_network
from ansible_collections.kubediag.egress.plugins.module_utils.cluster.network import (
    ClusterNetworkError,
    cluster_network_facts,
    container_flags,
    ip_masq_agent,
    kube_proxy_config,
    node_identity,
    parse_minimal_yaml,
    snat_for,
)

CASES = Path(__file__).parent / "cluster_network_cases"
_SUBSET_SPEC = importlib.util.spec_from_file_location("kubediag_subset", Path(__file__).with_name("_subset.py"))
_SUBSET = importlib.util.module_from_spec(_SUBSET_SPEC)
_SUBSET_SPEC.loader.exec_module(_SUBSET)
assert_subset = _SUBSET.assert_subset

SCENARIOS = yaml.safe_load((CASES / "scenarios.yaml").read_text())


def facts_of(objects):
    return cluster_network_facts(**objects)


@pytest.mark.parametrize("scenario", [scenario for scenario in SCENARIOS if "expect" in scenario], ids=lambda scenario: scenario["id"])
def test_facts(scenario):
    assert_subset(scenario["expect"], facts_of(scenario["objects"]))


@pytest.mark.parametrize(("scenario", "check"), [(scenario, check) for scenario in SCENARIOS for check in scenario["snat"]],
                         ids=lambda value: value["id"] if "id" in value else value["dest"])
def test_snat_for(scenario, check):
    result = snat_for(check["dest"], facts_of(scenario["objects"]))
    assert result["snat"] is check["snat"], result["reasons"]
    if "by" in check:
        assert result["by"] == check["by"], result["reasons"]
    if "reason" in check:
        assert any(check["reason"] in reason for reason in result["reasons"]), result["reasons"]


@pytest.mark.parametrize("case", yaml.safe_load((CASES / "node_identities.yaml").read_text()), ids=lambda case: case["id"])
def test_node_identity(case):
    assert_subset(case["expect"], node_identity(case["node"]))


@pytest.mark.parametrize("case", yaml.safe_load((CASES / "yaml_documents.yaml").read_text()), ids=lambda case: case["id"])
def test_minimal_yaml_reads_what_pyyaml_reads(case):
    assert parse_minimal_yaml(case["text"], "test document") == yaml.safe_load(case["text"])


@pytest.mark.parametrize(("text", "message"), [
    ("a: &anchor 1\nb: *anchor\n", "needs a full YAML parser; install PyYAML"),
    ("a: {b: 1}\n", "needs a full YAML parser"),
    ("a: 1\n\tb: 2\n", "a tab in the indentation"),
    ("just a sentence\n", "expected 'key: value'"),
    ("a:\n    b: 1\n  c: 2\n", "unexpected indentation"),
])
def test_minimal_yaml_refuses_what_it_cannot_read(text, message):
    with pytest.raises(ClusterNetworkError, match=message):
        parse_minimal_yaml(text, "doc")


def test_without_pyyaml_the_minimal_parser_is_used_and_named(monkeypatch):
    monkeypatch.setattr(cluster_network, "yaml", None)
    configmap = {"metadata": {"name": "ip-masq-agent", "namespace": "kube-system"}, "data": {"config": "nonMasqueradeCIDRs:\n  - 0.0.0.0/0\n"}}
    result = ip_masq_agent(configmap)
    assert result["parser"] == "minimal"
    assert result["non_masquerade_cidrs"] == ["0.0.0.0/0"]


def test_with_pyyaml_the_parser_is_named():
    configmap = {"metadata": {"name": "kube-proxy", "namespace": "kube-system"},
                 "data": {"config.conf": "kind: KubeProxyConfiguration\nmode: ipvs\n"}}
    assert kube_proxy_config(configmap)["parser"] == "yaml"


@pytest.mark.parametrize(("argv", "expected"), [
    ({"command": ["kube-proxy", "--masquerade-all"]}, {"masquerade-all": True}),
    ({"args": ["--cluster-cidr", "10.0.0.0/8", "--v=2"]}, {"cluster-cidr": "10.0.0.0/8", "v": "2"}),
    ({"args": ["-localip", "169.254.20.10", "-conf", "/etc/Corefile"]}, {"localip": "169.254.20.10", "conf": "/etc/Corefile"}),
])
def test_container_flags(argv, expected):
    assert container_flags(argv) == expected


@pytest.mark.parametrize(("call", "message"), [
    (lambda: snat_for("api.example.com", facts_of({})), "not an IP address; resolve the host name first"),
    (lambda: snat_for("8.8.8.8", {}), "facts must be the dict cluster_network_facts"),
    (lambda: cluster_network_facts(daemonsets="aws-node"), "daemonsets: expected a list of Kubernetes objects"),
    (lambda: node_identity("node-1"), "expected a Node object"),
    (lambda: node_identity({"metadata": {"name": "n"}, "spec": {"providerID": "gce://only-project"}}), "is not gce://PROJECT/ZONE/INSTANCE"),
    (lambda: node_identity({"metadata": {"name": "n"}, "spec": {"providerID": "azure:///subscriptions/x"}}), "not an Azure VM"),
    (lambda: kube_proxy_config({"metadata": {"name": "kube-proxy", "namespace": "kube-system"}, "data": {"kubeconfig.conf": "kind: Config"}}),
     "no key holds a KubeProxyConfiguration"),
    (lambda: kube_proxy_config({"metadata": {"name": "kube-proxy"}, "data": {"config.conf": "kind: KubeProxyConfiguration\nmode: [\n"}}),
     "not valid YAML"),
    (lambda: ip_masq_agent({"metadata": {"name": "ip-masq-agent"}, "data": {"other": "x"}}), "reads its config from the 'config' key"),
    (lambda: ip_masq_agent({"metadata": {"name": "ip-masq-agent"}, "data": {"config": "nonMasqueradeCIDRs: [10.0.0.0/33]"}}),
     "'10.0.0.0/33' is not a CIDR"),
])
def test_bad_input_gets_clear_errors(call, message):
    with pytest.raises(ClusterNetworkError, match=message):
        call()


def test_list_objects_are_accepted():
    daemonset_list = {"kind": "DaemonSetList", "items": [{"metadata": {"name": "weave-net", "namespace": "kube-system"}, "spec": {}}]}
    assert cluster_network_facts(daemonsets=daemonset_list)["cni"]["primary"] == "weave"
