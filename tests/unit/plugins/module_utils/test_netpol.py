"""Table-driven tests of the egress evaluator: netpol_cases/*.yml, plus the API's contract and caches.

A case file holds `cases:`, each with `objects`, then `query` + `expect` or a list of `checks` (query + expect).
`cluster: shared` prepends netpol_cases/_cluster.yml (except to a case marked `standalone: true`). A query calls `egress` unless it names another `call`.
A list nested in `objects` (a YAML alias of another case's objects) is spliced in.
"""

import importlib.util
import random
import re
from pathlib import Path

import pytest
import yaml

from ansible_collections.kubediag.egress.plugins.module_utils.cluster.netpol import PolicySet

CASES_DIR = Path(__file__).parent / "netpol_cases"
BENCH = Path(__file__).parents[3] / "bench" / "bench_netpol.py"
SHARED_CLUSTER = yaml.safe_load((CASES_DIR / "_cluster.yml").read_text())
EXPECT_KEYS = {
    "allowed", "tier", "isolated", "selected_by", "allowed_by", "denied_by", "destination_pod",
    "reasons_contain", "reasons_exclude", "udp_allowed", "tcp_allowed", "policies", "error",
}
CALLS = ("egress", "dns_egress", "policies_selecting")


def _spliced(objects):
    return [item for entry in objects or [] for item in (entry if isinstance(entry, list) else [entry])]


def _load_cases():
    params = []
    for path in sorted(CASES_DIR.glob("[!_]*.yml")):
        document = yaml.safe_load(path.read_text())
        base = SHARED_CLUSTER if document.get("cluster") == "shared" else []
        for case in document["cases"]:
            checks = case.get("checks") or [{"query": case.get("query"), "expect": case["expect"]}]
            for index, check in enumerate(checks):
                case_id = f"{path.stem}:{case['name']}" + (f"[{index}]" if len(checks) > 1 else "")
                objects = ([] if case.get("standalone") else base) + _spliced(case.get("objects"))
                params.append(pytest.param(objects, check.get("query"), check["expect"], id=case_id))
    return params


CASES = _load_cases()


def _ask(objects, query):
    policy_set = PolicySet(objects)
    if query is None:
        return None
    query = dict(query)
    call = query.pop("call", "egress")
    assert call in CALLS, f"unknown call {call!r} in case file"
    if call == "policies_selecting":
        return {"policies": policy_set.policies_selecting(query["source"])}
    return getattr(policy_set, call)(**query)


def _assert_references(actual, expected, key):
    assert len(actual) == len(expected), f"{key}: got {actual}"
    for got, want in zip(actual, expected, strict=True):
        assert {field: got[field] for field in want} == want, f"{key}: got {actual}"


def test_case_files_are_well_formed():
    assert len(CASES) >= 250
    for param in CASES:
        _objects, query, expect = param.values
        unknown = set(expect) - EXPECT_KEYS
        assert not unknown, f"{param.id}: unknown expect keys {unknown}"
        assert query is not None or "error" in expect, f"{param.id}: a case without a query must expect an error"
        assert set(expect) - {"reasons_contain", "reasons_exclude"}, f"{param.id}: expects nothing checkable"


@pytest.mark.parametrize(("objects", "query", "expect"), CASES)
def test_case(objects, query, expect):
    if "error" in expect:
        with pytest.raises(ValueError, match=re.escape(expect["error"])):
            _ask(objects, query)
        return
    answer = _ask(objects, query)
    reasons = answer.get("reasons", [])
    for key, want in expect.items():
        if key in ("allowed_by", "denied_by", "policies"):
            _assert_references(answer[key], want, key)
        elif key == "reasons_contain":
            for text in want:
                assert any(text in reason for reason in reasons), f"no reason contains {text!r}: {reasons}"
        elif key == "reasons_exclude":
            for text in want:
                assert not any(text in reason for reason in reasons), f"a reason contains {text!r}: {reasons}"
        else:
            assert answer[key] == want, f"{key}: got {answer[key]!r}, reasons: {reasons}"


def test_egress_answer_has_the_documented_fields():
    answer = PolicySet(SHARED_CLUSTER).egress("shop/web", "203.0.113.10", "tcp", "443")
    assert set(answer) == {"source", "destination", "protocol", "port", "destination_pod", "allowed", "tier", "isolated",
                           "selected_by", "allowed_by", "denied_by", "reasons"}
    assert (answer["protocol"], answer["port"], answer["allowed"], answer["tier"]) == ("TCP", 443, True, "default")


@pytest.mark.parametrize("objects", ["pods.yaml", 42, None])
def test_objects_must_be_a_list(objects):
    with pytest.raises(ValueError, match="PolicySet: objects must be a list of Kubernetes objects"):
        PolicySet(objects)


def test_unknown_kinds_are_ignored_and_counted():
    policy_set = PolicySet([*SHARED_CLUSTER, {"kind": "ConfigMap", "metadata": {"name": "x", "namespace": "shop"}}])
    assert policy_set.counts["ConfigMap"] == 1
    assert policy_set.counts["Pod"] == 9


def test_list_objects_are_unpacked_and_items_take_the_list_kind():
    pod_list = {"kind": "PodList", "items": [{"metadata": {"name": "web", "namespace": "shop", "labels": {"app": "web"}}, "status": {"podIP": "10.0.0.1"}}]}
    policy_list = {"kind": "List", "items": [{"kind": "NetworkPolicy", "metadata": {"name": "deny", "namespace": "shop"},
                                              "spec": {"podSelector": {}, "policyTypes": ["Egress"]}}]}
    assert PolicySet([pod_list, policy_list]).egress("shop/web", "192.0.2.1", "TCP", 80)["allowed"] is False


def test_answers_do_not_share_mutable_state():
    deny_all = {"kind": "NetworkPolicy", "metadata": {"name": "deny", "namespace": "shop"}, "spec": {"podSelector": {}, "policyTypes": ["Egress"]}}
    policy_set = PolicySet([*SHARED_CLUSTER, deny_all])
    first = policy_set.egress("shop/web", "192.0.2.1", "TCP", 80)
    first["selected_by"].append("tampered")
    first["reasons"].clear()
    second = policy_set.egress("shop/web", "192.0.2.1", "TCP", 80)
    assert second["selected_by"] == ["shop/deny"]
    assert second["reasons"]


def _bench_module():
    spec = importlib.util.spec_from_file_location("bench_netpol", BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_cached_answers_equal_answers_from_a_fresh_index():
    """The per-identity plans and per-selector caches must never change an answer."""
    bench = _bench_module()
    objects = bench.synthetic_cluster(namespaces=6, pods_per_namespace=15, policies_per_namespace=8, seed=7)
    queries = bench.random_queries(objects, count=300, seed=11)
    warm = PolicySet(objects)
    for query in queries:
        warm.egress(*query)
    mismatches = [query for query in queries[:60] if warm.egress(*query) != PolicySet(objects).egress(*query)]
    assert not mismatches
    outcomes = {warm.egress(*query)["tier"] for query in queries} | {warm.egress(*query)["allowed"] for query in queries}
    assert {"NetworkPolicy", True, False} <= outcomes, "the synthetic mix should exercise allows and denies"


def test_destination_cache_is_bounded(monkeypatch):
    from ansible_collections.kubediag.egress.plugins.module_utils.cluster import netpol

    monkeypatch.setattr(netpol, "_DESTINATION_CACHE_LIMIT", 10)
    policy_set = PolicySet(SHARED_CLUSTER)
    rng = random.Random(3)
    for _attempt in range(100):
        policy_set.egress("shop/web", f"198.51.100.{rng.randrange(1, 255)}", "TCP", 443)
    assert len(policy_set._destinations) <= 10


@pytest.mark.parametrize("bad_port", [{"name": "metrics"}, {"name": "metrics", "containerPort": None}, {"name": "metrics", "containerPort": "nine"},
                                      {"name": "metrics", "containerPort": 9100, "protocol": "ICMP"}])
def test_a_malformed_container_port_is_left_out_and_listed(bad_port):
    """An offline manifest the API server would refuse (a named port without containerPort) costs only that port."""
    api = {"kind": "Pod", "metadata": {"name": "api", "namespace": "shop", "labels": {"app": "api"}}, "status": {"podIP": "10.244.1.7"},
           "spec": {"containers": [{"name": "api", "ports": [bad_port, {"name": "http", "containerPort": 8080}]}]}}
    web = {"kind": "Pod", "metadata": {"name": "web", "namespace": "shop", "labels": {"app": "web"}}, "status": {"podIP": "10.244.1.8"}}
    policy = {"kind": "NetworkPolicy", "metadata": {"name": "to-api", "namespace": "shop"},
              "spec": {"podSelector": {"matchLabels": {"app": "web"}}, "policyTypes": ["Egress"],
                       "egress": [{"to": [{"podSelector": {"matchLabels": {"app": "api"}}}], "ports": [{"port": "http"}, {"port": "metrics"}]}]}}
    policy_set = PolicySet([api, web, policy])
    assert policy_set.egress("shop/web", "shop/api", "TCP", 8080)["allowed"] is True
    assert policy_set.egress("shop/web", "shop/api", "TCP", 9100)["allowed"] is False
    [skipped] = policy_set.not_checked
    assert skipped["what"] == "pod shop/api port 'metrics'" and skipped["reason"] == "invalid"
    assert "spec.containers[0].ports[0]" in skipped["message"] and "policies naming port 'metrics'" in skipped["message"]


def test_well_formed_objects_leave_nothing_unchecked():
    assert PolicySet(SHARED_CLUSTER).not_checked == []
