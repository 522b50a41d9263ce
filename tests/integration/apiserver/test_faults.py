"""Faults a scenario asks of the API server: throttling with Retry-After, 500s, dropped connections, latency, down."""

import http.client
import socket
import time
import urllib.error

import pytest
from apiserver_testlib import raw_request

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
