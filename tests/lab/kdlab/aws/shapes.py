"""moto's gaps against real AWS answers, covered inside the lab's own moto process (FIELD_NOTES, moto 5.2.5).

Patched on moto's models, so every write through the API (not only the lab's seeding) reads back as AWS gives it:
- a route whose NAT gateway is deleted, or whose internet gateway is detached from the VPC, reads `blackhole`
  (moto: always `active`);
- a custom network ACL starts with its two `32767` deny entries, ingress and egress (moto: none);
- NACL entry protocols read as numbers, `"6"`, `"17"`, `"1"`, `"-1"` (moto: as given, e.g. `"tcp"`);
- NACL entries come back ordered by rule number (moto: insertion order);
- describe_network_interfaces shows an Elastic IP on the primary private address's `Association` too, as AWS does
  (moto: only on the interface).
"""

from moto.ec2.models import elastic_network_interfaces, network_acls, route_tables

PROTOCOL_NUMBERS = {"tcp": "6", "udp": "17", "icmp": "1", "icmpv6": "58", "all": "-1"}
_applied = False


def _route_state(route) -> str:
    nat = route.nat_gateway
    if nat is not None and nat.state in ("deleting", "deleted", "failed"):
        return "blackhole"
    gateway = route.gateway
    is_igw = gateway is not None and str(getattr(gateway, "id", "")).startswith("igw-")
    if is_igw and (getattr(gateway, "vpc", None) is None or gateway.vpc.id != route.route_table.vpc_id):
        return "blackhole"
    return "active"


def _protocol_get(entry) -> str:
    return entry._kdlab_protocol


def _protocol_set(entry, value) -> None:
    text = str(value).strip().lower()
    entry._kdlab_protocol = PROTOCOL_NUMBERS.get(text, text)


def _private_ips_get(eni) -> list:
    # The stored dicts are the ones moto mutates elsewhere: annotate them in place, never hand out a copy.
    public_ip = getattr(eni, "public_ip", None)
    for item in eni._kdlab_private_ips:
        if public_ip and item.get("PrivateIpAddress") == getattr(eni, "private_ip_address", None):
            item["Association"] = eni.association
        else:
            item.pop("Association", None)
    return eni._kdlab_private_ips


def _private_ips_set(eni, value) -> None:
    eni._kdlab_private_ips = value


def apply() -> None:
    """Patches moto once per process (the lab's moto service calls it before serving)."""
    global _applied
    if _applied:
        return
    _applied = True
    route_tables.Route.state = property(_route_state)
    network_acls.NetworkAclEntry.protocol = property(_protocol_get, _protocol_set)
    elastic_network_interfaces.NetworkInterface.private_ip_addresses = property(_private_ips_get, _private_ips_set)
    backend = network_acls.NetworkAclBackend
    create_acl, create_entry = backend.create_network_acl, backend.create_network_acl_entry

    def create_network_acl(self, vpc_id, tags=None, default=False):
        acl = create_acl(self, vpc_id, tags=tags, default=default)
        if not default:
            for egress in (True, False):
                create_entry(self, network_acl_id=acl.id, rule_number=32767, protocol="-1", rule_action="deny", egress=egress,
                             cidr_block="0.0.0.0/0", icmp_code=None, icmp_type=None, port_range_from=None, port_range_to=None,
                             ipv6_cidr_block=None)
        return acl

    def create_network_acl_entry(self, network_acl_id, rule_number, *args, **kwargs):
        entry = create_entry(self, network_acl_id, rule_number, *args, **kwargs)
        acl = self.get_network_acl(network_acl_id)
        acl.network_acl_entries.sort(key=lambda e: (e.egress, int(e.rule_number)))
        return entry

    backend.create_network_acl = create_network_acl
    backend.create_network_acl_entry = create_network_acl_entry
