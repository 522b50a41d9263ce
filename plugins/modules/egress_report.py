# Copyright: (c) 2026, kubediag.egress contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

DOCUMENTATION = r"""
module: egress_report
short_description: Write the egress diagnosis report (JSON contract, Markdown, self-contained HTML, JUnit XML) into a directory
version_added: 0.1.0
author:
  - kubediag.egress maintainers (@kubediag)
description:
  - Builds the report contract (C(report.json), see C(docs/report-schema.md)) from the per-cluster records the
    C(kubediag.egress.diagnose) role produces, one result per cluster x pod x target plus the clusters whose diagnosis failed,
    and renders it as C(report.md), C(report.html) (a picture of the egress path with the failing hop marked, inline CSS and
    SVG only, so it renders offline) and C(junit.xml) (one testcase per pod x target x check).
  - A file is written only when its content changes, so a second run over the same diagnosis reports C(changed=false).
  - Runs on the controller; it reads and writes local files only.
options:
  report_dir:
    description: Directory that receives the reports; created (with parents) when missing.
    type: path
    required: true
  hosts:
    description:
      - One record per cluster, as the C(kubediag.egress.diagnose) role sets C(diagnose_result)
        C({cluster, pods, error}); C(pods) holds the C(kubediag.egress.egress_verdict) result of each pod, C(error) is
        C({stage, msg, pod}) when the cluster's diagnosis stopped.
    type: list
    elements: dict
    required: true
  formats:
    description: Which files to write.
    type: list
    elements: str
    choices: [json, markdown, html, junit]
    default: [json, markdown, html, junit]
attributes:
  check_mode:
    description: Can run in check_mode and return changed status prediction without modifying target.
    support: full
    details: Reports which files would change and writes nothing.
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in check_mode), when in diff mode.
    support: full
    details: One diff per changed file.
  platform:
    description: Target OS/families that can be operated against.
    support: full
    platforms: posix
"""

EXAMPLES = r"""
- name: Write the reports of every cluster diagnosed in this play
  kubediag.egress.egress_report:
    report_dir: /tmp/egress-report
    hosts: "{{ ansible_play_hosts_all | map('extract', hostvars, 'diagnose_result') | list }}"
  register: egress_report
  run_once: true
  delegate_to: localhost

- name: Only the JSON contract and JUnit for CI
  kubediag.egress.egress_report:
    report_dir: "{{ playbook_dir }}/out"
    hosts: "{{ my_results }}"
    formats: [json, junit]
"""

RETURN = r"""
report:
  description: The report contract (the content of C(report.json)); see C(docs/report-schema.md).
  returned: always
  type: dict
  sample: {"schema_version": 1, "summary": {"results": 1, "failing": 1}, "results": [], "errors": []}
files:
  description: Path of each file of the report, by format.
  returned: always
  type: dict
  sample: {"json": "/tmp/egress-report/report.json", "html": "/tmp/egress-report/report.html"}
changed_files:
  description: The files written (or, in check mode, that would be written) because their content changed.
  returned: always
  type: list
  elements: str
  sample: ["/tmp/egress-report/report.json"]
summary_lines:
  description: A short human summary, one line per result and per failed cluster, then the totals.
  returned: always
  type: list
  elements: str
  sample: ["FAIL lab shop/web -> https://api.example.test/health: dns.upstream_forwarding"]
"""

import os  # noqa: E402 - imports follow the documentation
import tempfile  # noqa: E402

from ansible.module_utils.basic import AnsibleModule  # noqa: E402

from ansible_collections.kubediag.egress.plugins.module_utils.report import RENDERERS, ReportError, build_report, render_all, summary_lines  # noqa: E402

ARGUMENT_SPEC = {
    "report_dir": {"type": "path", "required": True},
    "hosts": {"type": "list", "elements": "dict", "required": True},
    "formats": {"type": "list", "elements": "str", "choices": list(RENDERERS), "default": list(RENDERERS)},
}


def _current(path):
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.read()
    except FileNotFoundError:
        return None


def _write(module, path, content):
    directory = os.path.dirname(path)
    handle, temporary = tempfile.mkstemp(dir=directory, prefix=".egress-report-")
    with os.fdopen(handle, "w", encoding="utf-8") as out:
        out.write(content)
    os.chmod(temporary, 0o644)
    module.atomic_move(temporary, path)


def main():
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    report_dir = module.params["report_dir"]
    try:
        report = build_report(module.params["hosts"])
        contents = render_all(report, module.params["formats"])
    except ReportError as exc:
        module.fail_json(msg=f"cannot build the report: {exc}")
    if os.path.exists(report_dir) and not os.path.isdir(report_dir):
        module.fail_json(msg=f"report_dir {report_dir} exists and is not a directory: choose another path")
    files = {fmt: os.path.join(report_dir, RENDERERS[fmt][0]) for fmt in module.params["formats"]}
    changed_files, diffs = [], []
    for path in files.values():
        before, after = _current(path), contents[os.path.basename(path)]
        if before == after:
            continue
        changed_files.append(path)
        if module._diff:
            diffs.append({"before_header": path, "after_header": path, "before": before or "", "after": after})
    if changed_files and not module.check_mode:
        try:
            os.makedirs(report_dir, exist_ok=True)
            for path in changed_files:
                _write(module, path, contents[os.path.basename(path)])
        except OSError as exc:
            module.fail_json(msg=f"cannot write the report into {report_dir}: {exc.strerror or exc}; check the path and its permissions")
    result = {"changed": bool(changed_files), "report": report, "files": files, "changed_files": changed_files,
              "summary_lines": summary_lines(report)}
    if module._diff:
        result["diff"] = diffs
    module.exit_json(**result)


if __name__ == "__main__":
    main()
