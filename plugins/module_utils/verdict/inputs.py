"""Is this what the verdict reads? A shape check of the registered results kubediag.egress.egress_verdict is given (no I/O).

The verdict's rules index the pod_probe facts directly (a check's ``status`` and ``error_class``, a target's ``port``); a hand-
written or truncated result would otherwise end in a bare ``KeyError: 'port'``. ``verdict_input_problem(facts)`` returns None
when the shapes are right, else one sentence naming the first wrong part (``pod_probes[0].targets[1]: no port``) and what to pass.
"""

from ansible_collections.kubediag.egress.plugins.module_utils.verdict.sources import shape_problem
from ansible_collections.kubediag.egress.plugins.module_utils.vocabulary import CHECK_STATUSES

HINT = "pass the registered kubediag.egress.pod_probe results (its .results) unchanged"


def _kind(value):
    """The YAML word for a value's type (Ansible hands over its own str/dict subclasses)."""
    for kind, name in ((bool, "boolean"), (str, "string"), (dict, "mapping"), (list, "list"), (int, "number"), (float, "number")):
        if isinstance(value, kind):
            return name
    return "null" if value is None else type(value).__name__


def _check_problem(check, where):
    if not isinstance(check, dict):
        return f"{where} is a {_kind(check)}, not a check mapping"
    for key in ("id", "kind"):
        if not isinstance(check.get(key), str):
            return f"{where}: no {key} (a string)"
    if check.get("status") not in CHECK_STATUSES:
        return f"{where} ({check['id']}): status {check.get('status')!r} is not one of {', '.join(CHECK_STATUSES)}"
    if "error_class" not in check or not isinstance(check["error_class"], (str, type(None))):
        return f"{where} ({check['id']}): error_class must be a string or null"
    return None


def _checks_problem(facts, where):
    checks = facts.get("checks")
    if not isinstance(checks, list):
        return f"{where}.checks is a {_kind(checks)}, not a list"
    return next((p for index, check in enumerate(checks) if (p := _check_problem(check, f"{where}.checks[{index}]"))), None)


def _target_problem(target, where):
    if not isinstance(target, dict):
        return f"{where} is a {_kind(target)}, not a target mapping"
    for key in ("url", "host"):
        if not isinstance(target.get(key), str):
            return f"{where}: no {key} (a string)"
    port = target.get("port")
    if not isinstance(port, int) or isinstance(port, bool) or not 0 < port < 65536:
        return f"{where} ({target['url']}): no port" if port is None else f"{where} ({target['url']}): port {port!r} is not 1-65535"
    return None


def _probe_problem(probe, where):
    if not isinstance(probe, dict):
        text = f" ({probe[:80]!r})" if isinstance(probe, str) else ""
        return f"{where} is a {_kind(probe)}{text}, not a pod_probe result"
    if probe.get("skipped"):
        return None
    # pod_probe's entry for a pod it could not probe names the pod, and is checked as a pod that was not probed; a failed
    # result that names none (a whole failed task) cannot be told apart from a pod that was never asked about.
    if probe.get("failed") and not isinstance(probe.get("pod"), dict):
        return f"{where} is a failed pod_probe result ({str(probe.get('msg') or 'no message')[:200]}): the verdict needs a probe that ran"
    pod = probe.get("pod")
    if not isinstance(pod, dict) or not all(isinstance(pod.get(key), str) for key in ("namespace", "name")):
        return f"{where}: no pod {{namespace, name}}"
    targets = probe.get("targets")
    if not isinstance(targets, list):
        return f"{where}.targets is a {_kind(targets)}, not a list"
    for index, target in enumerate(targets):
        if problem := _target_problem(target, f"{where}.targets[{index}]"):
            return problem
    if problem := _checks_problem(probe, where):
        return problem
    for key, what in (("node", "the node's"), ("other_node", "the other node's")):
        part = probe.get(key)
        if part is not None and not isinstance(part, dict):
            return f"{where}.{key} is a {_kind(part)}, not {what} probe mapping"
        if part and "checks" in part and (problem := _checks_problem(part, f"{where}.{key}")):
            return problem
    return None


def verdict_input_problem(facts):
    """None when facts (the pod probes, then every other source of verdict/sources.py) are shaped as the verdict reads them."""
    probes = facts.get("pod_probes")
    if not isinstance(probes, list):
        return f"pod_probes is a {_kind(probes)}, not a list: {HINT}"
    for index, probe in enumerate(probes):
        if problem := _probe_problem(probe, f"pod_probes[{index}]"):
            return f"{problem}: {HINT}"
    return shape_problem(facts, _kind)
