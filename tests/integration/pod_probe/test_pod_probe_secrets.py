"""pod_probe against a lab pod whose proxy variables carry credentials: they appear nowhere, and the proxy is checked."""

import json
import os

import pytest
import yaml

from ansible_collections.kubediag.egress.plugins.module_utils.k8s import client as kube
from ansible_collections.kubediag.egress.plugins.module_utils.probe import runner as pod_probe

pytestmark = pytest.mark.lab

PROXY_PASSWORD = "kd-pod-proxy-pass-5e1b"  # noqa: S105 - a fake credential the test hunts for
PROXY_USER = "kd-pod-proxy-user"
POD_ENV = {"https_proxy": f"http://{PROXY_USER}:{PROXY_PASSWORD}@proxy.example.test:3128",
           "HTTPS_PROXY": f"http://{PROXY_USER}:{PROXY_PASSWORD}@proxy.example.test:3128",
           "http_proxy": f"{PROXY_USER}:{PROXY_PASSWORD}@proxy.example.test:3128", "no_proxy": ".cluster.local,.svc"}
SCENARIO = {
    "name": "proxy-credentials",
    "description": "Only the proxy may leave; the pod's proxy variables name it with credentials (the lab's proxy ignores them).",
    "clusters": [{"name": "lab", "pods": [{"namespace": "shop", "name": name, "image": image, "env": POD_ENV}
                                          for name, image in (("web", "netshoot"), ("tiny", "busybox"))]}],
    "faults": [{"type": "proxy_only"}],   # only the proxy may leave: a request that works went through it
    "subject": {"pod": "shop/web", "targets": ["https://api.example.test/health"]},
    "expect": {"root_causes": ["healthy"]},   # through the proxy every target works
}


@pytest.fixture(scope="module")
def credentials_lab(tmp_path_factory):
    if os.geteuid() != 0:
        pytest.fail("the lab needs root (it creates network namespaces); run as root")
    from kdlab import build

    root = tmp_path_factory.mktemp("proxy-credentials")
    scenario = root / "proxy-credentials.yml"
    scenario.write_text(yaml.safe_dump(SCENARIO), encoding="utf-8")
    lab_dir = str(root / "lab")
    build.up(str(scenario), lab_dir)
    yield lab_dir
    build.down(lab_dir)


@pytest.mark.parametrize("pod", ["web", "tiny"])   # curl, nc and bash; BusyBox wget and nc
def test_pod_proxy_credentials_appear_nowhere_and_the_proxy_is_reach_checked(credentials_lab, pod):
    client = kube.connect(kubeconfig=os.path.join(credentials_lab, "kubeconfig"), context="lab")
    options = pod_probe.build_options(timeout=2, external_resolver="192.0.2.8", echo_url="http://whoami.example.test/")
    facts = pod_probe.probe_pod(client, "shop", pod, ["https://api.example.test/health", "http://api.example.test/health"],
                                options=options, node_probe=True)
    text = json.dumps(facts)
    assert PROXY_PASSWORD not in text and PROXY_USER not in text
    reach = {c["id"]: c for c in facts["checks"] if c["kind"] == "proxy"}
    assert set(reach) == {"proxy.reach:http://REDACTED@proxy.example.test:3128", "proxy.reach:REDACTED@proxy.example.test:3128"}
    assert all(c["status"] == "ok" and c["params"]["host"] == "proxy.example.test" for c in reach.values()), reach
    # the pod's tools still used the real proxy variables: the request went through the (authenticated) proxy
    http = next(c for c in facts["checks"] if c["id"] == "http:http://api.example.test/health")
    assert http["status"] == "ok" and http["params"]["via_proxy"] == "REDACTED@proxy.example.test:3128", http
