"""The node's evidence for what a BusyBox pod's tools cannot measure (issue 9): MTU black holes measured by the node's DF
pings, UDP datagrams the pod cannot send. Cases are the lab recordings (verdict_cases/, made by record.py) with one fact
changed at each boundary of the rule."""

import copy
import json
from pathlib import Path

import pytest

from ansible_collections.kubediag.egress.plugins.module_utils.verdict.rules import evaluate_cluster

CASES = Path(__file__).parent / "verdict_cases"


def _facts(name):
    return copy.deepcopy(json.loads((CASES / f"{name}.json").read_text())["facts"])


def _check(probe, check_id):
    return next(c for c in probe["checks"] if c["id"] == check_id)


def _verdict(facts):
    (verdict,) = evaluate_cluster(facts)
    return verdict


def _finding(verdict, cause_id):
    return next(f for f in verdict["findings"] if f["id"] == cause_id)


def _only_targets(facts, urls):
    probe = facts["pod_probes"][0]
    probe["targets"] = [t for t in probe["targets"] if t["url"] in urls]


def _time_out(check):
    check.update(status="fail", error_class="timeout", summary=f"{check['id']}: no answer before the timeout",
                 details=dict(check.get("details") or {}, http_code=None))


LARGE_HTTP = "http://api.example.test/large-response"
LARGE_HTTPS = "https://api.example.test/large-response"
HEALTH_HTTP = "http://api.example.test/health"
UDP_NTP = "udp://udp-echo.example.test:123"


def test_every_finding_of_a_pod_with_its_own_tools_is_observed_from_the_pod():
    for path in sorted(CASES.glob("*.json")):
        if "busybox" in path.stem:
            continue
        for verdict in evaluate_cluster(json.loads(path.read_text())["facts"]):
            if any("note" in t for t in verdict["targets"]):   # a pod that was not probed: its findings are static
                continue
            assert {f["observed_from"] for f in verdict["findings"]} <= {"pod"}, path.stem


def test_a_busybox_pod_behind_a_black_hole_gets_it_from_the_node():
    verdict = _verdict(_facts("mtu.blackhole-busybox"))
    assert verdict["root_causes"] == ["mtu.blackhole"]
    finding = _finding(verdict, "mtu.blackhole")
    assert finding["observed_from"] == "node"
    assert finding["targets"] == [LARGE_HTTP, LARGE_HTTPS]   # the small request passes: not part of it
    assert finding["remediation"]["params"]["path_mtu"] == 1280   # the node's DF pings: 1280 passes, 1350 vanishes
    assert any(e.startswith("from node node-1: path MTU black hole") for e in finding["evidence"])


@pytest.mark.parametrize("url", [LARGE_HTTP, LARGE_HTTPS])
def test_each_branch_alone_concludes(url):
    """The pod's large download stalls (HTTP), or the pod cannot make it (BusyBox wget's TLS): either with the node's black hole."""
    facts = _facts("mtu.blackhole-busybox")
    _only_targets(facts, [url])
    finding = _finding(_verdict(facts), "mtu.blackhole")
    assert finding["observed_from"] == "node" and finding["targets"] == [url]


def test_the_pods_large_transfer_passing_overrides_the_nodes_black_hole():
    facts = _facts("mtu.blackhole-busybox")
    _only_targets(facts, [HEALTH_HTTP, LARGE_HTTP])
    large = _check(facts["pod_probes"][0], f"http:{LARGE_HTTP}")
    large.update(status="ok", error_class=None, summary=f"HTTP {LARGE_HTTP}: HTTP 200")
    large["details"]["http_code"] = 200
    assert _verdict(facts)["root_causes"] == ["healthy"]


def test_no_black_hole_when_the_nodes_own_large_request_passed():
    facts = _facts("mtu.blackhole-busybox")
    _only_targets(facts, [LARGE_HTTP])
    node_large = _check(facts["pod_probes"][0]["node"], f"http:{LARGE_HTTP}")
    node_large.update(status="ok", error_class=None, summary=f"HTTP {LARGE_HTTP}: HTTP 200 in 0.050 s")
    verdict = _verdict(facts)
    assert "mtu.blackhole" not in verdict["root_causes"]


def test_no_black_hole_when_the_nodes_df_pings_all_passed():
    facts = _facts("mtu.blackhole-busybox")
    node_mtu = _check(facts["pod_probes"][0]["node"], "mtu:api.example.test")
    node_mtu.update(status="ok", error_class=None, summary="path MTU towards api.example.test is at least 1500")
    node_mtu["details"].update(blackhole=False, largest_ok=1500, smallest_lost=None)
    assert "mtu.blackhole" not in _verdict(facts)["root_causes"]


def test_the_pods_own_df_pings_passing_overrule_the_node():
    """A pod whose ping can set DF and finds its path fine: the node's black hole is on another path, not this pod's."""
    facts = _facts("mtu.blackhole-busybox")
    pod_mtu = _check(facts["pod_probes"][0], "mtu:api.example.test")
    pod_mtu.update(status="ok", error_class=None, summary="path MTU towards api.example.test is at least 1500",
                   details={"host": "api.example.test", "blackhole": False, "largest_ok": 1500})
    assert "mtu.blackhole" not in _verdict(facts)["root_causes"]


def test_without_the_node_a_busybox_pod_behind_a_black_hole_stays_unknown():
    facts = _facts("mtu.blackhole-busybox")
    facts["pod_probes"][0]["node"] = None
    verdict = _verdict(facts)
    assert verdict["root_causes"] == [] and verdict["healthy"] is False
    assert {t["target"]: t["status"] for t in verdict["targets"]}[LARGE_HTTP] == "unknown"


def test_a_pod_that_reaches_nothing_is_not_an_mtu_problem():
    facts = _facts("mtu.blackhole-busybox")
    _only_targets(facts, [LARGE_HTTPS])
    for check in facts["pod_probes"][0]["checks"]:
        if check["kind"] in ("tcp", "udp", "http", "tls", "egress_ip", "proxy") and check["status"] == "ok":
            _time_out(check)
    assert "mtu.blackhole" not in _verdict(facts)["root_causes"]


def test_a_busybox_pods_udp_target_is_healthy_from_the_node():
    verdict = _verdict(_facts("healthy-busybox-udp"))
    assert verdict["root_causes"] == ["healthy"] and verdict["healthy"] is True
    healthy = verdict["findings"][0]
    assert "from node node-1: UDP udp-echo.example.test:123: answered a ntp datagram" in healthy["evidence"]
    assert any(line.startswith(f"{UDP_NTP}: the pod's tools cannot send UDP") for line in healthy["not_checked"])


def test_a_policy_that_denies_the_pods_udp_is_not_overruled_by_the_node():
    facts = _facts("healthy-busybox-udp")
    decision = next(d for n in facts["netpol"] for d in n["destinations"] if d["protocol"] == "UDP")
    decision.update(allowed=False, selected_by=["shop/deny-egress"], reasons=["shop/deny-egress allows no UDP 123"])
    verdict = _verdict(facts)
    assert verdict["root_causes"] == ["netpol.egress_blocked"]


def test_without_a_policy_read_the_node_does_not_stand_in():
    facts = _facts("healthy-busybox-udp")
    facts["netpol"] = []
    verdict = _verdict(facts)
    assert verdict["healthy"] is False
    assert {t["target"]: t["status"] for t in verdict["targets"]}[UDP_NTP] == "unknown"


def test_a_busybox_pods_blocked_udp_is_named_from_the_node():
    verdict = _verdict(_facts("firewall.port_blocked-busybox-udp"))
    assert verdict["root_causes"] == ["firewall.port_blocked"]
    finding = _finding(verdict, "firewall.port_blocked")
    assert finding["observed_from"] == "node" and finding["targets"] == [UDP_NTP]
    assert finding["remediation"]["params"] == {"protocol": "UDP", "port": 123, "destinations": ["198.51.100.14"]}
    assert finding["evidence"][0].startswith("the pod could not send it itself: needs bash or a netcat with -u")


def test_a_node_that_reaches_nothing_names_no_port():
    facts = _facts("firewall.port_blocked-busybox-udp")
    for check in facts["pod_probes"][0]["node"]["checks"]:
        if check["kind"] in ("tcp", "udp", "http", "tls", "egress_ip") and check["status"] == "ok":
            _time_out(check)
    assert "firewall.port_blocked" not in _verdict(facts)["root_causes"]


def test_without_the_node_a_busybox_pods_blocked_udp_stays_unknown():
    facts = _facts("firewall.port_blocked-busybox-udp")
    facts["pod_probes"][0]["node"] = None
    verdict = _verdict(facts)
    assert verdict["root_causes"] == []
    assert {t["target"]: t["status"] for t in verdict["targets"]}[UDP_NTP] == "unknown"


def _stalled_after_headers(facts, url=LARGE_HTTP):
    """The BusyBox pod's wget got the headers and 1000 body bytes, then the body stalled (what the probe reports for it)."""
    large = _check(facts["pod_probes"][0], f"http:{url}")
    large["summary"] = f"HTTP {url}: the download stalled after 1000 bytes of the body"
    large["details"].update(http_code=200, size_download=1000, timeout_stage="transfer")


def test_a_busybox_download_that_stalls_after_its_headers_is_the_pods_own_observation():
    facts = _facts("mtu.blackhole-busybox")
    _only_targets(facts, [HEALTH_HTTP, LARGE_HTTP])
    _stalled_after_headers(facts)
    finding = _finding(_verdict(facts), "mtu.blackhole")
    assert finding["observed_from"] == "pod"
    assert finding["remediation"]["params"]["path_mtu"] == 1280   # sized by the node's DF pings: the pod's ping cannot set DF
    assert any(e.startswith("from node node-1: path MTU black hole") for e in finding["evidence"])


def test_a_stall_after_the_headers_without_a_small_request_passing_is_no_mtu_finding():
    facts = _facts("mtu.blackhole-busybox")
    _only_targets(facts, [LARGE_HTTP])
    _stalled_after_headers(facts)
    facts["pod_probes"][0]["node"] = None
    health = _check(facts["pod_probes"][0], f"http:{HEALTH_HTTP}")
    _time_out(health)
    assert "mtu.blackhole" not in _verdict(facts)["root_causes"]


def test_a_connect_the_pod_made_itself_is_not_blocked_whatever_the_node_saw():
    """A BusyBox pod's HTTPS target: its wget gives up on TLS, but its own TCP connect passed; the node's connect timing out
    does not make the port blocked for the pod."""
    facts = _facts("mtu.blackhole-busybox")
    _only_targets(facts, [LARGE_HTTPS])
    node = facts["pod_probes"][0]["node"]
    _time_out(_check(node, "tcp:api.example.test:443"))
    _check(node, "mtu:api.example.test")["details"]["blackhole"] = False
    assert _check(facts["pod_probes"][0], "tcp:api.example.test:443")["status"] == "ok"
    assert _verdict(facts)["root_causes"] == []
