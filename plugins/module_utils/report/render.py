"""The diagnosis report: the JSON contract (docs/report-schema.md) built from every cluster's verdicts, and its renderings.

``build_report(hosts)`` turns what the diagnose role gathered per cluster (the verdict of each pod, or the error that
stopped the cluster) into the contract: one result per cluster x pod x target, plus the errors. ``render_markdown``,
``render_html`` (self-contained: inline CSS and SVG, nothing fetched), ``render_junit`` and ``summary_lines`` (the
console's closing lines) render that contract. Pure functions, stdlib only, deterministic: the same diagnosis gives
the same bytes, so the module that writes the files can tell when a report really changed.
"""

import html
import json
import re
from xml.etree import ElementTree

from ansible_collections.kubediag.egress.plugins.module_utils.vocabulary import HOPS, TARGET_STATUSES

SCHEMA_VERSION = 1
HOP_LABELS = {"pod": "Pod", "dns": "DNS", "policy": "Policy / mesh", "node": "Node", "nat": "NAT",
              "internet": "Internet path", "endpoint": "Endpoint"}
# A cluster whose diagnosis stopped gets no verdict at all, never one drawn from the facts read before the failure.
NOT_DIAGNOSED_NOTE = ("No verdict for these: the diagnosis stopped at the stage named, and nothing is concluded from the facts read "
                      "before it (a verdict on half the facts could call a broken path healthy). Fix the cause and run again.")
# Everything a report quotes may come from the pod or the cluster (CoreDNS log lines, tool output, object names).
# Characters XML 1.0 forbids (ANSI colour codes among them) and lone surrogates: shown as \xNN, never written raw.
XML_ILLEGAL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff\ud800-\udfff]")
# In Markdown and on the console also every other control character and the bidirectional overrides that reorder text.
CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x84\x86-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069"
                     "\ufffe\uffff\ud800-\udfff]")
LINE_BREAKS = re.compile("\r\n|[\r\n\x85\u2028\u2029]")
# Backslash-escaped wherever they are (emphasis, code, links, table cells, strikethrough), and at the start of a text where
# they open a block (heading, list, quote); '&', '<' and '>' become entities so no HTML or entity passes through.
MD_PUNCTUATION = re.compile(r"([\\`*_\[\]|~])")
MD_BLOCK_START = re.compile(r"^([#+=-]|[0-9]+[.)])")
MD_ENTITIES = {"&": "&amp;", "<": "&lt;", ">": "&gt;"}


class ReportError(ValueError):
    """The input is not what the diagnose role produces; str() says what is wrong."""


def _require(condition, message):
    if not condition:
        raise ReportError(message)


def _host_entry(host, index):
    _require(isinstance(host, dict), f"hosts[{index}] must be a mapping, got {type(host).__name__}")
    cluster = host.get("cluster")
    _require(isinstance(cluster, str) and cluster, f"hosts[{index}].cluster must be a non-empty string")
    pods = host.get("pods") or []
    _require(isinstance(pods, list), f"hosts[{index}].pods must be a list")
    return cluster, pods


def _finding_for_target(finding, target):
    applies_to = finding.get("targets") or []
    return not applies_to or target in applies_to


def _result(cluster, context, verdict, target_entry):
    target = target_entry.get("target")
    findings = [f for f in verdict.get("findings") or [] if _finding_for_target(f, target)]
    root_causes = list(target_entry.get("root_causes") or [])
    status = target_entry.get("status") or ("healthy" if root_causes == ["healthy"] else "failing" if root_causes else "ok")
    note = {"note": target_entry["note"]} if target_entry.get("note") else {}
    result = {
        "cluster": cluster,
        "context": context,
        "pod": verdict.get("pod"),
        "node": verdict.get("node"),
        "target": target,
        "status": status,
        "root_causes": root_causes,
        "findings": findings,
        "path": list(target_entry.get("path") or []),
        "checks": list(target_entry.get("checks") or []),
        **note,
    }
    if status == "inconclusive":
        result["reason"] = target_entry.get("reason") or verdict.get("inconclusive") or "the probe could not trust its timings"
    return result


def build_report(hosts):
    """The report.json contract from the diagnose role's per-cluster records (see docs/report-schema.md)."""
    _require(isinstance(hosts, list), f"hosts must be a list, got {type(hosts).__name__}")
    results, errors, clusters = [], [], []
    for index, host in enumerate(hosts):
        cluster, pods = _host_entry(host, index)
        clusters.append(cluster)
        if host.get("error"):
            error = host["error"]
            errors.append({"cluster": cluster, "context": host.get("context"), "pod": error.get("pod"), "stage": error.get("stage") or "diagnose",
                           "msg": error.get("msg") or "the diagnosis failed without a message"})
        for pod_index, verdict in enumerate(pods):
            _require(isinstance(verdict, dict), f"hosts[{index}].pods[{pod_index}] must be a mapping")
            for target_entry in verdict.get("targets") or []:
                results.append(_result(cluster, host.get("context"), verdict, target_entry))
    counts = {status: sum(1 for r in results if r["status"] == status) for status in TARGET_STATUSES}
    root_cause_counts = {}
    for result in results:
        for cause in result["root_causes"]:
            root_cause_counts[cause] = root_cause_counts.get(cause, 0) + 1
    return {
        "schema_version": SCHEMA_VERSION,
        "summary": {
            "clusters": len(clusters),
            "clusters_failed": sorted({e["cluster"] for e in errors}),
            "pods": len({(r["cluster"], r["pod"]) for r in results}),
            "results": len(results),
            **counts,
            "errors": len(errors),
            "root_causes": dict(sorted(root_cause_counts.items())),
        },
        "results": results,
        "errors": errors,
    }


def render_json(report):
    return json.dumps(report, indent=2, sort_keys=False, ensure_ascii=False) + "\n"


def _cause_line(result):
    if result["status"] == "healthy":
        return "healthy"
    if result["status"] == "ok":
        return "ok (the pod's other findings do not affect this target)"
    if result["status"] == "not_probed":
        return result.get("note") or "not probed"
    if result["status"] == "inconclusive":
        return f"inconclusive: {result['reason']}"
    if not result["root_causes"]:
        return "unknown: no rule explains the failure (see the checks)"
    return ", ".join(result["root_causes"])


def _totals(summary):
    # Named only when there are some: a run where every pod was probed reads as before.
    not_probed = f", {summary['not_probed']} not probed" if summary.get("not_probed") else ""
    inconclusive = f", {summary['inconclusive']} inconclusive" if summary.get("inconclusive") else ""
    return (f"{summary['results']} result(s) in {summary['clusters']} cluster(s): {summary['healthy']} healthy, {summary['ok']} ok, "
            f"{summary['failing']} failing, {summary['unknown']} unknown{inconclusive}{not_probed}, {summary['errors']} not diagnosed")


def _not_diagnosed(error):
    """'cluster[ pod]: not diagnosed (inconclusive, stopped at <stage>): msg', plain text."""
    where = f" {error['pod']}" if error.get("pod") else ""
    return f"{_cluster_label(error)}{where}: not diagnosed (inconclusive, stopped at {error['stage']}): {error['msg']}"


def _cluster_label(entry):
    """The cluster's name, and the kubeconfig context it was reached through when that says more (a host without one
    was diagnosed through the default kubeconfig's current-context: the user must see which)."""
    context = entry.get("context")
    return f"{entry['cluster']} (context {context})" if context and context != entry["cluster"] else entry["cluster"]


def summary_lines(report):
    """The console's closing lines: one per result and per error, then the totals."""
    lines = []
    for result in report["results"]:
        mark = {"healthy": "OK  ", "ok": "OK  ", "failing": "FAIL", "unknown": "??  ", "not_probed": "--  "}.get(result["status"], "??  ")
        lines.append(f"{mark} {_cluster_label(result)} {result['pod']} -> {result['target']}: {_cause_line(result)}")
        for finding in result["findings"]:
            if finding.get("id") != "healthy":
                lines.append(f"       {finding['id']}{_observed_suffix(finding)}: {finding.get('summary', '')}")
                remedy = (finding.get("remediation") or {}).get("summary")
                if remedy:
                    lines.append(f"       fix: {remedy}")
    lines += [f"ERR  {_not_diagnosed(error)}" for error in report["errors"]]
    lines.append(_totals(report["summary"]))
    return [_one_line(line) for line in lines]   # a terminal escape or a line break in quoted text stays inert text


def _visible(text, pattern):
    """text with each character matched by pattern written as an escape (\\x1b, \\u202e): shown, never interpreted."""
    return pattern.sub(lambda m: f"\\x{ord(m.group()):02x}" if ord(m.group()) < 0x100 else f"\\u{ord(m.group()):04x}", str(text))


def _one_line(text):
    return LINE_BREAKS.sub(" ", _visible(text, CONTROL)).replace("\t", " ")


def _md_text(text):
    """Quoted text as inert Markdown on one line: no HTML, no entity, no emphasis, link, heading or list, no table break."""
    escaped = MD_PUNCTUATION.sub(r"\\\1", _one_line(text).strip())
    escaped = re.sub("[&<>]", lambda m: MD_ENTITIES[m.group()], escaped)
    return MD_BLOCK_START.sub(lambda m: m.group()[:-1] + "\\" + m.group()[-1], escaped)


def _md_code(text, in_table=False):
    """Quoted text as a code span: a fence longer than any backtick run inside; '|' escaped where a table cell ends at it."""
    content = _one_line(text)
    if not content.strip():
        return "-"
    if in_table:
        content = content.replace("|", "\\|")
    fence = "`" * (max((len(run) for run in re.findall("`+", content)), default=0) + 1)
    if content.startswith("`") or content.endswith("`"):
        content = f" {content} "
    return f"{fence}{content}{fence}"


def _observed_from(finding):
    """Whose observation a finding rests on, when it is not the pod's own (the default): node or static."""
    observed = finding.get("observed_from")
    return observed if observed and observed != "pod" else None


def _observed_suffix(finding):
    return f" (observed_from: {_observed_from(finding)})" if _observed_from(finding) else ""


def _md_finding(finding):
    lines = [f"#### {_md_code(finding['id'])} ({_md_text(finding.get('severity', 'critical'))}, {_md_text(finding.get('layer', ''))})", "",
             _md_text(finding.get("summary", "")), ""]
    if _observed_from(finding):
        lines += [f"Observed from: {_md_code(_observed_from(finding))}", ""]
    if finding.get("evidence"):
        lines += ["Evidence:", ""] + [f"- {_md_text(item)}" for item in finding["evidence"]] + [""]
    if finding.get("not_checked"):
        lines += ["Not checked:", ""] + [f"- {_md_text(item)}" for item in finding["not_checked"]] + [""]
    remediation = finding.get("remediation") or {}
    if remediation.get("summary"):
        lines += [f"Fix: {_md_text(remediation['summary'])}", ""]
        if remediation.get("params"):
            module = remediation.get("module") or "manual"
            # json.dumps escapes line breaks and non-ASCII: no line can close the fence
            lines += [f"Proposed with {_md_code(module)}:", "", "```json", json.dumps(remediation["params"], indent=2, sort_keys=True), "```", ""]
    return lines


def render_markdown(report):
    lines = ["# Egress diagnosis", "", f"{_totals(report['summary'])}.", "",
             "| cluster | pod | target | status | root causes |", "|---|---|---|---|---|"]
    for result in report["results"]:
        causes = ", ".join(_md_code(c, in_table=True) for c in result["root_causes"]) or "-"
        lines.append(f"| {_md_code(result['cluster'], True)} | {_md_code(result['pod'], True)} | {_md_code(result['target'], True)} | "
                     f"{_md_text(result['status'])} | {causes} |")
    lines.append("")
    if report["errors"]:
        lines += ["## Not diagnosed (inconclusive)", "", NOT_DIAGNOSED_NOTE, ""]
        lines += [f"- {_md_text(_not_diagnosed(error))}" for error in report["errors"]]
        lines.append("")
    for result in report["results"]:
        lines += [f"## {_md_text(result['cluster'])} {_md_text(result['pod'])} -&gt; {_md_text(result['target'])}", "",
                  f"Status: **{_md_text(result['status'])}**", ""]
        if result.get("note"):
            lines += [_md_text(result["note"]), ""]
        if result["status"] == "inconclusive":
            lines += [f"No root cause concluded: {_md_text(result['reason'])}", ""]
        for finding in result["findings"]:
            if finding.get("id") != "healthy":
                lines += _md_finding(finding)
        failed_checks = [c for c in result["checks"] if c.get("status") in ("fail", "error")]
        if failed_checks:
            lines += ["Failed checks:", ""] + [f"- {_md_code(c['name'])}: {_md_text(c.get('detail', ''))}" for c in failed_checks] + [""]
    return "\n".join(lines).rstrip("\n") + "\n"


HTML_STYLE = """
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;margin:24px;color:#1d2330;background:#fff}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 6px}h3{font-size:15px;margin:14px 0 4px}
.totals{color:#4a5263;margin:0 0 18px}.result{border:1px solid #d7dbe3;border-radius:8px;padding:12px 16px;margin:14px 0}
.result.failing{border-left:6px solid #c62828}.result.healthy,.result.ok{border-left:6px solid #2e7d32}
.result.unknown,.result.not_probed,.result.inconclusive{border-left:6px solid #f9a825}
.status{font-weight:600;text-transform:uppercase;font-size:12px;padding:2px 6px;border-radius:4px}
.status.failing{background:#fdecea;color:#b71c1c}.status.healthy,.status.ok{background:#e8f5e9;color:#1b5e20}.status.unknown,.status.not_probed,.status.inconclusive{background:#fff8e1;color:#8d6e00}
svg.path{display:block;margin:10px 0}.hop rect{stroke-width:2}.hop text{font-size:13px;text-anchor:middle;dominant-baseline:middle}
.hop-ok rect{fill:#e8f5e9;stroke:#2e7d32}.hop-fail rect{fill:#fdecea;stroke:#c62828;stroke-width:4}
.hop-unknown rect{fill:#f4f5f7;stroke:#9aa1ad;stroke-dasharray:4 3}.hop-not_reached rect{fill:#f4f5f7;stroke:#c4c8d0}
.hop-not_reached text{fill:#8a909c}.arrow{stroke:#9aa1ad;stroke-width:2}.finding{margin:8px 0 8px 4px}
.finding code{background:#f1f3f6;padding:1px 4px;border-radius:3px}ul{margin:4px 0 8px 18px;padding:0}
pre{background:#f6f8fa;padding:8px;border-radius:6px;overflow:auto;font-size:12px}.errors li{color:#b71c1c}
table{border-collapse:collapse;margin:8px 0}td,th{border:1px solid #d7dbe3;padding:4px 8px;font-size:13px;text-align:left}
"""
HOP_WIDTH, HOP_GAP, HOP_HEIGHT = 132, 28, 44


def _esc(value):
    return html.escape(str(value), quote=True)


def _path_svg(path):
    statuses = {hop.get("hop"): hop for hop in path}
    width = len(HOPS) * HOP_WIDTH + (len(HOPS) - 1) * HOP_GAP + 4
    parts = [f'<svg class="path" role="img" aria-label="egress path" width="{width}" height="{HOP_HEIGHT + 8}" '
             f'viewBox="0 0 {width} {HOP_HEIGHT + 8}" xmlns="http://www.w3.org/2000/svg">']
    for index, hop in enumerate(HOPS):
        entry = statuses.get(hop) or {}
        status = entry.get("status") or "unknown"
        x = 2 + index * (HOP_WIDTH + HOP_GAP)
        title = entry.get("note") or status
        label = HOP_LABELS[hop] + (" \u2717" if status == "fail" else "")
        parts.append(f'<g class="hop hop-{_esc(status)}" data-hop="{hop}" data-status="{_esc(status)}"><title>{_esc(title)}</title>'
                     f'<rect x="{x}" y="4" rx="8" width="{HOP_WIDTH}" height="{HOP_HEIGHT}"/>'
                     f'<text x="{x + HOP_WIDTH / 2:g}" y="{4 + HOP_HEIGHT / 2:g}">{_esc(label)}</text></g>')
        if index < len(HOPS) - 1:
            start = x + HOP_WIDTH
            parts.append(f'<line class="arrow" x1="{start}" y1="{4 + HOP_HEIGHT // 2}" x2="{start + HOP_GAP - 4}" y2="{4 + HOP_HEIGHT // 2}"/>'
                         f'<polygon points="{start + HOP_GAP - 4},{HOP_HEIGHT // 2 - 1} {start + HOP_GAP},{4 + HOP_HEIGHT // 2} '
                         f'{start + HOP_GAP - 4},{HOP_HEIGHT // 2 + 9}" fill="#9aa1ad"/>')
    parts.append("</svg>")
    return "".join(parts)


def _html_finding(finding):
    observed = _observed_from(finding)
    out = [f'<div class="finding" data-root-cause="{_esc(finding["id"])}"' + (f' data-observed-from="{_esc(observed)}"' if observed else "")
           + f'><h3><code>{_esc(finding["id"])}</code> {_esc(finding.get("summary", ""))}</h3>']
    if observed:
        out.append(f"<div>Observed from: <code>{_esc(observed)}</code></div>")
    if finding.get("evidence"):
        out.append("<div>Evidence:</div><ul>" + "".join(f"<li>{_esc(item)}</li>" for item in finding["evidence"]) + "</ul>")
    if finding.get("not_checked"):
        out.append("<div>Not checked:</div><ul>" + "".join(f"<li>{_esc(item)}</li>" for item in finding["not_checked"]) + "</ul>")
    remediation = finding.get("remediation") or {}
    if remediation.get("summary"):
        out.append(f"<div><strong>Fix:</strong> {_esc(remediation['summary'])}</div>")
        if remediation.get("params"):
            out.append(f"<pre>{_esc(json.dumps(remediation['params'], indent=2, sort_keys=True))}</pre>")
    out.append("</div>")
    return "".join(out)


def render_html(report):
    body = ["<h1>Egress diagnosis</h1>", f'<p class="totals">{_esc(_totals(report["summary"]))}</p>']
    if report["errors"]:
        body.append(f'<h2>Not diagnosed (inconclusive)</h2><p>{_esc(NOT_DIAGNOSED_NOTE)}</p><ul class="errors">' + "".join(
            f'<li data-cluster="{_esc(e["cluster"])}">{_esc(_not_diagnosed(e))}</li>' for e in report["errors"]) + "</ul>")
    for result in report["results"]:
        status = result["status"]
        body.append(f'<section class="result {_esc(status)}" data-cluster="{_esc(result["cluster"])}" data-pod="{_esc(result["pod"])}" '
                    f'data-target="{_esc(result["target"])}" data-status="{_esc(status)}">'
                    f'<h2>{_esc(result["cluster"])} &middot; {_esc(result["pod"])} &rarr; {_esc(result["target"])} '
                    f'<span class="status {_esc(status)}">{_esc(status)}</span></h2>')
        if result.get("note"):
            body.append(f'<p class="note">{_esc(result["note"])}</p>')
        if status == "inconclusive":
            body.append(f'<p class="reason">No root cause concluded: {_esc(result["reason"])}</p>')
        body.append(_path_svg(result["path"]))
        body.extend(_html_finding(f) for f in result["findings"] if f.get("id") != "healthy")
        if result["checks"]:
            rows = "".join(f'<tr><td>{_esc(c.get("name"))}</td><td>{_esc(c.get("status"))}</td><td>{_esc(c.get("detail", ""))}</td></tr>'
                           for c in result["checks"])
            body.append(f"<details><summary>Checks ({len(result['checks'])})</summary><table><tr><th>check</th><th>status</th>"
                        f"<th>detail</th></tr>{rows}</table></details>")
        body.append("</section>")
    return ('<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>Egress diagnosis</title>'
            f'<meta name="viewport" content="width=device-width,initial-scale=1"><style>{HTML_STYLE}</style></head>'
            f'<body>{"".join(body)}</body></html>\n')


def _xml(text):
    """Text XML 1.0 can hold: a character it forbids would make the whole file unparseable, and CI would drop it."""
    return _visible(text, XML_ILLEGAL)


def _verdict_case(result):
    """The one testcase of a target without checks: a pod that was not probed and shows no cause is skipped, not failed."""
    if result["status"] == "not_probed":
        return {"name": "verdict", "status": "skip", "detail": result.get("note") or "not probed"}
    return {"name": "verdict", "status": "pass" if result["status"] in ("healthy", "ok") else "fail"}


def render_junit(report):
    """One testsuite per cluster, one testcase per pod x target x check; a cluster that failed gets an erroring testcase."""
    suites = ElementTree.Element("testsuites", name="kubediag.egress")
    by_cluster = {}
    for result in report["results"]:
        by_cluster.setdefault(result["cluster"], {"results": [], "errors": []})["results"].append(result)
    for error in report["errors"]:
        by_cluster.setdefault(error["cluster"], {"results": [], "errors": []})["errors"].append(error)
    total = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
    for cluster, content in by_cluster.items():
        suite = ElementTree.SubElement(suites, "testsuite", name=_xml(cluster))
        counts = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
        for result in content["results"]:
            causes = "; ".join(f"{f['id']}: {f.get('summary', '')}" for f in result["findings"] if f.get("id") != "healthy")
            for check in result["checks"] or [_verdict_case(result)]:
                case = ElementTree.SubElement(suite, "testcase", classname=_xml(f"{cluster}.{result['pod']}"),
                                              name=_xml(f"{result['target']} :: {check['name']}"))
                counts["tests"] += 1
                if check.get("status") == "fail":
                    counts["failures"] += 1
                    failure = ElementTree.SubElement(case, "failure", message=_xml(check.get("detail") or "failed"), type="egress")
                    failure.text = _xml(causes or check.get("detail") or "")
                elif check.get("status") == "error":
                    counts["errors"] += 1
                    ElementTree.SubElement(case, "error", message=_xml(check.get("detail") or "error"), type="probe")
                elif check.get("status") == "skip":
                    counts["skipped"] += 1
                    ElementTree.SubElement(case, "skipped", message=_xml(check.get("detail") or "skipped"))
        for error in content["errors"]:
            case = ElementTree.SubElement(suite, "testcase", classname=_xml(f"{cluster}.{error.get('pod') or 'diagnosis'}"),
                                          name=_xml(error["stage"]))
            counts["tests"] += 1
            counts["errors"] += 1
            ElementTree.SubElement(case, "error", message=_xml(error["msg"]), type="diagnosis")
        for key, value in counts.items():
            suite.set(key, str(value))
            total[key] += value
    for key, value in total.items():
        suites.set(key, str(value))
    ElementTree.indent(suites)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ElementTree.tostring(suites, encoding="unicode") + "\n"


RENDERERS = {"json": ("report.json", render_json), "markdown": ("report.md", render_markdown),
             "html": ("report.html", render_html), "junit": ("junit.xml", render_junit)}


def render_all(report, formats=None):
    """{file name: content} for the requested formats (all by default)."""
    chosen = formats or list(RENDERERS)
    unknown = [f for f in chosen if f not in RENDERERS]
    _require(not unknown, f"unknown report format(s) {unknown}: choose from {sorted(RENDERERS)}")
    return {RENDERERS[f][0]: RENDERERS[f][1](report) for f in chosen}
