"""NetworkPolicy egress semantics translated to the pod's iptables egress chain, and the SNAT/Corefile readers."""

import pytest
from kdlab.apiserver.dataplane import IP_MASQ_AGENT_DEFAULTS, egress_rules, snat_policy

WEB = {"metadata": {"name": "web", "namespace": "shop", "labels": {"app": "web"}}, "status": {"podIP": "10.244.0.3"},
       "spec": {"containers": [{"name": "web", "ports": [{"name": "http", "containerPort": 8080}]}]}}
DB = {"metadata": {"name": "db", "namespace": "data", "labels": {"app": "db"}}, "status": {"podIP": "10.244.1.7"},
      "spec": {"containers": [{"name": "db", "ports": [{"name": "pg", "containerPort": 5432}]}]}}
DNS = {"metadata": {"name": "coredns-x", "namespace": "kube-system", "labels": {"k8s-app": "kube-dns"}}, "status": {"podIP": "10.244.0.2"},
       "spec": {"containers": [{"name": "coredns"}]}}
PODS = [WEB, DB, DNS]
NAMESPACES = {n: {"metadata": {"name": n, "labels": {"kubernetes.io/metadata.name": n}}} for n in ("shop", "data", "kube-system")}
SERVICES = [{"metadata": {"name": "kube-dns", "namespace": "kube-system"}, "spec": {"selector": {"k8s-app": "kube-dns"}, "clusterIP": "10.96.0.10"}}]


def policy(spec: dict, namespace: str = "shop") -> dict:
    return {"metadata": {"name": "p", "namespace": namespace}, "spec": {"podSelector": {"matchLabels": {"app": "web"}}} | spec}


@pytest.mark.parametrize(("spec", "expected"), [
    ({"policyTypes": ["Ingress"]}, []),
    ({}, []),  # no egress section and no policyTypes: an ingress-only policy
    ({"policyTypes": ["Egress"]}, ["-j DROP"]),
    ({"egress": [{}]}, ["-j RETURN", "-j DROP"]),
    ({"egress": [{"ports": [{"port": 443}, {"protocol": "UDP", "port": 53}]}]},
     ["-p tcp --dport 443 -j RETURN", "-p udp --dport 53 -j RETURN", "-j DROP"]),
    ({"egress": [{"to": [{"ipBlock": {"cidr": "0.0.0.0/0", "except": ["128.0.0.0/1"]}}], "ports": [{"port": 8000, "endPort": 8100}]}]},
     ["-d 0.0.0.0/1 -p tcp --dport 8000:8100 -j RETURN", "-j DROP"]),
    ({"egress": [{"to": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}},
                          "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}}}], "ports": [{"protocol": "UDP", "port": 53}]}]},
     ["-d 10.244.0.2/32 -p udp --dport 53 -j RETURN", "-d 10.96.0.10/32 -p udp --dport 53 -j RETURN", "-j DROP"]),
    ({"egress": [{"to": [{"namespaceSelector": {}}], "ports": [{"port": "pg"}]}]}, ["-d 10.244.1.7/32 -p tcp --dport 5432 -j RETURN", "-j DROP"]),
    ({"egress": [{"to": [{"podSelector": {}}]}]}, ["-d 10.244.0.3/32 -j RETURN", "-j DROP"]),  # same namespace only
])
def test_egress_rules(spec, expected):
    assert egress_rules(WEB, [policy(spec)], PODS, NAMESPACES, SERVICES) == expected


def test_policies_of_other_namespaces_do_not_select_the_pod():
    assert egress_rules(WEB, [policy({"policyTypes": ["Egress"]}, namespace="data")], PODS, NAMESPACES, SERVICES) == []


def daemonset(name: str, env: dict | None = None) -> dict:
    container = {"name": name, "image": name, "env": [{"name": k, "value": v} for k, v in (env or {}).items()]}
    return {"kind": "DaemonSet", "metadata": {"name": name, "namespace": "kube-system"}, "spec": {"template": {"spec": {"containers": [container]}}}}


def configmap(name: str, data: dict) -> dict:
    return {"kind": "ConfigMap", "metadata": {"name": name, "namespace": "kube-system"}, "data": data}


KUBE_PROXY = configmap("kube-proxy", {"config.conf": "clusterCIDR: 10.244.0.0/16\niptables:\n  masqueradeAll: true\n"})
MASQ_NOTHING = configmap("ip-masq-agent", {"config": "nonMasqueradeCIDRs:\n  - 0.0.0.0/0\n"})


@pytest.mark.parametrize(("objects", "expected"), [
    ([daemonset("aws-node"), KUBE_PROXY], (True, ["10.244.0.0/16", "172.20.0.0/24"])),
    ([daemonset("aws-node", {"AWS_VPC_K8S_CNI_EXCLUDE_SNAT_CIDRS": "192.0.2.0/24"})], (True, ["10.244.0.0/16", "172.20.0.0/24", "192.0.2.0/24"])),
    ([daemonset("aws-node", {"AWS_VPC_K8S_CNI_EXTERNALSNAT": "true"})], (False, [])),
    ([daemonset("anetd"), MASQ_NOTHING], (True, ["0.0.0.0/0"])),
    ([daemonset("anetd")], (True, list(IP_MASQ_AGENT_DEFAULTS))),       # no ConfigMap: the agent's defaults (TEST-NET included)
    ([daemonset("azure-cns"), configmap("azure-ip-masq-agent-config-reconciled", {"ip-masq-agent-reconciled": "nonMasqueradeCIDRs: [172.20.0.0/24]\n"})],
     (True, ["172.20.0.0/24"])),
    ([daemonset("calico-node"), KUBE_PROXY], (True, ["10.244.0.0/16"])),   # kube-proxy's settings concern Service traffic only
    ([daemonset("cilium"), configmap("cilium-config", {"enable-ipv4-masquerade": "false"})], (False, [])),
    ([daemonset("cilium"), configmap("cilium-config", {"enable-ip-masq-agent": "true"}), MASQ_NOTHING], (True, ["0.0.0.0/0"])),
    ([], (True, ["10.244.0.0/16"])),
])
def test_snat_policy(objects, expected):
    enabled, cidrs, why = snat_policy(objects, "10.244.0.0/16", "172.20.0.0/24")
    assert (enabled, cidrs) == expected and why
