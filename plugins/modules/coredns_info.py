# Copyright: (c) 2026, kubediag.egress contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

DOCUMENTATION = r"""
module: coredns_info
short_description: Read the cluster DNS configuration, health and logs, and optionally probe its upstreams from a pod
version_added: 0.1.0
author:
  - kubediag.egress maintainers (@kubediag)
description:
  - Reads the Corefile from ConfigMap kube-system/coredns with a real parser (server blocks, forward and its options, cache,
    hosts, rewrite, stub zones, snippets and imports), including AKS C(coredns-custom) overrides, and the legacy kube-dns
    ConfigMap (C(upstreamNameservers), C(stubDomains)). Says what the root zone C(.) forwards to.
  - Reports the cluster DNS pods (selected by the kube-system/kube-dns Service, else C(k8s-app=kube-dns)) and whether they are ready.
  - Reads their last O(tail_lines) log lines and classifies them (upstream i/o timeout, forward errors, SERVFAIL, loop detected...),
    naming the upstream addresses that appear in errors.
  - Detects NodeLocal DNSCache (ConfigMap and DaemonSet kube-system/node-local-dns) and reads its configuration.
  - With O(probe_upstream=true), asks every upstream address for the root NS records from inside O(probe_pod), with C(dig) or
    else C(nslookup) run as an argument vector (no shell), and reports whether it answers.
  - A ConfigMap or log this user may not read is listed in RV(not_checked); it does not fail the module.
options:
  tail_lines:
    description:
      - How many of the last log lines of each DNS pod to read and classify. C(0) reads no log.
    type: int
    default: 200
  probe_upstream:
    description:
      - Probe each upstream address from O(probe_pod). It runs a command in that pod (pods/exec); nothing is changed.
    type: bool
    default: false
  probe_pod:
    description:
      - The pod to probe from, as C(namespace/name). It needs C(dig) or C(nslookup) in its image.
      - The upstreams are asked from the pod's network, which is not the CoreDNS pods' network when policies or node
        firewalls differ; pick a pod on the same nodes as CoreDNS for the closest answer.
    type: str
  probe_container:
    description:
      - The container of O(probe_pod) to run the probe in; the pod's default container when omitted.
    type: str
  probe_timeout:
    description:
      - Seconds each probe may take, the command included.
    type: float
    default: 10.0
extends_documentation_fragment:
  - kubediag.egress.k8s_auth
  - kubediag.egress.info_attributes
"""

EXAMPLES = r"""
- name: Where does cluster DNS forward external names, and is CoreDNS failing?
  kubediag.egress.coredns_info:
  register: dns

- name: Show the upstreams and the dominant CoreDNS error
  ansible.builtin.debug:
    msg: "{{ dns.upstreams | map(attribute='raw') | list }} / {{ dns.logs.dominant_error }}"

- name: Ask each upstream from a pod whether it answers
  kubediag.egress.coredns_info:
    context: prod-eu
    probe_upstream: true
    probe_pod: shop/web
    tail_lines: 500
  register: dns

- name: Name the upstreams that do not answer
  ansible.builtin.debug:
    msg: "{{ dns.upstream_probes | rejectattr('answered') | map(attribute='upstream') | list }}"
"""

RETURN = r"""
configured_by:
  description: The ConfigMaps the configuration was read from.
  returned: always
  type: list
  elements: str
  sample: [ConfigMap kube-system/coredns]
cluster_dns_ip:
  description: The ClusterIP of the kube-system/kube-dns Service, null when it was not found.
  returned: always
  type: str
  sample: 10.96.0.10
corefile:
  description:
    - The Corefile summary (null without a coredns ConfigMap) with keys C(server_blocks), C(forward), C(stub_zones), C(imports),
      C(snippets), C(placeholders) and C(warnings) (each C({id, message, line})); see docs/cluster-analysis.md.
  returned: always
  type: dict
  sample: {stub_zones: [], warnings: [], forward: {zone: ".", plugin: forward, upstreams: [{raw: 192.0.2.99, kind: address}]}}
forward:
  description: What the root zone forwards to, C({zone, plugin, from, upstreams, options, uses_node_resolv_conf, line}); null without a Corefile.
  returned: always
  type: dict
  sample: {zone: ".", plugin: forward, from: ".", upstreams: [{raw: 192.0.2.99, kind: address, transport: dns, ip: 192.0.2.99, port: 53}]}
  contains:
    zone:
      description: The server block's zone that serves external names.
      type: str
    server_line:
      description: The line of that server block.
      type: int
    plugin:
      description: C(forward) or C(proxy), null when the block forwards nothing.
      type: str
    from:
      description: The zone the forward applies to.
      type: str
    line:
      description: The Corefile line of the forward plugin.
      type: int
    upstreams:
      description: The targets, each as in RV(upstreams).
      type: list
      elements: dict
      contains: &upstream
        raw:
          description: The target as written in the Corefile.
          type: str
        kind:
          description: C(address), C(resolv_conf) (the node's resolvers), C(file), C(placeholder) or C(invalid).
          type: str
        ip:
          description: C(address), the IP address.
          type: str
        port:
          description: C(address), the port.
          type: int
        transport:
          description: C(address), C(dns), C(tls), C(grpc)...
          type: str
        path:
          description: C(resolv_conf) and C(file), the file read.
          type: str
        meaning:
          description: C(resolv_conf) and C(placeholder), what it stands for.
          type: str
        problem:
          description: C(invalid), why CoreDNS refuses it.
          type: str
    options:
      description: The forward options with their defaults (policy, max_fails, expire, health_check, force_tcp...).
      type: dict
    explicit_options:
      description: The options written in the Corefile.
      type: list
      elements: str
    unknown_options:
      description: Options CoreDNS would refuse, with their arguments.
      type: dict
    uses_node_resolv_conf:
      description: True when it forwards to the node's resolv.conf.
      type: bool
upstreams:
  description: The upstreams external names go to, C({raw, kind, ip, port, transport}); kind C(resolv_conf) means the node's resolvers.
  returned: always
  type: list
  elements: dict
  sample: [{raw: 192.0.2.99, kind: address, transport: dns, ip: 192.0.2.99, port: 53}]
  contains: *upstream
kube_dns:
  description: The legacy kube-dns ConfigMap read (C(upstream_nameservers), C(stub_domains), C(uses_node_resolv_conf)), null when absent.
  returned: always
  type: dict
  sample: null
nodelocal_dns:
  description: NodeLocal DNSCache, C({enabled, local_ips, forwarders, placeholders, warnings}).
  returned: always
  type: dict
  sample: {enabled: false, local_ips: [], forwarders: [], placeholders: {}, warnings: []}
  contains:
    enabled:
      description: Whether a NodeLocal DNSCache DaemonSet or ConfigMap is there (pods then ask it, not CoreDNS directly).
      type: bool
    local_ips:
      description: The link-local addresses NodeLocal DNSCache listens on.
      type: list
      elements: str
    forwarders:
      description: Where it forwards, as in its Corefile.
      type: list
    placeholders:
      description: The C(__PILLAR__) placeholders of its ConfigMap and what fills them in.
      type: dict
    warnings:
      description: What in its setup looks wrong.
      type: list
      elements: str
pods:
  description: The cluster DNS pods, C({pod, node, ip, phase, ready, restarts}).
  returned: always
  type: list
  elements: dict
  sample: [{pod: kube-system/coredns-5d78c9869d-abcde, node: node-1, ip: 10.244.0.2, phase: Running, ready: true, restarts: 0}]
  contains:
    pod:
      description: The pod, C(namespace/name).
      type: str
    node:
      description: The node it runs on.
      type: str
    ip:
      description: Its IP address.
      type: str
    phase:
      description: Its phase (C(Running), C(Pending)...).
      type: str
    ready:
      description: Whether every container is ready.
      type: bool
    restarts:
      description: Container restarts, summed.
      type: int
pods_ready:
  description: True when there is at least one DNS pod and every one is ready.
  returned: always
  type: bool
  sample: true
logs:
  description:
    - The DNS pods' logs classified together, C({lines, classes, dominant_error, upstreams_in_errors, nxdomain_names, loop_zones}),
      plus C(per_pod) C({pod, lines, dominant_error, error_counts}).
  returned: always
  type: dict
  sample:
    lines: 200
    dominant_error: upstream_timeout
    upstreams_in_errors: [{address: "192.0.2.99:53", count: 14}]
    per_pod: [{pod: kube-system/coredns-5d78c9869d-abcde, lines: 200, dominant_error: upstream_timeout, error_counts: {upstream_timeout: 14}}]
  contains:
    lines:
      description: Log lines read, over every DNS pod.
      type: int
    classes:
      description: Each log class (upstream_timeout, servfail, loop...) to C({count, examples}), examples being a few of its lines.
      type: dict
    dominant_error:
      description: The error class with the most lines, null when there is none.
      type: str
    upstreams_in_errors:
      description: The upstream addresses named in error lines, C({address, count}), most frequent first.
      type: list
      elements: dict
    nxdomain_names:
      description: Names answered NXDOMAIN, to how often.
      type: dict
    loop_zones:
      description: Zones the loop plugin detected a forwarding loop for.
      type: list
      elements: str
    per_pod:
      description: Per DNS pod, C({pod, lines, dominant_error, error_counts}).
      type: list
      elements: dict
upstream_probes:
  description:
    - One C({upstream, ip, port, answered, status, tool, detail}) per upstream when O(probe_upstream=true), else empty.
    - C(answered) is true when the server replied at all (C(status) is then its rcode), false on C(timeout) or C(unreachable),
      null when it was C(not_probed) (the node's resolv.conf, a placeholder) or no tool could run (C(not_run)).
  returned: always
  type: list
  elements: dict
  sample: [{upstream: 192.0.2.99, ip: 192.0.2.99, port: 53, answered: false, status: timeout, tool: dig, detail: ";; no servers could be reached"}]
  contains:
    upstream:
      description: The upstream as written in the Corefile.
      type: str
    ip:
      description: Its address, null when it is not one.
      type: str
    port:
      description: Its port, null when it is not an address.
      type: int
    answered:
      description: True when it replied at all, false on timeout or unreachable, null when not probed or no tool ran.
      type: bool
    status:
      description: The rcode it answered, or C(timeout), C(unreachable), C(error), C(not_probed), C(not_run).
      type: str
    tool:
      description: C(dig) or C(nslookup), null when none ran.
      type: str
    detail:
      description: The tool's last lines, or why it was not probed.
      type: str
not_checked:
  description: What could not be read, C({what, reason, message}); reason is C(forbidden), C(unavailable) or C(not_installed).
  returned: always
  type: list
  elements: dict
  sample: []
  contains:
    what:
      description: The object or request.
      type: str
    reason:
      description: C(forbidden), C(unavailable) or C(not_installed).
      type: str
    message:
      description: What happened, and what it means for the answer.
      type: str
"""

from ansible_collections.kubediag.egress.plugins.module_utils.cluster.coredns import probe_upstreams, read_coredns  # noqa: E402
from ansible_collections.kubediag.egress.plugins.module_utils.k8s.module import KubeModule  # noqa: E402 - imports follow the documentation
from ansible_collections.kubediag.egress.plugins.module_utils.k8s.reader import ClusterReader  # noqa: E402

ARGUMENT_SPEC = {
    "tail_lines": {"type": "int", "default": 200},
    "probe_upstream": {"type": "bool", "default": False},
    "probe_pod": {"type": "str"},
    "probe_container": {"type": "str"},
    "probe_timeout": {"type": "float", "default": 10.0},
}


def main():
    module = KubeModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True, required_if=[("probe_upstream", True, ["probe_pod"])])
    params = module.params
    try:
        if params["tail_lines"] < 0:
            raise ValueError(f"tail_lines {params['tail_lines']} is negative: give 0 (no logs) or more")
        reader = ClusterReader(module.client)
        result = read_coredns(reader, params["tail_lines"])
        result["upstream_probes"] = []
        if params["probe_upstream"]:
            result["upstream_probes"] = probe_upstreams(module.client, reader, params["probe_pod"], result["upstreams"], params,
                                                        container=params["probe_container"], timeout=params["probe_timeout"])
        result["not_checked"] = reader.not_checked
        module.exit_json(changed=False, **result)
    # Every failure becomes a message, never a traceback.
    except Exception as exc:  # pylint: disable=broad-exception-caught
        module.fail_from_exception(exc, changed=False)


if __name__ == "__main__":
    main()
