"""Pod Security admission as kube-apiserver enforces it: a namespace labelled `pod-security.kubernetes.io/enforce:
baseline|restricted` refuses pods (and ephemeral containers) that break its level, with the real 403 wording.

The checks are the ones a diagnosis tool's pods meet (host namespaces, hostPath, hostPorts, privileged, capabilities;
restricted adds allowPrivilegeEscalation, dropping ALL capabilities, runAsNonRoot, seccompProfile), in the order the
real admission lists them (baseline checks, then restricted ones, each by check id). Not modelled: AppArmor, SELinux,
procMount, sysctls, runAsUser=0 and restricted volume types; exemptions; the enforce-version's older rules.
"""

ENFORCE_LABEL = "pod-security.kubernetes.io/enforce"
VERSION_LABEL = "pod-security.kubernetes.io/enforce-version"
LEVELS = ("privileged", "baseline", "restricted")
BASELINE_CAPABILITIES = {"AUDIT_WRITE", "CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "KILL", "MKNOD", "NET_BIND_SERVICE", "SETFCAP",
                         "SETGID", "SETPCAP", "SETUID", "SYS_CHROOT"}


def _containers(spec: dict) -> list[dict]:
    return [c for key in ("initContainers", "containers", "ephemeralContainers") for c in spec.get(key) or [] if isinstance(c, dict)]


def _named(kind: str, names: list[str]) -> str:
    quoted = ", ".join(f'"{n}"' for n in names)
    return f"{kind}s {quoted}" if len(names) > 1 else f"{kind} {quoted}"


def _context(container: dict) -> dict:
    return container.get("securityContext") or {}


def baseline_violations(spec: dict) -> list[str]:
    found = []
    containers = _containers(spec)
    adding = [(c["name"], cap) for c in containers for cap in ((_context(c).get("capabilities") or {}).get("add") or [])
              if cap not in BASELINE_CAPABILITIES]
    if adding:
        names = sorted({name for name, _cap in adding})
        caps = ", ".join(f'"{cap}"' for cap in sorted({cap for _name, cap in adding}))
        found.append(f"non-default capabilities ({_named('container', names)} must not include {caps} in securityContext.capabilities.add)")
    hosts = [f"{field}=true" for field in ("hostNetwork", "hostPID", "hostIPC") if spec.get(field)]
    if hosts:
        found.append(f"host namespaces ({', '.join(hosts)})")
    host_paths = [v.get("name", "") for v in spec.get("volumes") or [] if isinstance(v, dict) and "hostPath" in v]
    if host_paths:
        found.append(f"hostPath volumes ({_named('volume', host_paths)})")
    ports = [(c["name"], p["hostPort"]) for c in containers for p in c.get("ports") or [] if isinstance(p, dict) and p.get("hostPort")]
    if ports:
        names = sorted({name for name, _port in ports})
        found.append(f"hostPort ({_named('container', names)} uses {'hostPorts' if len(ports) > 1 else 'hostPort'} "
                     f"{', '.join(str(port) for _name, port in ports)})")
    privileged = [c["name"] for c in containers if _context(c).get("privileged")]
    if privileged:
        found.append(f"privileged ({_named('container', privileged)} must not set securityContext.privileged=true)")
    return found


def restricted_violations(spec: dict) -> list[str]:
    found = []
    containers, pod_context = _containers(spec), spec.get("securityContext") or {}
    escalating = [c["name"] for c in containers if _context(c).get("allowPrivilegeEscalation") is not False]
    if escalating:
        found.append(f"allowPrivilegeEscalation != false ({_named('container', escalating)} must set "
                     "securityContext.allowPrivilegeEscalation=false)")
    keeping = [c["name"] for c in containers if "ALL" not in ((_context(c).get("capabilities") or {}).get("drop") or [])]
    if keeping:
        found.append(f'unrestricted capabilities ({_named("container", keeping)} must set securityContext.capabilities.drop=["ALL"])')
    as_root = [c["name"] for c in containers if _context(c).get("runAsNonRoot", pod_context.get("runAsNonRoot")) is not True]
    if as_root:
        found.append(f"runAsNonRoot != true (pod or {_named('container', as_root)} must set securityContext.runAsNonRoot=true)")
    profile = (pod_context.get("seccompProfile") or {}).get("type")
    unconfined = [c["name"] for c in containers
                  if (_context(c).get("seccompProfile") or {}).get("type", profile) not in ("RuntimeDefault", "Localhost")]
    if unconfined:
        found.append(f'seccompProfile (pod or {_named("container", unconfined)} must set securityContext.seccompProfile.type to '
                     '"RuntimeDefault" or "Localhost")')
    return found


def refusal(namespace_labels: dict, pod: dict) -> str | None:
    """The admission's message when the namespace's enforce level refuses this pod, else None."""
    labels = namespace_labels or {}
    level = labels.get(ENFORCE_LABEL, "privileged")
    if level not in LEVELS or level == "privileged":
        return None
    spec = pod.get("spec") or {}
    violations = baseline_violations(spec) + (restricted_violations(spec) if level == "restricted" else [])
    if not violations:
        return None
    # Validating admission runs after a generateName pod got its name: the message names the generated one.
    name = (pod.get("metadata") or {}).get("name", "")
    return f'pods "{name}" is forbidden: violates PodSecurity "{level}:{labels.get(VERSION_LABEL, "latest")}": {", ".join(violations)}'
