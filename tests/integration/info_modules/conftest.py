"""Fixtures: one lab API server for the session, with a kubeconfig context per cluster (netpol, dns, snat, mesh)."""

import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # ansible_module

from ansible_module import run_module
from infolab import DnsUpstreams, clusters, start_apiserver


@pytest.fixture(scope="session")
def dns_upstreams():
    upstreams = DnsUpstreams()
    yield upstreams
    upstreams.close()


@pytest.fixture(scope="session")
def lab_api(tmp_path_factory, dns_upstreams):
    directory = str(tmp_path_factory.mktemp("info-apiserver"))
    process, endpoints = start_apiserver(directory, clusters(directory, dns_upstreams))
    try:
        yield endpoints
    finally:
        process.terminate()
        process.wait(timeout=10)


@pytest.fixture(scope="session")
def ansible_home(tmp_path_factory):
    return str(tmp_path_factory.mktemp("ansible-home"))


@pytest.fixture(scope="session")
def run(lab_api, ansible_home):
    """run(module, context, **args): the module's result against one of the lab's clusters."""
    def run_in(module, context, check=False, **args):
        return run_module(module, {"kubeconfig": lab_api["kubeconfig"], "context": context, **args}, ansible_home, check=check)
    return run_in


@pytest.fixture(scope="session")
def run_as(lab_api, ansible_home):
    """run_as(module, context, token, **args): as another user, by host, token and CA (a kubeconfig's own token would win
    over api_key: see the report on kube.connect)."""
    def run_in(module, context, token, **args):
        server = next(cluster["server"] for cluster in lab_api["clusters"] if cluster["name"] == context)
        return run_module(module, {"host": server, "api_key": token, "ca_cert": lab_api["ca"], **args}, ansible_home)
    return run_in


@pytest.fixture(scope="session")
def kube(lab_api):
    """kube(context, token=None): a connected KubeClient, as the modules build it; with token, as that user."""
    from ansible_collections.kubediag.egress.plugins.module_utils.k8s.client import connect

    def connect_to(context, token=None):
        if token is None:
            return connect(kubeconfig=lab_api["kubeconfig"], context=context)
        server = next(cluster["server"] for cluster in lab_api["clusters"] if cluster["name"] == context)
        return connect(host=server, api_key=token, ca_cert=lab_api["ca"])
    return connect_to
