"""From facts to a verdict: why a pod cannot reach its targets, and what fixes it.

``evaluate_pod(facts)`` is a pure function of what the fact modules returned for one pod: ``pod_probe`` (checks run in
the pod and, with ``node``, from its node), ``netpol`` (netpol_egress_info), ``coredns`` (coredns_info), ``cluster_network``
(cluster_network_info), ``mesh`` (mesh_egress_info, one per target) and ``pod`` (egress_pods_info: labels). Each rule is one
conclusion of the field guide (docs/verdict.md lists them); rules read facts only, never scenario names. The findings have
the shape docs/architecture.md documents: ``{id, layer, hop, severity, summary, evidence[], not_checked[], remediation{summary, module, params}, targets[],
observed_from}``, ordered by what to fix first. ``observed_from`` is ``pod`` when the pod's own checks prove the cause (also
those it ran by address when it could not resolve the name), ``node``
when the node probe measured what the pod's tools cannot (BusyBox: no DF ping, no UDP netcat, no TLS it can complete), ``static`` when the
cluster's objects alone prove it (the pod could not be probed).
A pod whose every target works gets ``healthy`` and nothing else.

``evaluate_cluster(bundle)`` splits what the diagnose role registered for a cluster (module results) into one
facts dict per pod and evaluates each. Plain Python, stdlib only, no I/O.
"""

import copy
import ipaddress

from ansible_collections.kubediag.egress.plugins.module_utils.probe.facts import timed_out
from ansible_collections.kubediag.egress.plugins.module_utils.verdict.sources import facts_for_pods, read_sources, skipped
from ansible_collections.kubediag.egress.plugins.module_utils.vocabulary import (
    FIX_ORDER,
    HEALTHY,
    HOPS,
    LAYERS,
    NETWORK_KINDS,
    REPORT_CHECK_STATUS,
    check_id,
)

METADATA_CIDR = "169.254.169.254/32"
# A pod check with these classes did not measure the network: its tool is missing or gave up (BusyBox wget's TLS).
UNMEASURED = ("tool_missing", "tool_limited")


class VerdictError(ValueError):
    """The facts are not shaped as the fact modules return them; str() names the part."""


def _unprobed_pod(result):
    """pod_probe's entry for a pod it could not probe (not found, forbidden): failed, but naming its pod and targets, so
    that pod gets a verdict that says why it was not probed instead of vanishing from the report."""
    return isinstance(result, dict) and result.get("failed") and isinstance(result.get("pod"), dict) and not result.get("probed")


class Probe:
    """Read access to one pod_probe result (or its node part): checks by id, per target, per kind."""

    def __init__(self, facts):
        self.facts = facts or {}
        self.checks = {c["id"]: c for c in self.facts.get("checks") or [] if isinstance(c, dict) and "id" in c}

    @property
    def probed(self):
        return bool(self.facts) and self.facts.get("probed", True) and bool(self.checks)

    def check(self, check_id):
        return self.checks.get(check_id)

    def status(self, check_id):
        check = self.checks.get(check_id)
        return check["status"] if check else None

    def failed(self, check_id):
        return self.status(check_id) in ("fail", "error")

    def of_kind(self, kind):
        return [c for c in self.checks.values() if c.get("kind") == kind]

    def dns(self, via, name):
        return self.checks.get(check_id(f"dns.{via}", name))

    def any_external_ok(self):
        """Did anything at all get out and back (a connect, an HTTP answer, a TLS handshake, the echo)?"""
        return any(c["status"] == "ok" or (c.get("kind") == "http" and (c.get("details") or {}).get("http_code"))
                   for c in self.checks.values() if c.get("kind") in (*NETWORK_KINDS, "egress_ip") and not _through_proxy(c))


def _through_proxy(check):
    """A check that went through a proxy: it proves the proxy's way out, not the pod's own."""
    params = check.get("params") or {}
    return params.get("mode") == "proxy" or bool(params.get("via_proxy"))


def _quote(check):
    """One observation, as the probe worded it."""
    return check.get("summary") or f"{check.get('id')}: {check.get('status')}"


def _unmeasured(check):
    """The pod's tools could not run this check (skipped for a missing tool, or the tool gave up): it proves nothing either way."""
    return check is None or check.get("status") == "skipped" or (check.get("status") == "error" and check.get("error_class") in UNMEASURED)


class Target:
    """One target and the checks that concern it, in the pod and on the node."""

    def __init__(self, entry, pod, node, other_node=None):
        self.entry, self.pod, self.node, self.other_node = entry, pod, node, other_node
        for key, kind in (("url", str), ("host", str), ("port", int)):
            if not isinstance(entry.get(key), kind) or isinstance(entry.get(key), bool):
                raise VerdictError(f"pod_probe target {entry.get('url')!r} has no valid {key} (got {entry.get(key)!r}): pass the targets "
                                   "kubediag.egress.pod_probe returned")
        self.url, self.host, self.port = entry["url"], entry["host"], entry["port"]
        self.protocol, self.scheme = entry.get("protocol", "tcp"), entry.get("scheme", "https")
        self.is_ip = bool(entry.get("host_is_ip"))
        self.observed_from = "pod"   # "node" when the node's check stands in for one the pod's tools cannot run
        self.host_port = f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"

    def main_check_id(self):
        if self.scheme in ("http", "https"):
            return check_id("http", self.url)
        return check_id(self.protocol, self.host_port)

    def connect_id(self):
        return check_id(self.protocol, self.host_port)

    def main(self, probe=None):
        probe = probe or self.pod
        return probe.check(self.main_check_id()) or probe.check(self.connect_id())

    def works(self, probe=None):
        if probe is None and self.observed_from == "node":
            return True
        main = self.main(probe)
        return bool(main) and main["status"] == "ok"

    def resolved_ips(self):
        if self.is_ip:
            return [self.host]
        for probe in (self.pod, self.node):
            if probe is None:
                continue
            for via in ("pod", "cluster", "external"):
                check = probe.dns(via, self.host)
                # the checks ask for A records: an answer that is not an IPv4 address is not one (::ffff:bad is IPv6)
                addresses = _ip_addresses((check.get("details") or {}).get("addresses"), (4,)) if check and check["status"] == "ok" else []
                if addresses:
                    return addresses
        return []

    def checks_for_report(self):
        ids = set(self.entry.get("check_ids") or [])
        rows = [{"name": c["id"], "status": REPORT_CHECK_STATUS.get(c["status"], c["status"]), "detail": c.get("summary", "")}
                for c in self.pod.checks.values() if c["id"] in ids]
        if self.node is not None and self.node.probed:
            rows += [{"name": f"node {c['id']}", "status": REPORT_CHECK_STATUS.get(c["status"], c["status"]), "detail": c.get("summary", "")}
                     for c in self.node.checks.values() if c["id"] in ids]
        if self.other_node is not None:
            name = ((self.other_node.facts.get("choice") or {}).get("node") or (self.other_node.facts.get("runner") or {}).get("node"))
            rows += [{"name": f"other node {name} {c['id']}", "status": REPORT_CHECK_STATUS.get(c["status"], c["status"]),
                      "detail": c.get("summary", "")} for c in self.other_node.checks.values() if c["id"] in ids]
        return rows


OBSERVED_FROM = ("pod", "node", "static")


class Finding:
    """One cause. observed_from says whose observation it rests on: ``pod`` (its own checks, also
    those run by address), ``node`` (its node's view of
    what the pod cannot measure) or ``static`` (the cluster's configuration alone, for a pod that could not be probed)."""

    def __init__(self, cause_id, summary, evidence, remediation, targets, not_checked=None, severity="critical", observed_from="pod"):
        layer, hop = LAYERS[cause_id]
        if observed_from not in OBSERVED_FROM:
            raise ValueError(f"observed_from {observed_from!r} is not one of {', '.join(OBSERVED_FROM)}")
        self.data = {"id": cause_id, "layer": layer, "hop": hop, "severity": severity, "summary": summary,
                     "evidence": [e for e in evidence if e], "not_checked": list(not_checked or []),
                     "remediation": remediation, "targets": sorted(set(targets)), "observed_from": observed_from}


def _remedy(summary, module=None, **params):
    return {"summary": summary, "module": module, "params": params}


class Context:
    """Everything a rule reads for one pod, plus the findings it has reached so far."""

    def __init__(self, facts):
        probe_facts = facts.get("pod_probe") or {}
        if not isinstance(probe_facts, dict):
            raise VerdictError("pod_probe must be the mapping kubediag.egress.pod_probe returns")
        self.probe_facts = probe_facts
        self.pod = Probe(probe_facts)
        node_facts = probe_facts.get("node")
        # A node part that says it was not probed (an admission policy forbade the debug pod) proves nothing either way.
        self.node = Probe(node_facts) if isinstance(node_facts, dict) and Probe(node_facts).probed else None
        self.node_not_probed_reason = node_facts.get("not_probed_reason") if isinstance(node_facts, dict) and self.node is None else None
        # Another node of the cluster, probed only when the pod and its node both failed (None in facts from before it existed).
        other_facts = probe_facts.get("other_node")
        self.other_node_facts = other_facts if isinstance(other_facts, dict) else None
        self.other_node = Probe(other_facts) if self.other_node_facts and Probe(other_facts).probed else None
        self.pod_info = probe_facts.get("pod") or {}
        self.ref = f"{self.pod_info.get('namespace')}/{self.pod_info.get('name')}"
        self.sources = read_sources(facts)
        self.labels = (self.sources["pod"] or {}).get("labels") or {}
        self.netpol, self.coredns = self.sources["netpol"], self.sources["coredns"]
        self.cluster_network, self.mesh = self.sources["cluster_network"], self.sources["mesh"]
        self.targets = [Target(t, self.pod, self.node, self.other_node) for t in probe_facts.get("targets") or []
                        if isinstance(t, dict) and "url" in t]
        self.findings = {}
        self.not_checked = []
        for target in self.targets:
            if self._node_stands_in(target):
                target.observed_from = "node"
                self.not_checked.append(f"{target.url}: the pod's tools cannot send UDP ({_quote(target.main())}); the node's datagram was "
                                        "answered and no NetworkPolicy stops the pod's, so the node's check stands in")

    def _node_stands_in(self, target):
        """A UDP target the pod cannot send to (BusyBox nc has no -u) counts as reached when the node's datagram was answered,
        the pod itself gets out, and the NetworkPolicy read (which the node's hostNetwork traffic escapes) allows the pod's."""
        if target.protocol != "udp" or self.node is None or not _unmeasured(target.main()):
            return False
        allowed, _reasons, _policies = self.netpol_decision(target)
        return allowed is True and target.works(self.node) and self.pod.any_external_ok()

    def add(self, cause_id, summary, evidence, remediation, targets, not_checked=None, severity="critical", observed_from="pod"):
        """Record a finding; a cause already found for other targets gains these targets and any new evidence."""
        if cause_id in self.findings:
            existing = self.findings[cause_id].data
            existing["targets"] = sorted(set(existing["targets"]) | set(targets))
            existing["evidence"] += [e for e in evidence if e and e not in existing["evidence"]]
            if observed_from == "pod":   # the pod's own observation of any of its targets proves it
                existing["observed_from"] = "pod"
            return
        self.findings[cause_id] = Finding(cause_id, summary, evidence, remediation, targets, not_checked, severity, observed_from)

    def source(self, name):
        """A fact source by its name in verdict/sources.py (None, or [] for a list source, when it did not run)."""
        return self.sources[name]

    def node_evidence(self, target):
        if self.node is None:
            return None
        main = target.main(self.node)
        return f"from node {self.pod_info.get('node')}: {_quote(main)}" if main else None

    def node_not_checked(self):
        return [] if self.node is not None else ["the node was not probed (node_probe off, or not allowed): pod and node problems are told apart "
                                                 "by the other facts only"]

    def netpol_decision(self, target):
        """(allowed, reasons, policies) for target from netpol_egress_info, or (None, [], []) when unknown."""
        if not self.netpol:
            return None, [], []
        decisions = [d for d in self.netpol.get("destinations") or []
                     if d.get("port") in (target.port, None) and str(d.get("protocol", "TCP")).upper() == target.protocol.upper()
                     and (d.get("destination") == target.host or d.get("ip") in target.resolved_ips())]
        if not decisions:
            return None, [], []
        denied = [d for d in decisions if d.get("allowed") is False]
        chosen = denied[0] if denied else decisions[0]
        return chosen.get("allowed"), list(chosen.get("reasons") or []), list(chosen.get("selected_by") or [])

    def cluster_ranges(self):
        """The cluster's own ranges from cluster_network_info, {pod, service, vpc}: each a list of CIDRs, [] when not known."""
        network = self.cluster_network or {}
        cidrs = network.get("cidrs") if isinstance(network.get("cidrs"), dict) else {}

        def listed(entries):
            return [e.get("cidr") if isinstance(e, dict) else e for e in entries] if isinstance(entries, list) else []
        return {"pod": _networks(listed(cidrs.get("pod_cidrs"))), "service": _networks(listed(cidrs.get("service_cidrs"))),
                "vpc": _networks(network.get("vpc_cidrs"))}

    def mesh_for(self, target):
        for entry in self.mesh:
            item = entry.get("item") if isinstance(entry.get("item"), dict) else entry
            if item.get("host") == target.host and int(item.get("port") or 0) == target.port:
                return entry
        return None


# --- the rules, each one conclusion of the field guide ------------------------------------------------------------


def _dns_failed_targets(ctx):
    """Targets whose name the pod's own resolver could not turn into an address."""
    return [t for t in ctx.targets if not t.is_ip and (check := ctx.pod.dns("pod", t.host)) and check["status"] in ("fail", "error")]


def rule_dns(ctx):
    """IP works but names fail -> DNS; which part of DNS comes from comparing the pod's resolver, cluster DNS and an external one."""
    failed = _dns_failed_targets(ctx)
    if not failed:
        return
    resolv = ctx.probe_facts.get("resolv_conf") or {}
    for target in failed:
        pod_dns, cluster, external = ctx.pod.dns("pod", target.host), ctx.pod.dns("cluster", target.host), ctx.pod.dns("external", target.host)
        evidence = [f"{label}: {_quote(c)}" for label, c in (("pod resolver", pod_dns), ("cluster DNS", cluster), ("external resolver", external)) if c]
        rcodes = {(c.get("details") or {}).get("rcode") or c.get("error_class") for c in (pod_dns, cluster, external) if c}
        if external and external["error_class"] == "nxdomain" and (not cluster or cluster["error_class"] == "nxdomain"):
            ctx.add("dns.name_not_found", f"{target.host} does not exist: every resolver answers NXDOMAIN",
                    evidence, _remedy(f"fix the host name {target.host} in the application's configuration, or ask its owner to publish it",
                                      None, host=target.host), [target.url], severity="warning")
            continue
        if resolv.get("status") == "fail" and cluster and cluster["status"] == "ok":
            details = resolv.get("details") or {}
            ctx.add("dns.resolv_conf", f"the pod's resolv.conf does not point at the cluster DNS: {resolv.get('summary')}",
                    [f"resolv.conf: {resolv.get('summary')} ({resolv.get('error_class')})", *evidence],
                    _remedy("let the kubelet write resolv.conf: dnsPolicy ClusterFirst and no dnsConfig.nameservers override in the pod spec",
                            "kubernetes.core.k8s", kind="Pod", namespace=ctx.pod_info.get("namespace"), name=ctx.pod_info.get("name"),
                            patch={"spec": {"dnsPolicy": "ClusterFirst", "dnsConfig": None}},
                            expected_nameserver=details.get("cluster_dns_ip")),
                    [target.url])
            continue
        cluster_answered = cluster is not None and cluster["status"] == "ok"
        cluster_no_answer = cluster is not None and cluster["status"] in ("fail", "error") and cluster["error_class"] in ("timeout", "unreachable", "refused")
        external_ok = external is not None and external["status"] == "ok"
        dns_policy = (ctx.netpol or {}).get("dns") or {}
        if cluster_no_answer and dns_policy.get("checked") and dns_policy.get("allowed") is False:
            ctx.add("netpol.dns_blocked", f"a NetworkPolicy selecting {ctx.ref} blocks DNS (port 53) to the cluster DNS",
                    [*evidence, *(dns_policy.get("reasons") or [])[:4]], _dns_policy_remedy(ctx), [target.url])
            continue
        if cluster_no_answer and not external_ok and ctx.node is not None and not ctx.node.any_external_ok():
            continue  # the node cannot get out either: rule_path names that
        if cluster_no_answer:
            ctx.add("dns.cluster_dns_unreachable", f"the cluster DNS service does not answer {ctx.ref}",
                    [*evidence, *_coredns_health(ctx)], _coredns_remedy(ctx), [target.url])
            continue
        if cluster is not None and not cluster_answered and external_ok and "NXDOMAIN" not in rcodes:
            ctx.add("dns.upstream_forwarding", "cluster DNS fails for external names while an external resolver answers: CoreDNS forwarding is broken",
                    [*evidence, *_coredns_forward_evidence(ctx)], _forward_remedy(ctx, external), [target.url])
            continue
        if cluster is not None and not cluster_answered and not external_ok and ctx.node is not None and ctx.node.any_external_ok():
            ctx.add("dns.upstream_forwarding", "cluster DNS fails for external names and no external resolver answers the pod",
                    [*evidence, *_coredns_forward_evidence(ctx)], _forward_remedy(ctx, external), [target.url])


def _coredns_health(ctx):
    if not ctx.coredns:
        ctx.not_checked.append("CoreDNS configuration and pods were not read (coredns_info did not run)")
        return []
    pods = ctx.coredns.get("pods") or []
    described = ", ".join(f"{p.get('pod')} {p.get('phase')}{'' if p.get('ready') else ' not ready'}" for p in pods)
    lines = [f"CoreDNS pods: {described}" if pods else "no CoreDNS pod found (kube-system, k8s-app=kube-dns)"]
    if ctx.coredns.get("cluster_dns_ip"):
        lines.append(f"kube-dns Service ClusterIP {ctx.coredns['cluster_dns_ip']}")
    return lines


def _coredns_remedy(ctx):
    return _remedy("make the cluster DNS answer: check that the CoreDNS pods run and are ready, that the kube-dns Service has endpoints, "
                   "and that kube-proxy (or its replacement) serves its ClusterIP on the pod's node",
                   None, namespace="kube-system", service="kube-dns", deployment="coredns",
                   commands=["kubectl -n kube-system get pods -l k8s-app=kube-dns -o wide", "kubectl -n kube-system get endpoints kube-dns"])


def _coredns_forward_evidence(ctx):
    if not ctx.coredns:
        ctx.not_checked.append("the Corefile was not read (coredns_info did not run)")
        return []
    lines = []
    forward = ctx.coredns.get("forward") or {}
    if forward:
        upstreams = " ".join(u.get("raw", "") for u in ctx.coredns.get("upstreams") or [])
        lines.append(f"Corefile line {forward.get('line')}: {forward.get('plugin', 'forward')} {forward.get('zone', '.')} {upstreams}".strip())
    logs = ctx.coredns.get("logs") or {}
    if logs.get("dominant_error"):
        examples = ((logs.get("classes") or {}).get(logs["dominant_error"]) or {}).get("examples") or []
        lines.append(f"CoreDNS logs: mostly {logs['dominant_error']}" + (f", e.g. {examples[0]}" if examples else ""))
    for probe in ctx.coredns.get("upstream_probes") or []:
        lines.append(f"upstream {probe.get('upstream')}: {'answers' if probe.get('answered') else 'does not answer'} ({probe.get('status')})")
    return lines


def _ip_addresses(values, versions=(4, 6)) -> list:
    """The canonical IP addresses of those versions among values (facts may have been saved and edited): nothing else
    becomes an ipBlock, a policy destination or a proposed upstream."""
    found = []
    for value in values if isinstance(values, list) else []:
        try:
            address = ipaddress.ip_address(value) if isinstance(value, str) else None
        except ValueError:
            continue
        if address is not None and address.version in versions and str(address) == value and value not in found:
            found.append(value)
    return found


def _forward_remedy(ctx, external):
    forward = (ctx.coredns or {}).get("forward") or {}
    current = " ".join(u.get("raw", "") for u in (ctx.coredns or {}).get("upstreams") or [])
    # Only the resolver the collection asked (external_resolver), never the address the pod's dig printed; and only when it
    # answered: that is the one upstream this run verified.
    asked = ((external or {}).get("params") or {}).get("server") if external and external["status"] == "ok" else None
    working = next(iter(_ip_addresses([asked])), None)
    proposed = f"forward . {working}" if working else "forward . /etc/resolv.conf"
    return _remedy(f"in ConfigMap kube-system/coredns, change the Corefile line `forward . {current}` to `{proposed}` (an upstream that answers)"
                   if current else f"give the Corefile a forward line to an upstream that answers, e.g. `{proposed}`",
                   "kubernetes.core.k8s", kind="ConfigMap", namespace="kube-system", name="coredns", key="Corefile",
                   line=forward.get("line"), current=f"forward . {current}".strip(), proposed=proposed)


def _dns_selector(ctx):
    return {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}},
            "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}}}


def _policy_manifest(ctx, name, egress):
    selector = {"matchLabels": dict(ctx.labels)} if ctx.labels else {}
    return {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
            "metadata": {"name": name, "namespace": ctx.pod_info.get("namespace")},
            "spec": {"podSelector": selector, "policyTypes": ["Egress"], "egress": egress}}


def _dns_policy_remedy(ctx):
    rule = {"to": [_dns_selector(ctx)], "ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}]}
    manifest = _policy_manifest(ctx, f"allow-dns-{ctx.pod_info.get('name')}", [rule])
    return _remedy(f"add a NetworkPolicy that lets {ctx.ref} reach the cluster DNS on UDP and TCP 53", "kubernetes.core.k8s",
                   state="present", definition=manifest)


def _egress_policy_remedy(ctx, targets, ips=()):
    """The policy to add; ips are the addresses the finding evaluated, when they are not the ones the probes resolved."""
    ports = sorted({(t.protocol.upper(), t.port) for t in targets})
    ips = sorted(set(ips) | {ip for t in targets for ip in t.resolved_ips()})
    peers = [{"ipBlock": {"cidr": f"{ip}/32" if ":" not in ip else f"{ip}/128"}} for ip in ips] or \
        [{"ipBlock": {"cidr": "0.0.0.0/0", "except": [METADATA_CIDR]}}]
    egress = [{"to": peers, "ports": [{"protocol": proto, "port": port} for proto, port in ports]},
              {"to": [_dns_selector(ctx)], "ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}]}]
    manifest = _policy_manifest(ctx, f"allow-egress-{ctx.pod_info.get('name')}", egress)
    where = ", ".join(sorted({f"{t.host}:{t.port}" for t in targets}))
    return _remedy(f"add a NetworkPolicy allowing {ctx.ref} egress to {where} (plus DNS; the metadata endpoint {METADATA_CIDR} stays excluded)",
                   "kubernetes.core.k8s", state="present", definition=manifest)


def _blocked_targets(ctx):
    """Targets the pod resolved (or that are IPs) whose connection got no answer or failed."""
    dns_failed = {t.url for t in _dns_failed_targets(ctx)}
    return [t for t in ctx.targets if t.url not in dns_failed and not t.works()]


def _no_answer(target, probe):
    main = probe.check(target.connect_id()) or target.main(probe)
    return bool(main) and main["status"] == "fail" and main.get("error_class") in ("timeout", "no_answer", "unreachable")


def rule_policy_and_mesh(ctx):
    """A NetworkPolicy or the mesh that says no, read from the cluster: the cause named by the object that decides."""
    denied = []
    for target in _blocked_targets(ctx):
        allowed, reasons, policies = ctx.netpol_decision(target)
        if allowed is False:
            denied.append(target)
            ctx.add("netpol.egress_blocked", f"NetworkPolicy {', '.join(policies) or '(selecting the pod)'} allows no egress from {ctx.ref} to "
                    f"{target.host_port}", [_quote(target.main()), *reasons[:4], ctx.node_evidence(target)],
                    _egress_policy_remedy(ctx, [target]), [target.url])
        mesh = ctx.mesh_for(target)
        if mesh and mesh.get("blocked"):
            ctx.add("mesh.registry_only", f"Istio outboundTrafficPolicy REGISTRY_ONLY and no ServiceEntry covers {target.host_port}",
                    [_quote(target.main()), *(mesh.get("reasons") or [])[:3]], _service_entry_remedy(ctx, target), [target.url])
    if ctx.netpol is None and _blocked_targets(ctx):
        ctx.not_checked.append("NetworkPolicies were not evaluated (netpol_egress_info did not run)")


def _service_entry_remedy(ctx, target):
    return _remedy(f"create a ServiceEntry for {target.host} port {target.port} (MESH_EXTERNAL, resolution DNS)", "kubernetes.core.k8s",
                   state="present", definition={
                       "apiVersion": "networking.istio.io/v1beta1", "kind": "ServiceEntry",
                       "metadata": {"name": f"external-{target.host.replace('.', '-')}"[:63], "namespace": ctx.pod_info.get("namespace")},
                       "spec": {"hosts": [target.host], "location": "MESH_EXTERNAL", "resolution": "DNS",
                                "ports": [{"number": target.port, "name": f"{target.scheme}-{target.port}",
                                           "protocol": {"https": "TLS", "http": "HTTP"}.get(target.scheme, target.protocol.upper())}]}})


def rule_proxy(ctx):
    """The pod's proxy env points at a dead proxy, or direct egress is blocked while a proxy works and the pod has none."""
    proxy_env = (ctx.probe_facts.get("proxy_env") or {}).get("details") or {}
    configured = [proxy_env.get(k) for k in ("https_proxy", "http_proxy", "all_proxy") if proxy_env.get(k)]
    reach = ctx.pod.of_kind("proxy")
    blocked = [t for t in _blocked_targets(ctx) if t.scheme in ("http", "https")]
    if configured:
        dead = [c for c in reach if c["status"] == "fail"]
        if dead and blocked:
            ctx.add("proxy.unreachable", f"the pod's proxy {dead[0]['params'].get('proxy') or dead[0]['target']} does not answer",
                    [f"proxy env: {(ctx.probe_facts.get('proxy_env') or {}).get('summary')}", *(_quote(c) for c in dead),
                     *(_quote(t.main()) for t in blocked)],
                    _remedy("point HTTP_PROXY/HTTPS_PROXY (and the lowercase forms) at a proxy that answers, or remove them if direct egress is allowed",
                            None, namespace=ctx.pod_info.get("namespace"), pod=ctx.pod_info.get("name"),
                            current=sorted(set(configured)), env_names=sorted((proxy_env.get("variables") or {}).keys())),
                    [t.url for t in blocked])
        return
    for target in blocked:
        through_proxy = next((c for c in ctx.pod.of_kind("http") if (c.get("params") or {}).get("mode") == "proxy"
                              and c.get("target") == target.url and c["status"] == "ok"), None)
        if through_proxy and _no_answer(target, ctx.pod) and not ctx.pod.any_external_ok():
            proxy = through_proxy["params"].get("proxy")
            ranges = ctx.cluster_ranges()
            metadata_ip = str(ipaddress.ip_network(METADATA_CIDR).network_address)
            no_proxy = ",".join([*_cluster_suffixes(ctx), "localhost", "127.0.0.1", metadata_ip, *ranges["pod"], *ranges["service"]])
            unknown = _unknown_ranges(ctx, ranges, ("pod", "service"))
            ctx.add("proxy.missing_config", f"direct egress is blocked but the proxy {proxy} works, and {ctx.ref} has no proxy environment",
                    [_quote(target.main()), _quote(through_proxy), "the container environment has no HTTP(S)_PROXY variable",
                     ctx.node_evidence(target)],
                    _remedy(f"set HTTPS_PROXY/HTTP_PROXY={proxy} and NO_PROXY={no_proxy} (in-cluster names and ranges) in the workload's "
                            "environment" + "".join(f"; {line}: add it to NO_PROXY" for line in unknown), "kubernetes.core.k8s",
                            namespace=ctx.pod_info.get("namespace"), pod=ctx.pod_info.get("name"),
                            env=[{"name": "HTTPS_PROXY", "value": proxy}, {"name": "HTTP_PROXY", "value": proxy},
                                 {"name": "NO_PROXY", "value": no_proxy}]),
                    [target.url], not_checked=unknown)


def _external_dns_ok(probe):
    return any(c["status"] == "ok" for c in probe.of_kind("dns") if (c.get("params") or {}).get("via") == "external")


def rule_path(ctx):
    """Node works but pod fails -> pod networking (SNAT); both fail -> node or the cluster's way out (route)."""
    handled = {t for f in ctx.findings.values() for t in f.data["targets"]}
    silent = [t for t in ctx.targets if t.url not in handled and not t.works() and (_no_answer(t, ctx.pod) or t.url in
              {d.url for d in _dns_failed_targets(ctx)})]
    if not silent or ctx.pod.any_external_ok():
        return
    echo = next((c for c in ctx.pod.of_kind("egress_ip") if c["status"] == "ok"), None)
    pod_ip = ctx.pod_info.get("ip")
    snat = (ctx.cluster_network or {}).get("snat") or {}
    node_ok = ctx.node is not None and ctx.node.any_external_ok()
    if (echo and pod_ip and (echo.get("details") or {}).get("ip") == pod_ip) or (node_ok and not _dns_failed_targets(ctx)):
        evidence = [_quote(echo)] if echo else []
        evidence += [_quote(t.main()) for t in silent[:3]] + [ctx.node_evidence(t) for t in silent[:3]]
        if _external_dns_ok(ctx.pod) is False and ctx.pod.of_kind("dns"):
            evidence.append("the cluster DNS (which needs no NAT to reach the cloud resolver) answers; the external resolver does not")
        evidence += list(snat.get("reasons") or [])[:3]
        ranges = ctx.cluster_ranges()
        in_cluster = [*ranges["pod"], *ranges["service"], *ranges["vpc"]]
        unknown = _unknown_ranges(ctx, ranges, ("pod", "service", "vpc"))
        ctx.add("nat.missing_snat", f"traffic from {ctx.ref} leaves with the pod IP {pod_ip}: nothing source-NATs it, so no reply comes back",
                evidence, _remedy("masquerade pod traffic to destinations outside the cluster: configure ip-masq-agent (or the CNI's SNAT) so "
                                  f"nonMasqueradeCIDRs holds only the cluster's own ranges ({', '.join(in_cluster) or 'none known'})"
                                  + "".join(f"; {line}: add it too" for line in unknown),
                                  "kubernetes.core.k8s" if ranges["pod"] else None,
                                  kind="ConfigMap", namespace="kube-system", name="ip-masq-agent",
                                  config={"nonMasqueradeCIDRs": in_cluster, "masqLinkLocal": False}),
                [t.url for t in silent],
                not_checked=([] if snat else ["the SNAT configuration could not be decided from the cluster objects"]) + unknown)
        return
    if ctx.node is None:
        ctx.not_checked.append("the node was not probed, so a pod-only fault cannot be told from a node or path fault")
        return
    if ctx.node.any_external_ok():
        return
    cluster_dns_ok = any((check := ctx.pod.dns(via, t.host)) is not None and check["status"] == "ok"
                         for t in silent if not t.is_ip for via in ("pod", "cluster"))
    evidence = [_quote(t.main()) for t in silent[:3]] + [ctx.node_evidence(t) for t in silent[:3]]
    external = next((c for c in ctx.node.of_kind("dns") if (c.get("params") or {}).get("via") == "external"), None)
    if external:
        evidence.append(f"from the node: {_quote(external)}")
    node = ctx.pod_info.get("node")
    node_resolver = next((c for c in ctx.node.of_kind("dns") if (c.get("params") or {}).get("via") == "pod" and c["status"] != "ok"), None)
    if node_resolver:
        evidence.append(f"from the node, through its own resolver: {_quote(node_resolver)}")
    compared = _compare_other_node(ctx, silent, evidence, cluster_dns_ok)
    if compared is None:
        return
    nodes = ", ".join([node, *compared])
    if cluster_dns_ok:
        ctx.add("route.no_internet_path", f"neither {ctx.ref} nor its node {node}{''.join(f' nor node {n}' for n in compared)} reaches anything "
                "on the internet, while the cloud's own resolver "
                "answers: the node's subnet has no way out (no NAT gateway, internet gateway or default route)",
                [*evidence, "names still resolve (the cloud resolver needs no internet path)"],
                _remedy(f"give node {node}'s subnet a route to the internet: 0.0.0.0/0 via a NAT gateway (private subnet) or an internet gateway",
                        None, node=node, route={"destination": "0.0.0.0/0", "via": "nat-gateway or internet-gateway"}),
                [t.url for t in silent], not_checked=["cloud route tables were not read (no cloud facts): the route itself is inferred"])
    else:
        ctx.add("node.egress_broken", f"node{'s' if compared else ''} {nodes} {'themselves' if compared else 'itself'} cannot reach anything "
                f"outside the cluster, so neither can {ctx.ref}",
                [*evidence, "cluster DNS cannot resolve external names either (CoreDNS's upstream is outside too)"],
                _node_remedy(node), [t.url for t in silent])


def _node_remedy(node):
    return _remedy(f"repair node {node}'s egress: its firewall (iptables/nftables OUTPUT and FORWARD), routes and security groups",
                   None, node=node, commands=[f"kubectl debug node/{node} -it --image=nicolaka/netshoot -- iptables-save"])


def _coredns_elsewhere(ctx):
    """The nodes the CoreDNS pods run on when none runs on the pod's node (then the names the pod resolved say nothing of
    its node's way out), else []."""
    nodes = sorted({p.get("node") for p in (ctx.coredns or {}).get("pods") or [] if isinstance(p, dict) and p.get("node")})
    return nodes if nodes and ctx.pod_info.get("node") not in nodes else []


def _compare_other_node(ctx, silent, evidence, cluster_dns_ok):
    """With the pod and its node both cut off: the other nodes that fail too ([] for a single-node cluster or facts without
    the comparison), after which the cluster's path is concluded as before; or None when this rule concludes itself: the
    other node gets out (node.egress_broken, naming the pod's node), or it could not be compared in a cluster that has
    other nodes (names may resolve through CoreDNS on another node, so neither "the node" nor "the subnet" is proven)."""
    facts = ctx.other_node_facts
    node = ctx.pod_info.get("node")
    coredns_nodes = _coredns_elsewhere(ctx) if cluster_dns_ok else []
    if coredns_nodes:
        evidence.append(f"names resolve through CoreDNS on node {', '.join(coredns_nodes)}, not on node {node}")
    if facts is None:
        if coredns_nodes:   # facts from before the comparison existed: the subnet is not blamed on another node's answers
            ctx.not_checked.append(f"no other node was compared with node {node}, and the names it resolved came through CoreDNS on node "
                                   f"{', '.join(coredns_nodes)}: a fault of node {node} alone cannot be told from the cluster's way out")
            return None
        return []
    choice = facts.get("choice") or {}
    other = ctx.other_node
    if other is None:
        if choice.get("nodes_in_cluster") == 1:
            return []
        ctx.not_checked.append(f"no other node was compared with node {node} ({facts.get('not_probed_reason') or 'not probed'}): a fault "
                               f"of node {node} alone cannot be told from the cluster's way out")
        return None
    other_name = choice.get("node") or (facts.get("runner") or {}).get("node")
    other_main = [m for t in silent if (m := t.main(other))]
    if not other.any_external_ok():
        evidence += [f"from node {other_name} (another node of the cluster): {_quote(m)}" for m in other_main[:2]]
        return [other_name]
    passing = ([m for m in other_main if m["status"] == "ok"]
               or [c for c in other.checks.values() if c["status"] == "ok" and c.get("kind") in NETWORK_KINDS])
    not_checked, owner = [], f"node {node}'s own"
    if choice.get("zone") and choice.get("pod_node_zone") and choice["zone"] != choice["pod_node_zone"]:
        owner = f"node {node}'s own, or shared by its zone {choice['pod_node_zone']}"
        not_checked.append(f"node {other_name} is in zone {choice['zone']}, node {node} in {choice['pod_node_zone']}: a fault shared by "
                           f"every node of {choice['pod_node_zone']} (its subnet's route or NAT gateway) is not ruled out")
    ctx.add("node.egress_broken", f"node {node} cannot reach anything outside the cluster while node {other_name} can, so {ctx.ref} "
            f"cannot either: the fault is {owner}",
            [*evidence, *(f"from node {other_name} (another node of the cluster): {_quote(m)}" for m in passing[:2]),
             f"node {other_name} was chosen: {choice.get('why') or 'another node of the cluster'}"],
            _node_remedy(node), [t.url for t in silent], not_checked=not_checked)
    return None


def _networks(values):
    """The valid CIDRs among values, collapsed per IP version (a node's /24 inside the cluster's /16 is the /16)."""
    networks = []
    for value in values if isinstance(values, list) else []:
        try:
            networks.append(ipaddress.ip_network(value, strict=False) if isinstance(value, str) else None)
        except ValueError:
            continue
    return [str(n) for version in (4, 6) for n in ipaddress.collapse_addresses(n for n in networks if n is not None and n.version == version)]


# What a remedy says when the facts do not hold a range: the words, never a <placeholder>.
RANGE_UNKNOWN = {
    "pod": "the pod CIDR is not known (no node spec.podCIDRs, kube-proxy clusterCIDR, controller-manager --cluster-cidr or kubeadm "
           "podSubnet was readable)",
    "service": "the service CIDR is not known (neither kube-apiserver --service-cluster-ip-range nor kubeadm serviceSubnet was readable)",
    "vpc": "the VPC CIDR is not known (pass vpc_cidrs to kubediag.egress.cluster_network_info, or read it from the cloud)",
}


def _unknown_ranges(ctx, ranges, kinds):
    if ctx.cluster_network is None:
        return [f"the {', '.join(kinds)} CIDRs are not known (cluster_network_info did not run)"]
    return [RANGE_UNKNOWN[kind] for kind in kinds if not ranges[kind]]


def _cluster_suffixes(ctx):
    """NO_PROXY suffixes for in-cluster names: .svc and the cluster domain the pod's resolv.conf searches (cluster.local by default)."""
    search = ((ctx.probe_facts.get("resolv_conf") or {}).get("details") or {}).get("search") or []
    domain = next((entry.split(".svc.", 1)[1] for entry in search if isinstance(entry, str) and ".svc." in entry), "cluster.local")
    return [".svc", f".{domain}"]


def rule_ports(ctx):
    """Only some ports or protocols fail while others pass, and no policy we can read explains it -> a firewall."""
    handled = {t for f in ctx.findings.values() for t in f.data["targets"]}
    if not ctx.pod.any_external_ok():
        return
    for target in _blocked_targets(ctx):
        if target.url in handled:
            continue
        observed_from = "pod" if _no_answer(target, ctx.pod) else "node" if _node_saw_no_answer(ctx, target) else None
        if observed_from is None:
            continue
        passing = [c for c in ctx.pod.checks.values() if c.get("kind") in ("tcp", "udp", "http", "egress_ip") and c["status"] == "ok"]
        same_host = [c for c in passing if target.host in (c.get("target") or "") or target.host == (c.get("params") or {}).get("host")]
        main = _quote(target.main()) if observed_from == "pod" else f"the pod could not send it itself: {_quote(target.main())}"
        evidence = [main, *(_quote(c) for c in (same_host or passing)[:2]), ctx.node_evidence(target)]
        ctx.add("firewall.port_blocked", f"{target.protocol.upper()} {target.port} to {target.host} is dropped while other "
                f"{'ports of the same host' if same_host else 'destinations'} pass, and no NetworkPolicy explains it",
                evidence, _remedy(f"allow egress {target.protocol.upper()} {target.port} to {target.host} on the firewall between the cluster and "
                                  "the internet (cloud security group / NACL / firewall rule, or the corporate firewall)", None,
                                  protocol=target.protocol.upper(), port=target.port, destinations=target.resolved_ips() or [target.host]),
                [target.url], not_checked=["cloud firewall rules were not read (no cloud facts): the rule that drops it is not named"],
                observed_from=observed_from)


def _node_saw_no_answer(ctx, target):
    """The pod's tools cannot run the target's check nor its connect (a connect the pod made itself is not blocked), and the node's
    same check got no answer while the node reaches other things."""
    pod_unmeasured = _unmeasured(target.main()) and _unmeasured(ctx.pod.check(target.connect_id()))
    return pod_unmeasured and ctx.node is not None and _no_answer(target, ctx.node) and ctx.node.any_external_ok()


def rule_mtu(ctx):
    """Small requests pass, large ones stall -> a path MTU black hole: measured by the pod's DF pings, or by the node's when the
    pod's ping cannot set DF (BusyBox) and the pod's own large request stalls or cannot be made."""
    for target in ctx.targets:
        if target.works():
            continue
        main = target.main()
        mtu = ctx.pod.check(check_id("mtu", target.host))
        blackhole = mtu and (mtu.get("details") or {}).get("blackhole")
        main_details = (main or {}).get("details") or {}
        # curl says it connected; wget (no write-out) says its headers came before the body stalled
        stalled_after_connect = main and main.get("error_class") == "timeout" and (main_details.get("time_connect")
                                                                                   or main_details.get("timeout_stage") == "transfer")
        small_ok = any(c["status"] == "ok" for c in ctx.pod.of_kind("http") if (c.get("params") or {}).get("url", "").split("/")[2:3] == [target.host]
                       or target.host in c.get("target", ""))
        passing_http = [c for c in ctx.pod.of_kind("http") if c["status"] == "ok" and target.host in c.get("target", "")]
        node = _node_blackhole(ctx, target)
        if blackhole or (stalled_after_connect and small_ok):
            # the pod's own DF pings size the fix; without them (BusyBox) the node's, when it measured the black hole
            sized_by = mtu if blackhole or not node else node[0]
            _add_mtu(ctx, target, sized_by, [*[_quote(main), _quote(mtu) if mtu else None, *(_quote(c) for c in passing_http)][:4],
                                             None if sized_by is mtu else f"from node {ctx.pod_info.get('node')}: {_quote(sized_by)}"], "pod")
            continue
        pod_stalled_or_blind = main is not None and (main.get("error_class") == "timeout" or _unmeasured(main))
        if node and pod_stalled_or_blind and not (mtu and mtu["status"] == "ok") and ctx.pod.any_external_ok():
            node_mtu, node_main = node
            pod_saw = _quote(main) if main.get("error_class") == "timeout" else f"the pod could not make the request itself: {_quote(main)}"
            _add_mtu(ctx, target, node_mtu, [pod_saw, f"from node {ctx.pod_info.get('node')}: {_quote(node_mtu)}",
                                             f"from node {ctx.pod_info.get('node')}: {_quote(node_main)}",
                                             *(_quote(c) for c in passing_http[:1]),
                                             f"the pod's own path MTU was not measured: {_quote(mtu)}" if mtu else None], "node")


def _node_blackhole(ctx, target):
    """(DF pings, request) from the node: its DF pings to the host found a black hole and its own request to the target stalled."""
    if ctx.node is None:
        return None
    mtu, main = ctx.node.check(f"mtu:{target.host}"), target.main(ctx.node)
    if mtu and (mtu.get("details") or {}).get("blackhole") and main and main.get("error_class") == "timeout":
        return mtu, main
    return None


def _add_mtu(ctx, target, mtu, evidence, observed_from):
    details = (mtu or {}).get("details") or {}
    ctx.add("mtu.blackhole", f"path MTU black hole towards {target.host}: small packets pass, packets of "
            f"{details.get('smallest_lost') or 'larger'} bytes and more vanish without an ICMP frag-needed",
            evidence,
            _remedy(f"set the pod network MTU to at most {details.get('path_mtu_estimate') or details.get('largest_ok') or 'the path MTU'} "
                    "(CNI MTU setting), or let ICMP 'fragmentation needed' through the hop that drops it", None,
                    path_mtu=details.get("path_mtu_estimate") or details.get("largest_ok"), interface_mtu=details.get("interface_mtu"),
                    host=target.host),
            [target.url], observed_from=observed_from)


TLS_CAUSES = {"tls_unknown_ca": "tls.unknown_ca", "tls_ca_bundle": "tls.unknown_ca", "tls_expired": "tls.cert_expired",
              "tls_hostname_mismatch": "tls.hostname_mismatch"}


def rule_tls(ctx):
    """`curl -k` works but curl does not -> certificate validation: unknown CA (or no CA bundle), expired, wrong name."""
    ca_bundle = ctx.probe_facts.get("ca_bundle") or {}
    for target in ctx.targets:
        if target.scheme != "https" or target.works():
            continue
        main, tls = target.main(), ctx.pod.check(check_id("tls", target.host_port))
        insecure = ctx.pod.check(check_id("http.insecure", target.url))
        classes = [c.get("error_class") for c in (main, tls) if c]
        cause = next((TLS_CAUSES[k] for k in classes if k in TLS_CAUSES), None)
        if cause is None and not (insecure and (insecure["status"] == "ok" or (insecure.get("details") or {}).get("http_code"))
                                  and main and str(main.get("error_class", "")).startswith("tls")):
            continue
        if cause is None or (ca_bundle.get("status") == "fail" and cause == "tls.unknown_ca"):
            cause = "tls.unknown_ca"
        details = (tls or {}).get("details") or {}
        evidence = [_quote(main), _quote(insecure) if insecure else None, _quote(tls) if tls else None]
        if cause == "tls.unknown_ca":
            no_bundle = ca_bundle.get("status") == "fail"
            evidence.append(f"CA bundle: {ca_bundle.get('summary')}")
            summary = (f"{ctx.ref} has no CA bundle, so no certificate verifies" if no_bundle else
                       f"the certificate of {target.host_port} is issued by a CA the pod does not trust ({details.get('issuer')})")
            remedy = _remedy("install the ca-certificates bundle in the image (or mount one and point SSL_CERT_FILE at it)" if no_bundle else
                             f"add the issuer's CA ({details.get('issuer')}) to the pod's trust store, or have the endpoint use a publicly trusted "
                             "certificate", None, issuer=details.get("issuer"), host=target.host, ca_bundle_present=not no_bundle)
        elif cause == "tls.cert_expired":
            summary = f"the certificate of {target.host_port} is expired or not yet valid (not after {details.get('not_after')})"
            remedy = _remedy(f"the endpoint's owner must renew the certificate of {target.host}", None, host=target.host,
                             not_before=details.get("not_before"), not_after=details.get("not_after"))
        else:
            summary = f"the certificate of {target.host_port} does not cover the name {target.host} (SANs: {', '.join(details.get('sans') or []) or 'none'})"
            remedy = _remedy(f"connect with a name the certificate covers, or have the endpoint's owner add {target.host} to it", None,
                             host=target.host, sans=details.get("sans") or [], subject=details.get("subject"))
        ctx.add(cause, summary, evidence, remedy, [target.url])


def rule_endpoint(ctx):
    """The path works but the endpoint says no: 403 to our egress IP (allow-list), or refused from pod and node (down)."""
    echo = next((c for c in ctx.pod.of_kind("egress_ip") if c["status"] == "ok"), None)
    egress_ip = (echo.get("details") or {}).get("ip") if echo else None
    for target in ctx.targets:
        if target.works():
            continue
        main = target.main()
        if not main:
            continue
        code = (main.get("details") or {}).get("http_code")
        connect = ctx.pod.check(target.connect_id())
        if code == 403 and (connect is None or connect["status"] == "ok"):
            ctx.add("endpoint.ip_allowlist", f"{target.host} answers HTTP 403 to our egress IP {egress_ip or '(unknown)'} while the path works: "
                    "it does not have this IP on its allow-list", [_quote(main), _quote(connect) if connect else None, _quote(echo) if echo else None],
                    _remedy(f"ask the owner of {target.host} to allow-list the cluster's egress IP {egress_ip or '(see the echo URL)'}", None,
                            host=target.host, egress_ip=egress_ip), [target.url], severity="critical",
                    not_checked=[] if echo else ["the egress IP is unknown (no echo_url): cannot name the address to allow-list"])
            continue
        refused_here = main.get("error_class") == "refused" or (connect or {}).get("error_class") == "refused"
        node_main = target.main(ctx.node) if ctx.node else None
        node_refused = node_main is not None and node_main.get("error_class") == "refused"
        if refused_here and (node_refused or ctx.node is None) and ctx.pod.any_external_ok():
            ctx.add("endpoint.down", f"{target.host_port} refuses connections from the pod{' and from its node' if node_refused else ''}, "
                    "while other destinations work: the endpoint is down", [_quote(main), ctx.node_evidence(target),
                                                                            *(_quote(c) for c in ctx.pod.checks.values() if c["status"] == "ok"
                                                                              and c.get("kind") in ("egress_ip", "http"))][:4],
                    _remedy(f"the service at {target.host_port} is not listening: contact its owner or check its status page", None,
                            host=target.host, port=target.port), [target.url], not_checked=ctx.node_not_checked())


RULES = (rule_dns, rule_policy_and_mesh, rule_proxy, rule_path, rule_tls, rule_endpoint, rule_mtu, rule_ports)
# The rules that still conclude behind a DNS failure, on the checks the pod ran by address. rule_path already counts the
# targets whose name failed (a silent path hides DNS too), and the proxy resolves names itself.
BY_ADDRESS_RULES = (rule_policy_and_mesh, rule_tls, rule_endpoint, rule_mtu, rule_ports)
BY_ADDRESS_MARK = ".by_address:"


def _by_address_checks(probe, target):
    """The checks the pod ran by address for this target (the ones that did run)."""
    ids = (f"tcp{BY_ADDRESS_MARK}{target.host_port}", f"http{BY_ADDRESS_MARK}{target.url}", f"tls{BY_ADDRESS_MARK}{target.host_port}")
    return [c for c in (probe.check(i) for i in ids) if c and (c.get("details") or {}).get("address")]


class AddressedTarget(Target):
    """A target whose name the pod could not resolve, seen through the checks it ran by address: its policy destination is
    the address it tested when no resolver answered."""

    def __init__(self, entry, pod, node, address):
        super().__init__(entry, pod, node)
        self.address = address

    def resolved_ips(self):
        return super().resolved_ips() or [self.address]


def _by_address_view(ctx, targets):
    """A copy of ctx whose pod checks are the by-address ones under the ordinary ids (tcp:, http:, tls:), without the
    failed pod-resolver answers and the checks that failed only because the name did not resolve (they say nothing about
    what is behind DNS), so the rules after DNS read them as they read any check."""
    view = copy.copy(ctx)
    hosts = {t.host for t in targets}
    names = hosts | {t.url for t in targets}
    checks = {i: c for i, c in ctx.pod.checks.items() if BY_ADDRESS_MARK not in i and not (i.startswith("dns.pod:") and i.split(":", 1)[1] in hosts)
              and not (c.get("error_class") == "dns" and c.get("target") in names)}
    for target in targets:
        for check in _by_address_checks(ctx.pod, target):
            checks[check["id"].replace(BY_ADDRESS_MARK, ":", 1)] = check
    view.pod = Probe(ctx.probe_facts)
    view.pod.checks = checks
    view.targets = [AddressedTarget(t.entry, view.pod, ctx.node, _by_address_checks(ctx.pod, t)[0]["details"]["address"]) for t in targets]
    view.findings = {}
    return view


def _address_evidence(ctx, target):
    checks = _by_address_checks(ctx.pod, target)
    details = checks[0]["details"]
    if details.get("address_source") == "external":
        external = ((checks[0].get("params") or {}).get("external_resolver")) or "the external resolver"
        where = f"the external resolver {external} returned"
    else:
        where = "the controller resolved (no resolver answered the pod)"
    return f"the pod could not resolve {target.host}: tested it by the address {details['address']} {where}"


def rule_behind_dns(ctx):
    """DNS broken and something behind it broken too: the rules after DNS, on what the pod saw by address, so the user
    gets every cause in one run. A target with no address to test says what was not tested."""
    tested = []
    not_found = ctx.findings.get("dns.name_not_found")
    missing = set(not_found.data["targets"]) if not_found else set()
    for target in _dns_failed_targets(ctx):
        if target.url in missing:
            continue  # nothing stands behind a name that does not exist
        if _by_address_checks(ctx.pod, target):
            tested.append(target)
            continue
        untested = [c for c in ctx.pod.checks.values() if BY_ADDRESS_MARK in c["id"] and c.get("error_class") == "no_address"
                    and c.get("target") in (target.url, target.host)]
        if untested:
            ctx.not_checked.append(f"{target.url}: {untested[0]['summary']}")
    if not tested:
        return
    view = _by_address_view(ctx, tested)
    for rule in BY_ADDRESS_RULES:
        rule(view)
    for finding in view.findings.values():
        data = finding.data
        by_url = {t.url: t for t in tested}
        evidence = [_address_evidence(ctx, by_url[url]) for url in data["targets"] if url in by_url] + data["evidence"]
        ctx.add(data["id"], data["summary"], evidence, data["remediation"], data["targets"], data["not_checked"], data["severity"],
                data["observed_from"])


# --- a pod that could not be probed: what the cluster's configuration alone proves ----------------------------------

STATIC_NOT_CHECKED = ("observed without a probe in the pod (static, from the cluster's configuration): a probe would have added the "
                      "pod's own view (its resolver, the connection, HTTP and TLS to the target, the certificate, the proxy settings, "
                      "the path MTU, the egress IP), and with it any cause behind this one")
NO_STATIC_CAUSE = "no static cause found; probe to be sure"
# What lets the diagnosis probe the pod next time: exec, and for a shell-less image the ephemeral debug container.
ALLOW_PROBE = ("to probe the pod, allow exec into it (RBAC create on pods/exec) and, for an image without a shell, a debug container: "
               "allow_debug_container: true (debug_container for pod_probe; RBAC patch on pods/ephemeralcontainers, and a "
               "namespace whose Pod Security level admits the debug image)")


def _same_destination(answer, target):
    return (isinstance(answer, dict) and str(answer.get("destination") or "").lower().rstrip(".") == target.host.lower().rstrip(".")
            and answer.get("port") == target.port and str(answer.get("protocol") or "").upper() == target.protocol.upper())


def _uses_cluster_dns(ctx):
    """Does the pod resolve names through the cluster DNS? Known only from the spec pod_probe read (dnsPolicy, hostNetwork)."""
    policy = ctx.pod_info.get("dns_policy")
    return policy == "ClusterFirstWithHostNet" or (policy == "ClusterFirst" and ctx.pod_info.get("host_network") is False)


def _no_coredns_pod_ready(ctx):
    """The kube-dns Service exists and no pod behind it is ready, and nothing that could answer instead (NodeLocal DNS) runs;
    never concluded when the pods could not all be read."""
    coredns = ctx.coredns
    if not coredns or not coredns.get("cluster_dns_ip") or not isinstance(coredns.get("pods"), list):
        return False
    unread = any("pod" in str(entry).lower() for entry in coredns.get("not_checked") or [])
    nodelocal = (coredns.get("nodelocal_dns") or {}).get("enabled") is not False
    return not unread and not nodelocal and not any(isinstance(p, dict) and p.get("ready") for p in coredns["pods"])


def _static_addresses(ctx, target, answers):
    """Where the addresses evaluated for target came from, in words."""
    if target.is_ip:
        return f"{target.host} is an address: evaluated as given"
    from_node = target.resolved_ips()
    if from_node:
        return (f"addresses of {target.host} from the node probe (node {ctx.pod_info.get('node')}): {', '.join(from_node)}; the pod itself "
                "may resolve it differently")
    ips = ", ".join(dict.fromkeys(a["ip"] for a in answers))
    return f"addresses of {target.host} resolved on the controller (the node was not probed): {ips}; the pod may resolve it differently"


def rule_static(ctx):
    """A pod that could not be probed: a cause only where the cluster's configuration alone makes it certain (a policy that
    denies every address of the target, DNS policy or CoreDNS that no lookup can pass, a mesh that refuses the host)."""
    if ctx.netpol is None:
        return  # the cluster was not read for this pod (pod_probe could not reach it): nothing to conclude from
    notes = [STATIC_NOT_CHECKED, ALLOW_PROBE]
    dns_policy = ctx.netpol.get("dns") or {}
    for target in ctx.targets:
        answers = [a for a in ctx.netpol.get("destinations") or [] if _same_destination(a, target)]
        if answers and all(a.get("ip") and a.get("allowed") is False for a in answers):
            policies = sorted({p for a in answers for p in a.get("selected_by") or []})
            reasons = [r for r in dict.fromkeys(r for a in answers for r in a.get("reasons") or []) if " given as " not in r]
            ctx.add("netpol.egress_blocked", f"NetworkPolicy {', '.join(policies) or '(selecting the pod)'} allows no egress from {ctx.ref} to "
                    f"{target.host_port} at any of its addresses", [_static_addresses(ctx, target, answers), *reasons[:4]],
                    _egress_policy_remedy(ctx, [target], [a["ip"] for a in answers]), [target.url], not_checked=notes, observed_from="static")
        mesh = ctx.mesh_for(target)
        if mesh and mesh.get("blocked"):
            ctx.add("mesh.registry_only", f"Istio outboundTrafficPolicy REGISTRY_ONLY and no ServiceEntry covers {target.host_port}",
                    list(mesh.get("reasons") or [])[:4], _service_entry_remedy(ctx, target), [target.url], not_checked=notes,
                    observed_from="static")
        if target.is_ip or not _uses_cluster_dns(ctx):
            continue
        resolver = f"{ctx.ref} resolves names through the cluster DNS (dnsPolicy {ctx.pod_info.get('dns_policy')})"
        if dns_policy.get("checked") and dns_policy.get("udp_allowed") is False and dns_policy.get("tcp_allowed") is False:
            ctx.add("netpol.dns_blocked", f"a NetworkPolicy selecting {ctx.ref} blocks DNS (port 53) to the cluster DNS",
                    [resolver, *(dns_policy.get("reasons") or [])[:4]], _dns_policy_remedy(ctx), [target.url], not_checked=notes,
                    observed_from="static")
        elif _no_coredns_pod_ready(ctx):
            ctx.add("dns.cluster_dns_unreachable", f"the cluster DNS service cannot answer {ctx.ref}: no CoreDNS pod is ready",
                    [resolver, *_coredns_health(ctx)], _coredns_remedy(ctx), [target.url], not_checked=notes, observed_from="static")
    snat = (ctx.cluster_network or {}).get("snat") or {}
    if snat.get("snat") is False:
        # Not a cause on its own: a NAT gateway or Cloud NAT may translate the pod range further on, which only a probe shows.
        ctx.not_checked.append(f"SNAT: {'; '.join(snat.get('reasons') or [])[:300]}; whether something further on translates the pod IP "
                               "(a NAT gateway, Cloud NAT) needs a probe")
    if not ctx.findings:
        ctx.not_checked.append(NO_STATIC_CAUSE)


def _target_result(ctx, target, findings):
    mine = [f for f in findings if target.url in f["targets"]]
    if not ctx.pod.probed:
        # Only the hops a static finding proves broken are marked; nothing was observed working.
        failing = {f["hop"] for f in mine}
        path = [{"hop": h, "status": "fail", "note": "; ".join(f"{f['id']}: {f['summary']}" for f in mine if f["hop"] == h)}
                if h in failing else {"hop": h, "status": "unknown"} for h in HOPS]
        reason = ctx.probe_facts.get("not_probed_reason") or "the pod was not probed"
        return {"target": target.url, "status": "failing" if mine else "not_probed", "root_causes": [f["id"] for f in mine], "path": path,
                "checks": [], "note": f"not probed: {reason}" + ("" if mine or ctx.netpol is None else f"; {NO_STATIC_CAUSE}")}
    works = target.works()
    if works and not mine:
        status = "ok"
    elif mine:
        status = "failing"
    else:
        status = "unknown"
    failing_hops = {f["hop"] for f in mine}
    first = min((HOPS.index(h) for h in failing_hops if h in HOPS), default=None)
    path = []
    for index, hop in enumerate(HOPS):
        if hop in failing_hops:
            notes = "; ".join(f"{f['id']}: {f['summary']}" for f in mine if f["hop"] == hop)
            path.append({"hop": hop, "status": "fail", "note": notes})
        elif status == "unknown":
            path.append({"hop": hop, "status": "unknown"})
        elif first is None or index < first:
            path.append({"hop": hop, "status": "ok"})
        else:
            path.append({"hop": hop, "status": "not_reached"})
    return {"target": target.url, "status": status, "root_causes": [f["id"] for f in mine], "path": path, "checks": target.checks_for_report()}


def _rests_on_time(check):
    """A failure that only says nothing answered in time (after confirmation; a DNS SERVFAIL is a forwarder's upstream
    timing out): a lost ping proves nothing either way, and a path-MTU black hole is sizes that timed out."""
    if check.get("status") not in ("fail", "error") or check.get("kind") == "icmp":
        return False
    return timed_out(check.get("kind"), check.get("error_class")) or (check.get("kind") == "mtu" and check.get("error_class") == "blackhole")


def untrusted_timing(ctx):
    """Why no root cause may be drawn for this pod, or None: a part of the probe (the pod, or its node) that says its own
    timings cannot be trusted still has a check that failed by running out of time, so that failure may be the machine's
    load, not the network. Failures that are answers (refused, NXDOMAIN, a bad certificate) stand whatever the load."""
    parts = (("the pod", ctx.pod), ("its node", ctx.node))
    for who, probe in parts:
        timing = probe.facts.get("timing") if probe is not None else None
        if not isinstance(timing, dict) or timing.get("trusted") is not False:
            continue
        late = sorted(c["id"] for c in probe.checks.values() if _rests_on_time(c))
        if late:
            shown = ", ".join(late[:4]) + (f" and {len(late) - 4} more" if len(late) > 4 else "")
            return (f"the probe of {who} cannot trust its own timings ({timing.get('reason') or 'no reason given'}), and {shown} failed "
                    "only by timing out, even when re-run alone with a longer timeout: run the diagnosis again when the machine is less busy, "
                    "or with a longer timeout")
    return None


def _inconclusive(ctx, reason, notes):
    targets = [{"target": t.url, "status": "inconclusive", "reason": reason, "root_causes": [],
                "path": [{"hop": h, "status": "unknown"} for h in HOPS], "checks": t.checks_for_report()} for t in ctx.targets]
    return {"pod": ctx.ref, "node": ctx.pod_info.get("node"), "ip": ctx.pod_info.get("ip"), "healthy": False, "inconclusive": reason,
            "root_causes": [], "findings": [], "targets": targets, "not_checked": sorted({*ctx.not_checked, f"no root cause concluded: {reason}"}),
            "notes": notes}


def evaluate_pod(facts):
    """The verdict for one pod: {pod, node, healthy, inconclusive, root_causes, findings, targets, not_checked, notes}.
    `inconclusive` is None, or the reason no root cause is drawn (the probe could not trust its timings)."""
    if not isinstance(facts, dict):
        raise VerdictError("facts must be a mapping with at least pod_probe")
    ctx = Context(facts)
    if not ctx.targets:
        raise VerdictError(f"pod_probe result for {ctx.ref} lists no targets: pass the pod_probe result as returned")
    notes = list(ctx.probe_facts.get("notes") or [])
    if ctx.node_not_probed_reason:
        ctx.not_checked.append(f"the node was not probed: {ctx.node_not_probed_reason}")
    if not ctx.pod.probed:
        reason = ctx.probe_facts.get("not_probed_reason") or "the pod was not probed"
        ctx.not_checked.append(reason)
        if not ctx.probe_facts.get("failed"):  # reached but not probed; a failed pod's message says what to do itself
            ctx.not_checked.append(ALLOW_PROBE)
        rule_static(ctx)
    elif (reason := untrusted_timing(ctx)) is not None:
        return _inconclusive(ctx, reason, notes)
    else:
        for rule in RULES:
            rule(ctx)
        rule_behind_dns(ctx)
    findings = sorted((f.data for f in ctx.findings.values()), key=lambda f: FIX_ORDER.index(f["id"]))
    targets = [_target_result(ctx, t, findings) for t in ctx.targets]
    healthy = ctx.pod.probed and not findings and all(t["status"] == "ok" for t in targets)
    if healthy:
        stand_ins = [t for t in ctx.targets if t.observed_from == "node"]
        from_node = " (from its node where the pod's tools cannot send UDP)" if stand_ins else ""
        findings = [{"id": HEALTHY.id, "layer": HEALTHY.layer, "hop": HEALTHY.hop, "severity": "info",
                     "summary": f"every check from {ctx.ref} to every target passed{from_node}",
                     "evidence": [ctx.node_evidence(t) if t.observed_from == "node" else _quote(t.main()) for t in ctx.targets if t.main()],
                     "not_checked": [n for n in ctx.not_checked if any(n.startswith(f"{t.url}:") for t in stand_ins)],
                     "remediation": {"summary": "", "module": None, "params": {}}, "targets": [t.url for t in ctx.targets],
                     "observed_from": "pod"}]
        for entry in targets:
            entry.update(status="healthy", root_causes=[HEALTHY.id])
    for entry in targets:
        if entry["status"] == "unknown" and ctx.pod.probed:
            ctx.not_checked.append(f"{entry['target']} fails and no rule explains it: see its checks")
    return {"pod": ctx.ref, "node": ctx.pod_info.get("node"), "ip": ctx.pod_info.get("ip"), "healthy": healthy, "inconclusive": None,
            "root_causes": [f["id"] for f in findings], "findings": findings, "targets": targets,
            "not_checked": sorted(set(ctx.not_checked)), "notes": notes}


def _pod_ref(result):
    pod = (result or {}).get("pod") or {}
    return f"{pod.get('namespace')}/{pod.get('name')}"


def evaluate_cluster(bundle):
    """One verdict per pod from what the diagnose role registered: the egress_verdict options of verdict/sources.py."""
    if not isinstance(bundle, dict):
        raise VerdictError("the facts bundle must be a mapping")
    probes = [p for p in bundle.get("pod_probes") or [] if not skipped(p) or _unprobed_pod(p)]
    if not probes:
        raise VerdictError("pod_probes holds no pod_probe result: run kubediag.egress.pod_probe first and pass its registered results")
    return [evaluate_pod(facts) for facts in facts_for_pods(bundle, probes, _pod_ref)]
