"""Proposed fixes hold real values from the facts: no <placeholder> in any remediation of any recorded scenario, and the
SNAT (nonMasqueradeCIDRs) and NO_PROXY ranges are the CIDRs cluster_network_info read; a range the facts do not hold is
named in words and in not_checked."""

import copy
import ipaddress
import json
import re
from pathlib import Path

import pytest

from ansible_collections.kubediag.egress.plugins.module_utils.verdict.rules import evaluate_cluster

CASES = {path.stem: json.loads(path.read_text()) for path in sorted((Path(__file__).parent / "verdict_cases").glob("*.json"))}
PLACEHOLDER = re.compile(r"<[^<>]*>")


def _strings(value):
    if isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)
    elif isinstance(value, str):
        yield value


def _finding(facts, cause):
    return next(f for f in evaluate_cluster(facts)[0]["findings"] if f["id"] == cause)


@pytest.mark.parametrize("name", sorted(CASES))
def test_no_remediation_holds_a_placeholder(name):
    for verdict in evaluate_cluster(CASES[name]["facts"]):
        for finding in verdict["findings"]:
            placeholders = [s for s in _strings(finding["remediation"]) if PLACEHOLDER.search(s)]
            assert not placeholders, (finding["id"], placeholders)


def _fact_cidrs(facts, key):
    network = facts["cluster_network"]
    entries = network["vpc_cidrs"] if key == "vpc_cidrs" else network["cidrs"][key]
    return [entry["cidr"] if isinstance(entry, dict) else entry for entry in entries]


def _covers_exactly(proposed, recorded):
    """Every recorded range is inside a proposed one, and every proposed one is a recorded range (nothing invented)."""
    networks = [ipaddress.ip_network(c) for c in proposed]
    return (all(any(ipaddress.ip_network(r).subnet_of(n) for n in networks) for r in recorded)
            and set(proposed) <= set(recorded))


def test_the_snat_fix_lists_the_pod_cidrs_of_the_facts():
    facts = CASES["nat.missing_snat"]["facts"]
    finding = _finding(facts, "nat.missing_snat")
    proposed = finding["remediation"]["params"]["config"]["nonMasqueradeCIDRs"]
    assert _covers_exactly(proposed, _fact_cidrs(facts, "pod_cidrs")) and proposed == ["10.244.0.0/16"]
    assert finding["remediation"]["module"] == "kubernetes.core.k8s"
    # the lab's cluster exposes neither its service range nor its VPC range: said in words, not guessed
    assert any("service CIDR is not known" in line for line in finding["not_checked"])
    assert any("VPC CIDR is not known" in line for line in finding["not_checked"])
    assert "service CIDR is not known" in finding["remediation"]["summary"]


def test_the_snat_fix_takes_every_range_the_facts_hold():
    facts = copy.deepcopy(CASES["nat.missing_snat"]["facts"])
    facts["cluster_network"]["cidrs"]["service_cidrs"] = [{"cidr": "10.96.0.0/12", "sources": ["kube-apiserver --service-cluster-ip-range"]}]
    facts["cluster_network"]["vpc_cidrs"] = ["172.20.0.0/16"]
    finding = _finding(facts, "nat.missing_snat")
    proposed = finding["remediation"]["params"]["config"]["nonMasqueradeCIDRs"]
    recorded = [*_fact_cidrs(facts, "pod_cidrs"), *_fact_cidrs(facts, "service_cidrs"), *_fact_cidrs(facts, "vpc_cidrs")]
    assert _covers_exactly(proposed, recorded) and sorted(proposed) == ["10.244.0.0/16", "10.96.0.0/12", "172.20.0.0/16"]
    assert not any("not known" in line for line in finding["not_checked"])


def test_the_snat_fix_without_cluster_facts_names_what_is_missing_and_applies_nothing():
    facts = copy.deepcopy(CASES["nat.missing_snat"]["facts"])
    facts["cluster_network"] = None
    finding = _finding(facts, "nat.missing_snat")
    assert finding["remediation"]["params"]["config"]["nonMasqueradeCIDRs"] == []
    assert finding["remediation"]["module"] is None  # an empty list would masquerade in-cluster traffic too
    assert any("cluster_network_info did not run" in line for line in finding["not_checked"])


def _no_proxy(finding):
    return next(e["value"] for e in finding["remediation"]["params"]["env"] if e["name"] == "NO_PROXY").split(",")


def test_no_proxy_holds_the_pod_cidrs_and_the_cluster_domain_of_the_facts():
    facts = CASES["proxy.missing_config"]["facts"]
    finding = _finding(facts, "proxy.missing_config")
    entries = _no_proxy(finding)
    ranges = [e for e in entries if "/" in e]
    assert _covers_exactly(ranges, _fact_cidrs(facts, "pod_cidrs"))
    search = facts["pod_probes"][0]["resolv_conf"]["details"]["search"]
    assert ".svc" in entries and f".{search[-1]}" in entries  # the pod's resolv.conf searches cluster.local last
    assert "169.254.169.254" in entries
    assert any("service CIDR is not known" in line for line in finding["not_checked"])


def test_no_proxy_follows_a_custom_cluster_domain_and_the_service_range():
    facts = copy.deepcopy(CASES["proxy.missing_config"]["facts"])
    facts["pod_probes"][0]["resolv_conf"]["details"]["search"] = ["shop.svc.corp.internal", "svc.corp.internal", "corp.internal"]
    facts["cluster_network"]["cidrs"]["service_cidrs"] = [{"cidr": "10.100.0.0/16", "sources": ["kubeadm-config networking.serviceSubnet"]}]
    finding = _finding(facts, "proxy.missing_config")
    entries = _no_proxy(finding)
    assert ".corp.internal" in entries and ".cluster.local" not in entries
    assert {"10.244.0.0/16", "10.100.0.0/16"} <= set(entries)
    assert not any("not known" in line for line in finding["not_checked"])
