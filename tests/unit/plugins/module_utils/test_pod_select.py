"""parse_pod_ref: the reference forms, names that are not Kubernetes names refused before they reach a URL, and a message
that says how to name a pod when there is none; select_pods' messages name the context they looked in."""

import pytest

from ansible_collections.kubediag.egress.plugins.module_utils.k8s.client import KubeError
from ansible_collections.kubediag.egress.plugins.module_utils.k8s.pod_select import PodRefError, parse_pod_ref, select_pods


@pytest.mark.parametrize("ref", [None, "", "   "])
def test_no_pod_says_how_to_name_one(ref):
    with pytest.raises(PodRefError) as raised:
        parse_pod_ref(ref)
    message = str(raised.value)
    assert message.startswith("no pod given: name the pod to diagnose as namespace/name, namespace/deployment/name or")
    assert "-e pod=shop/web" in message and "egress_pod" in message


@pytest.mark.parametrize(("ref", "kind"), [("shop/web", "pod"), ("shop/deployment/web", "workload"), ("shop/app=web", "selector")])
def test_the_three_forms(ref, kind):
    assert parse_pod_ref(ref)["kind"] == kind


def test_a_name_without_namespace_shows_the_forms():
    with pytest.raises(PodRefError, match=r"pod 'web' is not a pod reference: use namespace/name"):
        parse_pod_ref("web")


class EmptyCluster:
    """A connected client whose API server has the namespace shop and nothing else (as the real one answers: 404s)."""

    def __init__(self, context):
        self.context = context

    def request(self, method, path, what="", query=None):
        if path == "/api/v1/namespaces/shop":
            return {"metadata": {"name": "shop"}}
        raise KubeError(f"{what} not found", status=404)

    def list(self, api_version, plural, namespace=None, what=None, query=None):
        return []


@pytest.mark.parametrize(("ref", "message"), [
    ("shop/web", "pod shop/web not found in context kind-dev: check the pod name (kubectl --context kind-dev get pods -n shop)."),
    ("shop/deployment/web", "Deployment shop/web not found in context kind-dev: check the name (kubectl --context kind-dev get deployments -n shop)."),
    ("shop/app=web", "no running pod in namespace shop matches 'app=web' (shop/app=web) in context kind-dev: check the selector "
                     "(kubectl --context kind-dev get pods -n shop -l 'app=web')."),
    ("ghost/web", "namespace ghost not found in context kind-dev: check the namespace (kubectl --context kind-dev get namespaces)."),
])
def test_nothing_found_names_the_context_it_looked_in(ref, message):
    with pytest.raises(KubeError) as raised:
        select_pods(EmptyCluster("kind-dev"), ref)
    assert str(raised.value) == message


def test_without_a_kubeconfig_context_the_message_has_none():
    with pytest.raises(KubeError) as raised:
        select_pods(EmptyCluster(None), "shop/web")
    assert str(raised.value) == "pod shop/web not found: check the pod name (kubectl get pods -n shop)."


@pytest.mark.parametrize(("ref", "expected"), [
    ("shop/web", {"namespace": "shop", "kind": "pod", "name": "web"}),
    ("shop/web-7d9f.v2", {"namespace": "shop", "kind": "pod", "name": "web-7d9f.v2"}),
    ("shop/deployment/web", {"namespace": "shop", "kind": "workload", "name": "web", "workload_kind": "Deployment"}),
    ("shop/app=web", {"namespace": "shop", "kind": "selector", "selector": "app=web"}),
])
def test_valid_references(ref, expected):
    parsed = parse_pod_ref(ref)
    assert {key: parsed[key] for key in expected} == expected


@pytest.mark.parametrize("ref", [
    "shop/", "/web", "shop/..", "shop/.", "shop/a..b", "shop/a.-b", "shop/-web", "shop/" + "a" * 64 + ".b", "shop/" + "w" * 254,
    "Shop/web", "a.b/web", "s" * 64 + "/web", "shop/deployment/..", "shop/deployment/" + "d" * 64, "shop/Web",
])
def test_invalid_names_are_refused(ref):
    with pytest.raises(PodRefError, match="pod"):
        parse_pod_ref(ref)
