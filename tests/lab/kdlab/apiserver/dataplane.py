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


def snat_settings(kube_proxy_conf: str | None, ip_masq_config: str | None) -> tuple[bool, list[str]]:
    """(enabled, non-masquerade CIDRs): ip-masq-agent wins when present, else kube-proxy's masqueradeAll/clusterCIDR."""
    if ip_masq_config is not None:
        config = yaml.safe_load(ip_masq_config) or {}
        return True, list(config.get("nonMasqueradeCIDRs") or [])
    config = yaml.safe_load(kube_proxy_conf or "") or {}
    if (config.get("iptables") or {}).get("masqueradeAll"):
        return True, []
    if config.get("clusterCIDR"):
        return True, [config["clusterCIDR"]]
    return False, []


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
        if event.plural == "configmaps" and event.obj["metadata"].get("namespace") == "kube-system":
            kind = {"coredns": "dns", "kube-proxy": "snat", "ip-masq-agent": "snat"}.get(event.obj["metadata"]["name"])
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
                proxy, masq = self._configmap("kube-proxy"), self._configmap("ip-masq-agent")
                enabled, cidrs = snat_settings((proxy or {}).get("data", {}).get("config.conf"),
                                               (masq or {}).get("data", {}).get("config") if masq else None)
                self.lab.set_node_snat(self.cluster.name, enabled=enabled, non_masquerade_cidrs=cidrs)
        except (LabError, OSError, ValueError) as error:  # logged; the API keeps serving
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
