"""The API server inside a lab: `post_up(lab)` (called by `python -m kdlab up`) starts it; `lab_config` turns the lab
into the server's cluster descriptions; `LabRuntime` runs pod exec through the lab's own exec path."""

import json
import os
import sys
import time

from kdlab import Lab
from kdlab.errors import ExecNotFound, LabError

from . import execution
from .dataplane import Dataplane
from .main import ENDPOINTS_FILE

START_TIMEOUT_SECONDS = 30


class LabRuntime(execution.HostRuntime):
    """Scenario pods run in their network namespace with their image's tools (lab.exec_argv); ephemeral containers in the
    pod's namespace with the netshoot tool set; hostNetwork pods on their node (lab.node_exec_argv)."""

    def __init__(self, lab: Lab, cluster: str, pod_refs: dict[str, str]):
        super().__init__()
        self.lab, self.cluster_name, self.pod_refs = lab, cluster, pod_refs

    def command(self, pod: dict, container: str, argv: list[str]) -> tuple[list[str], dict | None]:
        spec = pod.get("spec") or {}
        lab_ref = self.pod_refs.get(f"{pod['metadata']['namespace']}/{pod['metadata']['name']}")
        try:
            if spec.get("hostNetwork") or lab_ref is None:
                # Pods created through the API have no namespace of their own: they run on their node.
                node = self.lab.node(spec.get("nodeName", ""), cluster=self.cluster_name)
                command, env = self.lab.node_exec_argv(node, argv)
            elif execution.is_debug_container(pod, container):
                lab_pod = self.lab.pod(lab_ref, cluster=self.cluster_name)
                executable = execution.resolve_executable(argv[0], execution.HOST_PATH)
                command = ["ip", "netns", "exec", lab_pod.netns, executable, *argv[1:]]
                env = {"PATH": execution.HOST_PATH, "HOSTNAME": lab_pod.name, "HOME": "/root"}
            else:
                command, env = self.lab.exec_argv(self.lab.pod(lab_ref, cluster=self.cluster_name), argv)
        except ExecNotFound as missing:
            raise execution.ExecutableNotFound(execution.runc_not_found_message(argv[0])) from missing
        return command, env


def describe_clusters(lab: Lab) -> list[dict]:
    """One description per lab cluster (docs/lab-apiserver.md), the scenario's objects included."""
    scenario_clusters = {c["name"]: c for c in lab.scenario["clusters"]}
    descriptions = []
    for cluster in lab.clusters:
        corefile = lab.corefile(cluster.name) if os.path.exists(lab.corefile_path(cluster.name)) else None
        descriptions.append({
            "name": cluster.name, "index": cluster.index, "provider": cluster.provider, "pod_cidr": cluster.pod_cidr,
            "dns_service_ip": cluster.dns_service_ip,
            "nodes": [{"name": n.name, "index": n.index, "ip": n.ip, "pod_cidr": n.pod_cidr} for n in cluster.nodes],
            "pods": [{"namespace": p.namespace, "name": p.name, "node": p.node, "image": p.image, "labels": dict(p.labels),
                      "env": dict(p.env), "ip": p.ip, "log_path": p.log_path} for p in cluster.pods],
            "objects": scenario_clusters.get(cluster.name, {}).get("objects") or [],
            "apiserver": {"corefile": corefile, "kube_proxy": {"cluster_cidr": cluster.pod_cidr}},
        })
    return descriptions


def lab_config(lab_dir: str):
    """(config, runtime factory, CA paths) for `python -m kdlab.apiserver --lab DIR`."""
    lab = Lab.load(lab_dir)
    descriptions = describe_clusters(lab)
    info = lab.info
    echo_host = next((e["host"] for e in info.get("endpoints") or [] if e["host"].startswith("whoami.")), None)
    config = {"clusters": descriptions, "subject": info.get("subject"),
              "info": {"egress_external_resolver": (info.get("resolvers") or {}).get("public"),
                       "egress_echo_url": f"http://{echo_host}/" if echo_host else None}}

    def runtime_factory(description: dict):
        return LabRuntime(lab, description["name"], {})

    def attach(cluster) -> None:
        """After the loader: exec and the data plane follow the lab's pods (CoreDNS pods carry Deployment-style names)."""
        cluster.runtime.pod_refs = cluster.pod_refs
        Dataplane(lab, cluster, cluster.pod_refs)

    runtime_factory.attach = attach
    ca = {"cert": os.path.join(lab.dir, "pki", "ca.pem"), "key": os.path.join(lab.dir, "pki", "ca-key.pem")}
    return config, runtime_factory, ca if all(os.path.exists(p) for p in ca.values()) else {}


def post_up(lab: Lab) -> None:
    """Start the API server for every cluster of the lab, wait until it serves, name its files in lab.json."""
    endpoints_path = os.path.join(lab.dir, ENDPOINTS_FILE)
    if os.path.exists(endpoints_path):
        os.unlink(endpoints_path)
    pid = lab.start_process("apiserver", [sys.executable, "-m", "kdlab.apiserver", "--lab", lab.dir])
    log_path = os.path.join(lab.dir, "logs", "apiserver.log")
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while not os.path.exists(endpoints_path):
        exited = os.waitpid(pid, os.WNOHANG)[0] == pid
        if exited or time.monotonic() > deadline:
            with open(log_path, encoding="utf-8", errors="replace") as handle:
                tail = handle.read()[-2000:]
            state = "exited" if exited else f"did not answer within {START_TIMEOUT_SECONDS}s"
            raise LabError(f"the lab API server {state}; its log ({log_path}) ends with:\n{tail}")
        time.sleep(0.05)
    with open(endpoints_path, encoding="utf-8") as handle:
        endpoints = json.load(handle)
    lab.update_info(kubeconfig=endpoints["kubeconfig"], inventory=endpoints["inventory"])
