"""Confirm before concluding (issue 9): a check that timed out is re-run once before any rule concludes from it; the probe
judges its own timings, and the verdict says inconclusive, never a root cause, when they cannot be trusted.

The fake pods here answer like the real tools (dig's own timeout message and answer section, iputils ping's summary), so the
parsers under test are the real ones; what changes between rounds is only whether the network answered.
"""

import copy
import json
import subprocess
import time
from pathlib import Path

import pytest

from ansible_collections.kubediag.egress.plugins.module_utils.k8s.client import ExecResult
from ansible_collections.kubediag.egress.plugins.module_utils.probe import runner as pod_probe
from ansible_collections.kubediag.egress.plugins.module_utils.probe import script as probe_script
from ansible_collections.kubediag.egress.plugins.module_utils.probe.targets import parse_targets
from ansible_collections.kubediag.egress.plugins.module_utils.report.render import build_report, render_html, render_markdown, summary_lines
from ansible_collections.kubediag.egress.plugins.module_utils.verdict.rules import evaluate_cluster

CASES = Path(__file__).parent / "verdict_cases"
DIG_TIMEOUT = (9, ";; connection timed out; no servers could be reached")
DIG_ANSWER = (0, ";; ->>HEADER<<- opcode: QUERY, status: NOERROR, id: 4242\n;; ANSWER SECTION:\napi.example.test.\t30\tIN\tA\t198.51.100.10")
PING_LOST = (1, "1 packets transmitted, 0 received, 100% packet loss, time 0ms")
PING_OK = (0, "1 packets transmitted, 1 received, 0% packet loss, time 0ms\nrtt min/avg/max/mdev = 0.1/0.1/0.1/0.0 ms")
DETECTION = "tool dig /usr/bin/dig DiG 9.18.28\ntool ping /bin/ping ping from iputils 20221126\ntimeout gnu\nmtu eth0 1500\n"


class FakePod:
    """A container whose probe rounds answer `answer(record, round)` -> (exit code, output); it records each probe exec's
    timeout argument and records."""

    def __init__(self, answer, start_lag_ms=0, detection=DETECTION):
        self.answer, self.start_lag_ms, self.detection = answer, start_lag_ms, detection
        self.rounds = []

    def __call__(self, argv, timeout):
        if argv[3] == "kddetect":
            return ExecResult(self.detection, "", 0)
        check_timeout, nonce, records = int(argv[4]), argv[6], argv[7:]
        self.rounds.append((check_timeout, records))
        lines = []
        for index, record in enumerate(records):
            code, output = self.answer(record, len(self.rounds))
            lines += [f"{nonce} {index} o {line}" for line in output.split("\n")]
            lines.append(f"{nonce} {index} x {code} 40 {self.start_lag_ms}")
        return ExecResult("\n".join(lines) + "\n", "", 0)


def dns_only(options=None):
    return pod_probe.build_options(timeout=5, external_resolver="192.0.2.53", mtu_sizes=[1500, 576], **(options or {}))


def external_dns_times_out_once(record, round_number):
    if record.startswith("dig"):
        return DIG_TIMEOUT if record.endswith("192.0.2.53") and round_number == 1 else DIG_ANSWER
    return PING_OK


def checks_of(facts):
    return {c["id"]: c for c in facts["checks"]}


def test_a_check_that_times_out_then_answers_is_not_a_failure():
    pod = FakePod(external_dns_times_out_once)
    facts = pod_probe.probe(pod, parse_targets(["https://api.example.test/"]), dns_only())
    check = checks_of(facts)["dns.external:api.example.test"]
    assert check["status"] == "ok" and check["confirmed"] is False
    assert [(a["status"], a["error_class"]) for a in check["details"]["attempts"]] == [("fail", "timeout"), ("ok", None)]
    assert "attempt 1" in check["evidence"] and "attempt 2" in check["evidence"]
    # One more exec, holding only the check that timed out, with twice the timeout.
    assert len(pod.rounds) == 2 and pod.rounds[1] == (10, ["dig api.example.test. 192.0.2.53"])
    assert facts["exec_round_trips"] == 3 and facts["confirmed_checks"] == 1
    assert [r["round"] for r in facts["timing"]["rounds"]] == ["checks", "confirmation"]
    assert "confirmed" not in checks_of(facts)["dns.pod:api.example.test"]   # passed at once: not re-run


def test_a_check_that_times_out_twice_is_a_confirmed_failure():
    pod = FakePod(lambda record, _round: DIG_TIMEOUT if record.endswith("192.0.2.53") else (DIG_ANSWER if record.startswith("dig") else PING_OK))
    facts = pod_probe.probe(pod, parse_targets(["https://api.example.test/"]), dns_only())
    check = checks_of(facts)["dns.external:api.example.test"]
    assert (check["status"], check["error_class"], check["confirmed"]) == ("fail", "timeout", True)
    assert [a["error_class"] for a in check["details"]["attempts"]] == ["timeout", "timeout"]


def test_nothing_timed_out_means_no_confirmation_round():
    pod = FakePod(lambda record, _round: DIG_ANSWER if record.startswith("dig") else PING_OK)
    facts = pod_probe.probe(pod, parse_targets(["https://api.example.test/"]), dns_only())
    assert len(pod.rounds) == 1 and facts["exec_round_trips"] == 2 and facts["confirmed_checks"] == 0
    assert all("confirmed" not in c for c in facts["checks"])


def test_an_answer_that_says_no_is_not_re_run():
    nxdomain = (1, ";; ->>HEADER<<- opcode: QUERY, status: NXDOMAIN, id: 1")
    pod = FakePod(lambda record, _round: nxdomain if record.startswith("dig") else PING_OK)
    pod_probe.probe(pod, parse_targets(["https://api.example.test/"]), dns_only())
    assert len(pod.rounds) == 1


def test_a_lost_ping_is_not_re_run_and_a_lost_df_size_only_when_a_smaller_one_passed():
    def answer(record, _round):
        if record.startswith("dig"):
            return DIG_ANSWER
        if record.startswith("pmtu") and record.endswith(str(1500 - 28)):
            return PING_LOST
        return PING_LOST if record.startswith("ping") else PING_OK
    pod = FakePod(answer)
    facts = pod_probe.probe(pod, parse_targets(["https://api.example.test/"]), dns_only())
    assert pod.rounds[1][1] == [f"pmtu api.example.test {1500 - 28}"]
    mtu = checks_of(facts)["mtu:api.example.test"]
    assert mtu["confirmed"] is True and [a["size"] for a in mtu["details"]["attempts"]] == [1500, 1500]
    assert mtu["error_class"] == "blackhole"

    every_size_lost = FakePod(lambda record, _round: DIG_ANSWER if record.startswith("dig") else PING_LOST)
    pod_probe.probe(every_size_lost, parse_targets(["https://api.example.test/"]), dns_only())
    assert len(every_size_lost.rounds) == 1   # nothing is concluded from DF pings that all vanish (no_icmp)


def test_a_tool_that_failed_on_its_own_name_lookup_is_re_run_whether_or_not_a_dns_check_timed_out():
    curl_lookup_failed = (6, "curl: (6) Could not resolve host: api.example.test")
    tools = DETECTION + "tool curl /usr/bin/curl curl\n"

    def answer(record, round_number):
        if record.startswith("dig"):
            return DIG_TIMEOUT if round_number == 1 and dns_times_out else DIG_ANSWER
        if record.startswith("curl"):
            return curl_lookup_failed if round_number == 1 else (0, "kdw|200|0.01|0.02|0.03|0.04|0.05|10|0|198.51.100.10")
        return PING_OK

    dns_times_out = True
    pod = FakePod(answer, detection=tools)
    facts = pod_probe.probe(pod, parse_targets(["https://api.example.test/"]), dns_only())
    http = checks_of(facts)["http:https://api.example.test/"]
    assert (http["status"], http["confirmed"]) == ("ok", False) and http["details"]["attempts"][0]["error_class"] == "dns"
    # The probe's single queries answered, but curl's lookup (the C library's, through the search list) gave up: re-run alone.
    dns_times_out = False
    pod = FakePod(answer, detection=tools)
    facts = pod_probe.probe(pod, parse_targets(["https://api.example.test/"]), dns_only())
    assert "curl https://api.example.test/ env" in pod.rounds[1][1] and not any(r.startswith("dig") for r in pod.rounds[1][1])
    assert checks_of(facts)["http:https://api.example.test/"]["status"] == "ok"


def test_a_servfail_is_re_run_it_is_a_forwarder_whose_upstream_did_not_answer_in_time():
    servfail = (0, ";; ->>HEADER<<- opcode: QUERY, status: SERVFAIL, id: 7")
    pod = FakePod(lambda record, round_number: servfail if record.startswith("dig") and round_number == 1 else
                  (DIG_ANSWER if record.startswith("dig") else PING_OK))
    facts = pod_probe.probe(pod, parse_targets(["https://api.example.test/"]), dns_only())
    pod_dns = checks_of(facts)["dns.pod:api.example.test"]
    assert pod_dns["status"] == "ok" and pod_dns["details"]["attempts"][0]["error_class"] == "servfail"


def test_a_confirmation_exec_that_fails_keeps_the_first_round_and_distrusts_its_timeouts():
    pod = FakePod(lambda record, _round: DIG_TIMEOUT if record.endswith("192.0.2.53") else (DIG_ANSWER if record.startswith("dig") else PING_OK))

    def run(argv, timeout):
        if argv[3] == "kdprobe" and pod.rounds:
            return ExecResult("", "", None, error="websocket closed")
        return pod(argv, timeout)
    facts = pod_probe.probe(run, parse_targets(["https://api.example.test/"]), dns_only())
    check = checks_of(facts)["dns.external:api.example.test"]
    assert (check["status"], check["error_class"]) == ("fail", "timeout") and "confirmed" not in check
    assert facts["timing"]["trusted"] is False and "not confirmed" in facts["timing"]["reason"]


def test_the_confirmation_budget_is_twice_the_timeout_within_the_option_range():
    assert [pod_probe.confirmation_timeout(t) for t in (1, 5, 30, 45, 60)] == [2, 10, 60, 60, 60]


@pytest.mark.parametrize(("exec_rtt_ms", "max_start_lag_ms", "trusted"), [
    (300, 0, True),
    (300, 2500, True),      # half the 5 s timeout late: still within
    (300, 2501, False),     # more than half late
    (2500, 0, True),        # an exec round trip of half what a check may take
    (2501, 0, False),       # more than half
    (4340, 20, False),      # the last false alarm of 40 clusters at -f 40 (SERVFAIL twice) had these timings
    (None, None, True),     # a shell that could not read its clock proves nothing either way
])
def test_timings_are_trusted_up_to_half_the_timeout_of_start_lag_and_of_exec_round_trip(exec_rtt_ms, max_start_lag_ms, trusted):
    timing = pod_probe.timing_verdict(5, exec_rtt_ms, max_start_lag_ms)
    assert timing["trusted"] is trusted
    assert (timing["reason"] is None) is trusted


def test_the_round_that_decided_is_the_one_judged():
    slow = FakePod(external_dns_times_out_once, start_lag_ms=4000)   # over half of 5 s, under half of the 10 s confirmation
    facts = pod_probe.probe(slow, parse_targets(["https://api.example.test/"]), dns_only())
    assert facts["timing"]["trusted"] is True and facts["timing"]["max_start_lag_ms"] == 4000
    starved = FakePod(lambda record, _round: DIG_TIMEOUT if record.endswith("192.0.2.53") else DIG_ANSWER, start_lag_ms=6000)
    facts = pod_probe.probe(starved, parse_targets(["https://api.example.test/"]), dns_only())
    assert facts["timing"]["trusted"] is False and "6000 ms" in facts["timing"]["reason"]


def test_the_probe_script_reports_when_each_check_started():
    checks = [probe_script.Check("a", "icmp", "x", record=("ping", "127.0.0.1"), params={"host": "127.0.0.1"}),
              probe_script.Check("b", "icmp", "x", record=("ping", "127.0.0.1"), params={"host": "127.0.0.1"})]
    nonce = probe_script.new_nonce()
    done = subprocess.run(probe_script.probe_argv(checks, 2, "gnu", nonce), capture_output=True, text=True, timeout=30, check=False)
    raw = probe_script.split_probe_output(done.stdout, 2, nonce)
    assert all(isinstance(r["start_lag_ms"], int) and 0 <= r["start_lag_ms"] < 2000 for r in raw), raw


# --- the verdict and the report --------------------------------------------------------------------------------------


def recorded(name):
    return copy.deepcopy(json.loads((CASES / f"{name}.json").read_text())["facts"])


UNTRUSTED = {"trusted": False, "reason": "checks started up to 6000 ms after the probe did", "exec_rtt_ms": 200, "max_start_lag_ms": 6000}


def test_untrusted_timings_with_a_timed_out_failure_make_the_pod_inconclusive_not_a_root_cause():
    facts = recorded("firewall.port_blocked")
    assert evaluate_cluster(facts)[0]["root_causes"] == ["firewall.port_blocked"]   # the same facts, trusted
    facts["pod_probes"][0]["timing"] = UNTRUSTED
    verdict = evaluate_cluster(facts)[0]
    assert verdict["root_causes"] == [] and verdict["findings"] == [] and verdict["healthy"] is False
    assert "6000 ms" in verdict["inconclusive"] and "tcp:api.example.test:443" in verdict["inconclusive"]
    assert {t["status"] for t in verdict["targets"]} == {"inconclusive"}
    report = build_report([{"cluster": "lab", "pods": [verdict]}])
    assert report["summary"]["inconclusive"] == 2 and report["summary"]["failing"] == 0 and report["summary"]["root_causes"] == {}
    assert all("6000 ms" in r["reason"] for r in report["results"])
    line = next(line for line in summary_lines(report) if "https://api.example.test/health" in line)
    assert line.startswith("??   lab shop/web -> https://api.example.test/health: inconclusive: the probe of the pod cannot trust")
    assert "Status: **inconclusive**" in render_markdown(report) and "No root cause concluded: the probe of the pod" in render_markdown(report)
    assert 'data-status="inconclusive"' in render_html(report)


def test_untrusted_timings_on_the_node_make_the_pod_inconclusive_too():
    facts = recorded("node.egress_broken")
    facts["pod_probes"][0]["node"]["timing"] = UNTRUSTED
    verdict = evaluate_cluster(facts)[0]
    assert verdict["root_causes"] == [] and "its node" in verdict["inconclusive"]


def test_failures_that_are_answers_stand_under_untrusted_timings():
    facts = recorded("tls.cert_expired")
    facts["pod_probes"][0]["timing"] = UNTRUSTED
    verdict = evaluate_cluster(facts)[0]
    assert verdict["root_causes"] == ["tls.cert_expired"] and verdict["inconclusive"] is None


def test_a_healthy_pod_stays_healthy_under_untrusted_timings():
    facts = recorded("healthy")
    facts["pod_probes"][0]["timing"] = UNTRUSTED
    verdict = evaluate_cluster(facts)[0]
    assert verdict["healthy"] is True and verdict["root_causes"] == ["healthy"]


def test_the_exec_round_trip_leaves_the_api_servers_own_latency_out():
    """A slow API server (latency, rate limit, retried upgrades) does not slow the checks in the pod: the detection exec is
    timed from its upgraded connection (stream_duration) when the client measured it, else as a whole call."""
    started = time.monotonic() - 4.0   # four seconds ago: the upgrade took that long
    assert pod_probe._exec_ms(ExecResult("", "", 0, stream_duration=0.12), started) == 120
    assert pod_probe._exec_ms(ExecResult("", "", 0), started) >= 4000
    assert pod_probe.timing_verdict(5, pod_probe._exec_ms(ExecResult("", "", 0, stream_duration=0.12), started), 10)["trusted"] is True
