"""kdlab.aws.dataplane, pure: the gateway rules a VPC's describe_* answers imply (no root, no moto). The packet tests are in
tests/integration/aws/test_lab_vpc.py; these cover the route cases no bundled scenario has."""

import copy

import pytest
from kdlab.aws import dataplane

NODE = {"index": 0, "ip": "172.20.0.74", "instance_id": "i-1"}


def snapshot():
    """A private node subnet behind a public NAT gateway, as AWS describes it."""
    return {
        "vpc_id": "vpc-1",
        "instances": {"i-1": {"InstanceId": "i-1", "SubnetId": "subnet-priv", "State": {"Name": "running"},
                              "NetworkInterfaces": [{"Attachment": {"DeviceIndex": 0}, "Groups": [{"GroupId": "sg-1"}]}]}},
        "security_groups": {"sg-1": {"GroupId": "sg-1", "IpPermissionsEgress": [
            {"IpProtocol": "tcp", "FromPort": 443, "ToPort": 443, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}]}},
        "network_acls": [{"NetworkAclId": "acl-default", "IsDefault": True, "Associations": [], "Entries": [
            {"RuleNumber": 32767, "Egress": True, "Protocol": "-1", "RuleAction": "deny", "CidrBlock": "0.0.0.0/0"},
            {"RuleNumber": 100, "Egress": True, "Protocol": "-1", "RuleAction": "allow", "CidrBlock": "0.0.0.0/0"},
            {"RuleNumber": 100, "Egress": False, "Protocol": "-1", "RuleAction": "allow", "CidrBlock": "0.0.0.0/0"}]}],
        "route_tables": [
            {"RouteTableId": "rtb-main", "Associations": [{"Main": True}], "Routes": [{"DestinationCidrBlock": "172.20.0.0/24", "GatewayId": "local"}]},
            {"RouteTableId": "rtb-priv", "Associations": [{"SubnetId": "subnet-priv"}], "Routes": [
                {"DestinationCidrBlock": "172.20.0.0/24", "GatewayId": "local", "State": "active"},
                {"DestinationCidrBlock": "0.0.0.0/0", "NatGatewayId": "nat-1", "State": "active"}]},
            {"RouteTableId": "rtb-pub", "Associations": [{"SubnetId": "subnet-pub"}], "Routes": [
                {"DestinationCidrBlock": "0.0.0.0/0", "GatewayId": "igw-1", "State": "active"}]}],
        "nat_gateways": {"nat-1": {"NatGatewayId": "nat-1", "State": "available", "ConnectivityType": "public", "SubnetId": "subnet-pub",
                                   "NatGatewayAddresses": [{"PublicIp": "203.0.113.100"}]}},
        "internet_gateways": {"igw-1": {"InternetGatewayId": "igw-1", "Attachments": [{"VpcId": "vpc-1", "State": "available"}]}},
    }


def lines(text, chain):
    return [line.split(" ", 2)[2] for line in text.splitlines() if line.startswith(f"-A {chain} ")]


def test_the_nat_path_snats_to_the_eip_and_the_nacl_is_read_in_rule_order():
    text, sources = dataplane.render(snapshot(), [NODE])
    assert sources == ["203.0.113.100"]
    assert lines(text, "KD-AWS-NAT") == ["-s 172.20.0.74 -d 0.0.0.0/0 -j SNAT --to-source 203.0.113.100"]
    # the NAT gateway's subnet is crossed on the way out and back: its NACL (the default one here) both ways
    assert lines(text, "KDA-0-RT") == ["-d 0.0.0.0/0 -j KDA-0-R0", "-d 0.0.0.0/0 -j RETURN", "-j DROP"]
    assert lines(text, "KDA-0-RIN") == ["-s 0.0.0.0/0 -j KDA-0-R0", "-s 0.0.0.0/0 -j RETURN"]
    assert lines(text, "KDA-0-R0") == ["-j KDA-0-R0I", "-j KDA-0-R0E"]
    # the default NACL's entries came unsorted: 100 allow decides before 32767 deny; the implicit deny closes the chain
    assert lines(text, "KDA-0-NOUT") == ["-d 0.0.0.0/0 -j RETURN", "-d 0.0.0.0/0 -j DROP", "-j DROP"]
    assert lines(text, "KDA-0-SG") == ["-d 0.0.0.0/0 -p tcp --dport 443 -j RETURN", "-j DROP"]


@pytest.mark.parametrize("break_it", [
    lambda s: s["nat_gateways"]["nat-1"].update(State="deleted"),
    lambda s: s["nat_gateways"]["nat-1"].update(ConnectivityType="private"),
    lambda s: s["route_tables"][1]["Routes"][1].update(State="blackhole"),
    lambda s: s["route_tables"][2]["Routes"].clear(),                                   # the NAT's subnet has no way out
    lambda s: s["internet_gateways"]["igw-1"].update(Attachments=[]),                   # the IGW behind the NAT is detached
    lambda s: s["route_tables"][1]["Associations"].clear(),                             # main table: local route only
], ids=["nat-deleted", "nat-private", "blackhole", "nat-subnet-no-route", "igw-detached", "main-table"])
def test_a_broken_hop_drops_and_translates_nothing(break_it):
    broken = copy.deepcopy(snapshot())
    break_it(broken)
    text, sources = dataplane.render(broken, [NODE])
    assert sources == [] and lines(text, "KD-AWS-NAT") == []
    assert "RETURN" not in " ".join(lines(text, "KDA-0-RT"))


def test_the_igw_path_needs_the_instance_public_ip():
    public = copy.deepcopy(snapshot())
    public["instances"]["i-1"]["SubnetId"] = "subnet-pub"
    assert dataplane.render(public, [NODE])[1] == []
    public["instances"]["i-1"]["NetworkInterfaces"][0]["Association"] = {"PublicIp": "203.0.113.150"}
    assert dataplane.render(public, [NODE])[1] == ["203.0.113.150"]


def test_a_stopped_or_missing_instance_gets_no_traffic_through():
    stopped = copy.deepcopy(snapshot())
    stopped["instances"]["i-1"]["State"] = {"Name": "stopped"}
    text, _sources = dataplane.render(stopped, [NODE])
    assert lines(text, "KDA-0-OUT") == ["-j DROP"]
    assert lines(dataplane.render(snapshot(), [{**NODE, "instance_id": "i-gone"}])[0], "KDA-0-OUT") == ["-j DROP"]


def test_the_nat_subnets_nacl_can_stop_the_node_going_in():
    blocked = copy.deepcopy(snapshot())
    blocked["network_acls"].append({"NetworkAclId": "acl-pub", "Associations": [{"SubnetId": "subnet-pub"}], "Entries": [
        {"RuleNumber": 100, "Egress": False, "Protocol": "6", "RuleAction": "allow", "CidrBlock": "0.0.0.0/0",
         "PortRange": {"From": 1024, "To": 65535}},
        {"RuleNumber": 100, "Egress": True, "Protocol": "-1", "RuleAction": "allow", "CidrBlock": "0.0.0.0/0"}]})
    text, _sources = dataplane.render(blocked, [NODE])
    # inbound: only the replies' ports are allowed, so the node's request to 443 is dropped entering the NAT's subnet
    assert lines(text, "KDA-0-R0I") == ["-s 0.0.0.0/0 -p tcp --dport 1024:65535 -j RETURN", "-j DROP"]
    assert lines(text, "KDA-0-R0E") == ["-d 0.0.0.0/0 -j RETURN", "-j DROP"]
