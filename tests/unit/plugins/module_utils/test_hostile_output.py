"""Crafted and random text from the pod, end to end: split_probe_output -> facts -> verdict -> report never raises.

The pod's output is remote-controlled (an echo body, headers, certificate names, CoreDNS logs). Real tool outputs
recorded in the lab (probe_facts_cases/lab_outputs.yml) are mutated at random with the characters and fragments that
broke parsers before (line separators, Unicode digits, huge numbers, forged records and markers, markup), seeded so a
failure is reproducible from its seed. Every run must give facts and a verdict, or a VerdictError: never another
exception.
"""

import copy
import json
import random
from pathlib import Path
from xml.etree import ElementTree

import pytest
import yaml

from ansible_collections.kubediag.egress.plugins.module_utils.k8s.client import ExecResult
from ansible_collections.kubediag.egress.plugins.module_utils.probe import runner as pod_probe
from ansible_collections.kubediag.egress.plugins.module_utils.probe.targets import parse_targets
from ansible_collections.kubediag.egress.plugins.module_utils.report.render import build_report, render_all
from ansible_collections.kubediag.egress.plugins.module_utils.verdict.rules import VerdictError, evaluate_cluster

HERE = Path(__file__).parent
LAB_OUTPUTS = yaml.safe_load((HERE / "probe_facts_cases" / "lab_outputs.yml").read_text(encoding="utf-8"))
HEALTHY = json.loads((HERE / "verdict_cases" / "healthy.json").read_text(encoding="utf-8"))["facts"]
TOOLS = ["tool sh /bin/sh ", "tool bash /bin/bash ", "tool curl /usr/bin/curl curl", "tool wget /bin/wget BusyBox",
         "tool dig /usr/bin/dig DiG 9.18.28", "tool nslookup /usr/bin/nslookup BusyBox", "tool nc /usr/bin/nc OpenBSD netcat (Debian patchlevel)",
         "tool ping /bin/ping ping from iputils 20221126", "tool openssl /usr/bin/openssl OpenSSL 3.0.15", "tool timeout /usr/bin/timeout GNU",
         "tool sleep /bin/sleep "]
DETECTION_REST = ["timeout gnu", "shell bash", "resolv nameserver 10.96.0.10", "resolv search shop.svc.cluster.local svc.cluster.local",
                  "resolv options ndots:5", "hosts 127.0.0.1 localhost", "env https_proxy http://proxy.example.test:3128",
                  "env NO_PROXY .svc,.cluster.local", "env SSL_CERT_FILE /etc/ssl/cert.pem", "ca 140 /etc/ssl/certs/ca-certificates.crt",
                  "mtu eth0 1500", "mtu lo 65536"]
SPICE = ["\r", "\u2028", "\x85", "\x0c", "\x00", "\x1b[31m", "\u0661\u0662", "\u00b2", "9" * 400, "-1", "kdw|", "kdx509", "|||", "; rm -rf /",
         "<svg/onload=alert(1)>", "status: NOERROR", "IN\tA\t", "Verify return code: 99999999999 (x)", "3 packets transmitted, 9 received",
         "curl: (999999) x", "HTTP/1.1 999", "notAfter=Feb 30 99:99:99 9999 GMT", "%s%n", "{", "nan", "inf", "\ufffd", "Name:", "Address: ::",
         "frag needed and DF set (mtu = 0)", "message too long, mtu=99999999999", "subject=", "X509v3 Subject Alternative Name:", "answered"]
EXIT_CODES = [0, 0, 0, 1, 2, 5, 6, 7, 28, 35, 52, 56, 60, 124, 125, 126, 127, 137, 143, 255, -1, 999]
TARGETS = parse_targets(["https://api.example.test/health", "http://plain.example.test/", "udp://udp-echo.example.test:123",
                         "tcp://203.0.113.7:5432", "https://[2001:db8::1]/"])
OUTPUTS_BY_KIND = {}
for case in LAB_OUTPUTS:
    OUTPUTS_BY_KIND.setdefault(case["kind"], []).append(case["output"])
ALL_OUTPUTS = [case["output"] for case in LAB_OUTPUTS]


def mutate(rng, text):
    for _unused in range(rng.randint(0, 6)):
        operation = rng.randrange(6)
        position = rng.randint(0, len(text))
        if operation == 0:
            text = text[:position] + rng.choice(SPICE) + text[position:]
        elif operation == 1:
            text = text[:position] + text[position + rng.randint(1, 40):]
        elif operation == 2:
            lines = text.split("\n")
            line = rng.choice(lines)
            text = "\n".join(lines + [line] * rng.randint(1, 50))
        elif operation == 3:
            text = "".join(rng.choice(["\u0669", "99999999999999", c]) if c.isdigit() and rng.random() < 0.3 else c for c in text)
        elif operation == 4:
            text = text[:position]
        else:
            text += "\n" + "".join(rng.choice(SPICE) for _unused in range(rng.randint(1, 8)))
    return text


def crafted_pod(rng):
    """A pod whose every answer is a mutated real one; some records are forged, lost or duplicated."""
    def run(argv, timeout):
        if argv[3] == "kddetect":
            lines = rng.sample(TOOLS, rng.randint(1, len(TOOLS))) + DETECTION_REST
            return ExecResult(mutate(rng, "\n".join(lines) + "\n"), "", rng.choice([0, 0, 1]))
        nonce, records = argv[6], argv[7:]
        out = []
        for index, record in enumerate(records):
            kind = {"dig": "dns", "nslookup": "dns", "bbnslookup": "dns", "ping": "icmp", "pmtu": "mtu", "curlbody": "egress_ip",
                    "wgetbody": "egress_ip", "tls": "tls", "curl": "http", "wget": "http", "bashudp": "udp", "ncudp": "udp"}.get(record.split()[0], "tcp")
            text = mutate(rng, rng.choice(OUTPUTS_BY_KIND.get(kind) or ALL_OUTPUTS) if rng.random() < 0.8 else rng.choice(ALL_OUTPUTS))
            out += [f"{nonce} {index} o {line}" for line in text.split("\n")]
            if rng.random() < 0.9:
                out.append(f"{nonce} {index} x {rng.choice(EXIT_CODES)} {rng.randint(0, 10**9)}")
            if rng.random() < 0.1:
                out.append(f"{nonce} {rng.randint(0, 9999)} {rng.choice(['o', 'x'])} {rng.choice(SPICE)}")
        rng.shuffle(out) if rng.random() < 0.2 else None
        return ExecResult("\n".join(out) + "\n", "", rng.choice([0, 0, 0, 1, None]), error="" if rng.random() < 0.9 else "dropped")
    return run


def crafted_probe(rng):
    options = pod_probe.build_options(timeout=2, cluster_dns_ip="10.96.0.10", external_resolver="192.0.2.8", known_good_ip="198.51.100.1",
                                      echo_url="http://whoami.example.test/", test_proxy="http://proxy.example.test:3128", mtu_sizes=[1500, 1280])
    return pod_probe.probe(crafted_pod(rng), TARGETS, options)


@pytest.mark.parametrize("seed", range(150))
def test_crafted_pod_output_gives_facts_and_a_verdict_never_an_exception(seed):
    rng = random.Random(seed)
    try:
        facts = crafted_probe(rng)
    except pod_probe.KubeError as error:   # a clear error (e.g. the exec itself failed) is an answer too
        assert str(error)
        return
    json.dumps(facts)   # a result Ansible can return
    bundle = copy.deepcopy(HEALTHY)
    probe = bundle["pod_probes"][0]
    for key in ("checks", "targets", "summary", "environment", "resolv_conf", "hosts_file", "ca_bundle", "proxy_env"):
        probe[key] = facts[key]
    if rng.random() < 0.5:
        try:
            probe["node"] = {**crafted_probe(rng), "runner": {"mode": "node_debug_pod", "node": "node-1"}, "probed": True}
        except pod_probe.KubeError:
            probe["node"] = None
    try:
        verdicts = evaluate_cluster(bundle)
    except VerdictError as error:
        assert str(error)
        return
    assert verdicts and all(isinstance(v, dict) and v.get("targets") is not None for v in verdicts)
    files = render_all(build_report([{"cluster": "lab", "pods": verdicts, "error": None}]))
    ElementTree.fromstring(files["junit.xml"])  # noqa: S314 - our own output
    json.loads(files["report.json"])
