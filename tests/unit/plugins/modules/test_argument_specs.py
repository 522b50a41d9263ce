"""Every k8s module takes the shared connection options (host, context, ...) as they are: an option of its own with the
same name would silently be used as the API server address (mesh_egress_info's `host` once did)."""

import importlib
from pathlib import Path

import pytest

from ansible_collections.kubediag.egress.plugins.module_utils.k8s.module import AUTH_ARG_SPEC

MODULES_DIR = Path(__file__).resolve().parents[4] / "plugins" / "modules"
K8S_MODULES = sorted(path.stem for path in MODULES_DIR.glob("*.py") if "KubeModule(" in path.read_text(encoding="utf-8"))


def test_the_k8s_modules_are_found():
    assert "mesh_egress_info" in K8S_MODULES and "pod_probe" in K8S_MODULES


@pytest.mark.parametrize("name", K8S_MODULES)
def test_no_module_option_shadows_a_connection_option(name):
    module = importlib.import_module(f"ansible_collections.kubediag.egress.plugins.modules.{name}")
    own = set(module.ARGUMENT_SPEC)
    for spec in module.ARGUMENT_SPEC.values():
        own.update(spec.get("aliases") or [])
    shared = set(AUTH_ARG_SPEC)
    for spec in AUTH_ARG_SPEC.values():
        shared.update(spec.get("aliases") or [])
    assert own & shared == set()
