"""Decides whether Istio lets a pod reach an external host:port, from the objects read from the cluster.

The analysis is pure functions, stdlib only (PyYAML through network.load_yaml_document when importable), no I/O; the
section at the end reads the objects through a ``k8s.reader.ClusterReader`` for ``mesh_egress_info``.
With outboundTrafficPolicy REGISTRY_ONLY a sidecar sends traffic for hosts it does not know to the
BlackHoleCluster: HTTP gets ``502 Bad Gateway``, TLS and TCP get a reset connection. A ServiceEntry makes a
host known when its host and port match, it is exported to the pod's namespace, and the pod's Sidecar
resource (if any) imports it.
"""

import ipaddress

from ansible_collections.kubediag.egress.plugins.module_utils.cluster.network import ClusterNetworkError, load_yaml_document
from ansible_collections.kubediag.egress.plugins.module_utils.k8s.reader import pod_not_found

ALLOW_ANY = "ALLOW_ANY"
REGISTRY_ONLY = "REGISTRY_ONLY"
DEFAULT_ROOT_NAMESPACE = "istio-system"
SIDECAR_CONTAINER = "istio-proxy"


class MeshError(ValueError):
    """Mesh objects or a query that cannot be read; the message says which and what to do."""


def _meta(obj):
    metadata = (obj or {}).get("metadata") or {}
    return metadata.get("namespace") or "", metadata.get("name") or "", metadata.get("labels") or {}, metadata.get("annotations") or {}


def _objects(value, what):
    if value is None:
        return []
    if isinstance(value, dict) and "items" in value:
        value = value["items"]
    if not isinstance(value, (list, tuple)) or not all(isinstance(item, dict) for item in value):
        raise MeshError(f"{what}: expected a list of Kubernetes objects (dicts), got {type(value).__name__}")
    return list(value)


def pod_injected(pod, namespace=None):
    """Is the pod in the mesh? {injected, dataplane: "sidecar" | "ambient" | None, evidence, reasons}."""
    if not isinstance(pod, dict):
        raise MeshError(f"pod: expected a Pod object (dict), got {type(pod).__name__}")
    _unused, name, labels, annotations = _meta(pod)
    _unused, _unused, namespace_labels, _unused = _meta(namespace)
    spec = pod.get("spec") or {}
    containers = [container.get("name") for container in (spec.get("containers") or []) + (spec.get("initContainers") or [])]
    evidence, reasons = [], []
    if SIDECAR_CONTAINER in containers:
        evidence.append("istio-proxy container")
    if "sidecar.istio.io/status" in annotations:
        evidence.append("sidecar.istio.io/status annotation")
    if labels.get("security.istio.io/tlsMode") == "istio":
        evidence.append("security.istio.io/tlsMode=istio label")
    if SIDECAR_CONTAINER in containers:
        return {"injected": True, "dataplane": "sidecar", "evidence": evidence, "reasons": reasons}
    pod_mode = labels.get("istio.io/dataplane-mode")
    ambient = pod_mode == "ambient" or (pod_mode != "none" and namespace_labels.get("istio.io/dataplane-mode") == "ambient")
    if annotations.get("ambient.istio.io/redirection") == "enabled":
        evidence.append("ambient.istio.io/redirection=enabled annotation")
        ambient = True
    if ambient:
        evidence.append("istio.io/dataplane-mode=ambient label" + ("" if pod_mode == "ambient" else " on the namespace"))
        return {"injected": True, "dataplane": "ambient", "evidence": evidence, "reasons": reasons}
    if evidence:
        reasons.append(f"pod {name} carries injection marks ({', '.join(evidence)}) but no istio-proxy container")
    wants_injection = namespace_labels.get("istio-injection") == "enabled" or "istio.io/rev" in namespace_labels
    if wants_injection and annotations.get("sidecar.istio.io/inject") != "false" and labels.get("sidecar.istio.io/inject") != "false":
        reasons.append("the namespace asks for injection but the pod has no sidecar: it predates the label or the webhook failed; restart it")
    return {"injected": False, "dataplane": None, "evidence": evidence, "reasons": reasons}


def mesh_config(configmap):
    """The mesh-wide settings that matter for egress, from the istio (or istio-<revision>) ConfigMap's 'mesh' key.

    Returns {outbound_traffic_policy, explicit, root_namespace, default_service_export_to, parser, source}.
    """
    result = {"outbound_traffic_policy": ALLOW_ANY, "explicit": False, "root_namespace": DEFAULT_ROOT_NAMESPACE,
              "default_service_export_to": ["*"], "parser": None, "source": "Istio defaults (no mesh ConfigMap given)"}
    if configmap is None:
        return result
    namespace, name, _unused, _unused = _meta(configmap)
    data = (configmap.get("data") or {}) if isinstance(configmap, dict) else None
    if data is None or "mesh" not in data:
        raise MeshError(f"mesh ConfigMap {namespace}/{name}: no 'mesh' key; pass istio-system/istio (or istio-<revision>)")
    try:
        config, result["parser"] = load_yaml_document(data["mesh"], f"mesh ConfigMap {namespace}/{name} key mesh")
    except ClusterNetworkError as error:
        raise MeshError(str(error)) from None
    config = config or {}
    if not isinstance(config, dict):
        raise MeshError(f"mesh ConfigMap {namespace}/{name} key mesh: expected a MeshConfig mapping")
    mode = ((config.get("outboundTrafficPolicy") or {}).get("mode"))
    if mode:
        if mode not in (ALLOW_ANY, REGISTRY_ONLY):
            raise MeshError(f"mesh ConfigMap {namespace}/{name}: outboundTrafficPolicy.mode {mode!r} is neither ALLOW_ANY nor REGISTRY_ONLY")
        result.update(outbound_traffic_policy=mode, explicit=True)
    result["root_namespace"] = config.get("rootNamespace") or DEFAULT_ROOT_NAMESPACE
    result["default_service_export_to"] = list(config.get("defaultServiceExportTo") or ["*"])
    result["source"] = f"ConfigMap {namespace}/{name}"
    return result


def _selector_labels(sidecar):
    return ((sidecar.get("spec") or {}).get("workloadSelector") or {}).get("labels") or {}


def _selects(selector_labels, pod_labels):
    return all(pod_labels.get(key) == value for key, value in selector_labels.items())


def sidecar_for(pod, sidecars, root_namespace=DEFAULT_ROOT_NAMESPACE):
    """The Sidecar resource that applies to the pod, as Istio picks it: {sidecar, scope, ambiguous: [names]}."""
    pod_namespace, _unused, pod_labels, _unused = _meta(pod)
    sidecars = _objects(sidecars, "sidecars")
    local = [sidecar for sidecar in sidecars if _meta(sidecar)[0] == pod_namespace]
    selecting = [sidecar for sidecar in local if _selector_labels(sidecar) and _selects(_selector_labels(sidecar), pod_labels)]
    namespace_wide = [sidecar for sidecar in local if not _selector_labels(sidecar)]
    mesh_wide = [sidecar for sidecar in sidecars if _meta(sidecar)[0] == root_namespace and not _selector_labels(sidecar)]
    for scope, candidates in (("workload", selecting), ("namespace", namespace_wide), ("mesh", mesh_wide)):
        if candidates:
            # Istio applies the oldest when several match: an ambiguity worth reporting.
            ordered = sorted(candidates, key=lambda sidecar: ((sidecar.get("metadata") or {}).get("creationTimestamp") or "", _meta(sidecar)[1]))
            ambiguous = [f"{_meta(sidecar)[0]}/{_meta(sidecar)[1]}" for sidecar in ordered] if len(ordered) > 1 else []
            return {"sidecar": ordered[0], "scope": scope, "ambiguous": ambiguous}
    return {"sidecar": None, "scope": None, "ambiguous": []}


def _host_matches(pattern, host):
    pattern = pattern.lower().rstrip(".")
    if pattern == "*":
        return True
    if pattern.startswith("*."):
        return host.endswith(pattern[1:])
    return host == pattern


def _exported_to(entry, source_namespace, default_export_to):
    entry_namespace = _meta(entry)[0]
    export_to = (entry.get("spec") or {}).get("exportTo") or default_export_to
    return "*" in export_to or source_namespace in export_to or ("." in export_to and entry_namespace == source_namespace)


def _imported_by_sidecar(sidecar, host, entry_namespace):
    egress = (sidecar.get("spec") or {}).get("egress") or []
    if not egress:
        return True
    sidecar_namespace = _meta(sidecar)[0]
    for listener in egress:
        for pattern in listener.get("hosts") or []:
            namespace, _unused, dns_name = pattern.partition("/")
            namespace_ok = namespace == "*" or namespace == entry_namespace or (namespace == "." and entry_namespace == sidecar_namespace)
            if namespace_ok and namespace != "~" and _host_matches(dns_name, host):
                return True
    return False


def _address_matches(entry, ip):
    for address in (entry.get("spec") or {}).get("addresses") or []:
        try:
            if ip in ipaddress.ip_network(address, strict=False):
                return True
        except ValueError:
            continue
    return any((endpoint.get("address") or "") == str(ip) for endpoint in (entry.get("spec") or {}).get("endpoints") or [])


def _judge_entry(entry, host, port, source_namespace, sidecar, default_export_to):
    """(description, problem): problem is None when the ServiceEntry makes host:port known to the pod."""
    namespace, name, _unused, _unused = _meta(entry)
    spec = entry.get("spec") or {}
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        ip = None
    matched_host = next((pattern for pattern in spec.get("hosts") or [] if _host_matches(pattern, host)), None)
    if matched_host is None and not (ip and _address_matches(entry, ip)):
        return None, None
    ports = spec.get("ports") or []
    matched_port = next((entry_port for entry_port in ports if entry_port.get("number") == port), None)
    description = {"name": name, "namespace": namespace, "hosts": spec.get("hosts") or [], "matched_host": matched_host or str(ip),
                   "port": {"number": port, "protocol": (matched_port or {}).get("protocol"), "name": (matched_port or {}).get("name")},
                   "location": spec.get("location", "MESH_EXTERNAL"), "resolution": spec.get("resolution", "NONE"),
                   "export_to": spec.get("exportTo") or default_export_to, "warnings": []}
    if matched_port is None:
        return description, f"ServiceEntry {namespace}/{name} covers {host} but not port {port} (ports: {[p.get('number') for p in ports]})"
    if not _exported_to(entry, source_namespace, default_export_to):
        return description, f"ServiceEntry {namespace}/{name} covers {host}:{port} but exportTo {description['export_to']} hides it from {source_namespace}"
    if sidecar and not _imported_by_sidecar(sidecar, host, namespace):
        return description, (f"ServiceEntry {namespace}/{name} covers {host}:{port} but Sidecar {'/'.join(_meta(sidecar)[:2])} "
                             "egress hosts do not import it")
    if (matched_port.get("protocol") or "").upper() == "TCP" and not spec.get("addresses"):
        description["warnings"].append(f"protocol TCP with no addresses: the sidecar matches TCP by destination IP:port, not by name; "
                                       f"all unknown TCP traffic to port {port} goes to this entry and two such entries conflict")
    return description, None


def _validate_query(host, port):
    if not isinstance(host, str) or not host.strip() or any(char.isspace() for char in host.strip()):
        raise MeshError(f"host: expected a host name or IP, got {host!r}")
    if isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536:
        raise MeshError(f"port: expected a whole number from 1 to 65535, got {port!r}")
    return host.strip().lower().rstrip(".")


def service_entries_for(host, port, source_namespace, entries, sidecar=None, default_export_to=("*",)):
    """ServiceEntries that make host:port known to pods of source_namespace (hosts with wildcards, port by number,
    exportTo, and the pod's Sidecar egress hosts when given). Returns [{name, namespace, hosts, matched_host,
    port: {number, protocol, name}, location, resolution, export_to, warnings}]."""
    host = _validate_query(host, port)
    matches = []
    for entry in _objects(entries, "service_entries"):
        description, problem = _judge_entry(entry, host, port, source_namespace, sidecar, list(default_export_to))
        if description and problem is None:
            matches.append(description)
    return matches


def egress_gateways(workloads):
    """Istio egress gateways among Deployments/Services/Pods (label istio=egressgateway): ["namespace/name (Kind)"]."""
    found = []
    for workload in _objects(workloads, "gateway workloads"):
        namespace, name, labels, _unused = _meta(workload)
        if labels.get("istio") == "egressgateway" or labels.get("app") == "istio-egressgateway":
            found.append(f"{namespace}/{name} ({workload.get('kind', 'object')})")
    return found


def _bypass(annotations, port, dest_ips):
    """Sidecar capture exclusions: traffic the pod sends around the sidecar is not subject to the mesh policy."""
    excluded_ports = [part.strip() for part in annotations.get("traffic.sidecar.istio.io/excludeOutboundPorts", "").split(",") if part.strip()]
    if str(port) in excluded_ports:
        return f"port {port} is in traffic.sidecar.istio.io/excludeOutboundPorts: the sidecar does not capture it"
    ranges = {key: [part.strip() for part in annotations.get(key, "").split(",") if part.strip()]
              for key in ("traffic.sidecar.istio.io/excludeOutboundIPRanges", "traffic.sidecar.istio.io/includeOutboundIPRanges")}
    for ip_text in dest_ips or []:
        ip = ipaddress.ip_address(ip_text)
        for cidr in ranges["traffic.sidecar.istio.io/excludeOutboundIPRanges"]:
            if ip in ipaddress.ip_network(cidr, strict=False):
                return f"{ip} is in excludeOutboundIPRanges {cidr}: the sidecar does not capture it"
        include = ranges["traffic.sidecar.istio.io/includeOutboundIPRanges"]
        if "traffic.sidecar.istio.io/includeOutboundIPRanges" in annotations and "*" not in include and \
                not any(ip in ipaddress.ip_network(cidr, strict=False) for cidr in include):
            return f"{ip} is outside includeOutboundIPRanges {include or '(empty)'}: the sidecar does not capture it"
    return None


def mesh_egress(pod, host, port, objects=None, dest_ips=None):
    """Does Istio block this pod's egress to host:port?

    ``objects``: {mesh_config: the istio ConfigMap, namespace: the pod's Namespace, sidecars: [...],
    service_entries: [...], gateways: [Deployments/Services/Pods]}, each optional. ``dest_ips``: the host's
    addresses if resolved, for capture-exclusion annotations and IP ServiceEntries.
    Returns {injected, dataplane, mode, mode_source, matching_service_entries, near_misses, blocked, reasons,
    egress_gateways, sidecar, ambiguous_sidecars}.
    """
    objects = {} if objects is None else objects
    if not isinstance(objects, dict):
        raise MeshError(f"objects: expected a dict of mesh objects, got {type(objects).__name__}")
    host = _validate_query(host, port)
    try:
        dest_ips = [str(ipaddress.ip_address(ip)) for ip in dest_ips or []]
    except ValueError as error:
        raise MeshError(f"dest_ips: {error}") from None
    membership = pod_injected(pod, objects.get("namespace"))
    mesh = mesh_config(objects.get("mesh_config"))
    pod_namespace, pod_name, _unused, annotations = _meta(pod)
    chosen = sidecar_for(pod, objects.get("sidecars"), mesh["root_namespace"])
    sidecar = chosen["sidecar"]
    mode, mode_source = mesh["outbound_traffic_policy"], mesh["source"] if mesh["explicit"] else "Istio default (ALLOW_ANY)"
    sidecar_mode = (((sidecar or {}).get("spec") or {}).get("outboundTrafficPolicy") or {}).get("mode")
    if sidecar_mode:
        mode, mode_source = sidecar_mode, f"Sidecar {'/'.join(_meta(sidecar)[:2])} ({chosen['scope']} scope)"
    matches, near_misses = [], []
    for entry in _objects(objects.get("service_entries"), "service_entries"):
        for candidate in [host, *dest_ips]:
            description, problem = _judge_entry(entry, candidate, port, pod_namespace, sidecar, mesh["default_service_export_to"])
            if description and problem is None:
                matches.append(description)
                break
            if problem:
                near_misses.append(problem)
                break
    result = {"injected": membership["injected"], "dataplane": membership["dataplane"], "mode": mode, "mode_source": mode_source,
              "matching_service_entries": matches, "near_misses": near_misses, "blocked": False, "reasons": list(membership["reasons"]),
              "egress_gateways": egress_gateways(objects.get("gateways")),
              "sidecar": "/".join(_meta(sidecar)[:2]) if sidecar else None, "ambiguous_sidecars": chosen["ambiguous"]}
    if chosen["ambiguous"]:
        result["reasons"].append(f"several Sidecars apply to {pod_namespace}/{pod_name} ({', '.join(chosen['ambiguous'])}): Istio uses the oldest")
    if not membership["injected"]:
        result["reasons"].append(f"{pod_namespace}/{pod_name} has no Istio sidecar: the mesh does not filter its egress")
        return result
    if membership["dataplane"] == "ambient":
        result["reasons"].append("ambient mode: ztunnel does not apply outboundTrafficPolicy; egress is limited only by waypoints "
                                 "and AuthorizationPolicies")
        return result
    bypass = _bypass(annotations, port, dest_ips)
    if bypass:
        result["reasons"].append(bypass)
        return result
    if mode == ALLOW_ANY:
        result["reasons"].append(f"outboundTrafficPolicy ALLOW_ANY ({mode_source}): unknown hosts pass through the sidecar")
        return result
    if matches:
        names = ", ".join(f"{entry['namespace']}/{entry['name']}" for entry in matches)
        result["reasons"].append(f"REGISTRY_ONLY ({mode_source}) and ServiceEntry {names} makes {host}:{port} known")
        return result
    result["blocked"] = True
    result["reasons"].append(f"REGISTRY_ONLY ({mode_source}) and no ServiceEntry visible to {pod_namespace} covers {host}:{port}: "
                             "the sidecar routes it to BlackHoleCluster (HTTP 502 Bad Gateway, TLS/TCP connection reset)")
    result["reasons"].extend(near_misses)
    result["reasons"].append(f"fix: a ServiceEntry with hosts [{host}], ports [{port}], location MESH_EXTERNAL, resolution DNS, "
                             f"exported to {pod_namespace}")
    return result


# ---------------------------------------------------------------- reading the cluster for it

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
