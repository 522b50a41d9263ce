"""The verdict's named fact sources: one table (verdict/sources.py) gives the action's options, the input check, each pod's
share of the cluster's results and what the rules read; the role passes, and the module documents, every option."""

import copy
import json
import re
from pathlib import Path

import pytest
import yaml

from ansible_collections.kubediag.egress.plugins.action.egress_verdict import ActionModule
from ansible_collections.kubediag.egress.plugins.module_utils.verdict import rules, sources
from ansible_collections.kubediag.egress.plugins.module_utils.verdict.inputs import verdict_input_problem
from ansible_collections.kubediag.egress.plugins.modules import egress_verdict as egress_verdict_doc

REPO = Path(__file__).parents[4]
HEALTHY = json.loads((Path(__file__).parent / "verdict_cases" / "healthy.json").read_text())["facts"]
OPTIONS = {s.option for s in sources.SOURCES if s.option}


def test_the_action_takes_one_option_per_source():
    assert set(ActionModule.ARGUMENT_SPEC) == OPTIONS == {"pod_probes", "pods", "netpol", "coredns", "cluster_network", "mesh"}


def test_the_module_documents_every_option_as_the_action_takes_it():
    documented = yaml.safe_load(egress_verdict_doc.DOCUMENTATION)["options"]
    assert set(documented) == set(ActionModule.ARGUMENT_SPEC)
    for name, spec in ActionModule.ARGUMENT_SPEC.items():
        doc = documented[name]
        assert (doc["type"], doc.get("elements"), bool(doc.get("required")), doc.get("default")) == \
            (spec["type"], spec.get("elements"), bool(spec.get("required")), spec.get("default")), name


def _role_task(name):
    tasks = yaml.safe_load((REPO / "roles" / "diagnose" / "tasks" / "main.yml").read_text())[0]["block"]
    return next(task for task in tasks if task["name"] == name)


def test_the_role_passes_every_source_to_the_verdict():
    assert set(_role_task("Conclude for each pod")["kubediag.egress.egress_verdict"]) == OPTIONS


def test_the_documented_source_table_is_the_registry():
    rows = []
    for line in (REPO / "docs" / "verdict.md").read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 4 and re.fullmatch(r"`[a-z_]+`", cells[0]):
            option = re.fullmatch(r"`([a-z_]+)`", cells[1])
            rows.append((cells[0].strip("`"), option.group(1) if option else None, cells[2].strip("`")))
    assert rows == [(s.name, s.option, s.module) for s in sources.SOURCES]


def _second_pod(facts):
    """The healthy recording with a second pod shop/other, and netpol, mesh and pods entries for both, in mixed order."""
    facts = copy.deepcopy(facts)
    other = copy.deepcopy(facts["pod_probes"][0])
    other["pod"] = {**other["pod"], "name": "other", "ip": "10.244.0.9"}
    facts["pod_probes"].append(other)
    facts["netpol"] = [{"source": "shop/other", "marker": "netpol-other", "destinations": []},
                       {"source": "shop/web", "marker": "netpol-web", "destinations": []}]
    facts["mesh"] = [{"item": {"namespace": "shop", "pod": "other", "host": "a", "port": 1}, "marker": "mesh-other"},
                     {"skipped": True, "item": {"namespace": "shop", "pod": "web", "host": "a", "port": 1}},
                     {"item": {"namespace": "shop", "pod": "web", "host": "a", "port": 1}, "marker": "mesh-web-1"},
                     {"namespace": "shop", "pod": "web", "host": "b", "port": 2, "marker": "mesh-web-2"}]
    facts["pods"] = [{"ref": "shop/other", "labels": {"app": "other"}}, {"namespace": "shop", "name": "web", "labels": {"app": "web"}}]
    return facts


def test_each_pod_gets_its_own_share_of_the_cluster_results():
    facts = _second_pod(HEALTHY)
    web, other = sources.facts_for_pods(facts, facts["pod_probes"], rules._pod_ref)
    assert web["netpol"]["marker"] == "netpol-web" and other["netpol"]["marker"] == "netpol-other"
    assert [m.get("marker") for m in sources.read_sources(web)["mesh"]] == ["mesh-web-1", "mesh-web-2"]
    assert [m["marker"] for m in other["mesh"]] == ["mesh-other"]
    assert web["pod"]["labels"] == {"app": "web"} and other["pod"]["labels"] == {"app": "other"}
    assert web["coredns"] is facts["coredns"] is other["coredns"]
    assert rules.Context(web).labels == {"app": "web"} and rules.Context(other).source("pod")["labels"] == {"app": "other"}


def test_the_node_source_is_read_from_the_pod_probe():
    facts = sources.facts_for_pods(HEALTHY, HEALTHY["pod_probes"], rules._pod_ref)[0]
    assert "node" not in facts
    assert rules.Context(facts).source("node") is HEALTHY["pod_probes"][0]["node"]


@pytest.mark.parametrize(("option", "value", "message"), [
    ("coredns", "oops", "coredns is a string ('oops'), not the registered result of kubediag.egress.coredns_info"),
    ("netpol", {"source": "shop/web"}, "netpol is a mapping, not a list of kubediag.egress.netpol_egress_info results"),
    ("mesh", [{}, "x"], "mesh[1] is a string, not a kubediag.egress.mesh_egress_info result"),
])
def test_a_source_of_the_wrong_shape_is_named(option, value, message):
    facts = {**copy.deepcopy(HEALTHY), option: value}
    assert verdict_input_problem(facts) == message


CLOUD = sources.Source("cloud", "cloud", "aws_egress_info", "cluster")


def test_a_new_source_is_one_row(monkeypatch):
    """A source added to the table becomes an option, is shape-checked, reaches every pod and is read by the rules."""
    monkeypatch.setattr(sources, "SOURCES", (*sources.SOURCES, CLOUD))
    assert sources.argument_spec()["cloud"] == {"type": "raw"}
    facts = {**copy.deepcopy(HEALTHY), "cloud": "not a result"}
    assert verdict_input_problem(facts) == "cloud is a string ('not a result'), not the registered result of kubediag.egress.aws_egress_info"
    facts["cloud"] = {"path": "nat-gateway"}
    pod = sources.facts_for_pods(facts, facts["pod_probes"], rules._pod_ref)[0]
    assert rules.Context(pod).source("cloud") == {"path": "nat-gateway"}
    facts["cloud"] = {"failed": True, "msg": "no credentials"}
    pod = sources.facts_for_pods(facts, facts["pod_probes"], rules._pod_ref)[0]
    assert rules.Context(pod).source("cloud") is None
    assert rules.evaluate_cluster(facts)[0]["root_causes"] == ["healthy"]
