"""The controller-side steps of a diagnosis run the way a user runs them (`ansible -m`, `ansible-playbook`), no lab needed:
egress_report (symlinks, foreign bytes, check and diff modes, idempotence), egress_verdict on malformed input, and the
diagnose role included on its own with a context the kubeconfig does not have."""

import json
import os
import socket
import subprocess
import sys

import pytest
import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
sys.path.insert(0, HERE)

import diagnoselab  # noqa: E402
from ansible_module import run_module  # noqa: E402

REPORT_FILES = {"report.json", "report.md", "report.html", "junit.xml"}
# One cluster that could not be diagnosed: a valid report input that needs no verdict.
HOSTS = [{"cluster": "lab", "pods": [], "notes": [], "error": {"stage": "Resolve which pods to diagnose", "msg": "pod shop/web not found"}}]


@pytest.fixture
def home(tmp_path):
    path = tmp_path / "home"
    path.mkdir()
    return str(path)


def _report(home, report_dir, check=False):
    return run_module("egress_report", {"report_dir": str(report_dir), "hosts": HOSTS}, home, check=check)


def _report_screen(home, report_dir, *flags):
    """What `ansible -m kubediag.egress.egress_report --diff [flags]` prints: diffs and warnings are shown, not returned."""
    argv = [os.path.join(diagnoselab.VENV_BIN, "ansible"), "-i", "localhost,", "-c", "local", "localhost", "--diff", *flags,
            "-m", "kubediag.egress.egress_report", "-a", json.dumps({"report_dir": str(report_dir), "hosts": HOSTS})]
    env = dict(diagnoselab.ansible_env(home), ANSIBLE_PYTHON_INTERPRETER=sys.executable)
    done = subprocess.run(argv, cwd=diagnoselab.REPO, env=env, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    return done.stdout + done.stderr


def test_a_second_run_changes_nothing(home, tmp_path):
    first = _report(home, tmp_path / "report")
    assert first["failed"] is False and first["changed"] is True
    assert set(os.listdir(tmp_path / "report")) == REPORT_FILES
    mtimes = {name: os.stat(tmp_path / "report" / name).st_mtime_ns for name in REPORT_FILES}
    second = _report(home, tmp_path / "report")
    assert second["changed"] is False and second["changed_files"] == []
    assert {name: os.stat(tmp_path / "report" / name).st_mtime_ns for name in REPORT_FILES} == mtimes


def test_check_mode_writes_nothing_and_diff_mode_shows_the_diff(home, tmp_path):
    report_dir = tmp_path / "report"
    checked = _report(home, report_dir, check=True)
    assert checked["failed"] is False and checked["changed"] is True
    assert sorted(os.path.basename(p) for p in checked["changed_files"]) == sorted(REPORT_FILES)
    assert not report_dir.exists()
    screen = _report_screen(home, report_dir, "--check")
    assert not report_dir.exists()
    for name in REPORT_FILES:
        assert f"+++ after: {report_dir / name}" in screen
    assert "+pod shop/web not found" in screen or "pod shop/web not found" in screen
    _report(home, report_dir)
    (report_dir / "report.md").write_text("an older report\n", encoding="utf-8")
    again = _report(home, report_dir, check=True)
    assert again["changed_files"] == [str(report_dir / "report.md")]
    screen = _report_screen(home, report_dir, "--check")
    assert "-an older report" in screen and f"+++ after: {report_dir / 'report.md'}" in screen
    assert f"+++ after: {report_dir / 'junit.xml'}" not in screen  # unchanged files show no diff
    assert (report_dir / "report.md").read_text(encoding="utf-8") == "an older report\n"  # check mode left it


def test_diff_mode_never_follows_a_symlink_out_of_report_dir(home, tmp_path):
    secret = tmp_path / "outside" / "id_rsa"
    secret.parent.mkdir()
    secret.write_text("PRIVATE KEY MATERIAL\n", encoding="utf-8")
    report_dir = tmp_path / "report"
    report_dir.mkdir()
    (report_dir / "report.md").symlink_to(secret)
    assert "PRIVATE KEY MATERIAL" not in _report_screen(home, report_dir, "--check")
    result = _report(home, report_dir)
    assert result["failed"] is False, result.get("msg")
    assert secret.read_text(encoding="utf-8") == "PRIVATE KEY MATERIAL\n"  # the link was replaced, never its target
    assert not (report_dir / "report.md").is_symlink()
    assert "pod shop/web not found" in (report_dir / "report.md").read_text(encoding="utf-8")


def test_a_file_that_is_not_utf8_gets_a_warning_not_a_traceback(home, tmp_path):
    report_dir = tmp_path / "report"
    report_dir.mkdir()
    foreign = b"<?xml version='1.0' encoding='latin-1'?><t>caf\xe9</t>\n"
    (report_dir / "junit.xml").write_bytes(foreign)
    screen = " ".join(_report_screen(home, report_dir).split())  # the warning is wrapped to the terminal width
    assert "Traceback" not in screen
    assert "[WARNING]" in screen and "replaced by the report" in screen
    assert f"junit.xml held bytes that are not UTF-8 (at offset {foreign.index(0xE9)})" in screen
    assert "-<?xml version='1.0' encoding='latin-1'?><t>caf\ufffd</t>" in screen
    assert b"caf\xe9" not in (report_dir / "junit.xml").read_bytes()


PROBE = {"probed": True, "pod": {"namespace": "shop", "name": "web"},
         "targets": [{"url": "https://api.example.test/", "host": "api.example.test", "port": 443, "protocol": "tcp", "status": "fail"}],
         "checks": [{"id": "tcp:api.example.test:443", "kind": "tcp", "status": "fail", "error_class": "timeout"}]}


@pytest.mark.parametrize(("args", "message"), [
    ({"pod_probes": ["Timeout (12s) waiting for privilege escalation prompt"]}, "pod_probes[0] is a string ('Timeout (12s)"),
    ({"pod_probes": [PROBE], "coredns": "connection refused"}, "coredns is a string ('connection refused'), not the registered result"),
    ({"pod_probes": [dict(PROBE, targets=[{"url": "https://api.example.test/", "host": "api.example.test", "status": "fail"}])]},
     "pod_probes[0].targets[0] (https://api.example.test/): no port"),
    ({"pod_probes": [{k: v for k, v in PROBE.items() if k != "pod"}]}, "pod_probes[0]: no pod {namespace, name}"),
    ({"pod_probes": [dict(PROBE, checks=[{"id": "tcp:api.example.test:443", "kind": "tcp", "status": "fail"}])]},
     "pod_probes[0].checks[0] (tcp:api.example.test:443): error_class must be a string or null"),
])
def test_verdict_on_malformed_input_names_the_part(home, args, message):
    result = run_module("egress_verdict", args, home)
    assert result["failed"] is True
    assert "exception" not in result and "Traceback" not in json.dumps(result)
    assert result["msg"].startswith("cannot conclude: ") and message in result["msg"], result["msg"]


def _closed_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_the_role_included_on_its_own_records_the_error_and_keeps_the_host(home, tmp_path):
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "down",
        "clusters": [{"name": "down", "cluster": {"server": f"https://127.0.0.1:{_closed_port()}", "insecure-skip-tls-verify": True}}],
        "users": [{"name": "u", "user": {"token": "t0ken-never-shown"}}], "contexts": [{"name": "down", "context": {"cluster": "down", "user": "u"}}]}))
    playbook = tmp_path / "own.yml"
    playbook.write_text(yaml.safe_dump([{
        "name": "Use the role without the collection's playbook", "hosts": "localhost", "connection": "local", "gather_facts": False,
        "vars": {"ansible_python_interpreter": sys.executable},
        "tasks": [
            {"name": "Diagnose", "ansible.builtin.include_role": {"name": "kubediag.egress.diagnose"},
             "vars": {"diagnose_pod": "shop/web", "diagnose_targets": ["https://api.example.test/"], "diagnose_kubeconfig": str(kubeconfig),
                      "diagnose_context": "no-such-context"}},
            {"name": "Show", "ansible.builtin.copy": {
                "content": "{{ diagnose_result | to_json }}", "dest": str(tmp_path / "result.json"), "mode": "0600"}},
        ]}], sort_keys=False))
    done = subprocess.run([os.path.join(diagnoselab.VENV_BIN, "ansible-playbook"), "-i", "localhost,", str(playbook)], cwd=diagnoselab.REPO,
                          env=diagnoselab.ansible_env(home), capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    result = json.loads((tmp_path / "result.json").read_text())
    assert result["pods"] == [] and result["cluster"] == "localhost"
    assert result["error"]["stage"] == "Resolve which pods to diagnose"
    assert "no-such-context" in result["error"]["msg"]
    assert "t0ken-never-shown" not in done.stdout + done.stderr + json.dumps(result)
