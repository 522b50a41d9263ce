"""A module's result checked against its own RETURN documentation, the contract between the stages.

``shape_problems(module, result)`` lists every place where the result disagrees with the module's RETURN: a documented
key of the wrong type, or a key that is not documented at a level whose keys are documented (``contains:``). A level
without ``contains`` is described in words only and not looked into. ``OPEN`` lists the levels (at any depth) whose keys depend on the
check's kind (documented: the keys the verdict reads; the rest in docs/pod_probe.md): extra keys are allowed there.

``undocumented_reads(module, paths)`` lists the key paths (``checks[].details.http_code``) that a reader uses but the
RETURN does not document through ``contains`` down to the key; ``MAPS`` are the levels keyed by data (a tool name, an
error class, an environment variable), where any key is fine.
"""

import importlib

import yaml


def _among(shape, levels):
    """Whether a documented path is one of levels, at the top or nested (a pod's node, a pods entry: ``results[].node.checks[].details``)."""
    return any(shape == level or shape.endswith("." + level) for level in levels)


# What Ansible adds to every result, or to a result registered in a loop or skipped: not the module's contract.
ANSIBLE_KEYS = frozenset({"changed", "failed", "msg", "invocation", "skipped", "skip_reason", "false_condition", "item", "ansible_loop_var",
                          "_ansible_no_log", "_ansible_item_label", "warnings", "deprecations", "exception", "attempts"})
OPEN = {"pod_probe": ("checks[].details", "checks[].params")}
MAPS = {"pod_probe": ("environment.tools", "environment.interface_mtu", "proxy_env.details.variables"), "coredns_info": ("logs.classes",)}
TYPES = {"str": (str,), "bool": (bool,), "int": (int,), "float": (int, float), "list": (list,), "dict": (dict,)}


def return_doc(module):
    """The parsed RETURN of kubediag.egress.<module>."""
    source = importlib.import_module(f"ansible_collections.kubediag.egress.plugins.modules.{module}")
    return yaml.safe_load(source.RETURN)


def _type_ok(value, kind):
    if value is None or kind in (None, "raw", "complex"):
        return True  # null is how a module says "not known" (each description says when)
    if isinstance(value, bool) and kind in ("int", "float"):
        return False
    return isinstance(value, TYPES[kind])


def _check(value, spec, shape, where, module, problems):
    """shape is the documented path (``checks[].details``), where the place in this result (``checks[3].details``)."""
    kind = spec.get("type")
    if not _type_ok(value, kind):
        problems.append(f"{where}: {type(value).__name__}, documented as {kind}")
        return
    if isinstance(value, list):
        elements = spec.get("elements")
        for index, item in enumerate(value):
            if elements and not _type_ok(item, elements):
                problems.append(f"{where}[{index}]: {type(item).__name__}, documented as a list of {elements}")
            elif isinstance(item, dict) and spec.get("contains"):
                _level(item, spec["contains"], f"{shape}[]", f"{where}[{index}]", module, problems)
    elif isinstance(value, dict) and spec.get("contains"):
        _level(value, spec["contains"], shape, where, module, problems)


def _level(value, contains, shape, where, module, problems):
    for key, item in value.items():
        if key in contains:
            _check(item, contains[key], f"{shape}.{key}", f"{where}.{key}", module, problems)
        elif not _among(shape, OPEN.get(module, ())):
            problems.append(f"{where}.{key}: not documented (RETURN of {module})")


def shape_problems(module, result):
    """Where result disagrees with kubediag.egress.<module>'s RETURN; [] when it agrees."""
    problems = []
    doc = return_doc(module)
    for key, value in result.items():
        if key in doc:
            _check(value, doc[key], key, key, module, problems)
        elif key not in ANSIBLE_KEYS:
            problems.append(f"{key}: not documented (RETURN of {module})")
    return problems


def undocumented_reads(module, paths):
    """The paths (dotted, ``[]`` for a list element) not documented through ``contains`` down to their last key."""
    doc = return_doc(module)
    missing = []
    for path in sorted(paths):
        level, walked = doc, ""
        for part in path.split("."):
            key = part.removesuffix("[]")
            if walked and _among(walked, MAPS.get(module, ())):
                break
            if level is None or key not in level:
                missing.append(path)
                break
            walked = f"{walked}.{part}" if walked else part
            level = level[key].get("contains")
    return missing
