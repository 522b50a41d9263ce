"""pod_probe.probe() end to end on this host (the exec transport is a local subprocess), batching, and the no-shell path."""

import copy
import json
import re
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import quote_plus

import pytest
import yaml

from ansible_collections.kubediag.egress.plugins.module_utils.k8s.client import ExecResult, KubeError, connect
from ansible_collections.kubediag.egress.plugins.module_utils.probe import runner as pod_probe
from ansible_collections.kubediag.egress.plugins.module_utils.probe import script as probe_script
from ansible_collections.kubediag.egress.plugins.module_utils.probe.targets import TargetError, parse_targets


def local_run(argv, timeout):
    completed = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)
    return ExecResult(completed.stdout, completed.stderr, completed.returncode)


def test_probe_on_this_host_against_a_closed_port():
    options = pod_probe.build_options(timeout=2, external_resolver=None, mtu_sizes=[1500, 576])
    facts = pod_probe.probe(local_run, parse_targets(["tcp://127.0.0.1:9", "http://127.0.0.1:9/"]), options)
    checks = {c["id"]: c for c in facts["checks"]}
    assert facts["exec_round_trips"] == 2 and facts["concurrent_execs"] == 1
    assert checks["tcp:127.0.0.1:9"]["error_class"] == "refused"
    assert checks["http:http://127.0.0.1:9/"]["error_class"] == "refused"
    assert checks["icmp:127.0.0.1"]["status"] == "ok"
    assert checks["mtu:127.0.0.1"]["status"] == "ok" and checks["mtu:127.0.0.1"]["details"]["largest_ok"] == 1500
    assert facts["targets"][0]["status"] == "fail" and "tcp:127.0.0.1:9" in facts["targets"][0]["check_ids"]
    assert facts["summary"]["fail"] == 2 and facts["environment"]["tools"]["curl"]["flavor"] == "curl"


def test_many_targets_are_spread_over_concurrent_execs_within_the_budget():
    env = probe_script.parse_detection("tool curl c curl\ntool dig d DiG 9.18\ntool nc n OpenBSD netcat\ntool ping p ping from iputils\n"
                                       "tool openssl o OpenSSL 3\ntimeout gnu\n")
    targets = parse_targets([f"https://service-{i}.example.test/health/check" for i in range(32)])
    checks = probe_script.plan_checks(targets, env, pod_probe.build_options(cluster_dns_ip="10.96.0.10"))
    groups = pod_probe.batches(checks, 5, "gnu")
    assert len(groups) > 1
    assert sum(len(g) for g in groups) == sum(1 for c in checks if c.record is not None)
    for group in groups:
        argv = probe_script.probe_argv(group, 5, "gnu", probe_script.new_nonce())
        assert sum(len(quote_plus(a)) + len("&command=") for a in argv) <= pod_probe.EXEC_URL_BUDGET


@pytest.mark.parametrize("result", [
    ExecResult("", "", None, error='OCI runtime exec failed: exec failed: unable to start container process: exec: "sh": executable file '
               'not found in $PATH: unknown'),
    ExecResult('OCI runtime exec failed: exec: "sh": executable file not found in $PATH: unknown\r\n', "", 126),
])
def test_no_shell_is_recognised(result):
    with pytest.raises(pod_probe.NoShell, match="executable file not found"):
        pod_probe.probe(lambda argv, timeout: result, parse_targets(["https://api.example.test/"]), pod_probe.build_options())


@pytest.mark.parametrize(("option", "value", "message"), [
    ("cluster_dns_ip", "kube-dns", "cluster_dns_ip must be an IP address"), ("external_resolver", "8.8.8.8; id", "external_resolver"),
    ("echo_url", "ftp://x.example/", "echo_url"), ("test_proxy", "http://p:3128;id", "test_proxy"), ("timeout", 0, "timeout"),
    ("mtu_sizes", [20], "mtu_sizes"), ("known_good_ip", "one.one.one.one", "known_good_ip"),
])
def test_options_are_validated(option, value, message):
    with pytest.raises(TargetError, match=message):
        pod_probe.build_options(**{option: value})


# --- debug pod and ephemeral container lifecycle, against a fake API client that records every write -----------------

class FakeApi:
    """Pods of one namespace; `fail` maps (method, path suffix) to the KubeError to raise, `after` whether the write
    happened before it (an answer lost on the way back)."""

    def __init__(self, fail=None, after=False, ephemeral_state=None):
        self.pods, self.writes, self.fail, self.after = {}, [], fail or {}, after
        self.ephemeral_state = ephemeral_state or {"running": {}}
        self.pods["web"] = {"metadata": {"name": "web", "namespace": "shop"}, "spec": {"ephemeralContainers": []}, "status": {}}

    def request(self, method, path, what="", query=None, body=None, content_type=None, repeatable=False):
        failure = next((error for (m, suffix), error in self.fail.items() if m == method and path.endswith(suffix)), None)
        if failure is not None and not self.after:
            raise failure
        answer = self._serve(method, path, query, body)
        if failure is not None:
            raise failure
        return answer

    def create(self, path, body, what=""):
        return self.request("POST", path, what=what, body=body)

    def _serve(self, method, path, query, body):
        parts = path.split("/")
        if method == "POST":
            name = body["metadata"]["name"]
            self.pods[name] = {**body, "status": {"phase": "Running"}}
            self.writes.append(("POST", name))
            return self.pods[name]
        if method == "DELETE":
            self.writes.append(("DELETE", parts[-1]))
            self.pods.pop(parts[-1])
            return {}
        if method == "PATCH":
            spec = body["spec"]["ephemeralContainers"][0]
            self.writes.append(("PATCH", spec))
            pod = self.pods["web"]
            pod["spec"]["ephemeralContainers"].append(spec)
            pod["status"]["ephemeralContainerStatuses"] = [{"name": spec["name"], "state": self.ephemeral_state}]
            return pod
        if parts[-1] == "pods":
            key, value = query["labelSelector"].split("=")
            return {"items": [p for p in self.pods.values() if (p["metadata"].get("labels") or {}).get(key) == value]}
        return self.pods[parts[-1]]


def node_pods(api):
    return [name for name, pod in api.pods.items() if pod["spec"].get("hostNetwork")]


OPTIONS = pod_probe.build_options(timeout=1)


@pytest.mark.parametrize("failure", [KubeError("connection dropped"), KubeError("HTTP 504 Gateway Timeout", status=504)])
def test_an_ambiguous_create_is_found_by_its_run_label_and_deleted(failure):
    api = FakeApi(fail={("POST", "/pods"): failure}, after=True)
    with pytest.raises(KubeError, match=str(failure)):
        pod_probe.probe_node(api, "node-1", "shop", "img", [], OPTIONS, "run1")
    assert node_pods(api) == [] and [w[0] for w in api.writes] == ["POST", "DELETE"]


def test_a_clear_refusal_of_the_create_deletes_nothing():
    api = FakeApi(fail={("POST", "/pods"): KubeError("forbidden", status=403)})
    with pytest.raises(KubeError, match="forbidden"):
        pod_probe.probe_node(api, "node-1", "shop", "img", [], OPTIONS, "run1")
    assert api.writes == []


def test_a_failing_cleanup_does_not_hide_the_original_error(monkeypatch):
    api = FakeApi(fail={("DELETE", "/kdprobe-node-run1"): KubeError("HTTP 500 etcd unavailable", status=500)})
    monkeypatch.setattr(pod_probe, "probe", lambda *args: (x for x in ()).throw(KubeError("the exec that looks for tools failed")))
    with pytest.raises(KubeError) as raised:
        pod_probe.probe_node(api, "node-1", "shop", "img", [], OPTIONS, "run1")
    message = str(raised.value)
    assert "the exec that looks for tools failed" in message and "etcd unavailable" in message
    assert "kubectl delete pods -n shop -l kubediag.egress/run-id=run1" in message


def test_the_node_debug_pod_outlives_every_wait_of_the_probe_and_then_stops_on_its_own(monkeypatch):
    """What probe_node asks the API server for: a pod on that node's network that tolerates its taints, labelled with the
    run id its cleanup selects by, whose sleep and deadline outlast the start, detection and checks the probe may wait for
    (so the kubelet ends it when the controller dies, and not before the probe is done); and it is deleted afterwards."""
    api, created = FakeApi(), []
    serve = api._serve

    def recording(method, path, query, body):
        if method == "POST":
            created.append(copy.deepcopy(body))
        return serve(method, path, query, body)

    monkeypatch.setattr(api, "_serve", recording)
    monkeypatch.setattr(pod_probe, "probe", lambda *args: (x for x in ()).throw(KubeError("stopped after the create")))
    with pytest.raises(KubeError, match="stopped after the create"):
        pod_probe.probe_node(api, "node-7", "shop", "img", [], pod_probe.build_options(timeout=9), "run7", start_timeout=25)
    [manifest] = created
    spec, labels = manifest["spec"], manifest["metadata"]["labels"]
    assert spec["nodeName"] == "node-7" and spec["hostNetwork"] is True and spec["restartPolicy"] == "Never"
    assert {"operator": "Exists"} in spec["tolerations"]
    waits = 25 + pod_probe.DETECT_TIMEOUT + 9 + pod_probe.EXEC_OVERHEAD   # the start, the detection exec, the checks exec
    assert spec["activeDeadlineSeconds"] > waits
    assert spec["containers"][0]["command"] == ["sleep", str(spec["activeDeadlineSeconds"])]
    assert labels["kubediag.egress/run-id"] == "run7" and labels["app.kubernetes.io/managed-by"] == "kubediag.egress"
    assert api.writes == [("POST", manifest["metadata"]["name"]), ("DELETE", manifest["metadata"]["name"])]


def test_an_ephemeral_container_that_terminated_is_reported_at_once():
    api = FakeApi(ephemeral_state={"terminated": {"exitCode": 127, "reason": "Error", "message": "sleep: not found"}})
    started = time.monotonic()
    with pytest.raises(KubeError, match=r"ended before the probe could run \(exit 127, Error: sleep: not found\)"):
        pod_probe.add_debug_container(api, api.pods["web"], "app", "img", 60, "run1", start_timeout=30)
    assert time.monotonic() - started < 2


@pytest.mark.parametrize("share, expected", [(False, None), (True, "app")])
def test_the_ephemeral_container_shares_processes_only_when_asked(share, expected):
    api = FakeApi()
    name = pod_probe.add_debug_container(api, api.pods["web"], "app", "img", 60, "run1", share_processes=share)
    spec = api.writes[0][1]
    assert name == "kdprobe-run1" and spec.get("targetContainerName") == expected


def test_an_ephemeral_container_added_despite_a_lost_answer_is_used():
    api = FakeApi(fail={("PATCH", "/ephemeralcontainers"): KubeError("connection dropped")}, after=True)
    assert pod_probe.add_debug_container(api, api.pods["web"], "app", "img", 60, "run1") == "kdprobe-run1"
    refused = FakeApi(fail={("PATCH", "/ephemeralcontainers"): KubeError("connection dropped")})
    with pytest.raises(KubeError, match="connection dropped"):
        pod_probe.add_debug_container(refused, refused.pods["web"], "app", "img", 60, "run1")


class LosesFirstPatch(BaseHTTPRequestHandler):
    """An API server that drops the connection of the first ephemeralcontainers PATCH before applying it, then works.
    What it was sent and holds: server.patches, server.containers."""

    def do_PATCH(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.server.patches.append(body)
        if len(self.server.patches) == 1:
            self.close_connection = True
            return  # no answer at all: the client sees the connection end
        for spec in body["spec"]["ephemeralContainers"]:
            if spec["name"] not in [c["name"] for c in self.server.containers]:
                self.server.containers.append(spec)
        self.do_GET()

    def do_GET(self):
        pod = {"metadata": {"name": "web", "namespace": "shop"}, "spec": {"ephemeralContainers": self.server.containers},
               "status": {"ephemeralContainerStatuses": [{"name": c["name"], "state": {"running": {}}} for c in self.server.containers]}}
        data = json.dumps(pod).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


def test_an_ephemeral_container_patch_lost_before_it_applied_is_repeated(tmp_path):
    """A dropped connection before the PATCH applied: the PATCH is sent again (a repeat merges by name, it cannot add a second
    container) instead of failing the probe."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), LosesFirstPatch)
    server.patches, server.containers = [], []
    threading.Thread(target=server.serve_forever, daemon=True).start()
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "lab", "users": [{"name": "u", "user": {"token": "t"}}],
        "clusters": [{"name": "lab", "cluster": {"server": f"http://127.0.0.1:{server.server_address[1]}"}}],
        "contexts": [{"name": "lab", "context": {"cluster": "lab", "user": "u"}}]}))
    try:
        client = connect(kubeconfig=str(kubeconfig), backoff=0.01)
        pod = client.request("GET", "/api/v1/namespaces/shop/pods/web")
        assert pod_probe.add_debug_container(client, pod, "app", "img", 60, "run1") == "kdprobe-run1"
    finally:
        server.shutdown()
        server.server_close()
    assert len(server.patches) == 2 and [c["name"] for c in server.containers] == ["kdprobe-run1"]


def test_the_default_debug_image_is_pinned_to_a_tag():
    name, _sep, tag = pod_probe.DEFAULT_DEBUG_IMAGE.rpartition(":")
    assert name and "/" not in tag and tag not in ("", "latest")


PSA_MESSAGE = 'pods "kdprobe-node-ab12c" is forbidden: violates PodSecurity "restricted:v1.30": host namespaces (hostNetwork=true)'
WARDEN_MESSAGE = ('admission webhook "warden-validating.common-webhooks.networking.gke.io" denied the request: GKE Warden rejected the '
                  'request because it violates one or more constraints. Violations details: {"[denied by autogke-disallow-hostnamespaces]":'
                  '["enabling hostNetwork is not allowed in Autopilot."]}')


@pytest.mark.parametrize(("message", "reason"), [
    (PSA_MESSAGE, "Pod Security restricted forbids hostNetwork in shop"),
    (WARDEN_MESSAGE, "GKE Autopilot forbids hostNetwork pods in shop"),
])
def test_an_admission_refusal_of_the_node_pod_is_told_from_rbac(message, reason):
    api = FakeApi(fail={("POST", "/pods"): KubeError(f"refused by admission policy: {message}.", status=403, server_message=message)})
    with pytest.raises(pod_probe.NodeProbeForbidden) as raised:
        pod_probe.probe_node(api, "node-1", "shop", "img", [], OPTIONS, "run1")
    assert str(raised.value) == f"{reason} ({message})" and "RBAC" not in str(raised.value)
    assert raised.value.advice and api.writes == []


def test_an_rbac_refusal_of_the_node_pod_stays_an_error():
    rbac = 'pods is forbidden: User "dev" cannot create resource "pods" in API group "" in the namespace "shop"'
    api = FakeApi(fail={("POST", "/pods"): KubeError(f"forbidden: {rbac}. Grant this user ...", status=403, server_message=rbac)})
    with pytest.raises(KubeError) as raised:
        pod_probe.probe_node(api, "node-1", "shop", "img", [], OPTIONS, "run1")
    assert not isinstance(raised.value, pod_probe.NodeProbeForbidden)


def test_a_forbidden_exec_into_the_node_pod_leaves_the_node_not_probed_and_deletes_its_pod(monkeypatch):
    """The debug pod was admitted, but RBAC refuses pods/exec: the node is not probed (its reason says so) and the pod goes."""
    exec_refused = KubeError('forbidden: pods "kdprobe-node-run1" is forbidden: User "viewer" cannot create resource "pods/exec"', status=403)
    monkeypatch.setattr(pod_probe, "probe", lambda *args: (x for x in ()).throw(exec_refused))
    api = FakeApi()
    with pytest.raises(pod_probe.NodeProbeForbidden) as raised:
        pod_probe.probe_node(api, "node-1", "shop", "img", [], OPTIONS, "run1")
    assert str(raised.value).startswith("exec into node debug pod shop/kdprobe-node-run1 is forbidden (forbidden: ")
    assert raised.value.advice == "grant RBAC create on pods/exec in shop"
    assert node_pods(api) == [] and [w[0] for w in api.writes] == ["POST", "DELETE"]


# --- proxy credentials from the pod's environment --------------------------------------------------------------------

PROXY_PASSWORD = "s3cr3t-Pw"  # noqa: S105 - a test value that must never show


def scripted_pod(detection: str, output_of):
    """A pod whose detection prints `detection` and whose every check prints output_of(record) then exits 7."""
    def run(argv, timeout):
        if argv[3] == "kddetect":
            return ExecResult(detection, "", 0)
        nonce, records = argv[6], argv[7:]
        lines = [f"{nonce} {index} o {output_of(record)}\n{nonce} {index} x 7 5\n" for index, record in enumerate(records)]
        return ExecResult("".join(lines), "", 0)
    return run


def test_proxy_credentials_from_the_pod_env_appear_nowhere_and_the_proxy_is_still_checked():
    detection = ("tool curl /usr/bin/curl curl\ntool nc /usr/bin/nc OpenBSD netcat\ntimeout gnu\n"
                 f"env https_proxy http://alice:{PROXY_PASSWORD}@proxy.corp:3128\n"
                 f"env HTTP_PROXY alice:{PROXY_PASSWORD}@proxy.corp:3128\n"
                 f"env all_proxy http://alice:{PROXY_PASSWORD}/x@proxy.corp:3128\n")
    seen = []

    def output_of(record):
        seen.append(record)
        return "connect to proxy.corp port 3128 (tcp) failed: Connection refused"

    facts = pod_probe.probe(scripted_pod(detection, output_of), parse_targets(["https://api.example.test/"]),
                            pod_probe.build_options(external_resolver=None))
    assert PROXY_PASSWORD not in repr(facts) and "alice" not in repr(facts)
    assert PROXY_PASSWORD not in repr(seen)   # nor in anything sent to the pod
    assert facts["proxy_env"]["details"]["https_proxy"] == "http://REDACTED@proxy.corp:3128"
    reach = next(c for c in facts["checks"] if c["id"] == "proxy.reach:http://REDACTED@proxy.corp:3128")
    assert reach["error_class"] == "refused" and reach["params"]["host"] == "proxy.corp" and reach["params"]["port"] == 3128
    assert "nc proxy.corp 3128" in seen


class RecordingApi:
    """An API client that must never be called."""

    def __init__(self):
        self.requests = []

    def request(self, method, path, **kwargs):
        self.requests.append((method, path))
        raise AssertionError(f"no request expected, got {method} {path}")


@pytest.mark.parametrize(("namespace", "pod", "container", "message"), [
    ("shop", "", None, "pod '' is not a valid name: it must be a DNS-1123 subdomain"),
    ("shop", "..", None, "pod '..' is not a valid name"), ("shop", "a/b", None, "pod 'a/b' is not a valid name"),
    ("shop", "web." + "a" * 64, None, "pod 'web.aaa"), ("shop", "w" * 254, None, "pod 'www"), ("shop", "Web", None, "pod 'Web'"),
    ("", "web", None, "namespace '' is not a valid name: it must be a DNS-1123 label"), ("a.b", "web", None, "namespace 'a.b'"),
    ("shop", "web", "", "container '' is not a valid name: it must be a DNS-1123 label"), ("shop", "web", "a.b", "container 'a.b'"),
    ("shop", "web", "c" * 64, "container 'ccc"),
])
def test_names_are_validated_before_any_request(namespace, pod, container, message):
    api = RecordingApi()
    with pytest.raises(KubeError, match=re.escape(message)):
        pod_probe.probe_pod(api, namespace, pod, ["https://api.example.test/"], container=container, options=OPTIONS)
    assert api.requests == []


def test_a_valid_long_pod_name_is_accepted():
    api = FakeApi()
    name = ".".join(["a" * 63] * 3) + "." + "b" * 61   # 253 characters, labels of 63
    api.pods[name] = {"metadata": {"name": name, "namespace": "shop"}, "spec": {"containers": [{"name": "app"}]}, "status": {"phase": "Pending"}}
    with pytest.raises(KubeError, match="is Pending, not Running"):
        pod_probe.probe_pod(api, "shop", name, ["https://api.example.test/"], options=OPTIONS)


# --- several pods in one run (probe_pods) -----------------------------------------------------------------------------

class FakeCluster:
    """Running pods of namespace shop whose every exec takes `delay` seconds; `missing` pods do not exist, `no_exec` pods
    refuse the exec as RBAC does, and each exec in a `flaky` pod is counted as rerun once. `execs` records the most execs
    open at once (a mapping, so that the copies probe_pods makes of the client record into it too)."""

    def __init__(self, delay=0.0, missing=(), no_exec=(), flaky=(), nodes=None):
        self.delay, self.missing, self.no_exec, self.flaky, self.nodes = delay, set(missing), set(no_exec), set(flaky), nodes or {}
        self.exec_reruns, self.execs, self.lock = 0, {"open": 0, "peak": 0}, threading.Lock()
        self.run = scripted_pod("tool curl /usr/bin/curl curl\ntimeout gnu\n", lambda record: "curl: (7) Failed to connect")

    def request(self, method, path, what="", query=None, **kwargs):
        parts = path.split("/")
        if parts[-2] == "services":
            return {"spec": {"clusterIP": "10.96.0.10"}}
        namespace, name = parts[-3], parts[-1]
        if name in self.missing:
            raise KubeError(f'{what} not found (pods "{name}" not found).', status=404)
        return {"metadata": {"name": name, "namespace": namespace}, "spec": {"containers": [{"name": "app"}],
                                                                             "nodeName": self.nodes.get(name, "node-1")},
                "status": {"phase": "Running", "podIP": "10.244.0.7"}}

    def exec_in_pod(self, namespace, pod, argv, container=None, timeout=30.0, read_only=False):
        with self.lock:
            self.execs["open"] += 1
            self.execs["peak"] = max(self.execs["peak"], self.execs["open"])
        try:
            time.sleep(self.delay)
            if pod in self.no_exec:
                raise KubeError(f'forbidden: pods "{pod}" is forbidden: User "viewer" cannot create resource "pods/exec" (exec in pod '
                                f'{namespace}/{pod}). Grant this user the RBAC permission named above, or use a context that has it.',
                                status=403)
            if pod in self.flaky:
                self.exec_reruns += 1
            return self.run(argv, timeout)
        finally:
            with self.lock:
                self.execs["open"] -= 1


def shop(*names):
    return [{"namespace": "shop", "name": name, "ref": f"shop/{name}", "containers": ["app"]} for name in names]


def test_pods_are_probed_concurrently_and_reported_in_the_given_order():
    names = ["web-3", "web-0", "api-1", "web-2", "api-0", "web-1"]
    cluster = FakeCluster(delay=0.3)
    started = time.monotonic()
    result = pod_probe.probe_pods(cluster, shop(*names), ["https://api.example.test/"], options=OPTIONS)
    elapsed = time.monotonic() - started
    # Two execs of 0.3 s per pod: 3.6 s one pod after another, about 0.6 s when all run at once.
    assert elapsed < 1.5, elapsed
    assert cluster.execs["peak"] >= len(names)
    assert [entry["pod"]["name"] for entry in result["results"]] == names
    assert all(entry["probed"] and entry["checks"] and not entry.get("failed") for entry in result["results"])
    assert result["changed"] is False


def test_at_most_eight_pods_are_probed_at_once():
    cluster = FakeCluster(delay=0.1)
    pod_probe.probe_pods(cluster, shop(*(f"web-{i}" for i in range(12))), ["https://api.example.test/"], options=OPTIONS)
    assert cluster.execs["peak"] == 8


def test_a_pod_that_fails_does_not_fail_the_others():
    cluster = FakeCluster(missing={"gone"}, no_exec={"locked"})
    result = pod_probe.probe_pods(cluster, shop("web", "gone", "locked"), ["https://api.example.test/"], options=OPTIONS)
    web, gone, locked = result["results"]
    assert web["probed"] is True and "failed" not in web and web["summary"]["fail"] > 0
    assert gone["failed"] is True and gone["probed"] is False
    assert gone["msg"].startswith("pod shop/gone not found: check the pod name and namespace") and gone["not_probed_reason"] == gone["msg"]
    assert gone["pod"] == {"namespace": "shop", "name": "gone", "container": None}
    assert [t["url"] for t in gone["targets"]] == ["https://api.example.test/"] and gone["checks"] == []
    # exec forbidden: not a failure but a pod not probed, which the verdict answers from the cluster's configuration
    assert locked["probed"] is False and "failed" not in locked and locked["checks"] == []
    reason = locked["not_probed_reason"]
    assert reason.startswith("exec into pod shop/locked is forbidden (forbidden: ") and 'cannot create resource "pods/exec"' in reason
    assert "RBAC permission" in reason and reason in locked["notes"]
    assert result["changed"] is False


def test_every_pod_failing_fails_with_each_reason():
    cluster = FakeCluster(missing={"gone", "lost"})
    with pytest.raises(pod_probe.AllPodsFailed) as raised:
        pod_probe.probe_pods(cluster, shop("gone", "lost"), ["https://api.example.test/"], options=OPTIONS)
    message = str(raised.value)
    assert message.startswith("every pod failed to be probed (2 of 2): pod shop/gone not found")
    assert "pod shop/lost not found" in message
    assert [entry["pod"]["name"] for entry in raised.value.results] == ["gone", "lost"]


def test_pods_whose_exec_is_forbidden_are_not_probed_and_do_not_fail_the_module():
    result = pod_probe.probe_pods(FakeCluster(no_exec={"a", "b"}), shop("a", "b"), ["https://api.example.test/"], options=OPTIONS)
    assert [(entry["probed"], entry.get("failed")) for entry in result["results"]] == [(False, None), (False, None)]


def test_each_pod_counts_only_its_own_exec_reruns():
    cluster = FakeCluster(flaky={"flaky"})
    result = pod_probe.probe_pods(cluster, shop("steady", "flaky"), ["https://api.example.test/"], options=OPTIONS)
    assert [entry["exec_reruns"] for entry in result["results"]] == [0, 2]


@pytest.mark.parametrize(("pods", "message"), [
    ([], "pods must be a non-empty list"), ("shop/web", "pods must be a non-empty list"),
    (["shop/web"], "pods[0] is 'shop/web', not a {namespace, name, container?} mapping"),
    ([{"namespace": "shop", "name": "web"}, {"name": "api"}], "pods[1].namespace None is not a valid name"),
    ([{"namespace": "shop", "name": "a/b"}], "pods[0].name 'a/b' is not a valid name"),
    ([{"namespace": "shop", "name": "web", "container": "a.b"}], "pods[0].container 'a.b' is not a valid name"),
])
def test_bad_pods_are_refused_before_any_request(pods, message):
    api = RecordingApi()
    with pytest.raises((ValueError, KubeError), match=re.escape(message)):
        pod_probe.probe_pods(api, pods, ["https://api.example.test/"], options=OPTIONS)
    assert api.requests == []


def test_pods_on_the_same_node_share_one_node_probe(monkeypatch):
    started = []

    def probe_node(client, node, namespace, image, targets, options, run_id):
        started.append((node, namespace))
        time.sleep(0.2)   # still running when the other pods of the node ask for it
        return {"probed": True, "runner": {"mode": "node_debug_pod", "node": node}, "checks": [], "targets": [], "summary": {}}

    monkeypatch.setattr(pod_probe, "probe_node", probe_node)
    cluster = FakeCluster(nodes={"a": "node-1", "b": "node-1", "c": "node-2", "d": "node-1"})
    pods = [*shop("a", "b", "c"), {"namespace": "billing", "name": "d"}]
    result = pod_probe.probe_pods(cluster, pods, ["https://api.example.test/"], options=OPTIONS, node_probe=True)
    assert sorted(started) == [("node-1", "billing"), ("node-1", "shop"), ("node-2", "shop")]
    assert [entry["node"]["runner"]["node"] for entry in result["results"]] == ["node-1", "node-1", "node-2", "node-1"]


# --- a shell-less pod whose ephemeral debug container is refused ------------------------------------------------------

PSA_REFUSAL = ('pods "static" is forbidden: violates PodSecurity "restricted:latest": allowPrivilegeEscalation != false '
               '(container "kdprobe-x" must set securityContext.allowPrivilegeEscalation=false)')
RBAC_REFUSAL = 'pods "static" is forbidden: User "diag" cannot patch resource "pods/ephemeralcontainers" in the namespace "shop"'


class ShellLessPod:
    """A running distroless pod: every exec finds no shell, and the ephemeral-container PATCH fails with `refusal`."""

    def __init__(self, refusal):
        self.refusal, self.patches, self.exec_reruns = refusal, 0, 0

    def request(self, method, path, what="", query=None, body=None, content_type=None, repeatable=False):
        if path.endswith("/services/kube-dns"):
            return {"spec": {"clusterIP": "10.96.0.10"}}
        if method == "PATCH":
            self.patches += 1
            raise self.refusal
        return {"metadata": {"name": "static", "namespace": "shop"}, "spec": {"containers": [{"name": "app"}], "nodeName": "node-1"},
                "status": {"phase": "Running", "podIP": "10.244.0.9"}}

    def exec_in_pod(self, namespace, pod, argv, container=None, timeout=30.0, read_only=False):
        return ExecResult("", "", None, error='exec: "sh": executable file not found in $PATH')


@pytest.mark.parametrize(("server_message", "said"), [
    (PSA_REFUSAL, "Pod Security restricted forbids it in shop (" + PSA_REFUSAL + "); set debug_image to an image whose container "
                  "satisfies restricted"),
    (RBAC_REFUSAL, RBAC_REFUSAL + "; grant RBAC patch on pods/ephemeralcontainers in shop"),
])
def test_a_refused_debug_container_leaves_the_pod_not_probed_instead_of_failed(server_message, said):
    """Refused outright (403): nothing was added; the pod is reported not probed with why, so the diagnosis answers it from
    the cluster's configuration instead of failing it."""
    api = ShellLessPod(KubeError(f"forbidden: {server_message}", status=403, server_message=server_message))
    result = pod_probe.probe_pod(api, "shop", "static", ["https://api.example.test/"], options=OPTIONS, debug_container=True)
    assert result["probed"] is False and "failed" not in result and result["changed"] is False and api.patches == 1
    assert result["not_probed_reason"].startswith("container 'app' of pod shop/static has no shell to run the probes")
    assert f"; the ephemeral debug container was refused: {said}" in result["not_probed_reason"]
    assert result["checks"] == [] and [t["url"] for t in result["targets"]] == ["https://api.example.test/"]
    assert result["pod"]["dns_policy"] == "ClusterFirst" and result["pod"]["host_network"] is False


@pytest.mark.parametrize("error", [KubeError("HTTP 500 Internal Server Error", status=500),
                                   KubeError('pods "static" not found', status=404)])
def test_other_debug_container_failures_still_fail_the_pod(error):
    with pytest.raises(KubeError, match=str(error)):
        pod_probe.probe_pod(ShellLessPod(error), "shop", "static", ["https://api.example.test/"], options=OPTIONS, debug_container=True)


def test_a_shell_less_pod_without_a_debug_container_says_what_to_allow():
    api = ShellLessPod(AssertionError("no ephemeral container may be asked for"))
    result = pod_probe.probe_pod(api, "shop", "static", ["https://api.example.test/"], options=OPTIONS)
    assert result["probed"] is False and api.patches == 0
    reason = result["not_probed_reason"]
    assert reason.startswith("container 'app' of pod shop/static has no shell") and ". set debug_container: true to probe" in reason
    assert f"{reason[:reason.index('. set debug_container')]}. Not probed: set debug_container: true" in result["notes"][-1]
