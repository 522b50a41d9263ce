"""Issue 4's bar: for every bundled lab scenario, pod_probe's facts (pod and node) show the field guide's symptom."""

import json
import os
from pathlib import Path

import pytest
import yaml

from ansible_collections.kubediag.egress.plugins.module_utils.k8s import client as kube
from ansible_collections.kubediag.egress.plugins.module_utils.probe import runner as pod_probe

HERE = os.path.dirname(os.path.abspath(__file__))
SCENARIOS = os.path.join(HERE, "..", "..", "lab", "scenarios")
SYMPTOMS = yaml.safe_load(Path(HERE, "symptoms.yml").read_text(encoding="utf-8"))
BUNDLED = sorted(name[:-4] for name in os.listdir(SCENARIOS) if name.endswith(".yml"))

pytestmark = pytest.mark.lab


def test_every_scenario_has_symptoms():
    assert sorted(SYMPTOMS) == BUNDLED


def _status(fact):
    return [fact["status"], fact.get("error_class")]


@pytest.mark.parametrize("scenario", BUNDLED)
def test_facts_show_the_symptom(scenario, tmp_path):
    if os.geteuid() != 0:
        pytest.fail("the lab needs root (it creates network namespaces); run as root")
    from kdlab import build

    lab_dir = str(tmp_path / "lab")
    build.up(scenario, lab_dir)
    try:
        lab = json.loads(Path(lab_dir, "lab.json").read_text(encoding="utf-8"))
        client = kube.connect(kubeconfig=lab["kubeconfig"], context=lab["clusters"][0]["name"])
        namespace, name = lab["subject"]["pod"].split("/")
        options = pod_probe.build_options(timeout=3, external_resolver=lab["resolvers"]["public"],
                                          echo_url="http://whoami.example.test/", test_proxy="http://proxy.example.test:3128")
        facts = pod_probe.probe_pod(client, namespace, name, lab["subject"]["targets"], options=options, node_probe=True)
    finally:
        build.down(lab_dir)

    expected = SYMPTOMS[scenario]
    if "not_probed" in expected:   # the symptom is that nothing could run in the pod, and the reason says why
        assert not facts["probed"] and expected["not_probed"] in facts["not_probed_reason"], facts
        return
    assert facts["probed"] and facts["node"], facts.get("notes")
    seen = {"pod": {c["id"]: _status(c) for c in facts["checks"]}, "node": {c["id"]: _status(c) for c in facts["node"]["checks"]}}
    if expected.get("all_ok"):
        # a by-address check the pod did not need (it resolved the name) is skipped on a healthy path
        failing = {side: {k: v for k, v in checks.items() if v[0] != "ok" and v != ["skipped", "not_needed"]} for side, checks in seen.items()}
        assert failing == {"pod": {}, "node": {}}
    if "other_node" in expected:
        assert facts["other_node"] and facts["other_node"]["probed"], facts.get("notes")
        seen["other_node"] = {c["id"]: _status(c) for c in facts["other_node"]["checks"]}
    for side in ("pod", "node", "other_node"):
        for check_id, status in (expected.get(side) or {}).items():
            assert seen[side].get(check_id) == status, f"{side} {check_id}: {seen[side].get(check_id)} (all: {seen[side]})"
    for fact in ("resolv_conf", "ca_bundle"):
        if fact in expected:
            assert _status(facts[fact]) == expected[fact]
