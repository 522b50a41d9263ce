"""Faults a scenario asks of the API server: throttling with Retry-After, 500s, dropped connections, latency, down."""

import http.client
import socket
import time
import urllib.error

import pytest
from apiserver_testlib import audit_records, raw_request

BROKEN = 1  # the "broken" cluster of the test config; faults are set at run time through /_lab/faults


@pytest.fixture
def set_faults(apiserver):
    def put(spec: dict) -> None:
        status, _unused, _unused = raw_request(apiserver, "PUT", "/_lab/faults", spec, cluster=BROKEN)
        assert status == 200
    yield put
    put({})


def test_throttle_answers_429_with_retry_after_then_recovers(apiserver, set_faults):
    set_faults({"throttle": {"requests": 2, "retry_after": 3}})
    answers = [raw_request(apiserver, "GET", "/api/v1/namespaces", cluster=BROKEN) for _unused in range(3)]
    assert [a[0] for a in answers] == [429, 429, 200]
    assert answers[0][1]["Retry-After"] == "3"
    assert (answers[0][2]["reason"], answers[0][2]["details"]["retryAfterSeconds"]) == ("TooManyRequests", 3)


def test_error_fraction_one_fails_every_request(apiserver, set_faults):
    set_faults({"errors": {"fraction": 1.0, "code": 503}})
    status, _unused, body = raw_request(apiserver, "GET", "/api/v1/pods", cluster=BROKEN)
    assert (status, body["reason"]) == (503, "InternalError")


def test_dropped_connection(apiserver, set_faults):
    set_faults({"drop": {"requests": 1}})
    with pytest.raises((urllib.error.URLError, http.client.RemoteDisconnected, ConnectionResetError)):
        raw_request(apiserver, "GET", "/api/v1/pods", cluster=BROKEN)
    assert raw_request(apiserver, "GET", "/api/v1/pods", cluster=BROKEN)[0] == 200


def test_latency(apiserver, set_faults):
    set_faults({"latency_ms": 300})
    started = time.monotonic()
    assert raw_request(apiserver, "GET", "/version", cluster=BROKEN)[0] == 200
    assert time.monotonic() - started >= 0.3


def test_down_cluster_refuses_connections(apiserver):
    offline = apiserver["clusters"][2]
    assert offline["down"] is True
    with pytest.raises(ConnectionRefusedError), socket.create_connection(("127.0.0.1", offline["port"]), timeout=2):
        pass


def test_fault_control_needs_the_admin_token(apiserver):
    status, _unused, _unused = raw_request(apiserver, "PUT", "/_lab/faults", {"down": False}, token="dev-token", cluster=BROKEN)  # noqa: S106
    assert status == 401


def test_a_fault_aimed_at_one_method_and_path_spares_the_rest_and_keeps_its_count(apiserver, set_faults):
    set_faults({"errors": {"requests": 1, "code": 503, "methods": ["post"], "path": "^/api/v1/namespaces/[^/]+/configmaps$"}})
    assert raw_request(apiserver, "GET", "/api/v1/namespaces/default/configmaps", cluster=BROKEN)[0] == 200
    assert raw_request(apiserver, "POST", "/api/v1/namespaces", {"metadata": {"name": "aimed"}}, cluster=BROKEN)[0] == 201
    configmap = {"metadata": {"name": "aimed"}, "data": {}}
    assert raw_request(apiserver, "POST", "/api/v1/namespaces/aimed/configmaps", configmap, cluster=BROKEN)[0] == 503
    assert raw_request(apiserver, "POST", "/api/v1/namespaces/aimed/configmaps", configmap, cluster=BROKEN)[0] == 201


def test_drop_after_write_applies_the_create_and_loses_the_answer(apiserver, set_faults):
    set_faults({"drop_after_write": {"requests": 1, "methods": ["POST"], "path": "/pods$"}})
    pod = {"metadata": {"name": "written", "namespace": "default"}, "spec": {"containers": [{"name": "c", "image": "busybox"}]}}
    with pytest.raises((urllib.error.URLError, http.client.RemoteDisconnected, ConnectionResetError)):
        raw_request(apiserver, "POST", "/api/v1/namespaces/default/pods", pod, cluster=BROKEN)
    status, _unused, stored = raw_request(apiserver, "GET", "/api/v1/namespaces/default/pods/written", cluster=BROKEN)
    assert (status, stored["metadata"]["name"]) == (200, "written")
    [record] = [r for r in audit_records(apiserver) if r["verb"] == "create" and r["name"] == "written"]
    assert (record["code"], record["fault"]) == (201, "drop_after_write")
    again = raw_request(apiserver, "POST", "/api/v1/namespaces/default/pods", pod, cluster=BROKEN)
    assert again[0] == 409  # the count is spent: the next create answers, and finds the first one stored
    raw_request(apiserver, "DELETE", "/api/v1/namespaces/default/pods/written", cluster=BROKEN)


@pytest.mark.parametrize(("spec", "message"), [
    ({"drop": {"methods": ["FETCH"]}}, "faults.drop.methods: ['FETCH'] are not HTTP methods"),
    ({"errors": {"path": "(["}}, "faults.errors.path: '([' is not a regular expression"),
])
def test_a_bad_fault_set_is_refused_and_names_the_field(apiserver, spec, message):
    status, _unused, body = raw_request(apiserver, "PUT", "/_lab/faults", spec, cluster=BROKEN)
    assert status == 400 and message in body["message"]
