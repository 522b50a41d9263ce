"""The addressing plan of a lab: a pure function from (lab dir, scenario) to names, addresses and interfaces."""

import hashlib
import os

from kdlab import world
from kdlab.errors import LabError

COREDNS_NAMESPACE, COREDNS_NAME = "kube-system", "coredns"
FIRST_POD_HOST = 2          # 10.244.<node>.1 is the node's bridge


def lab_id(lab_dir: str) -> str:
    return hashlib.sha1(os.path.realpath(lab_dir).encode(), usedforsecurity=False).hexdigest()[:6]


def netns_prefix(lab_dir: str) -> str:
    return f"kd-{lab_id(lab_dir)}-"


def egress_chain(cluster: str, namespace: str, name: str) -> str:
    """The pod's egress chain on its node; short enough for iptables' 28-character limit."""
    return "KDE-" + hashlib.sha1(f"{cluster}/{namespace}/{name}".encode(), usedforsecurity=False).hexdigest()[:12].upper()


def plan(lab_dir: str, scenario: dict) -> dict:
    lab_dir = os.path.realpath(lab_dir)
    prefix = netns_prefix(lab_dir)
    result = {"lab_dir": lab_dir, "lab_id": lab_id(lab_dir), "internet_netns": prefix + "internet", "clusters": []}
    for cluster in scenario["clusters"]:
        c = cluster["index"]
        cname = cluster["name"]
        nodes = []
        for node in cluster["nodes"]:
            n = node["index"]
            # With an aws section the node's address comes from its subnet (kdlab.aws.spec); the L2 segment stays one /24.
            ip = cluster["aws"]["nodes"][node["name"]]["ip"] if cluster.get("aws") else f"172.20.{c}.{10 + n}"
            nodes.append({"cluster": cname, "name": node["name"], "index": n, "ip": ip,
                          "netns": f"{prefix}{cname}-{node['name']}", "pod_cidr": f"10.244.{n}.0/24",
                          "bridge_ip": f"10.244.{n}.1", "gateway_port": f"n{n}", "pods_on_node": 0})
        by_name = {n["name"]: n for n in nodes}
        coredns = {"namespace": COREDNS_NAMESPACE, "name": COREDNS_NAME, "node": nodes[0]["name"], "image": "coredns",
                   "labels": {"k8s-app": "kube-dns"}, "env": {}}
        pods = []
        for pod in [coredns, *cluster["pods"]]:
            node = by_name[pod["node"]]
            slot = node["pods_on_node"]
            node["pods_on_node"] += 1
            pod_dir = os.path.join(lab_dir, "pods", cname, pod["namespace"], pod["name"])
            pods.append({"cluster": cname, "namespace": pod["namespace"], "name": pod["name"], "node": node["name"],
                         "image": pod["image"], "labels": dict(pod["labels"]), "env": dict(pod["env"]),
                         "ip": f"10.244.{node['index']}.{FIRST_POD_HOST + slot}",
                         "netns": f"{prefix}{cname}-{pod['namespace']}-{pod['name']}", "node_port": f"p{slot}",
                         "egress_chain": egress_chain(cname, pod["namespace"], pod["name"]),
                         "dir": pod_dir, "log_path": os.path.join(pod_dir, "container.log")})
        for node in nodes:
            del node["pods_on_node"]
        result["clusters"].append({
            "name": cname, "index": c, "provider": cluster["provider"], "vpc_cidr": f"172.20.{c}.0/24",
            "vpc_gateway_ip": f"172.20.{c}.1", "egress_ip": f"203.0.113.{10 + c}", "internet_port": f"g{c}",
            "gateway_netns": f"{prefix}{cname}-gw", "pod_cidr": world.POD_SUPERNET, "service_cidr": world.SERVICE_CIDR,
            "dns_service_ip": world.CLUSTER_DNS_IP, "coredns_ip": pods[0]["ip"], "nodes": nodes, "pods": pods,
        })
    names = [result["internet_netns"]] + [ns for c in result["clusters"] for ns in
                                          [c["gateway_netns"]] + [n["netns"] for n in c["nodes"]] + [p["netns"] for p in c["pods"]]]
    seen = set()
    for ns in names:
        if ns in seen:
            raise LabError(f"two lab objects map to the namespace {ns}; rename a node, namespace or pod")
        seen.add(ns)
    return result
