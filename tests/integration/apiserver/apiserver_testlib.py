"""Helpers for the API server tests: start a standalone server (no lab network: exec runs on this host), run kubectl."""

import json
import os
import subprocess
import sys
import time

LAB_ROOT = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "lab")
if LAB_ROOT not in sys.path:
    sys.path.insert(0, LAB_ROOT)

KUBECTL = "/usr/lib/google-cloud-sdk/bin/kubectl.1.{minor}"
KUBECTL_MINORS = (30, 31, 32, 33)
COREDNS_LOG = ("[INFO] plugin/reload: Running configuration SHA512 = 1b226df79860\n"
               "[ERROR] plugin/errors: 2 api.example.test. A: read udp 10.244.0.2:41000->192.0.2.99:53: i/o timeout\n")


def cluster_config(log_dir: str) -> dict:
    log_path = os.path.join(log_dir, "coredns.log")
    with open(log_path, "w", encoding="utf-8") as handle:
        handle.write(COREDNS_LOG)
    return {
        "clusters": [{
            "name": "lab", "provider": "aws",
            "nodes": [{"name": "node-1", "index": 0, "ip": "172.20.0.10", "pod_cidr": "10.244.0.0/24"},
                      {"name": "node-2", "index": 1, "ip": "172.20.0.11", "pod_cidr": "10.244.1.0/24"}],
            "pods": [
                {"namespace": "kube-system", "name": "coredns", "node": "node-1", "image": "coredns", "labels": {"k8s-app": "kube-dns"},
                 "ip": "10.244.0.2", "log_path": log_path},
                {"namespace": "shop", "name": "web", "node": "node-1", "image": "netshoot", "labels": {"app": "web"}, "ip": "10.244.0.3",
                 "env": {"GREETING": "hello from web"}},
                {"namespace": "shop", "name": "static", "node": "node-2", "image": "distroless", "labels": {"app": "static"}, "ip": "10.244.1.2"},
            ],
            "objects": [{"apiVersion": "networking.istio.io/v1beta1", "kind": "ServiceEntry", "metadata": {"name": "api", "namespace": "shop"},
                         "spec": {"hosts": ["api.example.test"], "location": "MESH_EXTERNAL", "resolution": "DNS"}}],
            "apiserver": {
                "coredns_forward": ["192.0.2.8"], "paths": {"shop/static": ""}, "ip_masq_agent": {"nonMasqueradeCIDRs": ["10.0.0.0/8"]},
                "tokens": [{"user": "dev", "token": "dev-token", "rules": "*",
                            "deny": [{"apiGroups": [""], "resources": ["pods/exec"], "verbs": ["*"]}]},
                           {"user": "viewer", "token": "viewer-token",
                            "rules": [{"apiGroups": ["*"], "resources": ["*"], "verbs": ["get", "list", "watch"], "namespaces": ["shop"]}]}],
            },
        }, {
            "name": "broken", "provider": "gce", "nodes": [{"name": "node-1", "index": 0, "ip": "172.20.1.10", "pod_cidr": "10.244.0.0/24"}],
            "pods": [], "apiserver": {"container_runtime": "docker"},
        }, {
            "name": "offline", "provider": "azure", "nodes": [{"name": "node-1", "index": 0, "ip": "172.20.2.10", "pod_cidr": "10.244.0.0/24"}],
            "pods": [], "apiserver": {"faults": {"down": True}},
        }],
        "subject": {"cluster": "lab", "pod": "shop/web", "targets": ["https://api.example.test/health"]},
        "info": {"egress_external_resolver": "192.0.2.8", "egress_echo_url": "http://whoami.example.test/"},
    }


def start_server(directory: str, config: dict) -> tuple[subprocess.Popen, dict]:
    config_path = os.path.join(directory, "config.json")
    with open(config_path, "w", encoding="utf-8") as handle:
        json.dump(config, handle)
    endpoints_path = os.path.join(directory, "apiserver.json")
    log = open(os.path.join(directory, "server.log"), "w", encoding="utf-8")  # noqa: SIM115 - the server writes it while it runs
    process = subprocess.Popen([sys.executable, "-m", "kdlab.apiserver", "--config", config_path], cwd=LAB_ROOT, stdout=log, stderr=log)
    deadline = time.monotonic() + 20
    while not os.path.exists(endpoints_path):
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            with open(log.name, encoding="utf-8") as handle:
                raise RuntimeError(f"the API server did not start: {handle.read()}")
        time.sleep(0.05)
    with open(endpoints_path, encoding="utf-8") as handle:
        return process, json.load(handle)


def run_kubectl(apiserver: dict, home: str, minor: int, *args: str, stdin: str | None = None, context: str = "lab") -> subprocess.CompletedProcess:
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": home, "KUBECONFIG": apiserver["kubeconfig"]}
    return subprocess.run([KUBECTL.format(minor=minor), "--context", context, "--cache-dir", os.path.join(home, f"cache-{minor}"), *args],
                          input=stdin, capture_output=True, text=True, env=env, timeout=60, check=False)


def audit_records(apiserver: dict) -> list[dict]:
    with open(apiserver["audit"], encoding="utf-8") as handle:
        return [json.loads(line) for line in handle]


def raw_request(apiserver: dict, method: str, path: str, body=None, content_type: str = "application/json", token: str | None = None,
                cluster: int = 0) -> tuple[int, dict, dict]:
    """One HTTPS request with no client library in between: (status, headers, JSON body)."""
    import ssl
    import urllib.error
    import urllib.request

    endpoint = apiserver["clusters"][cluster]
    data = None if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
    headers = {
        "Authorization": f"Bearer {token or endpoint['token']}", "Content-Type": content_type, "Accept": "application/json"}
    # always the https URL the server wrote
    request = urllib.request.Request(f"{endpoint['server']}{path}", data=data, method=method, headers=headers)  # noqa: S310
    context = ssl.create_default_context(cafile=apiserver["ca"])
    try:
        with urllib.request.urlopen(request, context=context, timeout=10) as response:  # noqa: S310
            return response.status, dict(response.headers), json.loads(response.read() or b"null")
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), json.loads(error.read() or b"null")
