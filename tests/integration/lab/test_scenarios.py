"""Every bundled scenario: bring it up, observe its symptom with the field guide's commands, tear it down, nothing left."""

import os
from concurrent.futures import ThreadPoolExecutor

import pytest
import yaml
from kdlab import build, scenario
from kdlab.testing import leftovers, run_in

CHECKS_FILE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "scenario_checks.yml")
with open(CHECKS_FILE, encoding="utf-8") as f:
    CHECKS = yaml.safe_load(f)


def test_every_bundled_scenario_has_checks_and_its_name():
    assert sorted(CHECKS) == scenario.bundled_names()
    for name in scenario.bundled_names():
        assert scenario.load(name)["name"] == name


def _verify(lab, check: dict) -> str | None:
    """None when the check holds, else what went wrong."""
    if "log" in check:
        with open(lab.pod(check["log"]).log_path, encoding="utf-8") as f:
            text = f.read()
        return None if check["contains"] in text else f"log of {check['log']} lacks {check['contains']!r}:\n{text[-1500:]}"
    result = run_in(lab, check["run"], pod=check.get("pod"), node=check.get("node"), cluster=check.get("cluster"))
    problems = []
    expected_rc = check.get("rc")
    if (expected_rc == "nonzero" and result.returncode == 0) or (isinstance(expected_rc, int) and result.returncode != expected_rc):
        problems.append(f"exit {result.returncode}, expected {expected_rc}")
    if "stdout" in check and check["stdout"] not in result.stdout:
        problems.append(f"stdout lacks {check['stdout']!r}")
    if "stdout_not" in check and check["stdout_not"] in result.stdout:
        problems.append(f"stdout has {check['stdout_not']!r}")
    if "stderr" in check and check["stderr"] not in result.stderr:
        problems.append(f"stderr lacks {check['stderr']!r}")
    if not problems:
        return None
    where = check.get("pod") or "node " + check["node"]
    return f"{where}: {' '.join(check['run'])}: {'; '.join(problems)}\n  stdout: {result.stdout[-600:]!r}\n  stderr: {result.stderr[-600:]!r}"


@pytest.mark.lab
@pytest.mark.parametrize("name", sorted(CHECKS))
def test_scenario_shows_its_symptom(name, lab_dir):
    lab = build.up(name, lab_dir)     # the network, then the post-up hooks (the lab's API server); its time is bench_lab's
    runs = [c for c in CHECKS[name] if "run" in c]
    with ThreadPoolExecutor(max_workers=8) as pool:
        failures = [f for f in pool.map(lambda c: _verify(lab, c), runs) if f]
    failures += [f for f in (_verify(lab, c) for c in CHECKS[name] if "log" in c) if f]
    build.down(lab_dir)
    assert not failures, "\n".join(failures)
    assert leftovers(lab_dir, files_before=set()) == []
    assert not os.path.exists(lab_dir)      # up made it, down removed it
