"""aws_egress_info against a VPC in moto's server mode: the module run through `ansible` as a user runs it, the reader
in-process for the API call counts and moto's gaps (a NAT gateway deleted under a route that stays active, a custom NACL
without its 32767 entries, protocols as names)."""

import os

import boto3
import pytest
from moto.server import ThreadedMotoServer

from ansible_collections.kubediag.egress.plugins.module_utils.cloud import aws_read
from tests.integration.ansible_module import run_module
from tests.return_shapes import shape_problems

REGION = "eu-west-1"
DEST = {"ip": "198.51.100.10", "port": 443}
CREDENTIALS = {"access_key": "AKIDEXAMPLE", "secret_key": "moto-secret-do-not-print"}


@pytest.fixture(scope="module")
def moto_url():
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


def ec2(url):
    return boto3.client("ec2", region_name=REGION, endpoint_url=url, aws_access_key_id=CREDENTIALS["access_key"],
                        aws_secret_access_key=CREDENTIALS["secret_key"])


def build_vpc(url):
    """A private node subnet behind a public NAT gateway, as an EKS VPC has it. Returns the ids."""
    client = ec2(url)
    vpc = client.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    public = client.create_subnet(VpcId=vpc, CidrBlock="10.0.0.0/24", AvailabilityZone=f"{REGION}a")["Subnet"]["SubnetId"]
    private = client.create_subnet(VpcId=vpc, CidrBlock="10.0.1.0/24", AvailabilityZone=f"{REGION}a")["Subnet"]["SubnetId"]
    igw = client.create_internet_gateway()["InternetGateway"]["InternetGatewayId"]
    client.attach_internet_gateway(InternetGatewayId=igw, VpcId=vpc)
    public_rtb = client.create_route_table(VpcId=vpc)["RouteTable"]["RouteTableId"]
    client.create_route(RouteTableId=public_rtb, DestinationCidrBlock="0.0.0.0/0", GatewayId=igw)
    client.associate_route_table(RouteTableId=public_rtb, SubnetId=public)
    allocation = client.allocate_address(Domain="vpc")
    nat = client.create_nat_gateway(SubnetId=public, AllocationId=allocation["AllocationId"])["NatGateway"]["NatGatewayId"]
    private_rtb = client.create_route_table(VpcId=vpc)["RouteTable"]["RouteTableId"]
    client.create_route(RouteTableId=private_rtb, DestinationCidrBlock="0.0.0.0/0", NatGatewayId=nat)
    client.associate_route_table(RouteTableId=private_rtb, SubnetId=private)
    group = client.create_security_group(GroupName=f"node-{vpc}", Description="nodes", VpcId=vpc)["GroupId"]
    instance = client.run_instances(ImageId="ami-12c6146b", MinCount=1, MaxCount=1, SubnetId=private,
                                    SecurityGroupIds=[group])["Instances"][0]["InstanceId"]
    return {"vpc": vpc, "private": private, "public": public, "nat": nat, "eip": allocation["PublicIp"], "group": group,
            "instance": instance, "private_rtb": private_rtb}


def module_args(url, ids, **extra):
    return {"instance_id": ids["instance"], "region": REGION, "endpoint_url": url, "destinations": [DEST], **CREDENTIALS, **extra}


def blocking(path):
    return [(hop["hop"], hop["code"]) for hop in path["blocking"]]


def test_healthy_vpc_through_the_module(moto_url, tmp_path):
    ids = build_vpc(moto_url)
    result = run_module("aws_egress_info", module_args(moto_url, ids), str(tmp_path))
    assert not result["failed"] and result["checked"] and result["changed"] is False, result
    assert result["paths"][0]["result"] == "allow" and result["egress_ips"] == [ids["eip"]]
    assert result["paths"][0]["source"]["subnet"] == ids["private"]
    # bounded: one call per kind of object, whatever the rules
    assert result["api_calls"] <= 9, result["api_calls"]
    assert CREDENTIALS["secret_key"] not in str(result)
    assert shape_problems("aws_egress_info", result) == []  # as its RETURN documents it


def test_check_mode_reads_the_same(moto_url, tmp_path):
    ids = build_vpc(moto_url)
    result = run_module("aws_egress_info", module_args(moto_url, ids), str(tmp_path), check=True)
    assert not result["failed"] and result["paths"][0]["result"] == "allow"


def test_security_group_without_the_port_and_every_other_cause(moto_url):
    ids = build_vpc(moto_url)
    client = ec2(moto_url)
    client.revoke_security_group_egress(GroupId=ids["group"], IpPermissions=[{"IpProtocol": "-1", "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}])
    client.authorize_security_group_egress(GroupId=ids["group"], IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 80, "ToPort": 80, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}])
    client.delete_nat_gateway(NatGatewayId=ids["nat"])
    result = aws_read.node_egress(client, ids["instance"], [DEST])
    path = result["paths"][0]
    # moto keeps the route active after the delete (AWS: blackhole); the module reads the NAT gateway's own state
    assert blocking(path) == [("security_group", "ENI_SG_RULES_MISMATCH"), ("nat_gateway", "BAD_STATE_ROUTE")]
    assert path["hops"][0]["fix"] == f"add an egress rule to {ids['group']}: tcp 443 to 198.51.100.10/32"
    assert shape_problems("aws_egress_info", result) == []


def test_custom_nacl_without_its_default_entries_denies_by_the_implicit_rule(moto_url):
    ids = build_vpc(moto_url)
    client = ec2(moto_url)
    acl = client.create_network_acl(VpcId=ids["vpc"])["NetworkAcl"]["NetworkAclId"]
    # moto lists no 32767 entries for a custom NACL; the implicit deny applies anyway
    client.create_network_acl_entry(NetworkAclId=acl, RuleNumber=100, Protocol="tcp", RuleAction="allow", Egress=True,
                                    CidrBlock="0.0.0.0/0", PortRange={"From": 443, "To": 443})
    current = client.describe_network_acls(Filters=[{"Name": "association.subnet-id", "Values": [ids["private"]]}])["NetworkAcls"][0]
    association = next(a["NetworkAclAssociationId"] for a in current["Associations"] if a["SubnetId"] == ids["private"])
    client.replace_network_acl_association(AssociationId=association, NetworkAclId=acl)
    path = aws_read.node_egress(client, ids["instance"], [DEST])["paths"][0]
    assert blocking(path) == [("nacl_node_subnet_return", "SUBNET_ACL_RESTRICTION")]
    assert path["hops"][2]["rule"] == f"{acl} inbound return rule * deny"


def test_subnet_on_the_main_table_without_a_default_route(moto_url):
    ids = build_vpc(moto_url)
    client = ec2(moto_url)
    table = client.describe_route_tables(RouteTableIds=[ids["private_rtb"]])["RouteTables"][0]
    client.disassociate_route_table(AssociationId=table["Associations"][0]["RouteTableAssociationId"])
    path = aws_read.node_egress(client, ids["instance"], [DEST])["paths"][0]
    assert blocking(path) == [("route", "NO_ROUTE_TO_DESTINATION")]
    assert "the VPC's main table" in path["hops"][3]["detail"]


def test_no_credentials_is_not_checked_with_what_to_do(moto_url, tmp_path, monkeypatch):
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    args = {"instance_id": "i-0123456789abcdef0", "region": REGION, "endpoint_url": moto_url, "destinations": [DEST]}
    result = run_module("aws_egress_info", args, str(tmp_path))
    assert not result["failed"] and result["checked"] is False, result
    assert result["not_checked"]["reason"] == "no_credentials"
    assert "access_key/secret_key or profile" in result["not_checked"]["message"]


def test_unknown_instance_and_unreachable_endpoint(moto_url, tmp_path):
    ids = build_vpc(moto_url)
    missing = aws_read.node_egress(ec2(moto_url), "i-00000000000000000", [DEST])
    assert missing["checked"] is False and missing["not_checked"]["reason"] == "not_found"
    unreachable = run_module("aws_egress_info", module_args("http://127.0.0.1:9", ids, timeout=1), str(tmp_path))
    assert not unreachable["failed"] and unreachable["not_checked"]["reason"] == "unreachable", unreachable


def test_bad_destination_fails_with_the_reason(moto_url, tmp_path):
    ids = build_vpc(moto_url)
    result = run_module("aws_egress_info", module_args(moto_url, ids, destinations=[{"ip": "api.example.com", "port": 443}]),
                        str(tmp_path))
    assert result["failed"] and result["msg"] == "destination: 'api.example.com' is not an IP address"
    assert "Traceback" not in str(result)


def test_calls_do_not_grow_with_destinations(moto_url):
    ids = build_vpc(moto_url)
    client = ec2(moto_url)
    counter = aws_read.CallCounter(client)
    aws_read.node_egress(client, ids["instance"], [DEST])
    one = counter.calls
    aws_read.node_egress(client, ids["instance"], [{"ip": f"198.51.100.{n}", "port": 443} for n in range(1, 21)])
    assert counter.calls - one == one
    assert os.environ.get("AWS_SECRET_ACCESS_KEY") != CREDENTIALS["secret_key"]
