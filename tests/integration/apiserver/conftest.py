"""Fixtures: one standalone lab API server per test session, kubectl with a private HOME, the official client."""

import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from apiserver_testlib import cluster_config, run_kubectl, start_server


@pytest.fixture(scope="session")
def apiserver(tmp_path_factory):
    directory = str(tmp_path_factory.mktemp("apiserver"))
    process, endpoints = start_server(directory, cluster_config(directory))
    endpoints["dir"] = directory
    endpoints["lab"] = endpoints["clusters"][0]
    yield endpoints
    process.terminate()
    process.wait(timeout=10)


@pytest.fixture(scope="session")
def kube_home(tmp_path_factory):
    """kubectl's discovery cache lives under $HOME/.kube/cache: one per test session, never the user's."""
    return str(tmp_path_factory.mktemp("home"))


@pytest.fixture
def kubectl(apiserver, kube_home):
    def run(minor: int, *args: str, stdin: str | None = None, context: str = "lab"):
        return run_kubectl(apiserver, kube_home, minor, *args, stdin=stdin, context=context)
    return run


@pytest.fixture(scope="session")
def api_client(apiserver):
    """The official client on the kubeconfig the server wrote."""
    from kubernetes import client, config

    configuration = client.Configuration()
    config.load_kube_config(config_file=apiserver["kubeconfig"], context="lab", client_configuration=configuration)
    return client.ApiClient(configuration)


@pytest.fixture(scope="session")
def dynamic_client(api_client, tmp_path_factory):
    """DynamicClient with its discovery cache (osrcp-*.json) in a private directory, not the shared temp dir."""
    from kubernetes.dynamic import DynamicClient

    return DynamicClient(api_client, cache_file=str(tmp_path_factory.mktemp("discovery") / "osrcp-lab.json"))
