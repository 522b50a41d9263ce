"""A cluster's `aws:` scenario section: strict validation, defaults, and the addresses the lab gives its cloud objects.

The VPC is the cluster's own 172.20.<cluster index>.0/24; subnets are carved from it and each node's address comes from
its subnet. Public addresses (NAT gateway EIPs, node public IPs) are TEST-NET addresses the lab picks, so the lab's
internet can route them back and its allow-list endpoint can name them. Documented in docs/lab.md ("The aws: section").
"""

import ipaddress
import re

MAX_CLUSTERS = 5                # public addresses: 203.0.113.100-199, 10 per cluster for NAT EIPs and 10 for node IPs
MAX_PUBLIC = 10
REGION, ZONE = "eu-west-1", "eu-west-1a"
ACCESS_KEY, SECRET_KEY = "AKIDKDLABEXAMPLE0000", "kdlab-moto-secret-not-a-real-key"
NAME = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
PROTOCOLS = ("tcp", "udp", "icmp", "all")
IGW_STATES = ("attached", "detached", "none")
FIRST_NODE_HOST = 10            # AWS reserves the first four addresses of a subnet; the lab starts its nodes at .10


def vpc_cidr(cluster_index: int) -> str:
    return f"172.20.{cluster_index}.0/24"


def nat_eip(cluster_index: int, k: int) -> str:
    return f"203.0.113.{100 + 10 * cluster_index + k}"


def node_public_ip(cluster_index: int, k: int) -> str:
    return f"203.0.113.{150 + 10 * cluster_index + k}"


def validate(check, raw, where: str, cluster_index: int, node_names: list[str]) -> dict:
    """The normalised section; `check` is scenario._Checker (every error names the file and the key)."""
    raw = check.mapping(raw, where, ("credentials", "internet_gateway", "subnets", "nat_gateways", "route_tables",
                                     "network_acls", "security_groups", "nodes"), ("subnets", "nodes"))
    if cluster_index >= MAX_CLUSTERS:
        check.fail(where, f"only the first {MAX_CLUSTERS} clusters of a scenario can have an aws section")
    vpc = ipaddress.ip_network(vpc_cidr(cluster_index))
    credentials = raw.get("credentials", True)
    if not isinstance(credentials, bool):
        check.fail(f"{where}.credentials", "must be true or false")
    igw = raw.get("internet_gateway", "attached")
    if igw not in IGW_STATES:
        check.fail(f"{where}.internet_gateway", f"must be one of {', '.join(IGW_STATES)}, got {igw!r}")
    subnets = []
    for i, s in enumerate(check.listing(raw["subnets"], f"{where}.subnets")):
        swhere = f"{where}.subnets[{i}]"
        s = check.mapping(s, swhere, ("name", "cidr"), ("name", "cidr"))
        try:
            network = ipaddress.ip_network(s["cidr"])
        except (TypeError, ValueError):
            check.fail(f"{swhere}.cidr", f"{s['cidr']!r} is not a CIDR block (e.g. {vpc.network_address}/26)")
        if not network.subnet_of(vpc) or not 24 <= network.prefixlen <= 27:
            check.fail(f"{swhere}.cidr", f"{network} must be a /24 to /27 inside the cluster's VPC {vpc}")
        if any(network.overlaps(ipaddress.ip_network(other["cidr"])) for other in subnets):
            check.fail(f"{swhere}.cidr", f"{network} overlaps another subnet")
        subnets.append({"name": _name(check, s["name"], f"{swhere}.name"), "cidr": str(network)})
    subnet_names = _unique(check, subnets, f"{where}.subnets")
    if not subnets:
        check.fail(f"{where}.subnets", "needs at least one subnet")
    nats = []
    for i, n in enumerate(check.listing(raw.get("nat_gateways", []), f"{where}.nat_gateways")):
        nwhere = f"{where}.nat_gateways[{i}]"
        n = check.mapping(n, nwhere, ("name", "subnet", "connectivity", "deleted"), ("name", "subnet"))
        nat = {"name": _name(check, n["name"], f"{nwhere}.name"), "subnet": _ref(check, n["subnet"], subnet_names, f"{nwhere}.subnet"),
               "connectivity": n.get("connectivity", "public"), "deleted": n.get("deleted", False)}
        if nat["connectivity"] not in ("public", "private"):
            check.fail(f"{nwhere}.connectivity", f"must be public or private, got {nat['connectivity']!r}")
        if not isinstance(nat["deleted"], bool):
            check.fail(f"{nwhere}.deleted", "must be true or false")
        nat["eip"] = nat_eip(cluster_index, len(nats)) if nat["connectivity"] == "public" else None
        nats.append(nat)
    if len(nats) > MAX_PUBLIC:
        check.fail(f"{where}.nat_gateways", f"at most {MAX_PUBLIC} NAT gateways")
    nat_names = _unique(check, nats, f"{where}.nat_gateways")
    targets = ("internet_gateway", *nat_names)
    tables = []
    for i, t in enumerate(check.listing(raw.get("route_tables", []), f"{where}.route_tables")):
        twhere = f"{where}.route_tables[{i}]"
        t = check.mapping(t, twhere, ("name", "main", "subnets", "routes"), ("name",))
        routes = []
        for j, r in enumerate(check.listing(t.get("routes", []), f"{twhere}.routes")):
            rwhere = f"{twhere}.routes[{j}]"
            r = check.mapping(r, rwhere, ("cidr", "target"), ("cidr", "target"))
            routes.append({"cidr": _cidr(check, r["cidr"], f"{rwhere}.cidr"), "target": _ref(check, r["target"], targets, f"{rwhere}.target")})
        main = t.get("main", False)
        if not isinstance(main, bool):
            check.fail(f"{twhere}.main", "must be true or false")
        tables.append({"name": _name(check, t["name"], f"{twhere}.name"), "main": main, "routes": routes,
                       "subnets": [_ref(check, s, subnet_names, f"{twhere}.subnets") for s in check.listing(t.get("subnets", []), f"{twhere}.subnets")]})
    _unique(check, tables, f"{where}.route_tables")
    if sum(t["main"] for t in tables) > 1:
        check.fail(f"{where}.route_tables", "at most one table can be the main table")
    _one_owner(check, tables, f"{where}.route_tables", "route table")
    acls = []
    for i, a in enumerate(check.listing(raw.get("network_acls", []), f"{where}.network_acls")):
        awhere = f"{where}.network_acls[{i}]"
        a = check.mapping(a, awhere, ("name", "subnets", "entries"), ("name",))
        entries = [_acl_entry(check, e, f"{awhere}.entries[{j}]") for j, e in enumerate(check.listing(a.get("entries", []), f"{awhere}.entries"))]
        keys = [(e["egress"], e["rule"]) for e in entries]
        if len(set(keys)) != len(keys):
            check.fail(f"{awhere}.entries", "rule numbers must be unique per direction")
        acls.append({"name": _name(check, a["name"], f"{awhere}.name"), "entries": entries,
                     "subnets": [_ref(check, s, subnet_names, f"{awhere}.subnets") for s in check.listing(a.get("subnets", []), f"{awhere}.subnets")]})
    _unique(check, acls, f"{where}.network_acls")
    _one_owner(check, acls, f"{where}.network_acls", "network ACL")
    groups = []
    for i, g in enumerate(check.listing(raw.get("security_groups", []), f"{where}.security_groups")):
        gwhere = f"{where}.security_groups[{i}]"
        g = check.mapping(g, gwhere, ("name", "egress"), ("name",))
        egress = None
        if "egress" in g:
            egress = [_sg_rule(check, r, f"{gwhere}.egress[{j}]") for j, r in enumerate(check.listing(g["egress"], f"{gwhere}.egress"))]
        groups.append({"name": _name(check, g["name"], f"{gwhere}.name"), "egress": egress})
    group_names = _unique(check, groups, f"{where}.security_groups")
    raw_nodes = check.mapping(raw["nodes"], f"{where}.nodes", tuple(node_names), tuple(node_names))
    nodes, public = {}, 0
    for node in node_names:
        nwhere = f"{where}.nodes.{node}"
        n = check.mapping(raw_nodes[node], nwhere, ("subnet", "security_groups", "public_ip"), ("subnet",))
        public_ip = n.get("public_ip", False)
        if not isinstance(public_ip, bool):
            check.fail(f"{nwhere}.public_ip", "must be true or false")
        nodes[node] = {"subnet": _ref(check, n["subnet"], subnet_names, f"{nwhere}.subnet"),
                       "security_groups": [_ref(check, s, group_names, f"{nwhere}.security_groups")
                                           for s in check.listing(n.get("security_groups", []), f"{nwhere}.security_groups")],
                       "public_ip": node_public_ip(cluster_index, public) if public_ip else None}
        public += public_ip
    if public > MAX_PUBLIC:
        check.fail(f"{where}.nodes", f"at most {MAX_PUBLIC} nodes with a public IP")
    for s in subnets:
        in_subnet = [name for name in node_names if nodes[name]["subnet"] == s["name"]]
        network = ipaddress.ip_network(s["cidr"])
        if FIRST_NODE_HOST + len(in_subnet) >= network.num_addresses - 1:
            check.fail(f"{where}.subnets", f"subnet {s['name']} ({network}) is too small for its {len(in_subnet)} nodes")
        for k, name in enumerate(in_subnet):
            nodes[name]["ip"] = str(network.network_address + FIRST_NODE_HOST + k)
    return {"credentials": credentials, "internet_gateway": igw, "subnets": subnets, "nat_gateways": nats,
            "route_tables": tables, "network_acls": acls, "security_groups": groups, "nodes": nodes,
            "vpc_cidr": str(vpc), "region": REGION, "zone": ZONE}


def public_addresses(section: dict) -> list[str]:
    """Every public address of the section: what the lab's internet must route back to the cluster's gateway."""
    return [n["eip"] for n in section["nat_gateways"] if n["eip"]] + [n["public_ip"] for n in section["nodes"].values() if n["public_ip"]]


def _name(check, value, where):
    if not isinstance(value, str) or not NAME.match(value):
        check.fail(where, f"{value!r} is not a valid name (lowercase letters, digits and '-')")
    return value


def _ref(check, value, known, where):
    if value not in known:
        check.fail(where, f"{value!r} names nothing declared (known: {', '.join(known) or 'none'})")
    return value


def _unique(check, items, where):
    names = [item["name"] for item in items]
    if len(set(names)) != len(names):
        check.fail(where, "names must be unique")
    return names


def _one_owner(check, items, where, what):
    seen = {}
    for item in items:
        for subnet in item["subnets"]:
            if subnet in seen:
                check.fail(where, f"subnet {subnet} is associated with {what}s {seen[subnet]} and {item['name']}; a subnet has one")
            seen[subnet] = item["name"]


def _cidr(check, value, where):
    try:
        return str(ipaddress.ip_network(value))
    except (TypeError, ValueError):
        check.fail(where, f"{value!r} is not a CIDR block (e.g. 0.0.0.0/0)")


def _ports(check, value, where, protocol):
    """'443', 443, '1024-65535' -> (low, high); None for icmp and all."""
    if protocol in ("icmp", "all"):
        if value is not None:
            check.fail(where, f"protocol {protocol} takes no ports")
        return None
    text = str(value) if value is not None else ""
    match = re.fullmatch(r"(\d{1,5})(?:-(\d{1,5}))?", text)
    if not match or not 0 <= int(match[1]) <= int(match[2] or match[1]) <= 65535:
        check.fail(where, f"{value!r} is not a port or a range low-high (e.g. 443 or 1024-65535)")
    return int(match[1]), int(match[2] or match[1])


def _protocol(check, value, where):
    if value not in PROTOCOLS:
        check.fail(where, f"must be one of {', '.join(PROTOCOLS)}, got {value!r}")
    return value


def _acl_entry(check, raw, where):
    raw = check.mapping(raw, where, ("rule", "direction", "protocol", "ports", "cidr", "action"), ("rule", "direction", "action"))
    rule = raw["rule"]
    if isinstance(rule, bool) or not isinstance(rule, int) or not 1 <= rule <= 32766:
        check.fail(f"{where}.rule", f"must be a rule number 1-32766, got {rule!r}")
    if raw["direction"] not in ("egress", "ingress"):
        check.fail(f"{where}.direction", f"must be egress or ingress, got {raw['direction']!r}")
    if raw["action"] not in ("allow", "deny"):
        check.fail(f"{where}.action", f"must be allow or deny, got {raw['action']!r}")
    protocol = _protocol(check, raw.get("protocol", "all"), f"{where}.protocol")
    return {"rule": rule, "egress": raw["direction"] == "egress", "protocol": protocol, "action": raw["action"],
            "ports": _ports(check, raw.get("ports"), f"{where}.ports", protocol), "cidr": _cidr(check, raw.get("cidr", "0.0.0.0/0"), f"{where}.cidr")}


def _sg_rule(check, raw, where):
    raw = check.mapping(raw, where, ("protocol", "ports", "cidr"), ("protocol",))
    protocol = _protocol(check, raw["protocol"], f"{where}.protocol")
    return {"protocol": protocol, "ports": _ports(check, raw.get("ports"), f"{where}.ports", protocol),
            "cidr": _cidr(check, raw.get("cidr", "0.0.0.0/0"), f"{where}.cidr")}
