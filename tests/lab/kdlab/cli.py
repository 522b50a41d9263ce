"""Command line: python -m kdlab up|down|list|exec (see docs/lab.md)."""

import argparse
import os
import subprocess
import sys
import time

from kdlab import scenario as scenarios
from kdlab.errors import NOT_ROOT, ExecNotFound, LabError


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m kdlab", description="Pod egress failures on real packets, in network namespaces.")
    commands = parser.add_subparsers(dest="command", required=True)
    up = commands.add_parser("up", help="build a scenario; returns when every service answers")
    up.add_argument("--scenario", required=True, help="a bundled scenario name (see `list`) or a path to a .yml file")
    up.add_argument("--lab", required=True, help="the lab directory (lab.json is written there)")
    down = commands.add_parser("down", help="remove everything a lab made (idempotent)")
    down.add_argument("--lab", required=True)
    commands.add_parser("list", help="the bundled scenario names")
    run = commands.add_parser("exec", help="run a command inside a pod (or on a node) of a running lab")
    run.add_argument("--lab", required=True)
    where = run.add_mutually_exclusive_group(required=True)
    where.add_argument("--pod", help="namespace/name")
    where.add_argument("--node", help="node name: the node's namespace with the host's full tool set")
    run.add_argument("--cluster", help="needed only when several clusters have that pod or node")
    run.add_argument("argv", nargs=argparse.REMAINDER, help="-- command and arguments")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if os.geteuid() != 0:
        print(NOT_ROOT, file=sys.stderr)
        return 2
    if args.command == "list":
        print("\n".join(scenarios.bundled_names()))
        return 0
    try:
        if args.command == "up":
            from kdlab import build
            started = time.monotonic()
            lab = build.up(args.scenario, args.lab)
            print(f"lab {lab.scenario['name']!r} is up in {lab.dir} ({time.monotonic() - started:.2f} s); see {lab.dir}/lab.json")
            return 0
        if args.command == "down":
            from kdlab import build
            removed = build.down(args.lab)
            print(f"lab in {args.lab} is down ({len(removed)} namespaces and directories removed)")
            return 0
        return _exec(args)
    except LabError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    except OSError as e:
        print(f"error: {e.strerror or e}: {e.filename or ''} (check the --lab path and free space)", file=sys.stderr)
        return 1


def _exec(args) -> int:
    from kdlab.lab import Lab
    command = args.argv[1:] if args.argv[:1] == ["--"] else args.argv
    if not command:
        raise LabError("give the command after --, e.g. exec --lab DIR --pod shop/web -- nslookup api.example.test")
    lab = Lab.load(args.lab)
    try:
        if args.pod:
            argv, env = lab.exec_argv(lab.pod(args.pod, args.cluster), command)
        else:
            argv, env = lab.node_exec_argv(lab.node(args.node, args.cluster), command)
    except ExecNotFound as e:
        print(e.message, file=sys.stderr)
        return e.exit_code
    return subprocess.run(argv, env=env, check=False).returncode
