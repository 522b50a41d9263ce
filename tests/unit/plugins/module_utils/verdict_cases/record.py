"""Record the facts the verdict reads, per bundled lab scenario, as the unit tests' cases (needs root: it builds labs).

    .venv/bin/python tests/unit/plugins/module_utils/verdict_cases/record.py [scenario ...]

For each scenario: bring the lab up, run playbooks/diagnose_egress.yml with save_facts_dir, and keep the subject cluster's
facts bundle (exactly what egress_verdict received) as <scenario>.json with the scenario's expected root causes. Module
bookkeeping (invocation) is dropped and long raw outputs are cut, so the files stay small and reviewable.
"""

import json
import os
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, *[".."] * 5))
sys.path.insert(0, os.path.join(REPO, "tests", "integration", "diagnose"))

import diagnoselab  # noqa: E402
from kdlab import build  # noqa: E402

EVIDENCE_KEEP = 600


def _trim(value):
    if isinstance(value, dict):
        return {k: _trim(v) for k, v in value.items() if k not in ("invocation", "_ansible_no_log", "_ansible_item_label")}
    if isinstance(value, list):
        return [_trim(v) for v in value]
    if isinstance(value, str) and len(value) > EVIDENCE_KEEP:
        return value[:EVIDENCE_KEEP] + " [...]"
    return value


def record(name, workdir):
    lab_dir = os.path.join(workdir, "lab")
    lab = build.up(name, lab_dir)
    try:
        facts_dir = os.path.join(workdir, "facts")
        os.makedirs(facts_dir)
        extra_vars = {"save_facts_dir": facts_dir, "timeout": 3}
        code, output, _seconds = diagnoselab.run_playbook(lab.info["inventory"], os.path.join(workdir, "report"), os.path.join(workdir, "home"),
                                                          extra_vars)
        if code != 0:
            raise SystemExit(f"{name}: the playbook failed (exit {code}):\n{output[-3000:]}")
        cluster = lab.scenario["subject"].get("cluster") or lab.scenario["clusters"][0]["name"]
        with open(os.path.join(facts_dir, f"{cluster}.json"), encoding="utf-8") as handle:
            bundle = json.load(handle)
    finally:
        build.down(lab_dir)
    return {"scenario": name, "expect": {"root_causes": lab.scenario["expect"]["root_causes"]}, "facts": _trim(bundle)}


def main(names):
    for name in names or diagnoselab.scenarios():
        with tempfile.TemporaryDirectory(prefix="kd-record-") as workdir:
            case = record(name, workdir)
        with open(os.path.join(HERE, f"{name}.json"), "w", encoding="utf-8") as handle:
            json.dump(case, handle, indent=1, sort_keys=True)
            handle.write("\n")
        print(f"recorded {name}: expect {case['expect']['root_causes']}")


if __name__ == "__main__":
    main(sys.argv[1:])
