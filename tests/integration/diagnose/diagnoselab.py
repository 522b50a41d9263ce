"""Run the diagnose playbook against a lab scenario, the way a user would, and read back what it produced.

Used by the integration tests beside this file, by verdict_cases/record.py (the recordings the unit tests replay) and by
tests/bench/bench_diagnose.py.
"""

import json
import os
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
LAB_ROOT = os.path.join(REPO, "tests", "lab")
if LAB_ROOT not in sys.path:
    sys.path.insert(0, LAB_ROOT)
PLAYBOOK = os.path.join(REPO, "playbooks", "diagnose_egress.yml")
VENV_BIN = os.path.dirname(sys.executable)
# What a user passes for their corporate proxy; the lab's proxy answers on it (docs/lab.md).
DEBUG_POD_PREFIX = "kdprobe-"


def scenarios():
    from kdlab import scenario

    return scenario.bundled_names()


def ansible_env(home):
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(REPO, "ansible.cfg"), ANSIBLE_HOME=home, ANSIBLE_LOCAL_TEMP=os.path.join(home, "tmp"),
               ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0", PATH=f"{VENV_BIN}:{os.environ.get('PATH', '')}")
    env.pop("ANSIBLE_STDOUT_CALLBACK", None)
    return env


def run_playbook(inventory, report_dir, home, extra_vars=None, timeout=300):
    """(exit code, stdout+stderr, wall seconds) of ansible-playbook diagnose_egress.yml over the inventory."""
    argv = [os.path.join(VENV_BIN, "ansible-playbook"), "-i", inventory, PLAYBOOK, "-e", json.dumps({"report_dir": report_dir, **(extra_vars or {})})]
    started = time.monotonic()
    done = subprocess.run(argv, cwd=REPO, env=ansible_env(home), capture_output=True, text=True, timeout=timeout, check=False)
    return done.returncode, done.stdout + done.stderr, time.monotonic() - started


def read_report(report_dir):
    with open(os.path.join(report_dir, "report.json"), encoding="utf-8") as handle:
        return json.load(handle)


def audit_entries(lab_dir):
    path = os.path.join(lab_dir, "audit.jsonl")
    with open(path, encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def writes_outside_debug(entries):
    """Audit entries that changed something other than a debug pod or an ephemeral debug container (should be none)."""
    bad = []
    for entry in entries:
        if entry["method"] in ("GET", "HEAD", "OPTIONS") or entry.get("dry_run"):
            continue
        if entry.get("resource") == "selfsubjectaccessreviews":
            continue
        name = entry.get("name") or ""
        is_debug_pod = entry.get("resource") == "pods" and (name.startswith(DEBUG_POD_PREFIX) or entry["method"] == "POST")
        if entry.get("resource") == "pods/ephemeralcontainers" or is_debug_pod:
            continue
        bad.append(entry)
    return bad


def debug_pods_left(entries):
    """How many pods the diagnosis created (201) and did not delete afterwards (should be 0)."""
    created = sum(1 for e in entries if e.get("resource") == "pods" and e["method"] == "POST" and e.get("code") == 201)
    deleted = sum(1 for e in entries if e.get("resource") == "pods" and e["method"] == "DELETE" and e.get("code") in (200, 202)
                  and (e.get("name") or "").startswith(DEBUG_POD_PREFIX))
    return created - deleted
