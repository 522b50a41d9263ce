"""PATCH bodies: JSON patch (RFC 6902), JSON merge patch (RFC 7386) and strategic merge patch.

Strategic merge follows the `patchMergeKey`/`patchStrategy` tags of the built-in Go types for the kinds the lab
serves (containers by name, env by name, container ports by containerPort, service ports by port...), with the
directives kubectl sends: `$patch: delete|replace|merge`, `$setElementOrder/<list>`, `$retainKeys`,
`$deleteFromPrimitiveList/<list>`.
"""

import copy


class PatchError(ValueError):
    """A patch that cannot apply; the API server answers 422 (or 400 for a malformed body)."""


# ---- JSON patch -------------------------------------------------------------------------------------------

def _pointer(path: str) -> list[str]:
    if path == "":
        return []
    if not path.startswith("/"):
        raise PatchError(f'json patch path "{path}" must start with "/"')
    return [token.replace("~1", "/").replace("~0", "~") for token in path[1:].split("/")]


def _container_of(document, tokens: list[str], path: str):
    target = document
    for token in tokens[:-1]:
        if isinstance(target, dict) and token in target:
            target = target[token]
        elif isinstance(target, list) and token.isdigit() and int(token) < len(target):
            target = target[int(token)]
        else:
            raise PatchError(f"doc is missing path: \"{path}\": missing value")
    return target


def _get(document, path: str):
    target = document
    for token in _pointer(path):
        if isinstance(target, dict) and token in target:
            target = target[token]
        elif isinstance(target, list) and token.isdigit() and int(token) < len(target):
            target = target[int(token)]
        else:
            raise PatchError(f"doc is missing path: \"{path}\": missing value")
    return target


def _remove(document, path: str):
    tokens = _pointer(path)
    parent = _container_of(document, tokens, path)
    last = tokens[-1]
    if isinstance(parent, dict) and last in parent:
        return parent.pop(last)
    if isinstance(parent, list) and last.isdigit() and int(last) < len(parent):
        return parent.pop(int(last))
    raise PatchError(f"doc is missing path: \"{path}\": missing value")


def _add(document, path: str, value):
    tokens = _pointer(path)
    if not tokens:
        return value
    parent = _container_of(document, tokens, path)
    last = tokens[-1]
    if isinstance(parent, dict):
        parent[last] = value
    elif isinstance(parent, list):
        if last == "-":
            parent.append(value)
        elif last.isdigit() and int(last) <= len(parent):
            parent.insert(int(last), value)
        else:
            raise PatchError(f"add operation does not apply: doc is missing path: \"{path}\": missing value")
    else:
        raise PatchError(f"add operation does not apply: doc is missing path: \"{path}\": missing value")
    return document


def json_patch(document: dict, operations) -> dict:
    if not isinstance(operations, list):
        raise PatchError("json: cannot unmarshal object into Go value of type jsonpatch.Patch")
    document = copy.deepcopy(document)
    for operation in operations:
        if not isinstance(operation, dict) or "op" not in operation or "path" not in operation:
            raise PatchError("Unexpected kind: operations need \"op\" and \"path\"")
        op, path = operation["op"], operation["path"]
        if op in ("add", "replace", "test") and "value" not in operation:
            raise PatchError(f"missing value for {op} operation at \"{path}\"")
        match op:
            case "add":
                document = _add(document, path, copy.deepcopy(operation["value"]))
            case "remove":
                _remove(document, path)
            case "replace":
                _get(document, path)
                if _pointer(path):
                    _remove(document, path)
                document = _add(document, path, copy.deepcopy(operation["value"]))
            case "move":
                value = _remove(document, operation["from"])
                document = _add(document, path, value)
            case "copy":
                document = _add(document, path, copy.deepcopy(_get(document, operation["from"])))
            case "test":
                if _get(document, path) != operation["value"]:
                    raise PatchError(f"testing value {path} failed: test failed")
            case _:
                raise PatchError(f"Unexpected kind: {op}")
    return document


# ---- JSON merge patch -------------------------------------------------------------------------------------

def merge_patch(document, patch):
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = copy.deepcopy(document) if isinstance(document, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


# ---- strategic merge patch --------------------------------------------------------------------------------

# (field name, parent field) -> merge key; parent None means "any parent". Lists not named here are replaced.
_MERGE_KEYS = {
    ("containers", None): "name",
    ("initContainers", None): "name",
    ("ephemeralContainers", None): "name",
    ("env", None): "name",
    ("volumes", None): "name",
    ("volumeMounts", None): "mountPath",
    ("volumeDevices", None): "devicePath",
    ("imagePullSecrets", None): "name",
    ("hostAliases", None): "ip",
    ("conditions", None): "type",
    ("addresses", "status"): "type",
    ("taints", None): "key",
    ("ownerReferences", None): "uid",
    ("topologySpreadConstraints", None): "topologyKey",
    ("resourceClaims", None): "name",
    ("schedulingGates", None): "name",
    ("ports", "spec"): "port",  # Service spec.ports
    ("ports", None): "containerPort",  # container ports
}
# Lists of scalars with patchStrategy merge: union, not replace.
_MERGE_PRIMITIVE_LISTS = {"finalizers"}


def merge_key(field: str, parent: str | None) -> str | None:
    return _MERGE_KEYS.get((field, parent)) or _MERGE_KEYS.get((field, None))


def _merge_list(field: str, parent: str | None, current: list, patch: list, element_order: list | None) -> list:
    key = merge_key(field, parent)
    if any(isinstance(item, dict) and item.get("$patch") == "replace" for item in patch):
        return [item for item in copy.deepcopy(patch) if not (isinstance(item, dict) and item.get("$patch") == "replace")]
    if key is None:
        if field in _MERGE_PRIMITIVE_LISTS:
            merged = list(current)
            merged.extend(item for item in patch if item not in merged)
            return merged
        return [_strip_directives(item) for item in copy.deepcopy(patch)]
    merged = copy.deepcopy(current)
    for item in patch:
        if not isinstance(item, dict):
            raise PatchError(f"unable to find api field in struct for the merge key: {key} of {field}")
        if item.get("$patch") == "delete":
            merged = [old for old in merged if not (isinstance(old, dict) and old.get(key) == item.get(key))]
            continue
        index = next((i for i, old in enumerate(merged) if isinstance(old, dict) and old.get(key) == item.get(key)), None)
        if index is None:
            merged.append(_strip_directives(copy.deepcopy(item)))
        else:
            merged[index] = strategic_merge(merged[index], item, field)
    if element_order:
        order = [entry.get(key) if isinstance(entry, dict) else entry for entry in element_order]
        rank = {value: i for i, value in enumerate(order)}
        merged.sort(key=lambda entry: rank.get(entry.get(key) if isinstance(entry, dict) else entry, len(rank)))
    return merged


def _strip_directives(value):
    if isinstance(value, dict):
        return {k: _strip_directives(v) for k, v in value.items() if not k.startswith("$") and v is not None}
    if isinstance(value, list):
        return [_strip_directives(v) for v in value]
    return value


def strategic_merge(document, patch, parent: str | None = None):
    """Apply a strategic merge patch `patch` to `document`; `parent` is the field holding `document`."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    directive = patch.get("$patch")
    if directive == "delete":
        return None
    if directive == "replace":
        return _strip_directives(patch)
    if directive not in (None, "merge"):
        raise PatchError(f"Unknown patch type: {directive}")
    result = copy.deepcopy(document) if isinstance(document, dict) else {}
    retain_keys = patch.get("$retainKeys")
    for key, value in patch.items():
        if key.startswith("$setElementOrder/") or key in ("$patch", "$retainKeys"):
            continue
        if key.startswith("$deleteFromPrimitiveList/"):
            field = key.split("/", 1)[1]
            result[field] = [item for item in result.get(field) or [] if item not in value]
            continue
        if value is None:
            result.pop(key, None)
        elif isinstance(value, list):
            current = result.get(key) if isinstance(result.get(key), list) else []
            result[key] = _merge_list(key, parent, current, value, patch.get(f"$setElementOrder/{key}"))
        elif isinstance(value, dict):
            merged = strategic_merge(result.get(key), value, key)
            if merged is None:
                result.pop(key, None)
            else:
                result[key] = merged
        else:
            result[key] = value
    for key, order in patch.items():
        if key.startswith("$setElementOrder/") and key.split("/", 1)[1] not in patch:
            field = key.split("/", 1)[1]
            if isinstance(result.get(field), list):
                result[field] = _merge_list(field, parent, result[field], [], order)
    if retain_keys is not None:
        result = {k: v for k, v in result.items() if k in retain_keys}
    return result
