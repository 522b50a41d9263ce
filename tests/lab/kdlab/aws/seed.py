"""Creates a cluster's `aws:` section in moto through the EC2 API (boto3), as a user's Terraform would, and returns the ids."""

import boto3

from kdlab.aws import spec as aws_spec

AMI = "ami-12c6146b"      # a fixed AMI id: describe_images(Owners=["amazon"]) costs 2 s in moto (FIELD_NOTES)
PROTOCOL_NUMBERS = {"tcp": "6", "udp": "17", "icmp": "1", "all": "-1"}


def client(endpoint_url: str):
    return boto3.client("ec2", region_name=aws_spec.REGION, endpoint_url=endpoint_url, aws_access_key_id=aws_spec.ACCESS_KEY,
                        aws_secret_access_key=aws_spec.SECRET_KEY)


def _tag(kind: str, name: str) -> list[dict]:
    return [{"ResourceType": kind, "Tags": [{"Key": "Name", "Value": name}]}]


def seed_cluster(ec2, cluster: str, section: dict, node_ips: dict[str, str]) -> dict:
    """Every object of the section; returns {vpc_id, subnets, nat_gateways, route_tables, network_acls, security_groups,
    instances: {node: instance id}, internet_gateway}."""
    vpc = ec2.create_vpc(CidrBlock=section["vpc_cidr"], TagSpecifications=_tag("vpc", cluster))["Vpc"]["VpcId"]
    ids = {"vpc_id": vpc, "subnets": {}, "nat_gateways": {}, "route_tables": {}, "network_acls": {}, "security_groups": {},
           "instances": {}, "internet_gateway": None}
    for s in section["subnets"]:
        ids["subnets"][s["name"]] = ec2.create_subnet(VpcId=vpc, CidrBlock=s["cidr"], AvailabilityZone=section["zone"],
                                                      TagSpecifications=_tag("subnet", s["name"]))["Subnet"]["SubnetId"]
    if section["internet_gateway"] != "none":
        igw = ec2.create_internet_gateway(TagSpecifications=_tag("internet-gateway", cluster))["InternetGateway"]["InternetGatewayId"]
        ids["internet_gateway"] = igw
        if section["internet_gateway"] == "attached":
            ec2.attach_internet_gateway(InternetGatewayId=igw, VpcId=vpc)
    for n in section["nat_gateways"]:
        extra = {"ConnectivityType": "private"}
        if n["connectivity"] == "public":
            extra = {"AllocationId": ec2.allocate_address(Domain="vpc", Address=n["eip"])["AllocationId"]}
        created = ec2.create_nat_gateway(SubnetId=ids["subnets"][n["subnet"]], TagSpecifications=_tag("natgateway", n["name"]), **extra)
        ids["nat_gateways"][n["name"]] = created["NatGateway"]["NatGatewayId"]
    main_table = ec2.describe_route_tables(Filters=[{"Name": "vpc-id", "Values": [vpc]}, {"Name": "association.main", "Values": ["true"]}])["RouteTables"][0]
    for t in section["route_tables"]:
        table = ec2.create_route_table(VpcId=vpc, TagSpecifications=_tag("route-table", t["name"]))["RouteTable"]["RouteTableId"]
        ids["route_tables"][t["name"]] = table
        for r in t["routes"]:
            target = {"GatewayId": ids["internet_gateway"]} if r["target"] == "internet_gateway" else {"NatGatewayId": ids["nat_gateways"][r["target"]]}
            if r["target"] == "internet_gateway" and ids["internet_gateway"] is None:
                continue     # no internet gateway in this VPC: the route cannot exist
            ec2.create_route(RouteTableId=table, DestinationCidrBlock=r["cidr"], **target)
        for s in t["subnets"]:
            ec2.associate_route_table(RouteTableId=table, SubnetId=ids["subnets"][s])
        if t["main"]:
            main_association = next(a for a in main_table["Associations"] if a.get("Main"))
            ec2.replace_route_table_association(AssociationId=main_association["RouteTableAssociationId"], RouteTableId=table)
    for a in section["network_acls"]:
        acl = ec2.create_network_acl(VpcId=vpc, TagSpecifications=_tag("network-acl", a["name"]))["NetworkAcl"]["NetworkAclId"]
        ids["network_acls"][a["name"]] = acl
        for e in a["entries"]:
            ports = {"PortRange": {"From": e["ports"][0], "To": e["ports"][1]}} if e["ports"] else {}
            ec2.create_network_acl_entry(NetworkAclId=acl, RuleNumber=e["rule"], Protocol=PROTOCOL_NUMBERS[e["protocol"]],
                                         RuleAction=e["action"], Egress=e["egress"], CidrBlock=e["cidr"], **ports)
        for s in a["subnets"]:
            subnet = ids["subnets"][s]
            current = ec2.describe_network_acls(Filters=[{"Name": "association.subnet-id", "Values": [subnet]}])["NetworkAcls"][0]
            association = next(x["NetworkAclAssociationId"] for x in current["Associations"] if x["SubnetId"] == subnet)
            ec2.replace_network_acl_association(AssociationId=association, NetworkAclId=acl)
    for g in section["security_groups"]:
        group = ec2.create_security_group(GroupName=f"{cluster}-{g['name']}", Description=f"kdlab {g['name']}", VpcId=vpc)["GroupId"]
        ids["security_groups"][g["name"]] = group
        if g["egress"] is not None:
            ec2.revoke_security_group_egress(GroupId=group, IpPermissions=[{"IpProtocol": "-1", "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}])
            if g["egress"]:
                ec2.authorize_security_group_egress(GroupId=group, IpPermissions=[_permission(r) for r in g["egress"]])
    for node, n in section["nodes"].items():
        groups = [ids["security_groups"][g] for g in n["security_groups"]]
        instance = ec2.run_instances(ImageId=AMI, MinCount=1, MaxCount=1, InstanceType="m5.large", SubnetId=ids["subnets"][n["subnet"]],
                                     PrivateIpAddress=node_ips[node], TagSpecifications=_tag("instance", f"{cluster}-{node}"),
                                     **({"SecurityGroupIds": groups} if groups else {}))["Instances"][0]["InstanceId"]
        ids["instances"][node] = instance
        if n["public_ip"]:
            allocation = ec2.allocate_address(Domain="vpc", Address=n["public_ip"])["AllocationId"]
            ec2.associate_address(AllocationId=allocation, InstanceId=instance)
    for n in section["nat_gateways"]:
        if n["deleted"]:
            ec2.delete_nat_gateway(NatGatewayId=ids["nat_gateways"][n["name"]])
    return ids


def _permission(rule: dict) -> dict:
    permission = {"IpProtocol": {"all": "-1"}.get(rule["protocol"], rule["protocol"]), "IpRanges": [{"CidrIp": rule["cidr"]}]}
    if rule["ports"]:
        permission |= {"FromPort": rule["ports"][0], "ToPort": rule["ports"][1]}
    elif rule["protocol"] == "icmp":
        permission |= {"FromPort": -1, "ToPort": -1}
    return permission
