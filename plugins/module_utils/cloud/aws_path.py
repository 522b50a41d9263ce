"""Decides whether a VPC lets a node's (or a pod's) traffic out to a destination, hop by hop, from EC2's describe_* answers.

Pure functions, stdlib only, no I/O: callers pass the dicts boto3 returns (an instance, network interfaces, security
groups, network ACLs, route tables, NAT gateways, internet gateways, managed prefix list entries) and one flow
(destination address, port, protocol). The answer lists every hop the flow crosses (security groups -> the subnet's
network ACL, both ways -> the route table -> the NAT gateway or internet gateway, and the NAT gateway's own subnet), each
with the object and the rule that decided it, so a verdict can name what to change. Every hop is evaluated even after a
deny: a user who fixes one rule should not discover the next on the following run.

The answers are read as real AWS gives them, not as moto gives them: protocols as numbers or names, NACL entries in
any order (evaluated by rule number, with the implicit deny when none matches, whether or not the 32767 entry is listed),
a route to a NAT gateway that no longer exists is dead even when its state still says active.
"""

import ipaddress

# Linux's default ip_local_port_range: the source ports of connections a node (or a pod behind it) opens.
NODE_EPHEMERAL_PORTS = (32768, 60999)
# A NAT gateway's source ports (AWS: "NAT gateways use ports 1024-65535").
NAT_EPHEMERAL_PORTS = (1024, 65535)

PROTOCOLS = {"-1": "-1", "all": "-1", "tcp": "6", "6": "6", "udp": "17", "17": "17", "icmp": "1", "1": "1",
             "icmpv6": "58", "58": "58"}
PROTOCOL_NAMES = {"-1": "all", "6": "tcp", "17": "udp", "1": "icmp", "58": "icmpv6"}
IMPLICIT_DENY_RULE = 32767
# The keys a route's next hop can be under (describe_route_tables), the NAT gateway first.
ROUTE_TARGET_KEYS = ("NatGatewayId", "GatewayId", "TransitGatewayId", "VpcPeeringConnectionId", "NetworkInterfaceId",
                     "InstanceId", "EgressOnlyInternetGatewayId", "LocalGatewayId", "CarrierGatewayId", "CoreNetworkArn")


class AwsPathError(ValueError):
    """An input that cannot be evaluated; the message names it and what to do."""


def protocol_number(protocol):
    """'tcp', 'TCP', '6', 6 -> '6'; '-1' / 'all' -> '-1'. Unknown protocols come back as given (they match only -1)."""
    text = str(protocol).strip().lower()
    return PROTOCOLS.get(text, text)


def _network(cidr, what):
    try:
        return ipaddress.ip_network(cidr, strict=False)
    except (TypeError, ValueError):
        raise AwsPathError(f"{what}: {cidr!r} is not a CIDR block") from None


def _address(value, what):
    try:
        return ipaddress.ip_address(value)
    except (TypeError, ValueError):
        raise AwsPathError(f"{what}: {value!r} is not an IP address") from None


def _port(value, what):
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 65535:
        raise AwsPathError(f"{what}: {value!r} is not a port number")
    return value


def validate_flow(flow):
    """The flow as the evaluation needs it: {'destination': ip_address, 'port': int or None, 'protocol': '6'/'17'/'1'}."""
    if not isinstance(flow, dict):
        raise AwsPathError("a destination must be a dict with ip, port and protocol")
    protocol = protocol_number(flow.get("protocol", "tcp"))
    if protocol not in ("6", "17", "1", "58"):
        raise AwsPathError(f"destination {flow.get('ip')!r}: protocol {flow.get('protocol')!r} is not tcp, udp or icmp")
    port = _port(flow.get("port"), f"destination {flow.get('ip')!r}") if protocol in ("6", "17") else None
    return {"destination": _address(flow.get("ip"), "destination"), "port": port, "protocol": protocol}


# ---- security groups (stateful: return traffic is always admitted) ----

def _sg_rule_ports_match(permission, protocol, port):
    rule_protocol = protocol_number(permission.get("IpProtocol", "-1"))
    if rule_protocol == "-1":
        return True
    if rule_protocol != protocol:
        return False
    if protocol in ("1", "58"):
        # FromPort is the ICMP type, -1 for all; an echo request (type 8 / 128) is what ping sends.
        icmp_type = 8 if protocol == "1" else 128
        return permission.get("FromPort", -1) in (-1, icmp_type)
    low, high = permission.get("FromPort"), permission.get("ToPort")
    if low is None or high is None or low == -1:
        return True
    return low <= port <= high


def _sg_rule_destinations(permission, prefix_lists):
    """(description, network) for every destination of an egress permission; SG references and unknown prefix lists
    come back as (description, None): they never match an address outside the VPC."""
    for item in permission.get("IpRanges") or ():
        yield item.get("CidrIp"), _network(item.get("CidrIp"), "security group rule")
    for item in permission.get("Ipv6Ranges") or ():
        yield item.get("CidrIpv6"), _network(item.get("CidrIpv6"), "security group rule")
    for item in permission.get("PrefixListIds") or ():
        pl_id = item.get("PrefixListId")
        entries = prefix_lists.get(pl_id)
        if entries is None:
            yield pl_id, None
            continue
        for cidr in entries:
            yield f"{pl_id} ({cidr})", _network(cidr, f"prefix list {pl_id}")
    for item in permission.get("UserIdGroupPairs") or ():
        yield item.get("GroupId"), None


def security_groups_decision(groups, flow, prefix_lists=None):
    """The egress decision of the union of `groups` (SecurityGroups as describe_security_groups returns them)."""
    prefix_lists = prefix_lists or {}
    unknown_prefix_lists = set()
    for group in groups:
        for index, permission in enumerate(group.get("IpPermissionsEgress") or (), start=1):
            if not _sg_rule_ports_match(permission, flow["protocol"], flow["port"]):
                continue
            for description, network in _sg_rule_destinations(permission, prefix_lists):
                if network is None:
                    if str(description).startswith("pl-"):
                        unknown_prefix_lists.add(description)
                    continue
                if flow["destination"].version == network.version and flow["destination"] in network:
                    return _hop("security_group", "allow", group["GroupId"],
                                rule=f"{group['GroupId']} egress rule #{index} ({_describe_permission(permission)} to {description})")
    names = ", ".join(group["GroupId"] for group in groups) or "no security group"
    if unknown_prefix_lists:
        return _hop("security_group", "unknown", names,
                    detail=f"no rule allows it unless prefix list {', '.join(sorted(unknown_prefix_lists))} holds the address"
                           " (its entries could not be read)")
    return _hop("security_group", "deny", names, code="ENI_SG_RULES_MISMATCH",
                detail=f"no egress rule of {names} allows {_describe_flow(flow)}",
                fix=f"add an egress rule to {groups[0]['GroupId'] if groups else 'the ENI security group'}: "
                    f"{_describe_flow(flow)}")


def _describe_permission(permission):
    protocol = protocol_number(permission.get("IpProtocol", "-1"))
    name = PROTOCOL_NAMES.get(protocol, protocol)
    if protocol in ("-1", "1", "58"):
        return name
    low, high = permission.get("FromPort"), permission.get("ToPort")
    return f"{name} {low}" if low == high else f"{name} {low}-{high}"


def _describe_flow(flow):
    name = PROTOCOL_NAMES[flow["protocol"]]
    network = ipaddress.ip_network(flow["destination"])
    return f"{name} {flow['port']} to {network}" if flow["port"] is not None else f"{name} to {network}"


# ---- network ACLs (stateless, first matching rule number wins, implicit deny) ----

def acl_for_subnet(acls, subnet_id, vpc_id):
    """The NACL associated with the subnet, else the VPC's default NACL (every subnet has exactly one)."""
    for acl in acls:
        if any(assoc.get("SubnetId") == subnet_id for assoc in acl.get("Associations") or ()):
            return acl
    for acl in acls:
        if acl.get("IsDefault") and acl.get("VpcId") == vpc_id:
            return acl
    return None


def _acl_entry_matches_peer(entry, address):
    cidr = entry.get("CidrBlock") if address.version == 4 else entry.get("Ipv6CidrBlock")
    return cidr is not None and address in _network(cidr, f"network ACL rule {entry.get('RuleNumber')}")


def acl_decision(acl, egress, protocol, peer, ports):
    """Which of `ports` (an inclusive (low, high) range of the remote port for egress, the local port for ingress, or
    None for ICMP) the NACL lets through in one direction. Returns (allowed, denied), each a list of ((low, high), rule_number):
    the ports the rule allows, or drops (IMPLICIT_DENY_RULE for the implicit deny)."""
    entries = sorted((entry for entry in acl.get("Entries") or () if bool(entry.get("Egress")) == egress),
                     key=lambda entry: entry.get("RuleNumber", IMPLICIT_DENY_RULE))
    pending = [ports] if ports is not None else [None]
    allowed, denied = [], []
    for entry in entries:
        if not pending:
            break
        entry_protocol = protocol_number(entry.get("Protocol", "-1"))
        if entry_protocol not in ("-1", protocol) or not _acl_entry_matches_peer(entry, peer):
            continue
        action = entry.get("RuleAction", "deny").lower()
        if entry_protocol == "-1" or protocol not in ("6", "17") or ports is None:
            matched, pending = pending, []
        else:
            port_range = entry.get("PortRange") or {}
            low, high = port_range.get("From", 0), port_range.get("To", 65535)
            matched, rest = [], []
            for span_low, span_high in pending:
                inner = (max(span_low, low), min(span_high, high))
                if inner[0] > inner[1]:
                    rest.append((span_low, span_high))
                    continue
                matched.append(inner)
                if span_low < inner[0]:
                    rest.append((span_low, inner[0] - 1))
                if inner[1] < span_high:
                    rest.append((inner[1] + 1, span_high))
            pending = rest
        (allowed if action == "allow" else denied).extend((span, entry.get("RuleNumber")) for span in matched)
    denied.extend((span, IMPLICIT_DENY_RULE) for span in pending)
    return allowed, denied


def _ports_text(span):
    if span is None:
        return ""
    low, high = span
    return f" port {low}" if low == high else f" ports {low}-{high}"


def nacl_hops(acl, direction_name, source_subnet, flow, out_peer, return_ports):
    """Two hops for one subnet boundary: the outbound rule for the flow and the inbound rule for its return traffic."""
    if acl is None:
        return [_hop(f"nacl_{direction_name}_outbound", "unknown", source_subnet, detail="no network ACL found for the subnet"),
                _hop(f"nacl_{direction_name}_return", "unknown", source_subnet, detail="no network ACL found for the subnet")]
    acl_id = acl["NetworkAclId"]
    protocol = flow["protocol"]
    port = (flow["port"], flow["port"]) if flow["port"] is not None else None
    hops = []
    for hop_name, egress, ports, what in ((f"nacl_{direction_name}_outbound", True, port, "outbound"),
                                          (f"nacl_{direction_name}_return", False,
                                           return_ports if protocol in ("6", "17") else None, "inbound return")):
        allowed, denied = acl_decision(acl, egress, protocol, out_peer, ports)
        name = PROTOCOL_NAMES[protocol]
        if not denied:
            hops.append(_hop(hop_name, "allow", acl_id, rule=f"{acl_id} {what} rule {_rules_text(allowed)} allow"))
            continue
        rule_numbers, rules_text = _deciding_rules(denied), _rules_text(denied)
        spans = _ports_text(denied[0][0])
        peer_text = f"{'to' if egress else 'from'} {ipaddress.ip_network(out_peer)}"
        detail = f"{acl_id} {what} rule {rules_text} denies {name}{spans} {peer_text}"
        if allowed:
            detail += " (other ports of the range are allowed: some connections fail, others work)"
        fix_ports = _ports_text(ports).strip() or "all"
        hops.append(_hop(hop_name, "partial" if allowed else "deny", acl_id, rule=f"{acl_id} {what} rule {rules_text} deny",
                         code="SUBNET_ACL_RESTRICTION", detail=detail,
                         fix=f"add an {what} allow rule to {acl_id} numbered below {min(rule_numbers)}: {name} "
                             f"{fix_ports} {peer_text}"))
    return hops


def _deciding_rules(decisions):
    """The rule numbers of acl_decision's ((low, high), rule) decisions, sorted."""
    return sorted({rule for _span, rule in decisions})


def _rules_text(decisions):
    """'90', '100, *': the rules that decided, the implicit deny written as AWS shows it."""
    return ", ".join("*" if rule == IMPLICIT_DENY_RULE else str(rule) for rule in _deciding_rules(decisions))


# ---- route tables ----

def route_table_for_subnet(tables, subnet_id, vpc_id):
    """(table, 'explicit' or 'main'): the subnet's explicit association, else the VPC's main table."""
    for table in tables:
        if any(assoc.get("SubnetId") == subnet_id for assoc in table.get("Associations") or ()):
            return table, "explicit"
    for table in tables:
        if table.get("VpcId") == vpc_id and any(assoc.get("Main") for assoc in table.get("Associations") or ()):
            return table, "main"
    return None, None


def best_route(table, destination, prefix_lists):
    """The most specific route of `table` for `destination` (longest prefix; a prefix list route counts with its
    entry's length), or None."""
    best, best_length = None, -1
    for route in table.get("Routes") or ():
        for cidr in _route_destinations(route, destination.version, prefix_lists):
            network = _network(cidr, f"route table {table.get('RouteTableId')}")
            if destination in network and network.prefixlen > best_length:
                best, best_length = (route, str(network)), network.prefixlen
    return best


def _route_destinations(route, version, prefix_lists):
    if version == 4 and route.get("DestinationCidrBlock"):
        yield route["DestinationCidrBlock"]
    if version == 6 and route.get("DestinationIpv6CidrBlock"):
        yield route["DestinationIpv6CidrBlock"]
    for cidr in prefix_lists.get(route.get("DestinationPrefixListId"), ()) if route.get("DestinationPrefixListId") else ():
        if ipaddress.ip_network(cidr, strict=False).version == version:
            yield cidr


def route_target(route):
    """(kind, id) of a route's next hop: ('local', 'local'), ('igw', 'igw-...'), ('nat', 'nat-...'), ('tgw', ...), ..."""
    for key in ROUTE_TARGET_KEYS:
        value = route.get(key)
        if value:
            return str(value).split("-", 1)[0], value
    return "none", None


# ---- the whole path ----

def source_interface(instance, interfaces, pod_ip=None, snat=True):
    """The ENI that carries the flow and the address it leaves with.

    snat=True: the CNI source-NATs pod traffic to the node's primary address (AWS VPC CNI's default for destinations
    outside the VPC), so the node's primary ENI carries it. snat=False: the ENI that holds the pod's IP (a VPC CNI
    secondary address, or a branch ENI with security groups for pods)."""
    interfaces = list(interfaces or ()) + [eni for eni in instance.get("NetworkInterfaces") or ()
                                           if eni.get("NetworkInterfaceId") not in
                                           {i.get("NetworkInterfaceId") for i in interfaces or ()}]
    if not snat and pod_ip:
        for eni in interfaces:
            for private in eni.get("PrivateIpAddresses") or ():
                if private.get("PrivateIpAddress") == pod_ip:
                    return eni, pod_ip, "the ENI holding the pod's IP (no SNAT to the node's address)"
        raise AwsPathError(f"no network interface of instance {instance.get('InstanceId')} holds the pod IP {pod_ip}; "
                           "with security groups for pods, the pod's branch ENI must be passed")
    primary_ip = instance.get("PrivateIpAddress")
    for eni in interfaces:
        if (eni.get("Attachment") or {}).get("DeviceIndex") == 0 or eni.get("PrivateIpAddress") == primary_ip:
            return eni, primary_ip, "the node's primary ENI (pod traffic is SNATed to the node's address)"
    raise AwsPathError(f"instance {instance.get('InstanceId')} has no primary network interface in the answer")


def _public_ip(eni, private_ip):
    for private in eni.get("PrivateIpAddresses") or ():
        if private.get("PrivateIpAddress") == private_ip:
            return (private.get("Association") or {}).get("PublicIp")
    if eni.get("PrivateIpAddress") == private_ip:
        return (eni.get("Association") or {}).get("PublicIp")
    return None


def evaluate_path(snapshot, flow, pod_ip=None, snat=True):
    """Every hop of the flow from the source ENI to the internet.

    snapshot keys (the describe_* answers): instance, network_interfaces, security_groups, network_acls, route_tables,
    nat_gateways, internet_gateways, prefix_lists ({pl-id: [cidr, ...]}), vpc_cidrs ([cidr, ...]).
    Returns {"result": "allow" | "deny" | "unknown", "source": {...}, "hops": [...], "blocking": [...], "egress_ips": [...]}.
    """
    flow = validate_flow(flow)
    instance = snapshot["instance"]
    prefix_lists = snapshot.get("prefix_lists") or {}
    eni, source_ip, source_reason = source_interface(instance, snapshot.get("network_interfaces"), pod_ip, snat)
    subnet_id, vpc_id = eni.get("SubnetId") or instance.get("SubnetId"), eni.get("VpcId") or instance.get("VpcId")
    groups_by_id = {group["GroupId"]: group for group in snapshot.get("security_groups") or ()}
    group_ids = [group["GroupId"] for group in eni.get("Groups") or ()]
    missing_groups = [group_id for group_id in group_ids if group_id not in groups_by_id]
    hops = []
    if missing_groups:
        hops.append(_hop("security_group", "unknown", ", ".join(missing_groups),
                         detail="security group not in the answer (deleted, or not readable)"))
    else:
        hops.append(security_groups_decision([groups_by_id[group_id] for group_id in group_ids], flow, prefix_lists))
    acls = snapshot.get("network_acls") or ()
    hops += nacl_hops(acl_for_subnet(acls, subnet_id, vpc_id), "node_subnet", subnet_id, flow, flow["destination"],
                      NODE_EPHEMERAL_PORTS)
    egress_ips = []
    if any(flow["destination"] in _network(cidr, "VPC CIDR") for cidr in snapshot.get("vpc_cidrs") or ()):
        hops.append(_hop("route", "allow", subnet_id, rule="local route (the destination is inside the VPC)"))
        return _result(hops, eni, source_ip, source_reason, egress_ips)
    tables = snapshot.get("route_tables") or ()
    hops += _route_hops(tables, subnet_id, vpc_id, flow, prefix_lists, snapshot, source_ip, eni, egress_ips, acls)
    return _result(hops, eni, source_ip, source_reason, egress_ips)


def _route_hops(tables, subnet_id, vpc_id, flow, prefix_lists, snapshot, source_ip, eni, egress_ips, acls):
    table, association = route_table_for_subnet(tables, subnet_id, vpc_id)
    if table is None:
        return [_hop("route", "unknown", subnet_id, detail="no route table found for the subnet (not readable?)")]
    table_id = table["RouteTableId"]
    via = "its explicit association" if association == "explicit" else "the VPC's main table (no explicit association)"
    found = best_route(table, flow["destination"], prefix_lists)
    if found is None:
        return [_hop("route", "deny", table_id, code="NO_ROUTE_TO_DESTINATION",
                     detail=f"{table_id} ({via}) has no route to {flow['destination']}: the subnet has no way out",
                     fix=f"add a route 0.0.0.0/0 to a NAT gateway (private subnet) or an internet gateway to {table_id}")]
    route, cidr = found
    kind, target = route_target(route)
    rule = f"{table_id} {cidr} -> {target}"
    if route.get("State") == "blackhole":
        return [_hop("route", "deny", table_id, rule=f"{rule} (blackhole)", code="BAD_STATE_ROUTE",
                     detail=f"{table_id} ({via}) routes {cidr} to {target}, which no longer exists (blackhole)",
                     fix=f"replace the route {cidr} in {table_id} with one to a live NAT gateway or internet gateway")]
    hops = [_hop("route", "allow", table_id, rule=f"{rule} (via {via})")]
    if kind == "nat":
        hops += _nat_hops(target, table_id, cidr, flow, prefix_lists, snapshot, source_ip, egress_ips, acls, tables, vpc_id,
                          subnet_id)
    elif kind == "igw":
        hops += _igw_hops(target, vpc_id, snapshot, eni, source_ip, egress_ips)
    elif kind == "local":
        hops[-1] = _hop("route", "allow", table_id, rule=f"{rule} (inside the VPC)")
    else:
        hops.append(_hop("beyond_vpc", "unknown", target,
                         detail=f"the traffic leaves the VPC through {target}: what lies beyond is not evaluated"))
    return hops


def _nat_hops(nat_id, table_id, cidr, flow, prefix_lists, snapshot, source_ip, egress_ips, acls, tables, vpc_id, source_subnet):
    nat = next((item for item in snapshot.get("nat_gateways") or () if item.get("NatGatewayId") == nat_id), None)
    if nat is None or nat.get("State") in ("deleted", "deleting"):
        # AWS turns such a route into a blackhole; an emulator may still say active.
        return [_hop("nat_gateway", "deny", nat_id, code="BAD_STATE_ROUTE",
                     detail=f"{table_id} routes {cidr} to {nat_id}, which {'is deleted' if nat else 'does not exist'}",
                     fix=f"point {cidr} in {table_id} at a live NAT gateway")]
    if nat.get("State") != "available":
        return [_hop("nat_gateway", "deny", nat_id, code="BAD_STATE",
                     detail=f"{nat_id} is {nat.get('State')}, not available")]
    if nat.get("ConnectivityType") == "private":
        return [_hop("nat_gateway", "deny", nat_id, code="NAT_GATEWAY_PRIVATE",
                     detail=f"{nat_id} is a private NAT gateway: it translates to a private address and cannot reach the internet",
                     fix=f"route {cidr} in {table_id} through a public NAT gateway")]
    public_ips = [address["PublicIp"] for address in nat.get("NatGatewayAddresses") or () if address.get("PublicIp")]
    egress_ips.extend(public_ips)
    hops = [_hop("nat_gateway", "allow", nat_id, rule=f"{nat_id} public, available, egress IPs {', '.join(public_ips) or 'none'}")]
    nat_subnet = nat.get("SubnetId")
    nat_acl = acl_for_subnet(acls, nat_subnet, vpc_id)
    if nat_subnet != source_subnet:
        # The node's traffic enters the NAT subnet (inbound, to the destination port) and its answers leave it again
        # towards the node's ephemeral ports.
        source = _address(source_ip, "source address")
        hops += _nacl_transit_hops(nat_acl, nat_subnet, flow, source)
    hops += nacl_hops(nat_acl, "nat_subnet", nat_subnet, flow, flow["destination"], NAT_EPHEMERAL_PORTS)
    nat_table = route_table_for_subnet(tables, nat_subnet, vpc_id)[0]
    found = best_route(nat_table, flow["destination"], prefix_lists) if nat_table else None
    if nat_table is None:
        hops.append(_hop("nat_subnet_route", "unknown", nat_subnet, detail="no route table found for the NAT gateway's subnet"))
        return hops
    nat_table_id = nat_table["RouteTableId"]
    if found is None or route_target(found[0])[0] != "igw" or found[0].get("State") == "blackhole":
        where = f"{found[1]} -> {route_target(found[0])[1]}" if found else "no route"
        hops.append(_hop("nat_subnet_route", "deny", nat_table_id, code="NO_ROUTE_TO_DESTINATION",
                         detail=f"{nat_id}'s subnet {nat_subnet} uses {nat_table_id} ({where}): a NAT gateway needs a "
                                "route to an internet gateway",
                         fix=f"add 0.0.0.0/0 -> the VPC's internet gateway to {nat_table_id}"))
        return hops
    hops.append(_hop("nat_subnet_route", "allow", nat_table_id, rule=f"{nat_table_id} {found[1]} -> {route_target(found[0])[1]}"))
    hops.append(_igw_attached(route_target(found[0])[1], vpc_id, snapshot))
    return hops


def _nacl_transit_hops(acl, subnet_id, flow, source):
    """The NAT subnet's NACL seen from the node: inbound from the node to the destination port, outbound back to the
    node's ephemeral ports."""
    if acl is None:
        return [_hop("nacl_nat_subnet_from_node", "unknown", subnet_id, detail="no network ACL found for the subnet")]
    acl_id = acl["NetworkAclId"]
    hops = []
    port = (flow["port"], flow["port"]) if flow["port"] is not None else None
    back = NODE_EPHEMERAL_PORTS if flow["protocol"] in ("6", "17") else None
    for hop_name, egress, ports, what in (("nacl_nat_subnet_from_node", False, port, "inbound"),
                                          ("nacl_nat_subnet_to_node", True, back, "outbound")):
        allowed, denied = acl_decision(acl, egress, flow["protocol"], source, ports)
        if not denied:
            hops.append(_hop(hop_name, "allow", acl_id, rule=f"{acl_id} {what} rule allows {source}"))
            continue
        rule_numbers, rules_text = _deciding_rules(denied), _rules_text(denied)
        hops.append(_hop(hop_name, "partial" if allowed else "deny", acl_id, rule=f"{acl_id} {what} rule {rules_text} deny",
                         code="SUBNET_ACL_RESTRICTION",
                         detail=f"{acl_id} (the NAT gateway's subnet) {what} rule {rules_text} drops the node's traffic "
                                f"({'from' if not egress else 'to'} {source}{_ports_text(denied[0][0])})",
                         fix=f"add an {what} allow rule to {acl_id} numbered below {min(rule_numbers)} for {source}"))
    return hops


def _igw_hops(igw_id, vpc_id, snapshot, eni, source_ip, egress_ips):
    hops = [_igw_attached(igw_id, vpc_id, snapshot)]
    public_ip = _public_ip(eni, source_ip)
    if public_ip is None:
        hops.append(_hop("public_ip", "deny", eni.get("NetworkInterfaceId"), code="NO_PUBLIC_IP",
                         detail=f"the route goes to {igw_id} but {source_ip} has no public IP: an internet gateway only "
                                "translates addresses that have one",
                         fix="give the node a public IP (or an Elastic IP), or route the subnet through a NAT gateway"))
    else:
        egress_ips.append(public_ip)
        hops.append(_hop("public_ip", "allow", eni.get("NetworkInterfaceId"), rule=f"{source_ip} -> {public_ip}"))
    return hops


def _igw_attached(igw_id, vpc_id, snapshot):
    igw = next((item for item in snapshot.get("internet_gateways") or () if item.get("InternetGatewayId") == igw_id), None)
    attached = igw is not None and any(attachment.get("VpcId") == vpc_id and attachment.get("State") in ("available", "attached")
                                       for attachment in igw.get("Attachments") or ())
    if attached:
        return _hop("internet_gateway", "allow", igw_id, rule=f"{igw_id} attached to {vpc_id}")
    return _hop("internet_gateway", "deny", igw_id, code="BAD_STATE_ATTACHMENT",
                detail=f"{igw_id} {'is not attached to ' + vpc_id if igw else 'does not exist'}",
                fix=f"attach an internet gateway to {vpc_id} and route to it")


def _hop(hop, result, obj, rule=None, code=None, detail=None, fix=None):
    return {"hop": hop, "result": result, "object": obj, "rule": rule, "code": code, "detail": detail, "fix": fix}


def _result(hops, eni, source_ip, source_reason, egress_ips):
    blocking = [hop for hop in hops if hop["result"] in ("deny", "partial")]
    if blocking:
        result = "deny"
    elif any(hop["result"] == "unknown" for hop in hops):
        result = "unknown"
    else:
        result = "allow"
    return {"result": result, "source": {"eni": eni.get("NetworkInterfaceId"), "ip": source_ip, "why": source_reason,
                                         "subnet": eni.get("SubnetId")},
            "hops": hops, "blocking": blocking, "egress_ips": egress_ips}
