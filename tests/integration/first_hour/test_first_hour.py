"""A user's first hour: the collection built with ansible-galaxy, installed into a fresh collections path, and run as
`ansible-playbook kubediag.egress.diagnose_egress` from a directory outside the checkout (no ansible.cfg, no .collections)
with an inventory that holds only kubeconfig and context."""

import json
import os
import socket
import subprocess
import sys

import pytest
import yaml

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
VENV_BIN = os.path.dirname(sys.executable)
sys.path.insert(0, os.path.join(REPO, "tests", "lab"))


def _env(home, collections):
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANSIBLE_")}
    env.update(ANSIBLE_HOME=home, ANSIBLE_COLLECTIONS_PATH=collections, ANSIBLE_NOCOLOR="1", HOME=home,
               PATH=f"{VENV_BIN}:{os.environ.get('PATH', '')}")
    return env


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """(cwd, env): the built tarball installed into a temporary collections path; cwd is an empty directory."""
    root = tmp_path_factory.mktemp("first-hour")
    home, collections, build_dir, cwd = (root / n for n in ("home", "collections", "build", "cwd"))
    for d in (home, collections, build_dir, cwd):
        d.mkdir()
    env = _env(str(home), str(collections))
    galaxy = os.path.join(VENV_BIN, "ansible-galaxy")
    subprocess.run([galaxy, "collection", "build", REPO, "--output-path", str(build_dir)], cwd=str(cwd), env=env,
                   check=True, capture_output=True, timeout=120)
    (tarball,) = build_dir.glob("kubediag-egress-*.tar.gz")
    subprocess.run([galaxy, "collection", "install", str(tarball), "-p", str(collections)], cwd=str(cwd), env=env,
                   check=True, capture_output=True, timeout=120)
    return str(cwd), env


def _diagnose(installed, inventory, extra=None):
    cwd, env = installed
    path = os.path.join(cwd, "clusters.yml")
    with open(path, "w", encoding="utf-8") as handle:
        yaml.safe_dump(inventory, handle)
    report_dir = os.path.join(cwd, "report")
    argv = [os.path.join(VENV_BIN, "ansible-playbook"), "kubediag.egress.diagnose_egress", "-i", path,
            "-e", json.dumps({"report_dir": report_dir, "timeout": 3, **(extra or {})})]
    done = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=300, check=False)
    report = None
    if os.path.exists(os.path.join(report_dir, "report.json")):
        with open(os.path.join(report_dir, "report.json"), encoding="utf-8") as handle:
            report = json.load(handle)
    return done.returncode, done.stdout + done.stderr, report


def _closed_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def kubeconfig_to_nowhere(tmp_path_factory):
    config = {"apiVersion": "v1", "kind": "Config", "current-context": "down",
              "clusters": [{"name": "down", "cluster": {"server": f"https://127.0.0.1:{_closed_port()}", "insecure-skip-tls-verify": True}}],
              "users": [{"name": "u", "user": {"token": "t"}}], "contexts": [{"name": "down", "context": {"cluster": "down", "user": "u"}}]}
    path = tmp_path_factory.mktemp("nowhere") / "kubeconfig"
    path.write_text(yaml.safe_dump(config))
    return str(path)


def test_cluster_host_runs_locally_with_the_controllers_python(installed, kubeconfig_to_nowhere):
    """The README's two-line host: no ssh, no interpreter discovery; the run reaches the (absent) API server."""
    code, output, report = _diagnose(installed, {"all": {"hosts": {"prod": {"kubeconfig": kubeconfig_to_nowhere, "context": "down"}}}},
                                     {"pod": "shop/web"})
    assert code != 0
    assert "ssh" not in output.lower() and "deserialization" not in output, output[-3000:]
    assert report is not None, output[-3000:]
    assert "cannot reach the Kubernetes API server" in report["errors"][0]["msg"], report["errors"]


@pytest.mark.parametrize("level", ["host", "group"])
def test_inventory_connection_and_interpreter_win(installed, kubeconfig_to_nowhere, level):
    """What the inventory says wins over the plays' defaults, set on the host or on the group."""
    host = {"kubeconfig": kubeconfig_to_nowhere, "context": "down"}
    overrides = {"ansible_python_interpreter": "/nonexistent/kd-python"}
    inventory = {"all": {"hosts": {"prod": {**host, **overrides}}}} if level == "host" else \
        {"all": {"vars": overrides, "hosts": {"prod": host}}}
    _code, output, _report = _diagnose(installed, inventory, {"pod": "shop/web"})
    assert "/nonexistent/kd-python" in output, output[-3000:]
    ssh = {"ansible_connection": "ssh", "ansible_host": "kd-no-such-host.invalid"}
    inventory = {"all": {"hosts": {"prod": {**host, **ssh}}}} if level == "host" else \
        {"all": {"vars": ssh, "hosts": {"prod": host}}}
    _code, output, _report = _diagnose(installed, inventory, {"pod": "shop/web"})
    assert "kd-no-such-host.invalid" in output and "ssh" in output.lower(), output[-3000:]
