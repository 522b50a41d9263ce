"""The node debug pod against the lab's API server when the cluster says no: Pod Security admission, and a create whose
answer is lost after the server applied it."""

import json
import os

import pytest

from ansible_collections.kubediag.egress.plugins.module_utils.k8s import client as kube
from ansible_collections.kubediag.egress.plugins.module_utils.probe import runner as pod_probe

pytestmark = pytest.mark.lab

HERE = os.path.dirname(os.path.abspath(__file__))
PUBLIC_RESOLVER = "192.0.2.8"
TARGETS = ["https://api.example.test/health"]


@pytest.fixture(scope="module")
def baseline_lab(tmp_path_factory):
    if os.geteuid() != 0:
        pytest.fail("the lab needs root (it creates network namespaces); run as root")
    from kdlab import build
    directory = str(tmp_path_factory.mktemp("psa") / "lab")
    build.up(os.path.join(HERE, "scenarios", "pod-security-baseline.yml"), directory)
    yield directory
    build.down(directory)


def audit(lab_dir):
    with open(os.path.join(lab_dir, "audit.jsonl"), encoding="utf-8") as handle:
        return [json.loads(line) for line in handle]


def probe(lab_dir, **kwargs):
    client = kube.connect(kubeconfig=os.path.join(lab_dir, "kubeconfig"), context="lab")
    options = pod_probe.build_options(timeout=2, external_resolver=PUBLIC_RESOLVER)
    return pod_probe.probe_pod(client, "shop", "web", TARGETS, options=options, node_probe=True, **kwargs)


def test_pod_security_keeps_the_pod_part_and_names_itself(baseline_lab):
    facts = probe(baseline_lab)
    assert facts["probed"] and facts["summary"]["fail"] == 0 and facts["summary"]["ok"] > 5  # every in-pod check stands
    node = facts["node"]
    assert node["probed"] is False and node["checks"] == []
    assert node["not_probed_reason"].startswith('Pod Security baseline forbids hostNetwork in shop (pods "kdprobe-node-')
    assert 'violates PodSecurity "baseline:latest": host namespaces (hostNetwork=true)' in node["not_probed_reason"]
    [note] = [n for n in facts["notes"] if n.startswith("node not probed")]
    assert "RBAC" not in note and "node_probe_namespace" in note
    creates = [a for a in audit(baseline_lab) if a["verb"] == "create" and a["resource"] == "pods"]
    assert [a["code"] for a in creates] == [403]  # refused once, not retried


def test_node_probe_namespace_that_admits_host_network(baseline_lab):
    facts = probe(baseline_lab, node_probe_namespace="default")
    assert facts["node"]["probed"] and facts["node"]["runner"]["pod"].startswith("default/kdprobe-node-")
    assert facts["node"]["summary"]["fail"] == 0
    client = kube.connect(kubeconfig=os.path.join(baseline_lab, "kubeconfig"), context="lab")
    assert client.request("GET", "/api/v1/pods", query={"labelSelector": pod_probe.RUN_ID_LABEL})["items"] == []


def test_a_create_whose_answer_is_lost_is_repeated_and_leaves_no_debug_pod(labs):
    """The API server stores the node debug pod and drops the connection before answering: the create (a pod of its own
    name) is repeated, the API server's 409 says the first one made it, the probe runs in that pod, and the pod is deleted
    afterwards: one pod created, none left."""
    lab = labs.get("healthy")
    client = kube.connect(kubeconfig=os.path.join(lab, "kubeconfig"), context="lab")
    earlier = len(audit(lab))  # the lab is shared: only this test's requests count
    client.request("PUT", "/_lab/faults", body={"drop_after_write": {"requests": 1, "methods": ["POST"], "path": "^/api/v1/namespaces/shop/pods$"}})
    try:
        options = pod_probe.build_options(timeout=2, external_resolver=PUBLIC_RESOLVER)
        facts = pod_probe.probe_pod(client, "shop", "web", TARGETS, options=options, node_probe=True)
    finally:
        client.request("PUT", "/_lab/faults", body={})
    assert facts["node"]["probed"] and facts["node"]["summary"]["fail"] == 0
    records = [a for a in audit(lab)[earlier:] if a["resource"] == "pods" and a["namespace"] == "shop" and a["verb"] in ("create", "delete")]
    creates = [a for a in records if a["verb"] == "create"]
    assert [(a["code"], a.get("fault")) for a in creates] == [(201, "drop_after_write"), (409, None)]
    assert [a["name"] for a in records if a["verb"] == "delete"] == [creates[0]["name"]]
    left = client.request("GET", "/api/v1/namespaces/shop/pods", query={"labelSelector": "app.kubernetes.io/component=node-probe"})
    assert left["items"] == []


def test_the_module_warns_and_returns_the_pod_part(baseline_lab, run_module):
    result = run_module({"kubeconfig": os.path.join(baseline_lab, "kubeconfig"), "context": "lab", "namespace": "shop", "pod": "web",
                         "targets": TARGETS, "external_resolver": PUBLIC_RESOLVER, "timeout": 2, "node_probe": True})
    assert not result["failed"] and result["probed"] and result["summary"]["fail"] == 0, result.get("msg")
    assert result["node"]["probed"] is False
    assert result["node"]["not_probed_reason"].startswith("Pod Security baseline forbids hostNetwork in shop")
    assert any(n.startswith("node not probed: Pod Security baseline forbids hostNetwork in shop") for n in result["notes"]), result["notes"]


def test_another_node_is_probed_and_no_node_debug_pod_is_left_on_either_node(labs):
    """Two nodes, only the pod's (node-2) cut off: its node probe fails, so node-1 is probed too, each from a debug pod of its
    own; both are created once and deleted, and no kdprobe-node-* pod is left anywhere."""
    lab = labs.get("node.egress_broken-other-node")
    client = kube.connect(kubeconfig=os.path.join(lab, "kubeconfig"), context="lab")
    earlier = len(audit(lab))
    options = pod_probe.build_options(timeout=2, external_resolver=PUBLIC_RESOLVER)
    facts = pod_probe.probe_pod(client, "shop", "web", TARGETS, options=options, node_probe=True)
    main = f"http:{TARGETS[0]}"
    assert facts["node"]["runner"]["node"] == "node-2"
    assert [c["status"] for c in facts["node"]["checks"] if c["id"] == main] == ["fail"]
    other = facts["other_node"]
    assert other["probed"] and other["runner"]["node"] == "node-1" and other["choice"]["node"] == "node-1"
    assert [c["status"] for c in other["checks"] if c["id"] == main] == ["ok"] and other["summary"]["fail"] == 0
    records = [a for a in audit(lab)[earlier:] if a["resource"] == "pods" and a["verb"] in ("create", "delete")]
    created = [a["name"] for a in records if a["verb"] == "create" and a["code"] == 201]
    assert len(created) == 2 and all(name.startswith("kdprobe-node-") for name in created)
    assert sorted(a["name"] for a in records if a["verb"] == "delete") == sorted(created)
    left = [p["metadata"]["name"] for p in client.request("GET", "/api/v1/pods")["items"]
            if p["metadata"]["name"].startswith("kdprobe-node-")]
    assert left == []
