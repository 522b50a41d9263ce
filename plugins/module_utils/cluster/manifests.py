"""Kubernetes manifests read from files, as the cluster would hold them once applied (offline mode)."""

import json
import os

try:
    import yaml
except ImportError:
    yaml = None

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
