"""NetworkPolicy egress semantics translated to the pod's iptables egress chain, and the SNAT/Corefile readers."""

import pytest
from kdlab.apiserver.dataplane import egress_rules, snat_settings

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


@pytest.mark.parametrize(("kube_proxy", "ip_masq", "expected"), [
    ("clusterCIDR: 10.244.0.0/16\niptables:\n  masqueradeAll: false\n", None, (True, ["10.244.0.0/16"])),
    ("clusterCIDR: 10.244.0.0/16\niptables:\n  masqueradeAll: true\n", None, (True, [])),
    ("mode: iptables\n", None, (False, [])),
    ("clusterCIDR: 10.244.0.0/16\n", "nonMasqueradeCIDRs:\n  - 10.0.0.0/8\n", (True, ["10.0.0.0/8"])),
])
def test_snat_settings(kube_proxy, ip_masq, expected):
    assert snat_settings(kube_proxy, ip_masq) == expected
