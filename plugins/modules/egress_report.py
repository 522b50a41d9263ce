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
  - A report file that is a symlink is replaced by a regular file, never written through; a link that leads out of
    O(report_dir) is not read either, not even for the diff.
  - A file holding bytes that are not UTF-8 (not a report this collection wrote) is named in a warning and replaced.
  - Runs on the controller; it reads and writes local files only.
options:
  report_dir:
    description: Directory that receives the reports; created (with parents) when missing.
    type: path
    required: true
  hosts:
    description:
      - One record per cluster, as the C(kubediag.egress.diagnose) role sets C(diagnose_result)
        C({cluster, context, pods, error}); C(pods) holds the C(kubediag.egress.egress_verdict) result of each pod, C(error) is
        C({stage, msg, pod}) when the cluster's diagnosis stopped, C(context) the kubeconfig context used (optional).
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
extends_documentation_fragment:
  - kubediag.egress.action_attributes
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
