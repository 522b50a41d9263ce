"""The destinations the cluster-side analysers are asked about: parsed, classified, resolved on the controller."""

import ipaddress
import re
import socket

PROTOCOLS = ("TCP", "UDP", "SCTP")
_POD_REF = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?/[a-z0-9]([-.a-z0-9]*[a-z0-9])?$")
HOST_NAME = re.compile(r"^(?=.{1,253}\.?$)([A-Za-z0-9_]([-A-Za-z0-9_]{0,61}[A-Za-z0-9])?)(\.[A-Za-z0-9_]([-A-Za-z0-9_]{0,61}[A-Za-z0-9])?)*\.?$")


def _protocol(value, where):
    text = str(value or "TCP").upper()
    if text not in PROTOCOLS:
        raise ValueError(f"{where}: protocol {value!r} is not one of {', '.join(PROTOCOLS)}")
    return text


def _port(value, where):
    if value is None or value == "":
        return None
    if isinstance(value, bool) or not str(value).isdigit() or not 0 < int(value) < 65536:
        raise ValueError(f"{where}: port {value!r} is not a number from 1 to 65535 (leave it out to ask about every port)")
    return int(value)


def classify_destination(text, where="destination"):
    """(kind, normalised text): kind is ip, cidr, pod ("namespace/name") or host; anything else is a ValueError."""
    if not isinstance(text, str) or not text.strip():
        raise ValueError(f"{where}: {text!r} is empty; give an IP, a CIDR, a host name or a pod as namespace/name")
    text = text.strip()
    try:
        return "ip", str(ipaddress.ip_address(text))
    except ValueError:
        pass
    if "/" in text:
        try:
            return "cidr", str(ipaddress.ip_network(text, strict=False))
        except ValueError:
            pass
        if _POD_REF.match(text):
            return "pod", text
    elif HOST_NAME.match(text) and not text.replace(".", "").isdigit():
        return "host", text.lower().rstrip(".")
    raise ValueError(f"{where}: {text!r} is not an IP address, a CIDR such as 10.0.0.0/8, a DNS host name or a pod as namespace/name")


def parse_destinations(destinations, port=None, protocol="TCP"):
    """Normalise the module's destinations: strings (with the default port/protocol) or dicts {to, port, protocol, ips}.

    Returns [{to, kind, port, protocol, ips}]; ``ips`` is given only for a host whose addresses the caller knows.
    """
    if not destinations:
        raise ValueError("destinations: give at least one IP, CIDR, host name or namespace/pod")
    default_port = _port(port, "port")
    default_protocol = _protocol(protocol, "protocol")
    parsed = []
    for index, entry in enumerate(destinations):
        where = f"destinations[{index}]"
        if isinstance(entry, dict):
            unknown = sorted(set(entry) - {"to", "port", "protocol", "ips"})
            if unknown:
                raise ValueError(f"{where}: unknown keys {', '.join(unknown)}; use to, port, protocol and ips")
            kind, to = classify_destination(entry.get("to"), where)
            item = {"to": to, "kind": kind, "port": _port(entry.get("port", default_port), where),
                    "protocol": _protocol(entry.get("protocol", default_protocol), where), "ips": None}
            if entry.get("ips") is not None:
                if kind != "host":
                    raise ValueError(f"{where}: ips is only for a host name; {to!r} is a {kind}")
                ips = entry["ips"] if isinstance(entry["ips"], list) else [entry["ips"]]
                item["ips"] = [classify_ip(ip, f"{where}.ips") for ip in ips]
        else:
            kind, to = classify_destination(entry, where)
            item = {"to": to, "kind": kind, "port": default_port, "protocol": default_protocol, "ips": None}
        parsed.append(item)
    return parsed


def classify_ip(text, where):
    try:
        return str(ipaddress.ip_address(str(text).strip()))
    except ValueError:
        raise ValueError(f"{where}: {text!r} is not an IP address") from None


def resolve_host(name, resolver=socket.getaddrinfo):
    """The host's addresses as the controller resolves them (IPv4 first), or a ValueError saying why not."""
    try:
        answers = resolver(name, None, 0, socket.SOCK_STREAM)
    except (OSError, UnicodeError) as error:
        raise ValueError(f"cannot resolve {name} on the controller ({error}); give its addresses with ips: [...]") from None
    addresses = list(dict.fromkeys(str(ipaddress.ip_address(answer[4][0].split("%")[0])) for answer in answers))
    return sorted(addresses, key=lambda ip: ipaddress.ip_address(ip).version)


def cidr_samples(cidr):
    """The addresses a CIDR question is evaluated at: its first and last usable address (one for a /32 or /128)."""
    network = ipaddress.ip_network(cidr, strict=False)
    if network.num_addresses <= 2:
        return list(dict.fromkeys([str(network.network_address), str(network.broadcast_address)]))
    return [str(network.network_address + 1), str(network.broadcast_address - 1)]
