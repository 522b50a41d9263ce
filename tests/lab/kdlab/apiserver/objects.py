"""What the API server and its controllers do to objects: validation (the real field paths and messages),
defaults on create (a scheduled, running pod; a ClusterIP; an Active namespace), and update rules."""

import copy
import ipaddress
import re

DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
DNS1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
LABEL_NAME_KINDS = {"Namespace", "Service"}
LABEL_MESSAGE = ("a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end "
                 "with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')")
SUBDOMAIN_MESSAGE = ("a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start "
                     "and end with an alphanumeric character (e.g. 'example.com', regex used for validation is "
                     "'[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')")
POD_UPDATE_MESSAGE = ("pod updates may not change fields other than `spec.containers[*].image`,`spec.initContainers[*].image`,"
                      "`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations),"
                      "`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)")


class FieldError:
    """One cause of an Invalid (422) answer, rendered like apimachinery's field.Error."""

    def __init__(self, reason: str, field: str, detail: str = "", value=None):
        self.reason, self.field, self.detail, self.value = reason, field, detail, value

    @property
    def message(self) -> str:
        kind_text = {"FieldValueRequired": "Required value", "FieldValueInvalid": "Invalid value", "FieldValueForbidden": "Forbidden",
                     "FieldValueNotSupported": "Unsupported value", "FieldValueDuplicate": "Duplicate value"}[self.reason]
        if self.reason in ("FieldValueInvalid", "FieldValueNotSupported", "FieldValueDuplicate"):
            shown = f'"{self.value}"' if isinstance(self.value, str) else str(self.value)
            kind_text = f"{kind_text}: {shown}"
        return f"{kind_text}: {self.detail}" if self.detail else kind_text

    def cause(self) -> dict:
        return {"reason": self.reason, "message": self.message, "field": self.field}


def _validate_name(kind: str, metadata: dict) -> list[FieldError]:
    name = metadata.get("name")
    if not name:
        return [FieldError("FieldValueRequired", "metadata.name", "name or generateName is required")]
    pattern, message = (DNS1123_LABEL, LABEL_MESSAGE) if kind in LABEL_NAME_KINDS else (DNS1123_SUBDOMAIN, SUBDOMAIN_MESSAGE)
    if not pattern.match(name) or len(name) > 253:
        return [FieldError("FieldValueInvalid", "metadata.name", message, name)]
    return []


def _validate_containers(containers, path: str, required: bool) -> list[FieldError]:
    if not containers:
        return [FieldError("FieldValueRequired", path)] if required else []
    errors, seen = [], set()
    for index, container in enumerate(containers):
        where = f"{path}[{index}]"
        if not container.get("name"):
            errors.append(FieldError("FieldValueRequired", f"{where}.name"))
        elif container["name"] in seen:
            errors.append(FieldError("FieldValueDuplicate", f"{where}.name", value=container["name"]))
        seen.add(container.get("name"))
        if not container.get("image"):
            errors.append(FieldError("FieldValueRequired", f"{where}.image"))
    return errors


def _valid_cidr(text) -> ipaddress.IPv4Network | ipaddress.IPv6Network | None:
    try:
        return ipaddress.ip_network(text, strict=False)
    except (TypeError, ValueError):
        return None


def _validate_ports(ports, path: str) -> list[FieldError]:
    errors = []
    for index, port in enumerate(ports or []):
        where = f"{path}[{index}]"
        protocol = port.get("protocol", "TCP")
        if protocol not in ("TCP", "UDP", "SCTP"):
            errors.append(FieldError("FieldValueNotSupported", f"{where}.protocol", 'supported values: "SCTP", "TCP", "UDP"', protocol))
        number = port.get("port")
        if isinstance(number, int) and not 1 <= number <= 65535:
            errors.append(FieldError("FieldValueInvalid", f"{where}.port", "must be between 1 and 65535, inclusive", number))
        if "endPort" in port:
            if not isinstance(number, int):
                errors.append(FieldError("FieldValueRequired", f"{where}.port", "must be specified when endPort is specified"))
            elif port["endPort"] < number:
                errors.append(FieldError("FieldValueInvalid", f"{where}.endPort", "must be greater than or equal to `port`", port["endPort"]))
    return errors


def _validate_peers(peers, path: str) -> list[FieldError]:
    errors = []
    for index, peer in enumerate(peers or []):
        where = f"{path}[{index}]"
        kinds = [key for key in ("podSelector", "namespaceSelector", "ipBlock") if key in peer]
        if not kinds:
            errors.append(FieldError("FieldValueRequired", where, "must specify a peer"))
        if "ipBlock" in peer:
            if len(kinds) > 1:
                errors.append(FieldError("FieldValueForbidden", where, "may not specify both ipBlock and another peer"))
            block = peer["ipBlock"] or {}
            cidr = _valid_cidr(block.get("cidr"))
            if cidr is None:
                errors.append(FieldError("FieldValueInvalid", f"{where}.ipBlock.cidr", "must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)",
                                         block.get("cidr", "")))
            for except_index, text in enumerate(block.get("except") or []):
                excluded = _valid_cidr(text)
                if cidr is not None and (excluded is None or excluded.version != cidr.version or not excluded.subnet_of(cidr)
                                         or excluded == cidr):
                    errors.append(FieldError("FieldValueInvalid", f"{where}.ipBlock.except[{except_index}]", "must be a strict subset of `cidr`", text))
    return errors


def _validate_network_policy(spec: dict) -> list[FieldError]:
    errors = []
    if "podSelector" not in spec:
        errors.append(FieldError("FieldValueRequired", "spec.podSelector"))
    for index, policy_type in enumerate(spec.get("policyTypes") or []):
        if policy_type not in ("Ingress", "Egress"):
            errors.append(FieldError("FieldValueNotSupported", f"spec.policyTypes[{index}]", 'supported values: "Egress", "Ingress"', policy_type))
    for direction, peers in (("egress", "to"), ("ingress", "from")):
        for index, rule in enumerate(spec.get(direction) or []):
            errors += _validate_ports(rule.get("ports"), f"spec.{direction}[{index}].ports")
            errors += _validate_peers(rule.get(peers), f"spec.{direction}[{index}].{peers}")
    return errors


def validate(kind: str, obj: dict) -> list[FieldError]:
    errors = _validate_name(kind, obj.get("metadata") or {})
    spec = obj.get("spec") or {}
    match kind:
        case "Pod":
            errors += _validate_containers(spec.get("containers"), "spec.containers", required=True)
            errors += _validate_containers(spec.get("ephemeralContainers"), "spec.ephemeralContainers", required=False)
        case "Deployment" | "DaemonSet" | "ReplicaSet":
            template_spec = (spec.get("template") or {}).get("spec") or {}
            errors += _validate_containers(template_spec.get("containers"), "spec.template.spec.containers", required=True)
            if not (spec.get("selector") or {}):
                errors.append(FieldError("FieldValueRequired", "spec.selector"))
        case "NetworkPolicy":
            errors += _validate_network_policy(spec)
        case "Service":
            errors += _validate_ports(spec.get("ports"), "spec.ports")
    return errors


def invalid_message(kind: str, name: str, errors: list[FieldError]) -> str:
    details = [f"{error.field}: {error.message}" for error in errors]
    return f'{kind} "{name}" is invalid: ' + (details[0] if len(details) == 1 else "[" + ", ".join(details) + "]")


def pod_update_errors(old: dict, new: dict) -> list[FieldError]:
    """The only pod spec changes an update may make (ephemeral containers go through their subresource)."""
    def comparable(spec: dict) -> dict:
        spec = copy.deepcopy(spec or {})
        for key in ("containers", "initContainers"):
            for container in spec.get(key) or []:
                container.pop("image", None)
        for key in ("activeDeadlineSeconds", "tolerations", "terminationGracePeriodSeconds"):
            spec.pop(key, None)
        return spec

    if comparable(old.get("spec")) != comparable(new.get("spec")):
        return [FieldError("FieldValueForbidden", "spec", POD_UPDATE_MESSAGE)]
    return []


def ephemeral_update_errors(old: dict, new: dict) -> list[FieldError]:
    old_containers = {c.get("name"): c for c in (old.get("spec") or {}).get("ephemeralContainers") or []}
    new_containers = {c.get("name"): c for c in (new.get("spec") or {}).get("ephemeralContainers") or []}
    removed = sorted(set(old_containers) - set(new_containers))
    if removed:
        return [FieldError("FieldValueForbidden", "spec.ephemeralContainers",
                           f'existing ephemeral containers "{removed[0]}" may not be removed\n')]
    changed = sorted(name for name in old_containers if old_containers[name] != new_containers[name])
    if changed:
        return [FieldError("FieldValueForbidden", f"spec.ephemeralContainers[{changed[0]}]", "may not be changed")]
    return _validate_containers(list(new_containers.values()), "spec.ephemeralContainers", required=False)


def spec_changed(old: dict, new: dict) -> bool:
    """Generation moves when anything but metadata and status changes."""
    def body(obj):
        return {k: v for k, v in obj.items() if k not in ("metadata", "status", "apiVersion", "kind")}
    return body(old) != body(new)
