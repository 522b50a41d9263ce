"""Scenario files: load, validate strictly, and normalise into plain dicts with every default filled."""

import importlib.util
import os
import re
from urllib.parse import urlsplit

import yaml

from kdlab import world
from kdlab.aws import spec as aws_spec
from kdlab.errors import LabError

SCENARIO_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "scenarios")
# The root-cause ids a scenario may expect are the collection's own (plugins/module_utils/vocabulary.py, which imports
# nothing): loaded by path, so the lab runs without the collection being installed.
_VOCABULARY = os.path.join(os.path.dirname(SCENARIO_DIR), "..", "..", "plugins", "module_utils", "vocabulary.py")
_spec = importlib.util.spec_from_file_location("kubediag_vocabulary", _VOCABULARY)
vocabulary = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(vocabulary)
IMAGES = ("netshoot", "busybox", "distroless")
PROVIDERS = ("aws", "gce", "azure")
TARGET_SCHEMES = ("http", "https", "tcp", "udp")
MAX_CLUSTERS = 40
MAX_NODES = 50
DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
RULE_KEYS = ("apiGroups", "resources", "verbs", "resourceNames", "namespaces")  # an RBAC PolicyRule + a RoleBinding's namespaces

# Fault type -> {parameter: (kind, default)}. "cluster" defaults to the subject's cluster, "pod" to the subject pod.
REQUIRED = object()
FAULTS: dict[str, dict[str, tuple[str, object]]] = {
    "no_snat": {"cluster": ("cluster", None), "nodes": ("nodes", None)},
    "no_internet_route": {"cluster": ("cluster", None)},
    "port_blocked": {"cluster": ("cluster", None), "protocol": ("protocol", REQUIRED), "port": ("port", REQUIRED)},
    "proxy_only": {"cluster": ("cluster", None)},
    "dns_upstream_dead": {"cluster": ("cluster", None)},
    "coredns_down": {"cluster": ("cluster", None)},
    "resolv_conf": {"cluster": ("cluster", None), "pod": ("pod", None), "mode": ("resolv_mode", REQUIRED)},
    "no_ca_bundle": {"cluster": ("cluster", None), "pod": ("pod", None)},
    "mtu_blackhole": {"cluster": ("cluster", None), "mtu": ("mtu", 1280)},
    "endpoint_down": {"host": ("host", REQUIRED)},
    "egress_ip_not_allowlisted": {},
    "netpol_egress_deny": {"cluster": ("cluster", None), "pod": ("pod", None)},
    "netpol_dns_blocked": {"cluster": ("cluster", None), "pod": ("pod", None)},
    "node_egress_broken": {"cluster": ("cluster", None), "nodes": ("nodes", None)},
    "proxy_dead": {"cluster": ("cluster", None), "pod": ("pod", None)},
}


def bundled_names() -> list[str]:
    return sorted(f[:-4] for f in os.listdir(SCENARIO_DIR) if f.endswith(".yml"))


def resolve_path(name_or_path: str) -> str:
    """A bundled scenario name, a name under the scenario dir such as `aws/healthy`, or a path to a .yml file."""
    nested = os.path.join(SCENARIO_DIR, name_or_path + ".yml")
    if "/" in name_or_path and ".." not in name_or_path.split("/") and os.path.isfile(nested):
        return nested
    if os.sep in name_or_path or name_or_path.endswith((".yml", ".yaml")):
        if not os.path.isfile(name_or_path):
            raise LabError(f"scenario file {name_or_path} does not exist")
        return os.path.abspath(name_or_path)
    path = os.path.join(SCENARIO_DIR, name_or_path + ".yml")
    if not os.path.isfile(path):
        raise LabError(f"no bundled scenario named {name_or_path!r}; `python -m kdlab list` shows them, or pass a path to a .yml file")
    return path


def load(name_or_path: str) -> dict:
    path = resolve_path(name_or_path)
    try:
        with open(path, encoding="utf-8") as f:
            document = yaml.safe_load(f)
    except yaml.YAMLError as e:
        raise LabError(f"{path}: not valid YAML: {e}") from None
    return validate(document, path)


class _Checker:
    """Collects the location of each value so every error names the file and the key."""

    def __init__(self, source: str):
        self.source = source

    def fail(self, where: str, problem: str):
        raise LabError(f"{self.source}: {where}: {problem}")

    def mapping(self, value, where: str, allowed: tuple[str, ...], required: tuple[str, ...] = ()) -> dict:
        if not isinstance(value, dict):
            self.fail(where, f"must be a mapping, got {type(value).__name__}")
        unknown = sorted(set(map(str, value)) - set(allowed))
        if unknown:
            self.fail(where, f"unknown key {unknown[0]!r} (allowed: {', '.join(allowed)})")
        for key in required:
            if key not in value:
                self.fail(where, f"missing required key {key!r}")
        return value

    def string(self, value, where: str) -> str:
        if not isinstance(value, str) or not value:
            self.fail(where, "must be a non-empty string")
        return value

    def label(self, value, where: str) -> str:
        if not isinstance(value, str) or not DNS_LABEL.match(value):
            self.fail(where, f"{value!r} is not a valid name (lowercase letters, digits and '-', at most 63 characters)")
        return value

    def listing(self, value, where: str) -> list:
        if not isinstance(value, list):
            self.fail(where, f"must be a list, got {type(value).__name__}")
        return value

    def string_map(self, value, where: str, key_pattern: re.Pattern | None = None) -> dict[str, str]:
        if not isinstance(value, dict):
            self.fail(where, "must be a mapping of strings")
        for key, item in value.items():
            if not isinstance(key, str) or (key_pattern and not key_pattern.match(key)):
                self.fail(f"{where}.{key}", "is not a valid name")
            if not isinstance(item, str):
                self.fail(f"{where}.{key}", f"must be a string (quote it), got {type(item).__name__}")
        return dict(value)


def _default_cluster() -> dict:
    return {"name": "lab", "provider": "aws", "nodes": [{"name": "node-1"}],
            "pods": [{"namespace": "shop", "name": "web", "node": "node-1", "image": "netshoot"}], "objects": []}


def validate(document, source: str = "<scenario>") -> dict:
    check = _Checker(source)
    top = check.mapping(document, "top level", ("name", "description", "clusters", "faults", "subject", "expect"),
                        ("name", "subject", "expect"))
    scenario = {"name": check.string(top["name"], "name"), "description": str(top.get("description", "")), "source": source}
    raw_clusters = check.listing(top.get("clusters", [_default_cluster()]), "clusters")
    if not 1 <= len(raw_clusters) <= MAX_CLUSTERS:
        check.fail("clusters", f"needs between 1 and {MAX_CLUSTERS} clusters")
    scenario["clusters"] = [_cluster(check, c, i) for i, c in enumerate(raw_clusters)]
    names = [c["name"] for c in scenario["clusters"]]
    if len(set(names)) != len(names):
        check.fail("clusters", "cluster names must be unique")
    scenario["subject"] = _subject(check, top["subject"], scenario["clusters"])
    scenario["faults"] = [_fault(check, f, i, scenario) for i, f in enumerate(check.listing(top.get("faults") or [], "faults"))]
    expect = check.mapping(top["expect"], "expect", ("root_causes",), ("root_causes",))
    root_causes = check.listing(expect["root_causes"], "expect.root_causes")
    for i, rc in enumerate(root_causes):
        if rc not in vocabulary.ROOT_CAUSE_IDS:
            check.fail(f"expect.root_causes[{i}]", f"unknown root-cause id {rc!r} (see the table in docs/architecture.md)")
    scenario["expect"] = {"root_causes": list(root_causes)}
    return scenario


def _cluster(check: _Checker, raw, index: int) -> dict:
    where = f"clusters[{index}]"
    raw = check.mapping(raw, where, ("name", "provider", "cni", "nodes", "pods", "objects", "users", "aws"), ("name",))
    name = check.label(raw["name"], f"{where}.name")
    if len(name) > 20:
        check.fail(f"{where}.name", "cluster names are at most 20 characters (they are part of namespace names)")
    provider = raw.get("provider", "aws")
    if provider not in PROVIDERS:
        check.fail(f"{where}.provider", f"unknown provider {provider!r} (allowed: {', '.join(PROVIDERS)})")
    nodes = []
    for i, n in enumerate(check.listing(raw.get("nodes", [{"name": "node-1"}]), f"{where}.nodes")):
        n = check.mapping(n, f"{where}.nodes[{i}]", ("name",), ("name",))
        nodes.append({"name": check.label(n["name"], f"{where}.nodes[{i}].name"), "index": i})
    if not 1 <= len(nodes) <= MAX_NODES:
        check.fail(f"{where}.nodes", f"needs between 1 and {MAX_NODES} nodes")
    node_names = [n["name"] for n in nodes]
    if len(set(node_names)) != len(node_names):
        check.fail(f"{where}.nodes", "node names must be unique")
    pods = []
    for i, p in enumerate(check.listing(raw.get("pods", []), f"{where}.pods")):
        pwhere = f"{where}.pods[{i}]"
        p = check.mapping(p, pwhere, ("namespace", "name", "node", "image", "labels", "env"), ("namespace", "name"))
        pod = {"namespace": check.label(p["namespace"], f"{pwhere}.namespace"), "name": check.label(p["name"], f"{pwhere}.name"),
               "node": p.get("node", node_names[0]), "image": p.get("image", "netshoot"),
               "labels": check.string_map(p.get("labels", {}), f"{pwhere}.labels"),
               "env": check.string_map(p.get("env", {}), f"{pwhere}.env", ENV_NAME)}
        if pod["node"] not in node_names:
            check.fail(f"{pwhere}.node", f"no node named {pod['node']!r} in cluster {name!r} (nodes: {', '.join(node_names)})")
        if pod["image"] not in IMAGES:
            check.fail(f"{pwhere}.image", f"unknown image {pod['image']!r} (allowed: {', '.join(IMAGES)})")
        if pod["namespace"] == "kube-system" and pod["name"] == "coredns":
            check.fail(pwhere, "kube-system/coredns is added by the lab itself")
        pods.append(pod)
    refs = [f"{p['namespace']}/{p['name']}" for p in pods]
    if len(set(refs)) != len(refs):
        check.fail(f"{where}.pods", "pod namespace/name pairs must be unique")
    objects = check.listing(raw.get("objects", []), f"{where}.objects")
    for i, o in enumerate(objects):
        if not isinstance(o, dict) or not {"apiVersion", "kind"} <= set(o):
            check.fail(f"{where}.objects[{i}]", "must be a Kubernetes object with apiVersion and kind")
    cni = raw.get("cni")
    if cni is not None and not (isinstance(cni, str) and DNS_LABEL.match(cni)):
        check.fail(f"{where}.cni", f"{cni!r} is not a DaemonSet name (e.g. aws-node, anetd, calico-node, cilium, azure-cns)")
    for i, o in enumerate(objects):
        if not isinstance((o.get("metadata") or {}).get("name"), str):
            check.fail(f"{where}.objects[{i}].metadata.name", "every object needs a name")
    aws = None
    if raw.get("aws") is not None:
        if provider != "aws":
            check.fail(f"{where}.aws", f"an aws section needs provider aws (the cluster says {provider})")
        aws = aws_spec.validate(check, raw["aws"], f"{where}.aws", index, node_names)
    return {"name": name, "index": index, "provider": provider, "cni": cni, "nodes": nodes, "pods": pods, "objects": objects,
            "users": _users(check, raw.get("users", []), where), "aws": aws}


def _users(check: _Checker, raw, where: str) -> list[dict]:
    """API server users besides the admin: each gets a token and a kubeconfig context `<cluster>-<user>`."""
    users = []
    for i, u in enumerate(check.listing(raw, f"{where}.users")):
        uwhere = f"{where}.users[{i}]"
        u = check.mapping(u, uwhere, ("name", "rules", "deny"), ("name",))
        rules = u.get("rules", "*")
        if rules != "*":
            rules = [check.mapping(r, f"{uwhere}.rules[{j}]", RULE_KEYS, ("resources", "verbs"))
                     for j, r in enumerate(check.listing(rules, f"{uwhere}.rules"))]
        deny = [check.mapping(r, f"{uwhere}.deny[{j}]", RULE_KEYS, ("resources", "verbs"))
                for j, r in enumerate(check.listing(u.get("deny", []), f"{uwhere}.deny"))]
        users.append({"name": check.label(u["name"], f"{uwhere}.name"), "rules": rules, "deny": deny})
    names = [u["name"] for u in users]
    if len(set(names)) != len(names):
        check.fail(f"{where}.users", "user names must be unique")
    return users


def _find_pod(clusters: list[dict], ref: str, cluster: str | None) -> tuple[dict, dict] | None:
    namespace, _unused, name = ref.partition("/")
    for c in clusters:
        if cluster in (None, c["name"]):
            for p in c["pods"]:
                if (p["namespace"], p["name"]) == (namespace, name):
                    return c, p
    return None


def _subject(check: _Checker, raw, clusters: list[dict]) -> dict:
    raw = check.mapping(raw, "subject", ("pod", "cluster", "targets"), ("pod", "targets"))
    ref = check.string(raw["pod"], "subject.pod")
    cluster = raw.get("cluster")
    found = _find_pod(clusters, ref, cluster)
    if found is None:
        check.fail("subject.pod", f"no pod {ref!r} declared in {'cluster ' + repr(cluster) if cluster else 'any cluster'}")
    targets = check.listing(raw["targets"], "subject.targets")
    if not targets:
        check.fail("subject.targets", "needs at least one URL")
    for i, t in enumerate(targets):
        parts = urlsplit(t) if isinstance(t, str) else None
        if parts is None or parts.scheme not in TARGET_SCHEMES or not parts.hostname:
            check.fail(f"subject.targets[{i}]", f"{t!r} is not a URL with scheme {', '.join(TARGET_SCHEMES)}")
        if parts.scheme in ("tcp", "udp") and parts.port is None:
            check.fail(f"subject.targets[{i}]", f"{t!r} needs a port, e.g. udp://udp-echo.example.test:123")
    return {"pod": ref, "cluster": found[0]["name"], "targets": list(targets)}


def _fault(check: _Checker, raw, index: int, scenario: dict) -> dict:
    where = f"faults[{index}]"
    if not isinstance(raw, dict) or "type" not in raw:
        check.fail(where, "must be a mapping with a 'type'")
    kind = raw["type"]
    if kind not in FAULTS:
        check.fail(f"{where}.type", f"unknown fault type {kind!r} (known: {', '.join(sorted(FAULTS))})")
    params = FAULTS[kind]
    check.mapping(raw, where, ("type", *params))
    fault = {"type": kind}
    clusters = scenario["clusters"]
    cluster_name = raw.get("cluster", scenario["subject"]["cluster"])
    cluster = next((c for c in clusters if c["name"] == cluster_name), None)
    for key, (value_kind, default) in params.items():
        value = raw.get(key, default)
        if value is REQUIRED:
            check.fail(where, f"fault {kind!r} needs the key {key!r}")
        kwhere = f"{where}.{key}"
        if value_kind == "cluster":
            if cluster is None:
                check.fail(kwhere, f"no cluster named {cluster_name!r}")
            value = cluster_name
        elif value_kind == "pod":
            ref = scenario["subject"]["pod"] if value is None else check.string(value, kwhere)
            if _find_pod(clusters, ref, cluster_name) is None:
                check.fail(kwhere, f"no pod {ref!r} in cluster {cluster_name!r}")
            value = ref
        elif value_kind == "nodes":
            all_nodes = [n["name"] for n in cluster["nodes"]]
            value = all_nodes if value is None else check.listing(value, kwhere)
            for n in value:
                if n not in all_nodes:
                    check.fail(kwhere, f"no node {n!r} in cluster {cluster_name!r}")
        elif value_kind == "protocol" and value not in ("tcp", "udp"):
            check.fail(kwhere, f"must be tcp or udp, got {value!r}")
        elif value_kind == "port" and not (isinstance(value, int) and 1 <= value <= 65535):
            check.fail(kwhere, f"must be a port number, got {value!r}")
        elif value_kind == "mtu" and not (isinstance(value, int) and 576 <= value <= 1450):
            check.fail(kwhere, f"must be an integer between 576 and 1450, got {value!r}")
        elif value_kind == "resolv_mode" and value not in ("missing", "wrong"):
            check.fail(kwhere, f"must be missing or wrong, got {value!r}")
        elif value_kind == "host" and world.endpoint(value) is None:
            check.fail(kwhere, f"{value!r} is not a lab host (known: {', '.join(e.host for e in world.ENDPOINTS)})")
        fault[key] = value
    return fault
