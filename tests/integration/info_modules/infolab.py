"""The world the info module tests run in: one standalone lab API server (``python -m kdlab.apiserver --config``)
serving several small clusters, each shaped like a lab scenario, and helpers to run a module through Ansible.

Standalone means no network namespaces: ``pods/exec`` runs on this host, so DNS upstreams that a probe must reach
are local UDP servers on 127.0.0.1 (one answers, one never does), never an outside address.
"""

import json
import os
import socket
import subprocess
import sys
import threading
import time

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
LAB_ROOT = os.path.join(REPO, "tests", "lab")
NODES = [{"name": "node-1", "index": 0, "ip": "172.20.0.10", "pod_cidr": "10.244.0.0/24"}]
COREDNS_POD = {"namespace": "kube-system", "name": "coredns", "node": "node-1", "image": "coredns", "labels": {"k8s-app": "kube-dns"},
               "ip": "10.244.0.2"}
WEB_POD = {"namespace": "shop", "name": "web", "node": "node-1", "image": "netshoot", "labels": {"app": "web"}, "ip": "10.244.0.3"}
READ_SHOP_AND_SYSTEM = [{"apiGroups": ["*"], "resources": ["*"], "verbs": ["get", "list"], "namespaces": ["shop", "kube-system"]}]


class DnsUpstreams:
    """Two UDP DNS servers on 127.0.0.1: `answering` replies NOERROR to everything, `silent` reads and never replies."""

    def __init__(self):
        from dnslib import DNSRecord

        self._parse = DNSRecord.parse
        self._sockets = []
        self.answering = self._bind(self._answer)
        self.silent = self._bind(lambda sock: [sock.recvfrom(4096) for _unused in iter(int, 1)])

    def _bind(self, serve):
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind(("127.0.0.1", 0))
        self._sockets.append(sock)
        threading.Thread(target=self._guard, args=(serve, sock), daemon=True).start()
        return sock.getsockname()[1]

    @staticmethod
    def _guard(serve, sock):
        try:
            serve(sock)
        except OSError:  # the socket was closed: the fixture is over
            return

    def _answer(self, sock):
        while True:
            data, peer = sock.recvfrom(4096)
            sock.sendto(self._parse(data).reply().pack(), peer)

    def close(self):
        for sock in self._sockets:
            sock.close()


def clusters(log_dir: str, upstreams: DnsUpstreams) -> dict:
    """netpol: a pod egress-isolated by NetworkPolicy; dns: CoreDNS forwarding to a dead and a live upstream with timeouts logged;
    snat: GKE Dataplane V2 with ip-masq-agent told to masquerade nothing; mesh: Istio REGISTRY_ONLY with a near-miss ServiceEntry."""
    dead = f"127.0.0.1:{upstreams.silent}"
    coredns_log = os.path.join(log_dir, "coredns.log")
    with open(coredns_log, "w", encoding="utf-8") as handle:
        handle.write("[INFO] plugin/reload: Running configuration SHA512 = 1b226df79860\n" + "".join(
            f"[ERROR] plugin/errors: 2 api.example.test. A: read udp 10.244.0.2:4{n}000->{dead}: i/o timeout\n" for n in range(4)))
    netpol_objects = [
        {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": {"name": "deny-external", "namespace": "shop"},
         "spec": {"podSelector": {"matchLabels": {"app": "web"}}, "policyTypes": ["Egress"],
                  "egress": [{"to": [{"podSelector": {}}, {"namespaceSelector": {}}]}]}},
        {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": {"name": "api-egress", "namespace": "shop"},
         "spec": {"podSelector": {"matchLabels": {"role": "api-client"}}, "policyTypes": ["Egress"],
                  "egress": [{"to": [{"ipBlock": {"cidr": "0.0.0.0/0"}}], "ports": [{"protocol": "TCP", "port": 443}]}]}},
    ]
    client = {"namespace": "shop", "name": "client", "node": "node-1", "image": "netshoot", "labels": {"app": "client", "role": "api-client"},
              "ip": "10.244.0.4"}
    mesh_pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "meshed", "namespace": "shop", "labels": {"app": "meshed"}},
                "spec": {"nodeName": "node-1", "containers": [{"name": "app", "image": "nicolaka/netshoot:v0.13"},
                                                              {"name": "istio-proxy", "image": "docker.io/istio/proxyv2:1.22.3"}]}}
    return {"clusters": [
        {"name": "netpol", "provider": "aws", "nodes": NODES, "pods": [COREDNS_POD, WEB_POD, client], "objects": netpol_objects,
         "apiserver": {"tokens": [{"user": "shop-reader", "token": "shop-reader-token", "rules": READ_SHOP_AND_SYSTEM}]}},
        {"name": "dns", "provider": "aws", "nodes": NODES, "pods": [dict(COREDNS_POD, log_path=coredns_log), WEB_POD],
         "apiserver": {"coredns_forward": [dead, f"127.0.0.1:{upstreams.answering}"], "paths": {"shop/web": "/usr/bin:/bin"},
                       "tokens": [{"user": "no-logs", "token": "no-logs-token", "rules": "*",
                                   "deny": [{"apiGroups": [""], "resources": ["pods/log", "pods/exec"], "verbs": ["*"]}]}]}},
        {"name": "snat", "provider": "gce", "nodes": NODES, "pods": [COREDNS_POD, WEB_POD],
         "apiserver": {"cni": "anetd", "ip_masq_agent": {"nonMasqueradeCIDRs": ["0.0.0.0/0"]}}},
        {"name": "mesh", "provider": "aws", "nodes": NODES, "pods": [COREDNS_POD, WEB_POD], "objects": [
            mesh_pod,
            {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "istio", "namespace": "istio-system"},
             "data": {"mesh": "outboundTrafficPolicy:\n  mode: REGISTRY_ONLY\n"}},
            {"apiVersion": "networking.istio.io/v1beta1", "kind": "ServiceEntry", "metadata": {"name": "api", "namespace": "shop"},
             "spec": {"hosts": ["api.example.test"], "ports": [{"number": 80, "name": "http", "protocol": "HTTP"}],
                      "location": "MESH_EXTERNAL", "resolution": "DNS"}}]},
    ]}


def start_apiserver(directory: str, config: dict) -> tuple[subprocess.Popen, dict]:
    """Start the standalone API server and wait for its endpoints file (kubeconfig with one context per cluster)."""
    config_path = os.path.join(directory, "config.json")
    with open(config_path, "w", encoding="utf-8") as handle:
        json.dump(config, handle)
    endpoints_path = os.path.join(directory, "apiserver.json")
    log_path = os.path.join(directory, "server.log")
    with open(log_path, "w", encoding="utf-8") as log:
        process = subprocess.Popen([sys.executable, "-m", "kdlab.apiserver", "--config", config_path], cwd=LAB_ROOT, stdout=log, stderr=log)
    deadline = time.monotonic() + 30
    while not os.path.exists(endpoints_path):
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            with open(log_path, encoding="utf-8") as handle:
                raise RuntimeError(f"the lab API server did not start: {handle.read()}")
        time.sleep(0.05)
    with open(endpoints_path, encoding="utf-8") as handle:
        return process, json.load(handle)
