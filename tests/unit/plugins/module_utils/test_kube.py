import base64
import contextlib
import email.utils
import hashlib
import json
import os
import re
import socket
import struct
import threading
import time

import pytest
import yaml
from websocket import WebSocketBadStatusException

from ansible_collections.kubediag.egress.plugins.module_utils.k8s.client import (
    EXEC_OUTPUT_CAP,
    ApiError,
    KubeClient,
    KubeError,
    RateLimiter,
    _exec_result,
    _retry_after,
    api_path,
    connect,
    handshake_error,
)


@pytest.mark.parametrize(
    ("status", "exit_code", "error"),
    [
        ('{"metadata":{},"status":"Success"}', 0, ""),
        (
            '{"metadata":{},"status":"Failure","message":"command terminated with non-zero exit code: error executing command [sh -c exit 7],'
            ' exit code 7","reason":"NonZeroExitCode","details":{"causes":[{"reason":"ExitCode","message":"7"}]}}',
            7,
            "",
        ),
        (
            '{"metadata":{},"status":"Failure","message":"OCI runtime exec failed: exec failed: unable to start container process:'
            ' exec: \\"curl\\": executable file not found in $PATH: unknown","reason":"InternalError"}',
            None,
            'exec: "curl": executable file not found in $PATH',
        ),
    ],
)
def test_exec_status_channel_gives_exit_code_or_error(status, exit_code, error):
    result = _exec_result("out", "err", status, 0.1)
    assert result.exit_code == exit_code
    assert error in result.error
    assert (result.stdout, result.stderr) == ("out", "err")


def test_refused_exec_upgrade_is_explained_with_the_servers_message(tmp_path):
    """What websocket-client raises when the API server answers the exec upgrade with a 403 Status."""
    body = (b'{"kind":"Status","apiVersion":"v1","status":"Failure","message":"pods \\"web\\" is forbidden: User \\"viewer\\" cannot create '
            b'resource \\"pods/exec\\" in API group \\"\\" in the namespace \\"shop\\"","reason":"Forbidden","code":403}')
    refused = WebSocketBadStatusException("Handshake status 403 Forbidden", 403, "Forbidden", {"content-type": "application/json"}, body)
    kube = connect(kubeconfig=_kubeconfig(tmp_path, "https://127.0.0.1:1"))
    error = kube.explain(handshake_error(refused), "exec in pod shop/web")
    assert error.status == 403
    assert str(error) == ('forbidden: pods "web" is forbidden: User "viewer" cannot create resource "pods/exec" in API group "" in the '
                          'namespace "shop" (exec in pod shop/web). Grant this user the RBAC permission named above, or use a context that has it.')


@pytest.mark.parametrize("message", [
    'pods "kdprobe-node-ab12c" is forbidden: violates PodSecurity "baseline:latest": host namespaces (hostNetwork=true)',
    'admission webhook "warden-validating.common-webhooks.networking.gke.io" denied the request: GKE Warden rejected the request because '
    'it violates one or more constraints. Violations details: {"[denied by autogke-disallow-hostnamespaces]":["enabling hostNetwork is '
    'not allowed in Autopilot."]}',
])
def test_an_admission_refusal_is_not_blamed_on_rbac(tmp_path, message):
    body = json.dumps({"kind": "Status", "apiVersion": "v1", "status": "Failure", "message": message, "reason": "Forbidden", "code": 403})
    kube = connect(kubeconfig=_kubeconfig(tmp_path, "https://127.0.0.1:1"))
    error = kube.explain(ApiError(403, "Forbidden", body), "node debug pod in namespace shop")
    assert (error.status, error.server_message) == (403, message)
    assert str(error) == f"refused by admission policy: {message}." and "RBAC" not in str(error)


@pytest.mark.parametrize(("args", "path"), [
    (("v1", "pods", "shop", "web", "log"), "/api/v1/namespaces/shop/pods/web/log"),
    (("v1", "nodes"), "/api/v1/nodes"),
    (("apps/v1", "deployments", "shop", "web"), "/apis/apps/v1/namespaces/shop/deployments/web"),
    (("networking.k8s.io/v1", "networkpolicies"), "/apis/networking.k8s.io/v1/networkpolicies"),
])
def test_api_path(args, path):
    assert api_path(*args) == path


@pytest.mark.parametrize(("args", "message"), [
    (("v1", "pods", "shop", ""), "pods name '' cannot be part of an API path"),      # else a GET of a pod turns into a LIST
    (("v1", "pods", "shop", ".."), "pods name '..' cannot"), (("v1", "pods", "shop", "."), "pods name '.' cannot"),
    (("v1", "pods", "shop", "a/b"), "pods name 'a/b' cannot"), (("v1", "pods", "shop", "%2e%2e"), "cannot be part of an API path"),
    (("v1", "pods", "", "web"), "namespace '' is not a valid name"), (("v1", "pods", "..", "web"), "namespace '..' is not a valid name"),
    (("v1", "pods", "a" * 64), "namespace 'aaaa"), (("v1", "pods", "Shop"), "namespace 'Shop' is not a valid name: it must be a DNS-1123 label"),
])
def test_api_path_refuses_a_name_that_would_change_the_url(args, message):
    with pytest.raises(KubeError, match=re.escape(message)):
        api_path(*args)


def test_missing_kubeconfig_is_named(tmp_path):
    missing = tmp_path / "nope"
    with pytest.raises(KubeError, match=f"kubeconfig {missing} does not exist"):
        connect(kubeconfig=str(missing))


def _kubeconfig(tmp_path, server):
    path = tmp_path / "kubeconfig"
    path.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "lab",
        "clusters": [{"name": "lab", "cluster": {"server": server}}],
        "users": [{"name": "u", "user": {"token": "t"}}],
        "contexts": [{"name": "lab", "context": {"cluster": "lab", "user": "u"}}],
    }))
    return str(path)


def test_unknown_context_is_named(tmp_path):
    with pytest.raises(KubeError, match="context 'elsewhere'"):
        connect(kubeconfig=_kubeconfig(tmp_path, "https://127.0.0.1:1"), context="elsewhere")


def _two_context_kubeconfig(path, current="prod-eu"):
    config = {"apiVersion": "v1", "kind": "Config",
              "clusters": [{"name": "eu", "cluster": {"server": "https://127.0.0.1:1"}}],
              "users": [{"name": "admin", "user": {"token": "s3cr3t-token-value"}}],
              "contexts": [{"name": name, "context": {"cluster": "eu", "user": "admin"}} for name in ("prod-eu", "staging-eu")]}
    if current:
        config["current-context"] = current
    path.write_text(yaml.safe_dump(config))
    return str(path)


def test_a_context_missing_from_the_kubeconfig_lists_the_contexts_it_has_and_no_credential(tmp_path):
    path = _two_context_kubeconfig(tmp_path / "config")
    with pytest.raises(KubeError) as raised:
        connect(kubeconfig=path, context="prod-us")
    message = str(raised.value)
    assert message.startswith(f"context 'prod-us' is not in kubeconfig {path}: it has 'prod-eu', 'staging-eu';"), message
    assert "s3cr3t" not in message and "admin" not in message


def test_no_context_and_no_current_context_lists_the_contexts(tmp_path):
    with pytest.raises(KubeError, match=r"no context was given and there is no current-context in .*: it has 'prod-eu', 'staging-eu'"):
        connect(kubeconfig=_two_context_kubeconfig(tmp_path / "config", current=None))


def test_a_current_context_that_is_not_there_is_named(tmp_path):
    with pytest.raises(KubeError, match=r"the current-context 'gone' is not in kubeconfig .*: it has 'prod-eu', 'staging-eu'"):
        connect(kubeconfig=_two_context_kubeconfig(tmp_path / "config", current="gone"))


def test_a_kubeconfig_mapping_missing_the_context_lists_its_contexts(tmp_path):
    with open(_two_context_kubeconfig(tmp_path / "config"), encoding="utf-8") as handle:
        config = yaml.safe_load(handle)
    with pytest.raises(KubeError, match="context 'nope' is not in the kubeconfig given as a mapping: it has 'prod-eu', 'staging-eu'"):
        connect(kubeconfig=config, context="nope")


def test_invalid_kubeconfig_yaml_is_named_without_quoting_the_file(tmp_path):
    path = tmp_path / "config"
    path.write_text("users:\n- name: u\n  user: {token: s3cr3t-token-value\n")
    with pytest.raises(KubeError, match="is not valid YAML at line") as raised:
        connect(kubeconfig=str(path))
    assert "s3cr3t" not in str(raised.value)


def test_without_kubeconfig_and_context_the_default_kubeconfig_and_its_current_context_are_used(tmp_path, monkeypatch):
    home = tmp_path / "home"
    (home / ".kube").mkdir(parents=True)
    _two_context_kubeconfig(home / ".kube" / "config", current="staging-eu")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("KUBECONFIG", raising=False)
    kube = connect()
    assert (kube.context, kube.server) == ("staging-eu", "https://127.0.0.1:1")


def test_kubeconfig_env_is_a_path_list_merged_like_kubectl(tmp_path, monkeypatch):
    """KUBECONFIG=missing:first:second: files that do not exist are skipped, the first current-context set wins."""
    first = _two_context_kubeconfig(tmp_path / "first", current="staging-eu")
    second = tmp_path / "second"
    second.write_text(yaml.safe_dump({"apiVersion": "v1", "kind": "Config", "current-context": "dev",
                                      "clusters": [{"name": "dev", "cluster": {"server": "https://127.0.0.2:1"}}],
                                      "users": [{"name": "dev", "user": {"token": "d"}}],
                                      "contexts": [{"name": "dev", "context": {"cluster": "dev", "user": "dev"}}]}))
    monkeypatch.setenv("KUBECONFIG", os.pathsep.join([str(tmp_path / "missing"), first, str(second)]))
    assert connect().context == "staging-eu"
    kube = connect(context="dev")
    assert (kube.context, kube.server, kube.auth_headers()) == ("dev", "https://127.0.0.2:1", {"authorization": "Bearer d"})
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "missing"))
    with pytest.raises(KubeError, match="does not exist"):
        connect()


def test_unreachable_api_server_is_a_sentence_not_a_traceback(tmp_path):
    with socket.socket() as sock:  # a port that was free a moment ago: connection refused
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    kube = connect(kubeconfig=_kubeconfig(tmp_path, f"http://127.0.0.1:{port}"), retries=1, backoff=0.01, timeout=2)
    with pytest.raises(KubeError, match=f"cannot reach the Kubernetes API server at http://127.0.0.1:{port}"):
        kube.request("GET", api_path("v1", "namespaces"))


def test_explicit_api_key_wins_over_the_kubeconfig_token(tmp_path):
    kube = connect(kubeconfig=_kubeconfig(tmp_path, "https://127.0.0.1:1"), api_key="explicit")
    assert kube.auth_headers() == {"authorization": "Bearer explicit"}


def test_kubeconfig_token_is_used_without_api_key(tmp_path):
    kube = connect(kubeconfig=_kubeconfig(tmp_path, "https://127.0.0.1:1"))
    assert kube.auth_headers() == {"authorization": "Bearer t"}


# ---------------------------------------------------------------- hostile API servers: small raw-socket fakes


def _serve(handler):
    """A local server whose every connection (numbered from 0) is handed to handler(conn, n) in its own thread."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    seen = []

    def accept():
        while True:
            try:
                conn, _unused = listener.accept()
            except OSError:
                return
            seen.append(conn)
            threading.Thread(target=_handle, args=(handler, conn, len(seen) - 1), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    return listener, seen


def _handle(handler, conn, index):
    with contextlib.suppress(OSError):
        handler(conn, index)


def _read_request(conn):
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(4096)
        if not chunk:
            break
        data += chunk
    return data.decode("latin-1")


def _upgrade(conn):
    request = _read_request(conn)
    key = re.search(r"(?im)^sec-websocket-key:\s*(\S+)", request).group(1)
    accept = base64.b64encode(hashlib.sha1((key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").encode()).digest()).decode()  # noqa: S324
    conn.sendall((f"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n"
                  "Sec-WebSocket-Protocol: v5.channel.k8s.io\r\n\r\n").encode())


def _frame(channel, data, opcode=0x2):
    payload = bytes([channel]) + data
    size = len(payload)
    if size < 126:
        header = bytes([0x80 | opcode, size])
    elif size < 65536:
        header = bytes([0x80 | opcode, 126]) + struct.pack("!H", size)
    else:
        header = bytes([0x80 | opcode, 127]) + struct.pack("!Q", size)
    return header + payload


STATUS_OK = b'{"metadata":{},"status":"Success"}'
CLOSE = bytes([0x88, 0])


@pytest.fixture
def hostile(tmp_path):
    listeners = []

    def start(handler, **options):
        listener, seen = _serve(handler)
        listeners.append(listener)
        kube = connect(kubeconfig=_kubeconfig(tmp_path, f"http://127.0.0.1:{listener.getsockname()[1]}"), **options)
        return kube, seen
    yield start
    for listener in listeners:
        listener.close()


def _timed(call):
    started = time.monotonic()
    try:
        return call(), time.monotonic() - started
    except KubeError as error:
        return error, time.monotonic() - started


def test_exec_upgrade_never_answered_ends_within_the_timeout(hostile):
    kube, _seen = hostile(lambda conn, n: (_read_request(conn), time.sleep(30)))
    error, seconds = _timed(lambda: kube.exec_in_pod("shop", "web", ["true"], timeout=1.5))
    assert isinstance(error, KubeError) and "did not complete the websocket upgrade" in str(error)
    assert "did not finish within 1.5s" in str(error) and seconds < 2.5


def test_exec_half_frame_ends_within_the_timeout(hostile):
    kube, _seen = hostile(lambda conn, n: (_upgrade(conn), conn.sendall(_frame(1, b"partial output")[:5]), time.sleep(30)))
    error, seconds = _timed(lambda: kube.exec_in_pod("shop", "web", ["true"], timeout=1.5))
    assert isinstance(error, KubeError) and "output stopped arriving" in str(error) and seconds < 2.5


def test_exec_trickling_one_frame_ends_within_the_timeout(hostile):
    def trickle(conn, n):
        _upgrade(conn)
        for byte in _frame(1, b"x" * 100):
            conn.sendall(bytes([byte]))
            time.sleep(0.1)
    kube, _seen = hostile(trickle)
    error, seconds = _timed(lambda: kube.exec_in_pod("shop", "web", ["true"], timeout=1.5))
    assert isinstance(error, KubeError) and "did not finish within 1.5s" in str(error) and seconds < 2.5


def test_exec_flood_is_cut_and_marked_truncated_in_linear_time(hostile):
    def flood(conn, n):
        _upgrade(conn)
        chunk = _frame(1, b"y" * 65536)
        while True:
            conn.sendall(chunk)
    kube, _seen = hostile(flood)
    result, seconds = _timed(lambda: kube.exec_in_pod("shop", "web", ["yes"], timeout=10))
    assert result.truncated and result.exit_code is None and "more than 4 MiB" in result.error
    assert len(result.stdout) == EXEC_OUTPUT_CAP and seconds < 5


def test_exec_closed_without_status_is_an_error_not_exit_0(hostile):
    kube, _seen = hostile(lambda conn, n: (_upgrade(conn), conn.sendall(_frame(1, b"half the output") + CLOSE)))
    with pytest.raises(KubeError, match="closed the exec without the command's exit status"):
        kube.exec_in_pod("shop", "web", ["true"], timeout=5, read_only=False)


def test_exec_dropped_mid_way_is_an_error_unless_read_only(hostile):
    def drop_first(conn, n):
        _upgrade(conn)
        if n == 0:
            conn.sendall(_frame(1, b"cut "))
            conn.close()
            return
        conn.sendall(_frame(1, b"whole") + _frame(3, STATUS_OK) + CLOSE)
    kube, seen = hostile(drop_first, backoff=0.01)
    with pytest.raises(KubeError, match=r"was cut: the connection was lost .* \(1 attempt over .*not run again: the caller did not mark"):
        kube.exec_in_pod("shop", "web", ["touch", "/x"], timeout=5)
    seen.clear()
    result = kube.exec_in_pod("shop", "web", ["cat", "/etc/resolv.conf"], timeout=5, read_only=True)
    assert (result.stdout, result.exit_code, result.reruns, kube.exec_reruns, len(seen)) == ("whole", 0, 1, 1, 2)


def test_exec_upgrade_throttled_is_retried_with_lower_case_retry_after(hostile):
    def throttle_first(conn, n):
        if n == 0:
            _read_request(conn)
            conn.sendall(b"HTTP/1.1 429 Too Many Requests\r\nretry-after: 0\r\nContent-Length: 0\r\n\r\n")
            return
        _upgrade(conn)
        conn.sendall(_frame(1, b"ok") + _frame(3, STATUS_OK) + CLOSE)
    kube, seen = hostile(throttle_first, backoff=5)  # a 5 s backoff would fail the bound: Retry-After 0 is what is waited
    result, seconds = _timed(lambda: kube.exec_in_pod("shop", "web", ["true"], timeout=5))
    assert (result.stdout, result.exit_code, len(seen)) == ("ok", 0, 2) and seconds < 2


def _http(status, body=b"{}", headers=""):
    return f"HTTP/1.1 {status}\r\nContent-Length: {len(body)}\r\nConnection: close\r\n{headers}\r\n".encode() + body


def test_request_deadline_is_total_even_for_a_trickled_body(hostile):
    def trickle(conn, n):
        _read_request(conn)
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n")
        for _unused in range(100):
            conn.sendall(b" ")
            time.sleep(0.1)
    kube, _seen = hostile(trickle, retries=0, timeout=1)
    error, seconds = _timed(lambda: kube.request("GET", "/api/v1/namespaces"))
    assert isinstance(error, KubeError) and "did not answer the Kubernetes API within api_timeout=1s (1 attempt" in str(error) and seconds < 1.6


def test_reads_retry_and_the_message_counts_the_real_attempts(hostile):
    kube, seen = hostile(lambda conn, n: (_read_request(conn), conn.sendall(_http("503 Service Unavailable"))), retries=2, backoff=0.01)
    with pytest.raises(KubeError, match=r"last answer HTTP 503: .*; 3 attempts over \d+\.\ds, backoff_retries=2 spent"):
        kube.request("GET", "/api/v1/pods", what="the list of pods")
    assert len(seen) == 3


def test_a_create_is_not_repeated_after_a_5xx_and_says_so(hostile):
    kube, seen = hostile(lambda conn, n: (_read_request(conn), conn.sendall(_http("500 Internal Server Error"))), backoff=0.01)
    with pytest.raises(KubeError, match=r"1 attempt over .*a POST is not repeated once the server may have applied it"):
        kube.request("POST", "/api/v1/namespaces/shop/pods", body={}, what="node debug pod shop/x")
    assert len(seen) == 1


def test_a_create_dropped_after_sending_is_not_repeated_and_may_have_happened(hostile):
    kube, seen = hostile(lambda conn, n: (_read_request(conn), conn.close()), backoff=0.01)
    with pytest.raises(KubeError, match="the POST may have been applied"):
        kube.request("POST", "/api/v1/namespaces/shop/pods", body={}, what="node debug pod shop/x")
    assert len(seen) == 1


def _first_line(conn):
    return _read_request(conn).split("\r\n", 1)[0]


def test_a_named_create_whose_answer_was_lost_is_repeated_and_its_409_means_it_was_created(hostile):
    """The first POST reaches the server and its answer is lost; the repeat is refused as a duplicate; the pod is read back."""
    pod = b'{"kind":"Pod","metadata":{"name":"kdprobe-node-run1"}}'
    conflict = b'{"kind":"Status","reason":"AlreadyExists","code":409,"message":"pods \\"kdprobe-node-run1\\" already exists"}'
    lines = []

    def lost_then_conflict(conn, n):
        lines.append(_first_line(conn))
        if n == 0:
            conn.close()
        else:
            conn.sendall(_http("409 Conflict", conflict) if n == 1 else _http("200 OK", pod))
    kube, _seen = hostile(lost_then_conflict, backoff=0.01)
    body = {"metadata": {"name": "kdprobe-node-run1"}}
    assert kube.create("/api/v1/namespaces/shop/pods", body, what="node debug pod")["metadata"]["name"] == "kdprobe-node-run1"
    assert [line.split(" ")[:2] for line in lines] == [["POST", "/api/v1/namespaces/shop/pods"], ["POST", "/api/v1/namespaces/shop/pods"],
                                                       ["GET", "/api/v1/namespaces/shop/pods/kdprobe-node-run1"]]


def test_a_named_create_is_repeated_after_a_5xx(hostile):
    kube, seen = hostile(lambda conn, n: (_read_request(conn), conn.sendall(_http("503 Service Unavailable") if n == 0 else
                                                                            _http("201 Created", b'{"kind":"Pod"}'))), backoff=0.01)
    assert kube.create("/api/v1/namespaces/shop/pods", {"metadata": {"name": "x"}}, what="node debug pod") == {"kind": "Pod"}
    assert len(seen) == 2


def test_a_named_create_refused_as_a_duplicate_at_once_is_not_taken_for_ours(hostile):
    """A 409 to the first attempt: someone else's object holds the name; it is not read back as if this run had made it."""
    kube, seen = hostile(lambda conn, n: (_read_request(conn), conn.sendall(_http("409 Conflict"))), backoff=0.01)
    with pytest.raises(KubeError) as refused:
        kube.create("/api/v1/namespaces/shop/pods", {"metadata": {"name": "x"}}, what="node debug pod shop/x")
    assert refused.value.status == 409 and len(seen) == 1


def test_a_delete_is_repeated_after_a_5xx_or_a_lost_answer(hostile):
    def flaky(conn, n):
        _read_request(conn)
        if n == 0:
            conn.sendall(_http("500 Internal Server Error"))
        elif n == 1:
            conn.close()
        else:
            conn.sendall(_http("200 OK", b'{"kind":"Pod"}'))
    kube, seen = hostile(flaky, backoff=0.01)
    assert kube.request("DELETE", "/api/v1/namespaces/shop/pods/x") == {"kind": "Pod"}
    assert len(seen) == 3


def test_a_throttled_create_is_retried(hostile):
    def throttle_first(conn, n):
        _read_request(conn)
        conn.sendall(_http("429 Too Many Requests", headers="RETRY-AFTER: 0\r\n") if n == 0 else _http("201 Created", b'{"kind":"Pod"}'))
    kube, seen = hostile(throttle_first, backoff=5)
    assert kube.request("POST", "/api/v1/namespaces/shop/pods", body={}) == {"kind": "Pod"}
    assert len(seen) == 2


def test_the_budget_ends_retries_before_the_backoff_count(hostile):
    kube, seen = hostile(lambda conn, n: (_read_request(conn), conn.sendall(_http("429 Too Many Requests", headers="Retry-After: 1\r\n"))),
                         retries=50, budget=2.5)
    error, seconds = _timed(lambda: kube.request("GET", "/api/v1/pods"))
    assert "the time budget is spent" in str(error) and seconds < 3 and 2 <= len(seen) <= 3


@pytest.mark.parametrize(("headers", "seconds"), [
    ({"retry-after": "2"}, 2.0), ({"Retry-After": "0"}, 0.0), ({"RETRY-AFTER": "1.5"}, 1.5), ({}, None), ({"Retry-After": "soon"}, None),
])
def test_retry_after_in_any_case(headers, seconds):
    assert _retry_after(headers) == seconds


def test_retry_after_as_an_http_date():
    later = email.utils.formatdate(time.time() + 10, usegmt=True)
    assert 8 <= _retry_after({"retry-after": later}) <= 10


class RepeatingPages:
    """A collection whose server hands back the same continue token on every page."""

    list = KubeClient.list

    def __init__(self):
        self.pages = 0

    def request(self, method, path, what="", query=None, **kwargs):
        self.pages += 1
        return {"items": [{"metadata": {"name": f"p{self.pages}"}}], "metadata": {"continue": "same"}}


def test_a_repeated_continue_token_is_a_clear_error():
    api = RepeatingPages()
    with pytest.raises(KubeError, match=r"same continue token twice while listing the list of pods \(after 2 items"):
        api.list("v1", "pods", "shop", what="the list of pods")
    assert api.pages == 2


def test_rate_limit_spaces_requests_after_the_burst():
    limiter = RateLimiter(qps=20, burst=2)
    started = time.monotonic()
    for _unused in range(6):
        limiter.wait()
    assert 0.17 <= time.monotonic() - started < 0.5
