"""The diagnosis of one cluster as the diagnose role wires it, through module_utils directly (no ansible-playbook).

Each stage opens its own client with the modules' default options, as each module run does (so each has its own retry
budget and rate limit): pod selection, pod_probe, the plan, the cluster reads the plan asks for, the verdict.
"""

import json
import os
import time

from apiserver_testlib import raw_request  # conftest.py puts tests/integration/apiserver on sys.path

from ansible_collections.kubediag.egress.plugins.module_utils.cluster.coredns import read_coredns
from ansible_collections.kubediag.egress.plugins.module_utils.cluster.destinations import parse_destinations
from ansible_collections.kubediag.egress.plugins.module_utils.cluster.mesh import mesh_egress_answer
from ansible_collections.kubediag.egress.plugins.module_utils.cluster.netpol import netpol_egress
from ansible_collections.kubediag.egress.plugins.module_utils.cluster.network import read_cluster_network, snat_answer
from ansible_collections.kubediag.egress.plugins.module_utils.cluster.plan import plan_cluster_reads
from ansible_collections.kubediag.egress.plugins.module_utils.k8s.client import connect
from ansible_collections.kubediag.egress.plugins.module_utils.k8s.pod_select import select_pods
from ansible_collections.kubediag.egress.plugins.module_utils.k8s.reader import ClusterReader
from ansible_collections.kubediag.egress.plugins.module_utils.probe.runner import build_options, probe_pod
from ansible_collections.kubediag.egress.plugins.module_utils.verdict.rules import evaluate_cluster

API_TIMEOUT = 15.0  # the modules' api_timeout default; their api_budget is 4 x this
MODULE_BUDGET = 4 * API_TIMEOUT
# The fault sets of issue 17, as PUT /_lab/faults takes them (docs/lab-apiserver.md).
MIXED = {"throttle": {"fraction": 0.1, "retry_after": 1}, "errors": {"fraction": 0.1, "code": 503}, "drop": {"fraction": 0.05}}
HEAVY = {"throttle": {"fraction": 0.3, "retry_after": 1}, "errors": {"fraction": 0.1, "code": 500}}


def set_faults(lab_dir, spec):
    """Replace the fault set of the lab's (first) cluster API server."""
    with open(os.path.join(lab_dir, "apiserver.json"), encoding="utf-8") as handle:
        endpoints = json.load(handle)
    status, _headers, body = raw_request(endpoints, "PUT", "/_lab/faults", spec)
    if status != 200:
        raise RuntimeError(f"PUT /_lab/faults answered {status}: {body}")


class Diagnosis:
    """One run: module -> seconds of its slowest run in `stages`, the verdicts in `verdicts`."""

    def __init__(self, kubeconfig, context, pod, targets, timeout, node_probe=True, debug_container=False, **probe_options):
        self.kubeconfig, self.context = kubeconfig, context
        self.pod, self.targets, self.timeout, self.node_probe = pod, targets, timeout, node_probe
        self.debug_container = debug_container
        self.probe_options = probe_options
        self.stages = {}
        self.verdicts = None

    def client(self):
        return connect(kubeconfig=self.kubeconfig, context=self.context, timeout=API_TIMEOUT)

    def stage(self, name, function, *args):
        started = time.monotonic()
        try:
            return function(*args)
        finally:
            self.stages[name] = max(self.stages.get(name, 0.0), time.monotonic() - started)

    def run(self):
        _reference, pods, _notes = self.stage("egress_pods_info", lambda: select_pods(self.client(), self.pod, 10))
        probes = [self.stage("pod_probe", self.probe, pod) for pod in pods]
        plan = plan_cluster_reads(probes)
        bundle = {"pod_probes": probes, "pods": pods, "netpol": [], "mesh": [], "coredns": {"skipped": True},
                  "cluster_network": {"skipped": True}}
        if plan["needed"]:
            bundle["coredns"] = self.stage("coredns_info", self.coredns)
            bundle["cluster_network"] = self.stage("cluster_network_info", self.cluster_network, plan["cluster_network_destination"])
            bundle["netpol"] = [self.stage("netpol_egress_info", self.netpol, item) for item in plan["netpol"]]
            if plan["mesh"] and self.stage("mesh_egress_info", self.mesh, plan["mesh"][0])["istio_installed"]:
                bundle["mesh"] = [dict(self.stage("mesh_egress_info", self.mesh, item), item=item) for item in plan["mesh"]]
        self.verdicts = evaluate_cluster(bundle)
        return self.verdicts

    def probe(self, pod):
        options = build_options(timeout=self.timeout, **self.probe_options)
        return probe_pod(self.client(), pod["namespace"], pod["name"], self.targets, options=options, node_probe=self.node_probe,
                         debug_container=self.debug_container)

    def coredns(self):
        reader = ClusterReader(self.client())
        return dict(read_coredns(reader, 100), upstream_probes=[], not_checked=reader.not_checked)

    def cluster_network(self, destination):
        reader = ClusterReader(self.client())
        result = read_cluster_network(reader)
        if destination:
            result["snat"] = snat_answer(result, destination)
        return dict(result, not_checked=reader.not_checked)

    def netpol(self, item):
        destinations = parse_destinations(item["destinations"]) if item["destinations"] else []
        return netpol_egress(ClusterReader(self.client()), item["namespace"], item["pod"], destinations, {"context": self.context})

    def mesh(self, item):
        return mesh_egress_answer(ClusterReader(self.client()), item["namespace"], item["pod"], item["host"], item["port"], [],
                                  {"context": self.context})


def verdict_ids(verdicts):
    """What must not change under faults: per pod and target, the root-cause ids."""
    return sorted((v["pod"], t["target"], tuple(t["root_causes"])) for v in verdicts for t in v["targets"])
