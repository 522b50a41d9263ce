"""From facts to a verdict: why a pod cannot reach its targets, and what fixes it.

``evaluate_pod(facts)`` is a pure function of what the fact modules returned for one pod: ``pod_probe`` (checks run in
the pod and, with ``node``, from its node), ``netpol`` (netpol_egress_info), ``coredns`` (coredns_info), ``cluster_network``
(cluster_network_info), ``mesh`` (mesh_egress_info, one per target) and ``pod`` (egress_pods_info: labels). Each rule is one
conclusion of the field guide (docs/verdict.md lists them); rules read facts only, never scenario names. The findings have
the shape docs/architecture.md documents: ``{id, layer, hop, severity, summary, evidence[], not_checked[], remediation{summary, module, params}, targets[]}``,
ordered by what to fix first. A pod whose every target works gets ``healthy`` and nothing else.

``evaluate_cluster(bundle)`` splits what the diagnose role registered for a cluster (module results) into one
facts dict per pod and evaluates each. Plain Python, stdlib only, no I/O.
"""

import ipaddress

from ansible_collections.kubediag.egress.plugins.module_utils.probe.facts import timed_out

# What to fix first: a broken node or path hides everything behind it; the endpoint's own problems come last.
FIX_ORDER = (
    "node.egress_broken", "route.no_internet_path", "nat.missing_snat", "dns.resolv_conf", "netpol.dns_blocked",
    "dns.cluster_dns_unreachable", "dns.upstream_forwarding", "netpol.egress_blocked", "mesh.registry_only", "proxy.unreachable",
    "proxy.missing_config", "firewall.cloud_egress_denied", "firewall.port_blocked", "mtu.blackhole", "tls.unknown_ca",
    "tls.cert_expired", "tls.hostname_mismatch", "endpoint.ip_allowlist", "endpoint.down", "dns.name_not_found",
)
LAYERS = {
    "node.egress_broken": ("node", "node"), "route.no_internet_path": ("route", "internet"), "nat.missing_snat": ("nat", "nat"),
    "dns.resolv_conf": ("dns", "dns"), "netpol.dns_blocked": ("netpol", "policy"), "dns.cluster_dns_unreachable": ("dns", "dns"),
    "dns.upstream_forwarding": ("dns", "dns"), "netpol.egress_blocked": ("netpol", "policy"), "mesh.registry_only": ("mesh", "policy"),
    "proxy.unreachable": ("proxy", "internet"), "proxy.missing_config": ("proxy", "internet"),
    "firewall.cloud_egress_denied": ("firewall", "internet"), "firewall.port_blocked": ("firewall", "internet"),
    "mtu.blackhole": ("mtu", "internet"), "tls.unknown_ca": ("tls", "endpoint"), "tls.cert_expired": ("tls", "endpoint"),
    "tls.hostname_mismatch": ("tls", "endpoint"), "endpoint.ip_allowlist": ("endpoint", "endpoint"), "endpoint.down": ("endpoint", "endpoint"),
    "dns.name_not_found": ("endpoint", "endpoint"), "healthy": ("none", None),
}
HOPS = ("pod", "dns", "policy", "node", "nat", "internet", "endpoint")
NO_ANSWER = ("timeout", "unreachable", "refused", "reset", "no_answer")
METADATA_CIDR = "169.254.169.254/32"
CHECK_STATUS = {"ok": "pass", "fail": "fail", "error": "error", "skipped": "skip"}
NETWORK_KINDS = ("tcp", "udp", "http", "tls")


class VerdictError(ValueError):
    """The facts are not shaped as the fact modules return them; str() names the part."""


def _skipped(result):
    return not isinstance(result, dict) or result.get("skipped") or result.get("failed")


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

    def ok(self, check_id):
        return self.status(check_id) == "ok"

    def failed(self, check_id):
        return self.status(check_id) in ("fail", "error")

    def of_kind(self, kind):
        return [c for c in self.checks.values() if c.get("kind") == kind]

    def dns(self, via, name):
        return self.checks.get(f"dns.{via}:{name}")

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


class Target:
    """One target and the checks that concern it, in the pod and on the node."""

    def __init__(self, entry, pod, node):
        self.entry, self.pod, self.node = entry, pod, node
        for key, kind in (("url", str), ("host", str), ("port", int)):
            if not isinstance(entry.get(key), kind) or isinstance(entry.get(key), bool):
                raise VerdictError(f"pod_probe target {entry.get('url')!r} has no valid {key} (got {entry.get(key)!r}): pass the targets "
                                   "kubediag.egress.pod_probe returned")
        self.url, self.host, self.port = entry["url"], entry["host"], entry["port"]
        self.protocol, self.scheme = entry.get("protocol", "tcp"), entry.get("scheme", "https")
        self.is_ip = bool(entry.get("host_is_ip"))
        self.host_port = f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"

    def main_check_id(self):
        if self.scheme in ("http", "https"):
            return f"http:{self.url}"
        return f"{self.protocol}:{self.host_port}"

    def connect_id(self):
        return f"{self.protocol}:{self.host_port}"

    def main(self, probe=None):
        probe = probe or self.pod
        return probe.check(self.main_check_id()) or probe.check(self.connect_id())

    def works(self, probe=None):
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
        rows = [{"name": c["id"], "status": CHECK_STATUS.get(c["status"], c["status"]), "detail": c.get("summary", "")}
                for c in self.pod.checks.values() if c["id"] in ids]
        if self.node is not None and self.node.probed:
            rows += [{"name": f"node {c['id']}", "status": CHECK_STATUS.get(c["status"], c["status"]), "detail": c.get("summary", "")}
                     for c in self.node.checks.values() if c["id"] in ids]
        return rows


class Finding:
    def __init__(self, cause_id, summary, evidence, remediation, targets, not_checked=None, severity="critical"):
        layer, hop = LAYERS[cause_id]
        self.data = {"id": cause_id, "layer": layer, "hop": hop, "severity": severity, "summary": summary,
                     "evidence": [e for e in evidence if e], "not_checked": list(not_checked or []),
                     "remediation": remediation, "targets": sorted(set(targets))}


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
        self.pod_info = probe_facts.get("pod") or {}
        self.ref = f"{self.pod_info.get('namespace')}/{self.pod_info.get('name')}"
        self.labels = (facts.get("pod") or {}).get("labels") or {}
        self.netpol = None if _skipped(facts.get("netpol")) else facts["netpol"]
        self.coredns = None if _skipped(facts.get("coredns")) else facts["coredns"]
        self.cluster_network = None if _skipped(facts.get("cluster_network")) else facts["cluster_network"]
        self.mesh = [m for m in facts.get("mesh") or [] if not _skipped(m)]
        self.targets = [Target(t, self.pod, self.node) for t in probe_facts.get("targets") or [] if isinstance(t, dict) and "url" in t]
        self.findings = {}
        self.not_checked = []

    def add(self, cause_id, summary, evidence, remediation, targets, not_checked=None, severity="critical"):
        """Record a finding; a cause already found for other targets gains these targets and any new evidence."""
        if cause_id in self.findings:
            existing = self.findings[cause_id].data
            existing["targets"] = sorted(set(existing["targets"]) | set(targets))
            existing["evidence"] += [e for e in evidence if e and e not in existing["evidence"]]
            return
        self.findings[cause_id] = Finding(cause_id, summary, evidence, remediation, targets, not_checked, severity)

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


def _egress_policy_remedy(ctx, targets):
    ports = sorted({(t.protocol.upper(), t.port) for t in targets})
    ips = sorted({ip for t in targets for ip in t.resolved_ips()})
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
                    [_quote(target.main()), *(mesh.get("reasons") or [])[:3]],
                    _remedy(f"create a ServiceEntry for {target.host} port {target.port} (MESH_EXTERNAL, resolution DNS)", "kubernetes.core.k8s",
                            state="present", definition={
                                "apiVersion": "networking.istio.io/v1beta1", "kind": "ServiceEntry",
                                "metadata": {"name": f"external-{target.host.replace('.', '-')}"[:63], "namespace": ctx.pod_info.get("namespace")},
                                "spec": {"hosts": [target.host], "location": "MESH_EXTERNAL", "resolution": "DNS",
                                         "ports": [{"number": target.port, "name": f"{target.scheme}-{target.port}",
                                                    "protocol": {"https": "TLS", "http": "HTTP"}.get(target.scheme, target.protocol.upper())}]}}),
                    [target.url])
    if ctx.netpol is None and _blocked_targets(ctx):
        ctx.not_checked.append("NetworkPolicies were not evaluated (netpol_egress_info did not run)")


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
            pod_cidr = (ctx.cluster_network or {}).get("cidrs", {}) if ctx.cluster_network else {}
            no_proxy = ".cluster.local,.svc,localhost,127.0.0.1,169.254.169.254" + "".join(
                f",{c}" for c in ([pod_cidr.get("pod")] if isinstance(pod_cidr, dict) and isinstance(pod_cidr.get("pod"), str) else []))
            ctx.add("proxy.missing_config", f"direct egress is blocked but the proxy {proxy} works, and {ctx.ref} has no proxy environment",
                    [_quote(target.main()), _quote(through_proxy), "the container environment has no HTTP(S)_PROXY variable",
                     ctx.node_evidence(target)],
                    _remedy(f"set HTTPS_PROXY/HTTP_PROXY={proxy} and NO_PROXY for in-cluster names in the workload's environment", "kubernetes.core.k8s",
                            namespace=ctx.pod_info.get("namespace"), pod=ctx.pod_info.get("name"),
                            env=[{"name": "HTTPS_PROXY", "value": proxy}, {"name": "HTTP_PROXY", "value": proxy},
                                 {"name": "NO_PROXY", "value": no_proxy}]),
                    [target.url])


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
        ctx.add("nat.missing_snat", f"traffic from {ctx.ref} leaves with the pod IP {pod_ip}: nothing source-NATs it, so no reply comes back",
                evidence, _remedy("masquerade pod traffic to destinations outside the cluster: configure ip-masq-agent (or the CNI's SNAT) so "
                                  "nonMasqueradeCIDRs holds only the pod, service and VPC ranges", "kubernetes.core.k8s",
                                  kind="ConfigMap", namespace="kube-system", name="ip-masq-agent",
                                  config={"nonMasqueradeCIDRs": _non_masquerade_cidrs(ctx), "masqLinkLocal": False}),
                [t.url for t in silent], not_checked=[] if snat else ["the SNAT configuration could not be decided from the cluster objects"])
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
    if cluster_dns_ok:
        ctx.add("route.no_internet_path", f"neither {ctx.ref} nor its node {node} reaches anything on the internet, while the cloud's own resolver "
                "answers: the node's subnet has no way out (no NAT gateway, internet gateway or default route)",
                [*evidence, "names still resolve (the cloud resolver needs no internet path)"],
                _remedy(f"give node {node}'s subnet a route to the internet: 0.0.0.0/0 via a NAT gateway (private subnet) or an internet gateway",
                        None, node=node, route={"destination": "0.0.0.0/0", "via": "nat-gateway or internet-gateway"}),
                [t.url for t in silent], not_checked=["cloud route tables were not read (no cloud facts): the route itself is inferred"])
    else:
        ctx.add("node.egress_broken", f"node {node} itself cannot reach anything outside the cluster, so neither can {ctx.ref}",
                [*evidence, "cluster DNS cannot resolve external names either (CoreDNS's upstream is outside too)"],
                _remedy(f"repair node {node}'s egress: its firewall (iptables/nftables OUTPUT and FORWARD), routes and security groups",
                        None, node=node, commands=[f"kubectl debug node/{node} -it --image=nicolaka/netshoot -- iptables-save"]),
                [t.url for t in silent])


def _non_masquerade_cidrs(ctx):
    cidrs = ((ctx.cluster_network or {}).get("cidrs") or {}) if ctx.cluster_network else {}
    found = []
    for value in cidrs.values() if isinstance(cidrs, dict) else []:
        for cidr in value if isinstance(value, list) else [value]:
            if isinstance(cidr, str):
                try:
                    found.append(str(ipaddress.ip_network(cidr, strict=False)))
                except ValueError:
                    continue
    return sorted(set(found)) or ["<pod CIDR>", "<service CIDR>", "<VPC CIDR>"]


def rule_ports(ctx):
    """Only some ports or protocols fail while others pass, and no policy we can read explains it -> a firewall."""
    handled = {t for f in ctx.findings.values() for t in f.data["targets"]}
    if not ctx.pod.any_external_ok():
        return
    for target in _blocked_targets(ctx):
        if target.url in handled or not _no_answer(target, ctx.pod):
            continue
        passing = [c for c in ctx.pod.checks.values() if c.get("kind") in ("tcp", "udp", "http", "egress_ip") and c["status"] == "ok"]
        same_host = [c for c in passing if target.host in (c.get("target") or "") or target.host == (c.get("params") or {}).get("host")]
        evidence = [_quote(target.main()), *(_quote(c) for c in (same_host or passing)[:2]), ctx.node_evidence(target)]
        ctx.add("firewall.port_blocked", f"{target.protocol.upper()} {target.port} to {target.host} is dropped while other "
                f"{'ports of the same host' if same_host else 'destinations'} pass, and no NetworkPolicy explains it",
                evidence, _remedy(f"allow egress {target.protocol.upper()} {target.port} to {target.host} on the firewall between the cluster and "
                                  "the internet (cloud security group / NACL / firewall rule, or the corporate firewall)", None,
                                  protocol=target.protocol.upper(), port=target.port, destinations=target.resolved_ips() or [target.host]),
                [target.url], not_checked=["cloud firewall rules were not read (no cloud facts): the rule that drops it is not named"])


def rule_mtu(ctx):
    """Small requests pass, large ones stall -> a path MTU black hole."""
    for target in ctx.targets:
        if target.works():
            continue
        main = target.main()
        mtu = ctx.pod.check(f"mtu:{target.host}")
        blackhole = mtu and (mtu.get("details") or {}).get("blackhole")
        stalled_after_connect = main and main.get("error_class") == "timeout" and (main.get("details") or {}).get("time_connect")
        small_ok = any(c["status"] == "ok" for c in ctx.pod.of_kind("http") if (c.get("params") or {}).get("url", "").split("/")[2:3] == [target.host]
                       or target.host in c.get("target", ""))
        if blackhole or (stalled_after_connect and small_ok):
            details = (mtu or {}).get("details") or {}
            passing_http = [c for c in ctx.pod.of_kind("http") if c["status"] == "ok" and target.host in c.get("target", "")]
            ctx.add("mtu.blackhole", f"path MTU black hole towards {target.host}: small packets pass, packets of "
                    f"{details.get('smallest_lost') or 'larger'} bytes and more vanish without an ICMP frag-needed",
                    [_quote(main), _quote(mtu) if mtu else None, *(_quote(c) for c in passing_http)][:4],
                    _remedy(f"set the pod network MTU to at most {details.get('path_mtu_estimate') or details.get('largest_ok') or 'the path MTU'} "
                            "(CNI MTU setting), or let ICMP 'fragmentation needed' through the hop that drops it", None,
                            path_mtu=details.get("path_mtu_estimate") or details.get("largest_ok"), interface_mtu=details.get("interface_mtu"),
                            host=target.host),
                    [target.url])


TLS_CAUSES = {"tls_unknown_ca": "tls.unknown_ca", "tls_ca_bundle": "tls.unknown_ca", "tls_expired": "tls.cert_expired",
              "tls_hostname_mismatch": "tls.hostname_mismatch"}


def rule_tls(ctx):
    """`curl -k` works but curl does not -> certificate validation: unknown CA (or no CA bundle), expired, wrong name."""
    ca_bundle = ctx.probe_facts.get("ca_bundle") or {}
    for target in ctx.targets:
        if target.scheme != "https" or target.works():
            continue
        main, tls = target.main(), ctx.pod.check(f"tls:{target.host_port}")
        insecure = ctx.pod.check(f"http.insecure:{target.url}")
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


def _target_result(ctx, target, findings):
    mine = [f for f in findings if target.url in f["targets"]]
    if not ctx.pod.probed:
        return {"target": target.url, "status": "unknown", "root_causes": [], "path": [{"hop": h, "status": "unknown"} for h in HOPS],
                "checks": []}
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
    elif (reason := untrusted_timing(ctx)) is not None:
        return _inconclusive(ctx, reason, notes)
    else:
        for rule in RULES:
            rule(ctx)
    findings = sorted((f.data for f in ctx.findings.values()), key=lambda f: FIX_ORDER.index(f["id"]))
    targets = [_target_result(ctx, t, findings) for t in ctx.targets]
    healthy = ctx.pod.probed and not findings and all(t["status"] == "ok" for t in targets)
    if healthy:
        findings = [{"id": "healthy", "layer": "none", "hop": None, "severity": "info",
                     "summary": f"every check from {ctx.ref} to every target passed", "evidence": [_quote(t.main()) for t in ctx.targets if t.main()],
                     "not_checked": [], "remediation": {"summary": "", "module": None, "params": {}}, "targets": [t.url for t in ctx.targets]}]
        for entry in targets:
            entry.update(status="healthy", root_causes=["healthy"])
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
    """One verdict per pod from what the diagnose role registered: pod_probes, netpol, coredns, cluster_network, mesh, pods."""
    if not isinstance(bundle, dict):
        raise VerdictError("the facts bundle must be a mapping")
    probes = [p for p in bundle.get("pod_probes") or [] if not _skipped(p) or _unprobed_pod(p)]
    if not probes:
        raise VerdictError("pod_probes holds no pod_probe result: run kubediag.egress.pod_probe first and pass its registered results")
    netpol = {n.get("source"): n for n in bundle.get("netpol") or [] if not _skipped(n)}
    pods = {p.get("ref") or f"{p.get('namespace')}/{p.get('name')}": p for p in bundle.get("pods") or [] if isinstance(p, dict)}
    verdicts = []
    for probe in probes:
        ref = _pod_ref(probe)
        mesh = [m for m in bundle.get("mesh") or [] if isinstance(m, dict) and not _skipped(m)
                and f"{(m.get('item') or m).get('namespace')}/{(m.get('item') or m).get('pod')}" == ref]
        verdicts.append(evaluate_pod({"pod_probe": probe, "netpol": netpol.get(ref), "coredns": bundle.get("coredns"),
                                      "cluster_network": bundle.get("cluster_network"), "mesh": mesh, "pod": pods.get(ref)}))
    return verdicts
