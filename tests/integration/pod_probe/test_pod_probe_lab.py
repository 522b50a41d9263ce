"""pod_probe against the lab through its Kubernetes API server: every bundled scenario's symptom shows in the facts."""

import json
import os
import time

import pytest

from ansible_collections.kubediag.egress.plugins.module_utils.k8s import client as kube
from ansible_collections.kubediag.egress.plugins.module_utils.probe import runner as pod_probe

pytestmark = pytest.mark.lab

PUBLIC_RESOLVER = "192.0.2.8"
ECHO_URL = "http://whoami.example.test/"
PROXY = "http://proxy.example.test:3128"


def probe(lab_dir, pod="shop/web", targets=None, timeout=2, **kwargs):
    client = kube.connect(kubeconfig=os.path.join(lab_dir, "kubeconfig"), context="lab")
    namespace, name = pod.split("/")
    options = pod_probe.build_options(timeout=timeout, external_resolver=PUBLIC_RESOLVER, echo_url=ECHO_URL,
                                      **{k: kwargs.pop(k) for k in ("test_proxy", "known_good_ip") if k in kwargs})
    return pod_probe.probe_pod(client, namespace, name, targets or ["https://api.example.test/health"], options=options, **kwargs)


def checks(facts, kind=None, prefix=None):
    return [c for c in facts["checks"] if (kind is None or c["kind"] == kind) and (prefix is None or c["id"].startswith(prefix))]


def by_id(facts, check_id):
    return next(c for c in facts["checks"] if c["id"] == check_id)


@pytest.mark.parametrize("pod", ["shop/web", "shop/tiny"])
def test_healthy_is_ok_across_the_board(labs, pod):
    facts = probe(labs.get("healthy"), pod, ["https://api.example.test/health", "udp://udp-echo.example.test:5353"],
                  known_good_ip="198.51.100.10", test_proxy=PROXY)
    statuses = {c["id"]: (c["status"], c["error_class"]) for c in facts["checks"]}
    assert facts["probed"] and facts["runner"]["mode"] == "exec"
    assert facts["resolv_conf"]["status"] == "ok" and facts["resolv_conf"]["details"]["nameserver_is_cluster_dns"] is True
    assert facts["ca_bundle"]["status"] == "ok"
    assert not [c for c in facts["checks"] if c["status"] in ("fail", "error") and c["error_class"] != "tool_limited"], statuses
    assert by_id(facts, f"egress_ip:{ECHO_URL}")["details"]["ip"] == "203.0.113.10"
    if pod == "shop/web":
        # the only skipped checks are the by-address ones, not needed when the pod resolves the name
        assert {c["error_class"] for c in facts["checks"] if c["status"] == "skipped"} == {"not_needed"} and facts["summary"]["fail"] == 0
        assert by_id(facts, "mtu:api.example.test")["details"]["largest_ok"] == 1500
    else:   # BusyBox: no openssl, no DF ping, no UDP netcat; each skip names the tool
        assert by_id(facts, "tls:api.example.test:443")["summary"] == "needs openssl in the container"
        assert "BusyBox ping cannot set DF" in by_id(facts, "mtu:api.example.test")["summary"]
        assert by_id(facts, "tcp:api.example.test:443")["status"] == "ok"
        assert by_id(facts, "dns.pod:api.example.test")["tool"] == "nslookup"


def test_healthy_distroless_needs_the_ephemeral_container(labs):
    lab = labs.get("healthy")
    refused = probe(lab, "shop/static")
    assert refused["probed"] is False and "debug_container: true" in refused["not_probed_reason"]
    assert "executable file not found" in refused["not_probed_reason"]
    facts = probe(lab, "shop/static", debug_container=True)
    assert facts["probed"] and facts["runner"]["mode"] == "ephemeral_container"
    # Only the pod's network namespace is joined; adding the container cannot be undone, so it is a change.
    assert (refused["changed"], facts["changed"]) == (False, True)
    assert facts["summary"]["fail"] == 0 and facts["summary"]["ok"] >= 8


def test_mtu_blackhole_is_detected_with_its_size(labs):
    facts = probe(labs.get("mtu.blackhole"), targets=["https://api.example.test/health", "https://api.example.test/large-response"])
    mtu = by_id(facts, "mtu:api.example.test")
    assert mtu["error_class"] == "blackhole" and mtu["details"]["blackhole"] is True
    assert mtu["details"]["largest_ok"] == 1280 and mtu["details"]["smallest_lost"] > 1280
    assert by_id(facts, "http:https://api.example.test/health")["status"] == "ok"
    large = by_id(facts, "http:https://api.example.test/large-response")
    assert large["error_class"] == "timeout" and large["details"]["time_connect"] > 0


def test_tls_expired_shows_the_expiry(labs):
    facts = probe(labs.get("tls.cert_expired"), targets=["https://expired.example.test/"])
    tls = by_id(facts, "tls:expired.example.test:443")
    assert tls["error_class"] == "tls_expired" and tls["details"]["expires_in_days"] < 0
    assert tls["details"]["not_after"] in tls["summary"]
    assert by_id(facts, "http:https://expired.example.test/")["error_class"] == "tls_expired"
    assert by_id(facts, "http.insecure:https://expired.example.test/")["status"] == "ok"


@pytest.mark.parametrize(("scenario", "host", "error_class"), [
    ("tls.hostname_mismatch", "wrong-name.example.test", "tls_hostname_mismatch"),
    ("tls.unknown_ca", "untrusted.example.test", "tls_unknown_ca"),
])
def test_tls_failures_told_apart(labs, scenario, host, error_class):
    facts = probe(labs.get(scenario), targets=[f"https://{host}/"])
    assert by_id(facts, f"tls:{host}:443")["error_class"] == error_class
    assert by_id(facts, f"http:https://{host}/")["error_class"] == error_class
    assert by_id(facts, f"http.insecure:https://{host}/")["status"] == "ok"


def test_dns_forwarding_cluster_fails_external_works(labs):
    facts = probe(labs.get("dns.upstream_forwarding"))
    assert by_id(facts, "dns.cluster:api.example.test")["error_class"] in ("servfail", "timeout")
    assert by_id(facts, "dns.pod:api.example.test")["status"] == "fail"
    external = by_id(facts, "dns.external:api.example.test")
    assert external["status"] == "ok" and external["details"]["addresses"] == ["198.51.100.10"]


def test_everything_times_out_in_about_one_timeout_and_one_confirmation(labs):
    started = time.monotonic()
    facts = probe(labs.get("node.egress_broken"), targets=["https://api.example.test/health", "tcp://api.example.test:8443",
                                                           "udp://udp-echo.example.test:5353"], timeout=2)
    elapsed = time.monotonic() - started
    # Concurrency, not a speed target (that is make bench): run one after another, these checks take over 40 s. At
    # least the 10 checks that go past cluster DNS time out; the cluster DNS ones race CoreDNS's own upstream timeout
    # (SERVFAIL or timeout, whichever comes first under load). Every timeout is confirmed in one more round, all at once,
    # with twice the timeout (about 3 s + 5 s); with that budget a tool's own lookup may now end first, on CoreDNS's
    # SERVFAIL (dns), rather than on the check's timeout.
    timed_out = [c for c in facts["checks"] if c["error_class"] in ("timeout", "dns")]
    assert all(c.get("confirmed") for c in timed_out if c["kind"] != "icmp") and facts["exec_round_trips"] == 3   # a lost ping is not re-run
    assert len(timed_out) >= 10 and elapsed < 16, f"{len(timed_out)} timeouts took {elapsed:.1f}s: " + repr(
        sorted((c["id"], c["error_class"]) for c in facts["checks"]))
    # only the cluster DNS itself still answers (for cluster names): the node has no way out
    assert [c["id"] for c in facts["checks"] if c["status"] == "ok"] == ["dns.cluster_internal:kubernetes.default.svc.cluster.local"]
    assert by_id(facts, "tcp:api.example.test:8443")["error_class"] in ("timeout", "dns")


def test_injection_is_rejected_and_nothing_runs(labs, run_module):
    lab = labs.get("healthy")
    audit = os.path.join(lab, "audit.jsonl")
    with open(audit, encoding="utf-8") as handle:
        before = sum(1 for line in handle if '"pods/exec"' in line)
    for bad in ["https://x;touch pwned/", {"host": "$(touch pwned)", "port": 443}, "https://api.example.test/`id`"]:
        result = run_module({"kubeconfig": os.path.join(lab, "kubeconfig"), "context": "lab", "namespace": "shop", "pod": "web",
                             "targets": [bad]})
        assert result["failed"] and "invalid input: targets[0]" in result["msg"], result
        assert "Traceback" not in result["msg"]
    with open(audit, encoding="utf-8") as handle:
        lines = [json.loads(line) for line in handle]
    assert sum(1 for line in lines if line.get("resource") == "pods/exec") == before
    assert not os.path.exists(os.path.join(lab, "pwned"))


def test_module_check_mode_node_probe_and_errors(labs, run_module):
    lab = labs.get("healthy")
    base = {"kubeconfig": os.path.join(lab, "kubeconfig"), "context": "lab", "namespace": "shop", "external_resolver": PUBLIC_RESOLVER,
            "targets": ["https://api.example.test/health"], "timeout": 2}
    checked = run_module({**base, "pod": "web", "node_probe": True}, check=True)
    assert not checked["failed"] and checked["changed"] is False and checked["node"] is None
    assert any("check mode" in note for note in checked["notes"])
    full = run_module({**base, "pod": "web", "node_probe": True})
    assert not full["failed"] and full["node"]["runner"]["mode"] == "node_debug_pod"
    assert full["node"]["summary"]["fail"] == 0 and full["resolv_conf"]["details"]["cluster_dns_ip"] == "10.96.0.10"
    node_pod = full["node"]["runner"]["pod"].split("/")[1]
    with open(os.path.join(lab, "audit.jsonl"), encoding="utf-8") as handle:
        writes = [json.loads(line) for line in handle if node_pod in line]
    assert [w["verb"] for w in writes if w["verb"] in ("create", "delete") and w["resource"] == "pods"] == ["create", "delete"]
    missing = run_module({**base, "pod": "nope"})
    assert missing["failed"] and missing["msg"] == "pod shop/nope not found: check the pod name and namespace (kubectl get pods -n shop)."
    container = run_module({**base, "pod": "web", "container": "sidecar"})
    assert container["failed"] and "no container named 'sidecar' (containers: web)" in container["msg"]


def test_module_probes_several_pods_in_one_run(labs, run_module):
    lab = labs.get("healthy")
    base = {"kubeconfig": os.path.join(lab, "kubeconfig"), "context": "lab", "external_resolver": PUBLIC_RESOLVER,
            "targets": ["https://api.example.test/health"], "timeout": 2}
    pods = [{"namespace": "shop", "name": name, "ref": f"shop/{name}"} for name in ("web", "nope", "tiny")]
    result = run_module({**base, "pods": pods})
    assert not result["failed"] and result["changed"] is False
    web, nope, tiny = result["results"]
    assert [web["pod"]["name"], tiny["pod"]["name"]] == ["web", "tiny"] and web["probed"] and tiny["probed"]
    assert web["summary"]["fail"] == 0 and tiny["runner"]["mode"] == "exec"
    assert nope["failed"] and nope["msg"] == "pod shop/nope not found: check the pod name and namespace (kubectl get pods -n shop)."
    none = run_module({**base, "pods": pods[1:2]})
    assert none["failed"] and none["msg"].startswith("every pod failed to be probed (1 of 1): pod shop/nope not found")
    assert "results" not in none and none["failed_pods"][0]["msg"].startswith("pod shop/nope not found")  # the rescue reads msg
    both = run_module({**base, "pods": pods[:1], "pod": "web"})
    assert both["failed"] and "mutually exclusive: pods|pod" in both["msg"]
