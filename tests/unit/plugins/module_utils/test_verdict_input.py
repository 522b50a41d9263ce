"""verdict_input_problem: the shape check in front of the verdict. Real results (the lab recordings) pass; each hand-made
defect is named by its place, never left to surface as a KeyError inside a rule."""

import copy
import json
import re
from pathlib import Path

import pytest

from ansible_collections.kubediag.egress.plugins.module_utils.verdict.inputs import verdict_input_problem

CASES = Path(__file__).parent / "verdict_cases"
RECORDINGS = {path.stem: json.loads(path.read_text())["facts"] for path in sorted(CASES.glob("*.json"))}
HEALTHY = RECORDINGS["healthy"]


@pytest.mark.parametrize("name", sorted(RECORDINGS))
def test_recorded_results_are_accepted(name):
    assert verdict_input_problem(RECORDINGS[name]) is None


def _broken(change):
    facts = copy.deepcopy(HEALTHY)
    change(facts, facts["pod_probes"][0])
    return facts


def _drop(mapping, key):
    mapping.pop(key)


@pytest.mark.parametrize(("change", "message"), [
    (lambda f, p: f.update(pod_probes=["connection refused"]), r"pod_probes\[0\] is a string \('connection refused'\), not a pod_probe result"),
    (lambda f, p: p["checks"][0].update(error_class=7), r"pod_probes\[0\]\.checks\[0\] \(.+\): error_class must be a string or null"),
    (lambda f, p: _drop(p["checks"][0], "error_class"), r"pod_probes\[0\]\.checks\[0\] \(.+\): error_class must be"),
    (lambda f, p: p["checks"][1].update(status="timeout"), r"pod_probes\[0\]\.checks\[1\] \(.+\): status 'timeout' is not one of ok, fail"),
    (lambda f, p: _drop(p["checks"][0], "id"), r"pod_probes\[0\]\.checks\[0\]: no id"),
    (lambda f, p: _drop(p["targets"][0], "port"), r"pod_probes\[0\]\.targets\[0\] \(https://api\.example\.test/health\): no port"),
    (lambda f, p: p["targets"][0].update(port="443"), r"targets\[0\] \(https://api\.example\.test/health\): port '443' is not 1-65535"),
    (lambda f, p: p["targets"][0].update(port=True), r"port True is not 1-65535"),
    (lambda f, p: _drop(p["targets"][0], "url"), r"pod_probes\[0\]\.targets\[0\]: no url"),
    (lambda f, p: _drop(p, "pod"), r"pod_probes\[0\]: no pod \{namespace, name\}"),
    (lambda f, p: _drop(p, "targets"), r"pod_probes\[0\]\.targets is a null, not a list"),
    (lambda f, p: p.update(checks={"id": "x"}), r"pod_probes\[0\]\.checks is a mapping, not a list"),
    (lambda f, p: p["node"]["checks"][0].update(status=None), r"pod_probes\[0\]\.node\.checks\[0\] \(.+\): status None"),
    (lambda f, p: p.update(other_node="node-1"), r"pod_probes\[0\]\.other_node is a string, not the other node's probe mapping"),
    (lambda f, p: p.update(other_node=copy.deepcopy(p["node"])) or p["other_node"]["checks"][2].update(status="late"),
     r"pod_probes\[0\]\.other_node\.checks\[2\] \(.+\): status 'late' is not one of"),
    (lambda f, p: f.update(pod_probes=[{"failed": True, "msg": "pod shop/web not found"}]),
     r"pod_probes\[0\] is a failed pod_probe result \(pod shop/web not found\)"),
    (lambda f, p: f.update(coredns="forbidden"), r"coredns is a string \('forbidden'\), not the registered result of kubediag\.egress\.coredns_info"),
    (lambda f, p: f.update(cluster_network=["x"]), r"cluster_network is a list, not the registered result"),
    (lambda f, p: f.update(pod_probes={"a": 1}), r"pod_probes is a mapping, not a list"),
])
def test_a_malformed_part_is_named(change, message):
    problem = verdict_input_problem(_broken(change))
    assert problem is not None
    assert re.search(message, problem), problem


def test_every_message_says_what_to_pass():
    problem = verdict_input_problem(_broken(lambda f, p: _drop(p["targets"][0], "port")))
    assert problem.endswith("pass the registered kubediag.egress.pod_probe results (its .results) unchanged")


def test_a_skipped_item_is_not_checked():
    facts = copy.deepcopy(HEALTHY)
    facts["pod_probes"].append({"skipped": True, "skip_reason": "Conditional result was False"})
    assert verdict_input_problem(facts) is None
