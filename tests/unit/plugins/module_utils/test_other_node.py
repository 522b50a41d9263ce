"""Compare with another node: which node is chosen, when it is probed at all, its debug pod's lifecycle, and what the
verdict concludes from it (other node gets out / fails too / could not be probed)."""

import copy
import json
import time
from pathlib import Path

import pytest

from ansible_collections.kubediag.egress.plugins.module_utils.k8s.client import KubeError
from ansible_collections.kubediag.egress.plugins.module_utils.probe import runner as pod_probe
from ansible_collections.kubediag.egress.plugins.module_utils.probe.targets import parse_targets
from ansible_collections.kubediag.egress.plugins.module_utils.verdict.rules import evaluate_cluster

TARGET = "https://api.example.test/health"
MAIN = f"http:{TARGET}"
OPTIONS = pod_probe.build_options(timeout=1)
CASES = Path(__file__).parent / "verdict_cases"


def node(name, zone="eu-west-1a", ready=True, unschedulable=False, taints=(), os_name="linux", deleting=False):
    metadata = {"name": name, "labels": {"kubernetes.io/os": os_name, "topology.kubernetes.io/zone": zone}}
    if deleting:
        metadata["deletionTimestamp"] = "2026-12-02T10:00:00Z"
    return {"metadata": metadata, "spec": {"unschedulable": unschedulable, "taints": list(taints)},
            "status": {"conditions": [{"type": "Ready", "status": "True" if ready else "False"}]}}


# --- the choice ---------------------------------------------------------------------------------------------------------

def test_the_pods_node_and_nodes_that_cannot_take_the_probe_are_never_chosen():
    nodes = [node("a-notready", ready=False), node("b-cordoned", unschedulable=True), node("c-windows", os_name="windows"),
             node("d-deleting", deleting=True), node("pod-node"), node("z-fine")]
    choice = pod_probe.choose_other_node(nodes, "pod-node")
    assert choice["node"] == "z-fine" and choice["nodes_in_cluster"] == 6
    assert "1 of the cluster's 5 other nodes" in choice["why"]


def test_another_zone_is_preferred_then_an_untainted_node_then_the_name():
    nodes = [node("pod-node", zone="eu-west-1a"), node("a-same-zone", zone="eu-west-1a"),
             node("c-other-zone-tainted", zone="eu-west-1b", taints=[{"key": "dedicated", "effect": "NoSchedule"}]),
             node("d-other-zone", zone="eu-west-1c"), node("e-other-zone", zone="eu-west-1b")]
    choice = pod_probe.choose_other_node(nodes, "pod-node")
    assert choice["node"] == "d-other-zone"
    assert (choice["zone"], choice["pod_node_zone"]) == ("eu-west-1c", "eu-west-1a")
    assert "in zone eu-west-1c, not eu-west-1a like pod-node" in choice["why"] and "untainted" in choice["why"]
    # the same inputs in another order give the same node: every pod of the node compares with the same one
    assert pod_probe.choose_other_node(list(reversed(nodes)), "pod-node")["node"] == "d-other-zone"


def test_a_tainted_node_in_another_zone_beats_an_untainted_one_in_the_same_zone():
    nodes = [node("pod-node"), node("a-same"), node("b-other", zone="eu-west-1b", taints=[{"key": "gpu", "effect": "NoExecute"}])]
    choice = pod_probe.choose_other_node(nodes, "pod-node")
    assert choice["node"] == "b-other" and "tainted (no untainted node fits)" in choice["why"]


def test_without_zone_labels_an_untainted_node_is_preferred():
    nodes = [{"metadata": {"name": n}, "spec": spec, "status": {"conditions": [{"type": "Ready", "status": "True"}]}}
             for n, spec in (("pod-node", {}), ("a-control-plane", {"taints": [{"key": "node-role.kubernetes.io/control-plane",
                                                                               "effect": "NoSchedule"}]}), ("b-worker", {}))]
    choice = pod_probe.choose_other_node(nodes, "pod-node")
    assert choice["node"] == "b-worker" and "zone" not in choice["why"]


def test_no_fitting_node_says_which_nodes_were_left_out_and_why():
    choice = pod_probe.choose_other_node([node("pod-node"), node("b", ready=False), node("c", unschedulable=True)], "pod-node")
    assert choice["node"] is None and choice["nodes_in_cluster"] == 3
    assert choice["why"] == "no other node of the cluster can be compared with pod-node (b not Ready, c cordoned (unschedulable))"


def test_a_single_node_cluster_has_no_other_node():
    choice = pod_probe.choose_other_node([node("pod-node")], "pod-node")
    assert choice["node"] is None and choice["nodes_in_cluster"] == 1
    assert choice["why"].endswith("the cluster has no other node")


# --- when it is needed ------------------------------------------------------------------------------------------------

def facts(*statuses):
    """Probe facts whose checks have these (id, status) pairs."""
    return {"probed": True, "checks": [{"id": check_id, "kind": check_id.split(":")[0].split(".")[0], "status": status}
                                       for check_id, status in statuses]}


TARGETS = parse_targets([TARGET, "tcp://db.example.test:5432"])


@pytest.mark.parametrize(("pod", "node_facts", "needed"), [
    (facts((MAIN, "fail")), facts((MAIN, "fail")), True),
    (facts((MAIN, "ok"), ("tcp:db.example.test:5432", "fail")), facts(("tcp:db.example.test:5432", "error")), True),
    (facts((MAIN, "fail")), facts((MAIN, "ok")), False),                      # the node gets there: a pod-side fault
    (facts((MAIN, "ok"), ("icmp:api.example.test", "fail")), facts(("icmp:api.example.test", "fail")), False),  # ping blocked, HTTP fine
    (facts((MAIN, "fail"), ("tcp:db.example.test:5432", "ok")), facts(("tcp:db.example.test:5432", "fail"), (MAIN, "ok")), False),
    (facts((MAIN, "fail")), {"probed": False, "checks": []}, False),         # the node could not be probed
    (facts((MAIN, "fail")), None, False),                                    # node_probe off
])
def test_another_node_is_needed_only_when_pod_and_node_fail_the_same_target(pod, node_facts, needed):
    assert pod_probe.needs_other_node(pod, node_facts, TARGETS) is needed


# --- probe_pod against a fake cluster: which writes, which cleanup ----------------------------------------------------

class FakeCluster:
    """Pod shop/web on node-2; nodes from `nodes`; the probe facts of a node's debug pod come from `node_ok` (node -> does it
    get out); `refuse` maps a node to the KubeError its debug pod's create gets; every write is recorded."""

    def __init__(self, nodes, node_ok, pod_ok=False, refuse=None, nodes_error=None, app_pods=None):
        self.nodes, self.node_ok, self.pod_ok, self.refuse, self.nodes_error = nodes, node_ok, pod_ok, refuse or {}, nodes_error
        self.app_pods = app_pods or {"web": "node-2"}   # application pod -> its node
        self.pods, self.writes, self.requests, self.exec_reruns = {}, [], [], 0

    def request(self, method, path, what="", query=None, body=None, **kwargs):
        self.requests.append((method, path))
        parts = path.split("/")
        if path == "/api/v1/nodes":
            if self.nodes_error:
                raise self.nodes_error
            return {"items": self.nodes}
        if parts[-2] == "services":
            return {"spec": {"clusterIP": "10.96.0.10"}}
        if method == "DELETE":
            self.writes.append(("DELETE", parts[-1]))
            self.pods.pop(parts[-1], None)
            return {}
        if parts[-1] == "pods":
            key, value = query["labelSelector"].split("=")
            return {"items": [p for p in self.pods.values() if p["metadata"]["labels"].get(key) == value]}
        if parts[-1] in self.app_pods:
            return {"metadata": {"name": parts[-1], "namespace": "shop"},
                    "spec": {"containers": [{"name": "app"}], "nodeName": self.app_pods[parts[-1]]},
                    "status": {"phase": "Running", "podIP": "10.244.1.2"}}
        return self.pods[parts[-1]]

    def create(self, path, body, what=""):
        target = body["spec"]["nodeName"]
        if target in self.refuse:
            raise self.refuse[target]
        self.writes.append(("POST", body["metadata"]["name"], target))
        self.pods[body["metadata"]["name"]] = {**body, "status": {"phase": "Running"}}
        return body

    def facts_of(self, pod_name):
        # shop/web gets out only when pod_ok says so; another application pod, and a debug pod, where its node does
        node_name = self.app_pods.get(pod_name) or self.pods[pod_name]["spec"]["nodeName"]
        ok = self.pod_ok if pod_name == "web" else self.node_ok[node_name]
        return {**facts((MAIN, "ok" if ok else "fail")), "targets": [], "summary": {}}

    def left(self):
        return sorted(name for name, pod in self.pods.items() if name.startswith("kdprobe-node-"))


@pytest.fixture
def fake_exec(monkeypatch):
    """probe() answers from the cluster's facts_of for the pod it was asked to run in."""
    monkeypatch.setattr(pod_probe, "_exec_runner", lambda client, namespace, pod, container: (client, pod))
    monkeypatch.setattr(pod_probe, "probe", lambda run, targets, options, by_address=False: run[0].facts_of(run[1]))


def probe_web(cluster, **kwargs):
    return pod_probe.probe_pod(cluster, "shop", "web", [TARGET], options=pod_probe.build_options(timeout=1), node_probe=True, **kwargs)


TWO_NODES = [node("node-1"), node("node-2")]


def test_when_pod_and_node_fail_another_node_is_probed_and_every_debug_pod_deleted(fake_exec):
    cluster = FakeCluster(TWO_NODES, {"node-1": True, "node-2": False})
    result = probe_web(cluster)
    other = result["other_node"]
    assert other["probed"] and other["runner"]["node"] == "node-1" and other["choice"]["node"] == "node-1"
    created = [w for w in cluster.writes if w[0] == "POST"]
    assert [node_name for _post, _name, node_name in created] == ["node-2", "node-1"]
    assert len({name for _post, name, _node in created}) == 2 and all(name.startswith("kdprobe-node-") for _p, name, _n in created)
    assert sorted(name for verb, name, *_rest in cluster.writes if verb == "DELETE") == sorted(name for _p, name, _n in created)
    assert cluster.left() == []
    assert any(n.startswith("the pod and node node-2 fail a target: compared with node node-1") for n in result["notes"])


def test_in_a_run_of_several_pods_the_other_node_shares_the_probe_of_a_pod_on_it(fake_exec, monkeypatch):
    cluster = FakeCluster(TWO_NODES, {"node-1": True, "node-2": False}, app_pods={"web": "node-2", "api": "node-1"})
    real_probe_node = pod_probe.probe_node

    def slow_probe_node(*args, **kwargs):
        time.sleep(0.3)   # the node-1 probe of shop/api is still running when shop/web asks for node-1
        return real_probe_node(*args, **kwargs)

    monkeypatch.setattr(pod_probe, "probe_node", slow_probe_node)
    pods = [{"namespace": "shop", "name": "web"}, {"namespace": "shop", "name": "api"}]
    web, api = pod_probe.probe_pods(cluster, pods, [TARGET], options=OPTIONS, node_probe=True)["results"]
    assert web["other_node"]["probed"] and web["other_node"]["runner"]["node"] == "node-1" and api["other_node"] is None
    assert sorted(node_name for verb, _name, node_name in (w for w in cluster.writes if w[0] == "POST")) == ["node-1", "node-2"]
    assert "choice" not in api["node"]   # the shared facts were not changed for the pod of node-1
    assert cluster.left() == []


def test_a_healthy_pod_costs_no_other_node_and_no_node_list(fake_exec):
    cluster = FakeCluster(TWO_NODES, {"node-1": True, "node-2": True}, pod_ok=True)
    result = probe_web(cluster)
    assert result["other_node"] is None
    assert ("GET", "/api/v1/nodes") not in cluster.requests and len([w for w in cluster.writes if w[0] == "POST"]) == 1


def test_a_pod_only_fault_costs_no_other_node(fake_exec):
    cluster = FakeCluster(TWO_NODES, {"node-1": True, "node-2": True})
    assert probe_web(cluster)["other_node"] is None and ("GET", "/api/v1/nodes") not in cluster.requests


def test_node_probe_off_and_check_mode_probe_no_other_node(fake_exec):
    cluster = FakeCluster(TWO_NODES, {"node-1": True, "node-2": False})
    assert pod_probe.probe_pod(cluster, "shop", "web", [TARGET], options=pod_probe.build_options(timeout=1))["other_node"] is None
    assert probe_web(cluster, check_mode=True)["other_node"] is None
    assert cluster.writes == [] and ("GET", "/api/v1/nodes") not in cluster.requests


PSA = KubeError('pods "kdprobe-node-x" is forbidden: violates PodSecurity "baseline:latest": host namespaces (hostNetwork=true)',
                status=403, server_message='pods "kdprobe-node-x" is forbidden: violates PodSecurity "baseline:latest": host namespaces')


@pytest.mark.parametrize(("cluster_kwargs", "reason"), [
    ({"refuse": {"node-1": PSA}}, "node node-1 could not be probed: Pod Security baseline forbids hostNetwork in shop"),
    ({"refuse": {"node-1": KubeError("HTTP 500 etcd unavailable", status=500)}}, "node node-1 could not be probed: HTTP 500"),
    ({"nodes_error": KubeError('nodes is forbidden: User "viewer" cannot list resource "nodes"', status=403)},
     "the cluster's nodes could not be listed to pick another one (nodes is forbidden"),
])
def test_an_other_node_that_cannot_be_probed_says_why_and_the_rest_stands(fake_exec, cluster_kwargs, reason):
    cluster = FakeCluster(TWO_NODES, {"node-1": True, "node-2": False}, **cluster_kwargs)
    result = probe_web(cluster)
    other = result["other_node"]
    assert other["probed"] is False and other["not_probed_reason"].startswith(reason), other["not_probed_reason"]
    assert other["checks"] == [] and result["node"]["probed"] and result["probed"]
    assert cluster.left() == []
    assert any(n.startswith("the pod and node node-2 fail a target; no other node compared: " + reason) for n in result["notes"])


def test_an_other_node_debug_pod_that_never_starts_is_deleted(fake_exec, monkeypatch):
    cluster = FakeCluster(TWO_NODES, {"node-1": True, "node-2": False})
    create = cluster.create

    def create_pending_on_node_1(path, body, what=""):
        answer = create(path, body, what)
        if body["spec"]["nodeName"] == "node-1":
            cluster.pods[body["metadata"]["name"]]["status"] = {"phase": "Pending"}
        return answer

    real_probe_node = pod_probe.probe_node
    cluster.create = create_pending_on_node_1
    monkeypatch.setattr(pod_probe, "probe_node", lambda *args: real_probe_node(*args, start_timeout=0.3))
    result = probe_web(cluster)
    assert result["other_node"]["probed"] is False
    assert "did not start within 0.3s" in result["other_node"]["not_probed_reason"], result["other_node"]["not_probed_reason"]
    assert result["node"]["probed"] and cluster.left() == []


# --- the verdict's three cases ----------------------------------------------------------------------------------------

RECORDED = json.loads((CASES / "node.egress_broken-other-node.json").read_text())


def verdict_with(other_node):
    bundle = copy.deepcopy(RECORDED["facts"])
    bundle["pod_probes"][0]["other_node"] = other_node
    return evaluate_cluster(bundle)[0]


def recorded_other():
    return copy.deepcopy(RECORDED["facts"]["pod_probes"][0]["other_node"])


def test_other_node_gets_out_names_the_pods_node_with_both_sides_as_evidence():
    verdict = verdict_with(recorded_other())
    assert verdict["root_causes"] == ["node.egress_broken"]
    [finding] = verdict["findings"]
    assert finding["remediation"]["params"]["node"] == "node-2" and "node node-2 cannot reach anything" in finding["summary"]
    assert any(line.startswith("from node node-2: ") for line in finding["evidence"])
    assert any(line.startswith("from node node-1 (another node of the cluster): ") and "HTTP 200" in line for line in finding["evidence"])
    assert any(line.startswith("node node-1 was chosen: Ready and schedulable") for line in finding["evidence"])
    assert finding["not_checked"] == []


def test_another_zone_that_gets_out_does_not_rule_out_the_pods_zone():
    other = recorded_other()
    other["choice"].update(zone="eu-west-1b", pod_node_zone="eu-west-1a")
    [finding] = verdict_with(other)["findings"]
    assert finding["id"] == "node.egress_broken" and "or shared by its zone eu-west-1a" in finding["summary"]
    assert any("every node of eu-west-1a" in line for line in finding["not_checked"])


def _failing(probe_facts):
    """The other node's facts with every check failing as the pod's node's do."""
    node_checks = {c["id"]: c for c in RECORDED["facts"]["pod_probes"][0]["node"]["checks"]}
    probe_facts["checks"] = [copy.deepcopy(node_checks.get(c["id"], c)) for c in probe_facts["checks"]]
    for check in probe_facts["checks"]:
        if check["status"] == "ok":
            check.update(status="fail", error_class="timeout", summary=f"{check['id']}: timed out")
    return probe_facts


def test_every_node_failing_is_the_clusters_path_naming_both_nodes():
    verdict = verdict_with(_failing(recorded_other()))
    assert verdict["root_causes"] == ["route.no_internet_path"]
    [finding] = verdict["findings"]
    assert "nor its node node-2 nor node node-1 reaches anything" in finding["summary"]
    assert any(line.startswith("from node node-1 (another node of the cluster): ") for line in finding["evidence"])


def test_every_node_failing_without_names_is_each_nodes_egress():
    bundle = copy.deepcopy(RECORDED["facts"])
    probe_result = bundle["pod_probes"][0]
    for check in probe_result["checks"]:    # names do not resolve either: CoreDNS's upstream is outside too
        if check["kind"] == "dns" and check["status"] == "ok" and check["id"] != "dns.cluster_internal":
            check.update(status="fail", error_class="timeout", summary=f"{check['id']}: timed out")
    probe_result["other_node"] = _failing(recorded_other())
    verdict = evaluate_cluster(bundle)[0]
    assert verdict["root_causes"] == ["node.egress_broken"]
    assert verdict["findings"][0]["summary"].startswith("nodes node-2, node-1 themselves cannot reach anything")


@pytest.mark.parametrize("reason", [
    "node node-1 could not be probed: Pod Security baseline forbids hostNetwork in shop",
    "the cluster's nodes could not be listed to pick another one (nodes is forbidden)",
    "no other node of the cluster can be compared with node-2 (node-1 not Ready)",
])
def test_an_other_node_that_could_not_be_probed_gives_a_not_checked_and_no_node_or_path_claim(reason):
    choice = None if "listed" in reason else {"node": None if "Ready" in reason else "node-1", "nodes_in_cluster": 2, "why": reason}
    verdict = verdict_with({"probed": False, "not_probed_reason": reason, "choice": choice, "runner": {"mode": "none"}, "checks": [],
                            "targets": [], "summary": {}})
    assert verdict["root_causes"] == [] and verdict["healthy"] is False
    assert all(t["status"] == "unknown" for t in verdict["targets"])
    assert any(line.startswith(f"no other node was compared with node node-2 ({reason})") for line in verdict["not_checked"])


def test_a_single_node_cluster_concludes_as_before():
    verdict = verdict_with({"probed": False, "not_probed_reason": "no other node of the cluster can be compared with node-2: the cluster "
                            "has no other node", "choice": {"node": None, "nodes_in_cluster": 1}, "runner": {"mode": "none"},
                            "checks": [], "targets": [], "summary": {}})
    assert verdict["root_causes"] == ["route.no_internet_path"]


def test_without_the_comparison_names_from_coredns_on_another_node_do_not_blame_the_subnet():
    """Facts without other_node (recorded before it existed) whose CoreDNS runs on another node: neither cause is concluded."""
    bundle = copy.deepcopy(RECORDED["facts"])
    del bundle["pod_probes"][0]["other_node"]
    assert [p["node"] for p in bundle["coredns"]["pods"]] == ["node-1"]
    verdict = evaluate_cluster(bundle)[0]
    assert verdict["root_causes"] == []
    assert any("came through CoreDNS on node node-1" in line for line in verdict["not_checked"])


def test_without_the_comparison_coredns_on_the_pods_node_concludes_as_before():
    bundle = copy.deepcopy(RECORDED["facts"])
    del bundle["pod_probes"][0]["other_node"]
    for pod in bundle["coredns"]["pods"]:
        pod["node"] = "node-2"
    assert evaluate_cluster(bundle)[0]["root_causes"] == ["route.no_internet_path"]


def test_the_finding_says_where_the_names_were_resolved():
    [finding] = verdict_with(recorded_other())["findings"]
    assert "names resolve through CoreDNS on node node-1, not on node node-2" in finding["evidence"]


def test_the_report_rows_show_the_other_nodes_checks():
    [target] = verdict_with(recorded_other())["targets"]
    rows = {row["name"]: row["status"] for row in target["checks"]}
    assert rows[MAIN] == "fail" and rows[f"node {MAIN}"] == "fail" and rows[f"other node node-1 {MAIN}"] == "pass"


def test_odd_node_objects_are_left_out_without_a_traceback():
    odd = [None, "node-9", {"metadata": None}, {"metadata": "x"}, {"metadata": {"name": "no-status"}},
           {"metadata": {"name": "null-parts", "labels": None}, "spec": None, "status": {"conditions": [None, "Ready"]}},
           {"metadata": {"name": "ok", "labels": None}, "spec": {"taints": [None]}, "status": {"conditions": [{"type": "Ready", "status": "True"}]}},
           node("pod-node")]
    choice = pod_probe.choose_other_node(odd, "pod-node")
    assert choice["node"] == "ok"
    assert "no-status not Ready" not in choice["why"]   # the why of a chosen node lists no left-out ones
    assert pod_probe.choose_other_node([*odd[:6], node("pod-node")], "pod-node")["why"].endswith("(no-status not Ready, null-parts not Ready)")
