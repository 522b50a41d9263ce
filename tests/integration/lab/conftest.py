"""Shared fixtures for the lab's tests. Tests marked `lab` need root (network namespaces): without it they fail, never skip."""

import os
import sys

import pytest

LAB_PARENT = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "lab")
if LAB_PARENT not in sys.path:
    sys.path.insert(0, LAB_PARENT)

from kdlab import build  # noqa: E402
from kdlab.cli import NOT_ROOT  # noqa: E402


@pytest.fixture(autouse=True)
def _lab_tests_need_root(request):
    if request.node.get_closest_marker("lab") and os.geteuid() != 0:
        pytest.fail(NOT_ROOT)


@pytest.fixture
def lab_dir(tmp_path):
    path = str(tmp_path / "lab")
    yield path
    build.down(path)
