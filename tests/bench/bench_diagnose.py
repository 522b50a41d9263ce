"""Benchmark: the diagnose playbook end to end against the lab, as ratios of the same run's floors (needs root).

    PYTHONPATH=tests/lab .venv/bin/python tests/bench/bench_diagnose.py [--runs N] [--timeout S]

Measured in one run, each a median of N runs (labs up before timing):
- ``N``: ``ansible-playbook -i localhost,`` running one ``command`` task (Ansible's start-up plus one module round trip), timed
  beside each end-to-end run so it follows the machine's load;
- the probe alone (``pod_probe.probe_pod`` in this process, the playbook's options), healthy and fully broken;
- the playbook end to end: one healthy pod, one fully broken pod (node.egress_broken: every check times out), 10 healthy
  pods of one cluster picked by a label selector;
- module invocations per pod: every Python process Ansible starts for a module (AnsiballZ, async wrappers and async_status
  included), counted by an interpreter that logs its argv before running the real one; controller action plugins start none.

Targets (issue 11), checked in the same run: healthy <= N + 1.5 s; fully broken <= N + probe timeout + 2 s;
10 pods <= 2x the single healthy pod; module invocations per healthy pod <= 2. Exit status 1 when a target is missed.
"""

import argparse
import collections
import os
import re
import shlex
import statistics
import subprocess
import sys
import tempfile
import time

import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "integration", "diagnose"))

import diagnoselab  # noqa: E402
from kdlab import build  # noqa: E402

sys.path.insert(0, os.path.join(diagnoselab.REPO, ".collections"))

from ansible_collections.kubediag.egress.plugins.module_utils.k8s import client as kube  # noqa: E402
from ansible_collections.kubediag.egress.plugins.module_utils.probe import runner as pod_probe  # noqa: E402

NOOP_PLAYBOOK = """- name: No-op
  hosts: all
  connection: local
  gather_facts: false
  tasks:
    - name: One command
      ansible.builtin.command: "true"
      changed_when: false
"""
MODULE_SCRIPT = re.compile(r"AnsiballZ_(\w+)\.py")


def counting_interpreter(workdir):
    """(path of an interpreter that appends its argv to a log and runs this Python, path of that log)."""
    log = os.path.join(workdir, "invocations.log")
    path = os.path.join(workdir, "python-counting")
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(f'#!/bin/sh\nprintf "%s\\n" "$*" >> {shlex.quote(log)}\nexec {shlex.quote(sys.executable)} "$@"\n')
    os.chmod(path, 0o700)
    return path, log


def invocations_since(log, offset):
    """Module names of the processes logged after byte offset, and the new offset."""
    if not os.path.exists(log):
        return collections.Counter(), offset
    with open(log, encoding="utf-8") as handle:
        handle.seek(offset)
        lines = handle.read()
        end = handle.tell()
    names = collections.Counter()
    for line in lines.splitlines():
        match = MODULE_SCRIPT.search(line)
        names[match.group(1) if match else line.split(" ")[0]] += 1
    return names, end


class NoopPlaybook:
    """The floor: `ansible-playbook -i localhost,` over one command task. Timed beside every end-to-end run (not once up
    front), so that N follows the machine's load through the whole benchmark."""

    def __init__(self, workdir):
        self.playbook = os.path.join(workdir, "noop.yml")
        with open(self.playbook, "w", encoding="utf-8") as handle:
            handle.write(NOOP_PLAYBOOK)
        self.workdir, self.env, self.times = workdir, diagnoselab.ansible_env(os.path.join(workdir, "home")), []

    def run(self):
        argv = [os.path.join(diagnoselab.VENV_BIN, "ansible-playbook"), "-i", "localhost,", self.playbook, "-e",
                f"ansible_python_interpreter={sys.executable}"]
        started = time.monotonic()
        subprocess.run(argv, cwd=self.workdir, env=self.env, capture_output=True, check=True, timeout=120)
        self.times.append(time.monotonic() - started)

    def seconds(self):
        return statistics.median(self.times)


def subject_host(inventory):
    with open(inventory, encoding="utf-8") as handle:
        hosts = yaml.safe_load(handle)["all"]["children"]["clusters"]["hosts"]
    return next(host for host in hosts.values() if host.get("egress_pod"))


def probe_seconds(lab_dir, inventory, timeout, runs):
    """The probe alone with the options the playbook gives it (defaults of playbooks/vars/diagnose_egress.yml)."""
    with open(os.path.join(diagnoselab.REPO, "playbooks", "vars", "diagnose_egress.yml"), encoding="utf-8") as handle:
        defaults = yaml.safe_load(handle)
    host = subject_host(inventory)
    namespace, name = host["egress_pod"].split("/", 1)
    options = pod_probe.build_options(timeout=timeout, external_resolver=host.get("egress_external_resolver") or defaults["default_external_resolver"],
                                      echo_url=host.get("egress_echo_url"), test_proxy=host.get("egress_test_proxy"))
    times = []
    for _run in range(runs):
        started = time.monotonic()
        client = kube.connect(kubeconfig=host["kubeconfig"], context=host["context"])
        pod_probe.probe_pod(client, namespace, name, host["egress_targets"], options=options, node_probe=defaults["default_node_probe"])
        times.append(time.monotonic() - started)
    return statistics.median(times)


def ten_pod_scenario(directory):
    pods = [{"namespace": "shop", "name": f"web-{n}", "node": "node-1", "image": "netshoot", "labels": {"app": "web"}} for n in range(10)]
    scenario = {"name": "bench-ten-pods", "description": "ten healthy pods of one workload", "clusters": [
        {"name": "lab", "provider": "aws", "nodes": [{"name": "node-1"}], "pods": pods}],
        "subject": {"pod": "shop/web-0", "targets": ["https://api.example.test/health"]}, "expect": {"root_causes": ["healthy"]}}
    path = os.path.join(directory, "bench-ten-pods.yml")
    with open(path, "w", encoding="utf-8") as handle:
        yaml.safe_dump(scenario, handle)
    return path


def measure(case, scenario, args, workdir, interpreter, noop, pods=1, probe=True, **extra):
    slug = re.sub(r"[^a-z0-9]+", "-", case)
    lab_dir = os.path.join(workdir, f"lab-{slug}")
    interpreter_path, log = interpreter
    lab = build.up(scenario, lab_dir)
    try:
        probe_s = probe_seconds(lab_dir, lab.info["inventory"], args.timeout, args.runs) if probe else None
        times, counts, offset = [], [], os.path.getsize(log) if os.path.exists(log) else 0
        for run in range(args.runs):
            noop.run()
            report_dir = os.path.join(workdir, f"report-{slug}-{run}")
            code, output, seconds = diagnoselab.run_playbook(lab.info["inventory"], report_dir, os.path.join(workdir, "home"),
                                                             {"timeout": args.timeout, "ansible_python_interpreter": interpreter_path, **extra})
            if code != 0:
                raise SystemExit(f"{case}: the playbook failed (exit {code}):\n{output[-3000:]}")
            times.append(seconds)
            names, offset = invocations_since(log, offset)
            counts.append(names)
        report = diagnoselab.read_report(os.path.join(workdir, f"report-{slug}-0"))
    finally:
        build.down(lab_dir)
    causes = sorted({c for r in report["results"] for c in r["root_causes"]})
    return {"case": case, "wall_s": statistics.median(times), "probe_s": probe_s, "per_pod": max(sum(c.values()) for c in counts) / pods,
            "modules": dict(counts[-1]), "causes": causes}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="runs per measurement (median)")
    parser.add_argument("--timeout", type=int, default=5, help="the probe's per-check timeout, seconds")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="kd-bench-diagnose-") as workdir:
        interpreter, floor = counting_interpreter(workdir), NoopPlaybook(workdir)
        healthy = measure("healthy", "healthy", args, workdir, interpreter, floor)
        broken = measure("fully broken", "node.egress_broken", args, workdir, interpreter, floor)
        fleet = measure("10 pods, 1 cluster", ten_pod_scenario(workdir), args, workdir, interpreter, floor, pods=10, probe=False, pod="shop/app=web")
        noop = floor.seconds()
    print(f"no-op playbook N = {noop:.2f} s (median of {len(floor.times)}, one beside each end-to-end run; "
          f"min {min(floor.times):.2f}, max {max(floor.times):.2f}); probe timeout T = {args.timeout} s; median of {args.runs} run(s), labs up before timing")
    print(f"{'case':<20} {'probe alone':>12} {'end to end':>11} {'modules/pod':>12}  root causes; modules (last run)")
    for row in (healthy, broken, fleet):
        probe_text = "-" if row["probe_s"] is None else f"{row['probe_s']:.2f} s"
        modules = ", ".join(f"{name} x{count}" for name, count in sorted(row["modules"].items()))
        print(f"{row['case']:<20} {probe_text:>12} {row['wall_s']:>9.2f} s {row['per_pod']:>12.1f}  {','.join(row['causes'])}; {modules}")
    targets = [
        ("healthy <= N + 1.5 s", healthy["wall_s"], noop + 1.5),
        ("fully broken <= N + T + 2 s", broken["wall_s"], noop + args.timeout + 2.0),
        ("10 pods <= 2x healthy", fleet["wall_s"], 2 * healthy["wall_s"]),
        ("modules per healthy pod <= 2", healthy["per_pod"], 2),
    ]
    missed = 0
    for name, value, limit in targets:
        passed = value <= limit
        missed += not passed
        print(f"{'PASS' if passed else 'FAIL'}  {name}: {value:.2f} (limit {limit:.2f})")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
