"""pod_probe: run every check of the field guide inside a pod's network namespace, in two exec round trips (three when a
check timed out and is confirmed).

probe(run, targets, options) is the core: `run(argv, timeout) -> ExecResult` executes one command in the container
(kubernetes exec, or anything else that behaves the same, such as the lab's `kdlab exec` in tests). probe_pod() adds
the Kubernetes side: the pod and container checks, the cluster DNS IP, the ephemeral debug container for images without
a shell, the node debug pod for the node comparison (and, when the pod and its node both fail, one on another node of the
cluster), and cleanup of everything it created.
"""

import copy
import dataclasses
import re
import secrets
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import quote_plus

from ansible_collections.kubediag.egress.plugins.module_utils.cluster.destinations import resolve_host
from ansible_collections.kubediag.egress.plugins.module_utils.k8s.client import ExecResult, KubeError, api_path, validate_name
from ansible_collections.kubediag.egress.plugins.module_utils.probe import facts as probe_facts
from ansible_collections.kubediag.egress.plugins.module_utils.probe import script as probe_script
from ansible_collections.kubediag.egress.plugins.module_utils.probe.targets import (
    parse_http_url,
    parse_proxy_url,
    parse_targets,
    validate_host,
    validate_ip,
    validate_mtu_sizes,
    validate_timeout,
)
from ansible_collections.kubediag.egress.plugins.module_utils.vocabulary import CHECK_STATUSES, check_id

# A tag, never "latest": the same run gets the same tools; docs/pod_probe.md shows how to pin a digest.
DEFAULT_DEBUG_IMAGE = "nicolaka/netshoot:v0.13"
DEFAULT_EXTERNAL_RESOLVER = "8.8.8.8"
EVIDENCE_LIMIT = 4000
# The exec command travels in the request URL; API servers and proxies in front of them commonly cap a request line
# at 8 KiB, so checks are spread over several concurrent execs when one would exceed this.
EXEC_URL_BUDGET = 7000
DETECT_TIMEOUT = 20.0
EXEC_OVERHEAD = 15.0
NO_SHELL_MARKERS = ("executable file not found", "no such file or directory", "not found in $path")
MANAGED_BY = "kubediag.egress"
# Every object one probe_pod run creates carries its run id, so an ambiguous create can be found and undone.
RUN_ID_LABEL = "kubediag.egress/run-id"
STATUS_ORDER = ("error", "fail", "ok", "skipped")
# How the two admission policies that forbid a hostNetwork pod say so: Pod Security admission ("baseline:latest") and
# GKE Autopilot's Warden webhook (its constraint name).
POD_SECURITY_REFUSAL = re.compile(r'violates PodSecurity "(?P<level>[a-z]+):[^"]*"')
AUTOPILOT_REFUSAL = "autogke-disallow-hostnamespaces"
# A check that failed by timing out may only have met a busy machine (a starved DNS server, a late scheduler): it is re-run
# once with CONFIRM_FACTOR x the timeout (at most CONFIRM_TIMEOUT_CAP s) before any rule may conclude from it. ICMP echo is
# not re-run: no rule concludes from a lost ping, and many healthy endpoints drop ICMP, so re-running it would add a round
# to every healthy diagnosis of them.
CONFIRM_FACTOR = 2
CONFIRM_TIMEOUT_CAP = 60
UNCONFIRMED_KINDS = ("icmp",)
# A tool that failed on its own name lookup (curl, nc, openssl resolve the host themselves, through the C library's resolver
# with its search list: several queries one after the other) is re-run too: under load that lookup gives up ("Temporary
# failure in name resolution") while the probe's single DNS queries still answer, as 20 healthy lab clusters at -f 20 showed.
LOOKUP_FAILURE_CLASSES = ("dns", "proxy_dns")
# The probe cannot trust its timings when a check of the deciding round started more than START_LAG_LIMIT x its timeout
# after the script did (the shell needed half a check's budget just to fork it: the tools and the servers they wait for
# are starved too), or when the detection exec (a few dozen forks and one exec round trip: 0.2-0.4 s here at -f 5, 3.9 s
# median at 40 clusters -f 40) took more than EXEC_RTT_LIMIT x the timeout. At one whole timeout the last false alarm of
# 40 clusters at -f 40 passed (a SERVFAIL twice, from a lab CoreDNS starved with it, exec round trip 4.3 s of 5).
START_LAG_LIMIT = 0.5
EXEC_RTT_LIMIT = 0.5
# probe_pods probes this many pods at once at most: each holds up to two execs open for its timeout, and they all share the
# client's rate limit, so more threads would only queue there.
MAX_CONCURRENT_PODS = 8
ZONE_LABEL = "topology.kubernetes.io/zone"
# How long, after the tool detection, the probe waits for the controller's name resolution (the by-address fallback):
# a name the controller knows resolves in milliseconds, well within the detection exec; one it does not may take seconds.
CONTROLLER_RESOLVE_WAIT = 0.25


class AllPodsFailed(KubeError):
    """Every pod of a probe_pods call failed; `results` holds each pod's failed entry."""

    def __init__(self, results):
        reasons = "; ".join(r["msg"] for r in results)
        super().__init__(f"every pod failed to be probed ({len(results)} of {len(results)}): {reasons}")
        self.results = results


class NoShell(Exception):
    """The container has no /bin/sh (a distroless or scratch image): nothing can run in it."""


class NodeProbeForbidden(KubeError):
    """An admission policy of the namespace forbids the node debug pod: the node part is not probed, the pod part stands.
    `advice` says what would allow it."""

    def __init__(self, message, advice, status=None, server_message=None):
        super().__init__(message, status=status, server_message=server_message)
        self.advice = advice


def build_options(timeout=5, cluster_dns_ip=None, external_resolver=DEFAULT_EXTERNAL_RESOLVER, known_good_ip=None, echo_url=None,
                  test_proxy=None, mtu_sizes=None, cluster_domain="cluster.local") -> probe_script.ProbeOptions:
    """Validated ProbeOptions from the module's option values. Raises TargetError naming the bad value."""
    return probe_script.ProbeOptions(
        timeout=validate_timeout(timeout),
        cluster_dns_ip=validate_ip(cluster_dns_ip, "cluster_dns_ip") if cluster_dns_ip else None,
        cluster_domain=validate_host(cluster_domain, "cluster_domain"),
        external_resolver=validate_ip(external_resolver, "external_resolver") if external_resolver else None,
        known_good_ip=validate_ip(known_good_ip, "known_good_ip") if known_good_ip else None,
        echo_url=parse_http_url(echo_url, "echo_url") if echo_url else None,
        test_proxy=parse_proxy_url(test_proxy, "test_proxy") if test_proxy else None,
        mtu_sizes=tuple(validate_mtu_sizes(mtu_sizes)) if mtu_sizes is not None else probe_script.DEFAULT_MTU_SIZES,
    )


def _encoded_length(argv: list[str]) -> int:
    return sum(len(quote_plus(arg)) + len("&command=") for arg in argv)


def batches(checks: list, timeout: int, timeout_mode: str) -> list[list]:
    """Split the runnable checks into groups whose exec argv fits EXEC_URL_BUDGET (one group in the usual case)."""
    base = _encoded_length(probe_script.probe_argv([], timeout, timeout_mode, probe_script.new_nonce()))
    groups, current, size = [], [], base
    for check in checks:
        if check.record is None:
            continue
        cost = len(quote_plus(probe_script.encode_record(check.record))) + len("&command=")
        if current and size + cost > EXEC_URL_BUDGET:
            groups.append(current)
            current, size = [], base
        current.append(check)
        size += cost
    if current:
        groups.append(current)
    return groups


def _is_no_shell(result: ExecResult) -> bool:
    text = f"{result.error} {result.stdout} {result.stderr}".lower()
    return (result.exit_code is None or result.exit_code in (126, 127)) and any(marker in text for marker in NO_SHELL_MARKERS)


def detect(run) -> tuple:
    """(the container's tools and environment, the detection exec's time in ms as _exec_ms measures it)."""
    started = time.monotonic()
    result = run(probe_script.detect_argv(), DETECT_TIMEOUT)
    if _is_no_shell(result):
        raise NoShell(result.error or result.stdout.strip() or result.stderr.strip())
    if result.exit_code is None:
        raise KubeError(f"the exec that looks for tools in the container failed: {result.error}")
    environment = probe_script.parse_detection(result.stdout)
    if not environment.tools and result.exit_code != 0:
        raise KubeError(f"the tool detection script failed in the container (exit {result.exit_code}): {result.stderr.strip()[:300]}")
    return environment, _exec_ms(result, started)


def _evidence(output: str) -> str:
    if len(output) <= EVIDENCE_LIMIT:
        return output
    return output[:EVIDENCE_LIMIT] + f"\n[... {len(output) - EVIDENCE_LIMIT} more characters]"


def _check_entry(check, parsed, raw) -> dict:
    entry = {"id": check.id, "kind": check.kind, "target": check.target, "tool": check.tool or None, "params": check.params}
    if parsed is None:
        entry.update(status="skipped", error_class="tool_missing", summary=check.skipped_reason, details={}, evidence="", duration_ms=0,
                     exit_code=None)
        return entry
    entry.update(parsed, evidence=_evidence(raw["output"]), duration_ms=raw["duration_ms"], exit_code=raw["exit_code"])
    return entry


def _run_batches(run, groups: list[list], environment, timeout: int) -> dict:
    """check id -> raw result, every batch in its own concurrent exec, each check under `timeout`."""
    nonce = probe_script.new_nonce()

    def one(group):
        # a by-address check takes up to three timed steps in turn: the pod's resolution, the external one, the check
        steps = 3 if any(check.record[0] == "ba" for check in group) else 1
        result = run(probe_script.probe_argv(group, timeout, environment.timeout_mode, nonce), steps * timeout + EXEC_OVERHEAD)
        if result.exit_code is None and not result.stdout:
            raise KubeError(f"the probe exec failed: {result.error}")
        return group, probe_script.split_probe_output(result.stdout, len(group), nonce)

    raw = {}
    with ThreadPoolExecutor(max_workers=max(1, len(groups))) as pool:
        for group, results in pool.map(one, groups):
            for check, result in zip(group, results, strict=True):
                raw[check.id] = result
    return raw


NO_RESULT = {"output": "", "duration_ms": None, "start_lag_ms": None, "exit_code": None}


def parse_result(check, result):
    """The fact of one runnable check from its raw result (None or no exit code: the exec was cut short)."""
    if result is None or result["exit_code"] is None:
        return probe_facts.fact("error", "no_result", "the check did not report (the exec was cut short)")
    return probe_facts.parse_check(check.kind, check.tool, result["exit_code"], result["output"], check.params)


def confirmation_timeout(timeout: int) -> int:
    return max(timeout, min(CONFIRM_FACTOR * timeout, CONFIRM_TIMEOUT_CAP))


def to_confirm(checks: list, raw: dict) -> list:
    """The runnable checks whose first attempt failed by timing out or on their own name lookup, and that a rule may
    conclude from: a DF ping only when a smaller size to the same host passed (a black hole is what could be concluded from
    it)."""
    parsed = {check.id: parse_result(check, raw.get(check.id)) for check in checks if check.record is not None}
    passed_sizes: dict[str, list] = {}
    for check in checks:
        if check.kind == "mtu" and check.id in parsed and parsed[check.id]["status"] == "ok":
            passed_sizes.setdefault(check.target, []).append(check.params["size"])
    chosen = []
    for check in checks:
        fact = parsed.get(check.id)
        if fact is None or check.kind in UNCONFIRMED_KINDS:
            continue
        if check.kind != "dns" and fact["error_class"] in LOOKUP_FAILURE_CLASSES:
            chosen.append(check)
            continue
        if not probe_facts.timed_out(check.kind, fact["error_class"]):
            continue
        if check.kind == "mtu" and not any(size < check.params["size"] for size in passed_sizes.get(check.target, [])):
            continue
        chosen.append(check)
    return chosen


def _attempt(parsed, result) -> dict:
    return {"status": parsed["status"], "error_class": parsed["error_class"], "elapsed_ms": result["duration_ms"],
            "start_lag_ms": result.get("start_lag_ms")}


def _confirmed(check, first_raw, second_raw):
    """(fact, raw) of a re-run check: the second attempt decides; details.attempts records both, `confirmed` says whether
    the failure held, the evidence shows both outputs."""
    first, second = parse_result(check, first_raw), parse_result(check, second_raw)
    first_raw, second_raw = first_raw or NO_RESULT, second_raw or NO_RESULT
    second["details"]["attempts"] = [_attempt(first, first_raw), _attempt(second, second_raw)]
    second["confirmed"] = second["status"] != "ok"
    raw = dict(second_raw, output=f"--- attempt 1 (exit {first_raw['exit_code']})\n{first_raw['output']}\n"
                                  f"--- attempt 2, alone with a longer timeout (exit {second_raw['exit_code']})\n{second_raw['output']}")
    return second, raw


def assemble(checks: list, raw: dict, environment, options, targets: list, confirmations=None) -> dict:
    """The facts: local facts, one entry per check (DF pings folded into one MTU entry per host), per-target status.
    `confirmations` holds the raw results of the checks re-run after timing out: their second attempt decides."""
    confirmations = confirmations or {}
    mtu_by_host: dict[str, list] = {}
    entries = []
    for check in checks:
        result = raw.get(check.id)
        if check.record is None:
            entries.append(_check_entry(check, None, None))
            continue
        if check.id in confirmations:
            parsed, result = _confirmed(check, result, confirmations[check.id])
        else:
            parsed, result = parse_result(check, result), result or NO_RESULT
        if check.kind == "mtu" and parsed["error_class"] != "no_result":   # a size that never reported stays an entry of its own
            mtu_by_host.setdefault(check.target, []).append((check, parsed, result))
            continue
        entries.append(_check_entry(check, parsed, result))
    interface_mtu = environment.interface_mtu.get("eth0") or max((m for i, m in environment.interface_mtu.items() if i != "lo"), default=None)
    for host, items in mtu_by_host.items():
        summary = probe_facts.summarize_mtu(host, [parsed for _check, parsed, _raw in items], interface_mtu)
        evidence = "\n".join(f"--- {check.params['size']} bytes (exit {result['exit_code']})\n{result['output']}" for check, _parsed, result in items)
        entry = {"id": check_id("mtu", host), "kind": "mtu", "target": host, "tool": "ping -M do", "params": {"host": host,
                 "sizes": [check.params["size"] for check, _parsed, _raw in items]}, **summary,
                 "evidence": _evidence(evidence), "duration_ms": max((raw["duration_ms"] or 0) for _check, _parsed, raw in items), "exit_code": None}
        rerun = [(check, parsed) for check, parsed, _raw in items if "confirmed" in parsed]
        if rerun:
            entry["details"]["attempts"] = [dict(attempt, size=check.params["size"]) for check, parsed in rerun
                                            for attempt in parsed["details"]["attempts"]]
            entry["confirmed"] = any(parsed["confirmed"] for _check, parsed in rerun)
        entries.append(entry)
    settings = probe_script.proxy_settings(environment.env)
    facts = {
        "environment": environment.as_dict(),
        "resolv_conf": probe_facts.parse_resolv_conf(environment.resolv_conf, options.cluster_dns_ip),
        "hosts_file": environment.hosts,
        "ca_bundle": probe_facts.ca_bundle_fact(environment.ca_bundles, environment.env),
        "proxy_env": probe_facts.proxy_env_fact(environment.env, settings),
        "checks": entries,
        "targets": [_target_summary(t, entries, settings) for t in targets],
    }
    facts["summary"] = {status: sum(1 for e in entries if e["status"] == status) for status in CHECK_STATUSES}
    return facts


def _target_summary(target, entries: list, settings: dict) -> dict:
    related = [e for e in entries if e["target"] in (target.url, target.host)]
    statuses = [e["status"] for e in related if e["status"] != "skipped"]
    worst = next((s for s in STATUS_ORDER if s in statuses), "skipped")
    return {**target.as_dict(), "status": worst, "check_ids": [e["id"] for e in related],
            "proxy": probe_script.proxy_for(target, settings)}


def controller_addresses(targets: list, resolve=resolve_host):
    """Start resolving the named targets on the controller. The function returned gives host -> (IPv4 address,
    "controller") for the names resolved by then, waiting at most `wait` seconds: the fallback address of the by-address
    checks when the external resolver gives the pod nothing. A daemon thread, so a resolver that never answers delays
    neither the probe nor the module's exit."""
    names = list(dict.fromkeys(t.host for t in targets if not t.is_ip))
    found = {}

    def work():
        for name in names:
            try:
                address = next((a for a in resolve(name) if ":" not in a), None)
            except ValueError:
                continue
            if address:
                found[name] = (address, "controller")

    worker = threading.Thread(target=work, name="kubediag-controller-resolve", daemon=True)
    worker.start()

    def collect(wait: float) -> dict:
        worker.join(wait)
        return dict(found)
    return collect


def _max_lag(raw: dict, checks: list):
    lags = [raw[check.id]["start_lag_ms"] for check in checks if raw.get(check.id) and raw[check.id]["start_lag_ms"] is not None]
    return max(lags, default=None)


def _exec_ms(result, started: float) -> int:
    """The detection exec's time in the container: from its upgraded connection to its end, so that a slow API server (its
    latency, its rate limit, retried upgrades) is not read as a busy container; the whole call when that is not measured."""
    measured = getattr(result, "stream_duration", None)
    return int((measured if measured is not None else time.monotonic() - started) * 1000)


def timing_verdict(timeout: int, exec_rtt_ms, max_start_lag_ms) -> dict:
    """Whether the probe's own scheduling leaves its timings meaningful: {trusted, reason, exec_rtt_ms, max_start_lag_ms}.
    `timeout` is the per-check timeout of the round that decided the checks' statuses."""
    reasons = []
    if exec_rtt_ms is not None and exec_rtt_ms > EXEC_RTT_LIMIT * timeout * 1000:
        reasons.append(f"an exec round trip into the container took {exec_rtt_ms} ms, more than half of the {timeout} s a check may take")
    if max_start_lag_ms is not None and max_start_lag_ms > START_LAG_LIMIT * timeout * 1000:
        reasons.append(f"checks started up to {max_start_lag_ms} ms after the probe did, more than half of their {timeout} s timeout: "
                       "the container was too busy for a timeout to mean the network did not answer")
    return {"trusted": not reasons, "reason": "; ".join(reasons) or None, "exec_rtt_ms": exec_rtt_ms, "max_start_lag_ms": max_start_lag_ms}


def probe(run, targets: list, options: probe_script.ProbeOptions, by_address: bool = False, resolve=resolve_host) -> dict:
    """The round trips through `run` (detection, the checks, the confirmation of those that timed out); returns the facts.
    Raises NoShell or KubeError.

    by_address adds the by-address checks (the pod's probe; the node's has no use for them), their fallback address
    resolved on the controller while the tools are detected. The node probe runs at the same time as the pod's, so its
    answers are never there before the pod's exec: the controller's are the only ones to hand."""
    started = time.monotonic()
    fallback = controller_addresses(targets, resolve) if by_address else None
    environment, exec_rtt_ms = detect(run)
    checks = probe_script.plan_checks(targets, environment, options, by_address=fallback(CONTROLLER_RESOLVE_WAIT) if fallback else None)
    groups = batches(checks, options.timeout, environment.timeout_mode)
    round_started = time.monotonic()
    raw = _run_batches(run, groups, environment, options.timeout) if groups else {}
    rounds = [{"round": "checks", "checks": sum(len(g) for g in groups), "timeout_s": options.timeout,
               "elapsed_ms": int((time.monotonic() - round_started) * 1000), "max_start_lag_ms": _max_lag(raw, checks)}]
    rerun = to_confirm(checks, raw)
    confirmations, confirmation_failed = {}, None
    if rerun:
        # Only the checks to confirm, in one exec of their own, concurrently with each other: one after the other would cost
        # one longer timeout per check, and a fully broken pod has about twenty of them.
        timeout = confirmation_timeout(options.timeout)
        round_started = time.monotonic()
        try:
            confirmations = _run_batches(run, batches(rerun, timeout, environment.timeout_mode), environment, timeout)
        except KubeError as error:
            # The first round's facts stand; their timeouts stay unconfirmed, which the timing says.
            confirmation_failed = f"the exec that re-runs the checks that timed out failed ({error}): their timeouts are not confirmed"
        rounds.append({"round": "confirmation", "checks": len(rerun), "timeout_s": timeout,
                       "elapsed_ms": int((time.monotonic() - round_started) * 1000), "max_start_lag_ms": _max_lag(confirmations, rerun)})
    facts = assemble(checks, raw, environment, options, targets, confirmations)
    # The round that decided the statuses is judged: the confirmation when there was one.
    timing = timing_verdict(rounds[-1]["timeout_s"], exec_rtt_ms, rounds[-1]["max_start_lag_ms"])
    if confirmation_failed:
        timing.update(trusted=False, reason="; ".join(filter(None, (timing["reason"], confirmation_failed))))
    facts["timing"] = {**timing, "rounds": rounds}
    facts["exec_round_trips"] = 1 + (1 if groups else 0) + (1 if rerun else 0)
    facts["concurrent_execs"] = len(groups)
    facts["confirmed_checks"] = len(rerun)
    facts["duration_ms"] = int((time.monotonic() - started) * 1000)
    return facts


# --- the Kubernetes side ------------------------------------------------------------------------------------------


def _exec_runner(client, namespace: str, pod: str, container: str):
    def run(argv, timeout):
        return client.exec_in_pod(namespace, pod, argv, container=container, timeout=timeout, read_only=True)  # probes only read
    return run


def read_pod(client, namespace: str, name: str):
    try:
        return client.request("GET", api_path("v1", "pods", namespace, name), what=f"pod {namespace}/{name}")
    except KubeError as error:
        if error.status == 404:
            raise KubeError(f"pod {namespace}/{name} not found: check the pod name and namespace (kubectl get pods -n {namespace}).",
                            status=404) from error
        raise


def _ref(pod) -> str:
    return f"{pod['metadata']['namespace']}/{pod['metadata']['name']}"


def pick_container(pod, wanted) -> str:
    names = [c["name"] for c in pod["spec"]["containers"]]
    ref = _ref(pod)
    if wanted:
        if wanted not in names:
            raise KubeError(f"pod {ref} has no container named {wanted!r} (containers: {', '.join(names)}); pass one of those as container.")
        return wanted
    annotations = pod["metadata"].get("annotations") or {}
    default = annotations.get("kubectl.kubernetes.io/default-container")
    return default if default in names else names[0]


def require_running(pod, container: str) -> None:
    ref, status = _ref(pod), pod.get("status") or {}
    phase = status.get("phase")
    if phase != "Running":
        raise KubeError(f"pod {ref} is {phase or 'in an unknown phase'}, not Running: exec needs a running pod. Wait for it to start "
                        f"(kubectl describe pod -n {pod['metadata']['namespace']} {pod['metadata']['name']} shows why it is not running).")
    for container_status in status.get("containerStatuses") or []:
        if container_status.get("name") == container and not (container_status.get("state") or {}).get("running"):
            raise KubeError(f"container {container!r} of pod {ref} is not running; exec needs a running container.")


def discover_cluster_dns_ip(client):
    """The kube-dns Service's ClusterIP, and a note when it could not be read."""
    try:
        service = client.request("GET", api_path("v1", "services", "kube-system", "kube-dns"), what="service kube-system/kube-dns")
    except KubeError as error:
        return None, f"cluster DNS IP unknown ({error}); pass cluster_dns_ip to compare resolvers"
    ip = (service.get("spec") or {}).get("clusterIP")
    return (ip, "") if ip and ip != "None" else (None, "service kube-system/kube-dns has no ClusterIP; pass cluster_dns_ip")


def _wait_for(predicate, what: str, timeout: float, interval: float = 0.2):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise KubeError(f"{what} did not start within {timeout:g}s; check the image can be pulled and the node has room.")
        time.sleep(interval)


def _clear_refusal(error: KubeError) -> bool:
    """A 4xx answer means the API server refused the write; anything else (a dropped connection, a 5xx, a timeout) leaves
    it unknown whether the object was created."""
    return error.status is not None and 400 <= error.status < 500


def add_debug_container(client, pod, target_container: str, image: str, lifetime: int, run_id: str, share_processes: bool = False,
                        start_timeout: float = 60.0) -> str:
    """An ephemeral container in the pod's network namespace. Kubernetes cannot remove one, so it runs `sleep lifetime`
    and exits by itself once the probe is done. Only with share_processes does it also join the target container's
    process namespace (targetContainerName), which the network checks do not need."""
    namespace, name = pod["metadata"]["namespace"], pod["metadata"]["name"]
    debug_name = f"kdprobe-{run_id}"
    spec = {"name": debug_name, "image": image, "command": ["sleep", str(lifetime)], "stdin": False, "tty": False}
    if share_processes:
        spec["targetContainerName"] = target_container
    what = f"ephemeral debug container {debug_name} in pod {namespace}/{name}"

    def statuses():
        current = client.request("GET", api_path("v1", "pods", namespace, name), what=f"pod {namespace}/{name}")
        found = [s for s in (current.get("status") or {}).get("ephemeralContainerStatuses") or [] if s.get("name") == debug_name]
        declared = any(c.get("name") == debug_name for c in (current.get("spec") or {}).get("ephemeralContainers") or [])
        return declared, found

    try:
        # A strategic merge patch keyed by name, as kubectl debug sends: the pod's other ephemeral containers stay as they are,
        # and a repeat (after a lost answer) merges into the same container instead of adding a second one.
        client.request("PATCH", api_path("v1", "pods", namespace, name, "ephemeralcontainers"),
                       what=f"{what} (RBAC: patch pods/ephemeralcontainers; or leave debug_container off)",
                       body={"spec": {"ephemeralContainers": [spec]}}, content_type="application/strategic-merge-patch+json",
                       repeatable=True)
    except KubeError as error:
        # An ambiguous failure: the container may have been added (and cannot be removed); use it if it was.
        if _clear_refusal(error) or not statuses()[0]:
            raise

    def running():
        _declared, found = statuses()
        state = (found[0].get("state") or {}) if found else {}
        if state.get("terminated") is not None:
            ended = state["terminated"]
            raise KubeError(f"{what} ({image}) ended before the probe could run (exit {ended.get('exitCode')}, "
                            f"{ended.get('reason') or 'no reason given'}{': ' + ended['message'] if ended.get('message') else ''}); "
                            "check the image has `sleep` and can run in this pod.")
        return state.get("running") is not None

    _wait_for(running, f"{what} ({image})", start_timeout)
    return debug_name


def node_debug_pod_manifest(node: str, namespace: str, image: str, lifetime: int, run_id: str) -> dict:
    return {
        "apiVersion": "v1", "kind": "Pod",
        # A name of its own (not generateName): a create whose answer was lost can be repeated without making a second pod.
        "metadata": {"name": f"kdprobe-node-{run_id}", "namespace": namespace,
                     "labels": {"app.kubernetes.io/managed-by": MANAGED_BY, "app.kubernetes.io/component": "node-probe",
                                RUN_ID_LABEL: run_id}},
        # activeDeadlineSeconds: the kubelet stops the pod by itself even when the controller dies before deleting it.
        "spec": {"nodeName": node, "hostNetwork": True, "dnsPolicy": "Default", "restartPolicy": "Never", "activeDeadlineSeconds": lifetime,
                 "terminationGracePeriodSeconds": 0, "tolerations": [{"operator": "Exists"}], "automountServiceAccountToken": False,
                 "containers": [{"name": "probe", "image": image, "command": ["sleep", str(lifetime)]}]},
    }


def admission_refusal(error: KubeError, namespace: str):
    """(why, what to do) when the refusal says an admission policy forbids a hostNetwork pod in the namespace, else None
    (an RBAC refusal or a validation error stays an error)."""
    said = error.server_message or str(error)
    found = POD_SECURITY_REFUSAL.search(said)
    if found:
        return (f"Pod Security {found['level']} forbids hostNetwork in {namespace} ({said})",
                "set node_probe_namespace to a namespace that admits hostNetwork pods (pod-security.kubernetes.io/enforce: privileged)")
    if AUTOPILOT_REFUSAL in said:
        return (f"GKE Autopilot forbids hostNetwork pods in {namespace} ({said})",
                "Autopilot admits hostNetwork only for allow-listed partner workloads, so the node cannot be probed there")
    return None


def debug_container_refusal(error: KubeError, namespace: str, image: str) -> str:
    """Why the ephemeral debug container was refused (403), and what would admit it."""
    said = error.server_message or str(error)
    found = POD_SECURITY_REFUSAL.search(said)
    if found:
        return (f"Pod Security {found['level']} forbids it in {namespace} ({said}); set debug_image to an image whose container "
                f"satisfies {found['level']}, or probe the pod in a namespace that admits {image}")
    return f"{said}; grant RBAC patch on pods/ephemeralcontainers in {namespace}"


def probe_node(client, node: str, namespace: str, image: str, targets: list, options, run_id: str, start_timeout: float = 60.0) -> dict:
    """The same checks from the node: a hostNetwork pod pinned to it, deleted afterwards whatever happens."""
    lifetime = int(DETECT_TIMEOUT + options.timeout + EXEC_OVERHEAD + start_timeout + 30)
    manifest = node_debug_pod_manifest(node, namespace, image, lifetime, run_id)
    try:
        created = client.create(api_path("v1", "pods", namespace), manifest,
                                what=f"node debug pod in namespace {namespace} (or turn the node probe off: node_probe false)")
    except KubeError as error:
        if _clear_refusal(error):
            policy = admission_refusal(error, namespace)
            if policy:
                raise NodeProbeForbidden(*policy, status=error.status, server_message=error.server_message) from error
            raise
        _delete_run_pods(client, namespace, run_id, lifetime, error)
        raise KubeError(f"{error} Any node debug pod it made (label {RUN_ID_LABEL}={run_id}) was found and deleted.",
                        status=error.status) from error
    name = created["metadata"]["name"]
    try:
        def running():
            pod = client.request("GET", api_path("v1", "pods", namespace, name), what=f"node debug pod {namespace}/{name}")
            phase = (pod.get("status") or {}).get("phase")
            if phase in ("Failed", "Succeeded"):
                raise KubeError(f"node debug pod {namespace}/{name} ended ({phase}) before the probe could run.")
            return phase == "Running"

        _wait_for(running, f"node debug pod {namespace}/{name} on node {node}", start_timeout)
        try:
            facts = probe(_exec_runner(client, namespace, name, "probe"), targets, options)
        except KubeError as error:
            if error.status != 403:
                raise
            # RBAC refuses pods/exec: the node is not probed; what the pod showed (or the cluster's configuration) stands.
            raise NodeProbeForbidden(f"exec into node debug pod {namespace}/{name} is forbidden ({error})",
                                     f"grant RBAC create on pods/exec in {namespace}", status=403, server_message=error.server_message) from error
        facts["runner"] = {"mode": "node_debug_pod", "node": node, "pod": f"{namespace}/{name}", "image": image}
        facts["probed"] = True
    except Exception as error:
        _delete_run_pods(client, namespace, run_id, lifetime, error)
        raise
    _delete_run_pods(client, namespace, run_id, lifetime, None)
    return facts


def _node_ready(node) -> bool:
    conditions = (node.get("status") or {}).get("conditions") or []
    return any(isinstance(c, dict) and c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


def _zone(node):
    return ((node.get("metadata") or {}).get("labels") or {}).get(ZONE_LABEL)


def choose_other_node(nodes: list, pod_node: str) -> dict:
    """Which node to compare the pod's node with: {node, why, zone, pod_node_zone, nodes_in_cluster}; node is None (and why
    says so) when none fits. A candidate is Ready, schedulable (not cordoned), not being deleted, runs Linux (the debug
    image does) and is not pod_node. Preferred: another zone than pod_node's (a node there shares neither its subnet nor
    its zone's NAT gateway, so "it fails there too" speaks for the whole cluster), then a node without NoSchedule or
    NoExecute taints (where workloads run, rather than a control plane or a dedicated pool), then by name, so that every
    run and every pod of a node pick the same one."""
    by_name = {(n.get("metadata") or {}).get("name"): n for n in nodes if isinstance(n, dict) and isinstance(n.get("metadata") or {}, dict)}
    pod_zone = _zone(by_name.get(pod_node) or {})
    left_out, candidates = [], []
    for name, node in sorted(by_name.items(), key=lambda item: str(item[0])):
        if name == pod_node or not name:
            continue
        metadata, spec = node.get("metadata") or {}, node.get("spec") or {}
        os_label = (metadata.get("labels") or {}).get("kubernetes.io/os", "linux")
        why_not = ("not Ready" if not _node_ready(node) else "cordoned (unschedulable)" if spec.get("unschedulable")
                   else "being deleted" if metadata.get("deletionTimestamp") else f"runs {os_label}" if os_label != "linux" else None)
        if why_not:
            left_out.append(f"{name} {why_not}")
            continue
        tainted = any(isinstance(t, dict) and t.get("effect") in ("NoSchedule", "NoExecute") for t in spec.get("taints") or [])
        candidates.append((pod_zone is not None and _zone(node) == pod_zone, tainted, name, node))
    choice = {"node": None, "zone": None, "pod_node_zone": pod_zone, "nodes_in_cluster": len(by_name)}
    if not candidates:
        others = f" ({', '.join(left_out)})" if left_out else ""
        return dict(choice, why=f"no other node of the cluster can be compared with {pod_node}" + (others or ": the cluster has no other node"))
    same_zone, tainted, name, node = min(candidates, key=lambda c: c[:3])
    reasons = ["Ready and schedulable"]
    if _zone(node) and pod_zone and not same_zone:
        reasons.append(f"in zone {_zone(node)}, not {pod_zone} like {pod_node}")
    elif _zone(node) and pod_zone:
        reasons.append(f"in the same zone {pod_zone} (no node of another zone fits)")
    reasons.append("tainted (no untainted node fits)" if tainted else "untainted")
    why = ", ".join(reasons) + f"; {len(candidates)} of the cluster's {len(by_name) - 1} other nodes could be compared"
    return dict(choice, node=name, zone=_zone(node), why=why)


def _main_check_failed(facts: dict, target) -> bool:
    """The target's own request (HTTP for http/https targets, else the TCP or UDP exchange) failed in these facts."""
    checks = {c.get("id"): c for c in facts.get("checks") or [] if isinstance(c, dict)}
    main = (checks.get(f"http:{target.url}") if target.scheme in ("http", "https") else None) or checks.get(f"{target.protocol}:{target.host_port}")
    return main is not None and main.get("status") in ("fail", "error")


def needs_other_node(pod_facts: dict, node_facts, targets: list) -> bool:
    """The pod and its node both fail a target: only then can another node tell a fault of this node from the cluster's
    way out (a healthy pod costs no extra debug pod)."""
    if not (pod_facts.get("probed") and isinstance(node_facts, dict) and node_facts.get("probed")):
        return False
    return any(_main_check_failed(pod_facts, t) and _main_check_failed(node_facts, t) for t in targets)


def _not_probed_other(choice, reason: str) -> dict:
    return {"probed": False, "not_probed_reason": reason, "choice": choice, "runner": {"mode": "none", "node": (choice or {}).get("node")},
            "checks": [], "targets": [], "summary": {}}


def probe_other_node(client, pod_node: str, namespace: str, image: str, targets: list, options, run_id: str, node_probes=None) -> dict:
    """The node probe on one other node of the cluster (choose_other_node), with the choice and its reason in `choice`;
    {probed: false, not_probed_reason} when the nodes cannot be listed, none fits, or its debug pod is refused or fails.
    Never raises KubeError: what the pod and its node showed stands either way."""
    try:
        listed = client.request("GET", api_path("v1", "nodes"), what="the cluster's nodes (to compare the pod's node with another one)")
    except KubeError as error:
        return _not_probed_other(None, f"the cluster's nodes could not be listed to pick another one ({error}); "
                                       "allow list on nodes to compare with another node")
    choice = choose_other_node(listed.get("items") or [], pod_node)
    if choice["node"] is None:
        return _not_probed_other(choice, choice["why"])
    # A run id of its own: the node probe of this run may still be terminating under kdprobe-node-<run id>.
    other_run_id = f"{run_id}-other"
    try:
        if node_probes is not None:
            with ThreadPoolExecutor(max_workers=1) as pool:
                facts = node_probes.submit(pool, client, choice["node"], namespace, image, targets, options, other_run_id).result()
        else:
            facts = probe_node(client, choice["node"], namespace, image, targets, options, other_run_id)
    except KubeError as error:
        return _not_probed_other(choice, f"node {choice['node']} could not be probed: {error}")
    # The facts may be shared with the pods of that node (NodeProbes): add the choice to a copy.
    return dict(facts, choice=choice)


def _delete_run_pods(client, namespace: str, run_id: str, lifetime: int, original) -> None:
    """Delete every pod of this run (found by its label: a create whose answer was lost is found too). A cleanup failure
    is reported with the original error, never instead of it."""
    try:
        listed = client.request("GET", api_path("v1", "pods", namespace), what=f"node debug pods of run {run_id} in namespace {namespace}",
                                query={"labelSelector": f"{RUN_ID_LABEL}={run_id}"})
        for item in listed.get("items") or []:
            delete_pod_quietly(client, namespace, item["metadata"]["name"])
    except KubeError as cleanup_error:
        leftover = (f"could not delete the node debug pods labelled {RUN_ID_LABEL}={run_id} in namespace {namespace} ({cleanup_error}); "
                    f"they stop by themselves within {lifetime}s (activeDeadlineSeconds); delete them with "
                    f"kubectl delete pods -n {namespace} -l {RUN_ID_LABEL}={run_id}")
        if original is None:
            raise KubeError(leftover, status=cleanup_error.status) from cleanup_error
        raise KubeError(f"{original}; and then {leftover}", status=getattr(original, "status", None)) from original


def delete_pod_quietly(client, namespace: str, name: str) -> None:
    try:
        client.request("DELETE", api_path("v1", "pods", namespace, name), what=f"node debug pod {namespace}/{name}", query={"gracePeriodSeconds": 0})
    except KubeError as error:
        if error.status != 404:
            raise


def probe_pod(client, namespace: str, pod_name: str, targets_option, container=None, options=None, debug_container=False,
              debug_image=DEFAULT_DEBUG_IMAGE, node_probe=False, check_mode=False, debug_share_processes=False,
              node_probe_namespace=None, node_probes=None) -> dict:
    """Validate, find the pod, probe it (falling back to an ephemeral container when allowed), and the node when asked
    (its debug pod in node_probe_namespace, by default the pod's; shared with the other pods of a probe_pods run through
    `node_probes`); when the pod and its node both fail a target, one other node too (`other_node`, else None). `changed`
    is true when an ephemeral container was added (Kubernetes cannot remove it)."""
    targets = parse_targets(targets_option)
    validate_name(namespace, "namespace", "label")
    validate_name(pod_name, "pod", "subdomain")
    if container is not None:
        validate_name(container, "container", "label")
    run_id = secrets.token_hex(4)
    options = options or build_options()
    started = time.monotonic()
    pod = read_pod(client, namespace, pod_name)
    container = pick_container(pod, container)
    require_running(pod, container)
    notes = []
    if options.cluster_dns_ip is None:
        options.cluster_dns_ip, note = discover_cluster_dns_ip(client)
        if note:
            notes.append(note)
    node = pod["spec"].get("nodeName")
    with ThreadPoolExecutor(max_workers=1) as pool:
        node_future = None
        if node_probe and node and not check_mode:
            node_args = (client, node, node_probe_namespace or namespace, debug_image, targets, options, run_id)
            node_future = node_probes.submit(pool, *node_args) if node_probes is not None else pool.submit(probe_node, *node_args)
        elif node_probe:
            notes.append("node probe skipped: " + ("check mode creates no debug pod" if check_mode else "the pod is not scheduled on a node"))
        result = _probe_pod_itself(client, pod, container, targets, options, debug_container, debug_image, check_mode, notes, run_id,
                                   debug_share_processes)
        try:
            result["node"] = node_future.result() if node_future is not None else None
        except NodeProbeForbidden as forbidden:
            # What the pod itself showed stands; the verdict reads nothing from a node part that says probed: false.
            result["node"] = {"probed": False, "not_probed_reason": str(forbidden), "runner": {"mode": "none", "node": node},
                              "checks": [], "targets": [], "summary": {}}
            notes.append(f"node not probed: {forbidden}; pod and node problems are told apart by the other facts only. To probe the "
                         f"node: {forbidden.advice}.")
    result["other_node"] = None
    if node_future is not None and needs_other_node(result, result["node"], targets):
        result["other_node"] = probe_other_node(client, node, node_probe_namespace or namespace, debug_image, targets, options,
                                                run_id, node_probes)
        other = result["other_node"]
        notes.append(f"the pod and node {node} fail a target: compared with node {other['choice']['node']} ({other['choice']['why']})"
                     if other["probed"] else f"the pod and node {node} fail a target; no other node compared: {other['not_probed_reason']}")
    # dnsPolicy and hostNetwork say which resolver the pod uses: the verdict needs them when it answers without a probe.
    result.update(pod={"namespace": namespace, "name": pod_name, "container": container, "node": node,
                       "ip": (pod.get("status") or {}).get("podIP"), "dns_policy": pod["spec"].get("dnsPolicy") or "ClusterFirst",
                       "host_network": bool(pod["spec"].get("hostNetwork"))},
                  notes=notes, duration_ms=int((time.monotonic() - started) * 1000), exec_reruns=client.exec_reruns,
                  changed=result["runner"]["mode"] == "ephemeral_container")
    return result


def _not_probed(reason: str, container: str, targets: list, notes: list, note=None) -> dict:
    """The result of a pod nothing could run in: it says why, so the verdict answers it from the cluster's configuration."""
    notes.append(note or reason)
    return {"probed": False, "not_probed_reason": reason, "runner": {"mode": "none", "container": container},
            "checks": [], "targets": [t.as_dict() for t in targets], "summary": {}}


def _exec_forbidden(error: KubeError, where: str) -> str:
    return f"exec into {where} is forbidden ({error}); not probed"


def _probe_pod_itself(client, pod, container, targets, options, debug_container, debug_image, check_mode, notes, run_id,
                      share_processes) -> dict:
    namespace, name = pod["metadata"]["namespace"], pod["metadata"]["name"]
    try:
        facts = probe(_exec_runner(client, namespace, name, container), targets, options, by_address=True)
        facts["runner"] = {"mode": "exec", "container": container, "image": None}
        facts["probed"] = True
        return facts
    except NoShell as no_shell:
        reason = (f"container {container!r} of pod {namespace}/{name} has no shell to run the probes ({no_shell}); "
                  "it is probably a distroless or scratch image")
    except KubeError as error:
        if error.status != 403:
            raise
        # RBAC refuses pods/exec: nothing can run in the pod, but what the cluster's configuration proves still stands.
        return _not_probed(_exec_forbidden(error, f"pod {namespace}/{name}"), container, targets, notes)
    if not debug_container or check_mode:
        what_to_do = ("check mode does not add an ephemeral container; run without --check" if debug_container else
                      f"set debug_container: true to probe from an ephemeral debug container ({debug_image}) that shares the pod's "
                      "network namespace (needs RBAC patch on pods/ephemeralcontainers and a pullable image; set debug_image for a "
                      "private registry)")
        return _not_probed(f"{reason}. {what_to_do}.", container, targets, notes, note=f"{reason}. Not probed: {what_to_do}.")
    lifetime = int(DETECT_TIMEOUT + options.timeout + EXEC_OVERHEAD + 60)
    try:
        debug_name = add_debug_container(client, pod, container, debug_image, lifetime, run_id, share_processes)
    except KubeError as error:
        if error.status != 403:
            raise
        # Refused outright (RBAC, or the namespace's Pod Security level): nothing was added.
        return _not_probed(f"{reason}; the ephemeral debug container was refused: {debug_container_refusal(error, namespace, debug_image)}.",
                           container, targets, notes)
    try:
        facts = probe(_exec_runner(client, namespace, name, debug_name), targets, options, by_address=True)
    except KubeError as error:
        if error.status != 403:
            raise
        return _not_probed(f"{reason}; {_exec_forbidden(error, f'ephemeral container {debug_name}')}", container, targets, notes)
    facts["runner"] = {"mode": "ephemeral_container", "container": debug_name, "target_container": container, "image": debug_image}
    facts["probed"] = True
    notes.append(f"{reason}; probed from ephemeral container {debug_name} ({debug_image}), which exits by itself within {lifetime}s "
                 "(Kubernetes cannot remove an ephemeral container from a pod's spec).")
    return facts


def pod_refs(pods) -> list[tuple]:
    """(namespace, name, container) of each entry of the pods option ({namespace, name, container?} mappings, as
    egress_pods_info returns them; other keys are ignored), every name validated before any request."""
    if not isinstance(pods, list) or not pods:
        raise ValueError("pods must be a non-empty list of {namespace, name, container?} mappings (egress_pods_info's pods)")
    refs = []
    for index, entry in enumerate(pods):
        if not isinstance(entry, dict):
            raise ValueError(f"pods[{index}] is {entry!r}, not a {{namespace, name, container?}} mapping")
        container = entry.get("container")
        validate_name(entry.get("namespace"), f"pods[{index}].namespace", "label")
        validate_name(entry.get("name"), f"pods[{index}].name", "subdomain")
        if container is not None:
            validate_name(container, f"pods[{index}].container", "label")
        refs.append((entry["namespace"], entry["name"], container))
    return refs


def failed_pod_result(namespace: str, name: str, container, targets: list, message: str) -> dict:
    """The entry of a pod probe_pods could not probe: failed and msg as a failed loop item has them, and the shape of a pod
    that was not probed (pod, targets, no checks), so the plan and the verdict account for the pod instead of dropping it."""
    return {"failed": True, "msg": message, "changed": False, "probed": False, "not_probed_reason": message,
            "pod": {"namespace": namespace, "name": name, "container": container}, "runner": {"mode": "none", "container": container},
            "checks": [], "targets": [t.as_dict() for t in targets], "summary": {}, "node": None, "other_node": None,
            "notes": []}


class NodeProbes:
    """The node probes of one probe_pods run, one per (node, namespace): the pods of a workload often share nodes, and a
    node's facts do not depend on which of its pods asked, so they share one debug pod instead of starting one each
    (ten at once on one node queue behind the client's rate limit while they wait for their pods to start)."""

    def __init__(self):
        self.futures, self.lock = {}, threading.Lock()

    def submit(self, pool, client, node, namespace, *rest):
        with self.lock:
            if (node, namespace) not in self.futures:
                self.futures[(node, namespace)] = pool.submit(probe_node, client, node, namespace, *rest)
            return self.futures[(node, namespace)]


def probe_pods(client, pods, targets_option, options=None, **probe_pod_options) -> dict:
    """probe_pod for every entry of pods, MAX_CONCURRENT_PODS at a time: {results: [one probe_pod result per pod, in the
    order given], changed}. A pod whose probe fails (not found, forbidden, timed out) gets a failed_pod_result and the
    others go on; AllPodsFailed when none could be probed."""
    refs = pod_refs(pods)
    targets = parse_targets(targets_option)
    options = options or build_options()
    node_probes = NodeProbes()

    def one(ref):
        namespace, name, container = ref
        # The connection pool, the rate limit and the retry budget stay shared; the copy only counts this pod's exec reruns.
        pod_client = copy.copy(client)
        pod_client.exec_reruns = 0
        try:
            # Each pod fills in the cluster DNS IP of its own options (probe_pod sets it when it was not given).
            return probe_pod(pod_client, namespace, name, targets_option, container=container, options=dataclasses.replace(options),
                             node_probes=node_probes, **probe_pod_options)
        except KubeError as error:
            return failed_pod_result(namespace, name, container, targets, str(error))

    with ThreadPoolExecutor(max_workers=min(len(refs), MAX_CONCURRENT_PODS)) as pool:
        results = list(pool.map(one, refs))
    if all(result.get("failed") for result in results):
        raise AllPodsFailed(results)
    return {"results": results, "changed": any(result["changed"] for result in results)}
