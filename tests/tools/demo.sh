#!/usr/bin/env bash
# `make demo`: bring up a broken lab, diagnose it with the playbook a user runs, print the summary and where the HTML report
# is, tear the lab down. DEMO_SCENARIO picks another bundled scenario (`make lab-list`); DEMO_REPORT_DIR keeps the reports.
set -euo pipefail
cd "$(dirname "$0")/../.."
scenario=${DEMO_SCENARIO:-dns.upstream_forwarding}
lab=$(mktemp -d /tmp/kubediag-demo.XXXXXX)
report_dir=${DEMO_REPORT_DIR:-/tmp/kubediag-demo-report}
kdlab() { PYTHONPATH=tests/lab .venv/bin/python -m kdlab "$@"; }
trap 'kdlab down --lab "$lab" >/dev/null; rm -rf "$lab"' EXIT

echo "== bringing up the lab scenario '$scenario' in $lab"
kdlab up --scenario "$scenario" --lab "$lab"
echo
echo "== ansible-playbook playbooks/diagnose_egress.yml -i $lab/inventory.yml -e report_dir=$report_dir"
status=0
ANSIBLE_CONFIG=ansible.cfg .venv/bin/ansible-playbook playbooks/diagnose_egress.yml -i "$lab/inventory.yml" \
  -e report_dir="$report_dir" >"$lab/playbook.log" 2>&1 || status=$?
.venv/bin/python - "$report_dir/report.json" <<'PY'
import json, sys
sys.path.insert(0, ".collections")
from ansible_collections.kubediag.egress.plugins.module_utils.report.render import summary_lines
print("\n".join(summary_lines(json.load(open(sys.argv[1])))))
PY
echo
echo "== HTML report (open it in a browser): file://$report_dir/report.html"
echo "   also in $report_dir: report.json (the contract), report.md, junit.xml"
if [ "$status" -ne 0 ]; then
  echo "== the playbook failed (exit $status); its last lines:" >&2
  tail -20 "$lab/playbook.log" >&2
  exit "$status"
fi
