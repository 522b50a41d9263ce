"""A cluster's contents, generated from the lab's description of it: nodes with cloud provider IDs, namespaces,
the scenario's pods, CoreDNS (Deployment, pods, kube-dns Service, Corefile), kube-proxy, ip-masq-agent, the CNI,
CRDs for the installed bundles, then the scenario's own `objects`.

The description is one entry of lab.json's `clusters` (see docs/lab.md), optionally with `apiserver` settings.
"""

import copy
import hashlib

from .patch import merge_patch
from .resources import RESOURCE_TYPES, Registry

IMAGES = {
    "netshoot": "nicolaka/netshoot:v0.13",
    "busybox": "busybox:1.36",
    "distroless": "gcr.io/distroless/static-debian12:nonroot",
    "coredns": "registry.k8s.io/coredns/coredns:v1.11.1",
}
CNI_BY_PROVIDER = {"aws": "aws-node", "gce": "calico-node", "azure": "azure-cns"}
CNI_IMAGES = {"aws-node": "602401143452.dkr.ecr.eu-west-1.amazonaws.com/amazon-k8s-cni:v1.18.3",
              "calico-node": "docker.io/calico/node:v3.28.1", "azure-cns": "mcr.microsoft.com/containernetworking/azure-cns:v1.6.5",
              "cilium": "quay.io/cilium/cilium:v1.16.1"}
REGIONS = {"aws": ("eu-west-1", "eu-west-1a"), "gce": ("europe-west1", "europe-west1-b"), "azure": ("westeurope", "westeurope-1")}
INSTANCE_TYPES = {"aws": "m5.large", "gce": "e2-standard-4", "azure": "Standard_D4s_v5"}
COREFILE = """.:53 {{
    errors
    health {{
       lameduck 5s
    }}
    ready
    kubernetes cluster.local in-addr.arpa ip6.arpa {{
       pods insecure
       fallthrough in-addr.arpa ip6.arpa
       ttl 30
    }}
    prometheus :9153
    forward . {upstreams} {{
       max_concurrent 1000
    }}
    cache 30
    loop
    reload
    loadbalance
}}
"""


def _digest(*parts: str) -> str:
    return hashlib.sha256("/".join(parts).encode()).hexdigest()


def provider_id(provider: str, cluster: str, node: str, index: int) -> str:
    region, zone = REGIONS[provider]
    if provider == "aws":
        return f"aws:///{zone}/i-0{_digest(cluster, node)[:16]}"
    if provider == "gce":
        return f"gce://kubediag-lab/{zone}/gke-{cluster}-default-pool-{_digest(cluster, node)[:8]}-{node}"
    return (f"azure:///subscriptions/{_uuid(cluster)}/resourceGroups/mc_{cluster}-rg_{cluster}_{region}/providers/"
            f"Microsoft.Compute/virtualMachineScaleSets/aks-nodepool1-{int(_digest(cluster)[:8], 16) % 10**8:08d}-vmss/virtualMachines/{index}")


def _uuid(*parts: str) -> str:
    h = _digest(*parts)
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:32]}"


def _meta(name: str, namespace: str | None = None, **extra) -> dict:
    metadata = {"name": name, **extra}
    if namespace:
        metadata["namespace"] = namespace
    return metadata


def node_object(cluster: dict, node: dict, version: str, runtime: str) -> dict:
    provider = cluster.get("provider", "aws")
    region, zone = REGIONS[provider]
    labels = {"kubernetes.io/hostname": node["name"], "kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64",
              "topology.kubernetes.io/region": region, "topology.kubernetes.io/zone": zone,
              "node.kubernetes.io/instance-type": INSTANCE_TYPES[provider]}
    labels |= {"aws": {"eks.amazonaws.com/nodegroup": "default"}, "gce": {"cloud.google.com/gke-nodepool": "default-pool"},
               "azure": {"kubernetes.azure.com/agentpool": "nodepool1"}}[provider]
    addresses = [{"type": "InternalIP", "address": node["ip"]}, {"type": "Hostname", "address": node["name"]}]
    runtime_version = "containerd://1.7.20" if runtime == "containerd" else "docker://24.0.7"
    return {"apiVersion": "v1", "kind": "Node", "metadata": _meta(node["name"], labels=labels, annotations={
        "node.alpha.kubernetes.io/ttl": "0", "volumes.kubernetes.io/controller-managed-attach-detach": "true"}),
        "spec": {"podCIDR": node["pod_cidr"], "podCIDRs": [node["pod_cidr"]],
                 "providerID": node.get("provider_id") or provider_id(provider, cluster["name"], node["name"], node.get("index", 0))},
        "status": {"addresses": addresses, "conditions": [
            {"type": "Ready", "status": "True", "reason": "KubeletReady", "message": "kubelet is posting ready status"},
            {"type": "MemoryPressure", "status": "False", "reason": "KubeletHasSufficientMemory"},
            {"type": "DiskPressure", "status": "False", "reason": "KubeletHasNoDiskPressure"},
            {"type": "PIDPressure", "status": "False", "reason": "KubeletHasSufficientPID"}],
            "capacity": {"cpu": "4", "memory": "16331460Ki", "pods": "110"}, "allocatable": {"cpu": "3920m", "memory": "14113988Ki", "pods": "110"},
            "nodeInfo": {"kubeletVersion": f"v{version}", "kubeProxyVersion": f"v{version}", "containerRuntimeVersion": runtime_version,
                         "osImage": "Debian GNU/Linux 12 (bookworm)", "kernelVersion": "6.1.0-25-cloud-amd64", "operatingSystem": "linux",
                         "architecture": "amd64", "machineID": _digest(node["name"])[:32], "systemUUID": _uuid(node["name"]),
                         "bootID": _uuid("boot", node["name"])}}}


def pod_object(pod: dict, owner: dict | None = None) -> dict:
    container_name = pod.get("container") or ("coredns" if pod.get("image") == "coredns" else pod["name"])
    container = {"name": container_name, "image": IMAGES.get(pod.get("image", "netshoot"), pod.get("image", "")),
                 "env": [{"name": k, "value": v} for k, v in sorted((pod.get("env") or {}).items())]}
    if not container["env"]:
        del container["env"]
    if pod.get("image") in ("netshoot", "busybox"):
        container["command"] = ["sleep", "infinity"]
    if pod.get("image") == "coredns":
        container |= {"args": ["-conf", "/etc/coredns/Corefile"],
                      "ports": [{"name": "dns", "containerPort": 53, "protocol": "UDP"}, {"name": "dns-tcp", "containerPort": 53, "protocol": "TCP"},
                                {"name": "metrics", "containerPort": 9153, "protocol": "TCP"}],
                      "volumeMounts": [{"name": "config-volume", "mountPath": "/etc/coredns", "readOnly": True}]}
    metadata = _meta(pod["name"], pod["namespace"], labels=dict(pod.get("labels") or {}))
    if owner:
        metadata["ownerReferences"] = [owner]
    spec = {"containers": [container], "nodeName": pod["node"], "dnsPolicy": "Default" if pod.get("image") == "coredns" else "ClusterFirst"}
    if pod.get("image") == "coredns":
        spec |= {"serviceAccountName": "coredns", "priorityClassName": "system-cluster-critical",
                 "volumes": [{"name": "config-volume", "configMap": {"name": "coredns", "items": [{"key": "Corefile", "path": "Corefile"}]}}]}
    lab = {"ip": pod["ip"], "ref": pod.get("lab_ref", f"{pod['namespace']}/{pod['name']}"), "log_path": pod.get("log_path")}
    return {"apiVersion": "v1", "kind": "Pod", "metadata": metadata, "spec": spec, "lab": lab}


def coredns_objects(cluster: dict, settings: dict, coredns_pods: list[dict]) -> list[dict]:
    upstreams = " ".join(settings.get("coredns_forward") or ["/etc/resolv.conf"])
    labels = {"k8s-app": "kube-dns"}
    dns_ip = cluster.get("dns_service_ip", "10.96.0.10")
    objects = [
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": _meta("coredns", "kube-system"),
         "data": {"Corefile": settings.get("corefile") or COREFILE.format(upstreams=upstreams)}},
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": _meta("coredns", "kube-system")},
        {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": _meta("coredns", "kube-system", labels=labels),
         "spec": {"replicas": len(coredns_pods), "selector": {"matchLabels": labels},
                  "template": {"metadata": {"labels": labels}, "spec": {k: v for k, v in pod_object(
                      {"name": "coredns", "namespace": "kube-system", "image": "coredns", "node": "", "ip": ""})["spec"].items()
                      if k != "nodeName"}}}},
        {"apiVersion": "v1", "kind": "Service", "metadata": _meta("kube-dns", "kube-system", labels=labels | {
            "kubernetes.io/cluster-service": "true", "kubernetes.io/name": "CoreDNS"}),
         "spec": {"selector": labels, "clusterIP": dns_ip, "clusterIPs": [dns_ip], "type": "ClusterIP", "ports": [
             {"name": "dns", "port": 53, "protocol": "UDP", "targetPort": 53}, {"name": "dns-tcp", "port": 53, "protocol": "TCP", "targetPort": 53},
             {"name": "metrics", "port": 9153, "protocol": "TCP", "targetPort": 9153}]}},
        {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice", "metadata": _meta("kube-dns-" + _digest(cluster["name"])[:5], "kube-system",
                                                                                         labels={"kubernetes.io/service-name": "kube-dns"}),
         "addressType": "IPv4", "endpoints": [{"addresses": [p["ip"]], "conditions": {"ready": True}, "nodeName": p["node"],
                                               "targetRef": {"kind": "Pod", "namespace": "kube-system", "name": p["name"]}} for p in coredns_pods],
         "ports": [{"name": "dns", "port": 53, "protocol": "UDP"}, {"name": "dns-tcp", "port": 53, "protocol": "TCP"},
                   {"name": "metrics", "port": 9153, "protocol": "TCP"}]},
    ]
    return objects


def kube_proxy_config(settings: dict, cluster: dict) -> str:
    return (f"apiVersion: kubeproxy.config.k8s.io/v1alpha1\nkind: KubeProxyConfiguration\n"
            f"clusterCIDR: {settings.get('cluster_cidr', cluster.get('pod_cidr', '10.244.0.0/16'))}\n"
            f"mode: {settings.get('mode', 'iptables')}\n"
            f"iptables:\n  masqueradeAll: {str(bool(settings.get('masquerade_all', False))).lower()}\n  masqueradeBit: 14\n"
            f"  minSyncPeriod: 1s\n  syncPeriod: 30s\n")


def daemonset(name: str, namespace: str, image: str, labels: dict) -> dict:
    return {"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": _meta(name, namespace, labels=labels),
            "spec": {"selector": {"matchLabels": labels}, "template": {"metadata": {"labels": labels}, "spec": {
                "hostNetwork": True, "containers": [{"name": name, "image": image}]}}}}


def crd_object(bundle_types) -> list[dict]:
    crds = []
    for rt in bundle_types:
        crds.append({"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition", "metadata": _meta(f"{rt.plural}.{rt.group}"),
                     "spec": {"group": rt.group, "scope": "Namespaced" if rt.namespaced else "Cluster",
                              "names": {"kind": rt.kind, "listKind": rt.list_kind, "plural": rt.plural, "singular": rt.singular,
                                        "shortNames": list(rt.short_names)} | ({"categories": list(rt.categories)} if rt.categories else {}),
                              "versions": [{"name": v, "served": True, "storage": v == rt.preferred_version,
                                            "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}}}
                                           for v in rt.versions]},
                     "status": {"conditions": [{"type": "Established", "status": "True", "reason": "InitialNamesAccepted"}],
                                "acceptedNames": {"kind": rt.kind, "plural": rt.plural}, "storedVersions": [rt.preferred_version]}})
    return crds


def bundles_for(cluster: dict, settings: dict) -> frozenset[str]:
    """CRD bundles: asked for explicitly, or implied by the scenario's objects."""
    wanted = set(settings.get("crds") or [])
    for obj in cluster.get("objects") or []:
        group = obj.get("apiVersion", "").rpartition("/")[0]
        wanted |= {rt.bundle for rt in RESOURCE_TYPES if rt.bundle and rt.group == group and rt.kind == obj.get("kind")}
    return frozenset(wanted)


def cluster_objects(cluster: dict, settings: dict, registry: Registry) -> list[dict]:
    """Every object of a fresh cluster, in creation order (namespaces first).

    Pods carry `lab` (their lab address, lab name and log file), which the loader removes: CoreDNS pods get the names a
    Deployment gives them (coredns-<hash>-<id>), and logs and exec keep following the lab's pod."""
    version = settings.get("kubernetes_version", "1.30.4")
    runtime = settings.get("container_runtime", "containerd")
    pods = cluster.get("pods") or []
    coredns_pods = [p for p in pods if p.get("image") == "coredns"]
    namespaces = ["default", "kube-system", "kube-public", "kube-node-lease"]
    for name in [p["namespace"] for p in pods] + [o.get("metadata", {}).get("namespace") for o in cluster.get("objects") or []]:
        if name and name not in namespaces:
            namespaces.append(name)
    found = [{"apiVersion": "v1", "kind": "Namespace", "metadata": _meta(name)} for name in namespaces]
    found += [node_object(cluster, node, version, runtime) for node in cluster.get("nodes") or []]
    found.append({"apiVersion": "v1", "kind": "Service",
                  "metadata": _meta("kubernetes", "default", labels={"component": "apiserver", "provider": "kubernetes"}),
                  "spec": {"clusterIP": "10.96.0.1", "clusterIPs": ["10.96.0.1"], "type": "ClusterIP",
                           "ports": [{"name": "https", "port": 443, "protocol": "TCP", "targetPort": 6443}]}})
    found += crd_object([rt for rt in registry.types if rt.crd])
    found += coredns_objects(cluster, settings, coredns_pods)
    replica_set = {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": f"coredns-{_digest(cluster['name'], 'rs')[:10]}",
                   "uid": _uuid(cluster["name"], "coredns-rs"), "controller": True, "blockOwnerDeletion": True}
    for pod in pods:
        owner = replica_set if pod.get("image") == "coredns" else None
        if owner:
            pod = pod | {"name": f"{replica_set['name']}-{_digest(pod['name'], pod['node'])[:5]}", "lab_ref": f"{pod['namespace']}/{pod['name']}",
                         "labels": {**pod.get("labels", {}), "k8s-app": "kube-dns"}}
        found.append(pod_object(pod, owner))
    proxy = settings.get("kube_proxy") or {}
    found.append({"apiVersion": "v1", "kind": "ConfigMap", "metadata": _meta("kube-proxy", "kube-system", labels={"app": "kube-proxy"}),
                  "data": {"config.conf": kube_proxy_config(proxy, cluster)}})
    found.append(daemonset("kube-proxy", "kube-system", f"registry.k8s.io/kube-proxy:v{version}", {"k8s-app": "kube-proxy"}))
    masq = settings.get("ip_masq_agent")
    if masq is not None:
        cidrs = "".join(f"  - {c}\n" for c in masq.get("nonMasqueradeCIDRs") or [])
        found.append({"apiVersion": "v1", "kind": "ConfigMap", "metadata": _meta("ip-masq-agent", "kube-system"),
                      "data": {"config": f"nonMasqueradeCIDRs:\n{cidrs}masqLinkLocal: {str(bool(masq.get('masqLinkLocal'))).lower()}\n"
                                         f"resyncInterval: 60s\n"}})
        found.append(daemonset("ip-masq-agent", "kube-system", "registry.k8s.io/networking/ip-masq-agent:v2.10.0", {"k8s-app": "ip-masq-agent"}))
    elif cluster.get("provider") == "azure":
        # AKS: Azure CNI leaves masquerading to azure-ip-masq-agent, which keeps the VNet and pod ranges unmasqueraded.
        ranges = "".join(f"  - {c}\n" for c in (cluster.get("vpc_cidr"), cluster.get("pod_cidr", "10.244.0.0/16")) if c)
        found.append({"apiVersion": "v1", "kind": "ConfigMap", "metadata": _meta("azure-ip-masq-agent-config-reconciled", "kube-system", labels={
            "component": "ip-masq-agent", "kubernetes.azure.com/managedby": "aks"}),
            "data": {"ip-masq-agent-reconciled": f"nonMasqueradeCIDRs:\n{ranges}masqLinkLocal: true\n"}})
        found.append(daemonset("azure-ip-masq-agent", "kube-system", "mcr.microsoft.com/aks/ip-masq-agent-v2:v0.1.11", {"k8s-app": "azure-ip-masq-agent"}))
    cni = settings.get("cni") or CNI_BY_PROVIDER[cluster.get("provider", "aws")]
    found.append(daemonset(cni, "kube-system", CNI_IMAGES.get(cni, cni), {"k8s-app": cni}))
    return overlay(found, copy.deepcopy(cluster.get("objects") or []))


def object_key(obj: dict) -> tuple[str, str, str, str]:
    """(API group, kind, namespace, name): the identity of an object whatever version it is written in."""
    metadata = obj.get("metadata") or {}
    return obj.get("apiVersion", "").rpartition("/")[0], obj.get("kind", ""), metadata.get("namespace", ""), metadata.get("name", "")


def overlay(seeded: list[dict], own: list[dict]) -> list[dict]:
    """The scenario's own objects that name a seeded one (e.g. the coredns ConfigMap, the CNI DaemonSet) are merged into it
    (JSON merge patch: mappings merge, lists and values replace, null removes); the others are added after. A Deployment
    kube-system/coredns with `replicas: 0` removes the CoreDNS pods and the kube-dns endpoints, as scaling CoreDNS down would."""
    by_key = {object_key(obj): obj for obj in own}
    found = [merge_patch(obj, by_key.pop(object_key(obj))) if object_key(obj) in by_key else obj for obj in seeded]
    found += [obj for obj in own if object_key(obj) in by_key]
    if coredns_replicas(found) == 0:
        found = [obj for obj in found if not (obj.get("kind") == "Pod" and (obj.get("metadata") or {}).get("labels", {}).get("k8s-app") == "kube-dns"
                                              and (obj.get("metadata") or {}).get("namespace") == "kube-system")]
        for obj in found:
            if obj.get("kind") == "EndpointSlice" and (obj.get("metadata") or {}).get("labels", {}).get("kubernetes.io/service-name") == "kube-dns":
                obj["endpoints"] = []
    return found


def coredns_replicas(objects: list[dict]) -> int | None:
    deployment = next((o for o in objects if object_key(o) == ("apps", "Deployment", "kube-system", "coredns")), None)
    return None if deployment is None else (deployment.get("spec") or {}).get("replicas", 1)
