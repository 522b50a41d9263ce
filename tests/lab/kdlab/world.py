"""The lab's fixed "internet": names, TEST-NET addresses and ports. Nothing here is a real public address."""

from dataclasses import dataclass, field

ZONE = "example.test"
PUBLIC_RESOLVER_IP = "192.0.2.8"        # the field guide's 8.8.8.8
AUTHORITATIVE_IP = "192.0.2.53"
VPC_RESOLVER_IP = "169.254.169.253"    # the VPC's resolver (AWS's link-local one); reachable from nodes without NAT
DEAD_RESOLVER_IP = "192.0.2.99"         # routed into a blackhole: queries to it time out
INTERNET_BRIDGE_IP = "203.0.113.254"    # the "internet" side of every cluster's NAT gateway
INTERNET_PREFIX = "203.0.113.0/24"
NOT_ALLOWLISTED_IP = "203.0.113.200"    # the allow-list used by the egress_ip_not_allowlisted fault

CLUSTER_DOMAIN = "cluster.local"
SERVICE_CIDR = "10.96.0.0/12"
KUBERNETES_SERVICE_IP = "10.96.0.1"
CLUSTER_DNS_IP = "10.96.0.10"
WRONG_NAMESERVER_IP = "10.96.0.53"      # a service IP nothing serves (the resolv_conf "wrong" fault)
POD_SUPERNET = "10.244.0.0/16"
LARGE_RESPONSE_BYTES = 256 * 1024


@dataclass(frozen=True)
class Endpoint:
    """One host on the lab's internet. `serves` says what the services process runs on it."""

    host: str
    ip: str
    tcp_ports: tuple[int, ...] = ()
    udp_ports: tuple[int, ...] = ()
    serves: str = "web"                  # web | whoami | allowlist | proxy | udp_echo | dns | none
    cert: str = ""                       # the TLS certificate for its HTTPS ports: lab | expired | wrong_name | unknown_ca
    aliases: tuple[str, ...] = field(default=())

    @property
    def ports(self) -> list[int]:
        return sorted(set(self.tcp_ports) | set(self.udp_ports))


ENDPOINTS: tuple[Endpoint, ...] = (
    Endpoint("api.example.test", "198.51.100.10", (80, 443, 8443), (123,), cert="lab"),
    Endpoint("expired.example.test", "198.51.100.11", (80, 443), cert="expired"),
    Endpoint("wrong-name.example.test", "198.51.100.12", (80, 443), cert="wrong_name"),
    Endpoint("untrusted.example.test", "198.51.100.13", (80, 443), cert="unknown_ca"),
    Endpoint("udp-echo.example.test", "198.51.100.14", (), (123, 5353), serves="udp_echo"),
    Endpoint("whoami.example.test", "198.51.100.15", (80, 443), serves="whoami", cert="lab", aliases=("ifconfig.example.test",)),
    Endpoint("proxy.example.test", "198.51.100.16", (3128,), serves="proxy"),
    Endpoint("allowlisted.example.test", "198.51.100.17", (80, 443), serves="allowlist", cert="lab"),
    Endpoint("large.example.test", "198.51.100.18", (80, 443), cert="lab"),
    Endpoint("down.example.test", "198.51.100.19", (80, 443), serves="none"),
    Endpoint("deadproxy.example.test", "198.51.100.20", (3128,), serves="none"),
    Endpoint("ns.example.test", AUTHORITATIVE_IP, (53,), (53,), serves="dns"),
    Endpoint("dns.example.test", PUBLIC_RESOLVER_IP, (53,), (53,), serves="dns"),
)

PROXY_URL = "http://proxy.example.test:3128"
DEAD_PROXY_URL = "http://deadproxy.example.test:3128"


def endpoint(host: str) -> Endpoint | None:
    return next((e for e in ENDPOINTS if host == e.host or host in e.aliases), None)


def zone_records() -> dict[str, str]:
    """Every lab name (FQDN with the trailing dot) and its A record."""
    records = {}
    for e in ENDPOINTS:
        for name in (e.host, *e.aliases):
            records[name + "."] = e.ip
    return records
