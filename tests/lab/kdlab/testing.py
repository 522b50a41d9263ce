"""Helpers for tests and benchmarks of the lab: run a command in a pod or node, list what a lab left behind."""

import os
import subprocess

from kdlab import system, topology
from kdlab.errors import ExecNotFound
from kdlab.lab import Lab


def run_in(lab: Lab, argv: list[str], pod: str | None = None, node: str | None = None, cluster: str | None = None,
           timeout: float = 15) -> subprocess.CompletedProcess:
    """Runs argv in a pod (or on a node) through the same exec path the CLI and the API server use."""
    try:
        command, env = lab.exec_argv(lab.pod(pod, cluster), argv) if pod else lab.node_exec_argv(lab.node(node, cluster), argv)
    except ExecNotFound as e:
        return subprocess.CompletedProcess(argv, e.exit_code, "", e.message + "\n")
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=timeout, check=False)


def files_in(lab_dir: str) -> set[str]:
    """Every file and directory under lab_dir, relative to it (take it before `up` to compare after `down`)."""
    found = set()
    for root, dirs, files in os.walk(lab_dir):
        found |= {os.path.relpath(os.path.join(root, name), lab_dir) for name in dirs + files}
    return found


def leftovers(lab_dir: str, files_before: set[str] | None = None) -> list[str]:
    """Everything of this lab still on the machine: namespaces, /etc/netns dirs, processes naming its directory (or a path in it)
    in their command line, and, when files_before is given, every path in the lab dir that was not there before `up`."""
    prefix = topology.netns_prefix(lab_dir)
    found = system.existing_netns(prefix)
    if os.path.isdir(system.NETNS_ETC_DIR):
        found += [os.path.join(system.NETNS_ETC_DIR, d) for d in os.listdir(system.NETNS_ETC_DIR) if d.startswith(prefix)]
    real = os.path.realpath(lab_dir).encode()
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as f:
                    args = f.read().split(b"\0")
            except OSError:
                continue
            if any(arg == real or arg.startswith(real + b"/") or arg.endswith(b"=" + real) for arg in args):
                found.append(f"process {pid}: {b' '.join(args).decode(errors='replace').strip()}")
    if files_before is not None and os.path.isdir(lab_dir):
        found += [os.path.join(lab_dir, path) for path in sorted(files_in(lab_dir) - files_before)]
    return found
