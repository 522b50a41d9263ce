"""Benchmark: the diagnose playbook end to end on the healthy scenario while the lab API server injects faults (issue 17).

    PYTHONPATH=tests/lab .venv/bin/python tests/bench/bench_faults.py        # BENCH_FAULTS_RUNS=N runs per fault set (5)

Rows: no faults; 10% 429 (Retry-After 1) + 10% 503 + 5% dropped connections; 30% 429 + 10% 500. Each row: runs whose report
gives the scenario's expected root causes and no error, the wall time of `ansible-playbook` (min/median/max, lab already up),
the median's ratio to the no-fault median, and the slowest run's ratio to one module run's time budget (api_budget: 4 x the
default api_timeout). A run that fails is counted, not fatal: the first line of its error is printed under the table.
"""

import json
import os
import statistics
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "integration", "diagnose"))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "integration", "apiserver"))

import diagnoselab
from apiserver_testlib import raw_request
from kdlab import build

RUNS = int(os.environ.get("BENCH_FAULTS_RUNS", "5"))
TIMEOUT = 5  # the playbook's default probe timeout
MODULE_BUDGET = 4 * 15.0  # api_budget: 4 x the modules' default api_timeout
FAULT_SETS = (
    ("none", {}),
    ("10% 429 + 10% 5xx + 5% drop", {"throttle": {"fraction": 0.1, "retry_after": 1}, "errors": {"fraction": 0.1, "code": 503},
                                     "drop": {"fraction": 0.05}}),
    ("30% 429 + 10% 500", {"throttle": {"fraction": 0.3, "retry_after": 1}, "errors": {"fraction": 0.1, "code": 500}}),
)


def set_faults(lab, spec):
    with open(os.path.join(lab.dir, "apiserver.json"), encoding="utf-8") as handle:
        endpoints = json.load(handle)
    status, _headers, body = raw_request(endpoints, "PUT", "/_lab/faults", spec)
    if status != 200:
        raise SystemExit(f"PUT /_lab/faults answered {status}: {body}")


def one_run(lab, workdir, label, run):
    """(expected verdict?, wall seconds, what went wrong or None)."""
    report_dir = os.path.join(workdir, f"report-{label}-{run}".replace(" ", "_").replace("%", ""))
    code, output, seconds = diagnoselab.run_playbook(lab.info["inventory"], report_dir, os.path.join(workdir, "home"), {"timeout": TIMEOUT})
    try:
        report = diagnoselab.read_report(report_dir)
    except OSError:
        return False, seconds, f"exit {code}, no report: {output.strip().splitlines()[-1] if output.strip() else ''}"
    if report["errors"]:
        return False, seconds, report["errors"][0]["msg"]
    causes = {cause for result in report["results"] for cause in result["root_causes"]}
    expected = set(lab.scenario["expect"]["root_causes"])
    return causes == expected and code == 0, seconds, None if causes == expected else f"root causes {sorted(causes)}, expected {sorted(expected)}"


def main():
    rows, problems = [], []
    with tempfile.TemporaryDirectory(prefix="kd-bench-faults-") as workdir:
        lab = build.up("healthy", os.path.join(workdir, "lab"))
        try:
            for label, spec in FAULT_SETS:
                set_faults(lab, spec)
                outcomes = [one_run(lab, workdir, label, run) for run in range(RUNS)]
                problems += [f"{label}: {problem}" for _ok, _seconds, problem in outcomes if problem]
                rows.append((label, sum(ok for ok, _seconds, _problem in outcomes), sorted(seconds for _ok, seconds, _problem in outcomes)))
            set_faults(lab, {})
        finally:
            build.down(lab.dir)
    baseline = statistics.median(rows[0][2])
    print(f"{'faults on every request':<29} {'expected verdict':>16} {'wall min / median / max':>26} {'median / none':>14} {'max / budget':>13}")
    for label, good, walls in rows:
        median = statistics.median(walls)
        print(f"{label:<29} {f'{good}/{len(walls)}':>16} {f'{walls[0]:.2f} / {median:.2f} / {walls[-1]:.2f} s':>26} "
              f"{median / baseline:>13.2f}x {walls[-1] / MODULE_BUDGET:>12.2f}x")
    print(f"healthy scenario, probe timeout {TIMEOUT} s, {RUNS} run(s) per row (BENCH_FAULTS_RUNS), ansible-playbook start-up included; "
          f"budget = one module run's api_budget ({MODULE_BUDGET:g} s)")
    for problem in problems:
        print(f"  {problem.splitlines()[0][:300]}")


if __name__ == "__main__":
    main()
