"""Confirm before concluding, in the lab (issue 9): a check that times out once is re-run and the verdict stays healthy; a
real failure times out twice, is confirmed, and is concluded.

The diagnosis runs through module_utils as the diagnose role wires it (diagnosis.py). The passing delay is injected in the
pod's own network namespace: its DNS queries are dropped while the first round of checks runs (as a resolver too starved
to answer within the timeout would), and let through again as soon as that round's exec returns.
"""

import subprocess

import pytest
from diagnosis import Diagnosis
from test_diagnosis_faults import diagnosis_of

from ansible_collections.kubediag.egress.plugins.module_utils.k8s.client import KubeClient

pytestmark = pytest.mark.lab
HOLD_DNS = ["OUTPUT", "-p", "udp", "--dport", "53", "-j", "DROP"]


class Recorded(Diagnosis):
    """A diagnosis that keeps the pod_probe results the verdict was drawn from."""

    probes = ()

    def probe(self, pod):
        result = super().probe(pod)
        self.probes = [*self.probes, result]
        return result


def recorded(lab, **options):
    new = diagnosis_of(lab, **options)

    def make():
        plain = new()
        run = Recorded(plain.kubeconfig, plain.context, plain.pod, plain.targets, 3, node_probe=plain.node_probe, **plain.probe_options)
        return run
    return make


def iptables(netns, action, rule):
    subprocess.run(["ip", "netns", "exec", netns, "iptables", action, *rule], check=True, capture_output=True, timeout=30)


def test_a_check_that_times_out_once_is_confirmed_healthy(labs, monkeypatch):
    lab = labs("healthy")
    subject = lab.pod("shop/web")
    real_exec, rounds = KubeClient.exec_in_pod, []

    def exec_in_pod(self, namespace, pod, argv, **kwargs):
        result = real_exec(self, namespace, pod, argv, **kwargs)
        if f"{namespace}/{pod}" == subject.ref and argv[3] == "kdprobe":
            rounds.append(argv[4])
            if len(rounds) == 1:
                iptables(subject.netns, "-D", HOLD_DNS)   # the delay has passed
        return result

    monkeypatch.setattr(KubeClient, "exec_in_pod", exec_in_pod)
    iptables(subject.netns, "-I", HOLD_DNS)
    try:
        run = recorded(lab)()
        verdicts = run.run()
    finally:
        subprocess.run(["ip", "netns", "exec", subject.netns, "iptables", "-D", *HOLD_DNS], capture_output=True, timeout=30, check=False)
    assert [v["root_causes"] for v in verdicts] == [["healthy"]]
    checks = {c["id"]: c for c in run.probes[0]["checks"]}
    first_attempt = {c["id"]: c["details"]["attempts"][0]["error_class"] for c in checks.values() if c.get("confirmed") is False}
    assert first_attempt["dns.pod:api.example.test"] == "timeout" and first_attempt["dns.external:api.example.test"] == "timeout"
    # curl resolves the name itself: its lookup failed on the same held-back resolver, so it was re-run with the DNS checks
    assert first_attempt["http:https://api.example.test/health"] == "dns"
    assert all(checks[check_id]["status"] == "ok" for check_id in first_attempt)
    # the checks, then the confirmation with twice the timeout (each round may take more than one exec: the URL budget)
    assert set(rounds) == {"3", "6"} and rounds == sorted(rounds, key=int)
    assert run.probes[0]["timing"]["trusted"] is True


def test_a_real_failure_is_confirmed_and_concluded(labs):
    lab = labs("firewall.port_blocked")
    run = recorded(lab)()
    verdicts = run.run()
    assert [v["root_causes"] for v in verdicts] == [["firewall.port_blocked"]]
    check = {c["id"]: c for c in run.probes[0]["checks"]}["tcp:api.example.test:443"]
    assert (check["status"], check["error_class"], check["confirmed"]) == ("fail", "timeout", True)
    assert [a["error_class"] for a in check["details"]["attempts"]] == ["timeout", "timeout"]
    port_80 = {c["id"]: c for c in run.probes[0]["checks"]}["tcp:api.example.test:80"]
    assert port_80["status"] == "ok" and "confirmed" not in port_80
