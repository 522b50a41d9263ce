"""Fixtures: labs of bundled scenarios (built once per session each, torn down at the end) and helpers to probe them."""

import os
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "lab"))
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # ansible_module

import ansible_module

pytestmark = pytest.mark.lab


class Labs:
    """Scenario name -> a running lab (its directory), built on first use."""

    def __init__(self, root: str):
        self.root = root
        self.dirs = {}

    def get(self, scenario: str) -> str:
        if scenario not in self.dirs:
            from kdlab import build
            directory = os.path.join(self.root, scenario)
            build.up(scenario, directory)
            self.dirs[scenario] = directory
        return self.dirs[scenario]

    def close(self):
        from kdlab import build
        for directory in self.dirs.values():
            build.down(directory)


@pytest.fixture(scope="session")
def labs(tmp_path_factory):
    if os.geteuid() != 0:
        pytest.fail("the lab needs root (it creates network namespaces); run as root")
    found = Labs(str(tmp_path_factory.mktemp("pod-probe-labs")))
    yield found
    found.close()


@pytest.fixture(scope="session")
def ansible_home(tmp_path_factory):
    return str(tmp_path_factory.mktemp("ansible-home"))


@pytest.fixture(scope="session")
def run_module(ansible_home):
    """run_module(args, check=False): the module's result."""
    return lambda args, check=False: ansible_module.run_module("pod_probe", args, ansible_home, check, timeout=180)
