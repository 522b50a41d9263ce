"""Bearer tokens and RBAC-style rules, with the API server's Forbidden messages.

A token entry: `{"user": "dev", "token": "...", "groups": [...], "rules": [...], "deny": [...]}`. `rules` are
PolicyRules (`apiGroups`, `resources` incl. `pods/exec`, `verbs`, optional `resourceNames`) plus an optional
`namespaces` list (a RoleBinding's scope); `rules: "*"` allows everything. `deny` removes rights from what
`rules` grants (a convenience for scenarios: "everything except pods/exec").
"""

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Attributes:
    verb: str
    group: str
    resource: str  # "pods" or "pods/exec"
    namespace: str
    name: str


def _rule_matches(rule: dict, attrs: Attributes) -> bool:
    def has(values, wanted):
        return values is not None and ("*" in values or wanted in values)

    resource, _unused, subresource = attrs.resource.partition("/")
    resources = rule.get("resources")
    resource_ok = has(resources, attrs.resource) or (subresource and has(resources, f"*/{subresource}")) or (
        not subresource and has(resources, resource))
    namespaces = rule.get("namespaces")
    return bool(
        has(rule.get("verbs"), attrs.verb)
        and has(rule.get("apiGroups", [""]), attrs.group)
        and resource_ok
        and (not rule.get("resourceNames") or attrs.name in rule["resourceNames"])
        and (namespaces is None or attrs.namespace in namespaces)
    )


@dataclass
class Identity:
    user: str
    groups: list[str] = field(default_factory=list)
    rules: list | str = "*"
    deny: list = field(default_factory=list)

    def allows(self, attrs: Attributes) -> bool:
        if any(_rule_matches(rule, attrs) for rule in self.deny):
            return False
        return self.rules == "*" or any(_rule_matches(rule, attrs) for rule in self.rules)


def forbidden_message(identity: Identity, attrs: Attributes, group_resource: str) -> str:
    """`pods "web" is forbidden: User "x" cannot create resource "pods/exec" in API group "" in the namespace "shop"`."""
    subject = f'{group_resource} "{attrs.name}"' if attrs.name else group_resource
    scope = f'in the namespace "{attrs.namespace}"' if attrs.namespace else "at the cluster scope"
    return (f'{subject} is forbidden: User "{identity.user}" cannot {attrs.verb} resource "{attrs.resource}" '
            f'in API group "{attrs.group}" {scope}')


class Authenticator:
    def __init__(self, tokens: list[dict]):
        self.by_token = {}
        for entry in tokens:
            self.by_token[entry["token"]] = Identity(entry["user"], list(entry.get("groups") or ["system:authenticated"]),
                                                     entry.get("rules", "*"), list(entry.get("deny") or []))

    def identify(self, authorization: str | None) -> Identity | None:
        if not authorization or not authorization.startswith("Bearer "):
            return None
        return self.by_token.get(authorization[len("Bearer "):].strip())
