"""Build a `Cluster` (types, objects, tokens, runtime, faults) from one cluster description."""

import secrets

from .execution import HostRuntime
from .rbac import Authenticator
from .resources import Registry
from .seed import bundles_for, cluster_objects
from .server import ApiServer, Cluster, Faults, Target
from .store import Store


def build_cluster(description: dict, runtime=None, audit_file=None) -> Cluster:
    """`description`: a lab.json cluster entry, with optional `apiserver` settings (see docs/lab-apiserver.md)."""
    settings = description.get("apiserver") or {}
    registry = Registry(bundles_for(description, settings))
    admin_token = settings.get("admin_token") or secrets.token_urlsafe(24)
    tokens = [{"user": "kubernetes-admin", "token": admin_token, "groups": ["system:masters", "system:authenticated"], "rules": "*"}]
    tokens += settings.get("tokens") or []
    cluster = Cluster(
        name=description["name"], registry=registry, store=Store(), authenticator=Authenticator(tokens),
        runtime=runtime or HostRuntime(paths=settings.get("paths")), kubernetes_version=str(settings.get("kubernetes_version", "1.30.4")),
        container_runtime=settings.get("container_runtime", "containerd"), faults=Faults.from_spec(settings.get("faults")),
        log_files=dict(settings.get("log_files") or {}), audit_file=audit_file, admin_token=admin_token)
    lab_ips: dict[str, str] = {}
    cluster.pod_ip_allocator = lambda pod, node: lab_ips.pop(f"{pod['metadata']['namespace']}/{pod['metadata']['name']}", None) or \
        server.allocate_pod_ip_from_cidr(node)
    server = ApiServer(cluster)
    for obj in cluster_objects(description, settings, registry):
        rt = registry.by_api_version_kind(obj.get("apiVersion", ""), obj.get("kind", ""))
        if rt is None:
            raise ValueError(f"cluster {cluster.name}: the object {obj.get('kind')} {obj.get('metadata', {}).get('name')} has apiVersion "
                             f"{obj.get('apiVersion')!r}, which this API server does not serve; see docs/lab-apiserver.md for the kinds it knows")
        if "lab" in obj:
            lab = obj.pop("lab")
            api_ref = f"{obj['metadata']['namespace']}/{obj['metadata']['name']}"
            lab_ips[api_ref] = lab["ip"]
            cluster.pod_refs[api_ref] = lab["ref"]
            container = obj["spec"]["containers"][0]["name"]
            if lab.get("log_path"):
                cluster.log_files.setdefault(f"{api_ref}/{container}", lab["log_path"])
        version = obj["apiVersion"].rpartition("/")[2]
        target = Target(rt, version, obj.get("metadata", {}).get("namespace", "") if rt.namespaced else "", "", "")
        server.commit_create(target, server.prepare_create(target, obj), dry_run=False)
    return cluster
