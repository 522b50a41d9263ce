"""The four info modules, run through Ansible against the lab API server: each gives the conclusion its cluster is built
to show, and what it may not read narrows the answer instead of failing it."""

from ansible_collections.kubediag.egress.plugins.module_utils.cluster.netpol import PolicySet, read_policy_objects
from ansible_collections.kubediag.egress.plugins.module_utils.k8s.reader import ClusterReader


def test_netpol_names_the_policy_that_blocks_and_the_rule_that_allows(run):
    result = run("netpol_egress_info", "netpol", check=True, namespace="shop", pod="web", port=443,
                 destinations=["203.0.113.10", {"to": "10.244.0.2", "port": 53, "protocol": "UDP"}])
    assert result["changed"] is False and not result.get("failed")
    blocked, dns_pod = result["destinations"]
    assert (blocked["allowed"], blocked["tier"], blocked["selected_by"]) == (False, "NetworkPolicy", ["shop/deny-external"])
    assert blocked["reasons"][-1] == "no egress rule of shop/deny-external allows TCP 203.0.113.10:443"
    assert dns_pod["allowed"] is True and dns_pod["destination_pod"].startswith("kube-system/coredns-")
    assert dns_pod["allowed_by"] == [{"policy": "shop/deny-external", "kind": "NetworkPolicy", "rule_index": 0, "rule": "egress[0]"}]
    assert result["allowed"] is False
    assert (result["dns"]["udp_allowed"], result["dns"]["tcp_allowed"]) == (True, True)
    assert result["policies_selecting"] == [{"policy": "shop/deny-external", "kind": "NetworkPolicy", "policy_types": ["Egress"]}]
    assert {entry["what"]: entry["reason"] for entry in result["not_checked"]} == {
        "ciliumnetworkpolicies.cilium.io": "not_installed", "adminnetworkpolicies.policy.networking.k8s.io": "not_installed",
        "baselineadminnetworkpolicies.policy.networking.k8s.io": "not_installed", "ciliumclusterwidenetworkpolicies.cilium.io": "not_installed"}


def test_netpol_port_decides_for_a_pod_allowed_only_443(run):
    result = run("netpol_egress_info", "netpol", namespace="shop", pod="client", check_dns=False,
                 destinations=[{"to": "203.0.113.10", "port": 443}, {"to": "203.0.113.10", "port": 80}])
    allowed, blocked = result["destinations"]
    assert allowed["allowed"] is True and allowed["allowed_by"][0]["policy"] == "shop/api-egress"
    assert blocked["allowed"] is False
    assert any(reason.startswith("NetworkPolicy shop/api-egress egress[0]: destination matches") and "but TCP 80 does not" in reason
               for reason in blocked["reasons"])
    assert result["dns"]["checked"] is False


def test_netpol_missing_pod_and_bad_destination_are_messages(run):
    missing = run("netpol_egress_info", "netpol", namespace="shop", pod="nope", destinations=["203.0.113.10"])
    assert missing["failed"] is True
    assert missing["msg"] == "pod shop/nope not found in context netpol: check the name and namespace"
    hostile = run("netpol_egress_info", "netpol", namespace="shop", pod="web", destinations=["api.example.test; touch /tmp/pwned"])
    assert hostile["failed"] is True
    assert hostile["msg"] == ("invalid input: destinations[0]: 'api.example.test; touch /tmp/pwned' is not an IP address, "
                              "a CIDR such as 10.0.0.0/8, a DNS host name or a pod as namespace/name")


def test_netpol_forbidden_lists_narrow_the_answer(kube):
    """A user who may read only shop and kube-system: Namespaces, Nodes, cluster-wide Pods and Services are out of reach."""
    reader = ClusterReader(kube("netpol", "shop-reader-token"))
    objects, dns_service = read_policy_objects(reader, "shop")
    forbidden = sorted(entry["what"] for entry in reader.not_checked if entry["reason"] == "forbidden")
    assert forbidden == ["Endpoints default/kubernetes", "namespaces", "nodes", "pods in all namespaces", "services in all namespaces"]
    assert "Without it, namespaces are not taken into account" in next(e["message"] for e in reader.not_checked if e["what"] == "namespaces")
    assert dns_service["spec"]["clusterIP"] == "10.96.0.10"
    answer = PolicySet(objects).egress("shop/web", "203.0.113.10", "TCP", 443)
    assert (answer["allowed"], answer["selected_by"]) == (False, ["shop/deny-external"])


def test_coredns_names_the_dead_upstream_and_the_log_errors(run, dns_upstreams):
    result = run("coredns_info", "dns", probe_upstream=True, probe_pod="shop/web", tail_lines=50)
    dead, live = f"127.0.0.1:{dns_upstreams.silent}", f"127.0.0.1:{dns_upstreams.answering}"
    assert result["changed"] is False and not result.get("failed")
    assert [upstream["raw"] for upstream in result["upstreams"]] == [dead, live]
    probes = {probe["upstream"]: probe for probe in result["upstream_probes"]}
    assert (probes[dead]["answered"], probes[dead]["status"], probes[dead]["tool"]) == (False, "timeout", "dig")
    assert (probes[live]["answered"], probes[live]["status"]) == (True, "NOERROR")
    assert result["logs"]["dominant_error"] == "upstream_timeout"
    assert result["logs"]["upstreams_in_errors"] == [{"address": dead, "count": 4}]
    assert result["pods_ready"] is True and len(result["pods"]) == 1
    assert result["cluster_dns_ip"] == "10.96.0.10"
    assert result["nodelocal_dns"]["enabled"] is False
    assert result["not_checked"] == []


def test_coredns_without_log_and_exec_rights_still_reads_the_config(run_as, dns_upstreams):
    result = run_as("coredns_info", "dns", "no-logs-token", probe_upstream=True, probe_pod="shop/web")
    assert not result.get("failed"), result.get("msg")
    assert result["forward"]["upstreams"][0]["port"] == dns_upstreams.silent
    reasons = {entry["what"]: entry["reason"] for entry in result["not_checked"]}
    assert reasons[f"log of pod {result['pods'][0]['pod']}"] == "forbidden"
    assert reasons["exec in pod shop/web"] == "forbidden"
    assert [probe["status"] for probe in result["upstream_probes"]] == ["not_probed"]


def test_coredns_probe_pod_must_exist(run):
    result = run("coredns_info", "dns", probe_upstream=True, probe_pod="shop/ghost", tail_lines=0)
    assert result["msg"] == "pod shop/ghost not found in context dns: check the name and namespace"


def test_cluster_network_names_the_setting_that_turns_snat_off(run):
    result = run("cluster_network_info", "snat", destination="203.0.113.10")
    assert result["cni"]["primary"] == "gke-dataplane-v2"
    assert result["ip_masq_agent"]["non_masquerade_cidrs"] == ["0.0.0.0/0"]
    assert (result["snat"]["snat"], result["snat"]["by"]) == (False, "GKE Dataplane V2")
    assert any("nonMasqueradeCIDRs 0.0.0.0/0 (ConfigMap kube-system/ip-masq-agent" in reason for reason in result["snat"]["reasons"])
    assert result["nodes"][0]["cloud"] == "gcp" and result["nodes"][0]["instance_id"].endswith("node-1")
    assert [entry["what"] for entry in result["not_checked"]] == ["ippools.crd.projectcalico.org"]


def test_cluster_network_on_aws_needs_the_vpc_cidrs_to_decide(run):
    unknown = run("cluster_network_info", "netpol", destination="203.0.113.10")
    assert unknown["snat"]["snat"] is None  # a private-range address may be inside the VPC, which was not given
    result = run("cluster_network_info", "netpol", destination="203.0.113.10", vpc_cidrs=["172.20.0.0/16"])
    assert (result["snat"]["snat"], result["snat"]["by"]) == (True, "AWS VPC CNI")
    assert result["kube_proxy"]["mode"] == "iptables"


def test_mesh_registry_only_without_service_entry_for_the_port(run):
    result = run("mesh_egress_info", "mesh", namespace="shop", pod="meshed", destination="api.example.test", port=443)
    assert (result["istio_installed"], result["injected"], result["mode"], result["blocked"]) == (True, True, "REGISTRY_ONLY", True)
    assert result["near_misses"] == ["ServiceEntry shop/api covers api.example.test but not port 443 (ports: [80])"]
    assert any("BlackHoleCluster" in reason for reason in result["reasons"])
    allowed = run("mesh_egress_info", "mesh", namespace="shop", pod="meshed", destination="api.example.test", port=80)
    assert allowed["blocked"] is False and allowed["matching_service_entries"][0]["name"] == "api"


def test_mesh_without_istio_is_an_answer(run):
    result = run("mesh_egress_info", "netpol", namespace="shop", pod="web", destination="api.example.test", port=443)
    assert (result["istio_installed"], result["blocked"], result["injected"]) == (False, False, False)
    assert "the Istio networking CRDs are not installed: Istio does not filter this pod's egress" in result["reasons"]
    assert {entry["reason"] for entry in result["not_checked"]} == {"not_installed"}
