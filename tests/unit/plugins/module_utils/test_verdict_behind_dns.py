"""Every cause in one run: when the pod cannot resolve a target, the rules after DNS conclude on the checks it ran by
address. The facts are the lab's recording of dns.cluster_dns_unreachable (CoreDNS down, the endpoint healthy) with its
by-address checks replaced by others, each parsed from a real tool output the lab recorded (probe_facts_cases/lab_outputs.yml)."""

import copy
import json
from pathlib import Path

import pytest
import yaml

from ansible_collections.kubediag.egress.plugins.module_utils.probe import facts as probe_facts
from ansible_collections.kubediag.egress.plugins.module_utils.verdict.rules import Finding, evaluate_cluster

HERE = Path(__file__).parent
RECORDED = json.loads((HERE / "verdict_cases" / "dns.cluster_dns_unreachable.json").read_text())
OUTPUTS = {case["name"]: case for case in yaml.safe_load((HERE / "probe_facts_cases" / "lab_outputs.yml").read_text())}
URL, HOST_PORT, ADDRESS = "https://api.example.test/health", "api.example.test:443", "198.51.100.10"
BY_ADDRESS = {"host": "api.example.test", "port": 443, "by_address": True, "external_resolver": "192.0.2.8", "fallback_address": None,
              "fallback_source": None}


def _check(check_id, kind, tool, recorded, first_line=f"address {ADDRESS} external"):
    """A by-address check as pod_probe reports it: the script's first line, then a real tool output the lab recorded."""
    case = OUTPUTS[recorded]
    params = {**case["params"], **BY_ADDRESS}
    parsed = probe_facts.parse_check(kind, tool, case["exit_code"], f"{first_line}\n{case['output']}", params)
    return {"id": check_id, "kind": kind, "target": URL, "tool": tool, "params": params, **parsed}


def _by_address(tls="healthy shop/web tls:api.example.test:443", http="healthy shop/web http:https://api.example.test/health",
                tcp="healthy shop/web tcp:api.example.test:443", first_line=f"address {ADDRESS} external"):
    return [_check(f"tcp.by_address:{HOST_PORT}", "tcp", "nc", tcp, first_line),
            _check(f"http.by_address:{URL}", "http", "curl", http, first_line),
            _check(f"tls.by_address:{HOST_PORT}", "tls", "openssl s_client", tls, first_line)]


def _verdict(checks, netpol=None):
    facts = copy.deepcopy(RECORDED["facts"])
    probe = facts["pod_probes"][0]
    probe["checks"] = [c for c in probe["checks"] if ".by_address:" not in c["id"]] + checks
    if netpol is not None:
        facts["netpol"][0]["destinations"] = netpol
    verdicts = evaluate_cluster(facts)
    assert len(verdicts) == 1
    return verdicts[0]


def _expired():
    """The expired certificate as the lab's expired.example.test serves it, met at api.example.test's address."""
    return _by_address(tls="healthy shop/web tls:expired.example.test:443", http="healthy shop/web http:https://expired.example.test/")


def test_the_recording_alone_gives_only_the_dns_cause():
    assert _verdict([])["root_causes"] == ["dns.cluster_dns_unreachable"]


def test_dns_broken_and_the_endpoint_fine_by_address_gives_only_dns():
    verdict = _verdict(_by_address())
    assert verdict["root_causes"] == ["dns.cluster_dns_unreachable"]


def test_dns_broken_and_the_certificate_expired_gives_both_fix_first():
    verdict = _verdict(_expired())
    assert verdict["root_causes"] == ["dns.cluster_dns_unreachable", "tls.cert_expired"]
    tls = verdict["findings"][1]
    assert tls["targets"] == [URL] and tls["observed_from"] == "pod"
    assert tls["evidence"][0] == (f"the pod could not resolve api.example.test: tested it by the address {ADDRESS} the external resolver "
                                  "192.0.2.8 returned")
    assert any("certificate has expired" in line and f"by address {ADDRESS}" in line for line in tls["evidence"])
    assert tls["remediation"]["params"]["not_after"] == "2026-11-20T15:09:02+00:00"
    # the DNS finding keeps its own evidence: the resolvers, not the certificate
    assert not any("certificate" in line for line in verdict["findings"][0]["evidence"])
    assert verdict["targets"][0]["root_causes"] == ["dns.cluster_dns_unreachable", "tls.cert_expired"]


def test_the_address_the_controller_gave_is_named_as_such():
    given = {"fallback_address": ADDRESS, "fallback_source": "controller"}
    checks = [dict(c, params={**c["params"], **given}) for c in _expired() if c["kind"] != "tcp"]
    for check in checks:
        case = OUTPUTS["healthy shop/web tls:expired.example.test:443" if check["kind"] == "tls" else "healthy shop/web http:https://expired.example.test/"]
        check.update(probe_facts.parse_check(check["kind"], check["tool"], case["exit_code"], f"address {ADDRESS} fallback\n{case['output']}",
                                             check["params"]))
    verdict = _verdict(checks)
    assert verdict["root_causes"] == ["dns.cluster_dns_unreachable", "tls.cert_expired"]
    assert "the controller resolved (no resolver answered the pod)" in verdict["findings"][1]["evidence"][0]


def test_a_fallback_address_nobody_gave_is_refused():
    checks = _by_address(first_line=f"address {ADDRESS} fallback")
    assert {c["status"] for c in checks} == {"error"}
    assert _verdict(checks)["root_causes"] == ["dns.cluster_dns_unreachable"]


def test_dns_broken_and_no_address_anywhere_gives_only_dns_and_says_what_was_not_tested():
    checks = _by_address(first_line="noaddress")
    assert {c["status"] for c in checks} == {"skipped"}
    verdict = _verdict(checks)
    assert verdict["root_causes"] == ["dns.cluster_dns_unreachable"]
    assert any(line.startswith(f"{URL}: the pod could not resolve api.example.test") and "was not tested behind the DNS failure" in line
               for line in verdict["not_checked"]), verdict["not_checked"]


def test_a_name_that_does_not_exist_has_nothing_behind_it_to_test():
    case = json.loads((HERE / "verdict_cases" / "dns.name_not_found.json").read_text())
    facts = copy.deepcopy(case["facts"])
    url = facts["pod_probes"][0]["targets"][0]["url"]
    untested = dict(_by_address(first_line="noaddress")[1], id=f"http.by_address:{url}", target=url)
    facts["pod_probes"][0]["checks"].append(untested)
    verdict = evaluate_cluster(facts)[0]
    assert verdict["root_causes"] == ["dns.name_not_found"]
    assert not [line for line in verdict["not_checked"] if "was not tested" in line]


def test_dns_broken_and_a_policy_on_the_port_gives_both():
    blocked = _by_address(tcp="node.egress_broken shop/web tcp:api.example.test:443", tls="node.egress_broken shop/web tls:api.example.test:443",
                          http="mtu.blackhole shop/web http:https://api.example.test/large-response")
    denied = [{"allowed": False, "destination": "api.example.test", "ip": ADDRESS, "port": 443, "protocol": "TCP",
               "reasons": ["NetworkPolicy shop/deny-external selects shop/web; no egress rule allows TCP 198.51.100.10:443"],
               "selected_by": ["shop/deny-external"]}]
    verdict = _verdict(blocked, netpol=denied)
    assert verdict["root_causes"] == ["dns.cluster_dns_unreachable", "netpol.egress_blocked"]
    rule = verdict["findings"][1]["remediation"]["params"]["definition"]["spec"]["egress"][0]
    assert rule["to"] == [{"ipBlock": {"cidr": f"{ADDRESS}/32"}}]


TWO_FAULTS = [("dns.cluster_dns_unreachable-tls.cert_expired", "tls.cert_expired"),
              ("dns.cluster_dns_unreachable-netpol.egress_blocked", "netpol.egress_blocked"),
              ("dns.cluster_dns_unreachable-firewall.port_blocked", "firewall.port_blocked")]


@pytest.mark.parametrize(("scenario", "behind"), TWO_FAULTS)
def test_the_recorded_two_fault_scenarios_name_the_address_behind_dns(scenario, behind):
    verdict = evaluate_cluster(json.loads((HERE / "verdict_cases" / f"{scenario}.json").read_text())["facts"])[0]
    assert verdict["root_causes"] == ["dns.cluster_dns_unreachable", behind]
    first = verdict["findings"][1]["evidence"][0]
    assert first.startswith("the pod could not resolve ") and "the external resolver 192.0.2.8 returned" in first


def test_by_address_checks_of_a_pod_that_resolves_change_nothing():
    healthy = json.loads((HERE / "verdict_cases" / "healthy.json").read_text())
    facts = copy.deepcopy(healthy["facts"])
    facts["pod_probes"][0]["checks"] += _expired()     # forged: the pod resolved the name, so nothing ran by address
    assert evaluate_cluster(facts)[0]["root_causes"] == ["healthy"]


@pytest.mark.parametrize("value", ["cloud", "", None])
def test_observed_from_is_one_of_the_documented_values(value):
    with pytest.raises(ValueError, match="observed_from"):
        Finding("dns.resolv_conf", "s", [], {}, [], observed_from=value)
