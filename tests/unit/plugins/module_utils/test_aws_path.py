"""The VPC path decision over describe_* answers shaped as real AWS returns them (protocols as numbers, the default NACL
with its 32767 entries, custom NACLs that list them too, routes whose NAT gateway is gone)."""

import copy
import ipaddress
import re

import pytest

from ansible_collections.kubediag.egress.plugins.module_utils.cloud.aws_path import (
    AwsPathError,
    acl_decision,
    evaluate_path,
    protocol_number,
)

DEST = {"ip": "198.51.100.10", "port": 443, "protocol": "tcp"}
NODE_IP, POD_IP = "10.0.1.20", "10.0.1.57"
EIP = "203.0.113.10"


def acl_entry(number, action, egress, protocol="-1", cidr="0.0.0.0/0", ports=None):
    entry = {"CidrBlock": cidr, "Egress": egress, "Protocol": protocol, "RuleAction": action, "RuleNumber": number}
    if ports:
        entry["PortRange"] = {"From": ports[0], "To": ports[1]}
    return entry


def open_acl(acl_id, subnets, default=False):
    """A NACL that allows everything both ways, with AWS's own trailing 32767 denies."""
    return {"NetworkAclId": acl_id, "VpcId": "vpc-1", "IsDefault": default,
            "Associations": [{"NetworkAclAssociationId": f"aclassoc-{s}", "NetworkAclId": acl_id, "SubnetId": s} for s in subnets],
            "Entries": [acl_entry(100, "allow", True), acl_entry(32767, "deny", True),
                        acl_entry(100, "allow", False), acl_entry(32767, "deny", False)]}


def snapshot():
    """A private node subnet (subnet-node) behind a public NAT gateway in subnet-public, as AWS describes it."""
    node_eni = {"NetworkInterfaceId": "eni-node", "SubnetId": "subnet-node", "VpcId": "vpc-1", "InterfaceType": "interface",
                "PrivateIpAddress": NODE_IP, "Groups": [{"GroupId": "sg-node", "GroupName": "node"}],
                "Attachment": {"DeviceIndex": 0, "Status": "attached"},
                "PrivateIpAddresses": [{"Primary": True, "PrivateIpAddress": NODE_IP},
                                       {"Primary": False, "PrivateIpAddress": POD_IP}]}
    pod_eni = {"NetworkInterfaceId": "eni-pods", "SubnetId": "subnet-node", "VpcId": "vpc-1", "InterfaceType": "interface",
               "PrivateIpAddress": "10.0.1.80", "Groups": [{"GroupId": "sg-pods", "GroupName": "pods"}],
               "Attachment": {"DeviceIndex": 1, "Status": "attached"},
               "PrivateIpAddresses": [{"Primary": True, "PrivateIpAddress": "10.0.1.80"},
                                      {"Primary": False, "PrivateIpAddress": "10.0.1.81"}]}
    return {
        "instance": {"InstanceId": "i-node", "SubnetId": "subnet-node", "VpcId": "vpc-1", "PrivateIpAddress": NODE_IP,
                     "NetworkInterfaces": [node_eni]},
        "network_interfaces": [node_eni, pod_eni],
        "security_groups": [
            {"GroupId": "sg-node", "GroupName": "node", "VpcId": "vpc-1",
             "IpPermissionsEgress": [{"IpProtocol": "-1", "IpRanges": [{"CidrIp": "0.0.0.0/0"}], "Ipv6Ranges": [],
                                      "PrefixListIds": [], "UserIdGroupPairs": []}]},
            {"GroupId": "sg-pods", "GroupName": "pods", "VpcId": "vpc-1",
             "IpPermissionsEgress": [{"IpProtocol": "tcp", "FromPort": 5432, "ToPort": 5432,
                                      "IpRanges": [{"CidrIp": "10.0.0.0/16"}], "Ipv6Ranges": [], "PrefixListIds": [],
                                      "UserIdGroupPairs": []}]},
        ],
        "network_acls": [open_acl("acl-default", ["subnet-node", "subnet-public"], default=True)],
        "route_tables": [
            {"RouteTableId": "rtb-main", "VpcId": "vpc-1",
             "Associations": [{"Main": True, "RouteTableAssociationId": "rtbassoc-main", "RouteTableId": "rtb-main"}],
             "Routes": [{"DestinationCidrBlock": "10.0.0.0/16", "GatewayId": "local", "Origin": "CreateRouteTable",
                         "State": "active"}]},
            {"RouteTableId": "rtb-private", "VpcId": "vpc-1",
             "Associations": [{"Main": False, "SubnetId": "subnet-node", "RouteTableId": "rtb-private"}],
             "Routes": [{"DestinationCidrBlock": "10.0.0.0/16", "GatewayId": "local", "State": "active"},
                        {"DestinationCidrBlock": "0.0.0.0/0", "NatGatewayId": "nat-1", "Origin": "CreateRoute",
                         "State": "active"}]},
            {"RouteTableId": "rtb-public", "VpcId": "vpc-1",
             "Associations": [{"Main": False, "SubnetId": "subnet-public", "RouteTableId": "rtb-public"}],
             "Routes": [{"DestinationCidrBlock": "10.0.0.0/16", "GatewayId": "local", "State": "active"},
                        {"DestinationCidrBlock": "0.0.0.0/0", "GatewayId": "igw-1", "Origin": "CreateRoute",
                         "State": "active"}]},
        ],
        "nat_gateways": [{"NatGatewayId": "nat-1", "State": "available", "ConnectivityType": "public",
                          "SubnetId": "subnet-public", "VpcId": "vpc-1",
                          "NatGatewayAddresses": [{"AllocationId": "eipalloc-1", "NetworkInterfaceId": "eni-nat",
                                                   "PrivateIp": "10.0.0.9", "PublicIp": EIP, "IsPrimary": True}]}],
        "internet_gateways": [{"InternetGatewayId": "igw-1", "Attachments": [{"State": "available", "VpcId": "vpc-1"}]}],
        "prefix_lists": {},
        "vpc_cidrs": ["10.0.0.0/16"],
    }


def hop(result, name):
    return next(h for h in result["hops"] if h["hop"] == name)


def blocking(result):
    return [(h["hop"], h["code"]) for h in result["blocking"]]


def custom_acl(entries, subnets=("subnet-node",)):
    return {"NetworkAclId": "acl-custom", "VpcId": "vpc-1", "IsDefault": False,
            "Associations": [{"SubnetId": s, "NetworkAclId": "acl-custom"} for s in subnets], "Entries": entries}


def with_custom_acl(snap, entries, subnets=("subnet-node",)):
    # The custom NACL takes the subnets over from the default one, as associate/replace_network_acl_association does.
    snap["network_acls"][0]["Associations"] = [a for a in snap["network_acls"][0]["Associations"] if a["SubnetId"] not in subnets]
    snap["network_acls"].append(custom_acl(entries, subnets))
    return snap


def test_healthy_nat_path_allows_and_names_the_egress_ip():
    result = evaluate_path(snapshot(), DEST)
    assert result["result"] == "allow" and result["blocking"] == []
    assert result["egress_ips"] == [EIP]
    assert result["source"] == {"eni": "eni-node", "ip": NODE_IP, "subnet": "subnet-node",
                                "why": "the node's primary ENI (pod traffic is SNATed to the node's address)"}
    assert [h["hop"] for h in result["hops"]] == [
        "security_group", "nacl_node_subnet_outbound", "nacl_node_subnet_return", "route", "nat_gateway",
        "nacl_nat_subnet_from_node", "nacl_nat_subnet_to_node", "nacl_nat_subnet_outbound", "nacl_nat_subnet_return",
        "nat_subnet_route", "internet_gateway"]
    assert hop(result, "security_group")["rule"] == "sg-node egress rule #1 (all to 0.0.0.0/0)"
    assert hop(result, "route")["rule"] == "rtb-private 0.0.0.0/0 -> nat-1 (via its explicit association)"


def test_security_group_without_the_port_denies_and_says_what_to_add():
    snap = snapshot()
    snap["security_groups"][0]["IpPermissionsEgress"] = [
        {"IpProtocol": "6", "FromPort": 80, "ToPort": 80, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]},
        {"IpProtocol": "6", "FromPort": 443, "ToPort": 443, "IpRanges": [{"CidrIp": "192.0.2.0/24"}]}]
    result = evaluate_path(snap, DEST)
    assert result["result"] == "deny" and blocking(result) == [("security_group", "ENI_SG_RULES_MISMATCH")]
    sg = hop(result, "security_group")
    assert sg["detail"] == "no egress rule of sg-node allows tcp 443 to 198.51.100.10/32"
    assert sg["fix"] == "add an egress rule to sg-node: tcp 443 to 198.51.100.10/32"
    # the rest of the path is still evaluated, and still allows
    assert hop(result, "nat_gateway")["result"] == "allow" and result["egress_ips"] == [EIP]


@pytest.mark.parametrize(("permission", "expected"), [
    ({"IpProtocol": "tcp", "FromPort": 400, "ToPort": 500, "IpRanges": [{"CidrIp": "198.51.100.0/24"}]}, "allow"),
    ({"IpProtocol": "tcp", "FromPort": 444, "ToPort": 500, "IpRanges": [{"CidrIp": "198.51.100.0/24"}]}, "deny"),
    ({"IpProtocol": "udp", "FromPort": 443, "ToPort": 443, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}, "deny"),
    ({"IpProtocol": "6", "FromPort": 443, "ToPort": 443, "IpRanges": [{"CidrIp": "198.51.100.11/32"}]}, "deny"),
    ({"IpProtocol": "-1", "Ipv6Ranges": [{"CidrIpv6": "::/0"}]}, "deny"),
    ({"IpProtocol": "-1", "UserIdGroupPairs": [{"GroupId": "sg-other"}]}, "deny"),
    ({"IpProtocol": "tcp", "FromPort": 443, "ToPort": 443, "PrefixListIds": [{"PrefixListId": "pl-1"}]}, "allow"),
    ({"IpProtocol": "tcp", "FromPort": 443, "ToPort": 443, "PrefixListIds": [{"PrefixListId": "pl-unread"}]}, "unknown"),
])
def test_security_group_rule_semantics(permission, expected):
    snap = snapshot()
    snap["security_groups"][0]["IpPermissionsEgress"] = [permission]
    snap["prefix_lists"] = {"pl-1": ["192.0.2.0/24", "198.51.100.0/24"]}
    assert hop(evaluate_path(snap, DEST), "security_group")["result"] == expected


def test_groups_are_a_union():
    snap = snapshot()
    snap["security_groups"][0]["IpPermissionsEgress"] = []
    snap["network_interfaces"][0]["Groups"].append({"GroupId": "sg-extra"})
    snap["security_groups"].append({"GroupId": "sg-extra", "IpPermissionsEgress": [
        {"IpProtocol": "tcp", "FromPort": 443, "ToPort": 443, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}]})
    assert hop(evaluate_path(snap, DEST), "security_group")["rule"] == "sg-extra egress rule #1 (tcp 443 to 0.0.0.0/0)"


def test_nacl_deny_numbered_before_the_allow_wins_whatever_order_the_entries_come_in():
    snap = with_custom_acl(snapshot(), [
        acl_entry(100, "allow", True), acl_entry(90, "deny", True, "6", "198.51.100.0/24", (443, 443)),
        acl_entry(100, "allow", False)])
    result = evaluate_path(snap, DEST)
    assert blocking(result) == [("nacl_node_subnet_outbound", "SUBNET_ACL_RESTRICTION")]
    nacl = hop(result, "nacl_node_subnet_outbound")
    assert nacl["rule"] == "acl-custom outbound rule 90 deny"
    assert nacl["detail"] == "acl-custom outbound rule 90 denies tcp port 443 to 198.51.100.10/32"
    assert nacl["fix"] == "add an outbound allow rule to acl-custom numbered below 90: tcp port 443 to 198.51.100.10/32"


def test_nacl_without_the_inbound_return_rule_hits_the_implicit_deny_even_when_unlisted():
    snap = with_custom_acl(snapshot(), [acl_entry(100, "allow", True, "6", "0.0.0.0/0", (443, 443)),
                                        acl_entry(100, "allow", False, "6", "10.0.0.0/16", (0, 65535))])
    result = evaluate_path(snap, DEST)
    assert blocking(result) == [("nacl_node_subnet_return", "SUBNET_ACL_RESTRICTION")]
    ret = hop(result, "nacl_node_subnet_return")
    assert ret["result"] == "deny" and ret["rule"] == "acl-custom inbound return rule * deny"
    assert ret["detail"] == "acl-custom inbound return rule * denies tcp ports 32768-60999 from 198.51.100.10/32"


def test_nacl_return_rule_covering_part_of_the_ephemeral_range_is_partial():
    snap = with_custom_acl(snapshot(), [acl_entry(100, "allow", True),
                                        acl_entry(100, "allow", False, "6", "0.0.0.0/0", (1024, 40000))])
    ret = hop(evaluate_path(snap, DEST), "nacl_node_subnet_return")
    assert ret["result"] == "partial"
    assert ret["detail"].startswith("acl-custom inbound return rule * denies tcp ports 40001-60999 from")


def test_acl_decision_splits_port_ranges_by_rule_order():
    acl = custom_acl([acl_entry(10, "deny", False, "6", "0.0.0.0/0", (50000, 50010)),
                      acl_entry(20, "allow", False, "6", "0.0.0.0/0", (32768, 60999))])
    allowed, denied = acl_decision(acl, False, "6", ipaddress.ip_address("198.51.100.10"), (32768, 60999))
    assert sorted(allowed) == [((32768, 49999), 20), ((50011, 60999), 20)] and denied == [((50000, 50010), 10)]


def test_subnet_without_a_default_route_names_the_main_table():
    snap = snapshot()
    snap["route_tables"] = [t for t in snap["route_tables"] if t["RouteTableId"] != "rtb-private"]
    result = evaluate_path(snap, DEST)
    assert blocking(result) == [("route", "NO_ROUTE_TO_DESTINATION")]
    expected = "rtb-main (the VPC's main table (no explicit association)) has no route to 198.51.100.10: the subnet has no way out"
    assert hop(result, "route")["detail"] == expected


def test_route_to_a_deleted_nat_gateway_is_dead_although_the_route_says_active():
    snap = snapshot()
    snap["nat_gateways"][0]["State"] = "deleted"
    result = evaluate_path(snap, DEST)
    assert blocking(result) == [("nat_gateway", "BAD_STATE_ROUTE")] and result["egress_ips"] == []
    snap["nat_gateways"] = []
    assert "nat-1, which does not exist" in hop(evaluate_path(snap, DEST), "nat_gateway")["detail"]


def test_blackhole_route_as_aws_reports_it():
    snap = snapshot()
    snap["route_tables"][1]["Routes"][1]["State"] = "blackhole"
    assert blocking(evaluate_path(snap, DEST)) == [("route", "BAD_STATE_ROUTE")]


def test_longest_prefix_wins():
    snap = snapshot()
    # listed before the broader default route: the order of the answer does not decide, the prefix length does
    snap["route_tables"][1]["Routes"].insert(1, {"DestinationCidrBlock": "198.51.100.0/24", "TransitGatewayId": "tgw-1",
                                                 "State": "active"})
    result = evaluate_path(snap, DEST)
    assert hop(result, "route")["rule"].startswith("rtb-private 198.51.100.0/24 -> tgw-1")
    assert result["result"] == "unknown" and hop(result, "beyond_vpc")["object"] == "tgw-1"
    assert hop(evaluate_path(snap, {"ip": "192.0.2.1", "port": 443}), "route")["rule"].startswith("rtb-private 0.0.0.0/0 -> nat-1")


def test_prefix_list_route():
    snap = snapshot()
    snap["route_tables"][1]["Routes"][1] = {"DestinationPrefixListId": "pl-1", "NatGatewayId": "nat-1", "State": "active"}
    snap["prefix_lists"] = {"pl-1": ["198.51.100.0/24"]}
    assert evaluate_path(snap, DEST)["result"] == "allow"
    assert blocking(evaluate_path(snap, {"ip": "192.0.2.1", "port": 443})) == [("route", "NO_ROUTE_TO_DESTINATION")]


def test_private_nat_gateway_cannot_reach_the_internet():
    snap = snapshot()
    snap["nat_gateways"][0]["ConnectivityType"] = "private"
    snap["nat_gateways"][0]["NatGatewayAddresses"][0].pop("PublicIp")
    assert blocking(evaluate_path(snap, DEST)) == [("nat_gateway", "NAT_GATEWAY_PRIVATE")]


def test_nat_gateway_subnet_without_a_route_to_an_internet_gateway():
    snap = snapshot()
    snap["route_tables"][2]["Routes"].pop()
    result = evaluate_path(snap, DEST)
    assert blocking(result) == [("nat_subnet_route", "NO_ROUTE_TO_DESTINATION")]


def test_nat_subnet_nacl_dropping_the_return_to_the_nat_ports():
    snap = with_custom_acl(snapshot(), [acl_entry(100, "allow", True), acl_entry(100, "allow", False, "-1", "10.0.0.0/16")],
                           subnets=("subnet-public",))
    result = evaluate_path(snap, DEST)
    assert blocking(result) == [("nacl_nat_subnet_return", "SUBNET_ACL_RESTRICTION")]
    assert "ports 1024-65535" in hop(result, "nacl_nat_subnet_return")["detail"]


def test_nat_subnet_nacl_dropping_the_nodes_traffic_on_its_way_in():
    snap = with_custom_acl(snapshot(), [acl_entry(100, "allow", True), acl_entry(90, "deny", False, "-1", "10.0.1.0/24"),
                                        acl_entry(100, "allow", False)], subnets=("subnet-public",))
    assert blocking(evaluate_path(snap, DEST)) == [("nacl_nat_subnet_from_node", "SUBNET_ACL_RESTRICTION")]


def igw_snapshot(public_ip):
    snap = snapshot()
    snap["route_tables"][1]["Routes"][1] = {"DestinationCidrBlock": "0.0.0.0/0", "GatewayId": "igw-1", "State": "active"}
    if public_ip:
        snap["network_interfaces"][0]["PrivateIpAddresses"][0]["Association"] = {"PublicIp": public_ip, "IpOwnerId": "amazon"}
    return snap


def test_internet_gateway_path_without_a_public_ip():
    result = evaluate_path(igw_snapshot(None), DEST)
    assert blocking(result) == [("public_ip", "NO_PUBLIC_IP")] and result["egress_ips"] == []
    result = evaluate_path(igw_snapshot("198.18.0.5"), DEST)
    assert result["result"] == "allow" and result["egress_ips"] == ["198.18.0.5"]


def test_internet_gateway_detached():
    snap = igw_snapshot("198.18.0.5")
    snap["internet_gateways"][0]["Attachments"] = []
    assert blocking(evaluate_path(snap, DEST)) == [("internet_gateway", "BAD_STATE_ATTACHMENT")]


def test_every_cause_is_reported_not_only_the_first():
    snap = snapshot()
    snap["security_groups"][0]["IpPermissionsEgress"] = []
    snap["nat_gateways"][0]["State"] = "deleted"
    assert blocking(evaluate_path(snap, DEST)) == [("security_group", "ENI_SG_RULES_MISMATCH"), ("nat_gateway", "BAD_STATE_ROUTE")]


def test_without_snat_the_pods_own_eni_and_groups_decide():
    snap = snapshot()
    result = evaluate_path(snap, DEST, pod_ip="10.0.1.81", snat=False)
    assert result["source"]["eni"] == "eni-pods" and result["source"]["ip"] == "10.0.1.81"
    assert blocking(result) == [("security_group", "ENI_SG_RULES_MISMATCH")]
    assert evaluate_path(snap, DEST, pod_ip=POD_IP, snat=False)["source"]["eni"] == "eni-node"
    with pytest.raises(AwsPathError, match=re.escape("holds the pod IP 10.0.9.9")):
        evaluate_path(snap, DEST, pod_ip="10.0.9.9", snat=False)


def test_destination_inside_the_vpc_stays_on_the_local_route():
    result = evaluate_path(snapshot(), {"ip": "10.0.2.5", "port": 5432, "protocol": "6"})
    assert result["result"] == "allow" and hop(result, "route")["rule"].startswith("local route")


def test_icmp_flows_have_no_ports():
    snap = snapshot()
    snap["security_groups"][0]["IpPermissionsEgress"] = [{"IpProtocol": "icmp", "FromPort": 8, "ToPort": -1,
                                                          "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}]
    assert evaluate_path(snap, {"ip": "198.51.100.10", "protocol": "icmp"})["result"] == "allow"
    snap["security_groups"][0]["IpPermissionsEgress"][0]["FromPort"] = 0
    assert hop(evaluate_path(snap, {"ip": "198.51.100.10", "protocol": "icmp"}), "security_group")["result"] == "deny"


def test_missing_security_group_is_unknown_not_a_deny():
    snap = snapshot()
    snap["security_groups"] = snap["security_groups"][1:]
    result = evaluate_path(snap, DEST)
    assert hop(result, "security_group")["result"] == "unknown" and result["result"] == "unknown"


@pytest.mark.parametrize(("flow", "message"), [
    ({"ip": "api.example.com", "port": 443}, "'api.example.com' is not an IP address"),
    ({"ip": "198.51.100.10", "port": "443"}, "'443' is not a port number"),
    ({"ip": "198.51.100.10", "port": 70000}, "70000 is not a port number"),
    ({"ip": "198.51.100.10", "port": 443, "protocol": "gre"}, "protocol 'gre' is not tcp, udp or icmp"),
    ("198.51.100.10", "must be a dict"),
])
def test_bad_flows_get_a_clear_error(flow, message):
    with pytest.raises(AwsPathError, match=message):
        evaluate_path(snapshot(), flow)


def test_malformed_cidr_in_an_answer_is_named():
    snap = snapshot()
    snap["route_tables"][1]["Routes"][1]["DestinationCidrBlock"] = "0.0.0.0/99"
    with pytest.raises(AwsPathError, match=re.escape("route table rtb-private: '0.0.0.0/99' is not a CIDR block")):
        evaluate_path(snap, DEST)


@pytest.mark.parametrize(("given", "number"), [("tcp", "6"), ("TCP", "6"), ("6", "6"), (6, "6"), ("-1", "-1"),
                                               ("all", "-1"), ("udp", "17"), ("icmp", "1"), ("50", "50")])
def test_protocols_as_numbers_or_names(given, number):
    assert protocol_number(given) == number


def test_inputs_are_not_modified():
    snap = snapshot()
    before = copy.deepcopy(snap)
    evaluate_path(snap, DEST)
    assert snap == before
