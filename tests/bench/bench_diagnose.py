"""Benchmark: the diagnose playbook end to end against the lab (needs root).

    PYTHONPATH=tests/lab .venv/bin/python tests/bench/bench_diagnose.py [--runs N]

Rows: one healthy pod; one fully broken pod (node.egress_broken: every check times out); 10 pods of one cluster picked by a
label selector. Each row gives the wall time of `ansible-playbook` (median of N runs, lab already up), the probe timeout, the
target, and the module invocations per pod (counted from the play's output: every ok/changed/failed result of a module task,
loop items included). Targets (issue 6): healthy < 6 s, fully broken <= probe timeout + 6 s.
"""

import argparse
import os
import re
import statistics
import sys
import tempfile

import yaml

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "integration", "diagnose"))

import diagnoselab
from kdlab import build

TIMEOUT = 5
MODULE_TASKS = ("Resolve which pods to diagnose", "Probe from inside each pod and from its node", "Read CoreDNS", "Read the cluster network setup",
                "Evaluate the NetworkPolicies", "Check whether Istio is installed", "Check the mesh for every pod", "Conclude for each pod",
                "Write the reports")
TASK_HEADER = re.compile(r"^TASK \[(?:[\w.]+ : )?(.*?)\]")
RESULT_LINE = re.compile(r"^(ok|changed|failed|fatal): \[")


def module_invocations(output):
    count, counting = 0, False
    for line in output.splitlines():
        header = TASK_HEADER.match(line)
        if header:
            counting = header.group(1).startswith(MODULE_TASKS)
        elif counting and RESULT_LINE.match(line):
            count += 1
    return count


def ten_pod_scenario(directory):
    pods = [{"namespace": "shop", "name": f"web-{n}", "node": "node-1", "image": "netshoot", "labels": {"app": "web"}} for n in range(10)]
    scenario = {"name": "bench-ten-pods", "description": "ten healthy pods of one workload", "clusters": [
        {"name": "lab", "provider": "aws", "nodes": [{"name": "node-1"}], "pods": pods}],
        "subject": {"pod": "shop/web-0", "targets": ["https://api.example.test/health"]}, "expect": {"root_causes": ["healthy"]}}
    path = os.path.join(directory, "bench-ten-pods.yml")
    with open(path, "w", encoding="utf-8") as handle:
        yaml.safe_dump(scenario, handle)
    return path


def measure(name, scenario, runs, workdir, pods=1, **extra):
    slug = re.sub(r"[^a-z0-9]+", "-", name)
    lab_dir = os.path.join(workdir, f"lab-{slug}")
    lab = build.up(scenario, lab_dir)
    try:
        times, invocations = [], None
        for run in range(runs):
            report_dir = os.path.join(workdir, f"report-{slug}-{run}")
            code, output, seconds = diagnoselab.run_playbook(lab.info["inventory"], report_dir, os.path.join(workdir, "home"),
                                                             {"timeout": TIMEOUT, **extra})
            if code != 0:
                raise SystemExit(f"{name}: the playbook failed (exit {code}):\n{output[-3000:]}")
            times.append(seconds)
            invocations = module_invocations(output)
        report = diagnoselab.read_report(os.path.join(workdir, f"report-{slug}-0"))
    finally:
        build.down(lab_dir)
    causes = sorted({c for r in report["results"] for c in r["root_causes"]})
    return {"case": name, "wall_s": statistics.median(times), "runs": runs, "pods": pods, "per_pod": invocations / pods, "causes": causes}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="kd-bench-diagnose-") as workdir:
        rows = [
            (measure("healthy", "healthy", args.runs, workdir), 6.0),
            (measure("fully broken", "node.egress_broken", args.runs, workdir), TIMEOUT + 6.0),
            (measure("10 pods, 1 cluster", ten_pod_scenario(workdir), args.runs, workdir, pods=10, pod="shop/app=web"), None),
        ]
    print(f"{'case':<20} {'wall (median)':>14} {'target':>9} {'modules/pod':>12}  root causes")
    for row, target in rows:
        verdict = "" if target is None else ("  ok" if row["wall_s"] < target else "  MISSED")
        target_text = "-" if target is None else f"< {target:.0f} s"
        print(f"{row['case']:<20} {row['wall_s']:>12.2f} s {target_text:>9} {row['per_pod']:>12.1f}  {','.join(row['causes'])}{verdict}")
    print(f"probe timeout {TIMEOUT} s per check; {args.runs} run(s) per case, lab up before timing; ansible-playbook start-up included")


if __name__ == "__main__":
    main()
