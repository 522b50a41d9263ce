"""The in-pod scripts, run for real on this host under bash, dash and BusyBox ash against servers on 127.0.0.1."""

import http.server
import os
import shutil
import socket
import subprocess
import threading
import time

import pytest

from ansible_collections.kubediag.egress.plugins.module_utils.probe import facts as probe_facts
from ansible_collections.kubediag.egress.plugins.module_utils.probe import script as probe_script
from ansible_collections.kubediag.egress.plugins.module_utils.probe.targets import parse_targets

NONCE = "0123456789abcdef"
SHELLS = [pytest.param(["bash", "-c"], id="bash"), pytest.param(["dash", "-c"], id="dash"), pytest.param(["busybox", "sh", "-c"], id="busybox")]


class _Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = b"203.0.113.10\n" if self.path == "/ip" else b"ok\n"
        self.send_response(403 if self.path == "/forbidden" else 200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def servers():
    """An HTTP server, a TCP port nobody listens on, and a UDP echo, all on 127.0.0.1."""
    web = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    threading.Thread(target=web.serve_forever, daemon=True).start()
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.bind(("127.0.0.1", 0))

    def echo():
        while True:
            try:
                data, peer = udp.recvfrom(2048)
            except OSError:
                return
            udp.sendto(data, peer)

    threading.Thread(target=echo, daemon=True).start()
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    closed_port = closed.getsockname()[1]
    closed.close()
    yield {"http": web.server_address[1], "udp": udp.getsockname()[1], "closed": closed_port}
    web.shutdown()
    udp.close()


def run_argv(shell, argv):
    """argv is ["sh", "-c", SCRIPT, name, args...]: run it under the given shell instead of sh."""
    assert argv[:2] == ["sh", "-c"]
    if shutil.which(shell[0]) is None:
        pytest.fail(f"{shell[0]} is not installed: run `make setup` (tests/lab/apt-packages.txt)")
    return subprocess.run(shell + argv[2:], capture_output=True, text=True, timeout=60, check=False)


@pytest.mark.parametrize("shell", SHELLS)
def test_detection_finds_the_host_tools(shell):
    completed = run_argv(shell, probe_script.detect_argv())
    assert completed.returncode == 0, completed.stderr
    env = probe_script.parse_detection(completed.stdout)
    assert env.flavor("curl") == "curl" and env.flavor("ping") == "iputils" and env.flavor("dig") == "bind"
    assert env.flavor("nc") == "openbsd" and env.timeout_mode == "gnu"
    assert env.resolv_conf is not None and "lo" in env.interface_mtu
    assert (env.shell == "bash") == (shell[0] == "bash")


def _environment(shell):
    return probe_script.parse_detection(run_argv(shell, probe_script.detect_argv()).stdout)


@pytest.mark.parametrize("shell", SHELLS)
def test_probe_runs_every_check_and_frames_output_exactly(shell, servers):
    env = _environment(shell)
    targets = parse_targets([f"http://127.0.0.1:{servers['http']}/", f"http://127.0.0.1:{servers['http']}/forbidden",
                             f"tcp://127.0.0.1:{servers['closed']}", f"udp://127.0.0.1:{servers['udp']}"])
    options = probe_script.ProbeOptions(timeout=2, external_resolver=None, mtu_sizes=(1500, 576),
                                        echo_url=parse_targets([f"http://127.0.0.1:{servers['http']}/ip"])[0])
    checks = [c for c in probe_script.plan_checks(targets, env, options) if c.record is not None]
    completed = run_argv(shell, probe_script.probe_argv(checks, options.timeout, env.timeout_mode, NONCE))
    raw = probe_script.split_probe_output(completed.stdout, len(checks), NONCE)
    facts = {c.id: probe_facts.parse_check(c.kind, c.tool, r["exit_code"], r["output"], c.params) for c, r in zip(checks, raw, strict=True)}
    results = {key: (value["status"], value["error_class"]) for key, value in facts.items()}
    port = servers["http"]
    assert results[f"http:http://127.0.0.1:{port}/"] == ("ok", None)
    assert results[f"http:http://127.0.0.1:{port}/forbidden"] == ("fail", "http_status")
    assert facts[f"http:http://127.0.0.1:{port}/forbidden"]["details"]["http_code"] == 403
    assert results[f"tcp:127.0.0.1:{port}"] == ("ok", None)
    assert results[f"tcp:127.0.0.1:{servers['closed']}"] == ("fail", "refused")
    assert results[f"udp:127.0.0.1:{servers['udp']}"] == ("ok", None)
    assert results["icmp:127.0.0.1"] == ("ok", None)
    assert facts[f"egress_ip:http://127.0.0.1:{port}/ip"]["details"]["ip"] == "203.0.113.10"
    assert all(r["exit_code"] is not None and r["duration_ms"] is not None for r in raw)


@pytest.mark.parametrize("shell", SHELLS)
def test_checks_run_concurrently_under_their_own_timeout(shell):
    env = _environment(shell)
    # `sleep` stands in for a hung tool: five checks of a 2 s budget each must end in about one budget, not five.
    record = ("bashtcp", "127.0.0.1", "9")
    checks = [probe_script.Check(f"c{i}", "tcp", None, "bash", record) for i in range(5)]
    argv = probe_script.probe_argv(checks, 1, env.timeout_mode, NONCE)
    argv[2] = argv[2].replace("ck_bashtcp() {", "ck_bashtcp() { to sleep 30; return; }\nunused() {")
    started = time.monotonic()
    completed = run_argv(shell, argv)
    elapsed = time.monotonic() - started
    raw = probe_script.split_probe_output(completed.stdout, 5, NONCE)
    assert elapsed < 4, f"5 hung checks took {elapsed:.1f}s"
    assert [r["exit_code"] for r in raw] == [137] * 5


@pytest.mark.parametrize("shell", SHELLS)
def test_watchdog_bounds_checks_without_a_timeout_tool(shell):
    checks = [probe_script.Check("c", "tcp", None, "bash", ("bashtcp", "127.0.0.1", "9"))]
    argv = probe_script.probe_argv(checks, 1, "watchdog", NONCE)
    argv[2] = argv[2].replace("ck_bashtcp() {", "ck_bashtcp() { to sleep 30; return; }\nunused() {")
    started = time.monotonic()
    raw = probe_script.split_probe_output(run_argv(shell, argv).stdout, 1, NONCE)
    assert time.monotonic() - started < 4
    assert raw[0]["exit_code"] == 137


@pytest.mark.parametrize("shell", SHELLS)
@pytest.mark.parametrize("payload", ["127.0.0.1;touch${IFS}PWNED", "$(touch${IFS}PWNED)", "`touch${IFS}PWNED`", "127.0.0.1|touch${IFS}PWNED",
                                     "*", "127.0.0.1&&touch${IFS}PWNED"])
def test_record_values_are_never_evaluated(shell, payload, tmp_path):
    """Even a value that slipped past validation stays data: the script splits records on spaces with globbing off."""
    checks = [probe_script.Check("c", "icmp", None, "ping", ("ping", payload))]
    argv = probe_script.probe_argv(checks, 1, "gnu", NONCE)
    if shutil.which(shell[0]) is None:
        pytest.fail(f"{shell[0]} is not installed: run `make setup` (tests/lab/apt-packages.txt)")
    completed = subprocess.run(shell + argv[2:], capture_output=True, text=True, timeout=30, check=False, cwd=tmp_path)
    assert not os.path.exists(tmp_path / "PWNED")
    assert probe_script.split_probe_output(completed.stdout, 1, NONCE)[0]["exit_code"] not in (0, None)


@pytest.mark.parametrize("record", [("ping", "a b"), ("ping", "", "x"), ("rm", "x"), ("dig", "", "10.0.0.1"), ("ping", "a\nb")])
def test_bad_records_are_refused(record):
    with pytest.raises(ValueError, match="bad probe record"):
        probe_script.encode_record(record)


def test_split_probe_output_keeps_lines_in_order_per_check():
    stdout = "".join(f"{NONCE} {line}\n" for line in ("1 o second a", "0 o first", "1 o second b", "1 x 7 120")) + "noise\n"
    stdout += f"{NONCE} 0 x 0 30\n{NONCE} 0 o \n"
    assert probe_script.split_probe_output(stdout, 3, NONCE) == [
        {"exit_code": 0, "duration_ms": 30, "start_lag_ms": None, "output": "first\n"},
        {"exit_code": 7, "duration_ms": 120, "start_lag_ms": None, "output": "second a\nsecond b"},
        {"exit_code": None, "duration_ms": None, "start_lag_ms": None, "output": ""},
    ]


BUSYBOX_DETECTION = """tool sh /bin/sh \ntool nslookup /bin/nslookup BusyBox\ntool wget /bin/wget BusyBox\ntool nc /bin/nc BusyBox
tool ping /bin/ping BusyBox\ntool timeout /bin/timeout BusyBox\ntool sleep /bin/sleep \ntimeout gnu\nshell \nmissing resolv
hosts 127.0.0.1 localhost\nenv HTTP_PROXY http://proxy.corp:3128\nenv no_proxy .svc,.cluster.local\nca 0 /etc/ssl/cert.pem\nmtu eth0 1450
"""


def test_plan_for_busybox_uses_its_applets_and_names_missing_tools():
    env = probe_script.parse_detection(BUSYBOX_DETECTION)
    assert env.resolv_conf is None and env.hosts == ["127.0.0.1 localhost"] and env.interface_mtu == {"eth0": 1450}
    targets = parse_targets(["https://api.example.test/health", "udp://ntp.example.test:123"])
    options = probe_script.ProbeOptions(cluster_dns_ip="10.96.0.10", known_good_ip="192.0.2.1")
    plan = {c.id: c for c in probe_script.plan_checks(targets, env, options)}
    assert plan["dns.pod:api.example.test"].record == ("bbnslookup", "api.example.test", "")
    assert plan["dns.cluster:api.example.test"].record == ("bbnslookup", "api.example.test.", "10.96.0.10")
    assert plan["tcp:api.example.test:443"].record == ("bbnc", "api.example.test", "443")
    assert plan["http:https://api.example.test/health"].record == ("wget", "https://api.example.test/health", "env", "busybox")
    # curl would ignore uppercase HTTP_PROXY; the https target has no proxy, so there is no direct comparison check
    assert plan["http:https://api.example.test/health"].params["via_proxy"] is None
    assert plan["http.insecure:https://api.example.test/health"].skipped_reason == "needs curl in the container"
    assert plan["tls:api.example.test:443"].skipped_reason == "needs openssl in the container"
    assert "BusyBox nc has no UDP" in plan["udp:ntp.example.test:123"].skipped_reason
    assert "BusyBox ping cannot set DF" in plan["mtu:api.example.test"].skipped_reason


def test_proxy_env_adds_direct_and_reach_checks():
    env = probe_script.parse_detection("tool curl /usr/bin/curl curl\ntool nc /usr/bin/nc OpenBSD netcat\n"
                                       "env HTTPS_PROXY http://proxy.corp:3128\nenv NO_PROXY .internal.example\n")
    targets = parse_targets(["https://api.example.test/", "https://db.internal.example/"])
    plan = {c.id: c for c in probe_script.plan_checks(targets, env, probe_script.ProbeOptions(external_resolver=None))}
    assert plan["http:https://api.example.test/"].params["via_proxy"] == "http://proxy.corp:3128"
    assert plan["http.direct:https://api.example.test/"].record == ("curl", "https://api.example.test/", "direct", "")
    assert "http.direct:https://db.internal.example/" not in plan
    assert plan["proxy.reach:http://proxy.corp:3128"].record == ("nc", "proxy.corp", "3128")


@pytest.mark.parametrize(("host", "no_proxy", "expected"), [
    ("api.example.test", "example.test", True), ("api.example.test", ".example.test", True), ("badexample.test", "example.test", False),
    ("x.test", "*", True), ("x.test", "", False), ("x.test", "a.test, x.test", True),
])
def test_no_proxy_matching(host, no_proxy, expected):
    assert probe_script.no_proxy_matches(host, no_proxy) is expected


@pytest.mark.parametrize("separator", ["\r", "\u2028", "\x85", "\x0c", "\x1e"])
def test_a_check_output_cannot_forge_another_checks_record(separator):
    """A body or certificate name that prints a record line (with any line separator) stays output of its own check."""
    forged = f"0 x 0 1{separator}{NONCE} 0 x 0 1{separator}1 x 0 1"
    stdout = f"{NONCE} 1 o HTTP/1.1 200{separator}{forged}\n{NONCE} 1 x 7 5\n"
    raw = probe_script.split_probe_output(stdout, 2, NONCE)
    assert raw[0] == {"exit_code": None, "duration_ms": None, "start_lag_ms": None, "output": ""}
    assert raw[1]["exit_code"] == 7


@pytest.mark.parametrize("shell", SHELLS)
def test_the_script_frames_a_forged_record_inside_a_checks_output(shell):
    """End to end in each shell: a tool that prints a record line with another nonce cannot report for check 0."""
    checks = [probe_script.Check("c0", "tcp", None, "bash", ("bashtcp", "127.0.0.1", "9")),
              probe_script.Check("c1", "tcp", None, "bash", ("bashtcp", "127.0.0.1", "9"))]
    argv = probe_script.probe_argv(checks, 1, "gnu", NONCE)
    argv[2] = argv[2].replace("ck_bashtcp() {", "ck_bashtcp() { printf '0 x 0 1\\rffffffffffffffff 0 x 0 1\\n'; return 3; }\nunused() {")
    raw = probe_script.split_probe_output(run_argv(shell, argv).stdout, 2, NONCE)
    assert [r["exit_code"] for r in raw] == [3, 3]


@pytest.mark.parametrize("line", ["0 x \u0661 5", "0 x 7 \u00b2", "0 x 7 " + "9" * 5000, "99999 x 0 1", "0 x 0"])
def test_record_numbers_are_ascii_and_bounded(line):
    assert probe_script.split_probe_output(f"{NONCE} {line}\n", 1, NONCE)[0]["exit_code"] is None


@pytest.mark.parametrize(("detection", "expected"), [
    ("mtu eth0 \u00b9\u2075\u2070\u2070\n", {}), ("mtu eth0 " + "1" * 5000 + "\n", {}), ("mtu eth0 1500\n", {"eth0": 1500})])
def test_detection_numbers_never_crash(detection, expected):
    env = probe_script.parse_detection(detection + "ca \u00b2 /etc/ssl/cert.pem\n")
    assert env.interface_mtu == expected
    assert env.ca_bundles == [{"path": "/etc/ssl/cert.pem", "certificates": 0}]


def test_a_carriage_return_in_resolv_conf_does_not_forge_a_detection_line():
    env = probe_script.parse_detection("resolv nameserver 10.96.0.10\rtool curl /tmp/evil curl\n")
    assert "curl" not in env.tools
    assert env.resolv_conf == ["nameserver 10.96.0.10\rtool curl /tmp/evil curl"]


def test_credentials_a_tool_prints_in_a_url_are_redacted_before_parsing():
    stdout = (f"{NONCE} 0 o curl: (7) Failed to connect via http://alice:pw-9f3@proxy.corp:3128 and https://bob:x/y@z.test/\n"
              f"{NONCE} 0 o plain http://proxy.corp:3128/ stays\n{NONCE} 0 x 7 3\n")
    (raw,) = probe_script.split_probe_output(stdout, 1, NONCE)
    assert "pw-9f3" not in raw["output"] and "alice" not in raw["output"] and "bob" not in raw["output"]
    assert "http://REDACTED@proxy.corp:3128" in raw["output"] and "https://REDACTED@z.test/" in raw["output"]
    assert "plain http://proxy.corp:3128/ stays" in raw["output"]


@pytest.fixture(scope="module")
def stalling_server():
    """HTTP on 127.0.0.1 whose /stall sends the headers and 1000 of 100000 body bytes, then nothing (what a path MTU black hole
    does to a large download); /silent answers nothing at all; / answers a 3-byte body."""
    listener = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def serve(conn):
        with conn:
            request = conn.recv(4096).split(b" ")
            path = request[1] if len(request) > 1 else b"/"
            if path == b"/stall":
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\nConnection: close\r\n\r\n" + b"x" * 1000)
            elif path == b"/":
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nConnection: close\r\n\r\nabc")
                return
            stop.wait(30)

    def accept():
        while not stop.is_set():
            try:
                conn, _peer = listener.accept()
            except OSError:
                return
            threading.Thread(target=serve, args=(conn,), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    yield listener.getsockname()[1]
    stop.set()
    listener.close()


@pytest.fixture(scope="module")
def busybox_bin(tmp_path_factory):
    """A PATH holding only BusyBox applets, as in a busybox image."""
    bin_dir = tmp_path_factory.mktemp("busybox-bin")
    for applet in ("wget", "wc", "timeout", "sleep", "kill"):
        os.symlink(shutil.which("busybox"), bin_dir / applet)
    return str(bin_dir)


STALLED, SILENT, SMALL = ("/stall", ("fail", "timeout", "transfer", 1000)), ("/silent", ("fail", "timeout", None, 0)), ("/", ("ok", None, None, 3))
BUSYBOX_SH = ["busybox", "sh", "-c"]


@pytest.mark.parametrize(("shell", "wget", "path", "expect"), [
    *((shell.values[0], "busybox", *STALLED) for shell in SHELLS),   # a stall waits out the timeout: every shell once, the rest under ash
    (BUSYBOX_SH, "busybox", *SILENT), (BUSYBOX_SH, "busybox", *SMALL),
    (BUSYBOX_SH, "gnu", *STALLED), (BUSYBOX_SH, "gnu", *SILENT), (BUSYBOX_SH, "gnu", *SMALL),
])
def test_a_wget_download_says_how_many_body_bytes_came(shell, wget, path, expect, stalling_server, busybox_bin):
    url = f"http://127.0.0.1:{stalling_server}{path}"
    record = ("wget", url, "env", "busybox") if wget == "busybox" else ("wget", url, "env")   # BusyBox 1.35 wget -T crashes
    check = probe_script.Check("c", "http", url, "wget", record, params={"url": url, "mode": "env"})
    argv = probe_script.probe_argv([check], 1, "gnu", NONCE)
    env = dict(os.environ, PATH=busybox_bin) if wget == "busybox" else None
    completed = subprocess.run([shutil.which(shell[0]), *shell[1:], *argv[2:]], capture_output=True, text=True, timeout=30, check=False,
                               env=env)
    (raw,) = probe_script.split_probe_output(completed.stdout, 1, NONCE)
    fact = probe_facts.parse_check("http", "wget", raw["exit_code"], raw["output"], check.params)
    assert (fact["status"], fact["error_class"], fact["details"].get("timeout_stage"), fact["details"]["size_download"]) == expect, raw
    assert "kdwbytes" not in fact["summary"]
