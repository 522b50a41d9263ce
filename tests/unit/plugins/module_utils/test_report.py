"""The report contract and its renderings, from verdicts drawn on lab recordings (verdict_cases/) and a failed cluster."""

import html
import json
import os
import subprocess
import sys
from pathlib import Path
from xml.etree import ElementTree

import pytest
from markdown_it import MarkdownIt

from ansible_collections.kubediag.egress.plugins.module_utils.report.render import (
    ReportError,
    build_report,
    render_all,
    render_html,
    render_junit,
    render_markdown,
    summary_lines,
)
from ansible_collections.kubediag.egress.plugins.module_utils.verdict.rules import evaluate_cluster

CASES = Path(__file__).parent / "verdict_cases"


def _hosts(*names, error=None):
    hosts = []
    for name in names:
        case = json.loads((CASES / f"{name}.json").read_text())
        hosts.append({"cluster": name, "pods": evaluate_cluster(case["facts"]), "error": None})
    if error:
        hosts.append({"cluster": "broken", "pods": [], "error": error})
    return hosts


@pytest.fixture(scope="module")
def report():
    return build_report(_hosts("healthy", "firewall.port_blocked-udp", "dns.upstream_forwarding",
                               error={"stage": "Resolve which pods to diagnose", "msg": "pod shop/x not found: check the pod name"}))


def test_contract_has_one_result_per_cluster_pod_target(report):
    assert report["schema_version"] == 1
    keys = [(r["cluster"], r["pod"], r["target"]) for r in report["results"]]
    assert keys == [("healthy", "shop/web", "https://api.example.test/health"),
                    ("firewall.port_blocked-udp", "shop/web", "udp://udp-echo.example.test:123"),
                    ("firewall.port_blocked-udp", "shop/web", "https://api.example.test/health"),
                    ("dns.upstream_forwarding", "shop/web", "https://api.example.test/health")]
    statuses = [r["status"] for r in report["results"]]
    assert statuses == ["healthy", "failing", "ok", "failing"]
    assert [r["root_causes"] for r in report["results"]] == [["healthy"], ["firewall.port_blocked"], [], ["dns.upstream_forwarding"]]
    assert report["summary"] == {"clusters": 4, "clusters_failed": ["broken"], "pods": 3, "results": 4, "healthy": 1, "ok": 1, "failing": 2,
                                 "unknown": 0, "not_probed": 0, "inconclusive": 0, "errors": 1,
                                 "root_causes": {"dns.upstream_forwarding": 1, "firewall.port_blocked": 1, "healthy": 1}}
    assert report["errors"] == [{"cluster": "broken", "context": None, "pod": None, "stage": "Resolve which pods to diagnose",
                                 "msg": "pod shop/x not found: check the pod name"}]


def test_findings_follow_their_target(report):
    ok_result = report["results"][2]
    assert ok_result["findings"] == []
    failing = report["results"][1]
    assert [f["id"] for f in failing["findings"]] == ["firewall.port_blocked"]


RENDER_IN_A_NEW_PROCESS = """
import json, sys
from ansible_collections.kubediag.egress.plugins.module_utils.report.render import render_all
sys.stdout.write(json.dumps(render_all(json.load(sys.stdin)), sort_keys=True))
"""


@pytest.mark.parametrize("seed", ["1", "4242"])
def test_the_files_are_byte_identical_in_another_process(report, seed):
    """What makes a second egress_report run unchanged: a fresh interpreter (other hash seed, so other set and dict
    iteration orders where the code relied on them) renders the same report read back from report.json to the same bytes."""
    collections = str(Path(__file__).resolve().parents[4] / ".collections")
    run = subprocess.run([sys.executable, "-c", RENDER_IN_A_NEW_PROCESS], input=json.dumps(report), capture_output=True, text=True,
                         env=dict(os.environ, PYTHONHASHSEED=seed, PYTHONPATH=collections), check=True, timeout=60)
    assert json.loads(run.stdout) == render_all(report)


def test_html_marks_the_failing_hop_and_is_self_contained(report):
    html = render_html(report)
    assert '<section class="result failing" data-cluster="dns.upstream_forwarding"' in html
    dns_section = html.split('data-cluster="dns.upstream_forwarding"', 1)[1]
    assert 'data-hop="dns" data-status="fail"' in dns_section and 'data-hop="pod" data-status="ok"' in dns_section
    assert 'data-hop="internet" data-status="not_reached"' in dns_section
    assert "<script" not in html and "<link" not in html and "src=" not in html
    assert "forward . 192.0.2.99" in html  # the remedy is shown beneath the path


def test_html_escapes_what_it_quotes():
    hosts = [{"cluster": "<b>x</b>", "pods": [], "error": {"stage": "s", "msg": "<script>alert(1)</script>"}}]
    html = render_html(build_report(hosts))
    assert "<script>alert" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html and "&lt;b&gt;x&lt;/b&gt;" in html


def test_junit_has_a_testcase_per_pod_target_check(report):
    root = ElementTree.fromstring(render_junit(report))  # noqa: S314 - our own output
    suites = {s.get("name"): s for s in root.findall("testsuite")}
    assert set(suites) == {"healthy", "firewall.port_blocked-udp", "dns.upstream_forwarding", "broken"}
    expected_cases = sum(len(r["checks"]) for r in report["results"]) + 1
    assert int(root.get("tests")) == expected_cases == len(root.findall(".//testcase"))
    udp_case = next(c for c in suites["firewall.port_blocked-udp"].findall("testcase")
                    if c.get("name") == "udp://udp-echo.example.test:123 :: udp:udp-echo.example.test:123")
    assert "firewall.port_blocked" in udp_case.find("failure").text
    assert suites["broken"].find("testcase/error").get("message") == "pod shop/x not found: check the pod name"
    assert int(suites["healthy"].get("failures")) == 0


def test_markdown_and_summary_name_causes_and_errors(report):
    markdown = render_markdown(report)
    assert ("| `dns.upstream_forwarding` | `shop/web` | `https://api.example.test/health` | failing | `dns.upstream_forwarding` |"
            in markdown)
    assert "## Not diagnosed (inconclusive)" in markdown and "pod shop/x not found" in markdown
    lines = summary_lines(report)
    assert lines[0] == "OK   healthy shop/web -> https://api.example.test/health: healthy"
    assert any(line.startswith("FAIL dns.upstream_forwarding shop/web") for line in lines)
    assert "ERR  broken: not diagnosed (inconclusive, stopped at Resolve which pods to diagnose): pod shop/x not found: check the pod name" in lines
    assert lines[-1] == "4 result(s) in 4 cluster(s): 1 healthy, 1 ok, 2 failing, 0 unknown, 1 not diagnosed"


# What the diagnose role recorded when coredns_info gave up on a lab API server answering 503 to everything after the probe.
GAVE_UP = {"stage": "Read CoreDNS (Corefile, health, logs)",
           "msg": "the API server kept failing on ConfigMap kube-system/coredns (last answer HTTP 503: Internal error occurred: injected by the "
                  "lab scenario; 9 attempts over 27.3s, backoff_retries=8 spent): its control plane is overloaded or unhealthy; retry later, "
                  "or raise backoff_retries and api_budget."}


def test_a_cluster_whose_read_gave_up_is_reported_inconclusive_with_the_retries_in_every_rendering():
    """No verdict for it (no result, nothing healthy), and every rendering says it was not diagnosed, where, and what was tried."""
    report = build_report(_hosts("healthy", error=GAVE_UP))
    assert [r["cluster"] for r in report["results"]] == ["healthy"]
    assert report["summary"]["clusters_failed"] == ["broken"]
    said = ("broken: not diagnosed (inconclusive, stopped at Read CoreDNS (Corefile, health, logs)): the API server kept failing on "
            "ConfigMap kube-system/coredns (last answer HTTP 503: Internal error occurred: injected by the lab scenario; 9 attempts over "
            "27.3s, backoff_retries=8 spent)")
    lines = summary_lines(report)
    assert [line for line in lines if line.startswith("ERR")] == [f"ERR  {said}: its control plane is overloaded or unhealthy; retry later, "
                                                                  "or raise backoff_retries and api_budget."]
    assert lines[-1] == "1 result(s) in 2 cluster(s): 1 healthy, 0 ok, 0 failing, 0 unknown, 1 not diagnosed"
    markdown, page = render_markdown(report), render_html(report)
    assert f"- {said}".replace("_", "\\_") in markdown and "nothing is concluded from the facts read before it" in markdown
    assert "<h2>Not diagnosed (inconclusive)</h2>" in page and html.escape(said) in page


def test_the_context_used_is_reported_and_named_in_the_summary_when_it_is_not_the_clusters_name():
    """A host without kubeconfig/context is diagnosed through the default kubeconfig's current-context: the user sees which."""
    hosts = _hosts("healthy")
    hosts[0]["context"] = "kind-dev"
    hosts += [{"cluster": "prod", "context": "prod", "pods": [], "error": {"stage": "s", "msg": "m"}},
              {"cluster": "old", "pods": [], "error": {"stage": "s", "msg": "m"}}]  # a record from before the context was kept
    report = build_report(hosts)
    assert [r["context"] for r in report["results"]] == ["kind-dev"]
    assert [e["context"] for e in report["errors"]] == ["prod", None]
    lines = summary_lines(report)
    assert lines[0] == "OK   healthy (context kind-dev) shop/web -> https://api.example.test/health: healthy"
    assert "ERR  prod: not diagnosed (inconclusive, stopped at s): m" in lines
    assert "ERR  old: not diagnosed (inconclusive, stopped at s): m" in lines


@pytest.mark.parametrize(("hosts", "message"), [
    ("nope", "hosts must be a list"),
    ([{"pods": []}], r"hosts\[0\].cluster must be a non-empty string"),
    ([{"cluster": "a", "pods": "x"}], r"hosts\[0\].pods must be a list"),
    ([{"cluster": "a", "pods": ["x"]}], r"hosts\[0\].pods\[0\] must be a mapping"),
])
def test_bad_input_is_a_clear_error(hosts, message):
    with pytest.raises(ReportError, match=message):
        build_report(hosts)


def test_unknown_format_is_refused(report):
    with pytest.raises(ReportError, match="unknown report format"):
        render_all(report, ["pdf"])


# --- hostile text from the pod and the cluster ----------------------------------------------------------------------

HOSTILE = ["<svg/onload=alert(1)>.evil.example", "a\rb\nc\r\nd\u2028e", "x | y | z", "**bold** _em_ [link](http://evil.example)",
           "&lt;img src=x onerror=alert(1)&gt;", "`code` ``` fence", "# heading", "1. list", "- item", "<!-- comment", "\x1b[31mred\x1b[0m",
           "\u202egnp.exe", "\\| back", "\ud800 lone surrogate", "---", "+ plus", "    indented code",
           "~~struck~~", "![image](http://evil.example/x.png)", "<http://evil.example>", "plain text"]


def _hostile_report():
    """Every field the report quotes holds hostile text, one cluster per sample."""
    def finding(text):
        return {"id": f"dns.upstream_forwarding{text}", "severity": "critical", "layer": text, "summary": text, "evidence": [text],
                "not_checked": [text], "remediation": {"summary": text, "module": text, "params": {"corefile": text}}}

    def pod(text):
        return {"pod": f"shop/{text}", "node": text, "findings": [finding(text)],
                "targets": [{"target": text, "status": "failing", "root_causes": [text], "path": [{"hop": "dns", "status": "fail", "note": text}],
                             "checks": [{"name": text, "status": "fail", "detail": text}]}]}
    return build_report([{"cluster": f"lab{text}", "pods": [pod(text)], "error": {"stage": text, "msg": text, "pod": text}} for text in HOSTILE])


def _cells_per_row(tokens):
    rows, cells = [], None
    for token in tokens:
        if token.type == "tr_open":
            cells = 0
        elif token.type in ("td_open", "th_open"):
            cells += 1
        elif token.type == "tr_close":
            rows.append(cells)
    return rows


def test_markdown_quotes_hostile_text_as_inert_text():
    """Rendered by a CommonMark + GFM-table peer with raw HTML on: no HTML, link, image or stray heading; one row per result."""
    report = _hostile_report()
    markdown = render_markdown(report)
    renderer = MarkdownIt("commonmark", {"html": True}).enable(["table", "strikethrough"])
    tokens = renderer.parse(markdown)
    inline = [child for token in tokens for child in token.children or []]
    unexpected = ("html_block", "html_inline", "link_open", "image", "bullet_list_open", "ordered_list_open", "hr", "fence", "code_block")
    assert not [t.type for t in tokens + inline if t.type in unexpected
                and not (t.type == "bullet_list_open" and t.level == 0) and not (t.type == "fence" and t.info == "json")]
    assert _cells_per_row(tokens) == [5] * (1 + len(report["results"]))
    assert sum(1 for t in tokens if t.type == "heading_open" and t.tag == "h2") == 1 + len(report["results"])   # Not diagnosed + one a result
    html = renderer.render(markdown)
    assert "<svg" not in html and "<img" not in html and "<!--" not in html and "<strong>bold" not in html and "<em>" not in html and "<s>" not in html
    assert "\x1b" not in html and "\u202e" not in html and "\r" not in html
    assert "&lt;svg/onload=alert(1)&gt;.evil.example" in html   # the evidence is still there, as text
    assert "- labplain text plain text: not diagnosed (inconclusive, stopped at plain text): plain text" in markdown


def test_junit_with_control_characters_still_parses():
    xml = render_junit(_hostile_report())
    root = ElementTree.fromstring(xml)  # noqa: S314 - our own output
    messages = [e.get("message") for e in root.iter() if e.get("message")]
    assert "\\x1b[31mred\\x1b[0m" in messages   # shown, not dropped
    xml.encode("utf-8")   # no lone surrogate left: the file can be written


def test_summary_lines_carry_no_terminal_escape():
    lines = summary_lines(_hostile_report())
    assert not [line for line in lines if "\x1b" in line or "\r" in line or "\n" in line or "\u202e" in line]


def test_a_pod_answered_without_a_probe_shows_observed_from_static_and_the_not_probed_status_in_every_rendering():
    """The two distroless recordings: a static finding (the policy) and a pod with nothing found, which is not probed, never healthy."""
    report = build_report(_hosts("netpol.egress_blocked-distroless", "not_probed-distroless"))
    static, unprobed = report["results"]
    assert (static["status"], static["root_causes"], static["findings"][0]["observed_from"]) == ("failing", ["netpol.egress_blocked"], "static")
    assert (unprobed["status"], unprobed["root_causes"], unprobed["findings"]) == ("not_probed", [], [])
    assert unprobed["note"].startswith("not probed: container 'static' of pod shop/static has no shell")
    assert unprobed["note"].endswith("; no static cause found; probe to be sure")
    assert report["summary"]["not_probed"] == 1 and report["summary"]["healthy"] == 0

    markdown = render_markdown(report)
    static_md, unprobed_md = markdown.split("## netpol.egress\\_blocked-distroless", 1)[1].split("## not\\_probed-distroless", 1)
    assert "Observed from: `static`" in static_md
    assert "Status: **not\\_probed**" in unprobed_md and "no static cause found; probe to be sure" in unprobed_md
    assert "| `not_probed-distroless` | `shop/static` | `https://api.example.test/health` | not\\_probed | - |" in markdown
    tokens = MarkdownIt("commonmark").parse(markdown)
    assert not [t for t in tokens if t.type in ("html_block", "html_inline")]

    page = render_html(report)
    assert '<div class="finding" data-root-cause="netpol.egress_blocked" data-observed-from="static">' in page
    assert "Observed from: <code>static</code>" in page
    assert 'data-cluster="not_probed-distroless" data-pod="shop/static"' in page and '<span class="status not_probed">not_probed</span>' in page
    assert html.escape("no static cause found; probe to be sure") in page

    lines = summary_lines(report)
    assert "       netpol.egress_blocked (observed_from: static): NetworkPolicy shop/deny-external allows no egress from shop/static to " \
           "api.example.test:443 at any of its addresses" in lines
    assert [line for line in lines if line.startswith("--  ")] == [
        f"--   not_probed-distroless shop/static -> https://api.example.test/health: {unprobed['note']}"]
    assert lines[-1] == "2 result(s) in 2 cluster(s): 0 healthy, 0 ok, 1 failing, 0 unknown, 1 not probed, 0 not diagnosed"

    root = ElementTree.fromstring(render_junit(report))  # noqa: S314 - our own output
    suites = {s.get("name"): s for s in root.findall("testsuite")}
    assert suites["not_probed-distroless"].find("testcase/skipped").get("message") == unprobed["note"]
    assert suites["netpol.egress_blocked-distroless"].find("testcase/failure") is not None
