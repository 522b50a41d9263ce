# Copyright: (c) 2026, kubediag.egress contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

DOCUMENTATION = r"""
module: pod_probe
short_description: Run every egress check of the field guide from inside a pod's network namespace, in bounded time
version_added: 0.1.0
author:
  - kubediag.egress maintainers (@kubediag)
description:
  - Runs, inside the pod (Kubernetes exec), the tests an engineer runs by hand when a pod cannot reach an external endpoint,
    and returns structured facts for M(kubediag.egress.egress_report) and the verdict.
  - "Checks: C(/etc/resolv.conf) (is the nameserver the cluster DNS service); DNS for each target name through the pod's
    resolver, the cluster DNS IP and an external resolver (NXDOMAIN, SERVFAIL, REFUSED and timeout told apart); ICMP to each
    target and to O(known_good_ip); TCP connect to each host:port; UDP with an answer check; HTTP and HTTPS with status and
    timings (DNS, connect, TLS, first byte) and the exact failure; TLS with and without verification (the guide's C(curl -k)),
    the certificate's subject, issuer, SANs and validity; the CA bundle; proxy variables, whether the proxy answers and whether
    the target works through it or directly; path MTU by DF pings of decreasing size (black hole and its size); the egress IP
    seen by O(echo_url)."
  - "Two exec round trips: one finds the tools (curl, wget, dig, nslookup, nc, ping, openssl, bash, BusyBox applets), one runs
    every check concurrently, each under its own timeout, so a pod where everything times out answers in about O(timeout)
    seconds. A check whose tool is missing is reported as skipped, naming the tool."
  - Targets are validated strictly (host, port, path) and reach the pod's shell only as positional arguments; a value such as
    C(x;touch pwned) is refused before anything runs.
  - A container without a shell (distroless) is probed from an ephemeral debug container when O(debug_container=true);
    otherwise the result says why it was not probed and what to allow. A pod into which exec is forbidden (RBAC), or whose
    ephemeral container is refused (RBAC or Pod Security, HTTP 403), is not probed either (C(probed=false) with the reason),
    not failed, so the verdict can still answer it from the cluster's configuration.
  - With O(node_probe=true), the same checks run from the pod's node in a short-lived hostNetwork pod, deleted afterwards.
    When the pod and its node both fail a target, they also run from one other node of the cluster (RV(other_node)).
  - With O(pods), several pods are probed in one run, up to 8 at a time, and RV(results) holds each pod's result; a pod
    that cannot be probed gets C(failed=true) and C(msg) in its entry without failing the others.
options:
  namespace:
    description: Namespace of the pod. C(default) when omitted. Not with O(pods), whose entries name their namespace.
    type: str
  pod:
    description: Name of the pod to probe from. One of O(pod) and O(pods) is required.
    type: str
  container:
    description:
      - Container to exec into. Defaults to the pod's C(kubectl.kubernetes.io/default-container) annotation, else its first container.
      - Not with O(pods), whose entries may name their container.
    type: str
  pods:
    description:
      - The pods to probe, concurrently (at most 8 at a time), instead of O(namespace)/O(pod)/O(container). Each entry is a
        mapping C({namespace, name, container}) (C(container) optional, other keys ignored), as
        M(kubediag.egress.egress_pods_info) returns them in its C(pods).
      - With O(node_probe=true), pods on the same node share one node probe (one debug pod per node).
      - The module then returns RV(results), one entry per pod in this order, each what the single-pod form returns. A pod that
        cannot be reached (not found, not running, timed out) gets C(failed=true) and C(msg) in its entry (and C(probed=false) with
        the same reason) while the others are probed; the module fails only when every pod failed.
    type: list
    elements: dict
  targets:
    description:
      - The endpoints to probe, as URLs (C(https://api.example.com/health), C(http://host:8080/), C(tcp://db.example.com:5432),
        C(udp://ntp.example.com:123)) or mappings with C(host), C(port), C(protocol) (tcp or udp), C(scheme) (http, https, tcp,
        udp) and C(path).
      - At most 32. Hosts must be DNS names or IP literals; paths only URL-safe characters.
    type: list
    elements: raw
    required: true
  timeout:
    description: Seconds each check may take (1-60). The whole probe takes about this long when everything times out.
    type: int
    default: 5
  cluster_dns_ip:
    description:
      - The cluster DNS Service IP to query explicitly and to compare resolv.conf with. Default is the ClusterIP of
        C(kube-system/kube-dns).
    type: str
  cluster_domain:
    description:
      - The cluster's DNS domain. C(kubernetes.default.svc.<cluster_domain>) is resolved through the cluster DNS to tell
        "the cluster DNS does not answer" from "it answers but cannot resolve external names".
    type: str
    default: cluster.local
  external_resolver:
    description:
      - A resolver outside the cluster to query directly (the guide's C(nslookup name 8.8.8.8)). Set it to a reachable
        resolver in air-gapped clusters; an empty string skips these queries.
    type: str
    default: 8.8.8.8
  known_good_ip:
    description: An IP address that should answer ICMP from anywhere (the guide's C(ping 8.8.8.8)); not pinged when omitted.
    type: str
  echo_url:
    description: A URL whose body is the caller's IP address (the guide's C(curl ifconfig.me)), to learn the egress IP.
    type: str
  test_proxy:
    description:
      - A proxy URL (C(http://proxy.corp:3128)) to try each HTTP(S) target through, whether or not the pod's environment names
        one, so "direct egress blocked but the proxy works" can be told.
    type: str
  mtu_sizes:
    description: Packet sizes (bytes, IP MTU) of the DF pings that measure the path MTU to each target host.
    type: list
    elements: int
    default: [1500, 1472, 1450, 1400, 1350, 1280, 1000, 576]
  debug_container:
    description:
      - When the container has no shell, add an ephemeral debug container (O(debug_image)) that shares the pod's network
        namespace and probe from it. Kubernetes cannot remove an ephemeral container; it runs C(sleep) and exits by itself.
      - Needs RBAC C(patch) on C(pods/ephemeralcontainers). Never done in check mode. The module then reports C(changed=true).
    type: bool
    default: false
  debug_share_processes:
    description:
      - Also share the target container's process namespace with the ephemeral debug container (C(targetContainerName),
        C(kubectl debug --target)). The checks need only the network namespace, so this is off unless asked.
    type: bool
    default: false
  debug_image:
    description:
      - Image of the ephemeral debug container and of the node debug pod; point it at a private registry mirror if needed.
      - The default is a fixed tag. To run exactly the image you reviewed, pin its digest, for example
        C(nicolaka/netshoot:v0.13@sha256:<digest>) (C(docker buildx imagetools inspect nicolaka/netshoot:v0.13) or
        C(crane digest nicolaka/netshoot:v0.13) prints it); a digest cannot be moved to other content, a tag can.
    type: str
    default: nicolaka/netshoot:v0.13
  node_probe:
    description:
      - Also run the checks from the pod's node, in a hostNetwork pod pinned to it (in O(node_probe_namespace)), deleted
        afterwards, also on failure. Needs RBAC C(create)/C(delete) on pods there. Never done in check mode.
      - When that namespace's Pod Security level (C(pod-security.kubernetes.io/enforce) C(baseline) or C(restricted)) or GKE
        Autopilot forbids hostNetwork pods, the node part is C(probed=false) with the reason in C(node.not_probed_reason) and the
        notes, and the pod's own checks are kept.
      - When the pod and its node both fail a target, one other node is probed the same way (RV(other_node)); listing the
        nodes to choose it needs RBAC C(list) on nodes.
    type: bool
    default: false
  node_probe_namespace:
    description:
      - Namespace of the node debug pod. Defaults to the pod's namespace. Set it to a namespace that admits hostNetwork pods
        (C(pod-security.kubernetes.io/enforce=privileged)) when the pod's namespace does not.
    type: str
notes:
  - The only writes it may make are the ephemeral debug container and the node debug pod, only when allowed. The node pod
    is always deleted (and has C(activeDeadlineSeconds)); the ephemeral container cannot be removed, so adding it reports C(changed=true).
extends_documentation_fragment:
  - kubediag.egress.k8s_auth
  - kubediag.egress.info_attributes
"""

EXAMPLES = r"""
- name: Why can the checkout pod not reach the payment API?
  kubediag.egress.pod_probe:
    namespace: shop
    pod: checkout-7d9f8b7c4-x2x9q
    targets:
      - https://api.payments.example.com/health
      - tcp://db.example.com:5432
      - udp://ntp.example.com:123
    echo_url: https://ifconfig.me/ip
    known_good_ip: 1.1.1.1
  register: probe

- name: List what failed
  ansible.builtin.debug:
    msg: "{{ probe.checks | selectattr('status', 'eq', 'fail') | map(attribute='summary') | list }}"

- name: Select the pods of a workload, then probe them all in one run
  kubediag.egress.egress_pods_info:
    pod: shop/deployment/checkout
  register: selected

- name: Probe every selected pod concurrently
  kubediag.egress.pod_probe:
    pods: "{{ selected.pods }}"
    targets: [https://api.payments.example.com/health]
  register: probes

- name: Show the pods that could not be probed, and why
  ansible.builtin.debug:
    msg: "{{ probes.results | selectattr('failed', 'defined') | map(attribute='msg') | list }}"

- name: Air-gapped cluster, distroless pod, compare with the node
  kubediag.egress.pod_probe:
    context: prod-eu
    namespace: payments
    pod: api-0
    targets:
      - {host: vault.corp.example, port: 8200, scheme: https, path: /v1/sys/health}
    external_resolver: 10.0.0.2
    test_proxy: http://proxy.corp.example:3128
    debug_container: true
    debug_image: registry.corp.example/mirror/netshoot:v0.13
    node_probe: true
    timeout: 3
"""

RETURN = r"""
changed:
  description: True when an ephemeral debug container was added to the pod (Kubernetes cannot remove it), else false.
  returned: always
  type: bool
  sample: false
probed: &probed
  description: Whether the checks ran. False when the container has no shell and no debug container was allowed.
  returned: always
  type: bool
  sample: true
not_probed_reason: &not_probed_reason
  description: Why nothing ran and what to allow, when RV(probed) is false.
  returned: when probed is false
  type: str
  sample: "container 'app' of pod shop/static has no shell ... set debug_container: true ..."
pod: &pod
  description:
    - The pod probed from. C(dns_policy) (its C(spec.dnsPolicy), C(ClusterFirst) when unset) and C(host_network) say which
      resolver it uses, which the verdict needs when the pod itself could not be probed.
  returned: always
  type: dict
  sample: {namespace: shop, name: web, container: app, node: node-1, ip: 10.244.0.3, dns_policy: ClusterFirst, host_network: false}
  contains:
    namespace:
      description: The pod's namespace.
      type: str
    name:
      description: The pod's name.
      type: str
    container:
      description: The container probed from (null when it could not be chosen).
      type: str
    node:
      description: The node the pod runs on, null when it is not scheduled.
      type: str
    ip:
      description: The pod's IP address, null when it has none yet.
      type: str
    dns_policy:
      description: The pod's C(spec.dnsPolicy) (C(ClusterFirst) when unset).
      type: str
    host_network:
      description: Whether the pod runs in the node's network namespace.
      type: bool
runner: &runner
  description:
    - How the checks ran. C(mode) is C(exec), C(ephemeral_container), C(node_debug_pod) or C(none).
  returned: always
  type: dict
  sample: {mode: exec, container: app, image: null}
  contains:
    mode:
      description: C(exec), C(ephemeral_container), C(node_debug_pod) or C(none).
      type: str
    container:
      description: The container the checks ran in (the debug container's name for C(ephemeral_container)).
      type: str
    target_container:
      description: With C(ephemeral_container), the container whose namespaces the debug container joined.
      type: str
    image:
      description: The debug image used, null for C(exec).
      type: str
    node:
      description: For a node probe, the node.
      type: str
    pod:
      description: For a node probe, the debug pod (C(namespace/name)); it is deleted at the end.
      type: str
environment: &environment
  description:
    - What the container has. C(tools) maps each tool found to C({path, version, flavor}) (flavor busybox, bind, iputils,
      openbsd, gnu...); C(timeout_mode) is how checks are bounded (gnu, old, watchdog, none); C(interface_mtu) maps interfaces to MTUs.
  returned: when probed
  type: dict
  sample: {tools: {curl: {path: /usr/bin/curl, version: curl, flavor: curl}}, timeout_mode: gnu, shell: sh, interface_mtu: {eth0: 1500}}
  contains:
    tools:
      description: Tool name to C({path, version, flavor}), for each tool found.
      type: dict
    timeout_mode:
      description: How checks are bounded, C(gnu), C(old), C(watchdog) or C(none).
      type: str
    shell:
      description: C(bash) when the script ran under bash, else empty.
      type: str
    interface_mtu:
      description: Interface name to its MTU.
      type: dict
resolv_conf: &resolv_conf
  description:
    - The pod's C(/etc/resolv.conf) as a fact (C(status), C(error_class) missing, no_nameserver or not_cluster_dns, C(summary),
      C(details) with nameservers, search, ndots, options, cluster_dns_ip, nameserver_is_cluster_dns, evidence).
  returned: when probed
  type: dict
  sample: {status: ok, error_class: null, summary: "nameserver 10.96.0.10, search ...", details: {nameservers: [10.96.0.10], ndots: 5}}
  contains:
    status:
      description: C(ok) or C(fail).
      type: str
    error_class:
      description: C(missing), C(no_nameserver) or C(not_cluster_dns); null when ok.
      type: str
    summary:
      description: One sentence.
      type: str
    details:
      description: What was read.
      type: dict
      contains:
        nameservers:
          description: The nameserver lines, in order.
          type: list
          elements: str
        search:
          description: The search domains (the cluster domain is the last C(svc.<domain>) suffix's rest).
          type: list
          elements: str
        ndots:
          description: The ndots option (1 when not set), null when the file is missing.
          type: int
        options:
          description: Every option word.
          type: list
          elements: str
        cluster_dns_ip:
          description: The cluster DNS Service IP compared with, null when unknown.
          type: str
        nameserver_is_cluster_dns:
          description: Whether the first nameserver is the cluster DNS; null when the cluster DNS IP is unknown.
          type: bool
        evidence:
          description: The file's lines.
          type: str
hosts_file: &hosts_file
  description: The lines of the container's C(/etc/hosts) (entries there override DNS), null when missing.
  returned: when probed
  type: list
  elements: str
  sample: ["127.0.0.1 localhost"]
ca_bundle: &ca_bundle
  description: Whether a CA bundle is present (C(details.bundles) lists C({path, certificates})).
  returned: when probed
  type: dict
  sample: {status: ok, summary: CA bundle /etc/ssl/certs/ca-certificates.crt with 140 certificates}
  contains:
    status:
      description: C(ok) when a bundle with certificates exists, else C(fail).
      type: str
    error_class:
      description: C(missing), or null.
      type: str
    summary:
      description: One sentence naming the bundle used.
      type: str
    details:
      description: C(bundles) (each C({path, certificates})) and the C(ssl_cert_file), C(ssl_cert_dir), C(curl_ca_bundle) variables.
      type: dict
proxy_env: &proxy_env
  description:
    - Proxy variables of the container (any case) in C(details.variables), and the effective C(http_proxy), C(https_proxy),
      C(all_proxy), C(no_proxy) as curl reads them.
  returned: when probed
  type: dict
  sample: {status: ok, details: {variables: {HTTPS_PROXY: "http://proxy.corp:3128"}, https_proxy: "http://proxy.corp:3128"}}
  contains:
    status:
      description: Always C(ok) (the variables are facts, not a failure).
      type: str
    error_class:
      description: Always null.
      type: str
    summary:
      description: One sentence naming the variables set.
      type: str
    details:
      description: The variables and their effect.
      type: dict
      contains:
        variables:
          description: Every variable whose name contains C(proxy), any case, to its value (credentials redacted).
          type: dict
        http_proxy:
          description: The proxy curl uses for http URLs (only the lowercase variable), or null.
          type: str
        https_proxy:
          description: The proxy curl uses for https URLs, or null.
          type: str
        all_proxy:
          description: The fallback proxy, or null.
          type: str
        no_proxy:
          description: The hosts reached directly, or null.
          type: str
        uppercase_http_proxy_ignored:
          description: True when only C(HTTP_PROXY) is set, which curl ignores.
          type: bool
checks: &checks
  description:
    - One entry per check, C({id, kind, target, tool, params, status, error_class, summary, details, evidence, duration_ms, exit_code}).
    - C(kind) is dns, icmp, tcp, udp, http, tls, mtu, proxy or egress_ip. C(status) is ok, fail (the network said no), error
      (the check could not run properly) or skipped (C(summary) names the missing tool).
    - C(error_class) is a stable identifier; see docs/pod_probe.md for the full list per kind (nxdomain, servfail, refused,
      timeout, reset, unreachable, dns, http_status, tls_expired, tls_unknown_ca, tls_hostname_mismatch, blackhole...).
    - C(evidence) is the tool's raw output (cut at 4000 characters).
    - A check that failed by timing out is re-run once, alone with the other such checks and twice the timeout, before the
      verdict reads it; it then carries C(confirmed) (true when the failure held) and C(details.attempts), one
      C({status, error_class, elapsed_ms, start_lag_ms}) per attempt; the second attempt decides C(status).
  returned: always
  type: list
  elements: dict
  sample:
    - id: "http:https://api.example.test/health"
      kind: http
      status: fail
      error_class: timeout
      summary: "HTTPS https://api.example.test/health: timed out during connect"
      details: {http_code: null, time_connect: 0.0, timeout_stage: connect, curl_exit: 28}
      duration_ms: 5120
  contains:
    id:
      description: C(<prefix>:<subject>), the prefix one of plugins/module_utils/vocabulary.py's CHECK_PREFIXES (C(dns.pod), C(http), C(tls)...).
      type: str
    kind:
      description: dns, icmp, tcp, udp, http, tls, mtu, proxy or egress_ip.
      type: str
    target:
      description: The target URL, host or proxy the check is about.
      type: str
    tool:
      description: The tool that ran (C(dig), C(curl), C(nc (BusyBox))...), null when skipped.
      type: str
    params:
      description: What was asked; the keys depend on the kind (these are the ones the verdict reads).
      type: dict
      contains:
        name:
          description: dns, the name asked for.
          type: str
        via:
          description: dns, the resolver asked, C(pod), C(cluster) or C(external).
          type: str
        server:
          description: dns, the server asked (null for the pod's own resolver).
          type: str
        host:
          description: The host connected to or pinged.
          type: str
        port:
          description: The port connected to.
          type: int
        url:
          description: http and egress_ip, the URL fetched.
          type: str
        mode:
          description: http, C(env) (as the app would), C(direct), C(proxy) (through test_proxy) or C(insecure) (no certificate check).
          type: str
        proxy:
          description: The proxy used (C(proxy) mode and proxy reach checks), or null.
          type: str
        via_proxy:
          description: http C(env) mode, the proxy the environment sends the request through, or null.
          type: str
        by_address:
          description: True for a check run by address because the pod could not resolve the name (C(*.by_address:*) ids).
          type: bool
        external_resolver:
          description: by-address checks, the external resolver asked for the address (null when it is off).
          type: str
    status:
      description: ok, fail, error or skipped.
      type: str
    confirmed:
      description:
        - Only on a check re-run after it timed out, true when the second attempt failed too (the failure is confirmed),
          false when it passed; C(details.attempts) then holds both attempts C({status, error_class, elapsed_ms, start_lag_ms}).
      type: bool
    error_class:
      description: Why it did not pass (see docs/pod_probe.md), null when ok.
      type: str
    summary:
      description: One sentence saying what was seen.
      type: str
    details:
      description: What was measured; the keys depend on the kind (these are the ones the verdict reads, docs/pod_probe.md has all).
      type: dict
      contains:
        addresses:
          description: dns, the A records answered.
          type: list
          elements: str
        rcode:
          description: dns, the response code (C(NOERROR), C(NXDOMAIN), C(SERVFAIL)...), null without an answer.
          type: str
        server:
          description: dns, the server that answered as the tool printed it.
          type: str
        http_code:
          description: http, the status code answered, null when none came.
          type: int
        time_connect:
          description: http, seconds until the TCP connect completed (0 when it did not).
          type: float
        address:
          description: by-address checks, the address the name was tested by, null when there was none.
          type: str
        address_source:
          description: by-address checks, where that address came from, C(external) (the external resolver) or C(controller).
          type: str
        timeout_stage:
          description:
            - http, where a timed-out request stopped, C(connect), C(tls) or C(transfer) (BusyBox wget - the headers came, the body stalled).
          type: str
        issuer:
          description: tls, the certificate's issuer.
          type: str
        subject:
          description: tls, the certificate's subject.
          type: str
        sans:
          description: tls, the certificate's DNS names.
          type: list
          elements: str
        not_before:
          description: tls, start of validity.
          type: str
        not_after:
          description: tls, end of validity.
          type: str
        blackhole:
          description: mtu, whether a size vanished silently while a smaller one passed.
          type: bool
        largest_ok:
          description: mtu, the largest packet size that passed.
          type: int
        smallest_lost:
          description: mtu, the smallest size that vanished.
          type: int
        path_mtu_estimate:
          description: mtu, the path MTU estimated.
          type: int
        interface_mtu:
          description: mtu, the MTU of the pod's interface.
          type: int
        ip:
          description: egress_ip, the address the echo endpoint saw.
          type: str
    evidence:
      description: The tool's raw output, cut at 4000 characters.
      type: str
    duration_ms:
      description: How long the check ran.
      type: int
    exit_code:
      description: The tool's exit code, null when it did not run (or for the mtu summary).
      type: int
targets: &targets
  description: Each target as parsed, with its worst check status and the ids of its checks.
  returned: always
  type: list
  elements: dict
  sample: [{url: "https://api.example.test/health", host: api.example.test, port: 443, scheme: https, status: fail, check_ids: []}]
  contains:
    url:
      description: The target as given (normalised).
      type: str
    scheme:
      description: C(https), C(http), C(tcp) or C(udp).
      type: str
    host:
      description: The host name or IP address.
      type: str
    port:
      description: The port.
      type: int
    path:
      description: The URL path (C(/) for tcp and udp).
      type: str
    protocol:
      description: C(tcp) or C(udp).
      type: str
    host_is_ip:
      description: True when the host is an IP address (no DNS check).
      type: bool
    status:
      description: The worst status of its checks (error, fail, ok, skipped).
      type: str
    check_ids:
      description: The ids of the checks about it.
      type: list
      elements: str
    proxy:
      description: The proxy the environment sends it through, or null.
      type: str
summary: &summary
  description: How many checks ended ok, fail, error and skipped.
  returned: always
  type: dict
  sample: {ok: 20, fail: 3, error: 0, skipped: 2}
  contains:
    ok:
      description: Checks that passed.
      type: int
    fail:
      description: Checks the network said no to.
      type: int
    error:
      description: Checks that could not run properly.
      type: int
    skipped:
      description: Checks with no tool to run them.
      type: int
node: &node
  description:
    - The same facts (probed, environment, resolv_conf, checks, targets, summary, runner) from the node, or null when no node
      probe was asked (or in check mode).
    - "When an admission policy forbids the node debug pod, C(probed) is false, C(checks) is empty and C(not_probed_reason) says
      why, e.g. C(Pod Security baseline forbids hostNetwork in shop) followed by the API server's message."
  returned: always
  type: dict
  sample: null
  contains:
    probed: *probed
    not_probed_reason: *not_probed_reason
    runner: *runner
    environment: *environment
    resolv_conf: *resolv_conf
    hosts_file: *hosts_file
    ca_bundle: *ca_bundle
    proxy_env: *proxy_env
    checks: *checks
    targets: *targets
    summary: *summary
    exec_round_trips: &exec_round_trips
      description: Exec round trips used (2 normally, 3 when checks that timed out were re-run).
      returned: when probed
      type: int
      sample: 2
    concurrent_execs: &concurrent_execs
      description: How many execs ran the checks at once (more than one when one command would exceed the API server's URL limit).
      returned: when probed
      type: int
      sample: 1
    duration_ms: &duration_ms
      description: Wall time of the whole probe in milliseconds.
      returned: always
      type: int
      sample: 1240
    confirmed_checks: &confirmed_checks
      description: How many checks were re-run after timing out (see RV(checks)).
      returned: when probed
      type: int
      sample: 0
    timing: &timing
      description:
        - The probe's own scheduling. C(exec_rtt_ms) is the detection exec's time from its upgraded connection to its end (the
          API server's own latency left out); C(max_start_lag_ms) the latest start of a check after the probe script's own
          start, in the round that decided the statuses (the confirmation when there was one).
        - C(trusted) is false, with C(reason), when a check started more than half its timeout late, an exec round trip took
          more than half a check's timeout, or the confirmation exec failed; egress_verdict then gives the pod C(inconclusive)
          when a failure rests only on a timeout.
      returned: when probed
      type: dict
      sample: {trusted: true, reason: null, exec_rtt_ms: 150, max_start_lag_ms: 20,
               rounds: [{round: checks, checks: 20, timeout_s: 5, elapsed_ms: 310, max_start_lag_ms: 20}]}
      contains:
        trusted:
          description: Whether a timeout can be read as the network not answering.
          type: bool
        reason:
          description: Why not, null when trusted.
          type: str
        exec_rtt_ms:
          description: The detection exec's round trip.
          type: int
        max_start_lag_ms:
          description: The latest start of a check after the script's start, in the deciding round.
          type: int
        rounds:
          description: Each round of checks, C({round, checks, timeout_s, elapsed_ms, max_start_lag_ms}); C(round) is C(checks) or C(confirmation).
          type: list
          elements: dict
other_node: &other_node
  description:
    - Only when the pod and its node both fail a target (the target's own HTTP, TCP or UDP check), the same facts from one
      other node of the cluster, probed the same way (a C(kdprobe-node-<run id>-other) hostNetwork pod, deleted afterwards),
      so that a fault of the pod's node can be told from the cluster's way out. Null otherwise (also with O(node_probe=false)
      and in check mode).
    - C(choice) says which node and why, C({node, why, zone, pod_node_zone, nodes_in_cluster}). The node is Ready,
      schedulable, not being deleted, runs Linux and is not the pod's; preferred are another zone
      (C(topology.kubernetes.io/zone)), then a node without NoSchedule/NoExecute taints, then the name.
    - C(probed) is false with C(not_probed_reason) when the nodes cannot be listed, no other node fits (C(choice.node) null;
      C(choice.nodes_in_cluster) 1 for a single-node cluster), or its debug pod is refused (Pod Security) or does not start.
  returned: always
  type: dict
  sample:
    probed: true
    runner: {mode: node_debug_pod, node: node-1, pod: shop/kdprobe-node-d05f5b25-other}
    choice: {node: node-1, zone: eu-west-1b, pod_node_zone: eu-west-1a, nodes_in_cluster: 3,
             why: "Ready and schedulable, in zone eu-west-1b, not eu-west-1a like node-2, untainted; 2 of the cluster's 2 other nodes could be compared"}
    checks: []
  contains:
    probed: *probed
    not_probed_reason: *not_probed_reason
    runner: *runner
    environment: *environment
    resolv_conf: *resolv_conf
    hosts_file: *hosts_file
    ca_bundle: *ca_bundle
    proxy_env: *proxy_env
    checks: *checks
    targets: *targets
    summary: *summary
    exec_round_trips: *exec_round_trips
    concurrent_execs: *concurrent_execs
    duration_ms: *duration_ms
    confirmed_checks: *confirmed_checks
    timing: *timing
    choice:
      description: Which node was chosen and why.
      type: dict
      contains:
        node:
          description: The node probed, null when none fits.
          type: str
        why:
          description: Why this node.
          type: str
        zone:
          description: Its zone label, null when unlabelled.
          type: str
        pod_node_zone:
          description: The zone of the pod's node, null when unlabelled.
          type: str
        nodes_in_cluster:
          description: How many nodes the cluster has.
          type: int
notes: &notes
  description: What was not checked and why (cluster DNS IP unknown, node probe skipped in check mode, debug container used...).
  returned: always
  type: list
  elements: str
  sample: []
exec_round_trips: *exec_round_trips
concurrent_execs: *concurrent_execs
duration_ms: *duration_ms
confirmed_checks: *confirmed_checks
timing: *timing
exec_reruns: &exec_reruns
  description:
    - How many probe commands were run again because the connection to the API server dropped mid-exec (the probes only
      read, so a rerun is safe); 0 normally.
  returned: always
  type: int
  sample: 0
results:
  description:
    - With O(pods), one entry per pod in the order given, each with the keys the single-pod form returns (RV(pod),
      RV(probed), RV(checks), RV(targets), RV(node), RV(notes)...). A pod that could not be probed has C(failed=true), C(msg)
      (what happened, what to do), C(probed=false) and C(not_probed_reason) (the same sentence), and no checks.
    - Without O(pods), not returned; the single pod's keys are at the top level.
  returned: when pods is given
  type: list
  elements: dict
  sample:
    - {pod: {namespace: shop, name: web-0, container: web, node: node-1, ip: 10.244.0.3}, probed: true, changed: false, checks: []}
    - {pod: {namespace: shop, name: web-1, container: null}, failed: true, probed: false, changed: false,
       msg: "pod shop/web-1 not found: check the pod name and namespace (kubectl get pods -n shop).", checks: []}
  contains:
    failed:
      description: True for a pod that could not be probed.
      type: bool
    msg:
      description: For a pod that could not be probed, what happened and what to do.
      type: str
    changed:
      description: True when an ephemeral debug container was added to this pod.
      type: bool
    pod: *pod
    probed: *probed
    not_probed_reason: *not_probed_reason
    runner: *runner
    environment: *environment
    resolv_conf: *resolv_conf
    hosts_file: *hosts_file
    ca_bundle: *ca_bundle
    proxy_env: *proxy_env
    checks: *checks
    targets: *targets
    summary: *summary
    node: *node
    other_node: *other_node
    notes: *notes
    exec_round_trips: *exec_round_trips
    concurrent_execs: *concurrent_execs
    duration_ms: *duration_ms
    confirmed_checks: *confirmed_checks
    timing: *timing
    exec_reruns: *exec_reruns
failed_pods:
  description:
    - With O(pods), when no pod could be probed (the task fails, and C(msg) names every pod and why), each pod's failed entry,
      C({pod, failed, msg, probed, not_probed_reason}).
  returned: when every pod of pods failed
  type: list
  elements: dict
  sample:
    - {pod: {namespace: shop, name: web-1, container: null}, failed: true, probed: false,
       msg: "pod shop/web-1 not found: check the pod name and namespace (kubectl get pods -n shop)."}
"""

from ansible_collections.kubediag.egress.plugins.module_utils.k8s.module import KubeModule  # noqa: E402 - imports follow the documentation
from ansible_collections.kubediag.egress.plugins.module_utils.probe.runner import (  # noqa: E402
    DEFAULT_DEBUG_IMAGE,
    DEFAULT_EXTERNAL_RESOLVER,
    AllPodsFailed,
    build_options,
    probe_pod,
    probe_pods,
)
from ansible_collections.kubediag.egress.plugins.module_utils.probe.script import DEFAULT_MTU_SIZES  # noqa: E402
from ansible_collections.kubediag.egress.plugins.module_utils.probe.targets import parse_targets, url_credentials  # noqa: E402

ARGUMENT_SPEC = {
    "namespace": {"type": "str"},
    "pod": {"type": "str"},
    "container": {"type": "str"},
    "pods": {"type": "list", "elements": "dict"},
    "targets": {"type": "list", "elements": "raw", "required": True},
    "timeout": {"type": "int", "default": 5},
    "cluster_dns_ip": {"type": "str"},
    "cluster_domain": {"type": "str", "default": "cluster.local"},
    "external_resolver": {"type": "str", "default": DEFAULT_EXTERNAL_RESOLVER},
    "known_good_ip": {"type": "str"},
    "echo_url": {"type": "str"},
    "test_proxy": {"type": "str"},
    "mtu_sizes": {"type": "list", "elements": "int", "default": list(DEFAULT_MTU_SIZES)},
    "debug_container": {"type": "bool", "default": False},
    "debug_share_processes": {"type": "bool", "default": False},
    "debug_image": {"type": "str", "default": DEFAULT_DEBUG_IMAGE},
    "node_probe": {"type": "bool", "default": False},
    "node_probe_namespace": {"type": "str"},
}


def _warn_not_probed(module, result, prefix=""):
    if not result["probed"]:
        module.module.warn(prefix + result["not_probed_reason"])
    if result["node"] is not None and not result["node"]["probed"]:
        module.module.warn(f"{prefix}node not probed: {result['node']['not_probed_reason']}")


def main():
    module = KubeModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True, required_one_of=[("pod", "pods")],
                        mutually_exclusive=[("pods", "pod"), ("pods", "namespace"), ("pods", "container")])
    params = module.params
    # Refused below, but the invocation Ansible echoes must not carry them either.
    for url in (params["test_proxy"], params["echo_url"], *params["targets"]):
        module.module.no_log_values.update(url_credentials(url))
    try:
        # Validate everything before the first API call: a bad target never reaches a pod.
        parse_targets(params["targets"])
        options = build_options(timeout=params["timeout"], cluster_dns_ip=params["cluster_dns_ip"],
                                external_resolver=params["external_resolver"], known_good_ip=params["known_good_ip"],
                                echo_url=params["echo_url"], test_proxy=params["test_proxy"], mtu_sizes=params["mtu_sizes"],
                                cluster_domain=params["cluster_domain"])
        common = {"options": options, "debug_container": params["debug_container"], "debug_image": params["debug_image"],
                  "node_probe": params["node_probe"], "check_mode": module.check_mode,
                  "debug_share_processes": params["debug_share_processes"], "node_probe_namespace": params["node_probe_namespace"]}
        if params["pods"] is not None:
            result = probe_pods(module.client, params["pods"], params["targets"], **common)
            for entry in result["results"]:
                if not entry.get("failed"):
                    _warn_not_probed(module, entry, f"{entry['pod']['namespace']}/{entry['pod']['name']}: ")
            module.exit_json(**result)
        result = probe_pod(module.client, params["namespace"] or "default", params["pod"], params["targets"],
                           container=params["container"], **common)
        _warn_not_probed(module, result)
        module.exit_json(**result)
    except AllPodsFailed as exc:
        # Not `results`: Ansible and the diagnose role's rescue read failed entries there as a loop's, and would report the
        # first pod's message instead of this one, which names every pod.
        module.fail_from_exception(exc, changed=False, failed_pods=exc.results)
    # Every failure becomes a message, never a traceback.
    except Exception as exc:  # pylint: disable=broad-exception-caught
        module.fail_from_exception(exc, changed=False)


if __name__ == "__main__":
    main()
