"""`python -m kdlab.apiserver`: serve one API server per cluster (one port each) from a single process."""

import argparse
import asyncio
import json
import os
import signal
import socket
import sys

from aiohttp import web

from .cluster import build_cluster
from .files import inventory, kubeconfig, write_tls, write_yaml
from .server import build_app

ENDPOINTS_FILE = "apiserver.json"


def free_port(host: str) -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


async def serve(config: dict, directory: str, host: str, tls: dict, runtime_factory=None) -> None:
    """Start every cluster, then write the endpoints file, kubeconfig and inventory, then run until SIGTERM."""
    import ssl

    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(tls["cert"], tls["key"])
    audit_file = open(os.path.join(directory, "audit.jsonl"), "a", encoding="utf-8")  # noqa: SIM115 - open for the process lifetime
    runners, endpoints = [], []
    for description in config["clusters"]:
        runtime = runtime_factory(description) if runtime_factory else None
        cluster = build_cluster(description, runtime=runtime, audit_file=audit_file)
        if hasattr(runtime_factory, "attach"):
            runtime_factory.attach(cluster)
        wanted_port = int((description.get("apiserver") or {}).get("port") or 0)
        runner = web.AppRunner(build_app(cluster), access_log=None, handle_signals=False, shutdown_timeout=1)
        await runner.setup()
        if cluster.faults.down:  # the cluster is "down": its address exists in the kubeconfig, nothing listens there
            port = wanted_port or free_port(host)
        else:
            site = web.TCPSite(runner, host, wanted_port, ssl_context=context, backlog=128)
            await site.start()
            port = site._server.sockets[0].getsockname()[1]
        runners.append(runner)
        endpoints.append({"name": cluster.name, "server": f"https://{host}:{port}", "port": port,
                          "token": cluster.admin_token, "down": cluster.faults.down,
                          "users": [{"name": t["user"], "token": t["token"]} for t in (description.get("apiserver") or {}).get("tokens") or []]})
    kubeconfig_path = os.path.join(directory, "kubeconfig")
    write_yaml(kubeconfig_path, kubeconfig(endpoints, tls["ca"]))
    inventory_path = os.path.join(directory, "inventory.yml")
    write_yaml(inventory_path, inventory(endpoints, kubeconfig_path, config.get("subject"), config.get("info") or {}), 0o644)
    endpoints_path = os.path.join(directory, ENDPOINTS_FILE)
    with open(endpoints_path + ".tmp", "w", encoding="utf-8") as handle:
        json.dump({"pid": os.getpid(), "ca": tls["ca"], "kubeconfig": kubeconfig_path, "inventory": inventory_path,
                   "audit": audit_file.name, "clusters": endpoints}, handle, indent=2)
    os.chmod(endpoints_path + ".tmp", 0o600)
    os.replace(endpoints_path + ".tmp", endpoints_path)
    print(f"kdlab.apiserver: serving {len(endpoints)} cluster(s); endpoints in {endpoints_path}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    await stop.wait()
    for runner in runners:
        await runner.cleanup()
    audit_file.close()


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m kdlab.apiserver", description="The lab's Kubernetes API server (docs/lab-apiserver.md).")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--config", help="JSON file: {clusters: [...], subject: {...}, info: {...}} (standalone mode)")
    source.add_argument("--lab", help="a lab directory built by `python -m kdlab up`: serve its clusters, exec into its pods")
    parser.add_argument("--dir", help="where to write kubeconfig, inventory.yml, audit.jsonl, apiserver.json (default: the lab dir)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--ca-cert", help="CA certificate to sign the serving certificate with (needs --ca-key)")
    parser.add_argument("--ca-key")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    runtime_factory = None
    try:
        if args.lab:
            from .lab_plugin import lab_config

            config, runtime_factory, ca = lab_config(args.lab)
            args.ca_cert, args.ca_key = args.ca_cert or ca.get("cert"), args.ca_key or ca.get("key")
        else:
            with open(args.config, encoding="utf-8") as handle:
                config = json.load(handle)
        directory = args.dir or args.lab or os.path.dirname(os.path.abspath(args.config))
        os.makedirs(directory, exist_ok=True)
        tls = write_tls(directory, args.ca_cert, args.ca_key)
        asyncio.run(serve(config, directory, args.host, tls, runtime_factory))
    except (OSError, ValueError, KeyError) as error:
        print(f"kdlab.apiserver: cannot start: {error}", file=sys.stderr)
        return 2
    return 0
