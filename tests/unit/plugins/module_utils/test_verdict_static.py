"""The verdict's static branch: a pod that could not be probed gets only the causes the cluster's configuration proves.

Built from the lab recording of a distroless pod under a blocking policy (verdict_cases/netpol.egress_blocked-distroless.json),
edited at each boundary of certainty: every address denied or only some, an address that could not be evaluated, another
port, DNS blocked on one protocol or both, the pod's dnsPolicy, CoreDNS with or without a ready pod, NodeLocal DNS, the mesh."""

import copy
import json
from pathlib import Path

import pytest

from ansible_collections.kubediag.egress.plugins.module_utils.cluster.mesh import mesh_egress
from ansible_collections.kubediag.egress.plugins.module_utils.verdict.rules import evaluate_cluster

CASES = Path(__file__).parent / "verdict_cases"
BLOCKED = json.loads((CASES / "netpol.egress_blocked-distroless.json").read_text())["facts"]
NOTHING = json.loads((CASES / "not_probed-distroless.json").read_text())["facts"]
TARGET = "https://api.example.test/health"


def _verdict(facts):
    [verdict] = evaluate_cluster(facts)
    return verdict


def _facts(base=BLOCKED):
    return copy.deepcopy(base)


def _answers(facts):
    return facts["netpol"][0]["destinations"]


def test_a_policy_denying_every_address_is_named_from_the_static_view():
    verdict = _verdict(_facts())
    assert verdict["root_causes"] == ["netpol.egress_blocked"] and verdict["healthy"] is False
    [finding] = verdict["findings"]
    assert finding["observed_from"] == "static"
    assert "shop/deny-external" in finding["summary"]
    assert finding["evidence"][0].startswith("addresses of api.example.test from the node probe (node node-1): 198.51.100.10")
    assert "no egress rule of shop/deny-external allows TCP 198.51.100.10:443" in finding["evidence"]
    assert any("a probe would have added" in line for line in finding["not_checked"])
    assert any("allow_debug_container: true" in line and "pods/ephemeralcontainers" in line for line in finding["not_checked"])
    peers = finding["remediation"]["params"]["definition"]["spec"]["egress"][0]
    assert peers == {"to": [{"ipBlock": {"cidr": "198.51.100.10/32"}}], "ports": [{"protocol": "TCP", "port": 443}]}
    [target] = verdict["targets"]
    assert target["status"] == "failing" and target["root_causes"] == ["netpol.egress_blocked"]
    assert {h["hop"]: h["status"] for h in target["path"]} == {"pod": "unknown", "dns": "unknown", "policy": "fail", "node": "unknown",
                                                               "nat": "unknown", "internet": "unknown", "endpoint": "unknown"}
    assert target["note"].startswith("not probed: container 'static' of pod shop/static has no shell")


def test_controller_resolved_addresses_are_said_to_be_so():
    facts = _facts()
    facts["pod_probes"][0]["node"] = None  # node_probe off: netpol_egress_info resolved the name on the controller
    answer = _answers(facts)[0]
    answer["reasons"][0] = "api.example.test resolved on the controller (socket.getaddrinfo) to 198.51.100.10: the pod may resolve it differently"
    finding = _verdict(facts)["findings"][0]
    assert finding["id"] == "netpol.egress_blocked" and finding["observed_from"] == "static"
    assert finding["evidence"][0] == ("addresses of api.example.test resolved on the controller (the node was not probed): 198.51.100.10; "
                                      "the pod may resolve it differently")
    assert finding["remediation"]["params"]["definition"]["spec"]["egress"][0]["to"] == [{"ipBlock": {"cidr": "198.51.100.10/32"}}]


@pytest.mark.parametrize("edit", [
    pytest.param(lambda a: a.append(dict(a[0], ip="198.51.100.11", allowed=True)), id="a-second-address-allowed"),
    pytest.param(lambda a: a.append(dict(a[0], ip="198.51.100.11", allowed=None)), id="a-second-address-unknown"),
    pytest.param(lambda a: a[0].update(ip=None, allowed=None), id="the-name-did-not-resolve"),
    pytest.param(lambda a: a[0].update(port=8443), id="another-port"),
    pytest.param(lambda a: a[0].update(protocol="UDP"), id="another-protocol"),
    pytest.param(lambda a: a[0].update(destination="other.example.test"), id="another-destination"),
    pytest.param(lambda a: a.clear(), id="no-answer"),
])
def test_no_static_claim_unless_every_address_of_the_target_is_denied(edit):
    facts = _facts()
    edit(_answers(facts))
    verdict = _verdict(facts)
    assert verdict["root_causes"] == [] and verdict["healthy"] is False
    assert [t["status"] for t in verdict["targets"]] == ["not_probed"]
    assert verdict["targets"][0]["note"].endswith("; no static cause found; probe to be sure")


def test_nothing_in_the_way_is_not_probed_never_healthy():
    verdict = _verdict(_facts(NOTHING))
    assert verdict["root_causes"] == [] and verdict["findings"] == [] and verdict["healthy"] is False
    [target] = verdict["targets"]
    assert target["status"] == "not_probed" and target["root_causes"] == [] and target["checks"] == []
    assert {h["status"] for h in target["path"]} == {"unknown"}
    assert "no static cause found; probe to be sure" in verdict["not_checked"]
    assert any("allow_debug_container: true" in line for line in verdict["not_checked"])


def _dns_policy(facts, udp, tcp):
    dns = facts["netpol"][0]["dns"]
    dns.update(checked=True, udp_allowed=udp, tcp_allowed=tcp, allowed=udp and tcp,
               reasons=["cluster DNS pods: kube-system pods matching k8s-app=kube-dns", "UDP 53 to all cluster DNS pods is blocked"])
    return facts


@pytest.mark.parametrize(("udp", "tcp", "dns_policy", "host_network", "expected"), [
    (False, False, "ClusterFirst", False, ["netpol.dns_blocked"]),
    (False, False, "ClusterFirstWithHostNet", True, ["netpol.dns_blocked"]),
    (False, True, "ClusterFirst", False, []),        # TCP 53 still passes: a resolver may fall back to it
    (True, False, "ClusterFirst", False, []),
    (False, False, "Default", False, []),           # the node's resolver, not the cluster DNS
    (False, False, "ClusterFirst", True, []),       # hostNetwork with ClusterFirst uses the node's resolver too
    (False, False, None, None, []),                 # dnsPolicy unknown (pod_probe did not report it)
])
def test_dns_blocked_by_policy_only_when_no_lookup_can_pass(udp, tcp, dns_policy, host_network, expected):
    facts = _dns_policy(_facts(NOTHING), udp, tcp)
    pod = facts["pod_probes"][0]["pod"]
    pod.update(dns_policy=dns_policy, host_network=host_network)
    if dns_policy is None:
        del pod["dns_policy"], pod["host_network"]
    verdict = _verdict(facts)
    assert verdict["root_causes"] == expected
    assert all(f["observed_from"] == "static" for f in verdict["findings"])
    if expected:
        assert verdict["findings"][0]["evidence"][0] == f"shop/static resolves names through the cluster DNS (dnsPolicy {dns_policy})"


def _coredns(facts, pods, nodelocal=False, not_checked=()):
    facts["coredns"].update(pods=pods, pods_ready=bool(pods) and all(p["ready"] for p in pods), not_checked=list(not_checked))
    facts["coredns"]["nodelocal_dns"]["enabled"] = nodelocal
    return facts


DOWN = {"pod": "kube-system/coredns-1", "phase": "Running", "ready": False, "node": "node-1", "ip": "10.244.0.2", "restarts": 7}


@pytest.mark.parametrize(("pods", "nodelocal", "not_checked", "expected"), [
    ([], False, (), ["dns.cluster_dns_unreachable"]),
    ([DOWN, dict(DOWN, pod="kube-system/coredns-2")], False, (), ["dns.cluster_dns_unreachable"]),
    ([DOWN, dict(DOWN, pod="kube-system/coredns-2", ready=True)], False, (), []),   # one ready pod answers
    ([], True, (), []),                                                              # NodeLocal DNS may answer from its cache
    ([], False, ({"what": "Pod in kube-system", "reason": "forbidden", "message": "cannot list pods"},), []),
])
def test_coredns_unreachable_only_when_no_pod_behind_the_service_is_ready(pods, nodelocal, not_checked, expected):
    verdict = _verdict(_coredns(_facts(NOTHING), pods, nodelocal, not_checked))
    assert verdict["root_causes"] == expected
    if expected:
        finding = verdict["findings"][0]
        assert finding["observed_from"] == "static" and "kube-dns Service ClusterIP 10.96.0.10" in finding["evidence"]


def test_coredns_unreachable_is_not_claimed_for_an_ip_target():
    facts = _coredns(_facts(NOTHING), [])
    probe = facts["pod_probes"][0]
    probe["targets"] = [dict(probe["targets"][0], url="https://198.51.100.10/health", host="198.51.100.10", host_is_ip=True)]
    assert _verdict(facts)["root_causes"] == []


def test_a_mesh_that_refuses_the_host_is_named_from_the_static_view():
    facts = _facts(NOTHING)
    pod = {"metadata": {"name": "static", "namespace": "shop", "labels": {"app": "static"}},
           "spec": {"containers": [{"name": "static", "image": "gcr.io/distroless/static"}, {"name": "istio-proxy", "image": "istio/proxyv2:1.22.3"}]}}
    registry_only = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "istio", "namespace": "istio-system"},
                     "data": {"mesh": "outboundTrafficPolicy:\n  mode: REGISTRY_ONLY\n"}}
    answer = mesh_egress(pod, "api.example.test", 443, {"mesh_config": registry_only}, ["198.51.100.10"])
    facts["mesh"] = [{"item": {"namespace": "shop", "pod": "static", "host": "api.example.test", "port": 443}, "istio_installed": True, **answer}]
    verdict = _verdict(facts)
    assert verdict["root_causes"] == ["mesh.registry_only"]
    finding = verdict["findings"][0]
    assert finding["observed_from"] == "static" and any("REGISTRY_ONLY" in line for line in finding["evidence"])
    assert finding["remediation"]["params"]["definition"]["spec"]["hosts"] == ["api.example.test"]


def test_snat_off_is_no_static_cause_only_a_note():
    """A NAT gateway or Cloud NAT may translate pod IPs further on: only a probe tells; the verdict says so and claims nothing."""
    facts = _facts(NOTHING)
    facts["cluster_network"]["snat"] = {"destination": "198.51.100.10", "ip": "198.51.100.10", "snat": False, "by": "GKE Dataplane V2",
                                        "mechanisms": [], "reasons": ["GKE Dataplane V2: 198.51.100.10 is in nonMasqueradeCIDRs 0.0.0.0/0"]}
    verdict = _verdict(facts)
    assert verdict["root_causes"] == []
    assert any(line.startswith("SNAT: GKE Dataplane V2: 198.51.100.10 is in nonMasqueradeCIDRs") and "needs a probe" in line
               for line in verdict["not_checked"])


def test_every_cause_the_configuration_proves_is_reported_fix_first():
    facts = _coredns(_facts(), [])
    verdict = _verdict(facts)
    assert verdict["root_causes"] == ["dns.cluster_dns_unreachable", "netpol.egress_blocked"]


def test_a_probed_pod_is_never_answered_statically():
    """The probed recording of the same policy: the finding rests on the pod's own observation."""
    facts = json.loads((CASES / "netpol.egress_blocked.json").read_text())["facts"]
    verdict = _verdict(facts)
    assert [(f["id"], f["observed_from"]) for f in verdict["findings"]] == [("netpol.egress_blocked", "pod")]
    assert all("note" not in t for t in verdict["targets"])


def test_every_recorded_finding_says_whose_observation_it_rests_on():
    for path in sorted(CASES.glob("*.json")):
        for verdict in evaluate_cluster(json.loads(path.read_text())["facts"]):
            probed = "note" not in verdict["targets"][0]  # only the targets of a pod that was not probed carry a note
            for finding in verdict["findings"]:
                # A probed BusyBox pod's finding may rest on its node's view (test_verdict_node_evidence.py says when).
                expected = ("pod", "node") if probed and "busybox" in path.stem else ("pod",) if probed else ("static",)
                assert finding["observed_from"] in expected, (path.name, finding["id"])


def test_two_static_causes_on_one_hop_are_both_noted_on_the_path():
    verdict = _verdict(_dns_policy(_facts(), False, False))
    assert verdict["root_causes"] == ["netpol.dns_blocked", "netpol.egress_blocked"]
    [policy] = [h for h in verdict["targets"][0]["path"] if h["hop"] == "policy"]
    assert policy["status"] == "fail" and policy["note"].startswith("netpol.dns_blocked: ") and "; netpol.egress_blocked: " in policy["note"]
