"""The command line: list, the root check, exec pass-through, error messages."""

import os
import shutil
import subprocess
import sys
import tempfile

import pytest
from kdlab import scenario
from kdlab.cli import NOT_ROOT

LAB_PARENT = os.path.dirname(os.path.dirname(os.path.abspath(scenario.__file__)))


@pytest.fixture(scope="module")
def readable_lab_parent():
    """A copy of the kdlab package that any user can read: the checkout may sit under a 0700 directory such as /root."""
    parent = tempfile.mkdtemp(prefix="kd-cli-")
    os.chmod(parent, 0o755)  # noqa: S103 - another user must read it
    shutil.copytree(os.path.join(LAB_PARENT, "kdlab"), os.path.join(parent, "kdlab"), ignore=shutil.ignore_patterns("__pycache__"))
    for root, dirs, files in os.walk(parent):
        for name in dirs:
            os.chmod(os.path.join(root, name), 0o755)  # noqa: S103 - another user must read it
        for name in files:
            os.chmod(os.path.join(root, name), 0o644)
    yield parent
    shutil.rmtree(parent)


def kdlab(*args: str, user: str | None = None, lab_parent: str = LAB_PARENT) -> subprocess.CompletedProcess:
    # As another user, the interpreter itself is called by its real path: the venv's link lives in the checkout.
    python = os.path.realpath(sys.executable) if user else sys.executable
    prefix = ["setpriv", f"--reuid={user}", f"--regid={user}", "--clear-groups"] if user else []
    return subprocess.run([*prefix, python, "-m", "kdlab", *args], capture_output=True, text=True, timeout=60, check=False,
                          env={"PATH": os.environ["PATH"], "PYTHONPATH": lab_parent}, cwd="/")


@pytest.mark.lab
def test_list_prints_the_bundled_names_only():
    result = kdlab("list")
    assert result.returncode == 0
    assert result.stdout.splitlines() == scenario.bundled_names()
    assert "healthy" in result.stdout.splitlines()


@pytest.mark.lab
@pytest.mark.parametrize("args", [["list"], ["up", "--scenario", "healthy", "--lab", "/tmp/kd-nonroot"], ["down", "--lab", "/tmp/kd-nonroot"],
                                  ["exec", "--lab", "/tmp/kd-nonroot", "--pod", "shop/web", "--", "true"]])
def test_every_command_needs_root(args, readable_lab_parent):
    result = kdlab(*args, user="65534", lab_parent=readable_lab_parent)
    assert (result.returncode, result.stderr.strip()) == (2, NOT_ROOT)
    assert not os.path.exists("/tmp/kd-nonroot")


@pytest.mark.lab
def test_exec_passes_exit_code_and_output_through(lab_dir):
    assert kdlab("up", "--scenario", "healthy", "--lab", lab_dir).returncode == 0
    result = kdlab("exec", "--lab", lab_dir, "--pod", "shop/web", "--", "sh", "-c", "echo out; echo err >&2; exit 3")
    assert (result.returncode, result.stdout, result.stderr) == (3, "out\n", "err\n")
    missing = kdlab("exec", "--lab", lab_dir, "--pod", "shop/static", "--", "curl", "-v", "https://api.example.test/")
    assert (missing.returncode, missing.stderr) == (127, 'exec: "curl": executable file not found in $PATH\n')
    busybox = kdlab("exec", "--lab", lab_dir, "--pod", "shop/tiny", "--", "curl")
    assert busybox.returncode == 127
    node = kdlab("exec", "--lab", lab_dir, "--node", "node-1", "--", "ip", "-4", "-o", "addr", "show", "eth0")
    assert node.returncode == 0 and "172.20.0.10/24" in node.stdout
    unknown = kdlab("exec", "--lab", lab_dir, "--pod", "shop/nope", "--", "true")
    assert unknown.returncode == 1 and "no pod 'shop/nope'" in unknown.stderr and "Traceback" not in unknown.stderr
    assert kdlab("down", "--lab", lab_dir).returncode == 0


@pytest.mark.lab
def test_errors_are_messages_not_tracebacks(tmp_path):
    bad = tmp_path / "bad.yml"
    bad.write_text("name: bad\nsubject: {pod: shop/web, targets: ['https://api.example.test/']}\nexpect: {root_causes: [healthy]}\nfaults: [{type: nope}]\n")
    cases = [(["up", "--scenario", str(bad), "--lab", str(tmp_path / "lab")], "faults[0].type: unknown fault type 'nope'"),
             (["up", "--scenario", "no-such", "--lab", str(tmp_path / "lab")], "no bundled scenario named 'no-such'"),
             (["exec", "--lab", str(tmp_path / "nothing"), "--pod", "shop/web", "--", "true"], "no lab is up in"),
             (["exec", "--lab", str(tmp_path / "nothing"), "--pod", "shop/web"], "give the command after --")]
    for args, message in cases:
        result = kdlab(*args)
        assert result.returncode == 1, result
        assert message in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "lab").exists()
    assert kdlab("down", "--lab", str(tmp_path / "nothing")).returncode == 0
