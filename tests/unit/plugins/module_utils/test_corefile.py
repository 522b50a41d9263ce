"""Table-driven tests of the Corefile / kube-dns / NodeLocal DNS readers and the CoreDNS log classifier."""

import importlib.util
from pathlib import Path

import pytest
import yaml

from ansible_collections.kubediag.egress.plugins.module_utils.cluster.coredns import (
    CorefileError,
    DnsConfigError,
    aks_corefile,
    classify_coredns_logs,
    corefile_summary,
    forward_of,
    kube_dns_config,
    nodelocal_dns,
    parse_corefile,
    parse_upstream,
    read_corefile,
    server_block_for,
)

CASES = Path(__file__).parent / "corefile_cases"
_SUBSET_SPEC = importlib.util.spec_from_file_location("kubediag_subset", Path(__file__).with_name("_subset.py"))
_SUBSET = importlib.util.module_from_spec(_SUBSET_SPEC)
_SUBSET_SPEC.loader.exec_module(_SUBSET)
assert_subset = _SUBSET.assert_subset


def load_cases(name):
    return yaml.safe_load((CASES / name).read_text())


def summary_with_warning_ids(case_input):
    summary = corefile_summary(case_input["corefile"], case_input.get("imports"), case_input.get("cluster_dns_ip"))
    summary["warning_ids"] = [warning["id"] for warning in summary["warnings"]]
    return summary


def aks_with_warning_ids(case_input):
    summary = aks_corefile(case_input["coredns"], case_input.get("coredns_custom"))
    summary["warning_ids"] = [warning["id"] for warning in summary["warnings"]]
    return summary


ANALYSERS = {
    "corefile": summary_with_warning_ids,
    "aks": aks_with_warning_ids,
    "kube_dns": lambda case_input: kube_dns_config(case_input["configmap"]),
    "nodelocal": lambda case_input: nodelocal_dns(case_input["configmap"], case_input.get("daemonset")),
}


@pytest.mark.parametrize("case_path", sorted((CASES / "real_world").glob("*.yaml")), ids=lambda path: path.stem)
def test_real_world_configurations(case_path):
    case = yaml.safe_load(case_path.read_text())
    assert_subset(case["expect"], ANALYSERS[case["analyser"]](case["input"]))


@pytest.mark.parametrize("case", load_cases("grammar.yaml"), ids=lambda case: case["id"])
def test_grammar(case):
    assert_subset(case["expect"], read_corefile(case["corefile"], case.get("imports")))


@pytest.mark.parametrize("case", load_cases("errors.yaml"), ids=lambda case: case["id"])
def test_refused_corefiles_name_the_line(case):
    with pytest.raises(CorefileError) as raised:
        corefile_summary(case["corefile"])
    assert case["message"] in str(raised.value)
    if "line" in case:
        assert raised.value.line == case["line"]
        assert f"line {case['line']}:" in str(raised.value)


@pytest.mark.parametrize("case", load_cases("logs.yaml"), ids=lambda case: case["id"])
def test_log_classifier(case):
    assert_subset(case["expect"], classify_coredns_logs(case["lines"], case.get("cluster_domain", "cluster.local")))


def test_log_examples_are_capped_at_three_per_class():
    lines = [f"[ERROR] plugin/errors: 2 a{index}.example. A: read udp 10.0.0.9:1->10.0.0.2:53: i/o timeout" for index in range(5)]
    result = classify_coredns_logs(lines)
    assert result["classes"]["upstream_timeout"]["count"] == 5
    assert result["classes"]["upstream_timeout"]["examples"] == lines[:3]


@pytest.mark.parametrize(("name", "port", "expected_zone"), [
    ("api.example.com", 53, "."),
    ("db.consul.local.", 53, "consul.local."),
    ("consul.local", 53, "consul.local."),
    ("notconsul.local", 53, "."),
    ("db.consul.local", 5353, None),
])
def test_most_specific_server_block_wins(name, port, expected_zone):
    blocks = parse_corefile(".:53 {\n  forward . 8.8.8.8\n}\nconsul.local:53 {\n  forward . 10.0.0.1\n}\n")
    block = server_block_for(blocks, name, port)
    assert (block["zones"][0] if block else None) == expected_zone


@pytest.mark.parametrize(("name", "expected_upstream", "expected_from"), [
    ("api.example.com", "8.8.8.8", "."),
    ("host.corp.example", "10.1.0.53", "corp.example."),
    ("host.internal.example", None, None),
])
def test_forward_choice_honours_except_and_sub_zone_forwards(name, expected_upstream, expected_from):
    corefile = ".:53 {\n  forward . 8.8.8.8 {\n    except corp.example internal.example\n  }\n  forward corp.example 10.1.0.53\n}\n"
    forward = forward_of(corefile, name)
    assert [upstream["raw"] for upstream in forward["upstreams"]] == ([expected_upstream] if expected_upstream else [])
    assert forward["from"] == expected_from
    if expected_upstream is None:
        assert "has no forward or proxy covering host.internal.example." in forward["reason"]


def test_no_root_block_is_reported_not_raised():
    summary = corefile_summary("example.org:53 {\n  errors\n  forward . 10.0.0.1\n}\n")
    assert summary["forward"]["plugin"] is None
    assert "REFUSED" in summary["forward"]["reason"]
    assert [warning["id"] for warning in summary["warnings"]] == ["no_root_zone"]


def test_root_block_without_forward_or_errors():
    summary = corefile_summary(".:53 {\n  kubernetes cluster.local\n}\n")
    assert [warning["id"] for warning in summary["warnings"]] == ["no_forward", "errors_plugin_missing"]


@pytest.mark.parametrize(("target", "expected"), [
    ("/etc/resolv.conf", {"kind": "resolv_conf", "path": "/etc/resolv.conf"}),
    ("/etc/custom-resolv.conf", {"kind": "file", "path": "/etc/custom-resolv.conf"}),
    ("8.8.8.8", {"kind": "address", "transport": "dns", "ip": "8.8.8.8", "port": 53}),
    ("tls://9.9.9.9:8853", {"kind": "address", "transport": "tls", "ip": "9.9.9.9", "port": 8853}),
    ("2001:db8::1", {"kind": "address", "ip": "2001:db8::1", "port": 53}),
    ("[2001:db8::1]:5353", {"kind": "address", "ip": "2001:db8::1", "port": 5353}),
    ("dns.google", {"kind": "invalid"}),
    ("8.8.8.8:0", {"kind": "invalid"}),
    ("__PILLAR__UPSTREAM__SERVERS__", {"kind": "placeholder"}),
    ("{$UPSTREAM}", {"kind": "placeholder"}),
])
def test_parse_upstream(target, expected):
    assert_subset({"raw": target, **expected}, parse_upstream(target))


@pytest.mark.parametrize(("data", "message"), [
    ({"upstreamNameservers": "8.8.8.8"}, "upstreamNameservers: not valid JSON"),
    ({"upstreamNameservers": '{"a": 1}'}, "expected a JSON list of IPs"),
    ({"stubDomains": '["10.0.0.1"]'}, "expected a JSON object"),
    ({"stubDomains": '{"corp.example": []}'}, "non-empty list of IPs"),
])
def test_kube_dns_configmap_errors(data, message):
    with pytest.raises(DnsConfigError, match=message):
        kube_dns_config({"data": data})


def test_kube_dns_more_than_three_upstreams_warns():
    result = kube_dns_config({"data": {"upstreamNameservers": '["1.1.1.1", "1.0.0.1", "8.8.8.8", "8.8.4.4"]'}})
    assert result["warnings"] == ["upstreamNameservers has 4 entries: kube-dns uses at most 3"]


@pytest.mark.parametrize(("call", "message"), [
    (lambda: parse_corefile(None), "expected the Corefile as text, got NoneType"),
    (lambda: read_corefile(".:53 {\n}\n", imports=["x"]), "imports must map file names"),
    (lambda: aks_corefile({"data": {}}), "no 'Corefile' key"),
    (lambda: aks_corefile("Corefile"), "expected a ConfigMap object"),
    (lambda: nodelocal_dns({"data": {"Corefile.base": ""}}), "no 'Corefile' key"),
    (lambda: classify_coredns_logs(42), "expected text or a list of lines"),
    (lambda: forward_of(42), "expected Corefile text or parsed server blocks"),
])
def test_wrong_input_types_get_clear_errors(call, message):
    with pytest.raises(DnsConfigError, match=message):
        call()


def test_nodelocal_absent():
    assert nodelocal_dns(None) == {"enabled": False, "local_ips": [], "forwarders": [], "placeholders": {}, "warnings": []}


@pytest.mark.parametrize(("expected", "actual"), [
    ({"a": 1}, {"a": 2}),
    ({"a": 1}, {"b": 1}),
    ([1, 2], [1]),
    ([{"a": 1}], [{"a": 1, "b": 2}, {"a": 1}]),
])
def test_subset_helper_rejects_mismatches(expected, actual):
    with pytest.raises(AssertionError):
        assert_subset(expected, actual)
