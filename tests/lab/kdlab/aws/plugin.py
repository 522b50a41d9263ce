"""The post-up hook that starts the lab's AWS (kdlab.aws.service) when a cluster has an `aws:` section, waits until moto is
seeded and the gateways follow it, and records in lab.json's `aws` key what a test or a user needs to read it:

    {"endpoint_url": "http://127.0.0.1:PORT", "region": "eu-west-1", "access_key": ..., "secret_key": ...,   # null, null
     "clusters": {"<cluster>": {"vpc_id", "subnets", "nat_gateways", "route_tables", "network_acls", "security_groups",
                               "internet_gateway", "instances": {"<node>": "i-..."}, "provider_ids": {"<node>": "aws:///..."}}}}

`access_key`/`secret_key` are null when the scenario says `credentials: false`. The hook runs before the API server's, so the
Node objects carry the instances' providerIDs (provider_ids(lab), read by kdlab.apiserver.desired)."""

import json
import os
import sys
import time

from kdlab import system
from kdlab.aws import spec as aws_spec
from kdlab.errors import LabError

STATE_FILE = os.path.join("run", "aws.json")
GO_FILE = os.path.join("run", "aws.go")
CONFIG_FILE = os.path.join("run", "aws-service.json")
START_TIMEOUT_SECONDS = 30


def _sections(lab) -> list[tuple]:
    by_name = {c["name"]: c for c in lab.scenario["clusters"]}
    return [(c, by_name[c.name]["aws"]) for c in lab.clusters if (by_name.get(c.name) or {}).get("aws")]


def provider_ids(lab) -> dict[str, dict[str, str]]:
    """{cluster: {node: providerID}} once the lab's AWS is seeded; {} before, or without an aws section."""
    try:
        with open(os.path.join(lab.dir, STATE_FILE), encoding="utf-8") as f:
            state = json.load(f)
    except FileNotFoundError:
        return {}
    return {name: {node: f"aws:///{aws_spec.ZONE}/{instance}" for node, instance in ids["instances"].items()}
            for name, ids in state["clusters"].items()}


def start(lab) -> None:
    """Called by `up` before it builds the network: moto's start-up (seconds of imports) overlaps the build. The service
    seeds moto at once and touches the gateways only after post_up says the network is there (GO_FILE)."""
    sections = _sections(lab)
    if not sections:
        return
    for path in (STATE_FILE, STATE_FILE + ".tmp", GO_FILE, CONFIG_FILE):
        lab.track_path(os.path.join(lab.dir, path))
    config = {"ready_file": os.path.join(lab.dir, STATE_FILE), "go_file": os.path.join(lab.dir, GO_FILE), "clusters": [
        {"name": c.name, "gateway_netns": c.gateway_netns, "aws": section,
         "nodes": [{"name": n.name, "index": n.index, "ip": n.ip} for n in c.nodes]} for c, section in sections]}
    with open(os.path.join(lab.dir, CONFIG_FILE), "w", encoding="utf-8") as f:
        json.dump(config, f, indent=1)
    lab.start_process("aws", [sys.executable, "-m", "kdlab.aws.service", os.path.join(lab.dir, CONFIG_FILE)])


def post_up(lab) -> None:
    sections = _sections(lab)
    if not sections:
        return
    with open(os.path.join(lab.dir, GO_FILE), "w", encoding="utf-8"):
        pass
    ready = os.path.join(lab.dir, STATE_FILE)
    pid = next(e["pid"] for e in reversed(lab.journal.entries()) if e["kind"] == "process" and e["name"] == "aws")
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while not os.path.exists(ready):
        exited = system.process_start_time(pid) is None or _reaped(pid)
        if exited or time.monotonic() > deadline:
            with open(os.path.join(lab.dir, "logs", "aws.log"), encoding="utf-8", errors="replace") as f:
                tail = f.read()[-2000:]
            raise LabError(f"the lab's AWS (moto) {'exited' if exited else 'was not seeded in time'}; its log ends with:\n{tail}")
        time.sleep(0.05)
    with open(ready, encoding="utf-8") as f:
        state = json.load(f)
    ids = provider_ids(lab)
    credentials = all(section["credentials"] for _c, section in sections)
    lab.update_info(aws={"endpoint_url": state["endpoint_url"], "region": state["region"],
                         "access_key": aws_spec.ACCESS_KEY if credentials else None,
                         "secret_key": aws_spec.SECRET_KEY if credentials else None,
                         "clusters": {name: {**cluster_ids, "provider_ids": ids[name]} for name, cluster_ids in state["clusters"].items()}})


def _reaped(pid: int) -> bool:
    try:
        return os.waitpid(pid, os.WNOHANG)[0] == pid
    except ChildProcessError:
        return False


def connection(lab, cluster: str | None = None) -> dict:
    """What aws_egress_info needs to read the lab's cloud: {endpoint_url, region, access_key, secret_key} (the keys only
    when the scenario gives credentials), plus `instances` {node: instance id} of the cluster."""
    info = lab.info.get("aws")
    if not info:
        raise LabError("this lab has no AWS (no cluster of its scenario has an aws section)")
    name = cluster or next(iter(info["clusters"]))
    found = {"endpoint_url": info["endpoint_url"], "region": info["region"], "instances": info["clusters"][name]["instances"]}
    if info["access_key"]:
        found |= {"access_key": info["access_key"], "secret_key": info["secret_key"]}
    return found
