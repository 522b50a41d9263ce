"""Fixtures: labs of bundled scenarios (built once per session each, torn down at the end) and helpers to probe them."""

import json
import os
import subprocess
import sys
import tempfile

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
sys.path.insert(0, os.path.join(REPO, "tests", "lab"))
VENV_BIN = os.path.dirname(sys.executable)

pytestmark = pytest.mark.lab


class Labs:
    """Scenario name -> a running lab (its directory), built on first use."""

    def __init__(self, root: str):
        self.root = root
        self.dirs = {}

    def get(self, scenario: str) -> str:
        if scenario not in self.dirs:
            from kdlab import build
            directory = os.path.join(self.root, scenario)
            build.up(scenario, directory)
            self.dirs[scenario] = directory
        return self.dirs[scenario]

    def close(self):
        from kdlab import build
        for directory in self.dirs.values():
            build.down(directory)


@pytest.fixture(scope="session")
def labs(tmp_path_factory):
    if os.geteuid() != 0:
        pytest.fail("the lab needs root (it creates network namespaces); run as root")
    found = Labs(str(tmp_path_factory.mktemp("pod-probe-labs")))
    yield found
    found.close()


@pytest.fixture(scope="session")
def ansible_home(tmp_path_factory):
    return str(tmp_path_factory.mktemp("ansible-home"))


@pytest.fixture(scope="session")
def run_module(ansible_home):
    """run_module(args, check=False): the module's result."""
    return lambda args, check=False: _run_module(args, ansible_home, check)


def _run_module(args: dict, home: str, check: bool = False) -> dict:
    """kubediag.egress.pod_probe on localhost through `ansible`; the result from the tree callback's file."""
    tree = tempfile.mkdtemp(dir=home, prefix="tree-")
    env = dict(os.environ, HOME=home, ANSIBLE_CONFIG=os.path.join(REPO, "ansible.cfg"), ANSIBLE_LOAD_CALLBACK_PLUGINS="1",
               ANSIBLE_CALLBACKS_ENABLED="ansible.builtin.tree", ANSIBLE_CALLBACK_TREE_DIR=tree, ANSIBLE_PYTHON_INTERPRETER=sys.executable,
               ANSIBLE_LOCAL_TEMP=os.path.join(home, "tmp"), PATH=f"{VENV_BIN}:{os.environ.get('PATH', '/usr/bin:/bin')}")
    argv = [os.path.join(VENV_BIN, "ansible"), "-i", "localhost,", "-c", "local", "localhost", "-m", "kubediag.egress.pod_probe",
            "-a", json.dumps(args)]
    if check:
        argv.append("--check")
    completed = subprocess.run(argv, cwd=REPO, env=env, capture_output=True, text=True, timeout=180, check=False)
    try:
        with open(os.path.join(tree, "localhost"), encoding="utf-8") as handle:
            result = json.load(handle)
    except (OSError, ValueError):
        raise AssertionError(f"ansible gave no module result (rc {completed.returncode}):\n{completed.stdout}\n{completed.stderr}") from None
    result.setdefault("failed", completed.returncode != 0)
    return result
