"""Extension point: services started at the end of `up` (the lab's Kubernetes API server registers itself here).

A hook is `hook(lab)`; it runs after every lab service answers. It may start processes with lab.start_process(...)
(so `down` kills them) and fill lab.json with lab.update_info(...). If it raises, `up` tears the lab down and fails.
The optional modules kdlab.aws.plugin and kdlab.apiserver.lab_plugin are imported when present, and their `post_up(lab)`
registered, in that order."""

import importlib
import importlib.util
from collections.abc import Callable

PLUGIN_MODULES = ("kdlab.aws.plugin", "kdlab.apiserver.lab_plugin")   # the cloud first: Nodes carry its providerIDs
POST_UP_HOOKS: list[Callable] = []


def register_post_up(hook: Callable) -> Callable:
    if hook not in POST_UP_HOOKS:
        POST_UP_HOOKS.append(hook)
    return hook


def post_up_hooks() -> list[Callable]:
    for module_name in PLUGIN_MODULES:
        try:
            found = importlib.util.find_spec(module_name) is not None
        except ModuleNotFoundError:
            found = False
        if found:
            hook = getattr(importlib.import_module(module_name), "post_up", None)
            if hook is not None:
                register_post_up(hook)
    return list(POST_UP_HOOKS)
