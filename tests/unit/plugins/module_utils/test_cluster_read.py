"""Tests of cluster_read: destinations, manifests (offline mode end to end), DNS probe commands and output, and the reader's
pagination and narrowing over a paging stand-in for the API (the lab API server does not paginate)."""

import importlib.util
import json
import socket
from pathlib import Path

import pytest
import yaml

from ansible_collections.kubediag.egress.plugins.module_utils.cluster.coredns import read_probe_output, upstream_probe_argv
from ansible_collections.kubediag.egress.plugins.module_utils.cluster.destinations import cidr_samples, parse_destinations, resolve_host
from ansible_collections.kubediag.egress.plugins.module_utils.cluster.manifests import load_manifests, manifest_objects
from ansible_collections.kubediag.egress.plugins.module_utils.cluster.netpol import PolicySet, egress_answers, offline_policy_objects, overall_allowed
from ansible_collections.kubediag.egress.plugins.module_utils.k8s.client import KubeClient, KubeError
from ansible_collections.kubediag.egress.plugins.module_utils.k8s.reader import ClusterReader, context_label

CASES = Path(__file__).parent / "cluster_read_cases"
MANIFESTS = CASES / "manifests"
_SUBSET_SPEC = importlib.util.spec_from_file_location("kubediag_subset", Path(__file__).with_name("_subset.py"))
_SUBSET = importlib.util.module_from_spec(_SUBSET_SPEC)
_SUBSET_SPEC.loader.exec_module(_SUBSET)
assert_subset = _SUBSET.assert_subset


def load_cases(name):
    return yaml.safe_load((CASES / name).read_text())


@pytest.mark.parametrize("case", load_cases("destinations.yaml"), ids=lambda case: case["id"])
def test_parse_destinations(case):
    arguments = (case["destinations"], case.get("port"), case.get("protocol", "TCP"))
    if "error" in case:
        with pytest.raises(ValueError, match=None) as raised:
            parse_destinations(*arguments)
        assert case["error"] in str(raised.value)
    else:
        assert_subset(case["expect"], parse_destinations(*arguments))


@pytest.mark.parametrize("case", load_cases("probe_outputs.yaml"), ids=lambda case: case["id"])
def test_probe_output_says_whether_the_server_answered(case):
    assert_subset(case["expect"], read_probe_output(case["tool"], case["exit_code"], case["output"]))


def test_probe_commands_are_argv_with_validated_addresses():
    assert upstream_probe_argv("dig", "192.0.2.53", 5353) == ["dig", "@192.0.2.53", "-p", "5353", "+time=2", "+tries=1", "+norecurse", ".", "NS"]
    assert upstream_probe_argv("nslookup", "2001:db8::53") == ["nslookup", "-type=NS", "-port=53", "-timeout=2", "-retry=1", ".", "2001:db8::53"]
    for bad_ip in ("192.0.2.53; touch /tmp/pwned", "$(reboot)", "dns.example.com"):
        with pytest.raises(ValueError, match="is not an IP address"):
            upstream_probe_argv("dig", bad_ip)
    with pytest.raises(ValueError, match="neither dig nor nslookup"):
        upstream_probe_argv("sh", "192.0.2.53")
    with pytest.raises(ValueError, match="not a number from 1 to 65535"):
        upstream_probe_argv("dig", "192.0.2.53", 0)


@pytest.mark.parametrize(("cidr", "samples"), [
    ("10.0.0.0/8", ["10.0.0.1", "10.255.255.254"]),
    ("203.0.113.7/32", ["203.0.113.7"]),
    ("198.51.100.0/31", ["198.51.100.0", "198.51.100.1"]),
    ("2001:db8::/64", ["2001:db8::1", "2001:db8::ffff:ffff:ffff:fffe"]),
])
def test_cidr_samples(cidr, samples):
    assert cidr_samples(cidr) == samples


def fake_resolver(table):
    """A getaddrinfo stand-in answering from table (name -> addresses) in getaddrinfo's shape."""
    def resolve(name, port, family, kind):
        if name not in table:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return [(socket.AF_INET6 if ":" in ip else socket.AF_INET, kind, 6, "", (ip, 0)) for ip in table[name]]
    return resolve


def test_resolve_host_dedupes_and_puts_ipv4_first():
    resolver = fake_resolver({"api.example.com": ["2001:db8::10", "203.0.113.10", "203.0.113.10", "fe80::1%eth0"]})
    assert resolve_host("api.example.com", resolver) == ["203.0.113.10", "2001:db8::10", "fe80::1"]
    with pytest.raises(ValueError, match=r"cannot resolve nope\.example on the controller .*give its addresses with ips"):
        resolve_host("nope.example", resolver)


def test_overall_allowed():
    dns_ok = {"checked": True, "allowed": True}
    assert overall_allowed([{"allowed": True}], dns_ok) is True
    assert overall_allowed([{"allowed": True}, {"allowed": None}], dns_ok) is None
    assert overall_allowed([{"allowed": None}, {"allowed": False}], dns_ok) is False
    assert overall_allowed([{"allowed": True}], {"checked": True, "allowed": False}) is False
    assert overall_allowed([], {"checked": False, "allowed": None}) is True


# ---------------------------------------------------------------- manifests

def test_manifests_become_cluster_objects_with_pods_for_workloads():
    loaded, sources = load_manifests([str(MANIFESTS / "allowing")])
    assert [obj["kind"] for obj in loaded] == ["Deployment", "CronJob", "NetworkPolicy"]
    assert sources[0].endswith("app-1-deployment.yaml#1") and sources[2].endswith("policies.yml#1")
    objects, workload_pods = manifest_objects(loaded, "shop")
    assert workload_pods == {"Deployment shop/web": "shop/web", "CronJob shop/report": "shop/report"}
    pods = {f"{o['metadata']['namespace']}/{o['metadata']['name']}": o for o in objects if o["kind"] == "Pod"}
    assert pods["shop/web"]["metadata"]["labels"] == {"app": "web", "tier": "frontend"}
    assert pods["shop/web"]["spec"]["containers"][0]["ports"] == [{"name": "http", "containerPort": 8080}]
    assert pods["shop/report"]["metadata"]["labels"] == {"app": "report"}
    assert [o["metadata"]["name"] for o in objects if o["kind"] == "Namespace"] == ["shop"]
    assert all(o["metadata"]["namespace"] == "shop" for o in objects if o["kind"] != "Namespace")


def test_a_pod_in_the_manifests_wins_over_its_workload(tmp_path):
    (tmp_path / "pod.json").write_text(json.dumps({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web", "namespace": "shop",
                                                   "labels": {"app": "real"}}, "spec": {}}))
    (tmp_path / "deploy.yaml").write_text("kind: Deployment\nmetadata: {name: web, namespace: shop}\n"
                                          "spec: {template: {metadata: {labels: {app: template}}, spec: {}}}\n")
    (tmp_path / "notes.txt").write_text("not a manifest")
    objects, workload_pods = manifest_objects(load_manifests([str(tmp_path)])[0], "default")
    assert workload_pods == {}
    assert [o["metadata"]["labels"] for o in objects if o["kind"] == "Pod"] == [{"app": "real"}]


@pytest.mark.parametrize(("files", "message"), [
    ({"bad.yaml": "kind: [unclosed"}, "bad.yaml: not valid YAML"),
    ({"scalar.yaml": "just text"}, "scalar.yaml document 1: not a Kubernetes object"),
    ({"two.yaml": "kind: ConfigMap\nmetadata: {name: a}\n---\n- a list\n"}, "two.yaml document 2: not a Kubernetes object"),
    ({"list.yaml": "kind: List\nitems: [42]\n"}, "list.yaml document 1: a List item is not a Kubernetes object"),
])
def test_bad_manifests_name_the_file_and_document(tmp_path, files, message):
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    with pytest.raises(ValueError, match=None) as raised:
        load_manifests([str(tmp_path)])
    assert message in str(raised.value)


def test_missing_manifest_path_says_what_to_give(tmp_path):
    with pytest.raises(ValueError, match="does not exist: give files or directories"):
        load_manifests([str(tmp_path / "nope")])


@pytest.mark.parametrize(("variant", "api_allowed", "dns_udp", "dns_tcp"), [
    ("allowing", True, True, True),
    ("blocking", False, True, False),
])
def test_offline_mode_answers_before_deploying(variant, api_allowed, dns_udp, dns_tcp):
    """The CI question: after this change, can shop/web still reach api.example.com:443 (203.0.113.10) and DNS?"""
    objects, notes = offline_policy_objects([str(MANIFESTS / variant)], "shop")
    assert "Deployment shop/web stands for its pods as pod shop/web (labels of its pod template, no IP)" in notes
    assert any("assumed the standard one (kube-system, k8s-app=kube-dns" in note for note in notes)
    policy_set = PolicySet(objects)
    destinations = parse_destinations([{"to": "api.example.com", "ips": ["203.0.113.10"], "port": 443}])
    [answer] = egress_answers(policy_set, "shop/web", destinations)
    assert answer["allowed"] is api_allowed
    assert answer["ip"] == "203.0.113.10"
    assert answer["selected_by"] == ["shop/web-egress"]
    assert answer["reasons"][0] == "api.example.com given as 203.0.113.10"
    if api_allowed:
        assert answer["allowed_by"] == [{"policy": "shop/web-egress", "kind": "NetworkPolicy", "rule_index": 0, "rule": "egress[0]"}]
    else:
        assert answer["reasons"][-1] == "no egress rule of shop/web-egress allows TCP 203.0.113.10:443"
    dns = policy_set.dns_egress("shop/web")
    assert (dns["udp_allowed"], dns["tcp_allowed"]) == (dns_udp, dns_tcp)


def test_unresolvable_host_is_an_answer_not_a_failure():
    objects, _notes = offline_policy_objects([str(MANIFESTS / "allowing")], "shop")
    destinations = parse_destinations(["nowhere.invalid", "203.0.113.99"], port=443)
    unknown, known = egress_answers(PolicySet(objects), "shop/web", destinations, resolver=fake_resolver({}))
    assert unknown["allowed"] is None and "cannot resolve nowhere.invalid on the controller" in unknown["reasons"][0]
    assert known["allowed"] is True


def test_cidr_destination_is_evaluated_at_both_ends():
    objects, _notes = offline_policy_objects([str(MANIFESTS / "allowing")], "shop")
    answers = egress_answers(PolicySet(objects), "shop/web", parse_destinations(["203.0.113.0/23"], port=443))
    assert [(a["ip"], a["allowed"]) for a in answers] == [("203.0.112.1", False), ("203.0.113.254", True)]
    assert "203.0.112.0/23 is a CIDR: evaluated at 203.0.112.1 and 203.0.113.254" in answers[0]["reasons"][0]


# ---------------------------------------------------------------- the reader over a paging API stand-in

class PagingApi:
    """Stands in for KubeClient.request: serves `items` in pages of `limit` with continue tokens, 403 for `forbidden`
    scopes, 404 on discovery for groups not in `served`, and records every request."""

    list = KubeClient.list  # the real pagination over the stand-in's request

    def __init__(self, items, served=(), forbidden=()):
        self.items, self.served, self.forbidden, self.calls = items, set(served), set(forbidden), []

    def request(self, method, path, what="", query=None, **kwargs):
        query = dict(query or {})
        self.calls.append((method, path, query))
        if path.startswith("/apis/") and path.count("/") == 3:  # discovery: /apis/<group>/<version>
            if path[len("/apis/"):] not in self.served:
                raise KubeError(f"{what} not found", status=404)
            return {"resources": [{"name": "ciliumnetworkpolicies"}]}
        scope = path.split("/namespaces/")[1].split("/")[0] if "/namespaces/" in path else "*"
        if scope in self.forbidden:
            raise KubeError(f"forbidden: {what}", status=403)
        start = int(query.get("continue") or 0)
        end = start + query["limit"]
        metadata = {"continue": str(end)} if end < len(self.items) else {}
        return {"items": [dict(item) for item in self.items[start:end]], "metadata": metadata}


def test_reader_follows_continue_tokens_and_types_items(monkeypatch):
    monkeypatch.setattr("ansible_collections.kubediag.egress.plugins.module_utils.k8s.client.PAGE_SIZE", 2)
    api = PagingApi([{"metadata": {"name": f"p{n}"}} for n in range(5)], served={"cilium.io/v2"})
    reader = ClusterReader(api)
    items = reader.list("CiliumNetworkPolicy", "shop")
    assert [item["metadata"]["name"] for item in items] == ["p0", "p1", "p2", "p3", "p4"]
    assert {(item["apiVersion"], item["kind"]) for item in items} == {("cilium.io/v2", "CiliumNetworkPolicy")}
    pages = [call for call in api.calls if call[1] == "/apis/cilium.io/v2/namespaces/shop/ciliumnetworkpolicies"]
    assert [call[2].get("continue") for call in pages] == [None, "2", "4"]
    assert reader.not_checked == []


def test_reader_narrows_on_a_missing_crd_and_a_forbidden_list():
    api = PagingApi([{"metadata": {"name": "p"}}], served={"cilium.io/v2"}, forbidden={"*"})
    reader = ClusterReader(api)
    assert reader.list("AdminNetworkPolicy") == []
    assert reader.list("CiliumNetworkPolicy") == []
    assert reader.list("CiliumNetworkPolicy", "shop") == [{"metadata": {"name": "p"}, "apiVersion": "cilium.io/v2", "kind": "CiliumNetworkPolicy"}]
    assert [(entry["what"], entry["reason"]) for entry in reader.not_checked] == [
        ("adminnetworkpolicies.policy.networking.k8s.io", "not_installed"),
        ("ciliumnetworkpolicies in all namespaces", "forbidden"),
    ]
    assert "are not taken into account" in reader.not_checked[1]["message"]
    with pytest.raises(KubeError, match="forbidden"):
        reader.list("CiliumNetworkPolicy", required=True)


@pytest.mark.parametrize(("params", "kubeconfig", "label"), [
    ({"context": "prod"}, None, "prod"),
    ({"kubeconfig": {"current-context": "from-dict"}}, None, "from-dict"),
    ({"host": "https://10.0.0.1:6443"}, None, "https://10.0.0.1:6443"),
    ({}, "apiVersion: v1\ncurrent-context: 'lab-eu'\ncontexts: []\n", "lab-eu"),
])
def test_context_label_names_the_cluster(tmp_path, params, kubeconfig, label):
    if kubeconfig is not None:
        path = tmp_path / "config"
        path.write_text(kubeconfig)
        params = dict(params, kubeconfig=str(path))
    assert context_label(params) == label
