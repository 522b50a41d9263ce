"""Bring-up and tear-down time of every bundled lab scenario, plus a 20-cluster fleet; prints a table.
"up s"/"down s" are the network alone (median of --repeat runs); the last two columns add the post-up hooks (the lab's API server).
Every down is checked: nothing of the lab may be left, not even its directory.

Run as root: PYTHONPATH=tests/lab .venv/bin/python tests/bench/bench_lab.py [--repeat N] [--clusters N]"""

import argparse
import os
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "lab"))

from kdlab import build, scenario
from kdlab.cli import NOT_ROOT
from kdlab.testing import leftovers

TARGET_S = 2.0


def fleet_scenario(path: str, clusters: int) -> str:
    """A scenario file with `clusters` small clusters (one node, one pod each): the API server's fleet tests use this shape."""
    lines = ["name: fleet", "clusters:"]
    for i in range(clusters):
        lines += [f"  - name: c{i}", "    pods: [{namespace: shop, name: web}]"]
    lines += ["subject: {pod: shop/web, targets: ['https://api.example.test/health']}", "expect: {root_causes: [healthy]}"]
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")
    return path


def measure(ref: str, repeat: int, run_hooks: bool) -> tuple[float, float]:
    ups, downs = [], []
    for _unused in range(repeat):
        parent = tempfile.mkdtemp(prefix="kdbench-")
        lab_dir = os.path.join(parent, "lab")       # made by up, so down must remove it
        started = time.monotonic()
        build.up(ref, lab_dir, run_hooks=run_hooks)
        ups.append(time.monotonic() - started)
        started = time.monotonic()
        build.down(lab_dir)
        downs.append(time.monotonic() - started)
        left = leftovers(lab_dir, files_before=set())
        if left or os.path.exists(lab_dir):
            raise SystemExit(f"{ref}: down left {left or [lab_dir]}")
        os.rmdir(parent)
    return statistics.median(ups), statistics.median(downs)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="runs per scenario; the table shows the median")
    parser.add_argument("--clusters", type=int, default=20, help="clusters in the fleet row (0: no fleet row)")
    args = parser.parse_args()
    if os.geteuid() != 0:
        print(NOT_ROOT, file=sys.stderr)
        return 2
    rows = [(name, *measure(name, args.repeat, False), *measure(name, 1, True)) for name in scenario.bundled_names()]
    if args.clusters:
        with tempfile.TemporaryDirectory() as tmp:
            fleet = fleet_scenario(os.path.join(tmp, "fleet.yml"), args.clusters)
            rows.append((f"fleet ({args.clusters} clusters)", *measure(fleet, 1, False), *measure(fleet, 1, True)))
    width = max(len(r[0]) for r in rows)
    print(f"| {'scenario':<{width}} | up s | down s | with the API server: up s | down s |")
    print(f"|{'-' * (width + 2)}|-----:|-------:|-------------------------:|-------:|")
    for name, up_s, down_s, hooked_up_s, hooked_down_s in rows:
        print(f"| {name:<{width}} | {up_s:4.2f} | {down_s:6.2f} | {hooked_up_s:25.2f} | {hooked_down_s:6.2f} |")
    slow = [r[0] for r in rows if max(r[1:]) > TARGET_S and not r[0].startswith("fleet")]
    print(f"target < {TARGET_S} s per bundled scenario (the fleet row is for scale): {'met' if not slow else 'missed by ' + ', '.join(slow)}")
    return 0 if not slow else 1


if __name__ == "__main__":
    sys.exit(main())
