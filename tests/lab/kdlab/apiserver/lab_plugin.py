"""The API server inside a lab: `post_up(lab)` (called by `python -m kdlab up`) starts it; `lab_config` turns the lab
into the server's cluster descriptions; `LabRuntime` runs pod exec through the lab's own exec path."""

import json
import os
import sys
import time

from kdlab import Lab, images, world
from kdlab.errors import ExecNotFound, LabError

from . import desired, execution
from .dataplane import Dataplane
from .main import ENDPOINTS_FILE

START_TIMEOUT_SECONDS = 30


class LabRuntime(execution.HostRuntime):
    """Lab pods run in their network namespace with their image's tools (lab.exec_argv); ephemeral containers in the pod's
    namespace and files with their own image's tool set (netshoot for nicolaka/netshoot); hostNetwork pods on their node."""

    def __init__(self, lab: Lab, cluster: str, pod_refs: dict[str, str]):
        super().__init__()
        self.lab, self.cluster_name, self.pod_refs = lab, cluster, pod_refs

    def command(self, pod: dict, container: str, argv: list[str]) -> tuple[list[str], dict | None]:
        spec = pod.get("spec") or {}
        lab_ref = self.pod_refs.get(f"{pod['metadata']['namespace']}/{pod['metadata']['name']}")
        try:
            if spec.get("hostNetwork") or lab_ref is None:
                # hostNetwork pods share their node's namespace (and get the host's tools, like a netshoot debug pod).
                node = self.lab.node(spec.get("nodeName", ""), cluster=self.cluster_name)
                command, env = self.lab.node_exec_argv(node, argv)
            else:
                lab_pod = self.lab.pod(lab_ref, cluster=self.cluster_name)
                ephemeral = next((c for c in spec.get("ephemeralContainers") or [] if c.get("name") == container), None)
                if ephemeral is not None:
                    command, env = self.lab.exec_argv(lab_pod, argv, tools=images.image_of(ephemeral.get("image", "")),
                                                      env=execution.container_env(pod, container))
                else:
                    command, env = self.lab.exec_argv(lab_pod, argv)
        except ExecNotFound as missing:
            raise execution.ExecutableNotFound(execution.runc_not_found_message(argv[0])) from missing
        return command, env


class PodNetworks:
    """Pods created through the API (not hostNetwork) get a network namespace of their own on their node's bridge, as a CNI
    would give them: the IP the server allocated from the node's pod CIDR, resolv.conf from dnsPolicy/dnsConfig, the tool set
    of their first container's image. Deleting the pod removes it (and what runs in it)."""

    def __init__(self, lab: Lab, cluster):
        self.lab, self.cluster = lab, cluster
        self.added: set[str] = set()
        cluster.store.listeners.append(self.on_event)

    def on_event(self, event) -> None:
        if event.group or event.plural != "pods":
            return
        metadata = event.obj["metadata"]
        ref = f"{metadata.get('namespace', '')}/{metadata['name']}"
        try:
            if event.type == "ADDED" and ref not in self.cluster.pod_refs:
                self.create(ref, event.obj)
            elif event.type == "DELETED" and ref in self.added:
                self.added.discard(ref)
                self.cluster.pod_refs.pop(ref, None)
                self.lab.remove_pod(ref, cluster=self.cluster.name)
        except LabError as error:   # logged: the API object stays, exec into it reports the missing container
            print(f"kdlab.apiserver: network of pod {ref} in cluster {self.cluster.name}: {error}", flush=True)

    def create(self, ref: str, pod: dict) -> None:
        spec, status = pod.get("spec") or {}, pod.get("status") or {}
        if spec.get("hostNetwork") or not status.get("podIP") or not spec.get("nodeName"):
            return
        container = (spec.get("containers") or [{}])[0]
        namespace, _unused, name = ref.partition("/")
        self.lab.add_pod(self.cluster.name, namespace, name, spec["nodeName"], status["podIP"], image=images.image_of(container.get("image", "")),
                         labels=pod["metadata"].get("labels") or {}, env=execution.container_env(pod, container.get("name", "")),
                         **dns_settings(spec, namespace))
        self.added.add(ref)
        self.cluster.pod_refs[ref] = ref


def dns_settings(spec: dict, namespace: str) -> dict:
    """add_pod's nameservers/searches/options for the pod's dnsPolicy and dnsConfig, as the kubelet writes resolv.conf."""
    config = spec.get("dnsConfig") or {}
    options = [f"{o['name']}:{o['value']}" if o.get("value") is not None else o["name"] for o in config.get("options") or [] if o.get("name")]
    policy = spec.get("dnsPolicy", "ClusterFirst")
    if policy == "None":
        return {"nameservers": list(config.get("nameservers") or []), "searches": list(config.get("searches") or []), "options": options}
    if policy == "Default" or (policy == "ClusterFirst" and spec.get("hostNetwork")):
        return {"nameservers": [world.VPC_RESOLVER_IP, *(config.get("nameservers") or [])], "searches": list(config.get("searches") or []),
                "options": options}
    domain = world.CLUSTER_DOMAIN
    return {"nameservers": [world.CLUSTER_DNS_IP, *(config.get("nameservers") or [])],
            "searches": [f"{namespace}.svc.{domain}", f"svc.{domain}", domain, *(config.get("searches") or [])],
            "options": ["ndots:5", *options]}


def describe_clusters(lab: Lab) -> list[dict]:
    """One description per lab cluster (docs/lab-apiserver.md), the scenario's objects included."""
    return [desired.describe(lab, cluster, lab.corefile(cluster.name) if os.path.exists(lab.corefile_path(cluster.name)) else None)
            for cluster in lab.clusters]


def lab_config(lab_dir: str):
    """(config, runtime factory, CA paths) for `python -m kdlab.apiserver --lab DIR`."""
    lab = Lab.load(lab_dir)
    descriptions = describe_clusters(lab)
    info = lab.info
    echo_host = next((e["host"] for e in info.get("endpoints") or [] if e["host"].startswith("whoami.")), None)
    config = {"clusters": descriptions, "subject": info.get("subject"),
              "info": {"egress_external_resolver": (info.get("resolvers") or {}).get("public"),
                       "egress_echo_url": f"http://{echo_host}/" if echo_host else None,
                       # the lab's corporate proxy: lets a diagnosis tell "direct egress blocked, the proxy works"
                       "egress_test_proxy": world.PROXY_URL}}

    def runtime_factory(description: dict):
        return LabRuntime(lab, description["name"], {})

    def attach(cluster) -> None:
        """After the loader: exec and the data plane follow the lab's pods (CoreDNS pods carry Deployment-style names)."""
        cluster.runtime.pod_refs = cluster.pod_refs
        PodNetworks(lab, cluster)   # before the data plane, which then finds the new pod's egress chain
        Dataplane(lab, cluster, cluster.pod_refs)

    runtime_factory.attach = attach
    ca = {"cert": os.path.join(lab.dir, "pki", "ca.pem"), "key": os.path.join(lab.dir, "pki", "ca-key.pem")}
    return config, runtime_factory, ca if all(os.path.exists(p) for p in ca.values()) else {}


# Every file the API server writes into the lab dir (main.serve, files.write_tls): tracked before it exists, so `down` removes it.
# apiserver-ca.pem is only written when the lab has no CA of its own; tracking a path that never appears is harmless.
SERVER_FILES = ("apiserver.pem", "apiserver-key.pem", "apiserver-ca.pem", ENDPOINTS_FILE, ENDPOINTS_FILE + ".tmp", "audit.jsonl",
                "kubeconfig", "inventory.yml")


def post_up(lab: Lab) -> None:
    """Start the API server for every cluster of the lab, wait until it serves, name its files in lab.json."""
    endpoints_path = os.path.join(lab.dir, ENDPOINTS_FILE)
    if os.path.exists(endpoints_path):
        os.unlink(endpoints_path)
    for name in SERVER_FILES:
        lab.track_path(os.path.join(lab.dir, name))
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
