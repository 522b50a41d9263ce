"""Parsers of tool output: real outputs captured in the lab (table-driven), and the pieces that combine several."""

from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml

from ansible_collections.kubediag.egress.plugins.module_utils.probe import facts as probe_facts

CASES = yaml.safe_load((Path(__file__).parent / "probe_facts_cases" / "lab_outputs.yml").read_text(encoding="utf-8"))
# The lab's certificates are made at `kdlab up`; "now" is pinned so expires_in_days does not drift.
NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize("case", CASES, ids=lambda c: c["name"])
def test_lab_output(case):
    if case["kind"] == "tls":
        result = probe_facts.parse_tls(case["exit_code"], case["output"], case["params"], now=NOW)
    else:
        result = probe_facts.parse_check(case["kind"], case["tool"], case["exit_code"], case["output"], case["params"])
    expect = dict(case["expect"])
    assert (result["status"], result["error_class"]) == (expect.pop("status"), expect.pop("error_class")), result["summary"]
    for key, value in expect.items():
        assert result["details"][key] == value, key
    assert result["summary"]


def test_every_case_kind_is_covered():
    covered = {(c["kind"], c["expect"]["error_class"]) for c in CASES}
    for needed in [("dns", "nxdomain"), ("dns", "servfail"), ("dns", "timeout"), ("http", "tls_expired"), ("http", "tls_unknown_ca"),
                   ("http", "tls_hostname_mismatch"), ("http", "refused"), ("http", "timeout"), ("tcp", "timeout"), ("udp", "no_answer")]:
        assert needed in covered


def pmtu(size, status, error_class=None, mtu=None):
    return probe_facts.fact(status, error_class, "", size=size, mtu=mtu)


@pytest.mark.parametrize(("results", "interface_mtu", "error_class", "expect"), [
    ([pmtu(1500, "fail", "timeout"), pmtu(1400, "fail", "timeout"), pmtu(1280, "ok"), pmtu(576, "ok")], 1500, "blackhole",
     {"largest_ok": 1280, "smallest_lost": 1400, "blackhole": True, "path_mtu_estimate": 1280}),
    ([pmtu(1500, "ok"), pmtu(1280, "ok")], 1500, None, {"largest_ok": 1500, "blackhole": False}),
    # frag-needed arrives: PMTU discovery works, no black hole
    ([pmtu(1500, "fail", "frag_needed", 1400), pmtu(1280, "ok")], 1500, None, {"reported_mtu": 1400, "path_mtu_estimate": 1400}),
    # the pod's own interface is smaller: local, not a black hole
    ([pmtu(1500, "fail", "local_too_big", 1450), pmtu(1280, "ok")], 1450, None, {"blackhole": False, "interface_mtu": 1450}),
    ([pmtu(1500, "fail", "timeout"), pmtu(576, "fail", "timeout")], 1500, "no_icmp", {"blackhole": False, "largest_ok": None}),
])
def test_summarize_mtu(results, interface_mtu, error_class, expect):
    summary = probe_facts.summarize_mtu("api.example.test", results, interface_mtu)
    assert summary["error_class"] == error_class
    for key, value in expect.items():
        assert summary["details"][key] == value


@pytest.mark.parametrize(("lines", "cluster_ip", "status", "error_class", "ndots"), [
    (["nameserver 10.96.0.10", "search a.svc.cluster.local svc.cluster.local", "options ndots:5"], "10.96.0.10", "ok", None, 5),
    (["nameserver 10.96.0.53", "options ndots:5 timeout:1"], "10.96.0.10", "fail", "not_cluster_dns", 5),
    (["# nothing", "search x"], None, "fail", "no_nameserver", 1),
    (None, "10.96.0.10", "fail", "missing", None),
])
def test_resolv_conf(lines, cluster_ip, status, error_class, ndots):
    result = probe_facts.parse_resolv_conf(lines, cluster_ip)
    assert (result["status"], result["error_class"], result["details"]["ndots"]) == (status, error_class, ndots)


BUSYBOX_TIMEOUT = ";; connection timed out; no servers could be reached\n"
BIND_SERVFAIL = "Server:\t\t10.96.0.10\nAddress:\t10.96.0.10#53\n\n** server can't find api.example.test: SERVFAIL\n"
BIND_REFUSED = ";; communications error to 10.96.0.53#53: connection refused\n;; no servers could be reached\n"


@pytest.mark.parametrize(("tool", "exit_code", "output", "error_class"), [
    ("nslookup", 1, BUSYBOX_TIMEOUT, "timeout"), ("nslookup", 1, BIND_SERVFAIL, "servfail"), ("dig", 9, BIND_REFUSED, "refused"),
    ("dig", 137, "", "timeout"),
])
def test_dns_failures_told_apart(tool, exit_code, output, error_class):
    params = {"name": "api.example.test", "via": "cluster", "server": "10.96.0.10"}
    assert probe_facts.parse_check("dns", tool, exit_code, output, params)["error_class"] == error_class


@pytest.mark.parametrize(("exit_code", "output", "error_class"), [
    (56, "curl: (56) Recv failure: Connection reset by peer\nkdw|000|0.001|0.002|0|0|0.01|0|0|198.51.100.10", "reset"),
    (28, "curl: (28) Operation timed out after 2000 milliseconds with 1200 bytes received\nkdw|200|0.001|0.002|0.01|0.02|2.0|1200|0|1.2.3.4",
     "timeout"),
    (0, "kdw|403|0.001|0.002|0.01|0.02|0.03|9|0|198.51.100.17", "http_status"),
    (77, "curl: (77) error setting certificate verify locations:  CAfile: /etc/ssl/certs/ca-certificates.crt\nkdw|000|0|0|0|0|0|0|0|", "tls_ca_bundle"),
])
def test_curl_failures(exit_code, output, error_class):
    result = probe_facts.parse_check("http", "curl", exit_code, output, {"url": "https://api.example.test/", "mode": "env"})
    assert result["error_class"] == error_class
    if error_class == "timeout":
        assert result["details"]["timeout_stage"] == "transfer"


def test_tls_class_never_comes_from_a_host_name():
    assert probe_facts.tls_class_of_text("wget: can't connect to expired.example.test: Connection reset") is None


def test_ca_bundle_and_proxy_env():
    assert probe_facts.ca_bundle_fact([{"path": "/etc/ssl/cert.pem", "certificates": 0}], {})["error_class"] == "missing"
    proxy = probe_facts.proxy_env_fact({"HTTP_PROXY": "http://p:3128"}, {"uppercase_http_proxy_ignored": True})
    assert "curl ignores uppercase HTTP_PROXY" in proxy["summary"] and proxy["details"]["variables"] == {"HTTP_PROXY": "http://p:3128"}


def test_mtu_without_name_resolution_is_a_dns_failure_not_an_error():
    results = [probe_facts.fact("fail", "dns", "DF ping: Temporary failure in name resolution", size=s, mtu=None) for s in (1500, 576)]
    assert probe_facts.summarize_mtu("api.example.test", results, 1500)["error_class"] == "dns"


@pytest.mark.parametrize("option", ["ndots:\u00b2", "ndots:\u0665", "ndots:" + "9" * 5000])
def test_resolv_conf_ndots_with_non_ascii_or_huge_digits_never_crashes(option):
    fact = probe_facts.parse_resolv_conf(["nameserver 10.96.0.10", f"options {option}"], "10.96.0.10")
    assert fact["details"]["ndots"] == 1


@pytest.mark.parametrize("write_out", ["kdw|200|inf|0|0|0|0|inf|0|1.2.3.4", "kdw|\u0662\u0660\u0660|0|0|0|0|0|\u0665|0|1.2.3.4",
                                       "kdw|" + "2" * 5000 + "|0|0|0|0|0|" + "9" * 5000 + "|0|1.2.3.4"])
def test_curl_write_out_with_hostile_numbers_never_crashes(write_out):
    fact = probe_facts.parse_curl(0, write_out, {"url": "http://x/", "mode": "env"})
    assert fact["status"] in ("ok", "fail", "error")
    assert fact["details"]["size_download"] == 0


def _dig(*answers, server="10.96.0.10"):
    lines = [";; ->>HEADER<<- opcode: QUERY, status: NOERROR, id: 1", ";; ANSWER SECTION:"]
    lines += [f"api.example.test.\t60\tIN\tA\t{answer}" for answer in answers]
    return "\n".join([*lines, f";; SERVER: {server}#53({server}) (UDP)", ""])


DIG_PARAMS = {"name": "api.example.test", "via": "external", "server": "192.0.2.8"}


@pytest.mark.parametrize("answer", ["1.2.3.4; rm -rf /", "::ffff:bad", "::ffff:1.2.3.4", "evil.example.", "1.2.3.4/0", "0x7f.1",
                                    "001.2.3.4", "\u0661.2.3.4", "1.2.3.4 5.6.7.8", "<svg/onload=alert(1)>"])
def test_dig_answers_that_are_not_ipv4_addresses_are_never_kept(answer):
    result = probe_facts.parse_dig(0, _dig(answer), DIG_PARAMS)
    assert result["details"]["addresses"] == []
    assert (result["status"], result["error_class"]) == ("error", "not_an_ip")


def test_dig_keeps_only_the_real_addresses_of_a_mixed_answer():
    result = probe_facts.parse_dig(0, _dig("evil.example.", "198.51.100.10", "1.2.3.4; id", "198.51.100.10", "198.51.100.11"), DIG_PARAMS)
    assert result["status"] == "ok" and result["details"]["addresses"] == ["198.51.100.10", "198.51.100.11"]
    assert "3 more answer(s) not kept" in result["summary"]


def test_ten_thousand_dig_answers_are_capped():
    answers = [f"10.{i // 65536}.{i // 256 % 256}.{i % 256}" for i in range(10_000)]
    result = probe_facts.parse_dig(0, _dig(*answers), DIG_PARAMS)
    assert result["details"]["addresses"] == answers[:32]
    assert len(result["summary"]) < 1000


def test_the_resolver_named_is_the_one_asked_not_the_one_dig_printed():
    assert probe_facts.parse_dig(0, _dig("198.51.100.10", server="203.0.113.66"), DIG_PARAMS)["details"]["server"] == "192.0.2.8"
    pod = {"name": "api.example.test", "via": "pod", "server": None}
    assert probe_facts.parse_dig(0, _dig("198.51.100.10", server="evil;id"), pod)["details"]["server"] is None
    assert probe_facts.parse_dig(0, _dig("198.51.100.10"), pod)["details"]["server"] == "10.96.0.10"


@pytest.mark.parametrize(("output", "rtt"), [
    ("1 packets transmitted, 1 received, 0% packet loss\nrtt min/avg/max/mdev = 0.0.023/0.023.023/1/0", 0.0),
    ("1 packets transmitted, 1 received\nrtt min/avg/max/mdev = 0.020/0.023/0.030/0.001 ms", 0.023),
])
def test_ping_round_trip_with_crafted_numbers_never_crashes(output, rtt):
    assert probe_facts.parse_ping(0, output, {"host": "api.example.test"})["details"]["rtt_ms"] == rtt


@pytest.mark.parametrize("output", ["kdw|200|0.1|0.1|0.1|0.1|0.1|45|0|198.51.100.10|extra|fields",
                                    "kdw|200|0.1|0.1|0.1|0.1|0.1|45|0|6.6.6.6\nkdw|000|0|0|0|0|0|0|0|"])
def test_curl_write_out_with_extra_fields_or_a_forged_earlier_line_never_crashes(output):
    result = probe_facts.parse_curl(7, output, {"url": "https://api.example.test/", "mode": "env"})
    assert result["details"]["remote_ip"] in ("198.51.100.10", None)


# BusyBox 1.35 wget through PROBE_SCRIPT's ck_wget against a local server that sends the headers and 1000 of 100000 body
# bytes, then nothing (captured on this host); then the same with lines a server could try to forge the byte count with.
BUSYBOX_WGET_STALLED = ("Connecting to 127.0.0.1:34325 (127.0.0.1:34325)\n  HTTP/1.1 200 OK\n  Content-Length: 100000\n  Connection: close\n"
                        "  \nwriting to stdout\n-                      1% |                                |  1000  0:01:39 ETA\n"
                        "-                      1% |                                |  1000  0:03:18 ETA\nKilled\nkdwbytes 1000")


@pytest.mark.parametrize("output", [
    BUSYBOX_WGET_STALLED,
    BUSYBOX_WGET_STALLED.replace("  Connection: close", "  kdwbytes 999999\n  Connection: close"),   # a header: indented by wget
    "kdwbytes 5\n" + BUSYBOX_WGET_STALLED,                                                          # the last count is the script's
    BUSYBOX_WGET_STALLED.replace("Killed", "Killed\nkdwbytes 99999999999999999999"),               # not a bounded ASCII count
])
def test_a_stalled_wget_download_counts_only_the_scripts_last_byte_count(output):
    result = probe_facts.parse_wget(137, output, {"url": "http://127.0.0.1:34325/x", "mode": "env"})
    assert (result["status"], result["error_class"]) == ("fail", "timeout")
    assert result["details"]["timeout_stage"] == "transfer" and result["details"]["size_download"] == 1000
    assert result["summary"] == "HTTP http://127.0.0.1:34325/x: the download stalled after 1000 bytes of the body"


def test_a_wget_output_without_a_byte_count_has_none():
    """Facts recorded before the body was counted, or a container without wc: the size is unknown, not 0."""
    result = probe_facts.parse_wget(137, "Connecting to api.example.test (198.51.100.10:80)\nKilled", {"url": "http://api.example.test/x"})
    assert (result["error_class"], result["details"]["size_download"], result["details"]["timeout_stage"]) == ("timeout", None, None)
    assert result["summary"] == "HTTP http://api.example.test/x: no response before the timeout"
