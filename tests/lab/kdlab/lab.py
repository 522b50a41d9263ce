"""The Python API of a running lab (documented in docs/lab.md): find pods and nodes, build exec argv, change the dataplane."""

import contextlib
import dataclasses
import hashlib
import ipaddress
import json
import os
import shutil
import subprocess
import sys
import threading
from dataclasses import dataclass, field

from kdlab import images, system, topology, world
from kdlab.errors import ExecNotFound, LabError
from kdlab.state import Journal

PLAN_FILE, SCENARIO_FILE, INFO_FILE = "plan.json", "scenario.json", "lab.json"
RUNTIME_PODS_FILE = os.path.join("run", "pods-added.json")     # pods added after `up` (created through the API server)
INFO_KEYS = ("pods", "nodes", "endpoints", "subject", "expect", "resolvers", "egress_ips", "clusters", "kubeconfig", "inventory", "aws")
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
        added = self._added_pods()
        for c in plan["clusters"]:
            nodes = tuple(Node(**n) for n in c["nodes"])
            pods = tuple(Pod(**p) for p in [*c["pods"], *(p for p in added if p["cluster"] == c["name"])])
            self.clusters.append(Cluster(**{**c, "nodes": nodes, "pods": pods}))
        self.journal = Journal(self.dir)
        self._pods_lock = threading.Lock()

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
    def exec_argv(self, pod: "Pod | str", argv: list[str], tools: str | None = None,
                  env: dict[str, str] | None = None) -> tuple[list[str], dict[str, str]]:
        """argv and environment that run a command exactly as inside the pod. Raises ExecNotFound for a missing tool.

        tools=None: the pod's own container (its image's tools, its env). tools="netshoot" (or another image): an ephemeral
        container in the pod (`kubectl debug --image=nicolaka/netshoot`): the pod's network and files (resolv.conf, hosts, CA
        bundle), that image's tools, and only `env` (an ephemeral container does not inherit the app container's env)."""
        pod = self._pod(pod)
        if not argv:
            raise LabError("exec needs a command to run")
        bin_dir = pod.bin_dir if tools is None else self.tool_dir(tools)
        tool = os.path.join(bin_dir, os.path.basename(argv[0]))
        if not os.path.lexists(tool):
            raise ExecNotFound(argv[0])
        own_env = pod.env if tools is None else {}
        full_env = {"PATH": bin_dir, "HOSTNAME": pod.name, "HOME": "/root",
                    "KUBERNETES_SERVICE_HOST": world.KUBERNETES_SERVICE_IP, "KUBERNETES_SERVICE_PORT": "443", **own_env, **(env or {})}
        return [system.IP, "netns", "exec", pod.netns, tool, *argv[1:]], full_env

    def tool_dir(self, image: str) -> str:
        """The bin dir of an image's tool set, shared by the lab's ephemeral containers (made by `up`, or now if missing)."""
        if image not in images.IMAGE_NAMES:
            raise LabError(f"unknown tool set {image!r} (known: {', '.join(images.IMAGE_NAMES)})")
        path = os.path.join(self.dir, "images", image, "bin")
        if not os.path.isdir(path):
            images.make_bin_dir(path, image)
        return path

    def node_exec_argv(self, node: "Node | str", argv: list[str]) -> tuple[list[str], dict[str, str]]:
        """argv and environment that run a command on the node with the host's full tool set (`kubectl debug node/...`)."""
        node = node if isinstance(node, Node) else self.node(node)
        if not argv:
            raise LabError("exec needs a command to run")
        if shutil.which(argv[0], path=images.HOST_PATH) is None:
            raise ExecNotFound(argv[0])
        env = {"PATH": images.HOST_PATH, "HOSTNAME": node.name, "HOME": "/root"}
        return [system.IP, "netns", "exec", node.netns, *argv], env

    # Pods added at run time (the API server creates one per Pod object that is not hostNetwork)
    def _added_pods(self) -> list[dict]:
        try:
            with open(os.path.join(self.dir, RUNTIME_PODS_FILE), encoding="utf-8") as f:
                return json.load(f)
        except FileNotFoundError:
            return []

    def _save_added_pods(self) -> None:
        static = {(c["name"], p["namespace"], p["name"]) for c in self.plan["clusters"] for p in c["pods"]}
        added = [dataclasses.asdict(p) for p in self.pods if (p.cluster, p.namespace, p.name) not in static]
        path = os.path.join(self.dir, RUNTIME_PODS_FILE)
        with open(path + ".tmp", "w", encoding="utf-8") as f:
            json.dump(added, f, indent=1)
        os.replace(path + ".tmp", path)

    def _set_pods(self, cluster: Cluster, pods: tuple[Pod, ...]) -> None:
        self.clusters[self.clusters.index(cluster)] = dataclasses.replace(cluster, pods=pods)
        self._save_added_pods()

    def add_pod(self, cluster: str, namespace: str, name: str, node: str, ip: str, image: str = "netshoot",
                labels: dict | None = None, env: dict | None = None, nameservers: list[str] | None = None,
                searches: list[str] | None = None, options: list[str] | None = None) -> Pod:
        """Creates a pod in a running lab, as the kubelet and the CNI would: its own network namespace on the node's bridge
        with `ip` (from the node's pod CIDR), resolv.conf (the cluster DNS unless nameservers are given), hosts, the lab CA
        bundle, the image's tool set and an egress chain on its node. `down` removes it; so does remove_pod."""
        c = self.cluster(cluster)
        target = self.node(node, c.name)
        if image not in images.IMAGE_NAMES:
            raise LabError(f"unknown image tool set {image!r} (known: {', '.join(images.IMAGE_NAMES)})")
        try:
            address = ipaddress.ip_address(ip)
        except ValueError:
            raise LabError(f"{ip!r} is not an IP address") from None
        if address not in ipaddress.ip_network(target.pod_cidr) or ip in (target.bridge_ip, str(ipaddress.ip_network(target.pod_cidr)[-1])):
            raise LabError(f"{ip} is not a usable pod address of node {node} (pod CIDR {target.pod_cidr})")
        ref_key = f"{c.name}/{namespace}/{name}"
        pod_dir = os.path.join(self.dir, "pods", c.name, namespace, name)
        pod = Pod(cluster=c.name, namespace=namespace, name=name, ip=ip, netns=f"{topology.netns_prefix(self.dir)}{c.name}-{namespace}-{name}",
                  image=image, node=target.name, labels=dict(labels or {}), env=dict(env or {}),
                  egress_chain=topology.egress_chain(c.name, namespace, name), dir=pod_dir, log_path=os.path.join(pod_dir, "container.log"),
                  # veth names are at most 15 characters; "a" + 10 hex cannot meet the scenario pods' "p<slot>"
                  node_port="a" + hashlib.sha1(ref_key.encode(), usedforsecurity=False).hexdigest()[:10])
        with self._pods_lock:
            taken = [p for p in self.pods if (p.cluster, p.namespace, p.name) == (c.name, namespace, name) or (p.cluster, p.ip) == (c.name, ip)]
            if taken or system.netns_inode(pod.netns) is not None:
                raise LabError(f"cluster {c.name} already has a pod {namespace}/{name} or a pod with IP {ip}")
            self.journal.record("netns", name=pod.netns)
            self.journal.record("etc", path=os.path.join(system.NETNS_ETC_DIR, pod.netns))
            self.journal.record("dir", path=pod_dir)
            try:
                self._plumb_pod(pod, target, c, nameservers, searches, options)
            except (LabError, OSError):
                self._unplumb_pod(pod, target)
                raise
            current = self.cluster(c.name)
            self._set_pods(current, (*current.pods, pod))
        return pod

    def _plumb_pod(self, pod: Pod, node: Node, cluster: Cluster, nameservers, searches, options) -> None:
        system.ip_batch(None, [f"netns add {pod.netns}"], f"creating the network namespace of pod {pod.ref}")
        system.ip_batch(node.netns, [f"link add {pod.node_port} type veth peer name eth0 netns {pod.netns}",
                                     f"link set {pod.node_port} master cbr0", f"link set {pod.node_port} up"], f"plugging pod {pod.ref} into {node.name}")
        system.ip_batch(pod.netns, ["link set lo up", f"addr add {pod.ip}/24 dev eth0", "link set eth0 up",
                                    f"route add default via {node.bridge_ip}"], f"building pod {pod.ref}")
        domain = world.CLUSTER_DOMAIN
        search = searches if searches is not None else [f"{pod.namespace}.svc.{domain}", f"svc.{domain}", domain]
        resolv = "".join([f"search {' '.join(search)}\n" if search else "",
                          *(f"nameserver {ip}\n" for ip in (nameservers if nameservers is not None else [cluster.dns_service_ip])),
                          f"options {' '.join(options if options is not None else ['ndots:5'])}\n"])
        etc = os.path.join(system.NETNS_ETC_DIR, pod.netns)
        os.makedirs(os.path.join(etc, "ssl", "certs"), exist_ok=True)
        hosts = f"127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n{pod.ip}\t{pod.name}\n"
        for file_name, text in (("resolv.conf", resolv), ("hosts", hosts)):
            with open(os.path.join(etc, file_name), "w", encoding="utf-8") as f:
                f.write(text)
        for source, destination in (("/etc/ssl/openssl.cnf", "openssl.cnf"), (os.path.join(self.dir, "pki", "ca.pem"), "certs/ca-certificates.crt")):
            if os.path.exists(source):
                shutil.copyfile(source, os.path.join(etc, "ssl", destination))
        images.make_bin_dir(pod.bin_dir, pod.image)
        with open(pod.log_path, "a", encoding="utf-8"):
            pass
        system.iptables_restore(node.netns, f"*filter\n:{pod.egress_chain} - [0:0]\n-A KD-POD-EGRESS -s {pod.ip}/32 -j {pod.egress_chain}\nCOMMIT\n",
                                f"adding the egress chain of pod {pod.ref}", noflush=True)

    def _unplumb_pod(self, pod: Pod, node: Node) -> None:
        """Undoes _plumb_pod as far as it got (every step tolerates a missing piece)."""
        with contextlib.suppress(LabError):
            system.iptables_restore(node.netns, f"*filter\n-D KD-POD-EGRESS -s {pod.ip}/32 -j {pod.egress_chain}\nCOMMIT\n", "", noflush=True)
        with contextlib.suppress(LabError):
            system.iptables_restore(node.netns, f"*filter\n-F {pod.egress_chain}\n-X {pod.egress_chain}\nCOMMIT\n", "", noflush=True)
        inode = system.netns_inode(pod.netns)
        if inode is not None:
            system.kill_pids(system.pids_in_netns({inode}))     # commands still running in the pod die with it, as in a container
            with contextlib.suppress(LabError):
                system.ip_batch(None, [f"netns del {pod.netns}"], f"deleting the network namespace of pod {pod.ref}")
        shutil.rmtree(os.path.join(system.NETNS_ETC_DIR, pod.netns), ignore_errors=True)
        shutil.rmtree(pod.dir, ignore_errors=True)

    def remove_pod(self, pod: "Pod | str", cluster: str | None = None) -> None:
        """Removes a pod add_pod made: its namespace (and every process in it), files, egress chain. Scenario pods stay."""
        pod = self._pod(pod, cluster)
        static = {(c["name"], p["namespace"], p["name"]) for c in self.plan["clusters"] for p in c["pods"]}
        if (pod.cluster, pod.namespace, pod.name) in static:
            raise LabError(f"pod {pod.ref} is part of the scenario; only pods added at run time can be removed")
        with self._pods_lock:
            c = self.cluster(pod.cluster)
            self._unplumb_pod(pod, self._node_of(pod))
            self._set_pods(c, tuple(p for p in c.pods if p != pod))

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
