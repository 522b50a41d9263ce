"""KubeClient against the lab API server's fault injection (issue 17): reads and execs ride out 429, 5xx and dropped
connections within their budget, and a failure names the attempts made."""

import time

import pytest
from apiserver_testlib import raw_request

from ansible_collections.kubediag.egress.plugins.module_utils.kube import KubeError, api_path, connect

LAB = 0
RUNS = 20
TIMEOUT = 10.0  # the exec's timeout, and api_timeout: the budget of one run below is 4 x this


@pytest.fixture
def set_faults(apiserver):
    def put(spec: dict) -> None:
        status, _unused, _unused = raw_request(apiserver, "PUT", "/_lab/faults", spec, cluster=LAB)
        assert status == 200
    yield put
    put({})


def one_run(apiserver):
    """What a diagnosis reads of one pod (the pod, its namespace's pods and policies, the cluster DNS) and one probe exec."""
    kube = connect(kubeconfig=apiserver["kubeconfig"], context="lab", timeout=TIMEOUT, backoff=0.2)
    pod = kube.request("GET", api_path("v1", "pods", "shop", "web"), what="pod shop/web")
    pods = kube.list("v1", "pods", "shop", what="pods in shop")
    policies = kube.list("networking.k8s.io/v1", "networkpolicies", "shop", what="networkpolicies in shop")
    dns = kube.request("GET", api_path("v1", "services", "kube-system", "kube-dns"), what="service kube-dns")
    run = kube.exec_in_pod("shop", "web", ["sh", "-c", "echo probed; exit 3"], timeout=TIMEOUT, read_only=True)
    return (pod["metadata"]["name"], sorted(p["metadata"]["name"] for p in pods), len(policies), dns["spec"]["clusterIP"],
            run.stdout, run.exit_code)


def runs_under(apiserver, set_faults, faults):
    set_faults({})
    expected = one_run(apiserver)
    set_faults(faults)
    outcomes = []
    for _unused in range(RUNS):
        started = time.monotonic()
        try:
            outcomes.append((one_run(apiserver), time.monotonic() - started))
        except KubeError as error:
            outcomes.append((error, time.monotonic() - started))
    return expected, outcomes


def test_mixed_faults_change_no_outcome(apiserver, set_faults):
    faults = {"throttle": {"fraction": 0.1, "retry_after": 1}, "errors": {"fraction": 0.1, "code": 503}, "drop": {"fraction": 0.05}}
    expected, outcomes = runs_under(apiserver, set_faults, faults)
    assert [outcome for outcome, _seconds in outcomes] == [expected] * RUNS
    assert max(seconds for _outcome, seconds in outcomes) < 4 * TIMEOUT


def test_heavy_throttling_fails_at_most_once_and_says_what_was_tried(apiserver, set_faults):
    faults = {"throttle": {"fraction": 0.3, "retry_after": 1}, "errors": {"fraction": 0.1, "code": 500}}
    expected, outcomes = runs_under(apiserver, set_faults, faults)
    failures = [outcome for outcome, _seconds in outcomes if outcome != expected]
    assert len(failures) <= 1, failures
    for failure in failures:
        assert isinstance(failure, KubeError) and " attempts over " in str(failure)
    assert max(seconds for _outcome, seconds in outcomes) < 4 * TIMEOUT
