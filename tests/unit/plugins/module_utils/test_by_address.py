"""The by-address checks: when the pod cannot resolve a target, the same exec tests it by the address the external resolver
(else the controller) gave. Their plan, their parsing, and the script run for real under bash, dash and BusyBox ash with
`dig` stood in for by shell functions (the resolvers' answers are what this test chooses) against a local HTTP server."""

import http.server
import threading
import time

import pytest

from ansible_collections.kubediag.egress.plugins.module_utils.k8s.client import ExecResult
from ansible_collections.kubediag.egress.plugins.module_utils.probe import facts as probe_facts
from ansible_collections.kubediag.egress.plugins.module_utils.probe import runner as pod_probe
from ansible_collections.kubediag.egress.plugins.module_utils.probe import script as probe_script
from ansible_collections.kubediag.egress.plugins.module_utils.probe.targets import parse_targets

from .test_probe_script import SHELLS, run_argv

NETSHOOT = ("tool curl c curl\ntool dig d DiG 9.18\ntool nc n OpenBSD netcat\ntool ping p ping from iputils\ntool openssl o OpenSSL 3\n"
            "timeout gnu\n")
OPTIONS = probe_script.ProbeOptions(cluster_dns_ip="10.96.0.10", external_resolver="192.0.2.8")


def _plan(targets, detection=NETSHOOT, fallback=None, options=OPTIONS):
    env = probe_script.parse_detection(detection)
    return {c.id: c for c in probe_script.plan_checks(parse_targets(targets), env, options, by_address=fallback or {})}


def test_an_https_name_gets_http_and_tls_by_address():
    plan = _plan(["https://api.example.test/health", "tcp://db.example.test:5432"], fallback={"api.example.test": ("203.0.113.7", "controller")})
    head = ("ba", "api.example.test", "192.0.2.8", "203.0.113.7")
    assert "tcp.by_address:api.example.test:443" not in plan   # curl's connect stands for it
    assert plan["tcp.by_address:db.example.test:5432"].record == ("ba", "db.example.test", "192.0.2.8", "-", "nc", "5432")
    assert plan["http.by_address:https://api.example.test/health"].record == (*head, "curl", "443", "https://api.example.test/health")
    assert plan["tls.by_address:api.example.test:443"].record == (*head, "tls", "443")
    assert plan["tls.by_address:api.example.test:443"].params["fallback_source"] == "controller"
    for record in (c.record for c in plan.values() if c.record):
        probe_script.encode_record(record)   # every field is a valid positional argument


def test_no_fallback_and_no_external_resolver_are_dashes():
    options = probe_script.ProbeOptions(external_resolver=None)
    plan = _plan(["http://api.example.test/"], options=options)
    assert plan["http.by_address:http://api.example.test/"].record == ("ba", "api.example.test", "-", "-", "curl", "80", "http://api.example.test/")
    assert "tls.by_address:api.example.test:80" not in plan


def test_ip_targets_udp_targets_proxied_targets_and_pods_without_dig_get_none():
    assert not [i for i in _plan(["https://192.0.2.1/", "udp://ntp.example.test:123"]) if "by_address" in i]
    proxied = _plan(["https://api.example.test/"], detection=NETSHOOT + "env https_proxy http://proxy.corp:3128\n")
    assert "http.by_address:https://api.example.test/" not in proxied and "tcp.by_address:api.example.test:443" in proxied
    wget_only = _plan(["http://api.example.test/"], detection=NETSHOOT.replace("tool curl c curl\n", "tool wget w GNU Wget 1.21\n"))
    assert wget_only["tcp.by_address:api.example.test:80"].record[4] == "nc"
    no_dig = NETSHOOT.replace("tool dig d DiG 9.18\n", "tool nslookup n nslookup 9.18\n")
    assert not [i for i in _plan(["https://api.example.test/"], detection=no_dig) if "by_address" in i]


def test_the_node_probe_plans_none():
    env = probe_script.parse_detection(NETSHOOT)
    assert not [c for c in probe_script.plan_checks(parse_targets(["https://api.example.test/"]), env, OPTIONS) if "by_address" in c.id]


PARAMS = {"host": "api.example.test", "port": 443, "by_address": True, "external_resolver": "192.0.2.8", "fallback_address": "203.0.113.7",
          "fallback_source": "controller"}


@pytest.mark.parametrize(("first", "status", "error_class"), [
    ("resolved", "skipped", "not_needed"),
    ("noaddress", "skipped", "no_address"),
    ("address 198.51.100.4 nowhere", "error", "unknown"),
    ("address 198.51.100.4 fallback", "error", "unknown"),       # not the fallback address the controller gave
    ("address not-an-ip external", "error", "unknown"),
    ("connected", "error", "unknown"),
    ("", "error", "unknown"),
])
def test_the_first_line_decides(first, status, error_class):
    result = probe_facts.parse_check("tcp", "nc", 0, first + "\nConnection to 198.51.100.4 443 port [tcp/https] succeeded!", PARAMS)
    assert (result["status"], result["error_class"]) == (status, error_class)


def test_no_address_says_what_was_not_tested():
    result = probe_facts.parse_check("tls", "openssl s_client", 0, "noaddress", PARAMS)
    assert "192.0.2.8" in result["summary"] and "TLS to api.example.test:443 was not tested" in result["summary"]


def test_a_check_run_by_address_is_parsed_as_the_ordinary_one_and_names_its_address():
    output = "address 198.51.100.4 external\nnc: connect to 198.51.100.4 port 443 (tcp) timed out: Operation now in progress"
    result = probe_facts.parse_check("tcp", "nc", 1, output, PARAMS)
    assert (result["status"], result["error_class"]) == ("fail", "timeout")
    assert result["details"]["address"] == "198.51.100.4" and result["details"]["address_source"] == "external"
    assert "from the external resolver 192.0.2.8" in result["summary"]
    fallback = probe_facts.parse_check("tcp", "nc", 0, "address 203.0.113.7 fallback\nConnection succeeded", PARAMS)
    assert fallback["status"] == "ok" and fallback["details"]["address_source"] == "controller"
    assert "controller's resolver" in fallback["summary"]


def test_a_server_cannot_forge_the_first_line():
    """The first line is the script's own; text the server sends comes after it, whatever it says."""
    output = "address 198.51.100.4 external\nresolved\nnoaddress"
    result = probe_facts.parse_check("tcp", "nc", 1, output, PARAMS)
    assert result["details"]["address"] == "198.51.100.4" and result["status"] != "skipped"


class _Ok(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200 if self.headers.get("Host", "").startswith("api.example.test:") else 421)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def web():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Ok)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_address[1]
    server.shutdown()


# What `dig +short` prints: for the pod's resolver (+search) and for an explicit server (@...).
POD_HANGS, POD_ANSWERS = "to sleep 30", "echo 127.0.0.9"
EXTERNAL_ANSWERS = "printf 'alias.example.test.\\n127.0.0.1\\n'"   # a CNAME first, as dig +short prints it
EXTERNAL_FAILS = "echo ';; connection timed out; no servers could be reached'"


def _probe(shell, web, pod, external, controller):
    stub = (f'dig() {{ case $* in *+search*) {pod} ;; *@*) {external} ;; esac; }}\n'
            'da() {')
    # the stub replaces dig itself, so the script's own parsing of dig +short and its timeouts are what is tested

    def run(argv, timeout):
        argv = list(argv)
        argv[2] = argv[2].replace("da() {", stub, 1).replace("to dig +short", "to_dig +short", 1)
        argv[2] = argv[2].replace("to() {", 'to_dig() { dig "$@"; }\nto() {', 1)
        completed = run_argv(shell, argv)
        return ExecResult(completed.stdout, completed.stderr, completed.returncode)

    targets = parse_targets([f"http://api.example.test:{web}/x", f"tcp://tcp.example.test:{web}"])
    options = probe_script.ProbeOptions(timeout=1, external_resolver="192.0.2.8", mtu_sizes=(576,))
    started = time.monotonic()
    facts = pod_probe.probe(run, targets, options, by_address=True, resolve=lambda name: controller)
    return {c["id"]: c for c in facts["checks"]}, time.monotonic() - started


@pytest.mark.parametrize("shell", SHELLS)
def test_by_address_through_the_external_resolver(shell, web):
    checks, _seconds = _probe(shell, web, POD_HANGS, EXTERNAL_ANSWERS, [])
    http_check = checks[f"http.by_address:http://api.example.test:{web}/x"]
    assert (http_check["status"], http_check["details"]["http_code"]) == ("ok", 200)   # curl --resolve kept the Host name
    assert http_check["details"]["address"] == "127.0.0.1" and http_check["details"]["address_source"] == "external"
    assert checks[f"tcp.by_address:tcp.example.test:{web}"]["status"] == "ok"


@pytest.mark.parametrize("shell", SHELLS)
def test_by_address_falls_back_to_the_controller(shell, web):
    checks, _seconds = _probe(shell, web, POD_HANGS, EXTERNAL_FAILS, ["::1", "127.0.0.1"])
    tcp = checks[f"tcp.by_address:tcp.example.test:{web}"]
    assert tcp["status"] == "ok" and tcp["details"]["address_source"] == "controller"


@pytest.mark.parametrize("shell", SHELLS)
def test_no_address_anywhere_tests_nothing(shell, web):
    checks, _seconds = _probe(shell, web, POD_HANGS, EXTERNAL_FAILS, [])
    assert {c["error_class"] for i, c in checks.items() if "by_address" in i} == {"no_address"}


@pytest.mark.parametrize("shell", SHELLS)
def test_a_pod_that_resolves_runs_nothing_by_address(shell, web):
    checks, seconds = _probe(shell, web, POD_ANSWERS, EXTERNAL_ANSWERS, ["127.0.0.1"])
    assert {c["error_class"] for i, c in checks.items() if "by_address" in i} == {"not_needed"}
    assert seconds < 5


def test_a_controller_resolver_that_hangs_delays_the_probe_by_its_wait_only():
    release = threading.Event()

    def hangs(name):
        release.wait(30)
        return ["127.0.0.1"]

    started = time.monotonic()
    collect = pod_probe.controller_addresses(parse_targets(["https://api.example.test/"]), hangs)
    assert collect(0.2) == {} and time.monotonic() - started < 1
    release.set()


def test_the_controller_resolver_keeps_ipv4_and_skips_names_it_cannot_resolve():
    def resolve(name):
        if name == "gone.example.test":
            raise ValueError("cannot resolve gone.example.test on the controller")
        return ["2001:db8::1", "198.51.100.9"]

    collect = pod_probe.controller_addresses(parse_targets(["https://api.example.test/", "https://gone.example.test/", "https://192.0.2.1/"]),
                                             resolve)
    assert collect(5) == {"api.example.test": ("198.51.100.9", "controller")}
