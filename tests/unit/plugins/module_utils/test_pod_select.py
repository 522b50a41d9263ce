"""Pod references: every form accepted, and names that are not Kubernetes names refused before they reach a URL."""

import pytest

from ansible_collections.kubediag.egress.plugins.module_utils.pod_select import PodRefError, parse_pod_ref


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
