"""The lab's data plane follows the API objects: NetworkPolicy egress rules per pod, the CoreDNS Corefile, node SNAT.

`egress_rules` is a pure translation of Kubernetes NetworkPolicy egress semantics to iptables rule specs for one pod's
egress chain (the lab's `set_pod_egress_rules` hook). `Dataplane` watches the store and re-applies, debounced, within
a second of a change. Nothing is applied at start: the scenario's own faults define the initial data plane.
"""

import asyncio
import ipaddress

import yaml

from kdlab.errors import LabError

from .selectors import matches_label_selector_object

PROTOCOLS = {"TCP": "tcp", "UDP": "udp", "SCTP": "sctp"}
DEBOUNCE_SECONDS = 0.2


def _policy_types(spec: dict) -> list[str]:
    if spec.get("policyTypes"):
        return spec["policyTypes"]
    return ["Ingress", "Egress"] if "egress" in spec else ["Ingress"]


def selects(policy: dict, pod: dict) -> bool:
    return (policy["metadata"].get("namespace") == pod["metadata"].get("namespace")
            and matches_label_selector_object((policy.get("spec") or {}).get("podSelector"), pod["metadata"].get("labels")))


def _peer_destinations(peer: dict, policy_namespace: str, pods: list[dict], namespaces: dict[str, dict]) -> list[tuple[str, dict | None]]:
    """(CIDR, destination pod or None) pairs a peer allows."""
    if "ipBlock" in peer:
        block = peer["ipBlock"]
        remaining = [ipaddress.ip_network(block["cidr"], strict=False)]
        for excluded in block.get("except") or []:
            excluded_net = ipaddress.ip_network(excluded, strict=False)
            split = []
            for net in remaining:
                split.extend(net.address_exclude(excluded_net) if excluded_net.subnet_of(net) else [net])
            remaining = split
        return [(str(net), None) for net in sorted(remaining)]
    found = []
    for pod in pods:
        namespace = pod["metadata"].get("namespace", "")
        ip = (pod.get("status") or {}).get("podIP")
        if not ip or (pod.get("spec") or {}).get("hostNetwork"):
            continue
        if "namespaceSelector" in peer:
            ns_labels = (namespaces.get(namespace) or {}).get("metadata", {}).get("labels")
            if not matches_label_selector_object(peer["namespaceSelector"], ns_labels):
                continue
        elif namespace != policy_namespace:
            continue
        if "podSelector" in peer and not matches_label_selector_object(peer["podSelector"], pod["metadata"].get("labels")):
            continue
        found.append((f"{ip}/32", pod))
    return found


def _named_port(pod: dict | None, name: str, protocol: str) -> int | None:
    for container in ((pod or {}).get("spec") or {}).get("containers") or []:
        for port in container.get("ports") or []:
            if port.get("name") == name and port.get("protocol", "TCP") == protocol:
                return port.get("containerPort")
    return None


def _port_matches(ports: list[dict], destination: dict | None) -> list[str]:
    """iptables match fragments for a rule's ports ([""] = any port); named ports resolve against the destination pod."""
    if not ports:
        return [""]
    fragments = []
    for port in ports:
        protocol = port.get("protocol", "TCP")
        number = port.get("port")
        if isinstance(number, str) and not number.isdigit():
            number = _named_port(destination, number, protocol)
            if number is None:
                continue
        text = f"-p {PROTOCOLS[protocol]}"
        if number is not None:
            text += f" --dport {number}:{port['endPort']}" if port.get("endPort") else f" --dport {number}"
        fragments.append(text)
    return fragments


def egress_rules(pod: dict, policies: list[dict], pods: list[dict], namespaces: dict[str, dict], services: list[dict]) -> list[str]:
    """The pod's egress chain: [] when no policy isolates it for egress, else the allowed flows then DROP."""
    isolating = [p for p in policies if selects(p, pod) and "Egress" in _policy_types(p.get("spec") or {})]
    if not isolating:
        return []
    rules: list[str] = []
    for policy in isolating:
        for rule in (policy.get("spec") or {}).get("egress") or []:
            peers = rule.get("to")
            destinations = [("", None)] if not peers else [
                d for peer in peers for d in _peer_destinations(peer, policy["metadata"]["namespace"], pods, namespaces)]
            for cidr, destination in destinations:
                targets = [cidr, *_service_ips_of(destination, services)]
                for ports in _port_matches(rule.get("ports") or [], destination):
                    for target in targets:
                        line = " ".join(part for part in (f"-d {target}" if target else "", ports, "-j RETURN") if part)
                        if line not in rules:
                            rules.append(line)
    return [*rules, "-j DROP"]


def _service_ips_of(pod: dict | None, services: list[dict]) -> list[str]:
    """ClusterIPs of the services in front of a destination pod (the pod may reach it before DNAT)."""
    if pod is None:
        return []
    found = []
    for service in services:
        spec = service.get("spec") or {}
        if (service["metadata"].get("namespace") == pod["metadata"].get("namespace") and spec.get("selector")
                and all((pod["metadata"].get("labels") or {}).get(k) == v for k, v in spec["selector"].items())
                and spec.get("clusterIP") not in (None, "", "None")):
            found.append(f"{spec['clusterIP']}/32")
    return found


# ip-masq-agent's built-in nonMasqueradeCIDRs (used when it runs without a ConfigMap). They include the TEST-NET ranges the
# lab's internet lives in, so such a cluster's pods reach the lab internet with their own IP, as they would in reality.
IP_MASQ_AGENT_DEFAULTS = ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "192.0.0.0/24", "192.0.2.0/24",
                          "192.88.99.0/24", "198.18.0.0/15", "198.51.100.0/24", "203.0.113.0/24", "240.0.0.0/4")
IP_MASQ_AGENT_CONFIGMAPS = {"ip-masq-agent": "config", "azure-ip-masq-agent-config-reconciled": "ip-masq-agent-reconciled",
                            "azure-ip-masq-agent-config": "ip-masq-agent"}
# CNI DaemonSets that leave pod egress masquerading to ip-masq-agent (GKE Dataplane V2, Azure CNI).
DELEGATING_CNIS = ("anetd", "azure-cns", "azure-cni", "ip-masq-agent", "azure-ip-masq-agent")
TRUE = ("true", "1", "yes", "on")


def _env_of(daemonset: dict) -> dict[str, str]:
    containers = (((daemonset.get("spec") or {}).get("template") or {}).get("spec") or {}).get("containers") or []
    return {e["name"]: str(e.get("value", "")) for c in containers for e in c.get("env") or [] if "name" in e}


def snat_policy(objects: list[dict], pod_supernet: str, vpc_cidr: str) -> tuple[bool, list[str], str]:
    """(enabled, non-masquerade CIDRs, why) for pod traffic leaving the nodes, read from kube-system's DaemonSets and ConfigMaps
    the way the components behave: the CNI masquerades (AWS VPC CNI unless AWS_VPC_K8S_CNI_EXTERNALSNAT, Calico natOutgoing,
    Cilium unless enable-ipv4-masquerade is false), or leaves it to ip-masq-agent (GKE Dataplane V2, Azure CNI, or an
    ip-masq-agent DaemonSet), whose ConfigMap's nonMasqueradeCIDRs (else its defaults) are not masqueraded. kube-proxy's
    masqueradeAll/clusterCIDR only concern Service traffic, so they do not change pod egress (as in a real cluster)."""
    system = [o for o in objects if (o.get("metadata") or {}).get("namespace") == "kube-system"]
    daemonsets = {o["metadata"]["name"]: o for o in system if o.get("kind") == "DaemonSet"}
    configmaps = {o["metadata"]["name"]: o for o in system if o.get("kind") == "ConfigMap"}
    agent_cidrs, agent_source = list(IP_MASQ_AGENT_DEFAULTS), "ip-masq-agent defaults"
    for name, key in IP_MASQ_AGENT_CONFIGMAPS.items():
        text = ((configmaps.get(name) or {}).get("data") or {}).get(key)
        if text is not None:
            config = yaml.safe_load(text) or {}
            agent_cidrs, agent_source = list(config.get("nonMasqueradeCIDRs") or []), f"ConfigMap {name}"
            break
    if "aws-node" in daemonsets:
        env = _env_of(daemonsets["aws-node"])
        if env.get("AWS_VPC_K8S_CNI_EXTERNALSNAT", "").lower() in TRUE:
            return False, [], "aws-node AWS_VPC_K8S_CNI_EXTERNALSNAT=true"
        excluded = [c.strip() for c in env.get("AWS_VPC_K8S_CNI_EXCLUDE_SNAT_CIDRS", "").split(",") if c.strip()]
        return True, [pod_supernet, vpc_cidr, *excluded], "AWS VPC CNI SNAT"
    if "cilium" in daemonsets:
        config = (configmaps.get("cilium-config") or {}).get("data") or {}
        if str(config.get("enable-ipv4-masquerade", config.get("masquerade", "true"))).lower() not in TRUE:
            return False, [], "cilium-config enable-ipv4-masquerade=false"
        if str(config.get("enable-ip-masq-agent", "false")).lower() not in TRUE:
            native = config.get("ipv4-native-routing-cidr")
            return True, [pod_supernet, *([native] if native else [])], "Cilium masquerading"
        return True, agent_cidrs, f"Cilium with ip-masq-agent ({agent_source})"
    if any(name in daemonsets for name in DELEGATING_CNIS) or agent_source != "ip-masq-agent defaults":
        return True, agent_cidrs, f"ip-masq-agent ({agent_source})"
    return True, [pod_supernet], "CNI masquerading (Calico natOutgoing, or the lab's default)"


class Dataplane:
    """Re-applies the lab's data plane when the objects that drive it change (debounced, in the server's event loop)."""

    def __init__(self, lab, cluster, lab_pod_refs: dict[str, str]):
        self.lab, self.cluster, self.lab_pod_refs = lab, cluster, lab_pod_refs
        self.pending: set[str] = set()
        self.handle = None
        cluster.store.listeners.append(self.on_event)

    def on_event(self, event) -> None:
        kind = {("networking.k8s.io", "networkpolicies"): "netpol", ("", "namespaces"): "netpol", ("", "pods"): "netpol"}.get(
            (event.group, event.plural))
        in_kube_system = event.obj["metadata"].get("namespace") == "kube-system"
        if event.plural == "configmaps" and in_kube_system:
            name = event.obj["metadata"]["name"]
            kind = "dns" if name == "coredns" else "snat" if name in IP_MASQ_AGENT_CONFIGMAPS or name == "cilium-config" else None
        if (event.group, event.plural) == ("apps", "daemonsets") and in_kube_system:
            kind = "snat"       # a CNI's env (e.g. AWS_VPC_K8S_CNI_EXTERNALSNAT) or an ip-masq-agent coming or going
        if event.plural == "pods" and not self._objects("networkpolicies"):
            kind = None  # pods coming and going only matter once some policy exists
        if kind:
            self.pending.add(kind)
            if self.handle is None:
                self.handle = asyncio.get_running_loop().call_later(DEBOUNCE_SECONDS, self.apply)

    def _objects(self, plural: str, group: str = "") -> list[dict]:
        rt = self.cluster.registry.lookup("networking.k8s.io" if plural == "networkpolicies" else group, "v1", plural)
        return self.cluster.store.list_of(rt, None)

    def apply(self) -> None:
        pending, self.pending, self.handle = self.pending, set(), None
        try:
            if "netpol" in pending:
                self.apply_network_policies()
            if "dns" in pending:
                configmap = self._configmap("coredns")
                if configmap and (configmap.get("data") or {}).get("Corefile"):
                    self.lab.write_corefile(self.cluster.name, configmap["data"]["Corefile"])
            if "snat" in pending:
                lab_cluster = self.lab.cluster(self.cluster.name)
                objects = self._objects("configmaps") + self._objects("daemonsets", "apps")
                enabled, cidrs, _why = snat_policy(objects, lab_cluster.pod_cidr, lab_cluster.vpc_cidr)
                self.lab.set_node_snat(self.cluster.name, enabled=enabled, non_masquerade_cidrs=cidrs)
        except (LabError, OSError, ValueError, yaml.YAMLError) as error:  # logged; the API keeps serving
            print(f"kdlab.apiserver: data plane of cluster {self.cluster.name}: {error}", flush=True)

    def _configmap(self, name: str) -> dict | None:
        return self.cluster.store.get(self.cluster.registry.lookup("", "v1", "configmaps"), "kube-system", name)

    def apply_network_policies(self) -> None:
        pods = self._objects("pods")
        namespaces = {n["metadata"]["name"]: n for n in self._objects("namespaces")}
        policies, services = self._objects("networkpolicies"), self._objects("services")
        for pod in pods:
            ref = self.lab_pod_refs.get(f"{pod['metadata']['namespace']}/{pod['metadata']['name']}")
            if ref:  # only pods the lab built have a network namespace and an egress chain
                self.lab.set_pod_egress_rules(self.cluster.name, ref, egress_rules(pod, policies, pods, namespaces, services))
