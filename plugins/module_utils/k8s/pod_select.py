"""Which pods a diagnosis is about: ``namespace/name``, ``namespace/deployment/name`` or ``namespace/<label selector>``.

``parse_pod_ref`` is pure and validates the reference; ``select_pods`` reads the cluster through a connected
``KubeClient`` (k8s/client.py) and returns the running pods, sorted by name, at most ``max_pods``.
"""

import re

from ansible_collections.kubediag.egress.plugins.module_utils.k8s.client import KubeError, api_path, is_valid_name

WORKLOAD_KINDS = {"deployment": "Deployment", "deploy": "Deployment", "deployments": "Deployment",
                  "statefulset": "StatefulSet", "sts": "StatefulSet", "daemonset": "DaemonSet", "ds": "DaemonSet"}
# A label selector as kubectl takes it: key=value, key==value, key!=value, key in (a,b), key notin (a), key, !key.
SELECTOR_TERM = re.compile(r"^(!?[A-Za-z0-9./_-]+)(\s*(==|=|!=)\s*[A-Za-z0-9._-]*|\s+(in|notin)\s*\([A-Za-z0-9._,\s-]*\))?$")


class PodRefError(ValueError):
    """The pod reference is malformed; str() says which form is expected."""


def _split_selector(selector):
    terms, depth, current = [], 0, ""
    for char in selector:
        depth += char == "("
        depth -= char == ")"
        if char == "," and depth == 0:
            terms.append(current.strip())
            current = ""
        else:
            current += char
    terms.append(current.strip())
    return terms


def parse_pod_ref(ref):
    """{namespace, kind: pod|workload|selector, name, workload_kind, selector} from a reference string."""
    forms = "namespace/name, namespace/deployment/name or namespace/<label selector> (e.g. shop/app=web)"
    if ref is None or (isinstance(ref, str) and not ref.strip()):
        raise PodRefError(f"no pod given: name the pod to diagnose as {forms}; the diagnose_egress playbook takes it as "
                          "-e pod=shop/web or from the inventory host var egress_pod")
    if not isinstance(ref, str) or "/" not in ref:
        raise PodRefError(f"pod {ref!r} is not a pod reference: use {forms}")
    namespace, rest = ref.split("/", 1)
    if not is_valid_name(namespace, "label"):
        raise PodRefError(f"pod {ref!r}: namespace {namespace!r} is not a valid namespace name: use {forms}")
    if any(op in rest for op in ("=", "!")) or " in " in rest or " notin " in rest:
        terms = _split_selector(rest)
        bad = [term for term in terms if not SELECTOR_TERM.match(term)]
        if bad:
            raise PodRefError(f"pod {ref!r}: {bad[0]!r} is not a label selector term (key=value, key!=value, key in (a,b), key, !key)")
        return {"namespace": namespace, "kind": "selector", "name": None, "workload_kind": None, "selector": ",".join(terms)}
    parts = rest.split("/")
    if len(parts) == 1 and is_valid_name(parts[0], "subdomain"):
        return {"namespace": namespace, "kind": "pod", "name": parts[0], "workload_kind": None, "selector": None}
    if len(parts) == 2 and parts[0].lower() in WORKLOAD_KINDS and is_valid_name(parts[1], "subdomain"):
        return {"namespace": namespace, "kind": "workload", "name": parts[1], "workload_kind": WORKLOAD_KINDS[parts[0].lower()], "selector": None}
    raise PodRefError(f"pod {ref!r} is not a pod reference: use {forms}")


def selector_string(label_selector):
    """kubectl's text form of a LabelSelector (matchLabels and matchExpressions) from a workload's spec.selector."""
    if not label_selector:
        return ""
    terms = [f"{key}={value}" for key, value in sorted((label_selector.get("matchLabels") or {}).items())]
    for expression in label_selector.get("matchExpressions") or []:
        key, operator, values = expression["key"], expression["operator"], expression.get("values") or []
        if operator in ("In", "NotIn"):
            terms.append(f"{key} {operator.lower()} ({','.join(values)})")
        elif operator == "Exists":
            terms.append(key)
        elif operator == "DoesNotExist":
            terms.append(f"!{key}")
    return ",".join(terms)


def _pod_entry(pod):
    meta, spec, status = pod.get("metadata") or {}, pod.get("spec") or {}, pod.get("status") or {}
    statuses = status.get("containerStatuses") or []
    return {"namespace": meta.get("namespace"), "name": meta.get("name"), "ref": f"{meta.get('namespace')}/{meta.get('name')}",
            "node": spec.get("nodeName"), "ip": status.get("podIP"), "phase": status.get("phase"), "labels": dict(meta.get("labels") or {}),
            "containers": [c.get("name") for c in spec.get("containers") or []],
            "ready": bool(statuses) and all(s.get("ready") for s in statuses)}


def _where(client):
    """(" in context X", "--context X ") for messages: a host that fell back to the default kubeconfig may be looking at
    another cluster than the user thinks."""
    context = getattr(client, "context", None)
    return (f" in context {context}", f"--context {context} ") if context else ("", "")


def _require_namespace(client, namespace):
    try:
        client.request("GET", api_path("v1", "namespaces", name=namespace), what=f"namespace {namespace}")
    except KubeError as error:
        if error.status == 404:
            where, flag = _where(client)
            raise KubeError(f"namespace {namespace} not found{where}: check the namespace (kubectl {flag}get namespaces).", status=404) from error
        if error.status != 403:  # may not read namespaces: the pod read below still answers
            raise


def _workload_selector(client, namespace, kind, name):
    plural = {"Deployment": "deployments", "StatefulSet": "statefulsets", "DaemonSet": "daemonsets"}[kind]
    try:
        workload = client.request("GET", api_path("apps/v1", plural, namespace, name), what=f"{kind} {namespace}/{name}")
    except KubeError as error:
        if error.status == 404:
            where, flag = _where(client)
            raise KubeError(f"{kind} {namespace}/{name} not found{where}: check the name (kubectl {flag}get {plural} -n {namespace}).",
                            status=404) from error
        raise
    return selector_string((workload.get("spec") or {}).get("selector"))


def select_pods(client, ref, max_pods=10):
    """(the parsed reference, running pods as dicts sorted by name, notes). Raises KubeError when nothing can be diagnosed."""
    parsed = parse_pod_ref(ref)
    namespace, notes = parsed["namespace"], []
    if parsed["kind"] == "pod":
        try:
            pod = client.request("GET", api_path("v1", "pods", namespace, parsed["name"]), what=f"pod {ref}")
        except KubeError as error:
            if error.status == 404:
                _require_namespace(client, namespace)
                where, flag = _where(client)
                raise KubeError(f"pod {ref} not found{where}: check the pod name (kubectl {flag}get pods -n {namespace}).", status=404) from error
            raise
        return parsed, [_pod_entry(pod)], notes
    _require_namespace(client, namespace)
    selector = parsed["selector"]
    if parsed["kind"] == "workload":
        selector = _workload_selector(client, namespace, parsed["workload_kind"], parsed["name"])
        parsed["selector"] = selector
    listed = client.list("v1", "pods", namespace, what=f"pods {selector} in {namespace}", query={"labelSelector": selector})
    pods = sorted((_pod_entry(p) for p in listed), key=lambda p: p["name"])
    running = [p for p in pods if p["phase"] == "Running"]
    if len(running) < len(pods):
        notes.append(f"{len(pods) - len(running)} pod(s) matching {selector!r} are not Running and are not diagnosed")
    if not running:
        where, flag = _where(client)
        raise KubeError(f"no running pod in namespace {namespace} matches {selector!r} ({ref}){where}: check the selector "
                        f"(kubectl {flag}get pods -n {namespace} -l '{selector}').", status=404)
    if len(running) > max_pods:
        notes.append(f"{len(running)} running pods match {selector!r}: diagnosing the first {max_pods} by name (raise max_pods for more)")
    return parsed, running[:max_pods], notes
