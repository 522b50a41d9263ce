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


def leftovers(lab_dir: str) -> list[str]:
    """Everything of this lab still on the machine: namespaces, /etc/netns dirs, processes naming its directory."""
    prefix = topology.netns_prefix(lab_dir)
    found = system.existing_netns(prefix)
    if os.path.isdir(system.NETNS_ETC_DIR):
        found += [os.path.join(system.NETNS_ETC_DIR, d) for d in os.listdir(system.NETNS_ETC_DIR) if d.startswith(prefix)]
    marker = (os.path.realpath(lab_dir) + "/").encode()
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as f:
                    if marker in f.read():
                        found.append(f"process {pid}")
            except OSError:
                continue
    return found
