"""Label and field selectors with the Kubernetes grammar (`a=b,c!=d,e in (f,g),h notin (i),j,!k`)."""

import re
from dataclasses import dataclass

FIELD_SELECTABLE = {
    "metadata.name": lambda obj: obj.get("metadata", {}).get("name", ""),
    "metadata.namespace": lambda obj: obj.get("metadata", {}).get("namespace", ""),
    "spec.nodeName": lambda obj: (obj.get("spec") or {}).get("nodeName", ""),
    "status.phase": lambda obj: (obj.get("status") or {}).get("phase", ""),
    "spec.serviceAccountName": lambda obj: (obj.get("spec") or {}).get("serviceAccountName", ""),
    "involvedObject.name": lambda obj: (obj.get("involvedObject") or {}).get("name", ""),
    "involvedObject.kind": lambda obj: (obj.get("involvedObject") or {}).get("kind", ""),
    "type": lambda obj: obj.get("type", "") if isinstance(obj.get("type"), str) else "",
}

_REQUIREMENT = re.compile(
    r"""^\s*(?:
        (?P<not>!)\s*(?P<absent>[A-Za-z0-9_./-]+)
      | (?P<key>[A-Za-z0-9_./-]+)\s*(?:
            (?P<op>==|!=|=)\s*(?P<value>[A-Za-z0-9_.-]*)
          | \s+(?P<setop>in|notin)\s*\((?P<values>[^)]*)\)
        )?
    )\s*$""",
    re.VERBOSE,
)


class SelectorError(ValueError):
    """A selector that does not parse; the message is what the API server answers (400)."""


@dataclass(frozen=True)
class Requirement:
    key: str
    operator: str  # "=", "!=", "in", "notin", "exists", "!"
    values: tuple[str, ...] = ()

    def matches(self, labels: dict[str, str]) -> bool:
        present = self.key in labels
        value = labels.get(self.key)
        match self.operator:
            case "exists":
                return present
            case "!":
                return not present
            case "=" | "in":
                return present and value in self.values
            case _:  # "!=" and "notin" match objects without the key, as in Kubernetes
                return not present or value not in self.values


def _split_top_level(text: str) -> list[str]:
    """Split on commas that are not inside `in (...)` value lists."""
    parts, depth, current = [], 0, ""
    for char in text:
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        if char == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += char
    parts.append(current)
    return [part for part in parts if part.strip()]


def parse_label_selector(text: str | None) -> list[Requirement]:
    requirements = []
    for part in _split_top_level(text or ""):
        found = _REQUIREMENT.match(part)
        if not found:
            raise SelectorError(f"unable to parse requirement: found '{part.strip()}', expected: '=', '!=', '==', 'in', notin'")
        if found["absent"]:
            requirements.append(Requirement(found["absent"], "!"))
        elif found["op"]:
            requirements.append(Requirement(found["key"], "!=" if found["op"] == "!=" else "=", (found["value"],)))
        elif found["setop"]:
            values = tuple(v.strip() for v in found["values"].split(",") if v.strip())
            requirements.append(Requirement(found["key"], found["setop"], values))
        else:
            requirements.append(Requirement(found["key"], "exists"))
    return requirements


def parse_field_selector(text: str | None) -> list[tuple[str, str, str]]:
    """Field selectors: `field=value`, `field==value`, `field!=value`, comma-separated."""
    terms = []
    for part in (text or "").split(","):
        if not part.strip():
            continue
        found = re.match(r"^\s*([A-Za-z.]+)\s*(==|!=|=)\s*(.*?)\s*$", part)
        if not found:
            raise SelectorError(f"invalid selector: '{text}'; can't understand '{part}'")
        terms.append((found[1], "!=" if found[2] == "!=" else "=", found[3]))
    return terms


FIELDS_BY_KIND = {
    "Pod": ("spec.nodeName", "status.phase", "spec.serviceAccountName"),
    "Event": ("involvedObject.name", "involvedObject.kind", "type"),
}


def check_field_selector(terms: list[tuple[str, str, str]], kind: str) -> None:
    allowed = ("metadata.name", "metadata.namespace", *FIELDS_BY_KIND.get(kind, ()))
    for field_name, _unused, _unused in terms:
        if field_name not in allowed:
            if kind in FIELDS_BY_KIND:
                raise SelectorError(f"field label not supported: {field_name}")
            raise SelectorError(f'"{field_name}" is not a known field selector: only "metadata.name", "metadata.namespace"')


def matches_labels(requirements: list[Requirement], labels: dict | None) -> bool:
    labels = labels or {}
    return all(req.matches(labels) for req in requirements)


def matches_fields(terms: list[tuple[str, str, str]], obj: dict) -> bool:
    for field_name, operator, value in terms:
        actual = FIELD_SELECTABLE[field_name](obj)
        if (actual == value) != (operator == "="):
            return False
    return True


def matches_label_selector_object(selector: dict | None, labels: dict | None) -> bool:
    """A structured LabelSelector (matchLabels + matchExpressions); an empty selector matches everything."""
    selector = selector or {}
    labels = labels or {}
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expression in selector.get("matchExpressions") or []:
        operator = expression.get("operator")
        key = expression.get("key")
        values = tuple(expression.get("values") or ())
        requirement = {
            "In": Requirement(key, "in", values),
            "NotIn": Requirement(key, "notin", values),
            "Exists": Requirement(key, "exists"),
            "DoesNotExist": Requirement(key, "!"),
        }.get(operator)
        if requirement is None or not requirement.matches(labels):
            return False
    return True
