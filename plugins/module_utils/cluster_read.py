"""Reading what the cluster-side ``_info`` modules analyse: cluster objects, manifests, destinations, DNS probes.

``ClusterReader`` lists and gets objects through ``KubeClient.call`` (retries, human errors) as plain dicts, with
pagination. A kind whose CRD is not installed, or a list the user may not read, narrows what is known: the reader
returns nothing for it and records why in ``not_checked``; it never aborts the diagnosis. The other functions are
pure (manifest files excepted): parsing destinations, turning workload manifests into pods, reading probe output.
"""

import ipaddress
import json
import os
import re
import socket

try:
    import yaml
except ImportError:
    yaml = None

from ansible_collections.kubediag.egress.plugins.module_utils.cluster_network import cluster_network_facts, snat_for
from ansible_collections.kubediag.egress.plugins.module_utils.corefile import (
    aks_corefile,
    classify_coredns_logs,
    corefile_summary,
    kube_dns_config,
    nodelocal_dns,
    parse_upstream,
)
from ansible_collections.kubediag.egress.plugins.module_utils.kube import KubeError, api_path
from ansible_collections.kubediag.egress.plugins.module_utils.mesh import mesh_egress
from ansible_collections.kubediag.egress.plugins.module_utils.netpol import PolicySet

# kind -> (API versions to try in order, plural, namespaced)
KINDS = {
    "Pod": (("v1",), "pods", True),
    "Namespace": (("v1",), "namespaces", False),
    "Node": (("v1",), "nodes", False),
    "ConfigMap": (("v1",), "configmaps", True),
    "Service": (("v1",), "services", True),
    "Endpoints": (("v1",), "endpoints", True),
    "EndpointSlice": (("discovery.k8s.io/v1",), "endpointslices", True),
    "DaemonSet": (("apps/v1",), "daemonsets", True),
    "Deployment": (("apps/v1",), "deployments", True),
    "NetworkPolicy": (("networking.k8s.io/v1",), "networkpolicies", True),
    "AdminNetworkPolicy": (("policy.networking.k8s.io/v1alpha1",), "adminnetworkpolicies", False),
    "BaselineAdminNetworkPolicy": (("policy.networking.k8s.io/v1alpha1",), "baselineadminnetworkpolicies", False),
    "CiliumNetworkPolicy": (("cilium.io/v2",), "ciliumnetworkpolicies", True),
    "CiliumClusterwideNetworkPolicy": (("cilium.io/v2",), "ciliumclusterwidenetworkpolicies", False),
    "IPPool": (("crd.projectcalico.org/v1",), "ippools", False),
    "ServiceEntry": (("networking.istio.io/v1", "networking.istio.io/v1beta1"), "serviceentries", True),
    "Sidecar": (("networking.istio.io/v1", "networking.istio.io/v1beta1"), "sidecars", True),
}

# Workload kinds whose pod template stands for the pods they would run (offline mode).
WORKLOAD_TEMPLATES = {
    "Deployment": ("spec", "template"),
    "StatefulSet": ("spec", "template"),
    "DaemonSet": ("spec", "template"),
    "ReplicaSet": ("spec", "template"),
    "ReplicationController": ("spec", "template"),
    "Job": ("spec", "template"),
    "CronJob": ("spec", "jobTemplate", "spec", "template"),
}
CLUSTER_SCOPED_KINDS = frozenset((
    "Namespace", "Node", "AdminNetworkPolicy", "BaselineAdminNetworkPolicy", "CiliumClusterwideNetworkPolicy",
    "CustomResourceDefinition", "ClusterRole", "ClusterRoleBinding", "IPPool", "PersistentVolume", "StorageClass",
))
MANIFEST_SUFFIXES = (".yaml", ".yml", ".json")
PROTOCOLS = ("TCP", "UDP", "SCTP")
_POD_REF = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?/[a-z0-9]([-.a-z0-9]*[a-z0-9])?$")
_HOST_NAME = re.compile(r"^(?=.{1,253}\.?$)([A-Za-z0-9_]([-A-Za-z0-9_]{0,61}[A-Za-z0-9])?)(\.[A-Za-z0-9_]([-A-Za-z0-9_]{0,61}[A-Za-z0-9])?)*\.?$")
_DIG_STATUS = re.compile(r"->>HEADER<<-.*status: ([A-Z]+)")
_NSLOOKUP_RCODE = re.compile(r"server can't find \S*: ([A-Z]+)")


def _group_version(api_version):
    group, _sep, version = api_version.rpartition("/")
    return group, version


class ClusterReader:
    """Reads objects as dicts; a missing kind or a forbidden read narrows the answer and says so in ``not_checked``.

    ``not_checked`` entries: ``{what, reason, message}`` with reason ``not_installed`` (no CRD serves the kind),
    ``forbidden`` (RBAC) or ``not_found`` (an optional object that does not exist is not recorded: it is a fact).
    """

    def __init__(self, kube):
        self.kube = kube
        self.not_checked = []
        self._served = {}

    def narrow(self, what, reason, message):
        entry = {"what": what, "reason": reason, "message": message}
        if entry not in self.not_checked:
            self.not_checked.append(entry)

    def api_version_of(self, kind):
        """The first API version the server serves for kind, or None (recorded as not installed)."""
        versions, plural, _namespaced = KINDS[kind]
        if versions == ("v1",):
            return "v1"
        for api_version in versions:
            if self._serves(api_version, plural):
                return api_version
        group = _group_version(versions[0])[0]
        self.narrow(f"{plural}.{group}", "not_installed",
                    f"{kind} ({plural}.{group}) is not served by this cluster (no CRD): there are none to take into account")
        return None

    def _serves(self, api_version, plural):
        key = (api_version, plural)
        if key not in self._served:
            try:
                resources = self.kube.request("GET", f"/apis/{api_version}", what=f"the API group {api_version}")
                self._served[key] = plural in {resource.get("name") for resource in resources.get("resources") or []}
            except KubeError as error:
                if error.status != 404:
                    raise
                self._served[key] = False
        return self._served[key]

    def list(self, kind, namespace=None, label_selector=None, field_selector=None, required=False):
        """Every object of kind (in namespace, or all namespaces), each with apiVersion and kind set.

        required=True: a forbidden list raises KubeError (the question cannot be answered without it);
        otherwise it is recorded in not_checked and [] is returned.
        """
        api_version = self.api_version_of(kind)
        if api_version is None:
            return []
        _versions, plural, namespaced = KINDS[kind]
        scope = f" in namespace {namespace}" if namespace and namespaced else (" in all namespaces" if namespaced else "")
        what = f"the list of {plural}{scope}"
        query = {}
        if label_selector:
            query["labelSelector"] = label_selector
        if field_selector:
            query["fieldSelector"] = field_selector
        try:
            items = self.kube.list(api_version, plural, namespace if namespaced else None, what=what, query=query)
        except KubeError as error:
            if required or error.status != 403:
                raise
            self.narrow(f"{plural}{scope}", "forbidden", f"{error} Without it, {plural}{scope} are not taken into account.")
            return []
        for item in items:
            item.setdefault("apiVersion", api_version)
            item.setdefault("kind", kind)
        return items

    def get(self, kind, name, namespace=None):
        """One object, or None when it does not exist (or may not be read: recorded in not_checked)."""
        api_version = self.api_version_of(kind)
        if api_version is None:
            return None
        _versions, plural, namespaced = KINDS[kind]
        ref = f"{namespace}/{name}" if namespaced else name
        what = f"{kind} {ref}"
        try:
            obj = self.kube.request("GET", api_path(api_version, plural, namespace if namespaced else None, name), what=what)
        except KubeError as error:
            if error.status == 404:
                return None
            if error.status != 403:
                raise
            self.narrow(what, "forbidden", f"{error} It is treated as absent.")
            return None
        obj.setdefault("apiVersion", api_version)
        obj.setdefault("kind", kind)
        return obj

    def pod_log(self, namespace, name, container=None, tail_lines=None):
        """The pod's log text, or None when it may not be read (recorded in not_checked)."""
        query = {}
        if container:
            query["container"] = container
        if tail_lines is not None:
            query["tailLines"] = tail_lines
        try:
            return self.kube.request("GET", api_path("v1", "pods", namespace, name, "log"), what=f"the log of pod {namespace}/{name}",
                                     query=query, text=True)
        except KubeError as error:
            if error.status not in (400, 403, 404):
                raise
            self.narrow(f"log of pod {namespace}/{name}", "forbidden" if error.status == 403 else "unavailable", str(error))
            return None


def context_label(params):
    """How to name the cluster in messages: the context asked for, the kubeconfig's current context, or the host."""
    if params.get("context"):
        return params["context"]
    kubeconfig = params.get("kubeconfig")
    if isinstance(kubeconfig, dict):
        return kubeconfig.get("current-context") or "the kubeconfig's current context"
    if params.get("host") and not kubeconfig:
        return params["host"]
    path = os.path.expanduser(kubeconfig or os.environ.get("KUBECONFIG", "~/.kube/config").split(os.pathsep)[0])
    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
    except OSError:
        return "the current context"
    match = re.search(r"^current-context:\s*['\"]?([^'\"\s]+)", text, re.MULTILINE)
    return match.group(1) if match else "the current context"


def pod_not_found(namespace, name, params):
    return KubeError(f"pod {namespace}/{name} not found in context {context_label(params)}: check the name and namespace")


# ---------------------------------------------------------------- manifests (offline mode)

def _manifest_files(path):
    if os.path.isdir(path):
        found = []
        for root, dirs, files in os.walk(path):
            dirs[:] = sorted(d for d in dirs if not d.startswith("."))
            found.extend(os.path.join(root, name) for name in sorted(files) if name.endswith(MANIFEST_SUFFIXES))
        return found
    if os.path.isfile(path):
        return [path]
    raise ValueError(f"manifest path {path} does not exist: give files or directories holding YAML or JSON manifests")


def _documents(path, text):
    if yaml is None:
        if not path.endswith(".json"):
            raise ValueError(f"{path}: reading YAML manifests needs PyYAML (pip install pyyaml); JSON manifests work without it")
        try:
            return [json.loads(text)]
        except ValueError as error:
            raise ValueError(f"{path}: not valid JSON ({error})") from None
    try:
        return list(yaml.safe_load_all(text))
    except yaml.YAMLError as error:
        raise ValueError(f"{path}: not valid YAML ({error})".replace("\n", " ")) from None


def load_manifests(paths):
    """Kubernetes objects from files and directories (.yaml, .yml, .json; multi-document; List kinds unpacked).

    Every object gets its source as ``(path, document index)`` in the returned ``sources`` list, same order.
    """
    if not paths:
        raise ValueError("manifests: give at least one file or directory")
    objects, sources = [], []
    for path in paths:
        for file_path in _manifest_files(os.path.expanduser(str(path))):
            with open(file_path, encoding="utf-8") as handle:
                text = handle.read()
            for index, document in enumerate(_documents(file_path, text)):
                if document is None:
                    continue
                if not isinstance(document, dict) or not document.get("kind"):
                    raise ValueError(f"{file_path} document {index + 1}: not a Kubernetes object (a mapping with kind and metadata)")
                items = document.get("items") if document["kind"].endswith("List") else [document]
                for item in items or []:
                    if not isinstance(item, dict) or not item.get("kind"):
                        raise ValueError(f"{file_path} document {index + 1}: a List item is not a Kubernetes object")
                    objects.append(item)
                    sources.append(f"{file_path}#{index + 1}")
    return objects, sources


def _dig(obj, path):
    for key in path:
        obj = obj.get(key) if isinstance(obj, dict) else None
    return obj


def manifest_objects(objects, default_namespace):
    """Objects as the cluster would hold them once applied, plus one Pod per workload (named like the workload).

    Namespaced objects without a namespace get ``default_namespace`` (as ``kubectl apply -n``). A workload's pod
    template becomes Pod ``<namespace>/<workload name>`` (no IP: ipBlock rules cannot match it as a destination)
    unless a Pod of that name is already given. Returns (objects, synthesised pod refs by workload "Kind ns/name").
    """
    result, pods, workload_pods = [], set(), {}
    for obj in objects:
        obj = dict(obj)
        metadata = dict(obj.get("metadata") or {})
        if obj.get("kind") not in CLUSTER_SCOPED_KINDS and not metadata.get("namespace"):
            metadata["namespace"] = default_namespace
        obj["metadata"] = metadata
        result.append(obj)
        if obj.get("kind") == "Pod":
            pods.add(f"{metadata['namespace']}/{metadata.get('name')}")
    for obj in list(result):
        path = WORKLOAD_TEMPLATES.get(obj.get("kind"))
        template = _dig(obj, path) if path else None
        if not isinstance(template, dict):
            continue
        namespace, name = obj["metadata"]["namespace"], obj["metadata"].get("name")
        ref = f"{namespace}/{name}"
        if ref in pods:
            continue
        pods.add(ref)
        template_metadata = template.get("metadata") or {}
        result.append({"apiVersion": "v1", "kind": "Pod",
                       "metadata": {"name": name, "namespace": namespace, "labels": dict(template_metadata.get("labels") or {}),
                                    "annotations": dict(template_metadata.get("annotations") or {})},
                       "spec": dict(template.get("spec") or {}), "status": {"phase": "Pending"}})
        workload_pods[f"{obj['kind']} {ref}"] = ref
    namespaces = {obj["metadata"].get("name") for obj in result if obj.get("kind") == "Namespace"}
    for namespace in sorted({obj["metadata"]["namespace"] for obj in result if obj["metadata"].get("namespace")} - namespaces):
        result.append({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace, "labels": {"kubernetes.io/metadata.name": namespace}}})
    return result, workload_pods


# ---------------------------------------------------------------- destinations

def _protocol(value, where):
    text = str(value or "TCP").upper()
    if text not in PROTOCOLS:
        raise ValueError(f"{where}: protocol {value!r} is not one of {', '.join(PROTOCOLS)}")
    return text


def _port(value, where):
    if value is None or value == "":
        return None
    if isinstance(value, bool) or not str(value).isdigit() or not 0 < int(value) < 65536:
        raise ValueError(f"{where}: port {value!r} is not a number from 1 to 65535 (leave it out to ask about every port)")
    return int(value)


def classify_destination(text, where="destination"):
    """(kind, normalised text): kind is ip, cidr, pod ("namespace/name") or host; anything else is a ValueError."""
    if not isinstance(text, str) or not text.strip():
        raise ValueError(f"{where}: {text!r} is empty; give an IP, a CIDR, a host name or a pod as namespace/name")
    text = text.strip()
    try:
        return "ip", str(ipaddress.ip_address(text))
    except ValueError:
        pass
    if "/" in text:
        try:
            return "cidr", str(ipaddress.ip_network(text, strict=False))
        except ValueError:
            pass
        if _POD_REF.match(text):
            return "pod", text
    elif _HOST_NAME.match(text) and not text.replace(".", "").isdigit():
        return "host", text.lower().rstrip(".")
    raise ValueError(f"{where}: {text!r} is not an IP address, a CIDR such as 10.0.0.0/8, a DNS host name or a pod as namespace/name")


def parse_destinations(destinations, port=None, protocol="TCP"):
    """Normalise the module's destinations: strings (with the default port/protocol) or dicts {to, port, protocol, ips}.

    Returns [{to, kind, port, protocol, ips}]; ``ips`` is given only for a host whose addresses the caller knows.
    """
    if not destinations:
        raise ValueError("destinations: give at least one IP, CIDR, host name or namespace/pod")
    default_port = _port(port, "port")
    default_protocol = _protocol(protocol, "protocol")
    parsed = []
    for index, entry in enumerate(destinations):
        where = f"destinations[{index}]"
        if isinstance(entry, dict):
            unknown = sorted(set(entry) - {"to", "port", "protocol", "ips"})
            if unknown:
                raise ValueError(f"{where}: unknown keys {', '.join(unknown)}; use to, port, protocol and ips")
            kind, to = classify_destination(entry.get("to"), where)
            item = {"to": to, "kind": kind, "port": _port(entry.get("port", default_port), where),
                    "protocol": _protocol(entry.get("protocol", default_protocol), where), "ips": None}
            if entry.get("ips") is not None:
                if kind != "host":
                    raise ValueError(f"{where}: ips is only for a host name; {to!r} is a {kind}")
                ips = entry["ips"] if isinstance(entry["ips"], list) else [entry["ips"]]
                item["ips"] = [classify_ip(ip, f"{where}.ips") for ip in ips]
        else:
            kind, to = classify_destination(entry, where)
            item = {"to": to, "kind": kind, "port": default_port, "protocol": default_protocol, "ips": None}
        parsed.append(item)
    return parsed


def classify_ip(text, where):
    try:
        return str(ipaddress.ip_address(str(text).strip()))
    except ValueError:
        raise ValueError(f"{where}: {text!r} is not an IP address") from None


def resolve_host(name, resolver=socket.getaddrinfo):
    """The host's addresses as the controller resolves them (IPv4 first), or a ValueError saying why not."""
    try:
        answers = resolver(name, None, 0, socket.SOCK_STREAM)
    except (OSError, UnicodeError) as error:
        raise ValueError(f"cannot resolve {name} on the controller ({error}); give its addresses with ips: [...]") from None
    addresses = list(dict.fromkeys(str(ipaddress.ip_address(answer[4][0].split("%")[0])) for answer in answers))
    return sorted(addresses, key=lambda ip: ipaddress.ip_address(ip).version)


def cidr_samples(cidr):
    """The addresses a CIDR question is evaluated at: its first and last usable address (one for a /32 or /128)."""
    network = ipaddress.ip_network(cidr, strict=False)
    if network.num_addresses <= 2:
        return list(dict.fromkeys([str(network.network_address), str(network.broadcast_address)]))
    return [str(network.network_address + 1), str(network.broadcast_address - 1)]


# ---------------------------------------------------------------- pods

def pod_status(pod):
    """{pod, node, ip, phase, ready, restarts} of a Pod dict."""
    metadata, spec, status = pod.get("metadata") or {}, pod.get("spec") or {}, pod.get("status") or {}
    conditions = {condition.get("type"): condition.get("status") for condition in status.get("conditions") or []}
    return {"pod": f"{metadata.get('namespace')}/{metadata.get('name')}", "node": spec.get("nodeName"), "ip": status.get("podIP"),
            "phase": status.get("phase"), "ready": conditions.get("Ready") == "True",
            "restarts": sum(int(c.get("restartCount") or 0) for c in status.get("containerStatuses") or [])}


def selector_text(match_labels):
    """A labelSelector query string from matchLabels."""
    return ",".join(f"{key}={value}" for key, value in sorted((match_labels or {}).items()))


# ---------------------------------------------------------------- probing a DNS upstream from a pod

def upstream_probe_argv(tool, ip, port=53, name="."):
    """argv asking the DNS server ip:port for name's NS records, with a short timeout and no retry."""
    address = classify_ip(ip, "upstream")
    if not isinstance(port, int) or isinstance(port, bool) or not 0 < port < 65536:
        raise ValueError(f"upstream port {port!r} is not a number from 1 to 65535")
    if not _HOST_NAME.match(name) and name != ".":
        raise ValueError(f"probe name {name!r} is not a DNS name")
    if tool == "dig":
        return ["dig", f"@{address}", "-p", str(port), "+time=2", "+tries=1", "+norecurse", name, "NS"]
    if tool == "nslookup":
        return ["nslookup", "-type=NS", f"-port={port}", "-timeout=2", "-retry=1", name, address]
    raise ValueError(f"probe tool {tool!r} is neither dig nor nslookup")


def read_probe_output(tool, exit_code, output):
    """{answered, status, detail}: did the DNS server answer at all (any rcode counts), as the tool's output shows.

    answered is None when the tool could not run (exit_code None, e.g. not in the image); status is the rcode
    (NOERROR, NXDOMAIN, SERVFAIL, REFUSED...) when it answered, else timeout, unreachable or error.
    """
    text = output or ""
    if exit_code is None:
        return {"answered": None, "status": "not_run", "detail": _last_lines(text)}
    status = (_DIG_STATUS if tool == "dig" else _NSLOOKUP_RCODE).search(text)
    if status:
        return {"answered": True, "status": status.group(1), "detail": f"answered with {status.group(1)}"}
    if tool != "dig" and exit_code == 0:
        return {"answered": True, "status": "NOERROR", "detail": "answered with NOERROR"}
    lowered = text.lower()
    if "connection refused" in lowered or "unreachable" in lowered:
        return {"answered": False, "status": "unreachable", "detail": _last_lines(text)}
    if "timed out" in lowered or "no servers could be reached" in lowered:
        return {"answered": False, "status": "timeout", "detail": _last_lines(text)}
    return {"answered": False, "status": "error", "detail": _last_lines(text)}


def _last_lines(text, count=3):
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return " | ".join(lines[-count:])[:300]


# ---------------------------------------------------------------- netpol_egress_info

NETPOL_CLUSTER_KINDS = ("AdminNetworkPolicy", "BaselineAdminNetworkPolicy", "CiliumClusterwideNetworkPolicy")
DNS_SERVICE = ("kube-system", "kube-dns")
DEFAULT_DNS_SELECTOR = {"k8s-app": "kube-dns"}


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


# ---------------------------------------------------------------- coredns_info

DNS_PROBE_TOOLS = ("dig", "nslookup")


def _main_container(pod, preferred):
    names = [container.get("name") for container in (pod.get("spec") or {}).get("containers") or []]
    return preferred if preferred in names else (names[0] if names else None)


def read_coredns(reader, tail_lines=200):
    """CoreDNS configuration, pods, their logs (classified) and NodeLocal DNSCache, as coredns_info returns them.

    tail_lines: the last lines of each DNS pod's log to read; 0 reads none.
    """
    system = "kube-system"
    coredns_cm = reader.get("ConfigMap", "coredns", system)
    custom_cm = reader.get("ConfigMap", "coredns-custom", system)
    kube_dns_cm = reader.get("ConfigMap", "kube-dns", system)
    dns_service = reader.get("Service", DNS_SERVICE[1], DNS_SERVICE[0])
    cluster_dns_ip = ((dns_service or {}).get("spec") or {}).get("clusterIP")
    corefile, sources = None, []
    if coredns_cm is not None:
        if "Corefile" not in (coredns_cm.get("data") or {}):
            raise ValueError("ConfigMap kube-system/coredns has no Corefile key: is CoreDNS configured from another ConfigMap?")
        if custom_cm is not None:
            corefile = aks_corefile(coredns_cm, custom_cm)
            sources.append("ConfigMap kube-system/coredns-custom (AKS)")
        else:
            corefile = corefile_summary(coredns_cm["data"]["Corefile"], cluster_dns_ip=cluster_dns_ip)
        sources.insert(0, "ConfigMap kube-system/coredns")
    kube_dns = None
    if kube_dns_cm is not None:
        kube_dns = kube_dns_config(kube_dns_cm)
        sources.append("ConfigMap kube-system/kube-dns")
    nodelocal = nodelocal_dns(reader.get("ConfigMap", "node-local-dns", system), reader.get("DaemonSet", "node-local-dns", system))
    selector = selector_text(((dns_service or {}).get("spec") or {}).get("selector") or DEFAULT_DNS_SELECTOR)
    pods = reader.list("Pod", system, label_selector=selector)
    statuses, log_lines, per_pod = [], [], []
    for pod in pods:
        status = pod_status(pod)
        statuses.append(status)
        if not tail_lines:
            continue
        text = reader.pod_log(system, pod["metadata"]["name"], _main_container(pod, "coredns"), tail_lines)
        if text is None:
            continue
        lines = text.splitlines()
        log_lines.extend(lines)
        classes = classify_coredns_logs(lines)
        per_pod.append({"pod": status["pod"], "lines": len(lines), "dominant_error": classes["dominant_error"],
                        "error_counts": {name: entry["count"] for name, entry in classes["classes"].items() if entry["count"]}})
    forward = corefile["forward"] if corefile else None
    if forward:
        upstreams = forward["upstreams"]
    elif kube_dns:
        upstreams = kube_dns["upstream_nameservers"] or [parse_upstream("/etc/resolv.conf")]
    else:
        upstreams = []
    return {
        "configured_by": sources,
        "cluster_dns_ip": cluster_dns_ip,
        "corefile": corefile,
        "forward": forward,
        "upstreams": upstreams,
        "kube_dns": kube_dns,
        "nodelocal_dns": nodelocal,
        "pods": statuses,
        "pods_ready": bool(statuses) and all(status["ready"] for status in statuses),
        "logs": dict(classify_coredns_logs(log_lines), per_pod=per_pod),
    }


def probe_upstreams(kube, reader, probe_pod, upstreams, params, container=None, timeout=10.0):
    """Ask each address upstream for the root NS records from inside probe_pod ("namespace/name"), dig or else nslookup.

    Returns [{upstream, ip, port, answered, status, tool, detail}]: answered None when the upstream cannot be probed from a pod
    (a file such as the node's resolv.conf, a placeholder, DNS over TLS) or no tool runs in the pod.
    """
    namespace, _sep, name = probe_pod.partition("/")
    if not namespace or not name or "/" in name:
        raise ValueError(f"probe_pod {probe_pod!r} must be a pod as namespace/name")
    pod = reader.get("Pod", name, namespace)
    if pod is None:
        raise pod_not_found(namespace, name, params)
    results = []
    for upstream in upstreams:
        entry = {"upstream": upstream["raw"], "ip": upstream.get("ip"), "port": upstream.get("port"), "answered": None, "tool": None}
        if upstream.get("kind") != "address" or upstream.get("transport") != "dns":
            why = {"resolv_conf": "the node's resolvers (CoreDNS runs with dnsPolicy: Default): probe them from the node",
                   "placeholder": "a placeholder filled in when the server starts"}.get(upstream.get("kind"), "not a plain DNS address")
            results.append(dict(entry, status="not_probed", detail=f"{upstream['raw']} is {why}"))
            continue
        for tool in DNS_PROBE_TOOLS:
            argv = upstream_probe_argv(tool, upstream["ip"], upstream["port"])
            try:
                run = kube.exec_in_pod(namespace, name, argv, container=container, timeout=timeout)
            except KubeError as error:
                if error.status != 403:
                    raise
                reader.narrow(f"exec in pod {probe_pod}", "forbidden", f"{error} The upstreams were not probed.")
                return [*results, dict(entry, status="not_probed", detail="exec forbidden")]
            outcome = read_probe_output(tool, run.exit_code, "\n".join(part for part in (run.stdout, run.stderr, run.error) if part))
            if outcome["status"] != "not_run":
                break
        results.append(dict(entry, tool=tool if outcome["status"] != "not_run" else None, **outcome))
    return results


# ---------------------------------------------------------------- cluster_network_info

def read_cluster_network(reader, vpc_cidrs=None):
    """cluster_network_facts() from kube-system DaemonSets and ConfigMaps, Nodes, Calico IPPools and control-plane pods."""
    system = "kube-system"
    daemonsets = reader.list("DaemonSet", system)
    configmaps = reader.list("ConfigMap", system)
    nodes = reader.list("Node")
    ippools = reader.list("IPPool")
    control_plane = reader.list("Pod", system, label_selector="tier=control-plane")
    facts = cluster_network_facts(daemonsets, configmaps, nodes, ippools, control_plane, vpc_cidrs)
    facts["daemonsets"] = [f"{system}/{d['metadata']['name']}" for d in daemonsets]
    return facts


def snat_answer(facts, destination, resolver=socket.getaddrinfo):
    """snat_for() for an IP, or for a host name's first address (resolved on the controller)."""
    kind, text = classify_destination(destination, "destination")
    if kind not in ("ip", "host"):
        raise ValueError(f"destination {destination!r}: give an IP address or a host name, not a {kind}")
    ips = [text] if kind == "ip" else resolve_host(text, resolver)
    answer = snat_for(ips[0], facts)
    reasons = list(answer["reasons"])
    if kind == "host":
        reasons.insert(0, f"{text} resolved on the controller to {', '.join(ips)}; decided for {ips[0]}")
    return dict(answer, destination=text, ip=ips[0], reasons=reasons)


# ---------------------------------------------------------------- mesh_egress_info

def read_mesh(reader, namespace, pod_name, params):
    """The pod, its namespace and every Istio object mesh_egress() looks at. Returns (pod, objects, istio_installed)."""
    pod = reader.get("Pod", pod_name, namespace)
    if pod is None:
        raise pod_not_found(namespace, pod_name, params)
    objects = {"namespace": reader.get("Namespace", namespace)}
    istio_installed = reader.api_version_of("ServiceEntry") is not None
    revision = ((pod.get("metadata") or {}).get("labels") or {}).get("istio.io/rev")
    names = ([f"istio-{revision}"] if revision and revision != "default" else []) + ["istio"]
    objects["mesh_config"] = next((cm for cm in (reader.get("ConfigMap", name, "istio-system") for name in names) if cm), None)
    if not istio_installed:
        return pod, objects, False
    objects["sidecars"] = reader.list("Sidecar")
    objects["service_entries"] = reader.list("ServiceEntry")
    objects["gateways"] = reader.list("Deployment", label_selector="istio=egressgateway") + reader.list("Service", label_selector="istio=egressgateway")
    return pod, objects, True


def mesh_egress_answer(reader, namespace, pod_name, destination, port, destination_ips, params):
    """mesh_egress_info's answer: what Istio does to the pod's egress to destination:port, and whether Istio is installed."""
    pod, objects, installed = read_mesh(reader, namespace, pod_name, params)
    result = mesh_egress(pod, destination, port, objects, destination_ips)
    if not installed:
        result["reasons"].append("the Istio networking CRDs are not installed: Istio does not filter this pod's egress")
    return dict(result, istio_installed=installed, not_checked=reader.not_checked)
