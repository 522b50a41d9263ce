"""The words the stages share, defined once: root-cause ids (layer, hop, fix order, meaning), check ids and kinds, the
statuses of a check, of a pod x target result and of a hop of its path.

The probe writes check ids and statuses, the verdict reads them and writes root-cause ids and statuses, the report
counts and draws them, and docs/architecture.md's id table is compared with ROOT_CAUSES by a unit test. It sits beside
the stage subpackages rather than in one of them because every stage imports it (the probe must not depend on the
verdict); and it imports nothing, so the lab (tests/lab/kdlab) loads it by path to validate a scenario's expected ids.
Ids are only ever added, never renamed: reports, saved facts and users key on them.
"""

from collections import namedtuple

RootCause = namedtuple("RootCause", "id layer hop meaning")

# In fix order: a broken node or path hides everything behind it; the endpoint's own problems come last.
ROOT_CAUSES = (
    RootCause("node.egress_broken", "node", "node", "the node itself cannot reach anything outside"),
    RootCause("route.no_internet_path", "route", "internet",
              "no route to the internet from the node's subnet (no NAT gateway / IGW / default route)"),
    RootCause("nat.missing_snat", "nat", "nat", "traffic leaves with the pod IP (kube-proxy / ip-masq-agent / CNI SNAT off)"),
    RootCause("dns.resolv_conf", "dns", "dns", "the pod's resolv.conf is missing or wrong (no nameserver, not the cluster DNS)"),
    RootCause("netpol.dns_blocked", "netpol", "policy", "a NetworkPolicy selects the pod and blocks port 53 to the cluster DNS"),
    RootCause("dns.cluster_dns_unreachable", "dns", "dns", "the cluster DNS service does not answer the pod"),
    RootCause("dns.upstream_forwarding", "dns", "dns",
              "cluster DNS fails for external names while an external resolver works: CoreDNS forward/upstream"),
    RootCause("netpol.egress_blocked", "netpol", "policy", "a NetworkPolicy selects the pod and no egress rule allows dst:port"),
    RootCause("mesh.registry_only", "mesh", "policy", "Istio outboundTrafficPolicy REGISTRY_ONLY and no ServiceEntry for the host"),
    RootCause("proxy.unreachable", "proxy", "internet", "the pod's proxy env points at a proxy that does not answer"),
    RootCause("proxy.missing_config", "proxy", "internet", "direct egress is blocked, a proxy works, and the pod has no proxy env"),
    RootCause("firewall.cloud_egress_denied", "firewall", "internet",
              "a cloud firewall (SG, NACL, GCP firewall, Azure NSG) denies dst:port, named"),
    RootCause("firewall.port_blocked", "firewall", "internet",
              "some ports/protocols fail where others pass, and no policy we can read explains it"),
    RootCause("mtu.blackhole", "mtu", "internet", "small requests pass, large ones stall (path MTU black hole)"),
    RootCause("tls.unknown_ca", "tls", "endpoint", "the handshake fails on an untrusted issuer, or the pod has no CA bundle"),
    RootCause("tls.cert_expired", "tls", "endpoint", "the endpoint's certificate is expired or not yet valid"),
    RootCause("tls.hostname_mismatch", "tls", "endpoint", "the certificate does not cover the host name"),
    RootCause("endpoint.ip_allowlist", "endpoint", "endpoint", "the endpoint refuses our egress IP while the path is otherwise fine"),
    RootCause("endpoint.down", "endpoint", "endpoint", "the endpoint fails from the node too, while other destinations work"),
    RootCause("dns.name_not_found", "endpoint", "endpoint",
              "the name does not exist anywhere (NXDOMAIN from every resolver): the endpoint's problem"),
)
HEALTHY = RootCause("healthy", "none", None, "every probe to every target passed")

FIX_ORDER = tuple(cause.id for cause in ROOT_CAUSES)
ROOT_CAUSE_IDS = (HEALTHY.id, *FIX_ORDER)
LAYERS = {cause.id: (cause.layer, cause.hop) for cause in (*ROOT_CAUSES, HEALTHY)}

# The egress path a finding's hop marks, in the order a packet meets it (the report draws it left to right).
HOPS = ("pod", "dns", "policy", "node", "nat", "internet", "endpoint")
HOP_STATUSES = ("ok", "fail", "not_reached", "unknown")
# A pod x target result: healthy (every target of the pod works), ok (this one works, another has a finding), failing
# (a finding concerns it), unknown (a failure no rule explains), not_probed (the pod could not be probed and its
# configuration proves no cause), inconclusive (the probe could not trust its own timings and a failure rests only on a
# timeout: no root cause is drawn).
TARGET_STATUSES = ("healthy", "ok", "failing", "unknown", "not_probed", "inconclusive")
SEVERITIES = ("critical", "warning", "info")

# A check's status as the probe records it, and as report.json / junit.xml name it.
CHECK_STATUSES = ("ok", "fail", "error", "skipped")
REPORT_CHECK_STATUS = {"ok": "pass", "fail": "fail", "error": "error", "skipped": "skip"}

# Check id prefixes (an id is "<prefix>:<subject>") and the kind of check each names.
CHECK_KINDS = ("dns", "icmp", "tcp", "udp", "http", "tls", "mtu", "proxy", "egress_ip")
CHECK_PREFIXES = {
    "dns.pod": "dns", "dns.cluster": "dns", "dns.external": "dns", "dns.cluster_internal": "dns",
    "icmp": "icmp", "icmp.known_good": "icmp", "tcp": "tcp", "udp": "udp",
    "http": "http", "http.direct": "http", "http.test_proxy": "http", "http.insecure": "http",
    "tls": "tls", "mtu": "mtu", "proxy.reach": "proxy", "egress_ip": "egress_ip",
    # The same checks by the address the external resolver (or the controller) gave, for a name the pod cannot resolve.
    "http.by_address": "http", "tcp.by_address": "tcp", "tls.by_address": "tls",
}
# Kinds whose success proves a packet went out and came back.
NETWORK_KINDS = ("tcp", "udp", "http", "tls")


def check_id(prefix, subject):
    """The id of a check: its prefix (one of CHECK_PREFIXES) and what it is about (a name, host:port, URL, host)."""
    if prefix not in CHECK_PREFIXES:
        raise ValueError(f"{prefix!r} is not a check id prefix ({', '.join(CHECK_PREFIXES)})")
    return f"{prefix}:{subject}"
