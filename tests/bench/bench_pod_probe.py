"""pod_probe wall time for one pod and three targets, healthy and everything-times-out, beside the field guide's
"comprehensive test" script (six `kubectl exec` commands) run in the same lab with the same per-command timeout.

Run as root: PYTHONPATH=tests/lab .venv/bin/python tests/bench/bench_pod_probe.py [--repeat N] [--timeout S]
Targets (issue 4): healthy < 2 s; everything-times-out <= timeout + 2 s; >= 3x faster than the guide on the broken pod."""

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(REPO, "tests", "lab"))
sys.path.insert(0, os.path.join(REPO, ".collections"))

from kdlab import build  # noqa: E402
from kdlab.cli import NOT_ROOT  # noqa: E402

from ansible_collections.kubediag.egress.plugins.module_utils.k8s import client as kube  # noqa: E402
from ansible_collections.kubediag.egress.plugins.module_utils.probe import runner as pod_probe  # noqa: E402

KUBECTL = "/usr/lib/google-cloud-sdk/bin/kubectl.1.31"
TARGETS = ["https://api.example.test/health", "http://api.example.test/", "https://whoami.example.test/"]
ECHO_URL = "http://ifconfig.example.test/"
KNOWN_GOOD_IP = "198.51.100.10"


def guide_commands(timeout: int) -> list[list[str]]:
    """The guide's test-external-connectivity.sh, lab names for its public ones, each command under `timeout`."""
    bounded = ["timeout", str(timeout)]
    return [[*bounded, "nslookup", "api.example.test"], [*bounded, "ping", "-c", "3", KNOWN_GOOD_IP],
            [*bounded, "curl", "-v", "http://api.example.test/"], [*bounded, "curl", "-v", "https://whoami.example.test/"],
            [*bounded, "curl", "-v", "https://api.example.test/health"], [*bounded, "curl", ECHO_URL]]


def run_guide(lab_dir: str, timeout: int) -> float:
    env = dict(os.environ, KUBECONFIG=os.path.join(lab_dir, "kubeconfig"), HOME=lab_dir)
    started = time.monotonic()
    for command in guide_commands(timeout):
        subprocess.run([KUBECTL, "--context", "lab", "-n", "shop", "exec", "web", "--", *command], env=env, capture_output=True,
                       timeout=timeout * 4 + 30, check=False)
    return time.monotonic() - started


def run_probe(lab_dir: str, timeout: int) -> tuple[float, dict]:
    started = time.monotonic()
    client = kube.connect(kubeconfig=os.path.join(lab_dir, "kubeconfig"), context="lab")
    options = pod_probe.build_options(timeout=timeout, external_resolver="192.0.2.8", known_good_ip=KNOWN_GOOD_IP, echo_url=ECHO_URL)
    facts = pod_probe.probe_pod(client, "shop", "web", TARGETS, options=options)
    return time.monotonic() - started, facts


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5, help="runs per measurement for the healthy pod (median)")
    parser.add_argument("--timeout", type=int, default=5, help="per-check (pod_probe) and per-command (guide) timeout, seconds")
    args = parser.parse_args()
    if os.geteuid() != 0:
        print(NOT_ROOT, file=sys.stderr)
        return 2
    if not os.path.exists(KUBECTL):
        print(f"{KUBECTL} is missing; install the google-cloud-sdk kubectl bundle", file=sys.stderr)
        return 2
    rows, verdicts = [], []
    for scenario, repeat in (("healthy", args.repeat), ("node.egress_broken", 1)):
        lab_dir = tempfile.mkdtemp(prefix="kdbench-probe-")
        try:
            build.up(scenario, lab_dir)
            probes = [run_probe(lab_dir, args.timeout) for _unused in range(repeat)]
            guide = statistics.median(run_guide(lab_dir, args.timeout) for _unused in range(repeat))
        finally:
            build.down(lab_dir)
            shutil.rmtree(lab_dir, ignore_errors=True)
        probe_s = statistics.median(seconds for seconds, _facts in probes)
        facts = probes[-1][1]
        checks = sum(facts["summary"].values())
        rows.append((scenario, probe_s, checks, facts["summary"], guide, len(guide_commands(args.timeout))))
        if scenario == "healthy":
            verdicts.append(("healthy < 2 s", probe_s < 2.0))
        else:
            verdicts.append((f"all-timeout <= timeout + 2 s ({args.timeout + 2} s)", probe_s <= args.timeout + 2))
            verdicts.append((">= 3x faster than the guide, more checks", guide / probe_s >= 3 and checks > len(guide_commands(args.timeout))))
    print(f"one pod, three targets, timeout {args.timeout} s; medians of {args.repeat} runs (healthy), 1 run (broken)")
    print("| scenario | pod_probe s | checks (ok/fail/error/skipped) | guide script s | guide commands | speed-up |")
    print("|---|---|---|---|---|---|")
    for scenario, probe_s, checks, summary, guide, commands in rows:
        counts = "/".join(str(summary.get(k, 0)) for k in ("ok", "fail", "error", "skipped"))
        print(f"| {scenario} | {probe_s:.2f} | {checks} ({counts}) | {guide:.2f} | {commands} | {guide / probe_s:.1f}x |")
    for label, passed in verdicts:
        print(f"{'PASS' if passed else 'FAIL'}  {label}")
    return 0 if all(passed for _label, passed in verdicts) else 1


if __name__ == "__main__":
    sys.exit(main())
