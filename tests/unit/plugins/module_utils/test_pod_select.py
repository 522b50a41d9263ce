"""parse_pod_ref: the three reference forms, and a message that says how to name a pod when there is none."""

import pytest

from ansible_collections.kubediag.egress.plugins.module_utils.pod_select import PodRefError, parse_pod_ref


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
