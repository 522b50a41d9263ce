"""Issue 17's done-when: the diagnosis (pod selection, pod_probe with its node debug pod, the cluster reads the verdict needs,
the verdict) run 20 times under the lab API server's injected faults gives the verdict it gives without faults, each module
run within its time budget; under heavy throttling at most one run in 20 fails, with a KubeError naming the attempts made.

The runs go through module_utils directly (diagnosis.py wires them as the diagnose role does), ten at a time as a fleet run
with forks would, so that the 20 runs of each case stay cheap; each run has its own clients, budgets and rate limits.
"""

import re
import statistics
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import yaml
from diagnosis import HEAVY, MIXED, MODULE_BUDGET, Diagnosis, set_faults, verdict_ids

from ansible_collections.kubediag.egress.plugins.module_utils.k8s.client import KubeError

pytestmark = pytest.mark.lab
RUNS = 20
PARALLEL = 10
PROBE_TIMEOUT = 1  # seconds per check: the broken scenario's blocked checks time out, then are confirmed once
# One pod, one target each; netpol.egress_blocked fails at the first hop and needs every cluster read.
SCENARIOS = ("healthy", "netpol.egress_blocked")


def diagnosis_of(lab, pod=None, **options):
    """A factory of runs on the scenario's subject (or another pod), with the options the playbook would pass."""
    with open(lab.info["inventory"], encoding="utf-8") as handle:
        host = next(iter(yaml.safe_load(handle)["all"]["children"]["clusters"]["hosts"].values()))
    return lambda: Diagnosis(host["kubeconfig"], host["context"], pod or host["egress_pod"], host["egress_targets"], PROBE_TIMEOUT,
                             external_resolver=host["egress_external_resolver"], echo_url=host["egress_echo_url"],
                             test_proxy=host["egress_test_proxy"], **options)


def one_run(new_diagnosis):
    run, started = new_diagnosis(), time.monotonic()
    try:
        outcome = verdict_ids(run.run())
    except KubeError as error:
        outcome = error
    return outcome, time.monotonic() - started, run.stages


def runs_under(lab, faults, new_diagnosis=None):
    """The verdict ids without faults, then (outcome, seconds, stage seconds) of RUNS runs under faults."""
    new_diagnosis = new_diagnosis or diagnosis_of(lab)
    set_faults(lab.dir, {})
    expected, _seconds, _stages = one_run(new_diagnosis)
    assert not isinstance(expected, Exception), expected
    set_faults(lab.dir, faults)
    try:
        with ThreadPoolExecutor(max_workers=PARALLEL) as pool:
            outcomes = list(pool.map(lambda _n: one_run(new_diagnosis), range(RUNS)))
    finally:
        set_faults(lab.dir, {})
    return expected, outcomes


def assert_within_budget(outcomes):
    slowest = max((seconds, stage) for _outcome, _seconds, stages in outcomes for stage, seconds in stages.items())
    walls = sorted(seconds for _outcome, seconds, _stages in outcomes)
    print(f"runs {walls[0]:.1f}/{statistics.median(walls):.1f}/{walls[-1]:.1f}s (min/median/max); slowest module run {slowest[1]} "
          f"{slowest[0]:.1f}s of its {MODULE_BUDGET:g}s budget")
    assert slowest[0] < MODULE_BUDGET, f"{slowest[1]} took {slowest[0]:.1f}s, over the module budget of {MODULE_BUDGET:g}s"


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_mixed_faults_change_no_verdict(labs, scenario):
    expected, outcomes = runs_under(labs(scenario), MIXED)
    assert expected == [(pod, target, tuple(labs(scenario).info["expect"]["root_causes"])) for pod, target, _ids in expected]
    assert [outcome for outcome, _seconds, _stages in outcomes] == [expected] * RUNS
    assert_within_budget(outcomes)


def test_mixed_faults_change_no_verdict_from_an_ephemeral_container(labs):
    """The healthy scenario's distroless pod has no shell: it is probed from an ephemeral container, added by a PATCH."""
    lab = labs("healthy")
    expected, outcomes = runs_under(lab, MIXED, diagnosis_of(lab, pod="shop/static", debug_container=True, node_probe=False))
    assert expected == [("shop/static", target, ("healthy",)) for target in lab.info["subject"]["targets"]]
    assert [outcome for outcome, _seconds, _stages in outcomes] == [expected] * RUNS
    assert_within_budget(outcomes)


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_heavy_throttling_fails_at_most_once_and_says_what_was_tried(labs, scenario):
    expected, outcomes = runs_under(labs(scenario), HEAVY)
    assert [ids for _pod, _target, ids in expected] == [tuple(labs(scenario).info["expect"]["root_causes"])]
    failures = [outcome for outcome, _seconds, _stages in outcomes if outcome != expected]
    assert len(failures) <= 1, failures
    for failure in failures:
        assert isinstance(failure, KubeError) and re.search(r"\b\d+ attempts? over \d", str(failure)), failure
    assert_within_budget(outcomes)
