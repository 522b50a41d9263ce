"""The official `kubernetes` client (typed, DynamicClient, stream, watch) against the lab API server."""

import json
import threading
import time

import pytest
from apiserver_testlib import audit_records, raw_request
from kubernetes import client, watch
from kubernetes.client.rest import ApiException
from kubernetes.stream import stream
from kubernetes.stream.ws_client import ERROR_CHANNEL


def status_of(error: ApiException) -> dict:
    return json.loads(error.body)


def test_dynamic_client_discovers_builtin_and_crd_kinds(dynamic_client):
    pods = dynamic_client.resources.get(api_version="v1", kind="Pod")
    names = sorted(p.metadata.name for p in pods.get(namespace="shop").items)
    assert names[:2] == ["static", "web"]
    entries = dynamic_client.resources.get(api_version="networking.istio.io/v1", kind="ServiceEntry")
    entry = entries.get(namespace="shop", name="api")
    assert (entry.apiVersion, entry.spec.hosts) == ("networking.istio.io/v1", ["api.example.test"])
    with pytest.raises(Exception, match="AdminNetworkPolicy"):  # not installed in this cluster: no such kind
        dynamic_client.resources.get(api_version="policy.networking.k8s.io/v1alpha1", kind="AdminNetworkPolicy")


def test_list_kinds_versions_and_selectors(api_client, apiserver):
    core = client.CoreV1Api(api_client)
    pods = core.list_namespaced_pod("shop", label_selector="app in (web,static),app!=static")
    assert [p.metadata.name for p in pods.items] == ["web"]
    assert pods.metadata.resource_version
    on_node_2 = core.list_pod_for_all_namespaces(field_selector="spec.nodeName=node-2,status.phase=Running")
    assert [p.metadata.name for p in on_node_2.items] == ["static"]
    return_code, _unused, body = raw_request(apiserver, "GET", "/api/v1/namespaces/shop/pods?labelSelector=!nolabel")
    assert (return_code, body["kind"], body["apiVersion"], len(body["items"])) == (200, "PodList", "v1", 2)
    with pytest.raises(ApiException) as bad:
        core.list_namespaced_pod("shop", field_selector="spec.bogus=1")
    assert bad.value.status == 400 and status_of(bad.value)["message"] == "field label not supported: spec.bogus"


@pytest.mark.parametrize(("kind", "expected"), [
    ("kube-proxy", "masqueradeAll: false"),
    ("ip-masq-agent", "- 10.0.0.0/8"),
    ("coredns", "forward . 192.0.2.8 {"),
])
def test_generated_kube_system_configmaps(api_client, kind, expected):
    data = client.CoreV1Api(api_client).read_namespaced_config_map(kind, "kube-system").data
    assert expected in "".join(data.values())


def test_errors_have_real_status_reasons(api_client):
    core = client.CoreV1Api(api_client)
    body = {"metadata": {"name": "errs", "namespace": "shop"}, "data": {"a": "1"}}
    created = core.create_namespaced_config_map("shop", body)
    cases = [
        (lambda: core.read_namespaced_config_map("nope", "shop"), 404, "NotFound", 'configmaps "nope" not found'),
        (lambda: core.create_namespaced_config_map("shop", body), 409, "AlreadyExists", 'configmaps "errs" already exists'),
        (lambda: core.replace_namespaced_config_map("errs", "shop", {"metadata": {"name": "errs", "resourceVersion": "1"}}), 409, "Conflict",
         'Operation cannot be fulfilled on configmaps "errs": the object has been modified; please apply your changes to the latest version '
         'and try again'),
        (lambda: core.create_namespaced_pod("shop", {"metadata": {"name": "Bad_Name"}, "spec": {"containers": [{"name": "c"}]}}), 422, "Invalid",
         'Pod "Bad_Name" is invalid: [metadata.name: Invalid value: "Bad_Name": a lowercase RFC 1123 subdomain'),
        (lambda: core.create_namespaced_config_map("ghost-ns", body | {"metadata": {"name": "x"}}), 404, "NotFound", 'namespaces "ghost-ns" not found'),
    ]
    for call, code, reason, message in cases:
        with pytest.raises(ApiException) as error:
            call()
        status = status_of(error.value)
        assert (error.value.status, status["reason"]) == (code, reason)
        assert status["message"].startswith(message)
    assert created.metadata.uid and created.metadata.creation_timestamp and created.metadata.generation == 1


@pytest.mark.parametrize(("method", "path", "code", "reason"), [
    ("DELETE", "/api/v1/namespaces/shop/pods/web/log", 405, "MethodNotAllowed"),
    ("GET", "/api/v1/namespaces/shop/widgets", 404, "NotFound"),
    ("PATCH", "/apis/networking.istio.io/v1/namespaces/shop/serviceentries/api", 415, "UnsupportedMediaType"),
])
def test_request_errors(apiserver, method, path, code, reason):
    status, _unused, body = raw_request(apiserver, method, path, body={"spec": {}} if method == "PATCH" else None,
                                        content_type="application/strategic-merge-patch+json")
    assert (status, body["reason"]) == (code, reason)


def test_unauthenticated_requests_get_401(apiserver):
    status, _unused, body = raw_request(apiserver, "GET", "/api/v1/pods", token="not-a-lab-token")  # noqa: S106
    assert (status, body["reason"], body["message"]) == (401, "Unauthorized", "Unauthorized")


@pytest.mark.parametrize(("patch", "content_type", "expected_ports"), [
    ({"spec": {"ports": [{"port": 8080, "name": "alt"}]}}, "application/strategic-merge-patch+json", [80, 8080]),
    ({"spec": {"ports": [{"port": 8080, "name": "alt"}]}}, "application/merge-patch+json", [8080]),
    ([{"op": "replace", "path": "/spec/ports/0/port", "value": 81}], "application/json-patch+json", [81]),
    ({"spec": {"ports": [{"port": 80, "$patch": "delete"}]}}, "application/strategic-merge-patch+json", []),
])
def test_patch_types_on_a_service(api_client, apiserver, patch, content_type, expected_ports):
    core = client.CoreV1Api(api_client)
    name = f"svc-{abs(hash((json.dumps(patch), content_type))) % 10**6}"
    core.create_namespaced_service("shop", {"metadata": {"name": name}, "spec": {"selector": {"app": "web"}, "ports": [{"port": 80, "name": "http"}]}})
    assert raw_request(apiserver, "PATCH", f"/api/v1/namespaces/shop/services/{name}", patch, content_type)[0] == 200
    service = core.read_namespaced_service(name, "shop")
    assert [p.port for p in service.spec.ports or []] == expected_ports
    assert service.spec.cluster_ip.startswith("10.96.")


def test_server_side_apply_creates_and_merges(dynamic_client):
    policies = dynamic_client.resources.get(api_version="networking.k8s.io/v1", kind="NetworkPolicy")
    manifest = {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": {"name": "ssa", "namespace": "shop"},
                "spec": {"podSelector": {"matchLabels": {"app": "web"}}, "policyTypes": ["Egress"]}}
    created = policies.server_side_apply(body=manifest, name="ssa", namespace="shop", field_manager="kubediag")
    assert created.metadata.generation == 1
    manifest["spec"]["egress"] = [{"to": [{"ipBlock": {"cidr": "0.0.0.0/0", "except": ["169.254.169.254/32"]}}], "ports": [{"port": 443}]}]
    updated = policies.server_side_apply(body=manifest, name="ssa", namespace="shop", field_manager="kubediag")
    assert updated.metadata.generation == 2 and updated.spec.egress[0].ports[0].port == 443
    with pytest.raises(ApiException) as error:
        policies.patch(body=manifest, name="ssa", namespace="shop", content_type="application/apply-patch+yaml")
    assert error.value.status == 422 and "fieldManager: Required value" in status_of(error.value)["message"]


def test_networkpolicy_validation(dynamic_client):
    policies = dynamic_client.resources.get(api_version="networking.k8s.io/v1", kind="NetworkPolicy")
    bad = {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": {"name": "bad", "namespace": "shop"},
           "spec": {"podSelector": {}, "policyTypes": ["egress"],
                    "egress": [{"to": [{"ipBlock": {"cidr": "10.0.0.0/8", "except": ["192.168.0.0/16"]}}], "ports": [{"port": 90, "endPort": 80}]}]}}
    with pytest.raises(ApiException) as error:
        policies.create(body=bad, namespace="shop")
    causes = {c["field"] for c in status_of(error.value)["details"]["causes"]}
    assert causes == {"spec.policyTypes[0]", "spec.egress[0].ports[0].endPort", "spec.egress[0].to[0].ipBlock.except[0]"}


def test_dry_run_is_not_stored_and_audited_as_dry_run(api_client, apiserver):
    core = client.CoreV1Api(api_client)
    result = core.create_namespaced_config_map("shop", {"metadata": {"name": "dry"}}, dry_run="All")
    assert result.metadata.name == "dry"
    with pytest.raises(ApiException):
        core.read_namespaced_config_map("dry", "shop")
    core.delete_namespaced_config_map("kube-root-ca.crt", "shop", dry_run="All")
    assert core.read_namespaced_config_map("kube-root-ca.crt", "shop")
    records = [(r["verb"], r["dry_run"]) for r in audit_records(apiserver) if r["name"] in ("dry", "kube-root-ca.crt") and r["verb"] != "get"]
    assert records == [("create", True), ("delete", True)]


def test_watch_streams_and_resumes(api_client):
    core = client.CoreV1Api(api_client)
    start = core.list_namespaced_config_map("shop").metadata.resource_version
    core.create_namespaced_config_map("shop", {"metadata": {"name": "w1", "labels": {"watch": "me"}}})
    core.patch_namespaced_config_map("w1", "shop", {"data": {"k": "v"}})
    core.delete_namespaced_config_map("w1", "shop")
    events = [(e["type"], e["object"].metadata.name) for e in watch.Watch().stream(
        core.list_namespaced_config_map, "shop", label_selector="watch=me", resource_version=start, timeout_seconds=1)]
    assert events == [("ADDED", "w1"), ("MODIFIED", "w1"), ("DELETED", "w1")]


def test_watch_delivers_live_events(api_client):
    core = client.CoreV1Api(api_client)
    seen = []

    def collect():
        for event in watch.Watch().stream(core.list_namespaced_config_map, "shop", field_selector="metadata.name=live", timeout_seconds=3):
            seen.append(event["type"])

    watcher = threading.Thread(target=collect)
    watcher.start()
    time.sleep(0.5)
    core.create_namespaced_config_map("shop", {"metadata": {"name": "live"}})
    watcher.join()
    assert seen == ["ADDED"]


@pytest.mark.parametrize(("protocol", "script"), [
    ("v5.channel.k8s.io", "cat; echo err >&2; exit 4"),  # cat ends because v5 can half-close stdin
    ("v4.channel.k8s.io", "head -n1; echo err >&2; exit 4"),  # v4 cannot signal stdin EOF
])
def test_stream_exec_channels_and_exit_code(api_client, protocol, script):
    core = client.CoreV1Api(api_client)
    response = stream(core.connect_get_namespaced_pod_exec, "web", "shop", command=["sh", "-c", script],
                      stdin=True, stdout=True, stderr=True, tty=False, _preload_content=False,
                      _headers={"sec-websocket-protocol": protocol})
    response.write_stdin("piped\n")
    if protocol.startswith("v5"):
        response.close_channel(0)
    response.run_forever(timeout=10)
    assert response.read_stdout() == "piped\n"
    assert response.read_stderr() == "err\n"
    assert response.returncode == 4


def test_stream_exec_preloaded_and_missing_tool(api_client):
    core = client.CoreV1Api(api_client)
    output = stream(core.connect_get_namespaced_pod_exec, "web", "shop", command=["echo", "hi"], stdout=True, stderr=True, stdin=False, tty=False)
    assert output == "hi\n"
    response = stream(core.connect_get_namespaced_pod_exec, "static", "shop", command=["/bin/sh", "-c", "true"], stdout=True, stderr=True,
                      stdin=False, tty=False, _preload_content=False)
    response.run_forever(timeout=10)
    status = json.loads(response.read_channel(ERROR_CHANNEL))
    assert status["reason"] == "InternalError" and status["code"] == 500
    assert status["message"].endswith('exec: "/bin/sh": stat /bin/sh: no such file or directory: unknown')


def test_docker_runtime_reports_missing_tool_with_exit_126(apiserver):
    from kubernetes import config

    configuration = client.Configuration()
    config.load_kube_config(config_file=apiserver["kubeconfig"], context="broken", client_configuration=configuration)
    core = client.CoreV1Api(client.ApiClient(configuration))
    core.create_namespaced_pod("default", {"metadata": {"name": "slim"}, "spec": {"containers": [{"name": "app", "image": "busybox"}]}})
    response = stream(core.connect_get_namespaced_pod_exec, "slim", "default", command=["no-such-tool"], stdout=True, stderr=True,
                      stdin=False, tty=False, _preload_content=False)
    response.run_forever(timeout=10)
    assert response.returncode == 126
    assert response.read_stdout().startswith('OCI runtime exec failed: exec failed: unable to start container process: exec: "no-such-tool"')


def test_ephemeral_container_runs_with_debug_tools(api_client):
    core = client.CoreV1Api(api_client)
    debugger = {"name": "debugger", "image": "nicolaka/netshoot", "command": ["sleep", "infinity"], "targetContainerName": "static"}
    pod = core.patch_namespaced_pod_ephemeralcontainers("static", "shop", {"spec": {"ephemeralContainers": [debugger]}})
    statuses = {s.name: s for s in pod.status.ephemeral_container_statuses}
    assert statuses["debugger"].state.running is not None
    output = stream(core.connect_get_namespaced_pod_exec, "static", "shop", container="debugger", command=["sh", "-c", "command -v dig"],
                    stdout=True, stderr=True, stdin=False, tty=False)
    assert output.strip().endswith("/dig")
    with pytest.raises(ApiException) as error:
        core.patch_namespaced_pod_ephemeralcontainers("static", "shop", {"spec": {"ephemeralContainers": [{"name": "debugger", "$patch": "delete"}]}})
    assert status_of(error.value)["reason"] == "Invalid"


def test_host_network_debug_pod_is_pinned_and_running(api_client):
    core = client.CoreV1Api(api_client)
    pod = core.create_namespaced_pod("default", {"metadata": {"name": "node-debugger"}, "spec": {
        "nodeName": "node-2", "hostNetwork": True, "containers": [{"name": "debugger", "image": "nicolaka/netshoot"}]}})
    assert (pod.status.phase, pod.status.pod_ip, pod.status.host_ip) == ("Running", "172.20.0.11", "172.20.0.11")
    deleted = core.delete_namespaced_pod("node-debugger", "default")
    assert deleted.metadata.deletion_timestamp is not None


def test_logs_tail_and_container_validation(api_client):
    core = client.CoreV1Api(api_client)
    coredns = core.list_namespaced_pod("kube-system", label_selector="k8s-app=kube-dns").items[0]
    assert coredns.metadata.name.startswith("coredns-")
    text = core.read_namespaced_pod_log(coredns.metadata.name, "kube-system", tail_lines=1)
    assert text.startswith("[ERROR] plugin/errors")
    with pytest.raises(ApiException) as error:
        core.read_namespaced_pod_log("web", "shop", container="other")
    assert status_of(error.value)["message"] == "container other is not valid for pod web"


def test_forbidden_exec_message(apiserver):
    configuration = client.Configuration(host=apiserver["lab"]["server"], api_key={"BearerToken": "dev-token"},
                                         api_key_prefix={"BearerToken": "Bearer"})
    configuration.ssl_ca_cert = apiserver["ca"]
    core = client.CoreV1Api(client.ApiClient(configuration))
    with pytest.raises(ApiException) as error:
        stream(core.connect_get_namespaced_pod_exec, "web", "shop", command=["true"], stdout=True, stderr=True, stdin=False, tty=False)
    assert "Handshake status 403 Forbidden" in str(error.value)
    assert 'pods \\"web\\" is forbidden: User \\"dev\\" cannot create resource \\"pods/exec\\"' in str(error.value)
    review = client.AuthorizationV1Api(client.ApiClient(configuration)).create_self_subject_access_review(
        {"spec": {"resourceAttributes": {"namespace": "shop", "verb": "create", "resource": "pods", "subresource": "exec"}}})
    assert review.status.allowed is False


def test_audit_records_every_request(apiserver, api_client):
    client.CoreV1Api(api_client).read_namespaced_pod("web", "shop")
    last = audit_records(apiserver)[-1]
    assert {k: last[k] for k in ("verb", "resource", "namespace", "name", "user", "code", "dry_run")} == {
        "verb": "get", "resource": "pods", "namespace": "shop", "name": "web", "user": "kubernetes-admin", "code": 200, "dry_run": False}
