"""Reading cluster objects for the analysers: ``ClusterReader`` and the small helpers every reader shares.

``ClusterReader`` lists and gets objects through ``KubeClient.call`` (retries, human errors) as plain dicts, with
pagination. A kind whose CRD is not installed, or a list the user may not read, narrows what is known: the reader
returns nothing for it and records why in ``not_checked``; it never aborts the diagnosis.
"""

import os
import re

from ansible_collections.kubediag.egress.plugins.module_utils.k8s.client import KubeError, api_path

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
