"""Run one kubediag.egress module on localhost through the real `ansible` command, as a user would."""

import json
import os
import subprocess
import sys
import tempfile

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
VENV_BIN = os.path.dirname(sys.executable)


def run_module(module: str, args: dict, home: str, check: bool = False, timeout: int = 120) -> dict:
    """Run kubediag.egress.<module> on localhost through `ansible` and return its result, with `failed` set.

    The result is read from the file the built-in tree callback writes, not from the screen output.
    """
    tree = tempfile.mkdtemp(dir=home, prefix="tree-")
    env = dict(os.environ, HOME=home, ANSIBLE_CONFIG=os.path.join(REPO, "ansible.cfg"), ANSIBLE_LOAD_CALLBACK_PLUGINS="1",
               ANSIBLE_CALLBACKS_ENABLED="ansible.builtin.tree", ANSIBLE_CALLBACK_TREE_DIR=tree, ANSIBLE_PYTHON_INTERPRETER=sys.executable,
               ANSIBLE_LOCAL_TEMP=os.path.join(home, "tmp"), PATH=f"{VENV_BIN}:{os.environ.get('PATH', '/usr/bin:/bin')}")
    argv = [os.path.join(VENV_BIN, "ansible"), "-i", "localhost,", "-c", "local", "localhost", "-m", f"kubediag.egress.{module}", "-a", json.dumps(args)]
    if check:
        argv.append("--check")
    completed = subprocess.run(argv, cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout, check=False)
    try:
        with open(os.path.join(tree, "localhost"), encoding="utf-8") as handle:
            result = json.load(handle)
    except (OSError, ValueError):
        raise AssertionError(f"ansible gave no module result (rc {completed.returncode}):\n{completed.stdout}\n{completed.stderr}") from None
    result.setdefault("failed", completed.returncode != 0)  # the tree callback leaves the failed flag out
    return result
