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


def run_module_per_host(module: str, args_by_host: dict[str, dict], home: str, timeout: int = 180) -> dict[str, dict]:
    """Run kubediag.egress.<module> once per host, each with its own arguments, in ONE `ansible-playbook` run (local
    connection, one fork per host): Ansible's start-up is paid once. Returns {host: result}, each with `failed` set."""
    tree = tempfile.mkdtemp(dir=home, prefix="tree-")
    inventory = os.path.join(tree, "..", f"{os.path.basename(tree)}-inventory.json")
    with open(inventory, "w", encoding="utf-8") as handle:
        json.dump({"all": {"hosts": {host: {"ansible_connection": "local", "ansible_python_interpreter": sys.executable,
                                            "module_args": args} for host, args in args_by_host.items()}}}, handle)
    playbook = os.path.join(tree, "..", f"{os.path.basename(tree)}-play.yml")
    with open(playbook, "w", encoding="utf-8") as handle:
        handle.write(f"- hosts: all\n  gather_facts: false\n  tasks:\n    - name: Run {module}\n"
                     f"      kubediag.egress.{module}: \"{{{{ module_args }}}}\"\n")
    env = dict(os.environ, HOME=home, ANSIBLE_CONFIG=os.path.join(REPO, "ansible.cfg"), ANSIBLE_LOAD_CALLBACK_PLUGINS="1",
               ANSIBLE_CALLBACKS_ENABLED="ansible.builtin.tree", ANSIBLE_CALLBACK_TREE_DIR=tree,
               ANSIBLE_LOCAL_TEMP=os.path.join(home, "tmp"), PATH=f"{VENV_BIN}:{os.environ.get('PATH', '/usr/bin:/bin')}")
    argv = [os.path.join(VENV_BIN, "ansible-playbook"), "-i", inventory, "-f", str(max(1, len(args_by_host))), playbook]
    completed = subprocess.run(argv, cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout, check=False)
    results = {}
    for host in args_by_host:
        try:
            with open(os.path.join(tree, host), encoding="utf-8") as handle:
                results[host] = json.load(handle)
        except (OSError, ValueError):
            raise AssertionError(f"ansible-playbook gave no result for {host} (rc {completed.returncode}):\n{completed.stdout}\n"
                                 f"{completed.stderr}") from None
        results[host].setdefault("failed", False)
    return results
