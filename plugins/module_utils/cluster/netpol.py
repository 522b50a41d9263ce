"""Egress decisions for one pod under Kubernetes network policy, explained.

``PolicySet(objects)`` indexes NetworkPolicies, AdminNetworkPolicies, the BaselineAdminNetworkPolicy,
CiliumNetworkPolicies (and CiliumClusterwideNetworkPolicies) together with the Pods, Namespaces, Nodes,
Services and kubernetes Endpoints/EndpointSlices they refer to. ``PolicySet.egress(source, destination,
protocol, port)`` answers "may this pod send this packet?" with the policies and rules that decided it,
in words a platform engineer can act on. The model (which layer wins, what is implementation-defined and
how it is resolved here) is documented in docs/netpol.md.

The analysis is plain Python, stdlib only, no I/O: callers turn ``ValueError`` into a module failure. The section at
the end gathers the objects for ``netpol_egress_info``: from the cluster through a ``k8s.reader.ClusterReader``, or
from manifest files (``cluster.manifests``).
"""

import ipaddress
import re
import socket

from ansible_collections.kubediag.egress.plugins.module_utils.cluster.coredns import DEFAULT_DNS_SELECTOR, DNS_SERVICE
from ansible_collections.kubediag.egress.plugins.module_utils.cluster.destinations import cidr_samples, resolve_host
from ansible_collections.kubediag.egress.plugins.module_utils.cluster.manifests import load_manifests, manifest_objects
from ansible_collections.kubediag.egress.plugins.module_utils.k8s.reader import pod_not_found, selector_text

NETWORK_POLICY = "NetworkPolicy"
ADMIN_NETWORK_POLICY = "AdminNetworkPolicy"
BASELINE_ADMIN_NETWORK_POLICY = "BaselineAdminNetworkPolicy"
CILIUM_NETWORK_POLICY = "CiliumNetworkPolicy"
CILIUM_CLUSTERWIDE_NETWORK_POLICY = "CiliumClusterwideNetworkPolicy"
DEFAULT_TIER = "default"

PROTOCOLS = ("TCP", "UDP", "SCTP")
_PROTOCOL_BY_SPELLING = {spelling: proto for proto in PROTOCOLS for spelling in (proto, proto.lower(), proto.capitalize())}

DEFAULT_DNS_NAMESPACE = "kube-system"
DEFAULT_DNS_LABELS = {"k8s-app": "kube-dns"}

_SELECTOR_OPERATORS = ("In", "NotIn", "Exists", "DoesNotExist")
_CILIUM_ENTITIES = frozenset((
    "all", "world", "world-ipv4", "world-ipv6", "cluster", "host", "remote-node", "kube-apiserver",
    "health", "init", "ingress", "unmanaged", "none",
))
_CILIUM_UNMODELLED_PEERS = ("toServices", "toGroups", "toRequires")
_CILIUM_NAMESPACE_LABEL = "io.kubernetes.pod.namespace"
_CILIUM_NAMESPACE_LABELS_PREFIX = "io.cilium.k8s.namespace.labels."
_CILIUM_SERVICE_ACCOUNT_LABEL = "io.cilium.k8s.policy.serviceaccount"
_CILIUM_SOURCE_PREFIXES = ("k8s:", "any:")
_NAMESPACE_NAME_LABEL = "kubernetes.io/metadata.name"
_TERMINAL_POD_PHASES = ("Succeeded", "Failed")
# Bounded memo of parsed destinations: callers ask about the same few endpoints again and again.
_DESTINATION_CACHE_LIMIT = 65536


def _label_value(value):
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)


def _label_map(value, where):
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ValueError(f"{where}: labels must be a mapping of strings, got {type(value).__name__}")
    return {str(key): _label_value(val) for key, val in value.items()}


def _as_list(value, where):
    if value is None:
        return []
    if not isinstance(value, list):
        raise ValueError(f"{where}: expected a list, got {type(value).__name__}")
    return value


def _as_mapping(value, where):
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ValueError(f"{where}: expected a mapping, got {type(value).__name__}")
    return value


def _parse_ip(text):
    """(version, integer) for an IP string, or None when it is not one."""
    try:
        address = ipaddress.ip_address(text.strip() if isinstance(text, str) else text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.version, int(address)


def _format_ip(ip):
    return str(ipaddress.ip_address(ip[1]) if ip[0] == 4 else ipaddress.IPv6Address(ip[1]))


class Cidr:
    """A pre-parsed CIDR: membership is one mask and one compare."""

    __slots__ = ("mask", "network", "text", "version")

    def __init__(self, text, where):
        try:
            network = ipaddress.ip_network(str(text).strip(), strict=False)
        except ValueError:
            raise ValueError(f"{where}: {text!r} is not a CIDR such as 10.0.0.0/8 or 2001:db8::/32") from None
        self.version = network.version
        self.network = int(network.network_address)
        self.mask = int(network.netmask)
        self.text = str(text).strip()

    def contains(self, ip):
        return ip[0] == self.version and (ip[1] & self.mask) == self.network


class LabelSelector:
    """A compiled metav1.LabelSelector (matchLabels AND every matchExpression)."""

    __slots__ = ("expressions", "required", "text")

    def __init__(self, spec, where, key_normalizer=None):
        spec = _as_mapping(spec, where)
        unknown = set(spec) - {"matchLabels", "matchExpressions"}
        if unknown:
            raise ValueError(f"{where}: unknown label selector field(s) {sorted(unknown)}; expected matchLabels and/or matchExpressions")
        normalize = key_normalizer or str
        required = _label_map(spec.get("matchLabels"), f"{where}.matchLabels")
        self.required = tuple((normalize(key), value) for key, value in sorted(required.items()))
        expressions = []
        for index, expression in enumerate(_as_list(spec.get("matchExpressions"), f"{where}.matchExpressions")):
            here = f"{where}.matchExpressions[{index}]"
            expression = _as_mapping(expression, here)
            key, operator = expression.get("key"), expression.get("operator")
            if not key:
                raise ValueError(f"{here}: key is missing")
            if operator not in _SELECTOR_OPERATORS:
                raise ValueError(f"{here}: operator {operator!r} is not one of {', '.join(_SELECTOR_OPERATORS)}")
            values = [_label_value(value) for value in _as_list(expression.get("values"), f"{here}.values")]
            if operator in ("In", "NotIn") and not values:
                raise ValueError(f"{here}: operator {operator} needs a non-empty values list")
            if operator in ("Exists", "DoesNotExist") and values:
                raise ValueError(f"{here}: operator {operator} takes no values")
            expressions.append((normalize(str(key)), operator, frozenset(values)))
        self.expressions = tuple(expressions)
        self.text = self._describe()

    @property
    def selects_all(self):
        return not self.required and not self.expressions

    def has_key(self, key):
        return any(entry[0] == key for entry in self.required) or any(entry[0] == key for entry in self.expressions)

    def matches(self, labels):
        for key, value in self.required:
            if labels.get(key) != value:
                return False
        for key, operator, values in self.expressions:
            if operator == "In":
                if labels.get(key) not in values:
                    return False
            elif operator == "NotIn":
                if key in labels and labels[key] in values:
                    return False
            elif operator == "Exists":
                if key not in labels:
                    return False
            elif key in labels:
                return False
        return True

    def _describe(self):
        parts = [f"{key}={value}" for key, value in self.required]
        for key, operator, values in self.expressions:
            listed = ",".join(sorted(values))
            parts.append({"In": f"{key} in ({listed})", "NotIn": f"{key} notin ({listed})", "Exists": key, "DoesNotExist": f"!{key}"}[operator])
        return ",".join(parts) if parts else "{}"


def _cilium_label_key(key):
    for prefix in _CILIUM_SOURCE_PREFIXES:
        if key.startswith(prefix):
            return key[len(prefix):]
    return key


class Identity:
    """Everything a selector can look at: namespace, its labels, pod labels, service account.

    Pods sharing an identity share every selector result, so decisions are cached per identity.
    """

    __slots__ = ("cilium_labels", "labels", "namespace", "namespace_labels", "service_account")

    def __init__(self, namespace, labels, namespace_labels, service_account):
        self.namespace = namespace
        self.labels = labels
        self.namespace_labels = namespace_labels
        self.service_account = service_account
        cilium = dict(labels)
        cilium[_CILIUM_NAMESPACE_LABEL] = namespace
        cilium[_CILIUM_SERVICE_ACCOUNT_LABEL] = service_account
        for key, value in namespace_labels.items():
            cilium[_CILIUM_NAMESPACE_LABELS_PREFIX + key] = value
        self.cilium_labels = cilium


class Pod:
    __slots__ = ("host_network", "identity", "ips", "name", "named_ports", "namespace", "node_name", "ref")

    def __init__(self, ref, namespace, name, identity, ips, host_network, node_name, named_ports):
        self.ref = ref
        self.namespace = namespace
        self.name = name
        self.identity = identity
        self.ips = ips
        self.host_network = host_network
        self.node_name = node_name
        self.named_ports = named_ports


class Destination:
    """Where a packet goes: an IP, and the pod or node behind it when the PolicySet knows one."""

    __slots__ = ("address", "api_server", "hostname", "identity", "ip", "node", "notes", "pod")

    def __init__(self, ip, pod, node, hostname, api_server, notes, address):
        self.ip = ip
        self.pod = pod
        self.identity = pod.identity if pod is not None else None
        self.node = node
        self.hostname = hostname
        self.api_server = api_server
        self.notes = notes
        self.address = address

    @property
    def in_cluster(self):
        return self.pod is not None or self.node is not None


# ---------------------------------------------------------------- peers (each answers matches(dest, source))

class _AnyPeer:
    text = "any destination"

    @staticmethod
    def matches(dest, source):
        return True


ANY_PEER = _AnyPeer()


class SelectorPeer:
    """Pods chosen by namespace and pod selectors (NetworkPolicy and AdminNetworkPolicy peers)."""

    __slots__ = ("cache", "namespace", "namespace_selector", "pod_selector", "text")

    def __init__(self, namespace, namespace_selector, pod_selector, text):
        self.namespace = namespace
        self.namespace_selector = namespace_selector
        self.pod_selector = pod_selector
        self.cache = {}
        self.text = text

    def matches(self, dest, source):
        identity = dest.identity
        if identity is None:
            return False
        hit = self.cache.get(identity)
        if hit is None:
            hit = self.cache[identity] = (
                (self.namespace is None or identity.namespace == self.namespace)
                and (self.namespace_selector is None or self.namespace_selector.matches(identity.namespace_labels))
                and (self.pod_selector is None or self.pod_selector.matches(identity.labels))
            )
        return hit


class CidrPeer:
    """ipBlock / networks / toCIDR(Set): a CIDR minus exceptions; ``outside_only`` is Cilium's "not an endpoint or node"."""

    __slots__ = ("cidr", "excepts", "outside_only", "text")

    def __init__(self, cidr, excepts, outside_only, text):
        self.cidr = cidr
        self.excepts = excepts
        self.outside_only = outside_only
        self.text = text

    def matches(self, dest, source):
        ip = dest.ip
        if ip is None or not self.cidr.contains(ip):
            return False
        if self.outside_only and dest.in_cluster:
            return False
        return not any(excluded.contains(ip) for excluded in self.excepts)


class NodePeer:
    """AdminNetworkPolicy ``nodes`` / Cilium ``toNodes``: the IPs of nodes whose labels match."""

    __slots__ = ("selector", "text")

    def __init__(self, selector, text):
        self.selector = selector
        self.text = text

    def matches(self, dest, source):
        return dest.node is not None and self.selector.matches(dest.node.labels)


class CiliumEndpointPeer:
    """Cilium toEndpoints: a selector over the endpoint's labels (k8s labels + namespace + namespace labels)."""

    __slots__ = ("cache", "selector", "text")

    def __init__(self, selector, text):
        self.selector = selector
        self.cache = {}
        self.text = text

    def matches(self, dest, source):
        identity = dest.identity
        if identity is None:
            return False
        hit = self.cache.get(identity)
        if hit is None:
            hit = self.cache[identity] = self.selector.matches(identity.cilium_labels)
        return hit


class EntityPeer:
    __slots__ = ("entities", "text")

    def __init__(self, entities, text):
        self.entities = entities
        self.text = text

    def matches(self, dest, source):
        entities = self.entities
        if "all" in entities:
            return True
        if dest.api_server and "kube-apiserver" in entities:
            return True
        if dest.pod is not None:
            return "cluster" in entities
        if dest.node is not None:
            if "cluster" in entities:
                return True
            local = source is not None and dest.node.name == source.node_name
            return ("host" if local else "remote-node") in entities
        if dest.ip is None:
            return False
        return "world" in entities or f"world-ipv{dest.ip[0]}" in entities


class FqdnPeer:
    """Cilium toFQDNs / ANP domainNames: needs the host name the pod resolved (``hostname=``)."""

    __slots__ = ("patterns", "text")

    def __init__(self, patterns, text):
        self.patterns = patterns
        self.text = text

    def matches(self, dest, source):
        return dest.hostname is not None and any(pattern.fullmatch(dest.hostname) for pattern in self.patterns)


LABEL_CHARACTERS = frozenset("-abcdefghijklmnopqrstuvwxyz0123456789_")


def _label_glob_matches(glob, label):
    """One label against a glob whose `*` stands for any run of label characters, without backtracking.

    Greedy two-pointer wildcard matching: on a mismatch only the last `*` is widened, so the cost is at most
    len(glob) * len(label) steps however many stars the policy repeats (a regex backtracks exponentially there).
    """
    g = n = 0
    star = resume = -1
    while n < len(label):
        if g < len(glob) and glob[g] == "*":
            star, resume = g, n
            g += 1
        elif g < len(glob) and glob[g] == label[n]:
            g += 1
            n += 1
        elif star >= 0 and label[resume] in LABEL_CHARACTERS:
            resume += 1
            g, n = star + 1, resume
        else:
            return False
    return all(char == "*" for char in glob[g:])


class FqdnPattern:
    """A compiled Cilium matchPattern: labels are globs; None (a `**.`) stands for one or more whole labels."""

    __slots__ = ("labels", "match_all")

    def __init__(self, labels, match_all=False):
        self.labels = labels
        self.match_all = match_all

    def fullmatch(self, hostname):
        if self.match_all:
            return bool(hostname)
        name = hostname.lower().rstrip(".").split(".")
        # reachable[j]: the pattern labels seen so far can cover the first j labels of the name.
        reachable = [True] + [False] * len(name)
        for glob in self.labels:
            following = [False] * (len(name) + 1)
            for j in range(len(name)):
                if not reachable[j] and not (glob is None and following[j]):
                    continue
                if glob is None:
                    if all(char in LABEL_CHARACTERS for char in name[j]) and name[j]:
                        following[j + 1] = True
                elif _label_glob_matches(glob, name[j]):
                    following[j + 1] = True
            reachable = following
        return reachable[len(name)]


def _fqdn_pattern(text, where, leading_wildcard_any_depth=False):
    """Cilium matchPattern (`*` = one label's characters, `**.` = any subdomains) or, for ANP, `*.` = any subdomains."""
    name = str(text).strip().lower().rstrip(".")
    if not name:
        raise ValueError(f"{where}: empty name")
    if name == "*":
        return FqdnPattern([], match_all=True)
    if leading_wildcard_any_depth:
        if "*" in name[2:] or ("*" in name and not name.startswith("*.")):
            raise ValueError(f"{where}: {text!r} may only start with a '*.' wildcard, e.g. *.example.com")
        name = "**." + name[2:] if name.startswith("*.") else name
    labels = name.split(".")
    if "" in labels:
        raise ValueError(f"{where}: {text!r} has an empty label")
    # A `**` label spans subdomains only in front of another label; a trailing one is a plain glob.
    return FqdnPattern([None if label == "**" and i < len(labels) - 1 else label for i, label in enumerate(labels)])


# ---------------------------------------------------------------- ports

class PortSpec:
    __slots__ = ("end", "l7", "name", "protocol", "start", "text")

    def __init__(self, protocol, start=None, end=None, name=None, l7=None):
        self.protocol = protocol
        self.start = start
        self.end = end if end is not None else start
        self.name = name
        self.l7 = l7
        shown = protocol or "ANY"
        if name is not None:
            self.text = f"{shown} named port {name}"
        elif start is None:
            self.text = f"{shown} (all ports)"
        elif self.end != start:
            self.text = f"{shown} {start}-{self.end}"
        else:
            self.text = f"{shown} {start}"

    def matches(self, protocol, port, dest):
        if self.protocol is not None and self.protocol != protocol:
            return False
        if self.name is not None:
            return port is not None and dest.pod is not None and (self.name, protocol, port) in dest.pod.named_ports
        if self.start is None:
            return True
        if port is None:
            return self.start <= 1 and self.end >= 65535
        return self.start <= port <= self.end


def _port_number(value, where):
    if isinstance(value, bool):
        raise ValueError(f"{where}: {value!r} is not a port number (1-65535)")
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    if not isinstance(value, int) or not 1 <= value <= 65535:
        raise ValueError(f"{where}: {value!r} is not a port number (1-65535)")
    return value


def _protocol(value, where, default="TCP", allow_any=False):
    if value is None:
        return default
    text = str(value).upper()
    if allow_any and text == "ANY":
        return None
    if text not in PROTOCOLS:
        allowed = ", ".join(PROTOCOLS + (("ANY",) if allow_any else ()))
        raise ValueError(f"{where}: protocol {value!r} is not one of {allowed}")
    return text


def _port_or_name(value, where):
    """(number, None) or (None, name): IntOrString as the API allows it."""
    if isinstance(value, str) and not value.strip().isdigit():
        name = value.strip()
        if not name:
            raise ValueError(f"{where}: empty port name")
        return None, name
    return _port_number(value, where), None


# ---------------------------------------------------------------- rules and policies

class Rule:
    """One egress rule: peers (None = any destination), ports (None = any port and protocol)."""

    __slots__ = ("action", "caveats", "index", "kind", "label", "name", "peers", "policy", "ports", "ports_text", "priority", "to_text")

    def __init__(self, kind, policy, label, index, action, peers, ports, caveats=(), name=None, priority=None):
        self.kind = kind
        self.policy = policy
        self.label = label
        self.index = index
        self.action = action
        self.peers = peers
        self.ports = ports
        self.caveats = tuple(caveats)
        self.name = name
        self.priority = priority
        self.to_text = "any destination" if peers is None else ("no destination" if not peers else "; ".join(peer.text for peer in peers))
        self.ports_text = "all ports" if ports is None else ("no port" if not ports else ", ".join(port.text for port in ports))

    def matched_peer(self, dest, source):
        if self.peers is None:
            return ANY_PEER
        for peer in self.peers:
            if peer.matches(dest, source):
                return peer
        return None

    def matched_port(self, protocol, port, dest):
        if self.ports is None:
            return ANY_PORT
        for spec in self.ports:
            if spec.matches(protocol, port, dest):
                return spec
        return None

    def title(self):
        shown = f"{self.kind} {self.policy}"
        if self.priority is not None:
            shown += f" (priority {self.priority})"
        shown += f" {self.label}"
        if self.name:
            shown += f" {self.name!r}"
        return shown

    def reference(self):
        return {"policy": self.policy, "kind": self.kind, "rule_index": self.index, "rule": self.label}


ANY_PORT = PortSpec(None)
ANY_PORT.text = "all ports"


class Policy:
    """A compiled policy (one per Cilium spec): who it selects and its egress rules."""

    __slots__ = (
        "cache",
        "deny_rules",
        "directions",
        "dns_proxy",
        "egress_isolates",
        "isolation_text",
        "kind",
        "namespace",
        "priority",
        "ref",
        "rules",
        "subject",
    )

    def __init__(self, kind, ref, namespace, subject, directions):
        self.kind = kind
        self.ref = ref
        self.namespace = namespace
        self.subject = subject
        self.directions = directions
        self.egress_isolates = False
        self.rules = []
        self.deny_rules = []
        self.priority = None
        self.dns_proxy = False
        self.isolation_text = ""
        self.cache = {}

    def selects(self, identity):
        hit = self.cache.get(identity)
        if hit is None:
            hit = self.cache[identity] = self.subject(identity)
        return hit


class _Plan:
    """Everything about one source identity that does not depend on the destination."""

    __slots__ = (
        "admin_rules",
        "baseline_rules",
        "cilium_deny_rules",
        "cilium_isolating",
        "cilium_rules",
        "dns_proxy",
        "isolating_refs",
        "isolation_reasons",
        "np_isolating",
        "np_rules",
        "selected_by",
    )

    def __init__(self, policies):
        admin = sorted((p for p in policies if p.kind == ADMIN_NETWORK_POLICY and p.rules), key=lambda p: (p.priority, p.ref))
        self.admin_rules = [rule for policy in admin for rule in policy.rules]
        self.baseline_rules = [rule for p in policies if p.kind == BASELINE_ADMIN_NETWORK_POLICY for rule in p.rules]
        self.np_isolating = [p for p in policies if p.kind == NETWORK_POLICY and p.egress_isolates]
        self.np_rules = [rule for p in self.np_isolating for rule in p.rules]
        cilium = [p for p in policies if p.kind in (CILIUM_NETWORK_POLICY, CILIUM_CLUSTERWIDE_NETWORK_POLICY)]
        self.cilium_isolating = [p for p in cilium if p.egress_isolates]
        self.cilium_rules = [rule for p in cilium for rule in p.rules]
        self.cilium_deny_rules = [rule for p in cilium for rule in p.deny_rules]
        self.dns_proxy = any(p.dns_proxy for p in cilium)
        isolating = self.np_isolating + self.cilium_isolating
        self.selected_by = sorted({p.ref for p in isolating})
        self.isolation_reasons = [p.isolation_text for p in isolating]
        self.isolating_refs = ", ".join(sorted({p.ref for p in isolating}))


# ---------------------------------------------------------------- the set

class Node:
    __slots__ = ("ips", "labels", "name")

    def __init__(self, name, labels, ips):
        self.name = name
        self.labels = labels
        self.ips = ips


class PolicySet:
    """An index over cluster objects that answers egress questions for pods.

    ``objects``: Kubernetes objects as dicts (List kinds are unpacked). Kinds other than those listed in the
    module docstring are ignored, so a whole ``kubectl get -o json`` dump can be passed. ``not_checked`` lists the
    entries left out because they cannot be evaluated (``{what, reason: invalid, message}``), as a named container port
    without a containerPort in an offline manifest.
    """

    def __init__(self, objects):
        if isinstance(objects, dict):
            objects = [objects]
        if not isinstance(objects, (list, tuple)):
            raise ValueError(f"PolicySet: objects must be a list of Kubernetes objects (dicts), got {type(objects).__name__}")
        by_kind = {}
        for where, kind, obj in _flatten(objects):
            by_kind.setdefault(kind, []).append((where, obj))
        self._namespace_labels = {}
        for where, obj in by_kind.get("Namespace", []):
            name, _namespace, labels = _metadata(obj, where, namespaced=False)
            labels.setdefault(_NAMESPACE_NAME_LABEL, name)
            self._namespace_labels[name] = labels
        self._nodes = {}
        self._node_by_ip = {}
        for where, obj in by_kind.get("Node", []):
            self._add_node(where, obj)
        self.not_checked = []
        self._identities = {}
        self._pods = {}
        self._pod_by_ip = {}
        for where, obj in by_kind.get("Pod", []):
            self._add_pod(where, obj)
        self._api_server_ips = set()
        self._service_by_ip = {}
        for where, obj in by_kind.get("Endpoints", []) + by_kind.get("EndpointSlice", []):
            self._add_api_server_endpoints(where, obj)
        for where, obj in by_kind.get("Service", []):
            self._add_service(where, obj)
        self._policies = []
        self._policies_by_namespace = {}
        self._cluster_policies = []
        for kind, compile_policy in (
            (NETWORK_POLICY, _compile_network_policy),
            (ADMIN_NETWORK_POLICY, _compile_admin_policy),
            (BASELINE_ADMIN_NETWORK_POLICY, _compile_admin_policy),
            (CILIUM_NETWORK_POLICY, _compile_cilium_policy),
            (CILIUM_CLUSTERWIDE_NETWORK_POLICY, _compile_cilium_policy),
        ):
            for where, obj in by_kind.get(kind, []):
                for policy in compile_policy(kind, where, obj):
                    self._policies.append(policy)
                    if policy.namespace is None:
                        self._cluster_policies.append(policy)
                    else:
                        self._policies_by_namespace.setdefault(policy.namespace, []).append(policy)
        self._plans = {}
        self._destinations = {}
        self.counts = {kind: len(items) for kind, items in sorted(by_kind.items())}

    # ------------------------------------------------------------ indexing

    def _namespace(self, name):
        labels = self._namespace_labels.get(name)
        if labels is None:
            # The API server labels every namespace with its name (1.22+): a namespace we were not given still has it.
            labels = self._namespace_labels[name] = {_NAMESPACE_NAME_LABEL: name}
        return labels

    def _add_node(self, where, obj):
        name, _namespace, labels = _metadata(obj, where, namespaced=False)
        ips = []
        for index, address in enumerate(_as_list(_as_mapping(obj.get("status"), f"{where}.status").get("addresses"), f"{where}.status.addresses")):
            address = _as_mapping(address, f"{where}.status.addresses[{index}]")
            if address.get("type") in ("InternalIP", "ExternalIP"):
                ip = _parse_ip(address.get("address"))
                if ip is None:
                    raise ValueError(f"{where}.status.addresses[{index}]: {address.get('address')!r} is not an IP address")
                ips.append(ip)
        node = Node(name, labels, ips)
        self._nodes[name] = node
        for ip in ips:
            self._node_by_ip[ip] = node

    def _add_pod(self, where, obj):
        name, namespace, labels = _metadata(obj, where, namespaced=True)
        spec = _as_mapping(obj.get("spec"), f"{where}.spec")
        status = _as_mapping(obj.get("status"), f"{where}.status")
        service_account = str(spec.get("serviceAccountName") or spec.get("serviceAccount") or "default")
        key = (namespace, frozenset(labels.items()), service_account)
        identity = self._identities.get(key)
        if identity is None:
            identity = self._identities[key] = Identity(namespace, labels, self._namespace(namespace), service_account)
        texts = [entry.get("ip") for entry in _as_list(status.get("podIPs"), f"{where}.status.podIPs") if isinstance(entry, dict)]
        if not texts and status.get("podIP"):
            texts = [status["podIP"]]
        ips = []
        for text in texts:
            ip = _parse_ip(text)
            if ip is None:
                raise ValueError(f"{where}.status.podIPs: {text!r} is not an IP address")
            ips.append(ip)
        named_ports = set()
        for c_index, container in enumerate(_as_list(spec.get("containers"), f"{where}.spec.containers")):
            container = _as_mapping(container, f"{where}.spec.containers[{c_index}]")
            for p_index, port in enumerate(_as_list(container.get("ports"), f"{where}.spec.containers[{c_index}].ports")):
                here = f"{where}.spec.containers[{c_index}].ports[{p_index}]"
                port = _as_mapping(port, here)
                if port.get("name"):
                    # One malformed port (an offline manifest the API server would refuse) costs only the policies that
                    # name it; the rest of the evaluation stands, and not_checked says what was left out.
                    try:
                        number = _port_number(port.get("containerPort"), f"{here}.containerPort")
                        protocol = _protocol(port.get("protocol"), here)
                    except ValueError as error:
                        self.not_checked.append({"what": f"pod {namespace}/{name} port {port['name']!r}", "reason": "invalid",
                                                 "message": f"{error}: policies naming port {port['name']!r} do not match this pod"})
                        continue
                    named_ports.add((str(port["name"]), protocol, number))
        host_network = bool(spec.get("hostNetwork"))
        ref = f"{namespace}/{name}"
        pod = Pod(ref, namespace, name, identity, ips, host_network, spec.get("nodeName"), frozenset(named_ports))
        self._pods[ref] = pod
        if not host_network and status.get("phase") not in _TERMINAL_POD_PHASES:
            for ip in ips:
                self._pod_by_ip[ip] = pod

    def _add_api_server_endpoints(self, where, obj):
        name, namespace, labels = _metadata(obj, where, namespaced=True)
        if namespace != "default":
            return
        if obj.get("kind") == "EndpointSlice" or "endpoints" in obj:
            if labels.get("kubernetes.io/service-name") != "kubernetes":
                return
            addresses = [a for e in _as_list(obj.get("endpoints"), f"{where}.endpoints") for a in _as_list(_as_mapping(e, where).get("addresses"), where)]
        else:
            if name != "kubernetes":
                return
            addresses = [_as_mapping(a, where).get("ip") for s in _as_list(obj.get("subsets"), f"{where}.subsets")
                         for a in _as_list(_as_mapping(s, where).get("addresses"), where)]
        for text in addresses:
            ip = _parse_ip(text)
            if ip is not None:
                self._api_server_ips.add(ip)

    def _add_service(self, where, obj):
        name, namespace, _labels = _metadata(obj, where, namespaced=True)
        spec = _as_mapping(obj.get("spec"), f"{where}.spec")
        for text in _as_list(spec.get("clusterIPs"), f"{where}.spec.clusterIPs") or [spec.get("clusterIP")]:
            ip = _parse_ip(text) if text and text != "None" else None
            if ip is not None:
                self._service_by_ip[ip] = f"{namespace}/{name}"

    def _plan(self, identity):
        plan = self._plans.get(identity)
        if plan is None:
            candidates = self._policies_by_namespace.get(identity.namespace, []) + self._cluster_policies
            plan = self._plans[identity] = _Plan([p for p in candidates if p.selects(identity)])
        return plan

    # ------------------------------------------------------------ inputs

    def _source(self, source):
        pod = self._pods.get(source)
        if pod is not None:
            return pod
        if not isinstance(source, str) or source.count("/") != 1 or not all(source.split("/")):
            raise ValueError(f"source {source!r} must be a pod as 'namespace/name', e.g. 'shop/web-0'")
        raise ValueError(f"source pod {source} is not among the {len(self._pods)} pods given to PolicySet; check the namespace and name, "
                         "and that the pod list was fetched from the right cluster")

    def _destination(self, destination, hostname):
        key = (destination, hostname)
        dest = self._destinations.get(key)
        if dest is not None:
            return dest
        if not isinstance(destination, str) or not destination.strip():
            raise ValueError(f"destination {destination!r} must be an IP address (v4 or v6) or a pod as 'namespace/name'")
        if hostname is not None:
            if not isinstance(hostname, str) or not hostname.strip() or any(c.isspace() for c in hostname.strip()):
                raise ValueError(f"hostname {hostname!r} must be a DNS name such as api.example.com")
            hostname = hostname.strip().lower().rstrip(".")
        text = destination.strip()
        notes = []
        ip = _parse_ip(text)
        pod = None
        if ip is None:
            if "/" in text and _is_network(text):
                raise ValueError(f"destination {text!r} is a CIDR: ask about one address of it, e.g. its first host")
            if text.count("/") != 1 or not all(text.split("/")):
                raise ValueError(f"destination {text!r} is neither an IP address (v4 or v6) nor a pod as 'namespace/name'")
            pod = self._pods.get(text)
            if pod is None:
                raise ValueError(f"destination pod {text} is not among the {len(self._pods)} pods given to PolicySet; check the namespace and name")
            ip = pod.ips[0] if pod.ips else None
            if ip is None:
                notes.append(f"destination pod {pod.ref} has no IP yet: only pod/namespace selectors can match it, ipBlock rules cannot")
        else:
            pod = self._pod_by_ip.get(ip)
            if pod is not None:
                notes.append(f"destination {_format_ip(ip)} is pod {pod.ref}: evaluated with its labels and namespace")
        node = self._node_by_ip.get(ip) if ip is not None else None
        if pod is not None and pod.host_network:
            notes.append(f"destination pod {pod.ref} uses hostNetwork: pod and namespace selectors do not match it; "
                         "its traffic is addressed to the node, so only ipBlock/CIDR and node rules apply")
            node = node or self._nodes.get(pod.node_name)
            pod = None
        service = self._service_by_ip.get(ip) if ip is not None else None
        if service is not None:
            notes.append(f"destination {_format_ip(ip)} is the ClusterIP of Service {service}: policies are enforced after kube-proxy DNAT, "
                         "on the backend pod IPs, so ask about a backend pod instead")
        if ip is None:
            address = f"pod {text} (no IP)"
        else:
            shown = _format_ip(ip)
            address = f"[{shown}]" if ip[0] == 6 else shown
        dest = Destination(ip, pod, node, hostname, ip in self._api_server_ips, tuple(notes), address)
        if len(self._destinations) >= _DESTINATION_CACHE_LIMIT:
            self._destinations.clear()
        self._destinations[key] = dest
        return dest

    # ------------------------------------------------------------ questions

    def policies_selecting(self, source):
        """Every policy of any kind whose subject includes the pod, with the directions it covers."""
        pod = self._source(source)
        found = []
        for policy in self._policies:
            if policy.selects(pod.identity):
                entry = {"policy": policy.ref, "kind": policy.kind, "policy_types": list(policy.directions)}
                if entry not in found:
                    found.append(entry)
        return found

    def egress(self, source, destination, protocol="TCP", port=None, hostname=None):
        """May pod ``source`` ("ns/pod") send ``protocol`` to ``destination`` (IP or "ns/pod") on ``port``?

        ``port=None`` asks whether every port is allowed. ``hostname`` is the DNS name the pod resolved to reach
        ``destination``; only FQDN rules (Cilium toFQDNs, ANP domainNames) use it.
        """
        pod = self._source(source)
        proto = _PROTOCOL_BY_SPELLING.get(protocol) if isinstance(protocol, str) else None
        if proto is None:
            raise ValueError(f"protocol {protocol!r} is not one of {', '.join(PROTOCOLS)}")
        if port is not None and (isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536):
            port = _port_number(port, "port")
        dest = self._destination(destination, hostname)
        target = f"{proto} {dest.address}:{port}" if port is not None else f"{proto} {dest.address} (any port)"
        result = {
            "source": pod.ref, "destination": destination, "protocol": proto, "port": port,
            "destination_pod": dest.pod.ref if dest.pod is not None else None,
            "allowed": True, "tier": DEFAULT_TIER, "isolated": False, "selected_by": [],
            "allowed_by": [], "denied_by": [], "reasons": list(dest.notes),
        }
        reasons = result["reasons"]
        if pod.host_network:
            reasons.append(f"source pod {pod.ref} uses hostNetwork: network policies do not apply to it (its traffic leaves with the node's IP)")
            return result
        plan = self._plan(pod.identity)
        result["selected_by"] = list(plan.selected_by)
        result["isolated"] = bool(plan.isolation_reasons)
        if self._admin_tier(plan, pod, dest, proto, port, target, result):
            return result
        if self._cilium_deny(plan, pod, dest, proto, port, target, result):
            return result
        if plan.isolation_reasons:
            self._isolated_tier(plan, pod, dest, proto, port, target, result)
            return result
        if self._baseline_tier(plan, pod, dest, proto, port, target, result):
            return result
        reasons.append(f"no NetworkPolicy selects {pod.ref} for egress: egress is not isolated, {target} is allowed by default")
        return result

    def _admin_tier(self, plan, pod, dest, proto, port, target, result):
        for rule in plan.admin_rules:
            peer, spec = self._match(rule, plan, pod, dest, proto, port, result["reasons"])
            if peer is None or spec is None:
                continue
            if rule.action == "Pass":
                result["reasons"].append(f"{rule.title()} passes {target} on to NetworkPolicy (to {peer.text}; {spec.text})")
                return False
            allowed = rule.action == "Allow"
            result.update(allowed=allowed, tier=ADMIN_NETWORK_POLICY)
            result["allowed_by" if allowed else "denied_by"].append(rule.reference())
            verb = "allows" if allowed else "denies"
            result["reasons"].append(f"{rule.title()} {verb} {target} (to {peer.text}; {spec.text}): AdminNetworkPolicy wins over NetworkPolicy")
            return True
        return False

    def _cilium_deny(self, plan, pod, dest, proto, port, target, result):
        for rule in plan.cilium_deny_rules:
            peer, spec = self._match(rule, plan, pod, dest, proto, port, result["reasons"])
            if peer is not None and spec is not None:
                result["denied_by"].append(rule.reference())
                result["reasons"].append(f"{rule.title()} denies {target} (to {peer.text}; {spec.text}): Cilium deny rules win over every allow")
        if result["denied_by"]:
            result.update(allowed=False, tier=CILIUM_NETWORK_POLICY)
            return True
        return False

    def _isolated_tier(self, plan, pod, dest, proto, port, target, result):
        reasons = result["reasons"]
        reasons.extend(plan.isolation_reasons)
        allowed_by = result["allowed_by"]
        for rules in (plan.np_rules, plan.cilium_rules):
            for rule in rules:
                peer, spec = self._match(rule, plan, pod, dest, proto, port, reasons)
                if peer is not None and spec is not None:
                    allowed_by.append(rule.reference())
                    line = f"{rule.title()} allows {target} (to {peer.text}; {spec.text})"
                    if spec.l7:
                        line += f"; L7 {spec.l7} rules then filter each request"
                    reasons.append(line)
        if allowed_by:
            result.update(allowed=True, tier=allowed_by[0]["kind"] if allowed_by[0]["kind"] == NETWORK_POLICY else CILIUM_NETWORK_POLICY)
            return
        result.update(allowed=False, tier=NETWORK_POLICY if plan.np_isolating else CILIUM_NETWORK_POLICY)
        for rule in plan.np_rules + plan.cilium_rules:
            reasons.append(self._near_miss(rule, plan, pod, dest, proto, port))
        reasons.append(f"no egress rule of {plan.isolating_refs} allows {target}")

    def _baseline_tier(self, plan, pod, dest, proto, port, target, result):
        for rule in plan.baseline_rules:
            peer, spec = self._match(rule, plan, pod, dest, proto, port, result["reasons"])
            if peer is None or spec is None:
                continue
            allowed = rule.action == "Allow"
            result.update(allowed=allowed, tier=BASELINE_ADMIN_NETWORK_POLICY)
            result["allowed_by" if allowed else "denied_by"].append(rule.reference())
            verb = "allows" if allowed else "denies"
            result["reasons"].append(f"{rule.title()} {verb} {target} (to {peer.text}; {spec.text}): "
                                     f"no NetworkPolicy isolates {pod.ref}, so the baseline decides")
            return True
        return False

    @staticmethod
    def _match(rule, plan, pod, dest, proto, port, reasons):
        """(peer, port spec) when the rule matches, else (None, None); records caveats that affect the answer."""
        peer = rule.matched_peer(dest, pod)
        if peer is None:
            if rule.caveats:
                reasons.extend(f"{rule.title()}: {caveat}" for caveat in rule.caveats)
            return None, None
        if isinstance(peer, FqdnPeer) and rule.kind != ADMIN_NETWORK_POLICY and not plan.dns_proxy:
            reasons.append(f"{rule.title()} names {dest.hostname} in toFQDNs, but no Cilium rule selecting {pod.ref} sends its DNS through the "
                           "DNS proxy (toPorts rules.dns), so Cilium never learns the name's IPs: the rule cannot match")
            return None, None
        spec = rule.matched_port(proto, port, dest)
        return (peer, spec) if spec is not None else (None, None)

    @staticmethod
    def _near_miss(rule, plan, pod, dest, proto, port):
        peer = rule.matched_peer(dest, pod)
        if peer is None:
            missing = ""
            if dest.hostname is None and rule.peers and any(isinstance(p, FqdnPeer) for p in rule.peers):
                missing = " (FQDN peers need the hostname= the pod resolved; none was given)"
            return f"{rule.title()}: destination does not match (to {rule.to_text}){missing}"
        shown = f"{proto} {port if port is not None else '(any port)'}"
        if rule.matched_port(proto, port, dest) is not None:
            return f"{rule.title()}: matches {peer.text} and {shown} only by name, and Cilium cannot learn that name's IPs (see above)"
        return f"{rule.title()}: destination matches ({peer.text}) but {shown} does not (ports {rule.ports_text})"

    def dns_egress(self, source, dns_pods=None):
        """Are UDP 53 and TCP 53 from ``source`` to every cluster DNS pod allowed?

        ``dns_pods``: None (pods labelled k8s-app=kube-dns in kube-system), a list of IPs / "ns/pod" strings,
        or ``{"namespace": ..., "selector": <LabelSelector>}``.
        """
        pod = self._source(source)
        targets = self._dns_targets(dns_pods)
        checks = []
        allowed_by_protocol = {}
        reasons = []
        for proto in ("UDP", "TCP"):
            answers = [(target, self.egress(pod.ref, target, proto, 53)) for target in targets]
            checks.extend({"destination": target, "protocol": proto, "port": 53, "allowed": answer["allowed"], "tier": answer["tier"],
                           "reasons": answer["reasons"]} for target, answer in answers)
            blocked = [(target, answer) for target, answer in answers if not answer["allowed"]]
            allowed_by_protocol[proto] = not blocked
            if not blocked:
                reasons.append(f"{proto} 53 to cluster DNS ({', '.join(targets)}) is allowed")
                continue
            first_target, first = blocked[0]
            scope = "all" if len(blocked) == len(targets) else f"{len(blocked)} of {len(targets)}"
            why = first["reasons"][-1] if first["reasons"] else "denied"
            line = f"{proto} 53 to {scope} cluster DNS pods is blocked (e.g. {first_target}: {why})"
            if scope != "all":
                line += ": lookups fail intermittently, depending on which DNS pod the Service picks"
            if proto == "TCP" and allowed_by_protocol["UDP"]:
                line += ": answers larger than 512 bytes (truncated, retried over TCP) will fail"
            reasons.append(line)
        return {
            "source": pod.ref, "targets": targets, "allowed": all(allowed_by_protocol.values()),
            "udp_allowed": allowed_by_protocol["UDP"], "tcp_allowed": allowed_by_protocol["TCP"],
            "checks": checks, "reasons": reasons,
        }

    def _dns_targets(self, dns_pods):
        if isinstance(dns_pods, str):
            dns_pods = [dns_pods]
        if isinstance(dns_pods, (list, tuple)):
            if not dns_pods or not all(isinstance(t, str) and t.strip() for t in dns_pods):
                raise ValueError(f"dns_pods {dns_pods!r} must be a non-empty list of IPs or 'namespace/name' pods")
            return [t.strip() for t in dns_pods]
        if dns_pods is None:
            namespace, selector = DEFAULT_DNS_NAMESPACE, LabelSelector({"matchLabels": DEFAULT_DNS_LABELS}, "default DNS selector")
        elif isinstance(dns_pods, dict) and set(dns_pods) <= {"namespace", "selector"} and dns_pods.get("namespace"):
            namespace = str(dns_pods["namespace"])
            selector = LabelSelector(dns_pods.get("selector") or {}, "dns_pods.selector")
        else:
            raise ValueError(f"dns_pods {dns_pods!r} must be None, a list of IPs or 'namespace/name' pods, "
                             "or {namespace: ..., selector: {matchLabels: ...}}")
        targets = sorted(pod.ref for pod in self._pods.values() if pod.namespace == namespace and selector.matches(pod.identity.labels))
        if not targets:
            raise ValueError(f"no pod in namespace {namespace} matches {selector.text}: pass the cluster DNS pods (IPs or 'namespace/name') as dns_pods")
        return targets


# ---------------------------------------------------------------- object parsing

def _is_network(text):
    try:
        ipaddress.ip_network(text, strict=False)
    except ValueError:
        return False
    return True


def _flatten(objects, where="objects"):
    for index, obj in enumerate(objects):
        here = f"{where}[{index}]"
        if not isinstance(obj, dict):
            raise ValueError(f"{here}: expected a Kubernetes object (a mapping), got {type(obj).__name__}")
        kind = obj.get("kind")
        if not isinstance(kind, str) or not kind:
            raise ValueError(f"{here}: the object has no kind; pass whole objects as the API returns them (kind, metadata, spec)")
        if kind.endswith("List") and isinstance(obj.get("items"), list):
            item_kind = kind[: -len("List")]
            items = [item if "kind" in item or not item_kind else dict(item, kind=item_kind) for item in obj["items"] if isinstance(item, dict)]
            yield from _flatten(items, f"{here}.items")
            continue
        yield f"{here} ({kind})", kind, obj


def _metadata(obj, where, namespaced):
    meta = _as_mapping(obj.get("metadata"), f"{where}.metadata")
    name = meta.get("name")
    if not isinstance(name, str) or not name:
        raise ValueError(f"{where}: metadata.name is missing; pass whole objects as the API returns them")
    namespace = meta.get("namespace")
    if namespaced and (not isinstance(namespace, str) or not namespace):
        raise ValueError(f"{where} {name}: metadata.namespace is missing")
    return name, namespace, _label_map(meta.get("labels"), f"{where} {name}: metadata.labels")


def _cidr_peer(cidr, excepts, where, outside_only, label):
    parsed = Cidr(cidr, where)
    excluded = [Cidr(text, f"{where}.except") for text in _as_list(excepts, f"{where}.except")]
    for item in excluded:
        if item.version != parsed.version or (item.network & parsed.mask) != parsed.network:
            raise ValueError(f"{where}: except {item.text} is not inside {parsed.text}")
    text = f"{label} {parsed.text}" + (f" except {', '.join(e.text for e in excluded)}" if excluded else "")
    return CidrPeer(parsed, excluded, outside_only, text)


def _network_policy_peer(peer, namespace, where):
    peer = _as_mapping(peer, where)
    ip_block = peer.get("ipBlock")
    pod_spec, ns_spec = peer.get("podSelector"), peer.get("namespaceSelector")
    if ip_block is not None:
        if pod_spec is not None or ns_spec is not None:
            raise ValueError(f"{where}: ipBlock cannot be combined with podSelector/namespaceSelector in one peer; split them into two peers")
        ip_block = _as_mapping(ip_block, f"{where}.ipBlock")
        if not ip_block.get("cidr"):
            raise ValueError(f"{where}.ipBlock: cidr is missing")
        return _cidr_peer(ip_block["cidr"], ip_block.get("except"), f"{where}.ipBlock", False, "ipBlock")
    if pod_spec is None and ns_spec is None:
        raise ValueError(f"{where}: a peer needs podSelector, namespaceSelector or ipBlock")
    pod_selector = LabelSelector(pod_spec, f"{where}.podSelector") if pod_spec is not None else None
    ns_selector = LabelSelector(ns_spec, f"{where}.namespaceSelector") if ns_spec is not None else None
    if ns_selector is None:
        # podSelector alone: pods in the policy's own namespace.
        pods_text = "all pods" if pod_selector.selects_all else f"pods {pod_selector.text}"
        return SelectorPeer(namespace, None, pod_selector if not pod_selector.selects_all else None, f"{pods_text} in namespace {namespace}")
    ns_text = "all namespaces" if ns_selector.selects_all else f"namespaces {ns_selector.text}"
    pods_text = "all pods" if pod_selector is None or pod_selector.selects_all else f"pods {pod_selector.text}"
    return SelectorPeer(None, ns_selector if not ns_selector.selects_all else None,
                        pod_selector if pod_selector is not None and not pod_selector.selects_all else None, f"{pods_text} in {ns_text}")


def _network_policy_ports(ports, where):
    specs = []
    for index, entry in enumerate(ports):
        here = f"{where}[{index}]"
        entry = _as_mapping(entry, here)
        proto = _protocol(entry.get("protocol"), here)
        if entry.get("port") is None:
            if entry.get("endPort") is not None:
                raise ValueError(f"{here}: endPort needs a numeric port")
            specs.append(PortSpec(proto))
            continue
        number, name = _port_or_name(entry["port"], f"{here}.port")
        end = entry.get("endPort")
        if end is not None:
            if name is not None:
                raise ValueError(f"{here}: endPort cannot be used with a named port ({name})")
            end = _port_number(end, f"{here}.endPort")
            if end < number:
                raise ValueError(f"{here}: endPort {end} is below port {number}")
        specs.append(PortSpec(proto, number, end, name))
    return specs


def _compile_network_policy(kind, where, obj):
    name, namespace, _labels = _metadata(obj, where, namespaced=True)
    ref = f"{namespace}/{name}"
    where = f"NetworkPolicy {ref}"
    spec = _as_mapping(obj.get("spec"), f"{where} spec")
    if "podSelector" not in spec:
        raise ValueError(f"{where}: spec.podSelector is missing (use {{}} to select every pod in the namespace)")
    selector = LabelSelector(spec.get("podSelector"), f"{where} spec.podSelector")
    types = spec.get("policyTypes")
    defaulted = types is None
    if defaulted:
        types = ["Ingress"] + (["Egress"] if "egress" in spec else [])
    types = [str(t) for t in _as_list(types, f"{where} spec.policyTypes")]
    for policy_type in types:
        if policy_type not in ("Ingress", "Egress"):
            raise ValueError(f"{where} spec.policyTypes: {policy_type!r} is not Ingress or Egress")

    def subject(identity):
        return identity.namespace == namespace and selector.matches(identity.labels)

    policy = Policy(kind, ref, namespace, subject, tuple(types))
    policy.egress_isolates = "Egress" in types
    egress = _as_list(spec.get("egress"), f"{where} spec.egress")
    for index, rule in enumerate(egress):
        here = f"{where} spec.egress[{index}]"
        rule = _as_mapping(rule, here)
        to = _as_list(rule.get("to"), f"{here}.to")
        peers = [_network_policy_peer(peer, namespace, f"{here}.to[{i}]") for i, peer in enumerate(to)] or None
        ports = _network_policy_ports(_as_list(rule.get("ports"), f"{here}.ports"), f"{here}.ports") or None
        policy.rules.append(Rule(kind, ref, f"egress[{index}]", index, "Allow", peers, ports))
    shown_types = ",".join(types)
    if defaulted:
        shown_types = f"defaulted to {shown_types} because spec.egress is set" if policy.egress_isolates else shown_types
    count = len(policy.rules)
    rules_text = "no egress rules" if not count else f"{count} egress rule{'s' if count > 1 else ''}"
    policy.isolation_text = f"selected by {ref} (policyTypes {shown_types}, {rules_text}): egress isolated"
    return [policy]


def _admin_subject(subject, where):
    subject = _as_mapping(subject, where)
    if ("namespaces" in subject) == ("pods" in subject):
        raise ValueError(f"{where}: set exactly one of subject.namespaces or subject.pods")
    if "namespaces" in subject:
        ns_selector = LabelSelector(subject["namespaces"], f"{where}.namespaces")
        return lambda identity: ns_selector.matches(identity.namespace_labels)
    pods = _as_mapping(subject["pods"], f"{where}.pods")
    ns_selector = LabelSelector(pods.get("namespaceSelector"), f"{where}.pods.namespaceSelector")
    pod_selector = LabelSelector(pods.get("podSelector"), f"{where}.pods.podSelector")
    return lambda identity: ns_selector.matches(identity.namespace_labels) and pod_selector.matches(identity.labels)


def _admin_peer(peer, where):
    peer = _as_mapping(peer, where)
    if len(peer) != 1:
        raise ValueError(f"{where}: a peer sets exactly one of namespaces, pods, nodes, networks, domainNames; got {sorted(peer) or 'none'}")
    (field, value), = peer.items()
    if field == "namespaces":
        selector = LabelSelector(value, f"{where}.namespaces")
        return [SelectorPeer(None, selector, None, "all namespaces" if selector.selects_all else f"namespaces {selector.text}")]
    if field == "pods":
        value = _as_mapping(value, f"{where}.pods")
        ns_selector = LabelSelector(value.get("namespaceSelector"), f"{where}.pods.namespaceSelector")
        pod_selector = LabelSelector(value.get("podSelector"), f"{where}.pods.podSelector")
        return [SelectorPeer(None, ns_selector, pod_selector, f"pods {pod_selector.text} in namespaces {ns_selector.text}")]
    if field == "nodes":
        selector = LabelSelector(value, f"{where}.nodes")
        return [NodePeer(selector, f"nodes {selector.text}")]
    if field == "networks":
        return [_cidr_peer(cidr, None, f"{where}.networks[{i}]", False, "network") for i, cidr in enumerate(_as_list(value, f"{where}.networks"))]
    if field == "domainNames":
        names = [str(n) for n in _as_list(value, f"{where}.domainNames")]
        return [FqdnPeer([_fqdn_pattern(n, f"{where}.domainNames", leading_wildcard_any_depth=True) for n in names], f"domainNames {', '.join(names)}")]
    raise ValueError(f"{where}: unknown peer field {field!r}; expected namespaces, pods, nodes, networks or domainNames")


def _admin_ports(ports, where):
    specs = []
    for index, entry in enumerate(ports):
        here = f"{where}[{index}]"
        entry = _as_mapping(entry, here)
        if len(entry) != 1:
            raise ValueError(f"{here}: set exactly one of portNumber, namedPort, portRange")
        (field, value), = entry.items()
        if field == "portNumber":
            value = _as_mapping(value, f"{here}.portNumber")
            specs.append(PortSpec(_protocol(value.get("protocol"), f"{here}.portNumber"), _port_number(value.get("port"), f"{here}.portNumber.port")))
        elif field == "namedPort":
            if not isinstance(value, str) or not value:
                raise ValueError(f"{here}.namedPort: expected a port name")
            # A named port takes its protocol from the destination container's port.
            specs.append(PortSpec(None, name=value))
        elif field == "portRange":
            value = _as_mapping(value, f"{here}.portRange")
            start, end = _port_number(value.get("start"), f"{here}.portRange.start"), _port_number(value.get("end"), f"{here}.portRange.end")
            if end < start:
                raise ValueError(f"{here}.portRange: end {end} is below start {start}")
            specs.append(PortSpec(_protocol(value.get("protocol"), f"{here}.portRange"), start, end))
        else:
            raise ValueError(f"{here}: unknown field {field!r}; expected portNumber, namedPort or portRange")
    return specs


def _compile_admin_policy(kind, where, obj):
    name = _metadata(obj, where, namespaced=False)[0]
    where = f"{kind} {name}"
    spec = _as_mapping(obj.get("spec"), f"{where} spec")
    subject = _admin_subject(spec.get("subject"), f"{where} spec.subject")
    directions = tuple(d for d, field in (("Ingress", "ingress"), ("Egress", "egress")) if spec.get(field))
    policy = Policy(kind, name, None, subject, directions)
    actions = ("Allow", "Deny", "Pass") if kind == ADMIN_NETWORK_POLICY else ("Allow", "Deny")
    if kind == ADMIN_NETWORK_POLICY:
        priority = spec.get("priority")
        if isinstance(priority, bool) or not isinstance(priority, int) or not 0 <= priority <= 1000:
            raise ValueError(f"{where} spec.priority: {priority!r} is not an integer 0-1000 (lower number = higher precedence)")
        policy.priority = priority
    for index, rule in enumerate(_as_list(spec.get("egress"), f"{where} spec.egress")):
        here = f"{where} spec.egress[{index}]"
        rule = _as_mapping(rule, here)
        action = rule.get("action")
        if action not in actions:
            raise ValueError(f"{here}: action {action!r} is not one of {', '.join(actions)}")
        to = _as_list(rule.get("to"), f"{here}.to")
        if not to:
            raise ValueError(f"{here}: `to` is empty; the API requires at least one peer")
        peers = [p for i, peer in enumerate(to) for p in _admin_peer(peer, f"{here}.to[{i}]")]
        ports = _admin_ports(_as_list(rule.get("ports"), f"{here}.ports"), f"{here}.ports") or None
        policy.rules.append(Rule(kind, name, f"egress[{index}]", index, action, peers, ports, name=rule.get("name"), priority=policy.priority))
    return [policy]


def _cilium_selector(spec, where, namespace, restrict_to_namespace):
    selector = LabelSelector(spec, where, key_normalizer=_cilium_label_key)
    reserved = [entry[0] for entry in selector.required if entry[0].startswith("reserved:")]
    if reserved:
        return EntityPeer(frozenset(key[len("reserved:"):] for key in reserved), f"entities {', '.join(reserved)}")
    if restrict_to_namespace and namespace is not None and not selector.has_key(_CILIUM_NAMESPACE_LABEL):
        # Cilium scopes a namespaced policy's endpoint selectors to its own namespace unless they name one.
        selector = LabelSelector({"matchLabels": dict(selector.required, **{_CILIUM_NAMESPACE_LABEL: namespace}),
                                  "matchExpressions": [{"key": k, "operator": o, "values": sorted(v)} for k, o, v in selector.expressions]}, where)
    return CiliumEndpointPeer(selector, f"endpoints {selector.text}")


def _cilium_ports(to_ports, where):
    specs = []
    for index, entry in enumerate(to_ports):
        here = f"{where}[{index}]"
        entry = _as_mapping(entry, here)
        rules = _as_mapping(entry.get("rules"), f"{here}.rules")
        l7 = ", ".join(sorted(k for k, v in rules.items() if v and k != "dns")) or None
        ports = _as_list(entry.get("ports"), f"{here}.ports")
        if not ports:
            specs.append(PortSpec(None, l7=l7))
        for p_index, port in enumerate(ports):
            p_here = f"{here}.ports[{p_index}]"
            port = _as_mapping(port, p_here)
            proto = _protocol(port.get("protocol"), p_here, default=None, allow_any=True)
            raw = port.get("port")
            if raw in (None, "", 0, "0"):
                specs.append(PortSpec(proto, l7=l7))
                continue
            number, name = _port_or_name(raw, f"{p_here}.port")
            end = port.get("endPort")
            end = _port_number(end, f"{p_here}.endPort") if end not in (None, 0) and name is None else None
            if end is not None and end < number:
                raise ValueError(f"{p_here}: endPort {end} is below port {number}")
            specs.append(PortSpec(proto, number, end, name, l7=l7))
    return specs


def _cilium_rule(kind, ref, label, index, rule, where, namespace, deny):
    rule = _as_mapping(rule, where)
    peers = []
    caveats = []
    for i, selector in enumerate(_as_list(rule.get("toEndpoints"), f"{where}.toEndpoints")):
        peers.append(_cilium_selector(selector, f"{where}.toEndpoints[{i}]", namespace, True))
    entities = [str(e).lower() for e in _as_list(rule.get("toEntities"), f"{where}.toEntities")]
    unknown = sorted(set(entities) - _CILIUM_ENTITIES)
    if unknown:
        raise ValueError(f"{where}.toEntities: unknown entities {unknown}; expected some of {sorted(_CILIUM_ENTITIES)}")
    if entities:
        peers.append(EntityPeer(frozenset(entities), f"entities {', '.join(entities)}"))
    for i, cidr in enumerate(_as_list(rule.get("toCIDR"), f"{where}.toCIDR")):
        peers.append(_cidr_peer(cidr, None, f"{where}.toCIDR[{i}]", True, "CIDR"))
    for i, entry in enumerate(_as_list(rule.get("toCIDRSet"), f"{where}.toCIDRSet")):
        entry = _as_mapping(entry, f"{where}.toCIDRSet[{i}]")
        if not entry.get("cidr"):
            caveats.append(f"toCIDRSet[{i}] uses {', '.join(sorted(entry)) or 'no cidr'}, which this evaluator does not resolve: treated as matching nothing")
            continue
        peers.append(_cidr_peer(entry["cidr"], entry.get("except"), f"{where}.toCIDRSet[{i}]", True, "CIDR"))
    for i, selector in enumerate(_as_list(rule.get("toNodes"), f"{where}.toNodes")):
        node_selector = LabelSelector(selector, f"{where}.toNodes[{i}]", key_normalizer=_cilium_label_key)
        peers.append(NodePeer(node_selector, f"nodes {node_selector.text}"))
    fqdns = _as_list(rule.get("toFQDNs"), f"{where}.toFQDNs")
    if fqdns:
        patterns, names = [], []
        for i, entry in enumerate(fqdns):
            entry = _as_mapping(entry, f"{where}.toFQDNs[{i}]")
            for field in ("matchName", "matchPattern"):
                if entry.get(field):
                    names.append(str(entry[field]))
                    patterns.append(re.compile(re.escape(str(entry[field]).lower().rstrip("."))) if field == "matchName"
                                    else _fqdn_pattern(entry[field], f"{where}.toFQDNs[{i}].matchPattern"))
        peers.append(FqdnPeer(patterns, f"FQDNs {', '.join(names)}"))
    for field in _CILIUM_UNMODELLED_PEERS:
        if rule.get(field):
            caveats.append(f"{field} is not evaluated here: treated as matching nothing, check it by hand")
    to_ports = _as_list(rule.get("toPorts"), f"{where}.toPorts")
    ports = _cilium_ports(to_ports, f"{where}.toPorts") if to_ports else None
    dns_proxy = any(_as_mapping(_as_mapping(e, where).get("rules"), where).get("dns") for e in to_ports)
    has_peer_field = peers or caveats or any(rule.get(f) for f in ("toEndpoints", "toEntities", "toCIDR", "toCIDRSet", "toFQDNs", "toNodes"))
    if not has_peer_field:
        # L4-only rule: every destination on these ports. A rule with neither peers nor ports matches nothing.
        peers = None if ports is not None else []
    action = "Deny" if deny else "Allow"
    return Rule(kind, ref, label, index, action, peers, ports, caveats), dns_proxy


def _compile_cilium_policy(kind, where, obj):
    clusterwide = kind == CILIUM_CLUSTERWIDE_NETWORK_POLICY
    name, namespace, _labels = _metadata(obj, where, namespaced=not clusterwide)
    namespace = None if clusterwide else namespace
    ref = name if clusterwide else f"{namespace}/{name}"
    where = f"{kind} {ref}"
    specs = []
    if obj.get("spec") is not None:
        specs.append(("", _as_mapping(obj["spec"], f"{where} spec")))
    specs.extend((f"specs[{i}].", _as_mapping(s, f"{where} specs[{i}]")) for i, s in enumerate(_as_list(obj.get("specs"), f"{where} specs")))
    if not specs:
        raise ValueError(f"{where}: neither spec nor specs is set")
    policies = []
    for prefix, spec in specs:
        here = f"{where} {prefix}"
        if "endpointSelector" not in spec:
            continue  # a nodeSelector (host) policy: it selects nodes, never pods.
        selector = LabelSelector(spec["endpointSelector"], f"{here}endpointSelector", key_normalizer=_cilium_label_key)

        def subject(identity, selector=selector):
            return (namespace is None or identity.namespace == namespace) and selector.matches(identity.cilium_labels)

        egress = _as_list(spec.get("egress"), f"{here}egress")
        egress_deny = _as_list(spec.get("egressDeny"), f"{here}egressDeny")
        fields_by_direction = (("Ingress", ("ingress", "ingressDeny")), ("Egress", ("egress", "egressDeny")))
        directions = tuple(d for d, fields in fields_by_direction if any(spec.get(f) for f in fields))
        policy = Policy(kind, ref, namespace, subject, directions)
        default_deny = _as_mapping(spec.get("enableDefaultDeny"), f"{here}enableDefaultDeny").get("egress")
        policy.egress_isolates = bool(egress or egress_deny) and default_deny is not False
        for index, rule in enumerate(egress):
            compiled, dns_proxy = _cilium_rule(kind, ref, f"{prefix}egress[{index}]", index, rule, f"{here}egress[{index}]", namespace, False)
            policy.rules.append(compiled)
            policy.dns_proxy = policy.dns_proxy or dns_proxy
        for index, rule in enumerate(egress_deny):
            compiled, _dns_proxy = _cilium_rule(kind, ref, f"{prefix}egressDeny[{index}]", index, rule, f"{here}egressDeny[{index}]", namespace, True)
            policy.deny_rules.append(compiled)
        count = len(policy.rules)
        policy.isolation_text = f"selected by {kind} {ref} {prefix}endpointSelector ({count} egress rule{'s' if count != 1 else ''}): egress default-deny"
        policies.append(policy)
    return policies


# ---------------------------------------------------------------- reading the cluster for it

NETPOL_CLUSTER_KINDS = ("AdminNetworkPolicy", "BaselineAdminNetworkPolicy", "CiliumClusterwideNetworkPolicy")


def read_policy_objects(reader, namespace):
    """What PolicySet needs to answer for a pod of namespace: pods, namespaces, nodes, policies of every kind.

    Pods are listed cluster-wide (destinations and DNS pods live elsewhere); if that is forbidden, the pod's
    namespace and kube-system are listed instead. Returns (objects, dns_service or None).
    """
    objects = reader.list("Namespace") + reader.list("Node")
    before = len(reader.not_checked)
    pods = reader.list("Pod")
    if len(reader.not_checked) > before:
        pods = reader.list("Pod", namespace, required=True) + (reader.list("Pod", "kube-system") if namespace != "kube-system" else [])
    objects += pods
    objects += reader.list("NetworkPolicy", namespace, required=True)
    objects += reader.list("CiliumNetworkPolicy", namespace)
    for kind in NETPOL_CLUSTER_KINDS:
        objects += reader.list(kind)
    objects += reader.list("Service")
    api_endpoints = reader.get("Endpoints", "kubernetes", "default")
    if api_endpoints:
        objects.append(api_endpoints)
    return objects, reader.get("Service", DNS_SERVICE[1], DNS_SERVICE[0])


def offline_policy_objects(paths, namespace):
    """Objects from manifest files as the cluster would hold them, plus a standard cluster DNS pod when none is given.

    Returns (objects, notes): notes say which pods were made from workloads and what was assumed.
    """
    loaded, _sources = load_manifests(paths)
    objects, workload_pods = manifest_objects(loaded, namespace)
    notes = [f"{workload} stands for its pods as pod {ref} (labels of its pod template, no IP)" for workload, ref in sorted(workload_pods.items())]
    has_dns_pod = any(obj.get("kind") == "Pod" and obj["metadata"].get("namespace") == DNS_SERVICE[0]
                      and all((obj["metadata"].get("labels") or {}).get(k) == v for k, v in DEFAULT_DNS_SELECTOR.items()) for obj in objects)
    if not has_dns_pod:
        objects.append({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "coredns", "namespace": DNS_SERVICE[0], "labels": dict(DEFAULT_DNS_SELECTOR)},
                        "spec": {}, "status": {"phase": "Running"}})
        notes.append("no cluster DNS pod in the manifests: assumed the standard one (kube-system, k8s-app=kube-dns, IP unknown)")
    return objects, notes


def netpol_egress(reader, namespace, pod, destinations, params, manifests=None, check_dns=True):
    """netpol_egress_info's answer for pod namespace/pod: from the cluster through reader, or from manifest files (reader
    None). destinations are parse_destinations()'s; params give the context for a not-found message."""
    source = f"{namespace}/{pod}"
    if manifests:
        objects, notes = offline_policy_objects(manifests, namespace)
        dns_service, not_checked, mode = None, [], "manifests"
    else:
        objects, dns_service = read_policy_objects(reader, namespace)
        notes, not_checked, mode = [], reader.not_checked, "cluster"
    pod_ips = pod_addresses(objects)
    if source not in pod_ips:
        if mode == "cluster":
            raise pod_not_found(namespace, pod, params)
        raise ValueError(f"pod {source} is in none of the manifests (no Pod and no workload named {pod} in namespace "
                         f"{namespace}): check the name, the namespace and the manifests paths")
    policy_set = PolicySet(objects)
    answers = egress_answers(policy_set, source, destinations, pod_ips)
    dns = dns_answer(policy_set, source, dns_service) if check_dns else {
        "checked": False, "allowed": None, "udp_allowed": None, "tcp_allowed": None, "targets": [], "checks": [], "reasons": ["check_dns is false"]}
    return {"source": source, "mode": mode, "allowed": overall_allowed(answers, dns), "destinations": answers, "dns": dns,
            "policies_selecting": policy_set.policies_selecting(source), "notes": notes,
            "not_checked": not_checked + policy_set.not_checked}


def pod_addresses(objects):
    """{"namespace/name": podIP or None} of every Pod among objects."""
    ips = {}
    for obj in objects:
        if obj.get("kind") == "Pod":
            metadata, status = obj.get("metadata") or {}, obj.get("status") or {}
            ips[f"{metadata.get('namespace')}/{metadata.get('name')}"] = status.get("podIP")
    return ips


def _targets(destination, resolver):
    """[(address or pod ref, hostname, note)] to evaluate for one parsed destination."""
    kind, to = destination["kind"], destination["to"]
    if kind == "cidr":
        samples = cidr_samples(to)
        note = f"{to} is a CIDR: evaluated at {' and '.join(samples)}; a rule whose ipBlock cuts through {to} may treat other addresses differently"
        return [(ip, None, note) for ip in samples]
    if kind == "host":
        if destination["ips"]:
            return [(ip, to, f"{to} given as {', '.join(destination['ips'])}") for ip in destination["ips"]]
        ips = resolve_host(to, resolver)
        return [(ip, to, f"{to} resolved on the controller (socket.getaddrinfo) to {', '.join(ips)}: the pod may resolve it differently")
                for ip in ips]
    return [(to, None, None)]


def egress_answers(policy_set, source, destinations, pod_ips=None, resolver=socket.getaddrinfo):
    """One answer per (destination, address): {destination, ip, port, protocol, allowed, tier, reasons, ...}.

    A host that does not resolve gets allowed None and says why; it does not stop the other destinations.
    """
    answers = []
    for destination in destinations:
        base = {"destination": destination["to"], "port": destination["port"], "protocol": destination["protocol"]}
        try:
            targets = _targets(destination, resolver)
        except ValueError as error:
            answers.append(dict(base, ip=None, allowed=None, tier=None, destination_pod=None, selected_by=[], allowed_by=[], denied_by=[],
                                reasons=[str(error)]))
            continue
        for target, hostname, note in targets:
            answer = policy_set.egress(source, target, destination["protocol"], destination["port"], hostname=hostname)
            ip = (pod_ips or {}).get(target) if destination["kind"] == "pod" else target
            answers.append(dict(base, ip=ip, allowed=answer["allowed"], tier=answer["tier"], destination_pod=answer["destination_pod"],
                                selected_by=answer["selected_by"], allowed_by=answer["allowed_by"], denied_by=answer["denied_by"],
                                reasons=([note] if note else []) + answer["reasons"]))
    return answers


def dns_answer(policy_set, source, dns_service=None):
    """UDP and TCP 53 to the cluster DNS pods (selected by the kube-dns Service's selector when it was read)."""
    selector = ((dns_service or {}).get("spec") or {}).get("selector") or DEFAULT_DNS_SELECTOR
    where = f"Service {'/'.join(DNS_SERVICE)} selector" if dns_service else "the default selector (no kube-dns Service read)"
    try:
        answer = policy_set.dns_egress(source, {"namespace": DNS_SERVICE[0], "selector": {"matchLabels": selector}})
    except ValueError as error:
        return {"checked": False, "allowed": None, "udp_allowed": None, "tcp_allowed": None, "targets": [], "checks": [],
                "reasons": [f"cluster DNS pods not found with {where} {selector_text(selector)}: {error}"]}
    return dict(answer, checked=True, reasons=[f"cluster DNS pods: kube-system pods matching {selector_text(selector)} ({where})"] + answer["reasons"])


def overall_allowed(answers, dns):
    """True when every destination (and DNS, when checked) is allowed, False when one is denied, None if unknown."""
    verdicts = [answer["allowed"] for answer in answers] + ([dns["allowed"]] if dns and dns.get("checked") else [])
    if any(verdict is False for verdict in verdicts):
        return False
    return None if any(verdict is None for verdict in verdicts) else True
