"""Lab API server figures: GET and exec latency (p50/p99) and memory per cluster.

    PYTHONPATH=tests/lab .venv/bin/python tests/bench/bench_apiserver.py [--clusters 20] [--gets 1000] [--execs 100]

Starts standalone servers (exec on this host) with 1 and with N clusters in one process, and prints JSON.
"""

import argparse
import http.client
import json
import os
import ssl
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
LAB_ROOT = os.path.join(os.path.dirname(HERE), "lab")


def cluster(index: int) -> dict:
    return {"name": f"c{index}", "provider": ("aws", "gce", "azure")[index % 3],
            "nodes": [{"name": f"node-{n}", "index": n, "ip": f"172.20.{index}.{10 + n}", "pod_cidr": f"10.244.{n}.0/24"} for n in range(3)],
            "pods": [{"namespace": "kube-system", "name": "coredns", "node": "node-0", "image": "coredns", "labels": {}, "ip": "10.244.0.2"}]
            + [{"namespace": f"team-{p % 4}", "name": f"app-{p}", "node": f"node-{p % 3}", "image": "netshoot", "labels": {"app": f"app-{p}"},
                "ip": f"10.244.{p % 3}.{10 + p}"} for p in range(12)]}


def start(directory: str, count: int) -> tuple[subprocess.Popen, dict]:
    config_path = os.path.join(directory, "config.json")
    with open(config_path, "w", encoding="utf-8") as handle:
        json.dump({"clusters": [cluster(i) for i in range(count)]}, handle)
    process = subprocess.Popen([sys.executable, "-m", "kdlab.apiserver", "--config", config_path], cwd=LAB_ROOT,
                               stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    endpoints_path = os.path.join(directory, "apiserver.json")
    deadline = time.monotonic() + 60
    while not os.path.exists(endpoints_path):
        if process.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(f"the API server with {count} clusters did not start")
        time.sleep(0.05)
    with open(endpoints_path, encoding="utf-8") as handle:
        return process, json.load(handle)


def rss_mib(pid: int) -> float:
    with open(f"/proc/{pid}/status", encoding="utf-8") as handle:
        line = next(line for line in handle if line.startswith("VmRSS:"))
    return int(line.split()[1]) / 1024


def percentiles(samples: list[float]) -> dict:
    ordered = sorted(samples)
    return {"p50_ms": round(statistics.median(ordered) * 1000, 2), "p99_ms": round(ordered[int(len(ordered) * 0.99) - 1] * 1000, 2),
            "n": len(ordered)}


def measure_gets(endpoints: dict, count: int) -> dict:
    endpoint = endpoints["clusters"][0]
    context = ssl.create_default_context(cafile=endpoints["ca"])
    connection = http.client.HTTPSConnection("127.0.0.1", endpoint["port"], context=context)
    headers = {"Authorization": f"Bearer {endpoint['token']}", "Accept": "application/json"}
    samples = []
    for _unused in range(count):
        started = time.perf_counter()
        connection.request("GET", "/api/v1/namespaces/team-1/pods/app-1", headers=headers)
        response = connection.getresponse()
        response.read()
        samples.append(time.perf_counter() - started)
        assert response.status == 200
    return percentiles(samples)


def measure_execs(endpoints: dict, count: int) -> dict:
    from kubernetes import client, config
    from kubernetes.stream import stream

    configuration = client.Configuration()
    config.load_kube_config(config_file=endpoints["kubeconfig"], context="c0", client_configuration=configuration)
    core = client.CoreV1Api(client.ApiClient(configuration))
    samples = []
    for _unused in range(count):
        started = time.perf_counter()
        output = stream(core.connect_get_namespaced_pod_exec, "app-1", "team-1", command=["echo", "ok"], stdout=True, stderr=True,
                        stdin=False, tty=False)
        samples.append(time.perf_counter() - started)
        assert output == "ok\n"
    return percentiles(samples)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clusters", type=int, default=20)
    parser.add_argument("--gets", type=int, default=1000)
    parser.add_argument("--execs", type=int, default=100)
    args = parser.parse_args()
    sys.path.insert(0, LAB_ROOT)
    figures = {}
    with tempfile.TemporaryDirectory() as one_dir, tempfile.TemporaryDirectory() as many_dir:
        single, endpoints = start(one_dir, 1)
        try:
            time.sleep(0.5)
            figures["rss_1_cluster_mib"] = round(rss_mib(single.pid), 1)
            figures["get_pod"] = measure_gets(endpoints, args.gets)
            figures["exec_echo"] = measure_execs(endpoints, args.execs)
        finally:
            single.terminate()
            single.wait()
        started = time.perf_counter()
        many, _unused = start(many_dir, args.clusters)
        figures[f"start_{args.clusters}_clusters_s"] = round(time.perf_counter() - started, 2)
        try:
            time.sleep(0.5)
            figures[f"rss_{args.clusters}_clusters_mib"] = round(rss_mib(many.pid), 1)
        finally:
            many.terminate()
            many.wait()
    figures["rss_per_extra_cluster_mib"] = round((figures[f"rss_{args.clusters}_clusters_mib"] - figures["rss_1_cluster_mib"]) / (args.clusters - 1), 2)
    print(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
