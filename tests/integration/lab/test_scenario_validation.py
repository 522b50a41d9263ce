"""The scenario loader rejects bad documents with a message naming the file and the key (pure: no root, no namespace)."""

import os

import pytest
import yaml
from kdlab import scenario
from kdlab.errors import LabError

HERE = os.path.dirname(os.path.abspath(__file__))
with open(os.path.join(HERE, "invalid_scenarios.yml"), encoding="utf-8") as f:
    INVALID = yaml.safe_load(f)


@pytest.mark.parametrize("case", INVALID, ids=[c["error"][:50] for c in INVALID])
def test_invalid_scenario_is_rejected_with_the_key_named(case):
    with pytest.raises(LabError) as raised:
        scenario.validate(case["doc"], "bad.yml")
    assert str(raised.value).startswith("bad.yml: ")
    assert case["error"] in str(raised.value)


def test_defaults_fill_one_cluster_with_the_subject_pod():
    spec = scenario.validate({"name": "x", "subject": {"pod": "shop/web", "targets": ["https://api.example.test/"]},
                              "expect": {"root_causes": ["healthy"]}, "faults": [{"type": "no_snat"}]})
    assert [c["name"] for c in spec["clusters"]] == ["lab"]
    assert spec["clusters"][0]["pods"][0]["image"] == "netshoot"
    assert spec["faults"] == [{"type": "no_snat", "cluster": "lab", "nodes": ["node-1"]}]
    assert spec["subject"]["cluster"] == "lab"


def test_unknown_bundled_name_and_missing_file_say_what_to_do(tmp_path):
    with pytest.raises(LabError, match="kdlab list"):
        scenario.load("no-such-scenario")
    with pytest.raises(LabError, match="does not exist"):
        scenario.load(str(tmp_path / "missing.yml"))
    broken = tmp_path / "broken.yml"
    broken.write_text("name: [unclosed\n")
    with pytest.raises(LabError, match=r"broken\.yml: not valid YAML"):
        scenario.load(str(broken))


def test_aws_scenarios_validate_and_put_each_node_in_its_subnet():
    import ipaddress

    from kdlab import topology

    directory = os.path.join(scenario.SCENARIO_DIR, "aws")
    names = sorted(f for f in os.listdir(directory) if f.endswith(".yml"))
    assert len(names) >= 10
    for name in names:
        spec = scenario.load(os.path.join(directory, name))
        assert spec["name"] == "aws." + name[:-4]
        aws = spec["clusters"][0]["aws"]
        subnets = {s["name"]: ipaddress.ip_network(s["cidr"]) for s in aws["subnets"]}
        for node in topology.plan("/tmp/x", spec)["clusters"][0]["nodes"]:
            assert ipaddress.ip_address(node["ip"]) in subnets[aws["nodes"][node["name"]]["subnet"]], (name, node)
    # they are not bundled names yet: the playbook's bundled-scenario tests must not pick them up; `aws/<name>` finds them
    assert not any(n.startswith("aws") for n in scenario.bundled_names())
    assert scenario.load("aws/healthy")["name"] == "aws.healthy"
