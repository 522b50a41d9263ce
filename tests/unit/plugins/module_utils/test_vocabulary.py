"""One vocabulary between the stages: docs/architecture.md's id table and docs/report-schema.md's statuses are the
vocabulary's, and what the probe writes and the verdict and report use are its words."""

import json
import re
from pathlib import Path

import pytest

from ansible_collections.kubediag.egress.plugins.module_utils import vocabulary
from ansible_collections.kubediag.egress.plugins.module_utils.probe import script as probe_script
from ansible_collections.kubediag.egress.plugins.module_utils.probe.targets import parse_targets
from ansible_collections.kubediag.egress.plugins.module_utils.report.render import build_report
from ansible_collections.kubediag.egress.plugins.module_utils.verdict.rules import evaluate_cluster

REPO = Path(__file__).parents[4]
CASES = sorted((Path(__file__).parent / "verdict_cases").glob("*.json"))


def _architecture_rows():
    """docs/architecture.md's root-cause table, row by row: (id, layer, hop or None, fix order or None, meaning)."""
    rows = []
    for line in (REPO / "docs" / "architecture.md").read_text().splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) == 5 and re.fullmatch(r"`[a-z_.]+`", cells[0]) and cells[3] != "fix order":
            rows.append((cells[0].strip("`"), cells[1], None if cells[2] == "—" else cells[2],
                         None if cells[3] == "—" else int(cells[3]), cells[4]))
    return rows


def test_the_architecture_id_table_is_the_vocabulary():
    rows = _architecture_rows()
    assert len(rows) == 21, "docs/architecture.md lost its root-cause table (| id | layer | hop | fix order | meaning |)"
    expected = [(vocabulary.HEALTHY.id, vocabulary.HEALTHY.layer, None, None, vocabulary.HEALTHY.meaning)]
    expected += [(c.id, c.layer, c.hop, order, c.meaning) for order, c in enumerate(vocabulary.ROOT_CAUSES, start=1)]
    assert rows == expected


def test_the_vocabulary_tables_agree_with_each_other():
    assert len(set(vocabulary.ROOT_CAUSE_IDS)) == len(vocabulary.ROOT_CAUSE_IDS) == 21
    assert all(cause.hop in vocabulary.HOPS for cause in vocabulary.ROOT_CAUSES)
    assert set(vocabulary.REPORT_CHECK_STATUS) == set(vocabulary.CHECK_STATUSES)
    assert set(vocabulary.CHECK_PREFIXES.values()) == set(vocabulary.CHECK_KINDS)


def _schema_row(key):
    for line in (REPO / "docs" / "report-schema.md").read_text().splitlines():
        if line.startswith(f"| `{key}` |"):
            return line
    raise AssertionError(f"docs/report-schema.md has no row for {key}")


def test_the_report_schema_names_the_vocabulary_statuses():
    status_row = _schema_row("results[].status")
    assert re.findall(r"`([a-z_]+)` \(", status_row) == list(vocabulary.TARGET_STATUSES)
    path_row = _schema_row("results[].path[]")
    assert all(f"`{hop}`" in path_row for hop in vocabulary.HOPS)
    assert all(f"`{status}`" in path_row for status in vocabulary.HOP_STATUSES)
    checks_row = _schema_row("results[].checks[]")
    assert re.search(r"`status` \(([^)]*)\)", checks_row).group(1) == ", ".join(f"`{s}`" for s in vocabulary.REPORT_CHECK_STATUS.values())


def test_check_id_refuses_a_prefix_it_does_not_know():
    assert vocabulary.check_id("tcp", "api.example.test:443") == "tcp:api.example.test:443"
    with pytest.raises(ValueError, match="not a check id prefix"):
        vocabulary.check_id("tcpx", "api.example.test:443")


FULL_DETECTION = ("tool curl /usr/bin/curl curl\ntool dig /usr/bin/dig DiG 9.18\ntool nc /usr/bin/nc OpenBSD netcat\n"
                  "tool ping /usr/bin/ping ping from iputils 20221126\ntool openssl /usr/bin/openssl OpenSSL 3.0\ntool bash /bin/bash \n"
                  "timeout gnu\nenv HTTPS_PROXY http://proxy.corp:3128\n")


def _prefix(check_id):
    return next(p for p in sorted(vocabulary.CHECK_PREFIXES, key=len, reverse=True) if check_id.startswith(p + ":"))


def test_every_planned_check_is_named_in_the_vocabulary():
    env = probe_script.parse_detection(FULL_DETECTION)
    targets = parse_targets(["https://api.example.test/health", "udp://ntp.example.test:123", "tcp://db.example.test:5432"])
    options = probe_script.ProbeOptions(cluster_dns_ip="10.96.0.10", known_good_ip="192.0.2.1", mtu_sizes=(1500,),
                                        echo_url=parse_targets(["http://echo.example.test/ip"])[0],
                                        test_proxy=parse_targets(["http://proxy.example.test:3128"])[0])
    checks = probe_script.plan_checks(targets, env, options, by_address={})   # the pod's plan, with its by-address checks
    # Without the proxy variables an HTTPS target's by-address check is an HTTP request (with them, curl would use the proxy).
    no_proxy = probe_script.parse_detection(FULL_DETECTION.replace("env HTTPS_PROXY http://proxy.corp:3128\n", ""))
    checks += probe_script.plan_checks(targets, no_proxy, options, by_address={})
    assert {_prefix(c.id) for c in checks} == set(vocabulary.CHECK_PREFIXES), "a check prefix is planned nowhere, or one is not named"
    for check in checks:
        assert check.kind == vocabulary.CHECK_PREFIXES[_prefix(check.id)], check.id


@pytest.mark.parametrize("path", CASES, ids=lambda p: p.stem)
def test_recorded_probes_and_their_verdicts_speak_the_vocabulary(path):
    """What the probe wrote in the lab, what the verdict concludes from it and what the report counts use its words only."""
    facts = json.loads(path.read_text())["facts"]
    for probe in facts["pod_probes"]:
        for check in [*(probe.get("checks") or []), *((probe.get("node") or {}).get("checks") or [])]:
            assert check["status"] in vocabulary.CHECK_STATUSES and check["kind"] == vocabulary.CHECK_PREFIXES[_prefix(check["id"])]
    verdicts = evaluate_cluster(facts)
    for verdict in verdicts:
        for finding in verdict["findings"]:
            assert (finding["layer"], finding["hop"]) == vocabulary.LAYERS[finding["id"]] and finding["severity"] in vocabulary.SEVERITIES
        for target in verdict["targets"]:
            assert target["status"] in vocabulary.TARGET_STATUSES
            assert [hop["hop"] for hop in target["path"]] == list(vocabulary.HOPS)
            assert {hop["status"] for hop in target["path"]} <= set(vocabulary.HOP_STATUSES)
            assert {check["status"] for check in target["checks"]} <= set(vocabulary.REPORT_CHECK_STATUS.values())
    summary = build_report([{"cluster": "lab", "pods": verdicts}])["summary"]
    assert sum(summary[status] for status in vocabulary.TARGET_STATUSES) == summary["results"]


def test_the_lab_validates_expected_ids_against_the_vocabulary():
    import sys
    sys.path.insert(0, str(REPO / "tests" / "lab"))
    try:
        from kdlab import scenario
    finally:
        sys.path.remove(str(REPO / "tests" / "lab"))
    assert scenario.vocabulary.ROOT_CAUSE_IDS == vocabulary.ROOT_CAUSE_IDS
