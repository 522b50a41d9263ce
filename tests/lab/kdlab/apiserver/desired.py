"""The objects a lab cluster's API server serves, and the data plane those objects imply.

`up` builds each cluster's data plane from these objects (NetworkPolicies -> pod egress chains, the coredns ConfigMap ->
the Corefile, the CNI / ip-masq-agent settings -> node SNAT, the CoreDNS Deployment's replicas), and the API server later
serves the same objects: what a diagnosis reads through the API is what the packets do. No aiohttp here: `up` imports it.
"""

import secrets

from kdlab import world
from kdlab.aws import plugin as aws_plugin

from .dataplane import egress_rules, snat_policy
from .resources import Registry
from .seed import bundles_for, cluster_objects, coredns_replicas, object_key


def describe(lab, cluster, corefile: str | None = None) -> dict:
    """One cluster as the API server's configuration describes it (docs/lab-apiserver.md), the scenario's objects included."""
    aws_ids = aws_plugin.provider_ids(lab).get(cluster.name, {})     # the lab's moto instances, once seeded
    scenario_cluster = next((c for c in lab.scenario["clusters"] if c["name"] == cluster.name), {})
    settings = {"corefile": corefile, "kube_proxy": {"cluster_cidr": cluster.pod_cidr}}
    if scenario_cluster.get("cni"):
        settings["cni"] = scenario_cluster["cni"]
    settings["tokens"] = [{"user": u["name"], "token": secrets.token_urlsafe(24), "rules": u["rules"], "deny": u["deny"]}
                          for u in scenario_cluster.get("users") or []]
    return {
        "name": cluster.name, "index": cluster.index, "provider": cluster.provider, "pod_cidr": cluster.pod_cidr,
        "vpc_cidr": cluster.vpc_cidr, "dns_service_ip": cluster.dns_service_ip,
        "nodes": [{"name": n.name, "index": n.index, "ip": n.ip, "pod_cidr": n.pod_cidr, **({"provider_id": aws_ids[n.name]} if n.name in aws_ids else {})}
                  for n in cluster.nodes],
        "pods": [{"namespace": p.namespace, "name": p.name, "node": p.node, "image": p.image, "labels": dict(p.labels),
                  "env": dict(p.env), "ip": p.ip, "log_path": p.log_path} for p in cluster.pods],
        "objects": scenario_cluster.get("objects") or [],
        "apiserver": settings,
    }


def objects_of(description: dict) -> list[dict]:
    settings = description.get("apiserver") or {}
    return cluster_objects(description, settings, Registry(bundles_for(description, settings)))


def initial_dataplane(description: dict) -> dict:
    """What the cluster's objects ask of the network, as `up` applies it:
    {egress: {lab pod ref: iptables rule specs}, corefile: the scenario's Corefile or None, snat: (enabled, CIDRs, why),
     coredns_running: bool}."""
    objects = objects_of(description)
    pods = []
    lab_refs = {}
    for obj in objects:
        if obj.get("kind") == "Pod" and "lab" in obj:
            api_pod = {key: value for key, value in obj.items() if key != "lab"} | {"status": {"podIP": obj["lab"]["ip"]}}
            pods.append(api_pod)
            lab_refs[id(api_pod)] = obj["lab"]["ref"]
    namespaces = {}
    for obj in objects:
        if obj.get("kind") == "Namespace":
            name = obj["metadata"]["name"]
            labels = {**(obj["metadata"].get("labels") or {}), "kubernetes.io/metadata.name": name}   # what admission adds
            namespaces[name] = {**obj, "metadata": {**obj["metadata"], "labels": labels}}
    policies = [o for o in objects if o.get("kind") == "NetworkPolicy" and o.get("apiVersion") == "networking.k8s.io/v1"]
    services = [o for o in objects if o.get("kind") == "Service"]
    egress = {}
    for pod in pods:
        rules = egress_rules(pod, policies, pods, namespaces, services)
        if rules:
            egress[lab_refs[id(pod)]] = rules
    own = {object_key(o): o for o in description.get("objects") or []}
    corefile = ((own.get(("", "ConfigMap", "kube-system", "coredns")) or {}).get("data") or {}).get("Corefile")
    return {"egress": egress, "corefile": corefile,
            "snat": snat_policy(objects, description.get("pod_cidr", world.POD_SUPERNET), description.get("vpc_cidr", "")),
            "coredns_running": coredns_replicas(objects) != 0}
