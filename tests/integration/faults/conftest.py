"""Fixtures: labs of bundled scenarios, built once per session each and torn down at the end."""

import os
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
for path in (HERE, os.path.join(os.path.dirname(HERE), "apiserver"), os.path.join(os.path.dirname(os.path.dirname(HERE)), "lab")):
    sys.path.insert(0, path)


@pytest.fixture(scope="session")
def labs(tmp_path_factory):
    if os.geteuid() != 0:
        pytest.fail("the lab needs root (it creates network namespaces); run as root")
    from kdlab import build

    root, built = str(tmp_path_factory.mktemp("faults-labs")), {}

    def get(scenario):
        if scenario not in built:
            built[scenario] = build.up(scenario, os.path.join(root, scenario))
        return built[scenario]
    yield get
    for lab in built.values():
        build.down(lab.dir)
