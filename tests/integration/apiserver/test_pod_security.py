"""Pod Security admission in the lab API server: a namespace's enforce label refuses pods as kube-apiserver does.

Expected messages are real kube-apiserver answers quoted in public bug reports (k8s-netperf #31, cilium/pwru #583,
xk6-disruptor docs), with only the object and container names of this test.
"""

import pytest
from apiserver_testlib import raw_request

CLUSTER = 1  # the "broken" cluster: nothing else uses its namespaces


def namespace(apiserver, name, labels):
    status, _unused, body = raw_request(apiserver, "POST", "/api/v1/namespaces", {"metadata": {"name": name, "labels": labels}}, cluster=CLUSTER)
    assert status == 201, body


def create_pod(apiserver, ns, spec, name=None, query=""):
    metadata = {"name": name} if name else {"generateName": "probe-"}
    return raw_request(apiserver, "POST", f"/api/v1/namespaces/{ns}/pods{query}", {"metadata": metadata, "spec": spec}, cluster=CLUSTER)


def pod_names(apiserver, ns):
    return [p["metadata"]["name"] for p in raw_request(apiserver, "GET", f"/api/v1/namespaces/{ns}/pods", cluster=CLUSTER)[2]["items"]]


@pytest.fixture(scope="module")
def namespaces(apiserver):
    namespace(apiserver, "psa-baseline", {"pod-security.kubernetes.io/enforce": "baseline"})
    namespace(apiserver, "psa-restricted", {"pod-security.kubernetes.io/enforce": "restricted", "pod-security.kubernetes.io/enforce-version": "v1.30"})
    namespace(apiserver, "psa-privileged", {"pod-security.kubernetes.io/enforce": "privileged"})
    yield
    for name in ("psa-baseline", "psa-restricted", "psa-privileged"):
        raw_request(apiserver, "DELETE", f"/api/v1/namespaces/{name}", cluster=CLUSTER)


def test_baseline_refuses_host_namespaces_and_host_path_with_the_real_status(apiserver, namespaces):
    spec = {"hostNetwork": True, "hostPID": True, "volumes": [{"name": "host", "hostPath": {"path": "/"}}],
            "containers": [{"name": "probe", "image": "nicolaka/netshoot:v0.13"}]}
    status, _unused, body = create_pod(apiserver, "psa-baseline", spec, name="hackers-pod")
    assert status == 403
    assert body == {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "reason": "Forbidden", "code": 403,
                    "details": {"name": "hackers-pod", "kind": "pods"},
                    "message": 'pods "hackers-pod" is forbidden: violates PodSecurity "baseline:latest": host namespaces '
                               '(hostNetwork=true, hostPID=true), hostPath volumes (volume "host")'}
    assert pod_names(apiserver, "psa-baseline") == []


def test_a_generated_name_is_named_and_nothing_is_stored(apiserver, namespaces):
    status, _unused, body = create_pod(apiserver, "psa-baseline", {"hostNetwork": True, "containers": [{"name": "p", "image": "busybox"}]})
    assert status == 403
    expected_end = '" is forbidden: violates PodSecurity "baseline:latest": host namespaces (hostNetwork=true)'
    assert body["message"].startswith('pods "probe-') and body["message"].endswith(expected_end)
    assert create_pod(apiserver, "psa-baseline", {"hostNetwork": True, "containers": [{"name": "p", "image": "busybox"}]}, query="?dryRun=All")[0] == 403
    assert pod_names(apiserver, "psa-baseline") == []


def test_baseline_refuses_added_capabilities_and_admits_a_plain_pod(apiserver, namespaces):
    caps = {"containers": [{"name": "xk6-agent", "image": "x", "securityContext": {"capabilities": {"add": ["NET_ADMIN", "NET_RAW"]}}}]}
    status, _unused, body = create_pod(apiserver, "psa-baseline", caps, name="nginx")
    assert status == 403
    assert body["message"] == ('pods "nginx" is forbidden: violates PodSecurity "baseline:latest": non-default capabilities '
                               '(container "xk6-agent" must not include "NET_ADMIN", "NET_RAW" in securityContext.capabilities.add)')
    assert create_pod(apiserver, "psa-baseline", {"containers": [{"name": "web", "image": "nginx"}]}, name="plain")[0] == 201
    assert pod_names(apiserver, "psa-baseline") == ["plain"]


def test_restricted_lists_every_missing_setting(apiserver, namespaces):
    status, _unused, body = create_pod(apiserver, "psa-restricted", {"hostNetwork": True, "containers": [{"name": "client-host", "image": "x"}]},
                                       name="client")
    assert status == 403
    assert body["message"] == (
        'pods "client" is forbidden: violates PodSecurity "restricted:v1.30": host namespaces (hostNetwork=true), allowPrivilegeEscalation '
        '!= false (container "client-host" must set securityContext.allowPrivilegeEscalation=false), unrestricted capabilities (container '
        '"client-host" must set securityContext.capabilities.drop=["ALL"]), runAsNonRoot != true (pod or container "client-host" must set '
        'securityContext.runAsNonRoot=true), seccompProfile (pod or container "client-host" must set securityContext.seccompProfile.type '
        'to "RuntimeDefault" or "Localhost")')
    hardened = {"securityContext": {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}},
                "containers": [{"name": "app", "image": "x", "securityContext": {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}}}]}
    assert create_pod(apiserver, "psa-restricted", hardened, name="hardened")[0] == 201


def test_privileged_and_unlabelled_namespaces_admit_a_host_network_pod(apiserver, namespaces):
    host = {"hostNetwork": True, "containers": [{"name": "probe", "image": "nicolaka/netshoot:v0.13"}]}
    assert create_pod(apiserver, "psa-privileged", host, name="node-probe")[0] == 201
    assert create_pod(apiserver, "default", host, name="node-probe")[0] == 201
    raw_request(apiserver, "DELETE", "/api/v1/namespaces/default/pods/node-probe", cluster=CLUSTER)


def test_an_ephemeral_container_is_admitted_by_the_namespace_level_too(apiserver, namespaces):
    assert create_pod(apiserver, "psa-baseline", {"containers": [{"name": "web", "image": "nginx"}]}, name="target")[0] == 201
    debug = {"name": "debugger", "image": "nicolaka/netshoot:v0.13", "securityContext": {"privileged": True}}
    status, _unused, body = raw_request(apiserver, "PATCH", "/api/v1/namespaces/psa-baseline/pods/target/ephemeralcontainers",
                                        {"spec": {"ephemeralContainers": [debug]}}, content_type="application/strategic-merge-patch+json",
                                        cluster=CLUSTER)
    assert status == 403
    assert body["message"] == ('pods "target" is forbidden: violates PodSecurity "baseline:latest": privileged '
                               '(container "debugger" must not set securityContext.privileged=true)')
    debug.pop("securityContext")
    assert raw_request(apiserver, "PATCH", "/api/v1/namespaces/psa-baseline/pods/target/ephemeralcontainers",
                       {"spec": {"ephemeralContainers": [debug]}}, content_type="application/strategic-merge-patch+json", cluster=CLUSTER)[0] == 200
