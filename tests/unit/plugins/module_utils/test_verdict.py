"""The verdict rules, table-driven from facts recorded in the lab (verdict_cases/<scenario>.json, made by record.py), plus
edge cases built from those recordings: several causes at once, a pod that could not be probed, facts of the wrong shape."""

import copy
import json
from pathlib import Path

import pytest

from ansible_collections.kubediag.egress.plugins.module_utils.cluster.mesh import mesh_egress
from ansible_collections.kubediag.egress.plugins.module_utils.probe import runner as pod_probe
from ansible_collections.kubediag.egress.plugins.module_utils.probe.targets import parse_targets
from ansible_collections.kubediag.egress.plugins.module_utils.verdict.inputs import verdict_input_problem
from ansible_collections.kubediag.egress.plugins.module_utils.verdict.rules import VerdictError, evaluate_cluster, evaluate_pod

CASES = Path(__file__).parent / "verdict_cases"
RECORDINGS = {path.stem: json.loads(path.read_text()) for path in sorted(CASES.glob("*.json"))}
ARCHITECTURE = Path(__file__).parents[4] / "docs" / "architecture.md"


def _documented_ids():
    """The root-cause table of docs/architecture.md: id -> (layer, hop or None, fix order or None)."""
    rows = {}
    for line in ARCHITECTURE.read_text().splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) == 5 and cells[0].startswith("`") and cells[3] != "fix order":
            hop = None if cells[2] == "—" else cells[2]
            order = None if cells[3] == "—" else int(cells[3])
            rows[cells[0].strip("`")] = (cells[1], hop, order)
    return rows


DOCUMENTED = _documented_ids()


def _subject_verdict(case):
    verdicts = evaluate_cluster(case["facts"])
    assert len(verdicts) == 1
    return verdicts[0]


def test_every_bundled_scenario_is_recorded():
    scenarios = {p.stem for p in (Path(__file__).parents[4] / "tests" / "lab" / "scenarios").glob("*.yml")}
    assert scenarios <= set(RECORDINGS), f"record these with verdict_cases/record.py: {sorted(scenarios - set(RECORDINGS))}"


@pytest.mark.parametrize("name", sorted(RECORDINGS))
def test_recorded_scenario_gives_exactly_its_root_causes(name):
    case = RECORDINGS[name]
    verdict = _subject_verdict(case)
    assert verdict["root_causes"] == case["expect"]["root_causes"], json.dumps(verdict["findings"], indent=1)[:3000]
    for finding in verdict["findings"]:
        assert finding["evidence"], finding
        assert set(finding) >= {"id", "layer", "hop", "severity", "summary", "evidence", "not_checked", "remediation", "targets"}
        if finding["id"] != "healthy":
            assert finding["remediation"]["summary"], finding
            assert finding["targets"], finding


@pytest.mark.parametrize("name", sorted(RECORDINGS))
def test_target_results_are_consistent(name):
    verdict = _subject_verdict(RECORDINGS[name])
    for target in verdict["targets"]:
        assert [hop["hop"] for hop in target["path"]] == ["pod", "dns", "policy", "node", "nat", "internet", "endpoint"]
        failing_hops = {hop["hop"] for hop in target["path"] if hop["status"] == "fail"}
        # The hop each cause marks, as docs/architecture.md specifies it (not the code's own table).
        assert failing_hops == {DOCUMENTED[cause][1] for cause in target["root_causes"] if cause != "healthy"}
        if target["status"] == "failing":
            assert target["root_causes"]
        probed = RECORDINGS[name]["facts"]["pod_probes"][0]["probed"]
        assert bool(target["checks"]) == probed, target  # a pod that was not probed has no checks of its own


def test_healthy_is_alone():
    verdict = _subject_verdict(RECORDINGS["healthy"])
    assert verdict["healthy"] is True
    assert [f["id"] for f in verdict["findings"]] == ["healthy"]
    assert all(t["root_causes"] == ["healthy"] and t["status"] == "healthy" for t in verdict["targets"])


def test_only_the_failing_target_carries_the_cause():
    verdict = _subject_verdict(RECORDINGS["firewall.port_blocked-udp"])
    by_target = {t["target"]: t for t in verdict["targets"]}
    assert by_target["udp://udp-echo.example.test:123"]["root_causes"] == ["firewall.port_blocked"]
    assert by_target["https://api.example.test/health"] == {**by_target["https://api.example.test/health"], "status": "ok", "root_causes": []}


def test_named_remedies_are_concrete():
    forwarding = _subject_verdict(RECORDINGS["dns.upstream_forwarding"])["findings"][0]["remediation"]
    assert forwarding["params"]["current"] == "forward . 192.0.2.99" and forwarding["params"]["proposed"].startswith("forward . ")
    policy = _subject_verdict(RECORDINGS["netpol.egress_blocked"])["findings"][0]["remediation"]["params"]["definition"]
    assert policy["kind"] == "NetworkPolicy" and policy["spec"]["podSelector"] == {"matchLabels": {"app": "web"}}
    dns_rule = policy["spec"]["egress"][1]
    assert {"protocol": "UDP", "port": 53} in dns_rule["ports"]
    proxy = _subject_verdict(RECORDINGS["proxy.missing_config"])["findings"][0]["remediation"]["params"]["env"]
    assert {"name": "HTTPS_PROXY", "value": "http://proxy.example.test:3128/"} in proxy


def _with_broken_resolv_conf(case):
    """The tls.cert_expired recording, plus a resolv.conf that points nowhere for a second name: two causes, two fixes."""
    facts = copy.deepcopy(case["facts"])
    probe = facts["pod_probes"][0]
    probe["resolv_conf"] = {"status": "fail", "error_class": "not_cluster_dns", "summary": "nameserver 10.96.0.53", "details": {"cluster_dns_ip": "10.96.0.10"}}
    extra = {"url": "https://other.example.test/", "host": "other.example.test", "port": 443, "scheme": "https", "protocol": "tcp", "path": "/",
             "host_is_ip": False, "status": "fail", "check_ids": ["dns.pod:other.example.test", "dns.cluster:other.example.test"]}
    probe["targets"].append(extra)
    probe["checks"] += [
        {"id": "dns.pod:other.example.test", "kind": "dns", "target": "other.example.test", "status": "fail", "error_class": "timeout",
         "summary": "other.example.test via the pod resolver: no DNS answer before the timeout", "params": {"name": "other.example.test", "via": "pod"},
         "details": {}},
        {"id": "dns.cluster:other.example.test", "kind": "dns", "target": "other.example.test", "status": "ok", "error_class": None,
         "summary": "other.example.test via 10.96.0.10: 198.51.100.30", "params": {"name": "other.example.test", "via": "cluster"},
         "details": {"addresses": ["198.51.100.30"]}},
    ]
    return facts


def test_several_causes_are_each_reported_fix_first():
    verdicts = evaluate_cluster(_with_broken_resolv_conf(RECORDINGS["tls.cert_expired"]))
    assert verdicts[0]["root_causes"] == ["dns.resolv_conf", "tls.cert_expired"]
    by_target = {t["target"]: t["root_causes"] for t in verdicts[0]["targets"]}
    assert by_target["https://other.example.test/"] == ["dns.resolv_conf"]


def test_a_pod_that_was_not_probed_is_not_probed_not_healthy():
    facts = copy.deepcopy(RECORDINGS["healthy"]["facts"])
    probe = facts["pod_probes"][0]
    probe.update(probed=False, checks=[], not_probed_reason="container 'static' has no shell; set debug_container: true")
    verdict = evaluate_cluster(facts)[0]
    assert verdict["healthy"] is False and verdict["root_causes"] == []
    assert all(t["status"] == "not_probed" for t in verdict["targets"])
    assert any("debug_container" in line for line in verdict["not_checked"])


def test_a_pod_pod_probe_could_not_reach_gets_a_verdict_saying_why_and_the_others_stand():
    facts = copy.deepcopy(RECORDINGS["healthy"]["facts"])
    healthy = facts["pod_probes"][0]
    message = "pod shop/gone not found: check the pod name and namespace (kubectl get pods -n shop)."
    gone = pod_probe.failed_pod_result("shop", "gone", None, parse_targets([t["url"] for t in healthy["targets"]]), message)
    facts["pod_probes"] = [gone, healthy]
    assert verdict_input_problem(facts) is None
    failed, fine = evaluate_cluster(facts)
    assert failed["pod"] == "shop/gone" and failed["healthy"] is False and failed["root_causes"] == []
    assert message in failed["not_checked"] and all(t["status"] == "not_probed" for t in failed["targets"])
    assert all("no static cause" not in t["note"] for t in failed["targets"])  # nothing was read about a pod that is not there
    assert fine["pod"] == f"{healthy['pod']['namespace']}/{healthy['pod']['name']}" and fine["root_causes"] == ["healthy"]


@pytest.mark.parametrize(("facts", "message"), [
    ({"pod_probes": []}, "pod_probes holds no pod_probe result"),
    ({"pod_probes": [{"skipped": True}]}, "pod_probes holds no pod_probe result"),
    ("not a mapping", "must be a mapping"),
])
def test_bad_input_is_a_clear_error(facts, message):
    with pytest.raises(VerdictError, match=message):
        evaluate_cluster(facts)


def test_a_probe_without_targets_is_refused():
    with pytest.raises(VerdictError, match="lists no targets"):
        evaluate_pod({"pod_probe": {"pod": {"namespace": "shop", "name": "web"}, "checks": [], "targets": []}})


def test_recorded_root_cause_ids_are_documented():
    for case in RECORDINGS.values():
        assert set(case["expect"]["root_causes"]) <= set(DOCUMENTED)


def _meshed(case):
    """A rule the lab cannot replay yet (it has no Istio sidecar): the netpol.egress_blocked recording (the pod gets no
    answer from outside, its node does) with no policy in the way, and instead what mesh_egress() answers for that pod
    with an istio-proxy container under a REGISTRY_ONLY mesh and no ServiceEntry, registered as the diagnose role does."""
    facts = copy.deepcopy(case["facts"])
    facts["netpol"] = []
    pod = {"metadata": {"name": "web", "namespace": "shop", "labels": {"app": "web"}},
           "spec": {"containers": [{"name": "web", "image": "nicolaka/netshoot"}, {"name": "istio-proxy", "image": "docker.io/istio/proxyv2:1.22.3"}]}}
    registry_only = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "istio", "namespace": "istio-system"},
                     "data": {"mesh": "outboundTrafficPolicy:\n  mode: REGISTRY_ONLY\n"}}
    answer = mesh_egress(pod, "api.example.test", 443, {"mesh_config": registry_only}, ["198.51.100.10"])
    facts["mesh"] = [{"item": {"namespace": "shop", "pod": "web", "host": "api.example.test", "port": 443}, "istio_installed": True, **answer}]
    return facts


def test_mesh_registry_only_is_named_with_the_service_entry_to_create():
    verdict = evaluate_cluster(_meshed(RECORDINGS["netpol.egress_blocked"]))[0]
    assert verdict["root_causes"] == ["mesh.registry_only"], json.dumps(verdict["findings"], indent=1)[:3000]
    finding = verdict["findings"][0]
    assert any("REGISTRY_ONLY" in line for line in finding["evidence"])
    entry = finding["remediation"]["params"]["definition"]
    assert (entry["kind"], entry["spec"]["hosts"], entry["spec"]["ports"][0]["number"]) == ("ServiceEntry", ["api.example.test"], 443)


NODE_FORBIDDEN = {"probed": False, "runner": {"mode": "none", "node": "node-1"}, "checks": [], "targets": [], "summary": {},
                  "not_probed_reason": 'Pod Security baseline forbids hostNetwork in shop (pods "kdprobe-node-x" is forbidden: violates '
                                       'PodSecurity "baseline:latest": host namespaces (hostNetwork=true))'}


@pytest.mark.parametrize("name", ["node.egress_broken", "route.no_internet_path", "nat.missing_snat"])
@pytest.mark.parametrize("keep_node_checks", [False, True])
def test_a_node_part_that_was_not_probed_concludes_nothing(name, keep_node_checks):
    """Pod Security forbade the node debug pod: the causes that need the node's view are not concluded, and not_checked says why."""
    facts = copy.deepcopy(RECORDINGS[name]["facts"])
    node = copy.deepcopy(NODE_FORBIDDEN)
    if keep_node_checks:  # a node part that says probed: false is not read, whatever else it carries
        node["checks"] = facts["pod_probes"][0]["node"]["checks"]
    facts["pod_probes"][0]["node"] = node
    verdict = evaluate_cluster(facts)[0]
    assert verdict["root_causes"] == [] and verdict["healthy"] is False
    assert all(t["status"] == "unknown" for t in verdict["targets"])
    assert f"the node was not probed: {NODE_FORBIDDEN['not_probed_reason']}" in verdict["not_checked"]


def test_a_healthy_pod_stays_healthy_without_its_node():
    facts = copy.deepcopy(RECORDINGS["healthy"]["facts"])
    facts["pod_probes"][0]["node"] = copy.deepcopy(NODE_FORBIDDEN)
    verdict = evaluate_cluster(facts)[0]
    assert verdict["root_causes"] == ["healthy"]
    assert any("Pod Security baseline forbids hostNetwork in shop" in line for line in verdict["not_checked"])


def _dns_check(facts, check_id):
    return next(c for c in facts["pod_probes"][0]["checks"] if c["id"] == check_id)


def test_the_corefile_fix_proposes_only_the_resolver_the_collection_asked():
    """The pod's dig prints which server answered; a forged one never becomes the proposed upstream."""
    facts = copy.deepcopy(RECORDINGS["dns.upstream_forwarding"]["facts"])
    external = _dns_check(facts, "dns.external:api.example.test")
    external["details"]["server"] = "203.0.113.66"
    finding = next(f for f in _subject_verdict({"facts": facts})["findings"] if f["id"] == "dns.upstream_forwarding")
    assert finding["remediation"]["params"]["proposed"] == "forward . 192.0.2.8"
    external["params"]["server"] = "192.0.2.8; rm -rf /"
    finding = next(f for f in _subject_verdict({"facts": facts})["findings"] if f["id"] == "dns.upstream_forwarding")
    assert finding["remediation"]["params"]["proposed"] == "forward . /etc/resolv.conf"


@pytest.mark.parametrize("forged", ["0.0.0.0/0", "::ffff:bad", "evil.example", "1.2.3.4; id", 7, "001.2.3.4"])
def test_only_ip_addresses_become_proposed_ip_blocks(forged):
    facts = copy.deepcopy(RECORDINGS["netpol.egress_blocked"]["facts"])
    for check_id in ("dns.pod:api.example.test", "dns.cluster:api.example.test"):
        _dns_check(facts, check_id)["details"]["addresses"] = [forged, "198.51.100.10"]
    finding = next(f for f in _subject_verdict({"facts": facts})["findings"] if f["id"] == "netpol.egress_blocked")
    peers = finding["remediation"]["params"]["definition"]["spec"]["egress"][0]["to"]
    assert peers == [{"ipBlock": {"cidr": "198.51.100.10/32"}}]


@pytest.mark.parametrize(("key", "value"), [("port", None), ("port", "443"), ("port", True), ("host", 7), ("host", None)])
def test_a_target_without_a_valid_host_or_port_is_a_clear_error(key, value):
    facts = copy.deepcopy(RECORDINGS["healthy"]["facts"])
    target = facts["pod_probes"][0]["targets"][0]
    if value is None:
        target.pop(key)
    else:
        target[key] = value
    with pytest.raises(VerdictError, match=f"has no valid {key}"):
        evaluate_cluster(facts)
