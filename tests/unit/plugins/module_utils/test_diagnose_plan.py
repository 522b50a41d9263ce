"""plan_cluster_reads: the decisions the diagnose role used to make in Jinja."""

import pytest

from ansible_collections.kubediag.egress.plugins.module_utils.cluster.plan import PlanError, plan_cluster_reads, strip_invocations


def probe(name, targets, checks=(), probed=True):
    return {"probed": probed, "pod": {"namespace": "shop", "name": name}, "targets": list(targets), "checks": list(checks)}


def dns(name, addresses, status="ok"):
    return {"kind": "dns", "status": status, "params": {"name": name}, "details": {"addresses": addresses}}


API = {"host": "api.example.test", "host_is_ip": False, "port": 443, "protocol": "tcp", "status": "ok"}


def test_healthy_pods_need_no_cluster_read():
    assert plan_cluster_reads([probe("web", [API], [dns("api.example.test", ["203.0.113.10"])])])["needed"] is False


@pytest.mark.parametrize("status", ["fail", "error"])
def test_a_failed_target_needs_the_cluster_reads(status):
    assert plan_cluster_reads([probe("a", [API]), probe("b", [dict(API, status=status)])])["needed"] is True


@pytest.mark.parametrize(("udp_status", "needed"), [("skipped", True), ("ok", False)])
def test_a_udp_target_the_pod_cannot_send_to_needs_the_cluster_reads(udp_status, needed):
    """BusyBox nc has no -u: the node's UDP check may stand in only if the policy read says nothing selects the pod against it."""
    echo = {"host": "udp-echo.example.test", "host_is_ip": False, "port": 5353, "protocol": "udp", "status": "ok"}
    udp = {"kind": "udp", "status": udp_status, "params": {"host": "udp-echo.example.test", "port": 5353}}
    assert plan_cluster_reads([probe("tiny", [echo], [dns("udp-echo.example.test", ["198.51.100.14"]), udp])])["needed"] is needed


def test_a_pod_that_could_not_be_probed_needs_the_cluster_reads():
    assert plan_cluster_reads([probe("web", [], probed=False)])["needed"] is True


def test_netpol_destinations_use_the_addresses_the_pod_resolved_for_each_name():
    ip_target = {"host": "198.51.100.7", "host_is_ip": True, "port": 53, "protocol": "udp", "status": "fail"}
    unresolved = {"host": "gone.example.test", "host_is_ip": False, "port": 80, "protocol": "tcp", "status": "fail"}
    checks = [dns("api.example.test", ["203.0.113.10", "203.0.113.11"]), dns("api.example.test", ["203.0.113.10"]),
              dns("other.example.test", ["192.0.2.1"]), dns("gone.example.test", ["192.0.2.9"], status="fail")]
    plan = plan_cluster_reads([probe("web", [API, ip_target, unresolved], checks)])
    assert plan["netpol"] == [{"namespace": "shop", "pod": "web", "destinations": [
        {"to": "api.example.test", "ips": ["203.0.113.10", "203.0.113.11"], "port": 443, "protocol": "TCP"},
        {"to": "198.51.100.7", "ips": ["198.51.100.7"], "port": 53, "protocol": "UDP"}]}]
    assert plan["cluster_network_destination"] == "203.0.113.10"


def test_a_name_no_resolver_answered_is_asked_about_by_the_address_the_pod_tested_it_by():
    by_address = {"kind": "tls", "status": "fail", "params": {"host": "api.example.test", "port": 443, "by_address": True},
                  "details": {"address": "203.0.113.10", "address_source": "controller"}}
    not_run = {"kind": "http", "status": "skipped", "params": {"host": "gone.example.test", "by_address": True}, "details": {"address": None}}
    gone = dict(API, host="gone.example.test")
    plan = plan_cluster_reads([probe("web", [API, gone], [dns("api.example.test", [], status="fail"), by_address, not_run])])
    assert plan["netpol"][0]["destinations"] == [{"to": "api.example.test", "ips": ["203.0.113.10"], "port": 443, "protocol": "TCP"}]


def test_mesh_pairs_cover_every_pod_and_target_and_skipped_results_are_ignored():
    other = dict(API, host="b.example.test", port=8443)
    plan = plan_cluster_reads([probe("a", [API, other]), {"skipped": True}, probe("b", [API])])
    assert [(m["pod"], m["host"], m["port"]) for m in plan["mesh"]] == [
        ("a", "api.example.test", 443), ("a", "b.example.test", 8443), ("b", "api.example.test", 443)]
    assert plan["cluster_network_destination"] is None


def test_a_pod_pod_probe_could_not_reach_needs_the_reads_but_gets_no_netpol_or_mesh_read():
    gone = {"failed": True, "msg": "pod shop/gone not found", "probed": False, "pod": {"namespace": "shop", "name": "gone"},
            "targets": [dict(API, status="skipped")], "checks": []}
    plan = plan_cluster_reads([gone, probe("web", [API], [dns("api.example.test", ["203.0.113.10"])])])
    assert plan["needed"] is True
    assert [n["pod"] for n in plan["netpol"]] == ["web"] and [m["pod"] for m in plan["mesh"]] == ["web"]
    assert plan["cluster_network_destination"] == "203.0.113.10"


@pytest.mark.parametrize("probes, message", [("x", "must be the list"), (["oops"], r"pod_probes\[0\] is a str"),
                                             ([{"pod": "web", "targets": [], "checks": []}], r"pod_probes\[0\] lacks")])
def test_malformed_probe_results_get_a_clear_message(probes, message):
    with pytest.raises(PlanError, match=message):
        plan_cluster_reads(probes)


def test_strip_invocations_drops_the_module_arguments_at_any_depth():
    facts = {"pod_probes": [{"invocation": {"module_args": {"api_key": "s3cret"}}, "checks": [{"invocation": {}, "id": "c"}]}]}
    assert "s3cret" not in repr(strip_invocations(facts))
    assert strip_invocations(facts) == {"pod_probes": [{"checks": [{"id": "c"}]}]}


def _unprobed(name, targets, node=None):
    """A pod pod_probe reached but could not probe (no shell, no debug container): no checks, maybe its node's."""
    return dict(probe(name, [dict(t, status="skipped") for t in targets], probed=False), node=node)


def test_a_pod_that_was_not_probed_is_asked_about_by_the_addresses_its_node_resolved():
    node = {"probed": True, "checks": [dns("api.example.test", ["203.0.113.10"])]}
    plan = plan_cluster_reads([_unprobed("static", [API], node)])
    assert plan["netpol"] == [{"namespace": "shop", "pod": "static", "destinations": [
        {"to": "api.example.test", "ips": ["203.0.113.10"], "port": 443, "protocol": "TCP"}]}]
    assert plan["cluster_network_destination"] == "203.0.113.10"
    assert [(m["pod"], m["host"]) for m in plan["mesh"]] == [("static", "api.example.test")]


@pytest.mark.parametrize("node", [None, {"probed": False, "not_probed_reason": "Pod Security baseline", "checks": []},
                                  {"probed": False, "checks": [dns("api.example.test", ["203.0.113.10"])]},
                                  {"probed": True, "checks": [dns("api.example.test", ["203.0.113.10"], status="fail")]}])
def test_without_node_addresses_a_pod_that_was_not_probed_is_asked_about_by_name(node):
    """No node probe (or one that says probed: false, or failed to resolve): netpol_egress_info resolves the name on the
    controller; an IP target is still asked about as given."""
    ip_target = {"host": "198.51.100.7", "host_is_ip": True, "port": 53, "protocol": "udp"}
    plan = plan_cluster_reads([_unprobed("static", [API, ip_target], node)])
    assert plan["netpol"][0]["destinations"] == [{"to": "api.example.test", "port": 443, "protocol": "TCP"},
                                                 {"to": "198.51.100.7", "ips": ["198.51.100.7"], "port": 53, "protocol": "UDP"}]
    assert plan["cluster_network_destination"] is None


def test_a_probed_pod_is_never_asked_about_by_its_nodes_addresses():
    """The pod's own resolution failed: it stays out of the netpol question (the verdict reads the pod's view), as before."""
    node = {"probed": True, "checks": [dns("api.example.test", ["203.0.113.10"])]}
    failing = dict(probe("web", [dict(API, status="fail")], [dns("api.example.test", [], status="fail")]), node=node)
    plan = plan_cluster_reads([failing])
    assert plan["netpol"] == [{"namespace": "shop", "pod": "web", "destinations": []}]
    assert plan["cluster_network_destination"] is None
