"""The fact sources the verdict reads, in one table: what each is called, which egress_verdict option carries it, which
module produced it, and how a cluster's registered results are shared out to its pods.

A new source (another node, the cloud) is one row here: the egress_verdict action builds its options from SOURCES, the
input check (inputs.py) checks each source by its scope, evaluate_cluster() hands each pod its part, and the rules read
it as ``ctx.source(name)``. Only the diagnose role still has to gather it and pass it on.

Scopes:
- ``pods``: one result per pod, the pods the verdict is about (pod_probe);
- ``part``: the key of that name in another source's result (the node's probe rides in the pod's probe result);
- ``cluster``: one result for the cluster, the same for every pod;
- ``per_pod``: a list with at most one entry per pod, found by ``pod_of(entry) == "namespace/name"``;
- ``per_pod_all``: a list, every entry whose ``pod_of(entry)`` is the pod's (mesh: one per pod and target).
"""

from collections import namedtuple

Source = namedtuple("Source", "name option module scope pod_of part_of", defaults=(None, None))


def _item(entry):
    """A result registered in a loop carries what it was asked about in its loop item."""
    return entry.get("item") if isinstance(entry.get("item"), dict) else entry


def _ref(namespace, name):
    return f"{namespace}/{name}"


SOURCES = (
    Source("pod_probe", "pod_probes", "pod_probe", "pods"),
    Source("node", None, "pod_probe", "part", part_of="pod_probe"),
    Source("pod", "pods", "egress_pods_info", "per_pod", pod_of=lambda e: e.get("ref") or _ref(e.get("namespace"), e.get("name"))),
    Source("netpol", "netpol", "netpol_egress_info", "per_pod", pod_of=lambda e: e.get("source")),
    Source("coredns", "coredns", "coredns_info", "cluster"),
    Source("cluster_network", "cluster_network", "cluster_network_info", "cluster"),
    Source("mesh", "mesh", "mesh_egress_info", "per_pod_all", pod_of=lambda e: _ref(_item(e).get("namespace"), _item(e).get("pod"))),
)
LIST_SCOPES = ("pods", "per_pod", "per_pod_all")


def skipped(result):
    """A result that holds no facts: a skipped or failed task, or not a mapping at all."""
    return not isinstance(result, dict) or bool(result.get("skipped")) or bool(result.get("failed"))


def argument_spec():
    """The egress_verdict action's options: one per source that has one."""
    spec = {}
    for source in SOURCES:
        if source.scope == "pods":
            spec[source.option] = {"type": "list", "elements": "raw", "required": True}
        elif source.scope == "cluster":
            spec[source.option] = {"type": "raw"}
        elif source.scope in LIST_SCOPES:
            spec[source.option] = {"type": "list", "elements": "dict", "default": []}
    return spec


def shape_problem(bundle, kind_of):
    """The first source whose option holds the wrong kind of value (a cluster source: a mapping or nothing; a list source:
    a list of mappings), as one sentence; None when every one is right. The pod probes get their deeper check in inputs.py."""
    for source in SOURCES:
        value = bundle.get(source.option) if source.option else None
        if value is None or source.scope == "pods":
            continue
        if source.scope == "cluster" and not isinstance(value, dict):
            text = f" ({value[:80]!r})" if isinstance(value, str) else ""
            return f"{source.option} is a {kind_of(value)}{text}, not the registered result of kubediag.egress.{source.module}"
        if source.scope in LIST_SCOPES:
            if not isinstance(value, list):
                return f"{source.option} is a {kind_of(value)}, not a list of kubediag.egress.{source.module} results"
            wrong = next((i for i, entry in enumerate(value) if not isinstance(entry, dict)), None)
            if wrong is not None:
                return f"{source.option}[{wrong}] is a {kind_of(value[wrong])}, not a kubediag.egress.{source.module} result"
    return None


def facts_for_pods(bundle, probes, pod_ref):
    """Each pod's facts, {source name: its part}, from a cluster's bundle (the egress_verdict options); ``probes`` are the
    pod_probe results to conclude on, ``pod_ref(probe)`` names a probe's pod. A part source stays inside its parent."""
    shared = {}
    for source in SOURCES:
        if source.scope in ("per_pod", "per_pod_all"):
            entries = [e for e in bundle.get(source.option) or [] if not skipped(e)]
            if source.scope == "per_pod":
                shared[source.name] = {source.pod_of(e): e for e in entries}
            else:
                shared[source.name] = entries
    pods = []
    for probe in probes:
        ref = pod_ref(probe)
        facts = {}
        for source in SOURCES:
            if source.scope == "pods":
                facts[source.name] = probe
            elif source.scope == "cluster":
                facts[source.name] = bundle.get(source.option)
            elif source.scope == "per_pod":
                facts[source.name] = shared[source.name].get(ref)
            elif source.scope == "per_pod_all":
                facts[source.name] = [e for e in shared[source.name] if source.pod_of(e) == ref]
        pods.append(facts)
    return pods


def read_sources(facts):
    """One pod's facts by source name, as the rules read them: a skipped or failed result is None (a list source: left
    out), a part is taken from its parent."""
    read = {}
    for source in SOURCES:
        if source.scope == "part":
            parent = facts.get(source.part_of)
            value = parent.get(source.name) if isinstance(parent, dict) else None
            read[source.name] = value if isinstance(value, dict) else None
        elif source.scope == "per_pod_all":
            read[source.name] = [e for e in facts.get(source.name) or [] if not skipped(e)]
        elif source.scope == "pods":
            read[source.name] = facts.get(source.name) or {}
        else:
            read[source.name] = None if skipped(facts.get(source.name)) else facts[source.name]
    return read
