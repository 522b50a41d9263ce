"""docs/getting-started.md names only options that exist: its option table against the diagnose playbook's inputs, both ways,
and its ClusterRole link against the manifest."""

import re
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[3]
GUIDE = (REPO / "docs" / "getting-started.md").read_text(encoding="utf-8")
PLAYBOOK = yaml.safe_load((REPO / "playbooks" / "diagnose_egress.yml").read_text(encoding="utf-8"))


def _table_rows():
    section = GUIDE.split("## 5. The options that matter", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| `")]
    return [(re.match(r"\| `(\w+)`", row).group(1), re.findall(r"\(`(egress_\w+)`\)", row.split("|")[1])) for row in rows]


def _playbook_inputs():
    """{option: host var or None} from the role vars the playbook's first play builds: `{{ name | default(egress_name ...`."""
    task = PLAYBOOK[0]["tasks"][0]
    inputs = {}
    for expression in task["vars"].values():
        match = re.match(r"\{\{ (\w+) \| default\((egress_\w+)?", expression)
        if match and match.group(1) != "inventory_hostname":
            inputs[match.group(1)] = match.group(2)
    return inputs


def test_every_option_in_the_table_is_a_playbook_input_with_that_host_var():
    inputs = _playbook_inputs()
    for name, host_vars in _table_rows():
        if name == "report_dir":  # the report play reads it
            assert "report_dir | default(" in (REPO / "playbooks" / "diagnose_egress.yml").read_text(encoding="utf-8")
            continue
        assert name in inputs, name
        assert host_vars == ([inputs[name]] if inputs[name] else []), (name, host_vars, inputs[name])


def test_every_playbook_input_is_in_the_table():
    documented = {name for name, _host_vars in _table_rows()}
    assert set(_playbook_inputs()) - {"kubeconfig", "context"} <= documented


def test_the_rbac_examples_it_links_are_a_clusterrole_and_its_binding():
    links = re.findall(r"\]\((examples/[\w.-]+\.yml)\)", GUIDE.split("## 6.", 1)[1])
    documents = [yaml.safe_load((REPO / "docs" / link).read_text(encoding="utf-8")) for link in dict.fromkeys(links)]
    assert [d["kind"] for d in documents] == ["ClusterRole", "ClusterRoleBinding"]
    assert documents[1]["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": documents[0]["metadata"]["name"]}
