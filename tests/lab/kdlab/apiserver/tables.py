"""`Table` rendering (meta.k8s.io/v1) for `kubectl get`: the columns kubectl shows for a real cluster."""

import datetime
import json


def age(timestamp: str | None) -> str:
    """Human age like the API server's printers: 45s, 12m, 5h, 3d, 2y."""
    if not timestamp:
        return "<unknown>"
    created = datetime.datetime.strptime(timestamp, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=datetime.UTC)
    seconds = int((datetime.datetime.now(datetime.UTC) - created).total_seconds())
    if seconds < 0:
        return "0s"
    if seconds < 120:
        return f"{seconds}s"
    if seconds < 600:
        return f"{seconds // 60}m{seconds % 60}s" if seconds % 60 else f"{seconds // 60}m"
    if seconds < 3 * 3600:
        return f"{seconds // 60}m"
    if seconds < 8 * 3600:
        hours, minutes = divmod(seconds // 60, 60)
        return f"{hours}h{minutes}m" if minutes else f"{hours}h"
    if seconds < 48 * 3600:
        return f"{seconds // 3600}h"
    if seconds < 365 * 86400 * 2:
        return f"{seconds // 86400}d"
    return f"{seconds // (365 * 86400)}y"


def _pod_row(pod: dict) -> list:
    spec, status = pod.get("spec") or {}, pod.get("status") or {}
    statuses = status.get("containerStatuses") or []
    ready = sum(1 for cs in statuses if cs.get("ready"))
    restarts = sum(cs.get("restartCount", 0) for cs in statuses)
    phase = status.get("phase", "Pending")
    reason = status.get("reason") or phase
    for cs in statuses:
        waiting = (cs.get("state") or {}).get("waiting")
        if waiting and waiting.get("reason"):
            reason = waiting["reason"]
    if pod["metadata"].get("deletionTimestamp"):
        reason = "Terminating"
    gates = spec.get("readinessGates")
    return [pod["metadata"]["name"], f"{ready}/{len(spec.get('containers') or [])}", reason, restarts,
            age(pod["metadata"].get("creationTimestamp")), status.get("podIP") or "<none>", spec.get("nodeName") or "<none>",
            status.get("nominatedNodeName") or "<none>", f"{len(gates)}" if gates else "<none>"]


def _node_row(node: dict) -> list:
    status = node.get("status") or {}
    ready = next((c for c in status.get("conditions") or [] if c.get("type") == "Ready"), {})
    state = "Ready" if ready.get("status") == "True" else "NotReady"
    if (node.get("spec") or {}).get("unschedulable"):
        state += ",SchedulingDisabled"
    labels = node["metadata"].get("labels") or {}
    roles = ",".join(sorted(k.split("/", 1)[1] for k in labels if k.startswith("node-role.kubernetes.io/"))) or "<none>"
    addresses = {a.get("type"): a.get("address") for a in status.get("addresses") or []}
    info = status.get("nodeInfo") or {}
    return [node["metadata"]["name"], state, roles, age(node["metadata"].get("creationTimestamp")), info.get("kubeletVersion", ""),
            addresses.get("InternalIP", "<none>"), addresses.get("ExternalIP", "<none>"), info.get("osImage", ""),
            info.get("kernelVersion", ""), info.get("containerRuntimeVersion", "")]


def _service_row(svc: dict) -> list:
    spec = svc.get("spec") or {}
    ports = ",".join(
        f"{p.get('port')}{':' + str(p['nodePort']) if p.get('nodePort') else ''}/{p.get('protocol', 'TCP')}" for p in spec.get("ports") or []
    ) or "<none>"
    ingress = ((svc.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []
    external = ",".join(i.get("ip") or i.get("hostname", "") for i in ingress) or ",".join(spec.get("externalIPs") or [])
    if not external:
        external = "<pending>" if spec.get("type") == "LoadBalancer" else spec.get("externalName", "<none>")
    selector = ",".join(f"{k}={v}" for k, v in sorted((spec.get("selector") or {}).items())) or "<none>"
    return [svc["metadata"]["name"], spec.get("type", "ClusterIP"), spec.get("clusterIP", "<none>"), external, ports,
            age(svc["metadata"].get("creationTimestamp")), selector]


def _deployment_row(deploy: dict) -> list:
    spec, status = deploy.get("spec") or {}, deploy.get("status") or {}
    containers = ((spec.get("template") or {}).get("spec") or {}).get("containers") or []
    selector = ",".join(f"{k}={v}" for k, v in sorted(((spec.get("selector") or {}).get("matchLabels") or {}).items()))
    return [deploy["metadata"]["name"], f"{status.get('readyReplicas', 0)}/{spec.get('replicas', 1)}", status.get("updatedReplicas", 0),
            status.get("availableReplicas", 0), age(deploy["metadata"].get("creationTimestamp")),
            ",".join(c.get("name", "") for c in containers), ",".join(c.get("image", "") for c in containers), selector]


def _daemonset_row(ds: dict) -> list:
    spec, status = ds.get("spec") or {}, ds.get("status") or {}
    node_selector = ",".join(f"{k}={v}" for k, v in sorted((((spec.get("template") or {}).get("spec") or {}).get("nodeSelector") or {}).items()))
    return [ds["metadata"]["name"], status.get("desiredNumberScheduled", 0), status.get("currentNumberScheduled", 0),
            status.get("numberReady", 0), status.get("updatedNumberScheduled", 0), status.get("numberAvailable", 0),
            node_selector or "<none>", age(ds["metadata"].get("creationTimestamp"))]


def _netpol_row(policy: dict) -> list:
    selector = (policy.get("spec") or {}).get("podSelector") or {}
    labels = ",".join(f"{k}={v}" for k, v in sorted((selector.get("matchLabels") or {}).items()))
    return [policy["metadata"]["name"], labels or ("<none>" if not selector.get("matchExpressions") else "<expressions>"),
            age(policy["metadata"].get("creationTimestamp"))]


def _event_row(event: dict) -> list:
    involved = event.get("involvedObject") or {}
    last = event.get("lastTimestamp") or event.get("eventTime") or event["metadata"].get("creationTimestamp")
    return [age(last), event.get("type", ""), event.get("reason", ""), f"{involved.get('kind', '').lower()}/{involved.get('name', '')}",
            event.get("message", "")]


def _endpointslice_row(eps: dict) -> list:
    ports = ",".join(str(p.get("port")) for p in eps.get("ports") or []) or "<unset>"
    addresses = [a for e in eps.get("endpoints") or [] for a in e.get("addresses") or []]
    shown = ",".join(addresses[:3]) + (f" + {len(addresses) - 3} more..." if len(addresses) > 3 else "")
    return [eps["metadata"]["name"], eps.get("addressType", ""), ports, shown or "<unset>", age(eps["metadata"].get("creationTimestamp"))]


def _column(name: str, kind: str = "string", priority: int = 0, fmt: str = "") -> dict:
    return {"name": name, "type": kind, "format": fmt, "description": name, "priority": priority}


NAME = _column("Name", fmt="name")
AGE = _column("Age")

COLUMNS = {
    "Pod": ([NAME, _column("Ready"), _column("Status"), _column("Restarts", "string"), AGE, _column("IP", priority=1),
             _column("Node", priority=1), _column("Nominated Node", priority=1), _column("Readiness Gates", priority=1)], _pod_row),
    "Node": ([NAME, _column("Status"), _column("Roles"), AGE, _column("Version"), _column("Internal-IP", priority=1),
              _column("External-IP", priority=1), _column("OS-Image", priority=1), _column("Kernel-Version", priority=1),
              _column("Container-Runtime", priority=1)], _node_row),
    "Service": ([NAME, _column("Type"), _column("Cluster-IP"), _column("External-IP"), _column("Port(s)"), AGE,
                 _column("Selector", priority=1)], _service_row),
    "Deployment": ([NAME, _column("Ready"), _column("Up-to-date", "integer"), _column("Available", "integer"), AGE,
                    _column("Containers", priority=1), _column("Images", priority=1), _column("Selector", priority=1)], _deployment_row),
    "DaemonSet": ([NAME, _column("Desired", "integer"), _column("Current", "integer"), _column("Ready", "integer"),
                   _column("Up-to-date", "integer"), _column("Available", "integer"), _column("Node Selector"), AGE], _daemonset_row),
    "NetworkPolicy": ([NAME, _column("Pod-Selector"), AGE], _netpol_row),
    "Event": ([_column("Last Seen"), _column("Type"), _column("Reason"), _column("Object"), _column("Message")], _event_row),
    "EndpointSlice": ([NAME, _column("AddressType"), _column("Ports"), _column("Endpoints"), AGE], _endpointslice_row),
    "Namespace": ([NAME, _column("Status"), AGE],
                  lambda ns: [ns["metadata"]["name"], (ns.get("status") or {}).get("phase", "Active"), age(ns["metadata"].get("creationTimestamp"))]),
    "ConfigMap": ([NAME, _column("Data", "integer"), AGE],
                  lambda cm: [cm["metadata"]["name"], len(cm.get("data") or {}) + len(cm.get("binaryData") or {}),
                              age(cm["metadata"].get("creationTimestamp"))]),
    "ServiceAccount": ([NAME, _column("Secrets", "integer"), AGE],
                       lambda sa: [sa["metadata"]["name"], len(sa.get("secrets") or []), age(sa["metadata"].get("creationTimestamp"))]),
    "ServiceEntry": ([NAME, _column("Hosts"), _column("Location"), _column("Resolution"), AGE],
                     lambda se: [se["metadata"]["name"], json.dumps((se.get("spec") or {}).get("hosts", [])),
                                 (se.get("spec") or {}).get("location", ""), (se.get("spec") or {}).get("resolution", ""),
                                 age(se["metadata"].get("creationTimestamp"))]),
}


def partial_metadata(obj: dict) -> dict:
    return {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": obj["metadata"]}


def render_table(kind: str, objects: list[dict], resource_version: str, include_object: str = "Metadata") -> dict:
    columns, row_of = COLUMNS.get(kind, ([NAME, AGE], lambda obj: [obj["metadata"]["name"], age(obj["metadata"].get("creationTimestamp"))]))
    rows = []
    for obj in objects:
        row = {"cells": row_of(obj)}
        if include_object == "Object":
            row["object"] = obj
        elif include_object != "None":
            row["object"] = partial_metadata(obj)
        rows.append(row)
    return {"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": {"resourceVersion": resource_version},
            "columnDefinitions": columns, "rows": rows}
