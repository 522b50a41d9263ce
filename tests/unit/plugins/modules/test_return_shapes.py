"""The fact modules' RETURN is the contract between the stages: the facts recorded in the lab (verdict_cases/*.json, what
the fact modules returned through the real playbook) match it key by key and type by type, and every key the verdict
reads is documented in it down to the key (``contains:``)."""

import copy
import json
import sys
from pathlib import Path

import pytest

from ansible_collections.kubediag.egress.plugins.module_utils.cluster.mesh import mesh_egress
from ansible_collections.kubediag.egress.plugins.module_utils.verdict.rules import evaluate_cluster
from ansible_collections.kubediag.egress.plugins.module_utils.verdict.sources import SOURCES

sys.path.insert(0, str(Path(__file__).parents[3]))
import return_shapes  # tests/return_shapes.py, shared with the lab test

CASES = {p.stem: json.loads(p.read_text()) for p in sorted((Path(__file__).parents[1] / "module_utils" / "verdict_cases").glob("*.json"))}
FACT_MODULES = ("pod_probe", "egress_pods_info", "coredns_info", "cluster_network_info", "netpol_egress_info", "mesh_egress_info",
                "aws_egress_info")


def _results(facts):
    """(module, result) for every module result in a facts bundle, named by the verdict's source table."""
    for source in SOURCES:
        value = facts.get(source.option) if source.option else None
        if source.option == "pods":  # egress_pods_info's pods, handed on as they are
            yield source.module, {"pods": value or []}
            continue
        for result in value if isinstance(value, list) else [value] if value else []:
            yield source.module, result


@pytest.mark.parametrize("name", sorted(CASES))
def test_recorded_facts_match_the_documented_shapes(name):
    problems = [f"{module}: {problem}" for module, result in _results(CASES[name]["facts"])
                for problem in return_shapes.shape_problems(module, result)]
    assert problems == []


@pytest.mark.parametrize("module", FACT_MODULES)
def test_every_fact_module_documents_nested_shapes(module):
    doc = return_shapes.return_doc(module)
    nested = [key for key, spec in doc.items() if spec.get("contains")]
    assert nested, f"{module}'s RETURN documents no nested shape (contains:)"


def _healthy_probe():
    return copy.deepcopy(CASES["healthy"]["facts"]["pod_probes"][0])


@pytest.mark.parametrize(("mutate", "problem"), [
    (lambda r: r["checks"][0].update(status=3), "checks[0].status: int, documented as str"),
    (lambda r: r["checks"][0].update(attempts_made=2), "checks[0].attempts_made: not documented (RETURN of pod_probe)"),
    (lambda r: r.update(probe_version="2"), "probe_version: not documented (RETURN of pod_probe)"),
    (lambda r: r["targets"][0].update(port="443"), "targets[0].port: str, documented as int"),
    (lambda r: r["node"]["targets"][0].update(host_is_ip="no"), "node.targets[0].host_is_ip: str, documented as bool"),
    (lambda r: r.update(hosts_file=[1]), "hosts_file[0]: int, documented as a list of str"),
])
def test_a_result_that_drifts_from_its_documentation_is_named(mutate, problem):
    result = _healthy_probe()
    assert return_shapes.shape_problems("pod_probe", result) == []
    mutate(result)
    assert return_shapes.shape_problems("pod_probe", result) == [problem]


def test_keys_that_depend_on_the_check_kind_are_typed_but_open():
    result = _healthy_probe()
    result["checks"][0]["details"]["a_new_measure"] = 1.5  # a kind's own detail: documented in docs/pod_probe.md
    assert return_shapes.shape_problems("pod_probe", result) == []
    result["checks"][0]["details"]["http_code"] = "200"
    assert return_shapes.shape_problems("pod_probe", result) == ["checks[0].details.http_code: str, documented as int"]


class _Reads(dict):
    """A facts mapping that records every key read from it (get, [], in), as a dotted path with [] for list items."""

    def __init__(self, data, path, reads):
        super().__init__({k: _track(v, f"{path}.{k}" if path else k, reads) for k, v in data.items()})
        self._path, self._reads = path, reads

    def _read(self, key):
        self._reads.add(f"{self._path}.{key}" if self._path else key)

    def __getitem__(self, key):
        self._read(key)
        return super().__getitem__(key)

    def get(self, key, default=None):
        self._read(key)
        return super().get(key, default)

    def __contains__(self, key):
        self._read(key)
        return super().__contains__(key)


def _track(value, path, reads):
    if isinstance(value, dict):
        return _Reads(value, path, reads)
    if isinstance(value, list):
        return [_track(item, f"{path}[]", reads) for item in value]
    return value


def _more_cases():
    """Recorded facts plus what the lab cannot record yet, so every rule reads its keys at least once: CoreDNS pods listed
    while the cluster DNS does not answer, and an Istio sidecar under REGISTRY_ONLY (mesh_egress's own answer)."""
    yield from (case["facts"] for case in CASES.values())
    unreachable = copy.deepcopy(CASES["dns.cluster_dns_unreachable"]["facts"])
    unreachable["coredns"]["pods"] = copy.deepcopy(CASES["dns.upstream_forwarding"]["facts"]["coredns"]["pods"])
    yield unreachable
    meshed = copy.deepcopy(CASES["netpol.egress_blocked"]["facts"])
    pod = {"metadata": {"name": "web", "namespace": "shop", "labels": {"app": "web"}},
           "spec": {"containers": [{"name": "web"}, {"name": "istio-proxy", "image": "docker.io/istio/proxyv2:1.22.3"}]}}
    mesh_config = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "istio", "namespace": "istio-system"},
                   "data": {"mesh": "outboundTrafficPolicy:\n  mode: REGISTRY_ONLY\n"}}
    answer = mesh_egress(pod, "api.example.test", 443, {"mesh_config": mesh_config}, ["198.51.100.10"])
    meshed["netpol"] = []
    meshed["mesh"] = [{"item": {"namespace": "shop", "pod": "web", "host": "api.example.test", "port": 443}, "istio_installed": True, **answer}]
    yield meshed


def _verdict_reads():
    reads = set()
    for facts in _more_cases():
        evaluate_cluster(_track(facts, "", reads))
    return reads


def _module_paths(reads):
    """The reads, per module, as paths in that module's result (a source's option and list item dropped)."""
    per_module = {}
    for source in SOURCES:
        if not source.option:
            continue
        prefix = f"{source.option}[]." if source.option in ("pod_probes", "netpol", "mesh", "pods") else f"{source.option}."
        for path in reads:
            if not path.startswith(prefix):
                continue
            inner = path[len(prefix):]
            if inner.split(".")[0].removesuffix("[]") in return_shapes.ANSIBLE_KEYS:
                continue  # skipped, failed, the loop item: Ansible's, not the module's
            per_module.setdefault(source.module, set()).add(f"pods[].{inner}" if source.option == "pods" else inner)
    return per_module


def test_every_key_the_verdict_reads_is_documented():
    per_module = _module_paths(_verdict_reads())
    # the tracking sees the reads: the verdict's main inputs are among them
    assert {"checks[].status", "targets[].port", "node.checks[].id"} <= per_module["pod_probe"]
    assert "cidrs.pod_cidrs[].cidr" in per_module["cluster_network_info"] and "blocked" in per_module["mesh_egress_info"]
    missing = {module: return_shapes.undocumented_reads(module, paths) for module, paths in per_module.items()}
    assert {module: paths for module, paths in missing.items() if paths} == {}


def test_an_undocumented_read_is_named():
    assert return_shapes.undocumented_reads("pod_probe", {"checks[].details.http_code", "checks[].retried", "pod.uid"}) == \
        ["checks[].retried", "pod.uid"]
    assert return_shapes.undocumented_reads("coredns_info", {"logs.classes.servfail.examples"}) == []
