"""The collection's imports written outside Python files (the demo's inline Python, the docs' examples) name modules and
objects that exist: the layout move once broke `make demo` this way while every Python test passed."""

import importlib
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
IMPORT = re.compile(r"^\s*from (ansible_collections\.kubediag\.egress\.[\w.]+) import ([\w, ]+)$", re.M)
FILES = sorted([*REPO.glob("tests/tools/*.sh"), *REPO.glob("docs/*.md"), REPO / "README.md"])
FOUND = [(path.relative_to(REPO).as_posix(), module, name.strip()) for path in FILES
         for module, names in IMPORT.findall(path.read_text(encoding="utf-8")) for name in names.split(",") if name.strip()]


def test_there_are_imports_to_check():
    assert any(path == "tests/tools/demo.sh" for path, _module, _name in FOUND)


@pytest.mark.parametrize(("path", "module", "name"), FOUND, ids=[f"{p}:{n}" for p, _m, n in FOUND])
def test_the_import_resolves(path, module, name):
    assert hasattr(importlib.import_module(module), name), f"{path}: {module} has no {name}"
