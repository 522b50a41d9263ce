"""Thin wrappers over ip, iptables-restore and sysctl, always aimed at one lab namespace (never the root one)."""

import contextlib
import os
import signal
import subprocess
import time

from kdlab.errors import LabError

IP = "/usr/sbin/ip"
IPTABLES_RESTORE = "/usr/sbin/iptables-restore"
SYSCTL = "/usr/sbin/sysctl"
NETNS_RUN_DIR = "/run/netns"
NETNS_ETC_DIR = "/etc/netns"


def run(argv: list[str], stdin: str | None = None, what: str = "") -> str:
    result = subprocess.run(argv, input=stdin, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        detail = (result.stderr or result.stdout).strip()
        raise LabError(f"{what or ' '.join(argv[:4])} failed (exit {result.returncode}): {detail}")
    return result.stdout


def ip_batch(netns: str | None, lines: list[str], what: str) -> None:
    """Many `ip` commands in one process; netns None is only used for `netns add/del` lines."""
    if lines:
        run([IP, "-force", *(("-n", netns) if netns else ()), "-batch", "-"], "\n".join(lines) + "\n", what)


def iptables_restore(netns: str, rules: str, what: str, noflush: bool = False) -> None:
    run([IP, "netns", "exec", netns, IPTABLES_RESTORE, "-w", *(("--noflush",) if noflush else ())], rules, what)


def sysctl(netns: str, settings: dict[str, str]) -> None:
    run([IP, "netns", "exec", netns, SYSCTL, "-q", "-w", *(f"{k}={v}" for k, v in settings.items())], what=f"sysctl in {netns}")


def existing_netns(prefix: str) -> list[str]:
    try:
        return sorted(n for n in os.listdir(NETNS_RUN_DIR) if n.startswith(prefix))
    except FileNotFoundError:
        return []


def netns_inode(name: str) -> int | None:
    try:
        return os.stat(os.path.join(NETNS_RUN_DIR, name)).st_ino
    except OSError:
        return None


def pids_in_netns(inodes: set[int]) -> list[int]:
    """Every process whose network namespace is one of these (stragglers: exec'd shells, half-started services)."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if os.stat(f"/proc/{entry}/ns/net").st_ino in inodes:
                    found.append(int(entry))
            except OSError:
                continue
    return found


def process_start_time(pid: int) -> str | None:
    """Field 22 of /proc/<pid>/stat: with the pid, it identifies a process even after the pid is reused."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as f:
            return f.read().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def kill_group(pid: int, start_time: str | None) -> None:
    """SIGTERM the process group led by pid, then SIGKILL what is left after a short grace period."""
    if start_time is not None and process_start_time(pid) != start_time:
        return
    for sig, grace in ((signal.SIGTERM, 1.0), (signal.SIGKILL, 1.0)):
        try:
            os.killpg(pid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline:
            if not _group_alive(pid):
                return
            time.sleep(0.01)


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    # A zombie child of ours still counts as alive for killpg: reap it if it is ours.
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pgid, os.WNOHANG)
    try:
        with open(f"/proc/{pgid}/stat", encoding="ascii") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def kill_pids(pids: list[int]) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
