"""Benchmark: a fleet of healthy lab clusters diagnosed at once, counting false alarms (issue 9; needs root).

    PYTHONPATH=tests/lab .venv/bin/python tests/bench/bench_fleet.py      # BENCH_FLEET_SIZES=20,40 (clusters per fleet)

For each size N: a lab of N healthy clusters (one node and one netshoot pod each, providers in turn aws, gce, azure, as
healthy-fleet.yml mixes them), diagnosed by ``ansible-playbook diagnose_egress.yml`` with ``-f 5`` and ``-f N`` (lab up
before timing, the playbook's default probe timeout). Each row: wall time, wall time per cluster, how many pods came back
healthy, false alarms (a pod given any root cause: every cluster is healthy), inconclusive pods (the probe said its
timings could not be trusted: not an alarm, counted apart), clusters not diagnosed (an error). PASS only with 0 false
alarms in every row; the exit status is 1 otherwise. With ``BENCH_FLEET_FACTS_DIR=<dir>`` the playbook also saves each
cluster's facts there (one more task per cluster, so not for the figures), and each false alarm is explained under the
table: its failing checks with their attempts, and the probe's timing.
"""

import collections
import json
import os
import subprocess
import sys
import tempfile
import time

import yaml

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "integration", "diagnose"))

import diagnoselab
from kdlab import build

FACTS_DIR = os.environ.get("BENCH_FLEET_FACTS_DIR")
SIZES = [int(size) for size in os.environ.get("BENCH_FLEET_SIZES", "20,40").split(",") if size.strip()]
SMALL_FORKS = 5
PROVIDERS = ("aws", "gce", "azure")
TARGET = "https://api.example.test/health"


def fleet_scenario(directory, size):
    clusters = [{"name": f"c{index:02d}", "provider": PROVIDERS[index % len(PROVIDERS)], "nodes": [{"name": "node-1"}],
                 "pods": [{"namespace": "shop", "name": "web", "node": "node-1", "image": "netshoot", "labels": {"app": "web"}}]}
                for index in range(size)]
    # No cluster in the subject: every cluster of the inventory gets the pod and the target.
    scenario = {"name": f"bench-fleet-{size}", "description": f"{size} healthy clusters, one netshoot pod each", "clusters": clusters,
                "subject": {"pod": "shop/web", "targets": [TARGET]}, "expect": {"root_causes": ["healthy"]}}
    path = os.path.join(directory, f"bench-fleet-{size}.yml")
    with open(path, "w", encoding="utf-8") as handle:
        yaml.safe_dump(scenario, handle)
    return path


def diagnose(inventory, report_dir, home, forks, facts_dir=None):
    """(exit code, output, wall seconds) of the diagnose playbook over the whole fleet with `forks` forks."""
    extra = {"report_dir": report_dir, **({"save_facts_dir": facts_dir} if facts_dir else {})}
    argv = [os.path.join(diagnoselab.VENV_BIN, "ansible-playbook"), "-f", str(forks), "-i", inventory, diagnoselab.PLAYBOOK,
            "-e", json.dumps(extra)]
    started = time.monotonic()
    done = subprocess.run(argv, cwd=diagnoselab.REPO, env=diagnoselab.ansible_env(home), capture_output=True, text=True, timeout=1800,
                          check=False)
    return done.returncode, done.stdout + done.stderr, time.monotonic() - started


def explain(facts_dir, cluster):
    """One line per failing check of the cluster's pod (and its node) with its attempts, and the probes' timing."""
    with open(os.path.join(facts_dir, f"{cluster}.json"), encoding="utf-8") as handle:
        facts = json.load(handle)
    lines = []
    for probe in facts.get("pod_probes") or []:
        for who, part in (("pod", probe), ("node", probe.get("node") or {})):
            lines.append(f"    {cluster} {who} timing: {json.dumps(part.get('timing'))}")
            for check in part.get("checks") or []:
                if check["status"] in ("fail", "error") and check["kind"] != "icmp":
                    attempts = [(a["status"], a["error_class"], a["elapsed_ms"], a["start_lag_ms"]) for a in check["details"].get("attempts", [])]
                    lines.append(f"    {cluster} {who} {check['id']}: {check['error_class']} {check['summary'][:100]} attempts={attempts}")
    return lines


def tally(report):
    """Per pod: healthy, a false alarm (any root cause), or inconclusive; plus the clusters not diagnosed."""
    pods = collections.defaultdict(set)
    for result in report["results"]:
        pods[(result["cluster"], result["pod"])].add((result["status"], tuple(result["root_causes"])))
    counts = collections.Counter()
    causes = collections.Counter()
    alarms = []
    for (cluster, _pod), outcomes in pods.items():
        statuses = {status for status, _causes in outcomes}
        found = {cause for _status, pod_causes in outcomes for cause in pod_causes if cause != "healthy"}
        if found or "failing" in statuses or "unknown" in statuses:
            counts["false_alarms"] += 1
            causes.update(found or {"unknown"})
            alarms.append(cluster)
        elif "inconclusive" in statuses:
            counts["inconclusive"] += 1
        else:
            counts["healthy"] += 1
    counts["errors"] = len(report["errors"])
    return counts, causes, alarms


def main():
    rows, explained = [], []
    with tempfile.TemporaryDirectory(prefix="kd-bench-fleet-") as workdir:
        for size in SIZES:
            lab_dir = os.path.join(workdir, f"lab-{size}")
            lab = build.up(fleet_scenario(workdir, size), lab_dir)
            try:
                for forks in dict.fromkeys((SMALL_FORKS, size)):
                    report_dir = os.path.join(workdir, f"report-{size}-f{forks}")
                    facts_dir = os.path.join(FACTS_DIR, f"{size}-f{forks}") if FACTS_DIR else None
                    if facts_dir:
                        os.makedirs(facts_dir, exist_ok=True)
                    code, output, seconds = diagnose(lab.info["inventory"], report_dir, os.path.join(workdir, "home"), forks, facts_dir)
                    try:
                        report = diagnoselab.read_report(report_dir)
                    except OSError:
                        raise SystemExit(f"{size} clusters -f {forks}: no report (exit {code}):\n{output[-3000:]}") from None
                    counts, causes, alarms = tally(report)
                    rows.append((size, forks, seconds, counts, causes))
                    explained += [line for cluster in alarms for line in explain(facts_dir, cluster)] if facts_dir else []
            finally:
                build.down(lab_dir)
    print(f"{'clusters':>8} {'forks':>5} {'wall':>9} {'per cluster':>12} {'healthy':>8} {'false alarms':>13} {'inconclusive':>13} "
          f"{'not diagnosed':>14}  false alarms by root cause")
    failed = 0
    for size, forks, seconds, counts, causes in rows:
        by_cause = ", ".join(f"{cause} x{count}" for cause, count in sorted(causes.items())) or "-"
        print(f"{size:>8} {forks:>5} {seconds:>7.1f} s {seconds / size:>10.2f} s {counts['healthy']:>8} {counts['false_alarms']:>13} "
              f"{counts['inconclusive']:>13} {counts['errors']:>14}  {by_cause}")
        failed += counts["false_alarms"] > 0
    for size, forks, _seconds, counts, _causes in rows:
        print(f"{'PASS' if not counts['false_alarms'] else 'FAIL'}  {size} healthy clusters at -f {forks}: {counts['false_alarms']} false alarm(s)")
    print("one netshoot pod per cluster, the playbook's default probe timeout, lab up before timing; wall = ansible-playbook start to end")
    for line in explained:
        print(line)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
