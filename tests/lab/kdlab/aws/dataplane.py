"""The cluster gateway's firewall and NAT for each node's traffic, derived from the VPC's objects as EC2 describes them.

This is the lab's own reading of AWS semantics (not the collection's), so the module can be checked against packets:
- security group egress (stateful: only a new flow is checked; its replies come back whatever the rules);
- the subnet's network ACL, stateless, both ways: outbound entries for the flow, inbound entries for every reply packet
  (to the node's ephemeral port), in rule-number order, first match wins, nothing matched = dropped;
- the subnet's route table (explicit association, else the VPC's main table), longest prefix first: a route to a public,
  available NAT gateway whose own subnet routes to an attached internet gateway SNATs to the NAT gateway's EIP; a route
  to an attached internet gateway SNATs to the node's public IP (none: dropped); blackhole, private NAT gateway, other
  targets or no route: dropped.
- through a NAT gateway in another subnet, that subnet's network ACL too, both ways: its inbound entries match a packet's
  source (the node going in, the destination's replies), its outbound entries its destination (the flow going out, the
  replies going back to the node), the port being the packet's destination port each time.
Link-local traffic (169.254.0.0/16: the VPC resolver) is neither filtered nor translated, as in AWS.
"""

import ipaddress

LINK_LOCAL = "169.254.0.0/16"
PROTOCOL_MATCH = {"6": "tcp", "tcp": "tcp", "17": "udp", "udp": "udp", "1": "icmp", "icmp": "icmp"}


def read_snapshot(ec2, vpc_id: str) -> dict:
    """The describe_* answers the data plane depends on (six calls per VPC)."""
    vpc = [{"Name": "vpc-id", "Values": [vpc_id]}]
    reservations = ec2.describe_instances(Filters=vpc)["Reservations"]
    return {"vpc_id": vpc_id,
            "instances": {i["InstanceId"]: i for r in reservations for i in r["Instances"]},
            "security_groups": {g["GroupId"]: g for g in ec2.describe_security_groups(Filters=vpc)["SecurityGroups"]},
            "network_acls": ec2.describe_network_acls(Filters=vpc)["NetworkAcls"],
            "route_tables": ec2.describe_route_tables(Filters=vpc)["RouteTables"],
            "nat_gateways": {n["NatGatewayId"]: n for n in ec2.describe_nat_gateways(Filter=vpc)["NatGateways"]},
            "internet_gateways": {g["InternetGatewayId"]: g for g in ec2.describe_internet_gateways()["InternetGateways"]}}


def _chain(index: int, part: str) -> str:
    return f"KDA-{index}-{part}"


def _protocol(value) -> str | None:
    """iptables -p for an EC2 protocol; None for all ("-1")."""
    text = str(value).lower()
    if text in ("-1", "all"):
        return None
    return PROTOCOL_MATCH.get(text, text)


def _match(protocol: str | None, low=None, high=None, icmp_type=None) -> str:
    if protocol is None:
        return ""
    text = f" -p {protocol}"
    if protocol in ("tcp", "udp") and low is not None and not (low <= 0 and high >= 65535):
        text += f" --dport {low}" if low == high else f" --dport {low}:{high}"
    if protocol == "icmp" and icmp_type not in (None, -1):
        text += f" --icmp-type {icmp_type}"
    return text


def _sg_lines(chain: str, groups: list[dict]) -> list[str]:
    lines = []
    for group in groups:
        for permission in group.get("IpPermissionsEgress") or ():
            protocol = _protocol(permission.get("IpProtocol", "-1"))
            low, high = permission.get("FromPort"), permission.get("ToPort")
            match = _match(protocol, low, high, icmp_type=low if protocol == "icmp" else None)
            lines += [f"-A {chain} -d {r['CidrIp']}{match} -j RETURN" for r in permission.get("IpRanges") or ()]
    return [*lines, f"-A {chain} -j DROP"]


def _acl_lines(chain: str, acl: dict | None, egress: bool) -> list[str]:
    if acl is None:
        return [f"-A {chain} -j DROP"]
    entries = sorted((e for e in acl.get("Entries") or () if bool(e.get("Egress")) == egress and e.get("CidrBlock")),
                     key=lambda e: int(e["RuleNumber"]))
    lines = []
    for e in entries:
        port_range = e.get("PortRange") or {}
        match = _match(_protocol(e.get("Protocol", "-1")), port_range.get("From", 0), port_range.get("To", 65535))
        peer = f"-d {e['CidrBlock']}" if egress else f"-s {e['CidrBlock']}"
        lines.append(f"-A {chain} {peer}{match} -j {'RETURN' if e.get('RuleAction') == 'allow' else 'DROP'}")
    return [*lines, f"-A {chain} -j DROP"]


def _acl_of(snapshot: dict, subnet_id: str) -> dict | None:
    acls = snapshot["network_acls"]
    return (next((a for a in acls if any(x.get("SubnetId") == subnet_id for x in a.get("Associations") or ())), None)
            or next((a for a in acls if a.get("IsDefault")), None))


def _table_of(snapshot: dict, subnet_id: str) -> dict | None:
    tables = snapshot["route_tables"]
    return (next((t for t in tables if any(x.get("SubnetId") == subnet_id for x in t.get("Associations") or ())), None)
            or next((t for t in tables if any(x.get("Main") for x in t.get("Associations") or ())), None))


def _routes(table: dict | None) -> list[tuple[ipaddress.IPv4Network, dict]]:
    """IPv4 routes that leave the VPC, most specific first."""
    found = []
    for route in (table or {}).get("Routes") or ():
        if route.get("DestinationCidrBlock") and route.get("GatewayId") != "local":
            found.append((ipaddress.ip_network(route["DestinationCidrBlock"]), route))
    return sorted(found, key=lambda item: -item[0].prefixlen)


def _igw_attached(snapshot: dict, igw_id: str | None) -> bool:
    igw = snapshot["internet_gateways"].get(igw_id or "")
    return igw is not None and any(a.get("VpcId") == snapshot["vpc_id"] and a.get("State") in ("available", "attached")
                                   for a in igw.get("Attachments") or ())


def _public_ip(instance: dict) -> str | None:
    for eni in instance.get("NetworkInterfaces") or ():
        if (eni.get("Attachment") or {}).get("DeviceIndex", 0) == 0 and (eni.get("Association") or {}).get("PublicIp"):
            return eni["Association"]["PublicIp"]
    return instance.get("PublicIpAddress")


def _nat_subnet(snapshot: dict, route: dict) -> str | None:
    nat = snapshot["nat_gateways"].get(route.get("NatGatewayId") or "")
    return nat.get("SubnetId") if nat else None


def route_source(snapshot: dict, route: dict, network: ipaddress.IPv4Network, instance: dict) -> str | None:
    """The address a flow on this route leaves the VPC with, or None when the route does not reach the internet."""
    if route.get("State") == "blackhole":
        return None
    if route.get("NatGatewayId"):
        nat = snapshot["nat_gateways"].get(route["NatGatewayId"])
        if nat is None or nat.get("State") != "available" or nat.get("ConnectivityType", "public") != "public":
            return None
        nat_routes = _routes(_table_of(snapshot, nat["SubnetId"]))
        onward = next((r for n, r in nat_routes if network.subnet_of(n)), None)
        if onward is None or onward.get("State") == "blackhole" or not _igw_attached(snapshot, onward.get("GatewayId")):
            return None
        return next((a["PublicIp"] for a in nat.get("NatGatewayAddresses") or () if a.get("PublicIp")), None)
    if str(route.get("GatewayId", "")).startswith("igw-") and _igw_attached(snapshot, route["GatewayId"]):
        return _public_ip(instance)
    return None


def render(snapshot: dict, nodes: list[dict]) -> tuple[str, list[str]]:
    """(iptables-restore text for the gateway, the public addresses it SNATs to). nodes: [{index, ip, instance_id}]."""
    filter_lines, nat_lines, chains, sources = [], [], [], []
    head = [f"-A KD-AWS -d {LINK_LOCAL} -j RETURN", f"-A KD-AWS -s {LINK_LOCAL} -j RETURN"]
    for node in nodes:
        n, ip = node["index"], node["ip"]
        names = {part: _chain(n, part) for part in ("OUT", "IN", "SG", "NOUT", "NIN", "RT", "RIN")}
        chains += names.values()
        head += [f"-A KD-AWS -i vpc0 -o pub0 -s {ip} -j {names['OUT']}", f"-A KD-AWS -i pub0 -o vpc0 -d {ip} -j {names['IN']}"]
        instance = snapshot["instances"].get(node["instance_id"])
        if instance is None or (instance.get("State") or {}).get("Name") not in ("running", "pending"):
            filter_lines += [f"-A {names['OUT']} -j DROP", f"-A {names['IN']} -j DROP"]
            continue
        eni = next((e for e in instance.get("NetworkInterfaces") or () if (e.get("Attachment") or {}).get("DeviceIndex", 0) == 0), {})
        group_ids = [g["GroupId"] for g in eni.get("Groups") or instance.get("SecurityGroups") or ()]
        groups = [snapshot["security_groups"][g] for g in group_ids if g in snapshot["security_groups"]]
        acl = _acl_of(snapshot, instance["SubnetId"])
        filter_lines += [f"-A {names['OUT']} -m conntrack --ctstate NEW -j {names['SG']}", f"-A {names['OUT']} -j {names['NOUT']}",
                         f"-A {names['OUT']} -j {names['RT']}", f"-A {names['OUT']} -j ACCEPT",
                         f"-A {names['IN']} -j {names['NIN']}", f"-A {names['IN']} -j {names['RIN']}",
                         f"-A {names['IN']} -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT", f"-A {names['IN']} -j DROP"]
        filter_lines += _sg_lines(names["SG"], groups) + _acl_lines(names["NOUT"], acl, True) + _acl_lines(names["NIN"], acl, False)
        for k, (network, route) in enumerate(_routes(_table_of(snapshot, instance["SubnetId"]))):
            source = route_source(snapshot, route, network, instance)
            nat_subnet = _nat_subnet(snapshot, route)
            if source and nat_subnet and nat_subnet != instance["SubnetId"]:
                # the NAT gateway's subnet boundary, crossed by the flow and by its replies (same chain both ways)
                hop, hop_in, hop_out = _chain(n, f"R{k}"), _chain(n, f"R{k}I"), _chain(n, f"R{k}E")
                chains += [hop, hop_in, hop_out]
                nat_acl = _acl_of(snapshot, nat_subnet)
                filter_lines += [f"-A {hop} -j {hop_in}", f"-A {hop} -j {hop_out}"]
                filter_lines += _acl_lines(hop_in, nat_acl, False) + _acl_lines(hop_out, nat_acl, True)
                filter_lines += [f"-A {names['RT']} -d {network} -j {hop}", f"-A {names['RIN']} -s {network} -j {hop}"]
            # replies are checked on the route their source matches most specifically, as the flow was
            filter_lines.append(f"-A {names['RIN']} -s {network} -j RETURN")
            filter_lines.append(f"-A {names['RT']} -d {network} -j {'RETURN' if source else 'DROP'}")
            if source:
                nat_lines.append(f"-A KD-AWS-NAT -s {ip} -d {network} -j SNAT --to-source {source}")
                sources.append(source)
        filter_lines.append(f"-A {names['RT']} -j DROP")
    head += ["-A KD-AWS -i vpc0 -o pub0 -j DROP", "-A KD-AWS -i pub0 -o vpc0 -j DROP"]
    text = ("*filter\n:KD-AWS - [0:0]\n" + "".join(f":{c} - [0:0]\n" for c in chains) + "\n".join(head + filter_lines)
            + "\nCOMMIT\n*nat\n:KD-AWS-NAT - [0:0]\n" + "".join(line + "\n" for line in nat_lines) + "COMMIT\n")
    return text, sorted(set(sources))


def initial_rules() -> tuple[str, str]:
    """(filter, nat) lines `up` puts in the gateway before the cloud is read: only link-local traffic passes."""
    return (f":KD-AWS - [0:0]\n-A FORWARD -j KD-AWS\n-A KD-AWS -d {LINK_LOCAL} -j RETURN\n-A KD-AWS -s {LINK_LOCAL} -j RETURN\n"
            "-A KD-AWS -i vpc0 -o pub0 -j DROP\n-A KD-AWS -i pub0 -o vpc0 -j DROP\n",
            ":KD-AWS-NAT - [0:0]\n-A POSTROUTING -o pub0 -j KD-AWS-NAT\n")
