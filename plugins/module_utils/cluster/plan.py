"""Which cluster reads a diagnosis needs, and with which arguments, from the pod_probe results (no I/O).

The diagnose role used to compute this in Jinja; here it is plain Python the controller runs in an action plugin, so it is
unit-tested and costs no module round trip. ``plan_cluster_reads(probes)`` returns:

- ``needed``: a pod could not be probed, some check failed or errored, or a pod's tools could not send a target's UDP
  (BusyBox nc has no -u): the verdict then lets the node's UDP check stand in only when no NetworkPolicy read says no.
  The cluster-side analysers only matter in those cases.
  ``probes`` is pod_probe's ``results`` (one entry per pod); a pod whose entry says ``failed`` gets no netpol or mesh read.
- ``cluster_network_destination``: the first address any pod's DNS check resolved (cluster_network_info asks the node's
  route table about it), else the first the node probe of a pod that was not probed resolved, or None.
- ``netpol``: one ``{namespace, pod, destinations}`` per pod pod_probe reached, destinations as netpol_egress_info takes them
  (the target's IP, or the addresses the pod resolved for its name, else the one it tested the name by; a target
  with none is left out). For a pod that could
  not be probed (no shell and no debug container) the verdict answers from these reads alone, so every target is asked
  about: by the addresses its node's probe resolved, else by name alone, which netpol_egress_info resolves on the controller.
- ``mesh``: one ``{namespace, pod, host, port}`` per pod and target, for mesh_egress_info.
"""


class PlanError(ValueError):
    """The probe results are not shaped as pod_probe returns them; str() names the part."""


FAILED = ("fail", "error")


def _resolved(checks, name=None):
    addresses = []
    for check in checks:
        if check.get("kind") != "dns" or check.get("status") != "ok":
            continue
        if name is not None and (check.get("params") or {}).get("name") != name:
            continue
        for address in (check.get("details") or {}).get("addresses") or []:
            if address not in addresses:
                addresses.append(address)
    return addresses


def _udp_unmeasured(checks):
    return any(c.get("kind") == "udp" and c.get("status") == "skipped" for c in checks)


def _node_checks(probe):
    """The checks of the pod's node probe, when it ran."""
    node = probe.get("node")
    if not isinstance(node, dict) or not node.get("probed") or not isinstance(node.get("checks"), list):
        return []
    return [c for c in node["checks"] if isinstance(c, dict)]


def _tested(checks, name):
    """The address the pod tested a name by when no resolver it asked answered (the controller's, see pod_probe's by-address
    checks): the policies are then evaluated for the address the pod really tried."""
    for check in checks:
        params, details = check.get("params") or {}, check.get("details") or {}
        if params.get("by_address") and params.get("host") == name and details.get("address"):
            return [details["address"]]
    return []


def _probe_parts(probe, index):
    if not isinstance(probe, dict):
        raise PlanError(f"pod_probes[{index}] is a {type(probe).__name__}, not a pod_probe result")
    pod, targets, checks = probe.get("pod") or {}, probe.get("targets") or [], probe.get("checks") or []
    if not isinstance(pod, dict) or not isinstance(targets, list) or not isinstance(checks, list):
        raise PlanError(f"pod_probes[{index}] lacks pod/targets/checks as pod_probe returns them")
    return pod, [t for t in targets if isinstance(t, dict)], [c for c in checks if isinstance(c, dict)]


def plan_cluster_reads(probes):
    if not isinstance(probes, list):
        raise PlanError("pod_probes must be the list of pod_probe results (its registered .results)")
    probes = [p for p in probes if not (isinstance(p, dict) and p.get("skipped"))]
    needed, destination, netpol, mesh = False, None, [], []
    for index, probe in enumerate(probes):
        pod, targets, checks = _probe_parts(probe, index)
        if not probe.get("probed") or any(t.get("status") in FAILED for t in targets) or _udp_unmeasured(checks):
            needed = True
        if probe.get("failed"):
            continue  # pod_probe could not reach the pod (not found, forbidden): the readers about it would fail the same way
        # A pod that was not probed has no checks of its own: its node probe's answers stand in for them.
        resolving = checks if probe.get("probed") else _node_checks(probe)
        if destination is None:
            destination = next(iter(_resolved(resolving)), None)
        destinations = []
        for target in targets:
            entry = {"to": target.get("host"), "port": target.get("port"), "protocol": str(target.get("protocol") or "tcp").upper()}
            ips = [target["host"]] if target.get("host_is_ip") else _resolved(resolving, target.get("host")) or _tested(checks, target.get("host"))
            if ips:
                destinations.append({**entry, "ips": ips})
            elif not probe.get("probed"):
                destinations.append(entry)  # netpol_egress_info resolves the name on the controller, and says so
            mesh.append({"namespace": pod.get("namespace"), "pod": pod.get("name"), "host": target.get("host"), "port": target.get("port")})
        netpol.append({"namespace": pod.get("namespace"), "pod": pod.get("name"), "destinations": destinations})
    return {"needed": needed, "cluster_network_destination": destination, "netpol": netpol, "mesh": mesh}


def strip_invocations(value):
    """A copy of registered results without Ansible's ``invocation`` keys (the module arguments: kubeconfig content, tokens)."""
    if isinstance(value, dict):
        return {k: strip_invocations(v) for k, v in value.items() if k != "invocation"}
    if isinstance(value, list):
        return [strip_invocations(v) for v in value]
    return value
