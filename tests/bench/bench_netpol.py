"""Benchmark of plugins/module_utils/cluster/netpol.py: index build time and egress() decisions per second.

A synthetic cluster shaped like a real one: ~100 namespaces of 100 pods (Deployments with app/tier/version/
pod-template-hash labels, named container ports), 10 NetworkPolicies per namespace (default deny, DNS, tiers,
external HTTPS with except, partner port range, monitoring, cross-namespace, ingress-only), a few
AdminNetworkPolicies and a BaselineAdminNetworkPolicy. Queries are random (source pod, external IP, port)
and (source pod, destination pod, port) mixes, generated up front so only egress() is timed.

    python tests/bench/bench_netpol.py [--namespaces 100] [--pods-per-namespace 100] [--queries 200000]

Targets (issue 5): index build < 2 s, >= 50,000 decisions/s.
"""

import argparse
import random
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / ".collections"))

TIERS = ("frontend", "backend", "data")
TEAMS = (*(f"team-{i}" for i in range(20)), "monitoring")
ENVS = ("prod", "staging", "dev")
WEB_PORTS = (443, 80, 8443, 8080, 22, 5432, 9090, 8450)
BUILD_TARGET_S = 2.0
DECISIONS_TARGET = 50_000


def _namespace(name, rng):
    labels = {"team": rng.choice(TEAMS), "env": rng.choice(ENVS), "kubernetes.io/metadata.name": name}
    return {"kind": "Namespace", "metadata": {"name": name, "labels": labels}}


def _pod(namespace, name, labels, ip, node, ports, host_network=False):
    return {
        "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace, "labels": labels},
        "spec": {"nodeName": node, "hostNetwork": host_network, "serviceAccountName": labels.get("app", "default"),
                 "containers": [{"name": "main", "ports": ports}]},
        "status": {"phase": "Running", "podIP": ip, "podIPs": [{"ip": ip}]},
    }


def _policy(namespace, name, spec):
    return {"kind": "NetworkPolicy", "apiVersion": "networking.k8s.io/v1", "metadata": {"name": name, "namespace": namespace}, "spec": spec}


def _namespace_policies(namespace, apps, rng):
    dns_peer = {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}},
                "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}}}
    external = {"ipBlock": {"cidr": "0.0.0.0/0", "except": ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "169.254.169.254/32"]}}
    policies = [
        _policy(namespace, "default-deny-egress", {"podSelector": {}, "policyTypes": ["Egress"]} if rng.random() < 0.7
                else {"podSelector": {"matchLabels": {"tier": "data"}}, "policyTypes": ["Egress"]}),
        _policy(namespace, "allow-dns", {"podSelector": {}, "policyTypes": ["Egress"],
                                         "egress": [{"to": [dns_peer], "ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}]}]}),
        _policy(namespace, "frontend-to-backend", {"podSelector": {"matchLabels": {"tier": "frontend"}},
                                                   "egress": [{"to": [{"podSelector": {"matchLabels": {"tier": "backend"}}}], "ports": [{"port": "http"}]}]}),
        _policy(namespace, "backend-to-data", {"podSelector": {"matchLabels": {"tier": "backend"}}, "policyTypes": ["Egress"],
                                               "egress": [{"to": [{"podSelector": {"matchLabels": {"tier": "data"}}}], "ports": [{"port": 5432}]}]}),
        _policy(namespace, "allow-external-https", {
            "podSelector": {"matchExpressions": [{"key": "app", "operator": "In", "values": rng.sample(apps, 4)}]},
            "policyTypes": ["Egress"], "egress": [{"to": [external], "ports": [{"port": 443}, {"port": 80}]}]}),
        _policy(namespace, "allow-partner", {"podSelector": {"matchLabels": {"app": rng.choice(apps)}}, "policyTypes": ["Egress"],
                                             "egress": [{"to": [{"ipBlock": {"cidr": "203.0.113.0/24"}}], "ports": [{"port": 8443, "endPort": 8500}]}]}),
        _policy(namespace, "allow-monitoring", {
            "podSelector": {}, "policyTypes": ["Egress"],
            "egress": [{"to": [{"namespaceSelector": {"matchLabels": {"team": "monitoring"}}}], "ports": [{"port": "metrics"}]}]}),
        _policy(namespace, "backend-cross-namespace", {
            "podSelector": {"matchLabels": {"tier": "backend"}}, "policyTypes": ["Egress"],
            "egress": [{"to": [{"namespaceSelector": {"matchExpressions": [{"key": "env", "operator": "In", "values": ["prod", "staging"]}]},
                                "podSelector": {"matchExpressions": [{"key": "tier", "operator": "NotIn", "values": ["frontend"]}]}}]}]}),
        _policy(namespace, "allow-from-ingress", {"podSelector": {"matchLabels": {"tier": "frontend"}},
                                                  "ingress": [{"from": [{"namespaceSelector": {"matchLabels": {"team": "ingress"}}}]}]}),
        _policy(namespace, "allow-reporting", {
            "podSelector": {"matchExpressions": [{"key": "version", "operator": "NotIn", "values": ["v0"]}, {"key": "tier", "operator": "Exists"}]},
            "egress": [{"to": [{"ipBlock": {"cidr": "198.51.100.0/24"}}, {"ipBlock": {"cidr": "2001:db8::/32"}}], "ports": [{"protocol": "TCP"}]}]}),
    ]
    return policies


def _admin_policies():
    everyone = {"namespaces": {}}
    return [
        {"kind": "AdminNetworkPolicy", "apiVersion": "policy.networking.k8s.io/v1alpha1", "metadata": {"name": "block-imds"},
         "spec": {"priority": 10, "subject": everyone,
                  "egress": [{"name": "imds", "action": "Deny", "to": [{"networks": ["169.254.169.254/32"]}]}]}},
        {"kind": "AdminNetworkPolicy", "apiVersion": "policy.networking.k8s.io/v1alpha1", "metadata": {"name": "monitoring-scrape"},
         "spec": {"priority": 20, "subject": {"namespaces": {"matchLabels": {"team": "monitoring"}}},
                  "egress": [{"name": "scrape", "action": "Allow", "to": [{"namespaces": {}}], "ports": [{"namedPort": "metrics"}]},
                             {"name": "rest", "action": "Pass", "to": [{"networks": ["0.0.0.0/0"]}]}]}},
        {"kind": "BaselineAdminNetworkPolicy", "apiVersion": "policy.networking.k8s.io/v1alpha1", "metadata": {"name": "default"},
         "spec": {"subject": everyone, "egress": [{"name": "no-smtp", "action": "Deny", "to": [{"networks": ["0.0.0.0/0"]}],
                                                   "ports": [{"portNumber": {"protocol": "TCP", "port": 25}}]}]}},
    ]


def synthetic_cluster(namespaces=100, pods_per_namespace=100, policies_per_namespace=10, seed=1):
    """Kubernetes objects (dicts) for a cluster of the given size."""
    rng = random.Random(seed)
    nodes = [f"node-{i:02d}" for i in range(max(2, namespaces // 2))]
    objects = [{"kind": "Node", "metadata": {"name": node, "labels": {"kubernetes.io/os": "linux", "zone": f"z{i % 3}"}},
                "status": {"addresses": [{"type": "InternalIP", "address": f"192.168.{i // 250}.{i % 250 + 1}"}]}} for i, node in enumerate(nodes)]
    objects.append(_namespace("kube-system", rng))
    for index in range(2):
        objects.append(_pod("kube-system", f"coredns-{index}", {"k8s-app": "kube-dns"}, f"10.250.0.{index + 2}", nodes[index],
                            [{"name": "dns", "containerPort": 53, "protocol": "UDP"}, {"name": "dns-tcp", "containerPort": 53}]))
    ip_counter = 0
    for ns_index in range(namespaces):
        namespace = f"ns-{ns_index:03d}"
        objects.append(_namespace(namespace, rng))
        apps = [f"app-{i}" for i in range(10)]
        for pod_index in range(pods_per_namespace):
            app = apps[pod_index % len(apps)]
            labels = {"app": app, "tier": TIERS[int(app[-1]) % 3], "version": rng.choice(("v1", "v2")),
                      "pod-template-hash": f"{ns_index:03d}{app[-1]}{rng.randrange(2)}", "team": rng.choice(TEAMS)}
            ip_counter += 1
            ip = f"10.{ip_counter // 65536 + 1}.{ip_counter // 256 % 256}.{ip_counter % 256}"
            ports = [{"name": "http", "containerPort": 8080}, {"name": "metrics", "containerPort": 9090}]
            if labels["tier"] == "data":
                ports.append({"name": "postgres", "containerPort": 5432})
            objects.append(_pod(namespace, f"{app}-{pod_index:03d}", labels, ip, rng.choice(nodes), ports, host_network=rng.random() < 0.01))
        objects.extend(_namespace_policies(namespace, apps, rng)[:policies_per_namespace])
    objects.extend(_admin_policies())
    return objects


def random_queries(objects, count, seed=2, external_share=0.5):
    """(source, destination, protocol, port) tuples: external IPs and in-cluster pods, mixed."""
    rng = random.Random(seed)
    pods = [f"{o['metadata']['namespace']}/{o['metadata']['name']}" for o in objects if o["kind"] == "Pod"]
    queries = []
    for _query_number in range(count):
        source = rng.choice(pods)
        if rng.random() < external_share:
            roll = rng.random()
            if roll < 0.3:
                destination = f"203.0.113.{rng.randrange(1, 255)}"
            elif roll < 0.4:
                destination = f"198.51.100.{rng.randrange(1, 255)}"
            elif roll < 0.42:
                destination = "169.254.169.254"
            elif roll < 0.45:
                destination = f"2001:db8::{rng.randrange(1, 65535):x}"
            else:
                destination = f"{rng.randrange(11, 223)}.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}"
        else:
            destination = rng.choice(pods)
        if rng.random() < 0.15:
            queries.append((source, destination, "UDP", 53))
        else:
            queries.append((source, destination, "TCP", rng.choice(WEB_PORTS)))
    return queries


def _rate(policy_set, queries):
    started = time.perf_counter()
    allowed = 0
    for query in queries:
        allowed += policy_set.egress(*query)["allowed"]
    elapsed = time.perf_counter() - started
    return len(queries) / elapsed, allowed / len(queries)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--namespaces", type=int, default=100)
    parser.add_argument("--pods-per-namespace", type=int, default=100)
    parser.add_argument("--queries", type=int, default=200_000)
    args = parser.parse_args(argv)
    from ansible_collections.kubediag.egress.plugins.module_utils.cluster.netpol import PolicySet

    objects = synthetic_cluster(args.namespaces, args.pods_per_namespace)
    kinds = {}
    for obj in objects:
        kinds[obj["kind"]] = kinds.get(obj["kind"], 0) + 1
    print("objects: " + ", ".join(f"{count} {kind}" for kind, count in sorted(kinds.items())))
    started = time.perf_counter()
    policy_set = PolicySet(objects)
    build = time.perf_counter() - started
    print(f"index build: {build:.3f} s (target < {BUILD_TARGET_S} s)")
    mixes = {
        "external IPs": random_queries(objects, args.queries, seed=3, external_share=1.0),
        "pod to pod": random_queries(objects, args.queries, seed=4, external_share=0.0),
        "50/50 mix": random_queries(objects, args.queries, seed=5, external_share=0.5),
    }
    cold_rate, _allowed_share = _rate(policy_set, mixes["50/50 mix"][: args.queries // 4])
    print(f"cold start (plans built on first use): {cold_rate:,.0f} decisions/s over {args.queries // 4:,} queries; "
          f"{len(policy_set._plans)} source identities planned")
    slowest = None
    for name, queries in mixes.items():
        rate, allowed = _rate(policy_set, queries)
        slowest = rate if slowest is None else min(slowest, rate)
        print(f"{name:>13}: {rate:,.0f} decisions/s over {len(queries):,} queries ({allowed:.0%} allowed)")
    met = build < BUILD_TARGET_S and slowest >= DECISIONS_TARGET
    print(f"targets met: {'yes' if met else 'NO'} (build {build:.2f} s, slowest mix {slowest:,.0f}/s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
