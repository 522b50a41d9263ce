"""`up` and `down`: build a scenario's namespaces, links, rules, files and services; remove all of it again."""

import json
import os
import shutil
import time
from concurrent.futures import ThreadPoolExecutor

from kdlab import certs, extensions, images, system, topology, world
from kdlab import scenario as scenarios
from kdlab.apiserver import desired  # the objects the API server will serve drive the initial data plane (no aiohttp)
from kdlab.aws import dataplane as aws_dataplane
from kdlab.aws import plugin as aws_plugin
from kdlab.aws import spec as aws_spec
from kdlab.errors import LabError
from kdlab.lab import INFO_FILE, PLAN_FILE, SCENARIO_FILE, Lab
from kdlab.state import Journal

READY_TIMEOUT = 15.0
BUILD_THREADS = 4
LAB_SUBDIRS = ("pki", "pods", "clusters", "run", "logs", "images")
DEFAULT_COREFILE = """.:53 {
    errors
    health {
       lameduck 5s
    }
    ready
    kubernetes cluster.local in-addr.arpa ip6.arpa {
       pods insecure
       fallthrough in-addr.arpa ip6.arpa
       ttl 30
    }
    prometheus :9153
    forward . %s {
       max_concurrent 1000
    }
    cache 30
    loop
    reload
    loadbalance
}
"""


def up(scenario_ref: str, lab_dir: str, run_hooks: bool = True) -> Lab:
    """Builds the scenario; returns when every service answers. On failure removes what it made and raises LabError.
    run_hooks=False leaves out the post-up hooks (the network alone, e.g. to time it)."""
    spec = scenarios.load(scenario_ref)
    created_dir = not os.path.isdir(lab_dir)
    os.makedirs(lab_dir, exist_ok=True)
    journal = Journal(lab_dir)
    leftovers = system.existing_netns(topology.netns_prefix(lab_dir))
    if journal.exists() or leftovers:
        raise LabError(f"a lab is already up in {lab_dir} (or a previous up failed); run `python -m kdlab down --lab {lab_dir}` first")
    if created_dir:
        journal.record("lab_dir", path=os.path.realpath(lab_dir))
    try:
        lab = _build(spec, lab_dir, journal)
        for hook in extensions.post_up_hooks() if run_hooks else ():
            try:
                hook(lab)
            except Exception as e:
                raise LabError(f"post-up hook {getattr(hook, '__module__', '')}.{getattr(hook, '__name__', hook)} failed: {e}") from e
        return lab
    except (LabError, OSError) as e:
        down(lab_dir)
        raise LabError(f"up of scenario {spec['name']!r} failed and was rolled back: {e}") from None
    except BaseException:
        down(lab_dir)
        raise


def _faults(spec: dict, kind: str) -> list[dict]:
    return [f for f in spec["faults"] if f["type"] == kind]


def _write_json(journal: Journal, path: str, data) -> None:
    journal.record("file", path=path)
    with open(path, "w", encoding="utf-8") as f:
        json.dump(data, f, indent=1)


def _build(spec: dict, lab_dir: str, journal: Journal) -> Lab:
    plan = topology.plan(lab_dir, spec)
    lab_dir = plan["lab_dir"]
    for fault in _faults(spec, "proxy_dead"):
        for pod in _plan_pods(plan, fault["cluster"], fault["pod"]):
            pod["env"].update({name: world.DEAD_PROXY_URL for name in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy")})
            pod["env"].update({name: ".cluster.local,.svc,10.0.0.0/8" for name in ("NO_PROXY", "no_proxy")})
    _write_json(journal, os.path.join(lab_dir, SCENARIO_FILE), spec)
    _write_json(journal, os.path.join(lab_dir, PLAN_FILE), plan)
    for sub in LAB_SUBDIRS:
        path = os.path.join(lab_dir, sub)
        journal.record("dir", path=path)
        os.makedirs(path, exist_ok=True)
    lab = Lab(lab_dir, plan, spec)
    aws_plugin.start(lab)
    pki = certs.write_pki(os.path.join(lab_dir, "pki"))
    lab.tool_dir("netshoot")     # ephemeral debug containers' tools
    ca_pem = os.path.join(lab_dir, "pki", "ca.pem")

    all_netns = [lab.internet_netns] + [ns for c in lab.clusters for ns in [c.gateway_netns, *(n.netns for n in c.nodes), *(p.netns for p in c.pods)]]
    for ns in all_netns:
        journal.record("netns", name=ns)
    system.ip_batch(None, [f"netns add {ns}" for ns in all_netns], "creating the lab's network namespaces")

    planes = {c.name: desired.initial_dataplane(desired.describe(lab, c)) for c in lab.clusters}
    _build_internet(lab, spec, pki)
    # Clusters are independent: build them in parallel (the work is mostly waiting for ip/iptables processes).
    with ThreadPoolExecutor(max_workers=BUILD_THREADS) as pool:
        internet_lines = [line for lines in pool.map(lambda c: _build_cluster(lab, spec, c, ca_pem, journal, planes[c.name]), lab.clusters)
                          for line in lines]
    system.ip_batch(lab.internet_netns, internet_lines, "attaching the gateways to the internet")
    _wait_ready(lab, {c.name for c in lab.clusters if _coredns_runs(spec, c.name, planes[c.name])})
    if _faults(spec, "mtu_blackhole"):
        # A path MTU learnt earlier would hide the black hole (FIELD_NOTES): start from an empty route cache.
        system.ip_batch(lab.internet_netns, ["route flush cache"], "flushing the internet's route cache")
    lab.write_info(_info(lab, spec))
    journal.record("file", path=os.path.join(lab_dir, INFO_FILE))
    return lab


def _plan_pods(plan: dict, cluster: str, ref: str) -> list[dict]:
    return [p for c in plan["clusters"] if c["name"] == cluster for p in c["pods"] if f"{p['namespace']}/{p['name']}" == ref]


def _build_internet(lab: Lab, spec: dict, pki: dict) -> None:
    addresses = sorted({e.ip for e in world.ENDPOINTS} | {world.VPC_RESOLVER_IP})
    lines = ["link set lo up", "link add br0 type bridge", f"addr add {world.INTERNET_BRIDGE_IP}/24 dev br0", "link set br0 up",
             *(f"addr add {ip}/32 dev lo" for ip in addresses), f"route add blackhole {world.DEAD_RESOLVER_IP}/32"]
    system.ip_batch(lab.internet_netns, lines, "building the internet namespace")
    allowlist = [world.NOT_ALLOWLISTED_IP] if _faults(spec, "egress_ip_not_allowlisted") else [
        *(c.egress_ip for c in lab.clusters), *(ip for c in spec["clusters"] if c.get("aws") for ip in aws_spec.public_addresses(c["aws"]))]
    config = {
        "zone": world.ZONE, "records": world.zone_records(), "authoritative_ip": world.AUTHORITATIVE_IP,
        "vpc_resolver_ip": world.VPC_RESOLVER_IP,
        "endpoints": [{"host": e.host, "ip": e.ip, "tcp_ports": list(e.tcp_ports), "udp_ports": list(e.udp_ports),
                       "serves": e.serves, "cert": e.cert} for e in world.ENDPOINTS],
        "down_hosts": [f["host"] for f in _faults(spec, "endpoint_down")], "allowlist": allowlist,
        "certificates": pki, "large_response_bytes": world.LARGE_RESPONSE_BYTES,
        "ready_file": os.path.join(lab.dir, "run", "internet.ready"),
    }
    lab.python_service("internet", "kdlab.services.internet", config, lab.internet_netns)


def _etc_files(journal: Journal, netns: str, files: dict[str, str], ca_pem: str | None) -> None:
    """/etc/netns/<ns>/...: `ip netns exec` bind-mounts these over /etc (ca_pem None: an empty ssl/certs/)."""
    root = os.path.join(system.NETNS_ETC_DIR, netns)
    journal.record("etc", path=root)
    os.makedirs(os.path.join(root, "ssl", "certs"), exist_ok=True)
    for name, text in files.items():
        with open(os.path.join(root, name), "w", encoding="utf-8") as f:
            f.write(text)
    if os.path.exists("/etc/ssl/openssl.cnf"):
        shutil.copyfile("/etc/ssl/openssl.cnf", os.path.join(root, "ssl", "openssl.cnf"))
    if ca_pem:
        shutil.copyfile(ca_pem, os.path.join(root, "ssl", "certs", "ca-certificates.crt"))


def _hosts(ip: str, name: str) -> str:
    return f"127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n{ip}\t{name}\n"


def _pod_resolv_conf(spec: dict, cluster: str, pod) -> str:
    modes = [f["mode"] for f in _faults(spec, "resolv_conf") if f["cluster"] == cluster and f["pod"] == pod.ref]
    if "missing" in modes:
        return ""     # ip netns exec cannot hide the host's file; an empty one makes every resolver fall back like a missing one
    nameserver = world.WRONG_NAMESERVER_IP if "wrong" in modes else world.CLUSTER_DNS_IP
    domain = world.CLUSTER_DOMAIN
    return f"search {pod.namespace}.svc.{domain} svc.{domain} {domain}\nnameserver {nameserver}\noptions ndots:5\n"


def _coredns_runs(spec: dict, cluster: str, plane: dict) -> bool:
    return plane["coredns_running"] and not any(f["type"] == "coredns_down" and f["cluster"] == cluster for f in spec["faults"])


def _build_cluster(lab: Lab, spec: dict, c, ca_pem: str, journal: Journal, plane: dict) -> list[str]:
    """Gateway, nodes, pods, rules and CoreDNS of one cluster; returns the internet-side lines for its uplink.
    `plane` is what the cluster's objects ask of the network (desired.initial_dataplane); raw faults apply on top."""
    mine = [f for f in spec["faults"] if f.get("cluster") == c.name]
    kinds = {f["type"] for f in mine}
    mtu = next((f["mtu"] for f in mine if f["type"] == "mtu_blackhole"), None)
    coredns_runs = _coredns_runs(spec, c.name, plane)

    gw = [f"link add pub0 type veth peer name {c.internet_port} netns {lab.internet_netns}", "link set lo up",
          f"addr add {c.egress_ip}/24 dev pub0", "link set pub0 up", "link add vpc0 type bridge"]
    for n in c.nodes:
        gw += [f"link add {n.gateway_port} type veth peer name eth0 netns {n.netns}", f"link set {n.gateway_port} master vpc0",
               *([f"link set {n.gateway_port} mtu {mtu}"] if mtu else []), f"link set {n.gateway_port} up"]
    gw += [*([f"link set vpc0 mtu {mtu}"] if mtu else []), f"addr add {c.vpc_gateway_ip}/24 dev vpc0", "link set vpc0 up"]
    # The VPC resolver is the cloud's, not the internet's: it answers even with no NAT and no default route.
    gw.append(f"route add {world.VPC_RESOLVER_IP}/32 via {world.INTERNET_BRIDGE_IP}")
    gw.append("route add blackhole default" if "no_internet_route" in kinds else f"route add default via {world.INTERNET_BRIDGE_IP}")
    gw += [f"route add {n.pod_cidr} via {n.ip}" for n in c.nodes]
    system.ip_batch(c.gateway_netns, gw, f"building the NAT gateway of cluster {c.name}")
    system.sysctl(c.gateway_netns, {"net.ipv4.ip_forward": "1"})
    aws = bool(next(sc for sc in spec["clusters"] if sc["name"] == c.name).get("aws"))
    system.iptables_restore(c.gateway_netns, _gateway_rules(c, mine, aws), f"firewall of the gateway of cluster {c.name}")

    for n in c.nodes:
        pods = [p for p in c.pods if p.node == n.name]
        lines = ["link set lo up", "link add cbr0 type bridge", f"addr add {n.bridge_ip}/24 dev cbr0", "link set cbr0 up",
                 f"addr add {n.ip}/24 dev eth0", "link set eth0 up", f"route add default via {c.vpc_gateway_ip}",
                 *(f"route add {o.pod_cidr} via {o.ip}" for o in c.nodes if o.name != n.name)]
        for p in pods:
            lines += [f"link add {p.node_port} type veth peer name eth0 netns {p.netns}", f"link set {p.node_port} master cbr0",
                      f"link set {p.node_port} up"]
        system.ip_batch(n.netns, lines, f"building node {n.name}")
        # icmp_ratelimit 0: the REJECT of a Service with no endpoints answers every query, not the kernel's burst of 6 a second.
        system.sysctl(n.netns, {"net.ipv4.ip_forward": "1", "net.bridge.bridge-nf-call-iptables": "1", "net.ipv4.icmp_ratelimit": "0"})
        system.iptables_restore(n.netns, _node_rules(c, n, pods, mine, plane["snat"], coredns_runs), f"iptables of node {n.name}")
        _etc_files(journal, n.netns, {"resolv.conf": f"nameserver {world.VPC_RESOLVER_IP}\n", "hosts": _hosts(n.ip, n.name)}, ca_pem)
        for p in pods:
            system.ip_batch(p.netns, ["link set lo up", f"addr add {p.ip}/24 dev eth0", "link set eth0 up",
                                      f"route add default via {n.bridge_ip}"], f"building pod {p.ref}")
            no_ca = any(f["type"] == "no_ca_bundle" and f["pod"] == p.ref for f in mine)
            resolv = f"nameserver {world.VPC_RESOLVER_IP}\n" if p.image == "coredns" else _pod_resolv_conf(spec, c.name, p)
            _etc_files(journal, p.netns, {"resolv.conf": resolv, "hosts": _hosts(p.ip, p.name)}, None if no_ca else ca_pem)
            images.make_bin_dir(p.bin_dir, p.image)
            with open(p.log_path, "a", encoding="utf-8"):
                pass

    for ref, rules in plane["egress"].items():
        lab.set_pod_egress_rules(c.name, ref, rules)
    for f in mine:
        if f["type"] == "netpol_egress_deny":
            lab.set_pod_egress_rules(c.name, f["pod"], [f"-d {c.pod_cidr} -j RETURN", "-j DROP"])
        elif f["type"] == "netpol_dns_blocked":
            lab.set_pod_egress_rules(c.name, f["pod"], ["-p udp --dport 53 -j DROP", "-p tcp --dport 53 -j DROP"])

    os.makedirs(os.path.dirname(lab.corefile_path(c.name)), exist_ok=True)
    if "dns_upstream_dead" in kinds:
        lab.write_corefile(c.name, DEFAULT_COREFILE % world.DEAD_RESOLVER_IP)
    else:
        lab.write_corefile(c.name, plane["corefile"] or DEFAULT_COREFILE % "/etc/resolv.conf")
    if coredns_runs:
        coredns = c.pods[0]
        services = {f"kube-dns.kube-system.svc.{world.CLUSTER_DOMAIN}.": world.CLUSTER_DNS_IP,
                    f"kubernetes.default.svc.{world.CLUSTER_DOMAIN}.": world.KUBERNETES_SERVICE_IP}
        lab.python_service(f"coredns-{c.name}", "kdlab.services.coredns",
                           {"corefile": lab.corefile_path(c.name), "listen_ip": coredns.ip, "services": services,
                            "log_path": coredns.log_path, "ready_file": os.path.join(lab.dir, "run", f"coredns-{c.name}.ready")},
                           coredns.netns)
    return [f"link set {c.internet_port} master br0", f"link set {c.internet_port} up"]


def _gateway_rules(c, faults: list[dict], aws: bool = False) -> str:
    """aws: the cluster's VPC objects decide its filtering and NAT (kdlab.aws.dataplane); until its service has read them,
    only link-local traffic passes."""
    nat = [] if aws or any(f["type"] == "no_internet_route" for f in faults) else [f"-A KD-NAT -s {c.vpc_cidr} -o pub0 -j MASQUERADE"]
    aws_filter, aws_nat = aws_dataplane.initial_rules() if aws else ("", "")
    firewall, output = [], []
    for f in faults:
        if f["type"] == "port_blocked":
            firewall.append(f"-A KD-FIREWALL -p {f['protocol']} --dport {f['port']} -j DROP")
        elif f["type"] == "proxy_only":
            proxy = world.endpoint("proxy.example.test")
            firewall += [f"-A KD-FIREWALL -d {proxy.ip} -p tcp --dport 3128 -j RETURN",
                         *(f"-A KD-FIREWALL -d {ip} -p {proto} --dport 53 -j RETURN"
                           for ip in (world.PUBLIC_RESOLVER_IP, world.AUTHORITATIVE_IP, world.VPC_RESOLVER_IP) for proto in ("udp", "tcp")),
                         "-A KD-FIREWALL -j DROP"]
        elif f["type"] == "mtu_blackhole":
            output.append("-A OUTPUT -p icmp --icmp-type fragmentation-needed -j DROP")
    return ("*nat\n:PREROUTING ACCEPT [0:0]\n:INPUT ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n:POSTROUTING ACCEPT [0:0]\n:KD-NAT - [0:0]\n"
            f"-A POSTROUTING -d {world.VPC_RESOLVER_IP}/32 -o pub0 -j MASQUERADE\n-A POSTROUTING -j KD-NAT\n" + aws_nat
            + "".join(line + "\n" for line in nat) + "COMMIT\n"
            "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n:KD-FIREWALL - [0:0]\n"
            "-A FORWARD -o pub0 -j KD-FIREWALL\n" + aws_filter + "".join(line + "\n" for line in firewall + output) + "COMMIT\n")


def _node_rules(c, n, pods, faults: list[dict], snat: tuple, coredns_runs: bool) -> str:
    """The node's kube-proxy and CNI: the kube-dns Service DNATed to CoreDNS or, with no CoreDNS endpoint, rejected with
    ICMP port unreachable as kube-proxy does; SNAT; the pods' egress chains (their NetworkPolicies)."""
    dns = [(c.dns_service_ip, proto) for proto in ("udp", "tcp")]
    services = [f"-A KD-SERVICES -d {ip}/32 -p {proto} --dport 53 -j DNAT --to-destination {c.coredns_ip}:53" for ip, proto in dns if coredns_runs]
    no_endpoints = [] if coredns_runs else [f"-A KD-NO-ENDPOINTS -d {ip}/32 -p {proto} --dport 53 -j REJECT --reject-with icmp-port-unreachable"
                                            for ip, proto in dns]
    enabled, non_masquerade_cidrs, _why = snat
    enabled = enabled and not any(f["type"] == "no_snat" and n.name in f["nodes"] for f in faults)
    services += Lab.masquerade_rules(c.pod_cidr, non_masquerade_cidrs, enabled)
    node_egress = []
    if any(f["type"] == "node_egress_broken" and n.name in f["nodes"] for f in faults):
        node_egress = [f"-A KD-NODE-EGRESS -d {cidr} -j RETURN" for cidr in (c.vpc_cidr, c.pod_cidr, c.service_cidr)] + ["-A KD-NODE-EGRESS -j DROP"]
    chains = "".join(f":{p.egress_chain} - [0:0]\n" for p in pods)
    jumps = "".join(f"-A KD-POD-EGRESS -s {p.ip}/32 -j {p.egress_chain}\n" for p in pods)
    return ("*nat\n:PREROUTING ACCEPT [0:0]\n:INPUT ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n:POSTROUTING ACCEPT [0:0]\n"
            ":KD-SERVICES - [0:0]\n:KD-MASQ - [0:0]\n-A PREROUTING -j KD-SERVICES\n-A OUTPUT -j KD-SERVICES\n-A POSTROUTING -j KD-MASQ\n"
            + "".join(line + "\n" for line in services) + "COMMIT\n"
            "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n:KD-POD-EGRESS - [0:0]\n:KD-NODE-EGRESS - [0:0]\n"
            ":KD-NO-ENDPOINTS - [0:0]\n" + chains + "-A FORWARD -j KD-NO-ENDPOINTS\n-A OUTPUT -j KD-NO-ENDPOINTS\n"
            + "".join(line + "\n" for line in no_endpoints) + "-A FORWARD -j KD-POD-EGRESS\n-A FORWARD -j KD-NODE-EGRESS\n-A OUTPUT -j KD-NODE-EGRESS\n"
            "-A KD-POD-EGRESS -m conntrack --ctstate ESTABLISHED,RELATED -j RETURN\n" + jumps
            + "".join(line + "\n" for line in node_egress) + "COMMIT\n")


def _wait_ready(lab: Lab, coredns_clusters: set[str]) -> None:
    """Polls the ready files the services write once every socket is bound; fails fast when a service died."""
    expected = {"internet": os.path.join(lab.dir, "run", "internet.ready")}
    for name in coredns_clusters:
        expected[f"coredns-{name}"] = os.path.join(lab.dir, "run", f"coredns-{name}.ready")
    pids = {e["name"]: (e["pid"], e["start_time"]) for e in lab.journal.entries() if e["kind"] == "process"}
    deadline = time.monotonic() + READY_TIMEOUT
    delay = 0.005
    while expected:
        for name, path in list(expected.items()):
            if os.path.exists(path):
                del expected[name]
            elif system.process_start_time(pids[name][0]) != pids[name][1] or _is_zombie(pids[name][0]):
                raise LabError(f"service {name} exited during start-up; its log: {_tail(os.path.join(lab.dir, 'logs', name + '.log'))}")
        if expected and time.monotonic() > deadline:
            raise LabError(f"services not ready after {READY_TIMEOUT:.0f} s: {', '.join(sorted(expected))} (logs in {lab.dir}/logs)")
        if expected:
            time.sleep(delay)
            delay = min(delay * 2, 0.05)


def _is_zombie(pid: int) -> bool:
    try:
        return os.waitpid(pid, os.WNOHANG)[0] == pid
    except ChildProcessError:
        return False


def _tail(path: str, lines: int = 8) -> str:
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return " | ".join(f.read().splitlines()[-lines:]) or "(empty)"
    except OSError:
        return "(no log)"


def _info(lab: Lab, spec: dict) -> dict:
    return {
        "pods": [{"cluster": p.cluster, "namespace": p.namespace, "name": p.name, "ip": p.ip, "netns": p.netns, "image": p.image,
                  "node": p.node} for p in lab.pods],
        "nodes": [{"cluster": n.cluster, "name": n.name, "ip": n.ip, "netns": n.netns} for n in lab.nodes],
        "endpoints": [{"host": e.host, "ip": e.ip, "ports": e.ports} for e in world.ENDPOINTS],
        "subject": {"pod": spec["subject"]["pod"], "targets": spec["subject"]["targets"]},
        "expect": {"root_causes": spec["expect"]["root_causes"]},
        "resolvers": {"cluster_dns": world.CLUSTER_DNS_IP, "public": world.PUBLIC_RESOLVER_IP},
        "egress_ips": {c.name: c.egress_ip for c in lab.clusters},
        "clusters": [{"name": c.name, "provider": c.provider} for c in lab.clusters],
        "kubeconfig": None,
        "inventory": None,
        "aws": None,
    }


def down(lab_dir: str) -> list[str]:
    """Removes everything `up` made in lab_dir (also after a half-failed up, and when nothing is up). Returns what it removed."""
    lab_dir = os.path.realpath(lab_dir)
    journal = Journal(lab_dir)
    entries = journal.entries()
    removed = []
    for e in reversed(entries):
        if e["kind"] == "process":
            system.kill_group(e["pid"], e.get("start_time"))
    prefix = topology.netns_prefix(lab_dir)
    namespaces = sorted({e["name"] for e in entries if e["kind"] == "netns"} | set(system.existing_netns(prefix)))
    present = [ns for ns in namespaces if system.netns_inode(ns) is not None]
    stragglers = system.pids_in_netns({system.netns_inode(ns) for ns in present})
    system.kill_pids(stragglers)
    if present:
        system.ip_batch(None, [f"netns del {ns}" for ns in present], "deleting the lab's network namespaces")
        removed += present
    etc_dirs = {e["path"] for e in entries if e["kind"] == "etc"}
    if os.path.isdir(system.NETNS_ETC_DIR):
        etc_dirs |= {os.path.join(system.NETNS_ETC_DIR, d) for d in os.listdir(system.NETNS_ETC_DIR) if d.startswith(prefix)}
    for path in sorted(etc_dirs):
        if os.path.isdir(path):
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
    for e in reversed(entries):
        if e["kind"] == "dir" and os.path.isdir(e["path"]):
            shutil.rmtree(e["path"], ignore_errors=True)
        elif e["kind"] == "file" and os.path.exists(e["path"]):
            os.unlink(e["path"])
        elif e["kind"] == "etc" and os.path.isdir(e["path"]):
            shutil.rmtree(e["path"], ignore_errors=True)
    journal.remove()
    for e in entries:
        if e["kind"] == "lab_dir" and os.path.isdir(e["path"]) and not os.listdir(e["path"]):
            os.rmdir(e["path"])     # only when empty: files someone else put there stay
    return removed
