"""The Python API of a running lab (documented in docs/lab.md): find pods and nodes, build exec argv, change the dataplane."""

import ipaddress
import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass, field

from kdlab import images, system, world
from kdlab.errors import ExecNotFound, LabError
from kdlab.state import Journal

PLAN_FILE, SCENARIO_FILE, INFO_FILE = "plan.json", "scenario.json", "lab.json"
INFO_KEYS = ("pods", "nodes", "endpoints", "subject", "expect", "resolvers", "egress_ips", "clusters", "kubeconfig", "inventory")
KDLAB_PARENT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@dataclass(frozen=True)
class Pod:
    cluster: str
    namespace: str
    name: str
    ip: str
    netns: str
    image: str
    node: str
    labels: dict = field(hash=False)
    env: dict = field(hash=False)
    egress_chain: str
    dir: str
    log_path: str
    node_port: str

    @property
    def ref(self) -> str:
        return f"{self.namespace}/{self.name}"

    @property
    def bin_dir(self) -> str:
        return os.path.join(self.dir, "bin")


@dataclass(frozen=True)
class Node:
    cluster: str
    name: str
    index: int
    ip: str
    netns: str
    pod_cidr: str
    bridge_ip: str
    gateway_port: str


@dataclass(frozen=True)
class Cluster:
    name: str
    index: int
    provider: str
    vpc_cidr: str
    vpc_gateway_ip: str
    egress_ip: str
    internet_port: str
    gateway_netns: str
    pod_cidr: str
    service_cidr: str
    dns_service_ip: str
    coredns_ip: str
    nodes: tuple[Node, ...]
    pods: tuple[Pod, ...]


class Lab:
    """A lab built by `python -m kdlab up`. Load it with Lab.load(dir)."""

    def __init__(self, lab_dir: str, plan: dict, scenario: dict):
        self.dir = os.path.realpath(lab_dir)
        self.plan = plan
        self.scenario = scenario
        self.internet_netns: str = plan["internet_netns"]
        self.clusters: list[Cluster] = []
        for c in plan["clusters"]:
            nodes = tuple(Node(**n) for n in c["nodes"])
            pods = tuple(Pod(**p) for p in c["pods"])
            self.clusters.append(Cluster(**{**c, "nodes": nodes, "pods": pods}))
        self.journal = Journal(self.dir)

    @classmethod
    def load(cls, lab_dir: str) -> "Lab":
        try:
            with open(os.path.join(lab_dir, PLAN_FILE), encoding="utf-8") as f:
                plan = json.load(f)
            with open(os.path.join(lab_dir, SCENARIO_FILE), encoding="utf-8") as f:
                scenario = json.load(f)
        except FileNotFoundError:
            raise LabError(f"no lab is up in {lab_dir}; run `python -m kdlab up --scenario <name> --lab {lab_dir}` first") from None
        return cls(lab_dir, plan, scenario)

    # Lookups
    @property
    def info(self) -> dict:
        try:
            with open(os.path.join(self.dir, INFO_FILE), encoding="utf-8") as f:
                return json.load(f)
        except FileNotFoundError:
            raise LabError(f"{self.dir}/lab.json is missing: the lab is not (fully) up") from None

    @property
    def pods(self) -> list[Pod]:
        return [p for c in self.clusters for p in c.pods]

    @property
    def nodes(self) -> list[Node]:
        return [n for c in self.clusters for n in c.nodes]

    def cluster(self, name: str | None = None) -> Cluster:
        if name is None:
            return self.clusters[0]
        for c in self.clusters:
            if c.name == name:
                return c
        raise LabError(f"no cluster named {name!r} in this lab (clusters: {', '.join(c.name for c in self.clusters)})")

    def pod(self, ref: str, cluster: str | None = None) -> Pod:
        """A pod by "namespace/name"; cluster is needed only when several clusters have a pod of that name."""
        namespace, _unused, name = ref.partition("/")
        found = [p for p in self.pods if (p.namespace, p.name) == (namespace, name) and cluster in (None, p.cluster)]
        if not found:
            known = ", ".join(f"{p.cluster}:{p.ref}" for p in self.pods)
            raise LabError(f"no pod {ref!r}{' in cluster ' + repr(cluster) if cluster else ''} in this lab (pods: {known})")
        if len(found) > 1:
            raise LabError(f"pod {ref!r} exists in clusters {', '.join(p.cluster for p in found)}; say which cluster (CLI: --cluster)")
        return found[0]

    def node(self, name: str, cluster: str | None = None) -> Node:
        found = [n for n in self.nodes if n.name == name and cluster in (None, n.cluster)]
        if not found:
            raise LabError(f"no node {name!r} in this lab (nodes: {', '.join(n.cluster + ':' + n.name for n in self.nodes)})")
        if len(found) > 1:
            raise LabError(f"node {name!r} exists in clusters {', '.join(n.cluster for n in found)}; say which cluster (CLI: --cluster)")
        return found[0]

    def _pod(self, pod: "Pod | str", cluster: str | None = None) -> Pod:
        return pod if isinstance(pod, Pod) else self.pod(pod, cluster)

    def _node_of(self, pod: Pod) -> Node:
        return self.node(pod.node, pod.cluster)

    # Exec
    def exec_argv(self, pod: "Pod | str", argv: list[str]) -> tuple[list[str], dict[str, str]]:
        """argv and environment that run a command exactly as inside the pod. Raises ExecNotFound for a missing tool."""
        pod = self._pod(pod)
        if not argv:
            raise LabError("exec needs a command to run")
        tool = os.path.join(pod.bin_dir, os.path.basename(argv[0]))
        if not os.path.lexists(tool):
            raise ExecNotFound(argv[0])
        env = {"PATH": pod.bin_dir, "HOSTNAME": pod.name, "HOME": "/root",
               "KUBERNETES_SERVICE_HOST": world.KUBERNETES_SERVICE_IP, "KUBERNETES_SERVICE_PORT": "443", **pod.env}
        return [system.IP, "netns", "exec", pod.netns, tool, *argv[1:]], env

    def node_exec_argv(self, node: "Node | str", argv: list[str]) -> tuple[list[str], dict[str, str]]:
        """argv and environment that run a command on the node with the host's full tool set (`kubectl debug node/...`)."""
        node = node if isinstance(node, Node) else self.node(node)
        if not argv:
            raise LabError("exec needs a command to run")
        if shutil.which(argv[0], path=images.HOST_PATH) is None:
            raise ExecNotFound(argv[0])
        env = {"PATH": images.HOST_PATH, "HOSTNAME": node.name, "HOME": "/root"}
        return [system.IP, "netns", "exec", node.netns, *argv], env

    # Hooks
    def set_pod_egress_rules(self, cluster: str, pod: "Pod | str", rule_lines: list[str]) -> None:
        """Replaces the pod's egress chain on its node; each line is an iptables rule spec without "-A <chain>"."""
        pod = self._pod(pod, cluster)
        for line in rule_lines:
            if not isinstance(line, str) or "\n" in line or line.lstrip().startswith(("*", ":", "COMMIT", "-A", "-I", "-D", "-F", "-X", "-N")):
                raise LabError(f"not an iptables rule spec for the pod's chain: {line!r} (give e.g. '-p tcp --dport 443 -j ACCEPT')")
        rules = "*filter\n" + f":{pod.egress_chain} - [0:0]\n" + "".join(f"-A {pod.egress_chain} {line}\n" for line in rule_lines) + "COMMIT\n"
        system.iptables_restore(self._node_of(pod).netns, rules, f"setting the egress rules of pod {pod.ref}", noflush=True)

    def corefile_path(self, cluster: str | None = None) -> str:
        return os.path.join(self.dir, "clusters", self.cluster(cluster).name, "Corefile")

    def corefile(self, cluster: str | None = None) -> str:
        with open(self.corefile_path(cluster), encoding="utf-8") as f:
            return f.read()

    def write_corefile(self, cluster: str, text: str) -> None:
        """Rewrites the cluster's Corefile; the lab's CoreDNS re-reads it within 0.5 s."""
        path = self.corefile_path(cluster)
        tmp = path + ".tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, path)

    def set_node_snat(self, cluster: str, enabled: bool = True, non_masquerade_cidrs: list[str] | None = None) -> None:
        """Masquerade pod traffic leaving each node of the cluster, except to non_masquerade_cidrs; or no SNAT at all."""
        cidrs = [world.POD_SUPERNET] if non_masquerade_cidrs is None else list(non_masquerade_cidrs)
        for cidr in cidrs:
            try:
                ipaddress.ip_network(cidr, strict=False)
            except ValueError:
                raise LabError(f"{cidr!r} is not a CIDR (give e.g. 10.0.0.0/8)") from None
        c = self.cluster(cluster)
        rules = "*nat\n:KD-MASQ - [0:0]\n" + "\n".join(self.masquerade_rules(c.pod_cidr, cidrs, enabled)) + "\nCOMMIT\n"
        for node in c.nodes:
            system.iptables_restore(node.netns, rules, f"setting SNAT on node {node.name}", noflush=True)

    @staticmethod
    def masquerade_rules(pod_cidr: str, non_masquerade_cidrs: list[str], enabled: bool) -> list[str]:
        """The node's KD-MASQ chain (nat table): ip-masq-agent semantics."""
        lines = [f"-A KD-MASQ ! -s {pod_cidr} -j RETURN"] + [f"-A KD-MASQ -d {cidr} -j RETURN" for cidr in non_masquerade_cidrs]
        return lines + (["-A KD-MASQ -o eth0 -j MASQUERADE"] if enabled else [])

    def start_process(self, name: str, argv: list[str], netns: str | None = None, env: dict[str, str] | None = None) -> int:
        """Starts a long-lived process in its own process group (in netns, or the root namespace); `down` kills the group."""
        if not name.replace("-", "").replace("_", "").isalnum():
            raise LabError(f"process name {name!r} must be letters, digits, '-' or '_' (it names the log file)")
        os.makedirs(os.path.join(self.dir, "logs"), exist_ok=True)
        full_env = {**os.environ, "PYTHONPATH": KDLAB_PARENT, **(env or {})}
        command = [system.IP, "netns", "exec", netns, *argv] if netns else list(argv)
        self.journal.record("process-starting", name=name)
        with open(os.path.join(self.dir, "logs", f"{name}.log"), "ab") as log:
            process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=full_env,
                                       start_new_session=True, cwd=self.dir)
        self.journal.record("process", name=name, pid=process.pid, start_time=system.process_start_time(process.pid))
        return process.pid

    def track_path(self, path: str) -> str:
        """Records a file or directory a hook is about to create inside the lab dir, so `down` removes it. Returns path."""
        real = os.path.realpath(path)
        if os.path.commonpath([real, self.dir]) != self.dir or real == self.dir:
            raise LabError(f"{path} is not inside the lab dir {self.dir}; only paths inside it can be tracked")
        self.journal.record("dir" if os.path.isdir(real) else "file", path=real)
        return path

    def python_service(self, name: str, module: str, config: dict, netns: str) -> int:
        """Starts one of kdlab's own services (`python -m <module> <config.json>`) in a namespace."""
        config_path = os.path.join(self.dir, "run", f"{name}.json")
        with open(config_path, "w", encoding="utf-8") as f:
            json.dump(config, f, indent=1)
        return self.start_process(name, [sys.executable, "-m", module, config_path], netns=netns)

    def update_info(self, **keys) -> None:
        """Rewrites keys of lab.json (e.g. kubeconfig, inventory)."""
        unknown = sorted(set(keys) - set(INFO_KEYS))
        if unknown:
            raise LabError(f"lab.json has no key {unknown[0]!r} (keys: {', '.join(INFO_KEYS)})")
        self.write_info({**self.info, **keys})

    def write_info(self, info: dict) -> None:
        path = os.path.join(self.dir, INFO_FILE)
        with open(path + ".tmp", "w", encoding="utf-8") as f:
            json.dump(info, f, indent=2)
            f.write("\n")
        os.replace(path + ".tmp", path)
