"""Reads a cluster's network setup from its objects and says whether pod egress to an IP is SNATed, and by what.

The analysis is pure functions, stdlib only (PyYAML used when importable), no I/O: it takes the dicts the Kubernetes
API returns (DaemonSets, ConfigMaps, Nodes, Calico IPPools, static control-plane Pods). The section at the end reads
them through a ``k8s.reader.ClusterReader`` for ``cluster_network_info``.

Source NAT of pod traffic to an external IP comes from the CNI (AWS VPC CNI, Calico natOutgoing,
Cilium, Flannel --ip-masq, kube-router, Weave, Antrea) or from ip-masq-agent. kube-proxy's
masqueradeAll/clusterCIDR only concern traffic to Service IPs: they never SNAT pod traffic to the internet.
"""

import ipaddress
import json
import re
import socket

from ansible_collections.kubediag.egress.plugins.module_utils.cluster.destinations import classify_destination, resolve_host

try:
    import yaml
except ImportError:
    yaml = None


class ClusterNetworkError(ValueError):
    """A cluster object that cannot be read; the message names the object and what to do."""


# The ranges upstream ip-masq-agent (and GKE) leave unmasqueraded when no ConfigMap is given.
IP_MASQ_AGENT_DEFAULT_NON_MASQ = (
    "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "192.0.0.0/24", "192.0.2.0/24",
    "192.88.99.0/24", "198.18.0.0/15", "198.51.100.0/24", "203.0.113.0/24", "240.0.0.0/4",
)
IP_MASQ_AGENT_CONFIG_KEYS = ("config", "ip-masq-agent", "ip-masq-agent-reconciled")
IP_MASQ_AGENT_CONFIGMAPS = ("ip-masq-agent", "azure-ip-masq-agent-config", "azure-ip-masq-agent-config-reconciled")
LINK_LOCAL = ipaddress.ip_network("169.254.0.0/16")

# (name, DaemonSet names, image fragments): names are checked first for every signature, images after.
CNI_SIGNATURES = (
    ("gke-dataplane-v2", ("anetd",), ()),
    ("aws-vpc-cni", ("aws-node",), ("amazon-k8s-cni",)),
    ("azure-cni", ("azure-cns", "azure-cni", "azure-vnet"), ("containernetworking/azure-cns", "containernetworking/azure-cni")),
    ("cilium", ("cilium",), ("cilium/cilium",)),
    ("calico", ("calico-node",), ("calico/node",)),
    ("canal", ("canal",), ()),
    ("flannel", ("kube-flannel-ds", "kube-flannel-ds-amd64", "kube-flannel"), ("flannel/flannel", "coreos/flannel", "flannelcni-flannel")),
    ("kube-router", ("kube-router",), ("kube-router",)),
    ("weave", ("weave-net",), ("weave-kube",)),
    ("antrea", ("antrea-agent",), ("antrea/antrea",)),
)
IP_MASQ_AGENT_DAEMONSETS = ("ip-masq-agent", "azure-ip-masq-agent")
_TRUE = ("true", "1", "yes", "on")


def load_yaml_document(text, what):
    """Parses a YAML document: PyYAML when importable, else the small subset parser below.

    Returns (value, parser) where parser is "yaml" or "minimal", so callers can say which one read it.
    """
    if not isinstance(text, str):
        raise ClusterNetworkError(f"{what}: expected YAML text, got {type(text).__name__}")
    if yaml is not None:
        try:
            return yaml.safe_load(text), "yaml"
        except yaml.YAMLError as error:
            raise ClusterNetworkError(f"{what}: not valid YAML ({error})") from None
    return parse_minimal_yaml(text, what), "minimal"


_MINIMAL_UNSUPPORTED = re.compile(r"^(?:&|\*|!|\?\s)")


def _strip_comment(text):
    quote = None
    for index, char in enumerate(text):
        if quote:
            if char == quote:
                quote = None
        elif char in "'\"":
            quote = char
        elif char == "#" and (index == 0 or text[index - 1] in " \t"):
            return text[:index].rstrip()
    return text.rstrip()


def _split_key(content):
    """'key: value' -> (key, value); None when content is not a mapping entry."""
    quote = None
    for index, char in enumerate(content):
        if quote:
            if char == quote:
                quote = None
        elif char in "'\"" and index == 0:
            quote = char
        elif char == ":" and (index + 1 == len(content) or content[index + 1] in " \t"):
            return _scalar(content[:index].strip(), None), content[index + 1:].strip()
    return None


def _scalar(text, what):
    if text in ("", "~", "null", "Null", "NULL"):
        return None
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
        body = text[1:-1]
        return body.replace("''", "'") if text[0] == "'" else json.loads(text)
    lowered = text.lower()
    if lowered in ("true", "yes", "on"):
        return True
    if lowered in ("false", "no", "off"):
        return False
    if re.fullmatch(r"[-+]?\d+", text):
        return int(text)
    if re.fullmatch(r"[-+]?(\d+\.\d*|\.\d+)([eE][-+]?\d+)?", text):
        return float(text)
    if text.startswith("[") and text.endswith("]"):
        inner = text[1:-1].strip()
        return [_scalar(part.strip(), what) for part in inner.split(",")] if inner else []
    if text == "{}":
        return {}
    if what and (_MINIMAL_UNSUPPORTED.match(text) or text.startswith(("{", "["))):
        raise ClusterNetworkError(f"{what}: {text!r} needs a full YAML parser; install PyYAML")
    return text


def parse_minimal_yaml(text, what):
    """Block mappings and sequences, plain/quoted scalars, flat flow lists, | and > blocks: enough for
    KubeProxyConfiguration, ip-masq-agent and Istio mesh config. Anything else raises, naming PyYAML."""
    lines = []
    for number, raw in enumerate(text.splitlines(), 1):
        if raw.strip() in ("---", "...") or not _strip_comment(raw).strip():
            lines.append((None, raw, number))
            continue
        if "\t" in raw[: len(raw) - len(raw.lstrip())]:
            raise ClusterNetworkError(f"{what} line {number}: a tab in the indentation is not valid YAML")
        lines.append((len(raw) - len(raw.lstrip(" ")), _strip_comment(raw).strip(), number))
    parser = _MinimalYaml(lines, what)
    value = parser.block(parser.skip(0), None)
    if parser.position < len(lines) and parser.skip(parser.position) < len(lines):
        raise ClusterNetworkError(f"{what} line {lines[parser.skip(parser.position)][2]}: unexpected indentation")
    return value


class _MinimalYaml:
    def __init__(self, lines, what):
        self.lines = lines
        self.what = what
        self.position = 0

    def skip(self, index):
        while index < len(self.lines) and self.lines[index][0] is None:
            index += 1
        self.position = index
        return index

    def block(self, index, parent_indent):
        if index >= len(self.lines):
            return None
        indent, content, _unused = self.lines[index]
        if parent_indent is not None and indent <= parent_indent and not content.startswith("-"):
            return None
        if content == "-" or content.startswith("- "):
            return self.sequence(index, indent)
        return self.mapping(index, indent)

    def value_after_key(self, index, indent, value):
        """The value of a key whose text after ':' is ``value``; nested blocks start on the next line."""
        if value in ("|", "|-", ">", ">-"):
            return self.block_scalar(index + 1, indent, value)
        if value:
            self.position = self.skip(index + 1)
            return _scalar(value, f"{self.what} line {self.lines[index][2]}")
        following = self.skip(index + 1)
        if following < len(self.lines):
            next_indent, next_content = self.lines[following][:2]
            if next_indent > indent or (next_indent == indent and (next_content == "-" or next_content.startswith("- "))):
                return self.block(following, indent if next_indent > indent else indent - 1)
        self.position = following
        return None

    def block_scalar(self, index, indent, style):
        collected = []
        while index < len(self.lines):
            raw_indent = self.lines[index][0]
            if raw_indent is not None and raw_indent <= indent:
                break
            collected.append(self.lines[index][1] if raw_indent is not None else "")
            index += 1
        self.position = self.skip(index)
        while collected and not collected[-1]:
            collected.pop()
        text = ("\n" if style.startswith("|") else " ").join(collected)
        return text if style.endswith("-") else text + "\n"

    def mapping(self, index, indent):
        result = {}
        while index < len(self.lines) and self.lines[index][0] == indent:
            content, number = self.lines[index][1], self.lines[index][2]
            entry = _split_key(content)
            if entry is None or content.startswith("- "):
                if content.startswith("- "):
                    break
                raise ClusterNetworkError(f"{self.what} line {number}: expected 'key: value', got {content!r}")
            key, value = entry
            result[key] = self.value_after_key(index, indent, value)
            index = self.skip(self.position)
        self.position = index
        return result

    def sequence(self, index, indent):
        result = []
        while index < len(self.lines) and self.lines[index][0] == indent and (self.lines[index][1] == "-" or self.lines[index][1].startswith("- ")):
            content, number = self.lines[index][1], self.lines[index][2]
            item = content[1:].strip()
            if not item:
                result.append(self.block(self.skip(index + 1), indent))
            elif _split_key(item) is not None:
                item_indent = indent + (len(content) - len(item))
                self.lines[index] = (item_indent, item, number)
                result.append(self.mapping(index, item_indent))
                self.lines[index] = (indent, content, number)
            else:
                result.append(_scalar(item, f"{self.what} line {number}"))
                self.position = self.skip(index + 1)
            index = self.skip(self.position)
        self.position = index
        return result


def _metadata(obj):
    metadata = obj.get("metadata") or {}
    return metadata.get("namespace") or "", metadata.get("name") or ""


def _require_objects(objects, what):
    if objects is None:
        return []
    if isinstance(objects, dict):
        objects = objects.get("items", [objects]) if objects.get("kind", "").endswith("List") or "items" in objects else [objects]
    if not isinstance(objects, (list, tuple)) or not all(isinstance(obj, dict) for obj in objects):
        raise ClusterNetworkError(f"{what}: expected a list of Kubernetes objects (dicts), got {type(objects).__name__}")
    return list(objects)


def pod_template_containers(obj):
    """Containers and init containers of a workload (DaemonSet, Deployment) or of a Pod."""
    spec = obj.get("spec") or {}
    pod_spec = (spec.get("template") or {}).get("spec") or spec
    return list(pod_spec.get("initContainers") or []) + list(pod_spec.get("containers") or [])


def container_env(container):
    """Literal env values; values from a ConfigMap/Secret/field show as '<from ...>' since they are not in the object."""
    env = {}
    for variable in container.get("env") or []:
        if "value" in variable:
            env[variable["name"]] = str(variable["value"])
        elif "valueFrom" in variable:
            env[variable["name"]] = f"<from {next(iter(variable['valueFrom']), 'elsewhere')}>"
    return env


def container_flags(container):
    """--flag=value / --flag value / --flag (True) from command and args; single-dash flags too."""
    argv = [str(arg) for arg in (container.get("command") or []) + (container.get("args") or [])]
    flags = {}
    for index, arg in enumerate(argv):
        if not arg.startswith("-") or arg in ("-", "--"):
            continue
        name, equals, value = arg.lstrip("-").partition("=")
        if equals:
            flags[name] = value
        elif index + 1 < len(argv) and not argv[index + 1].startswith("-"):
            flags[name] = argv[index + 1]
        else:
            flags[name] = True
    return flags


def _flag_true(value, default):
    if value is None:
        return default
    return value is True or str(value).lower() in _TRUE


def _parse_cidrs(values, what):
    cidrs = []
    for value in values:
        for part in str(value).split(","):
            part = part.strip()
            if not part:
                continue
            try:
                cidrs.append(str(ipaddress.ip_network(part, strict=False)))
            except ValueError:
                raise ClusterNetworkError(f"{what}: {part!r} is not a CIDR such as 10.0.0.0/8") from None
    return cidrs


def _configmap(configmaps, *names):
    for configmap in configmaps:
        if _metadata(configmap)[1] in names:
            return configmap
    return None


def _workload_summary(daemonset):
    namespace, name = _metadata(daemonset)
    containers = pod_template_containers(daemonset)
    env, flags = {}, {}
    for container in containers:
        env.update(container_env(container))
        flags.update(container_flags(container))
    return {"daemonset": f"{namespace}/{name}", "images": [container.get("image", "") for container in containers], "env": env, "flags": flags}


def _signature_of(daemonset):
    name = _metadata(daemonset)[1]
    for cni, names, _unused in CNI_SIGNATURES:
        if name in names:
            return cni
    images = [container.get("image", "") for container in pod_template_containers(daemonset)]
    for cni, _unused, fragments in CNI_SIGNATURES:
        if any(fragment in image for fragment in fragments for image in images):
            return cni
    return None


def _calico_masquerade(workload, ippools):
    env = workload["env"]
    if env.get("CALICO_NETWORKING_BACKEND") == "none":
        return {"enabled": False, "policy_only": True,
                "evidence": ["CALICO_NETWORKING_BACKEND=none: Calico enforces policy only; another CNI moves and NATs packets"]}
    if not ippools:
        hint = env.get("CALICO_IPV4POOL_NAT_OUTGOING")
        evidence = ["natOutgoing is set per IPPool and no IPPool was given (kubectl get ippools.crd.projectcalico.org -o yaml)"]
        if hint is not None:
            evidence.append(f"CALICO_IPV4POOL_NAT_OUTGOING={hint} only shaped the default pool when Calico first started")
        return {"enabled": None, "pools": [], "evidence": evidence}
    pools = []
    for pool in ippools:
        spec = pool.get("spec") or {}
        cidr = _parse_cidrs([spec.get("cidr", "")], f"IPPool {_metadata(pool)[1]} spec.cidr")
        pools.append({"name": _metadata(pool)[1], "cidr": cidr[0] if cidr else None,
                      "nat_outgoing": bool(spec.get("natOutgoing", False)), "disabled": bool(spec.get("disabled", False))})
    enabled_pools = [pool for pool in pools if not pool["disabled"]]
    nat = {pool["nat_outgoing"] for pool in enabled_pools}
    return {"enabled": nat.pop() if len(nat) == 1 else None, "pools": pools,
            "evidence": [f"IPPool {pool['name']} {pool['cidr']}: natOutgoing {str(pool['nat_outgoing']).lower()}" for pool in enabled_pools]}


def _cilium_masquerade(config):
    masquerade_key = "enable-ipv4-masquerade" if "enable-ipv4-masquerade" in config else "masquerade"
    enabled = _flag_true(config.get(masquerade_key), True)
    native = config.get("ipv4-native-routing-cidr") or config.get("native-routing-cidr")
    result = {"enabled": enabled, "non_masquerade_cidrs": _parse_cidrs([native], "cilium-config ipv4-native-routing-cidr") if native else [],
              "ip_masq_agent": _flag_true(config.get("enable-ip-masq-agent"), False),
              "bpf": _flag_true(config.get("enable-bpf-masquerade"), False),
              "evidence": [f"cilium-config {masquerade_key}={config.get(masquerade_key, 'unset (default true)')}"]}
    if native:
        result["evidence"].append(f"ipv4-native-routing-cidr={native}: Cilium does not masquerade traffic to it")
    if result["ip_masq_agent"]:
        result["evidence"].append("enable-ip-masq-agent=true: the ip-masq-agent ConfigMap's nonMasqueradeCIDRs decide")
    return result


def detect_cni(daemonsets, configmaps=None, ippools=None, nodes=None):
    """Which CNI plugins run, and what each says about masquerading pod egress.

    Returns {primary, plugins: [{name, daemonset, images, masquerade: {enabled, ..., evidence}}]}.
    enabled is True/False, or None when the objects given cannot tell.
    """
    daemonsets = _require_objects(daemonsets, "daemonsets")
    configmaps = _require_objects(configmaps, "configmaps")
    ippools = _require_objects(ippools, "ippools")
    plugins = []
    for daemonset in daemonsets:
        cni = _signature_of(daemonset)
        if cni is None:
            continue
        workload = _workload_summary(daemonset)
        plugin = {"name": cni, "daemonset": workload["daemonset"], "images": workload["images"]}
        plugin["masquerade"] = _masquerade_of(cni, workload, configmaps, ippools)
        plugins.append(plugin)
    if not plugins:
        for node in _require_objects(nodes, "nodes"):
            annotations = (node.get("metadata") or {}).get("annotations") or {}
            if any(key.startswith("flannel.alpha.coreos.com/") for key in annotations):
                plugins.append({"name": "flannel", "daemonset": None, "images": [],
                                "masquerade": {"enabled": None, "evidence": [
                                    "flannel annotations on the nodes but no flannel DaemonSet: flannel is embedded (k3s/RKE2), "
                                    "where it masquerades by default unless started with --flannel-ipmasq=false"]}})
                break
    order = [name for name, _unused, _unused in CNI_SIGNATURES]
    primary = min(plugins, key=lambda plugin: order.index(plugin["name"]))["name"] if plugins else None
    return {"primary": primary, "plugins": plugins}


def _masquerade_of(cni, workload, configmaps, ippools):
    env, flags = workload["env"], workload["flags"]
    if cni == "aws-vpc-cni":
        external = _flag_true(env.get("AWS_VPC_K8S_CNI_EXTERNALSNAT"), False)
        excluded = _parse_cidrs([env["AWS_VPC_K8S_CNI_EXCLUDE_SNAT_CIDRS"]], "AWS_VPC_K8S_CNI_EXCLUDE_SNAT_CIDRS") \
            if env.get("AWS_VPC_K8S_CNI_EXCLUDE_SNAT_CIDRS") else []
        evidence = [f"AWS_VPC_K8S_CNI_EXTERNALSNAT={env.get('AWS_VPC_K8S_CNI_EXTERNALSNAT', 'unset (default false)')}"]
        if excluded:
            evidence.append(f"AWS_VPC_K8S_CNI_EXCLUDE_SNAT_CIDRS={','.join(excluded)}")
        return {"enabled": not external, "external_snat": external, "exclude_snat_cidrs": excluded, "evidence": evidence}
    if cni == "cilium":
        config = (_configmap(configmaps, "cilium-config") or {}).get("data") or {}
        if not config:
            return {"enabled": None, "evidence": ["cilium-config ConfigMap not given: masquerading unknown (Cilium's default is on)"]}
        return _cilium_masquerade(config)
    if cni == "gke-dataplane-v2":
        return {"enabled": True, "ip_masq_agent": True,
                "evidence": ["GKE Dataplane V2 (anetd) masquerades as the ip-masq-agent ConfigMap (or GKE's defaults) says"]}
    if cni == "azure-cni":
        return {"enabled": None, "ip_masq_agent": True,
                "evidence": ["Azure CNI leaves pod egress masquerading to azure-ip-masq-agent; pod IPs are VNet IPs"]}
    if cni == "calico":
        return _calico_masquerade(workload, ippools)
    if cni in ("flannel", "canal"):
        enabled = "ip-masq" in flags or _flag_true(env.get("FLANNELD_IP_MASQ"), False)
        return {"enabled": enabled, "evidence": ["flanneld runs with --ip-masq" if enabled else "flanneld runs without --ip-masq"]}
    if cni == "kube-router":
        enabled = _flag_true(flags.get("enable-pod-egress"), True)
        return {"enabled": enabled, "evidence": [f"--enable-pod-egress={flags.get('enable-pod-egress', 'unset (default true)')}"]}
    if cni == "weave":
        return {"enabled": True, "evidence": [f"Weave masquerades traffic leaving IPALLOC_RANGE {env.get('IPALLOC_RANGE', '10.32.0.0/12')}"]}
    config_text = ((_configmap(configmaps, "antrea-config") or {}).get("data") or {}).get("antrea-agent.conf")
    if config_text is None:
        return {"enabled": True, "evidence": ["antrea-config not given: Antrea masquerades by default (noSNAT: false)"]}
    config, _unused = load_yaml_document(config_text, "antrea-config antrea-agent.conf")
    no_snat = bool((config or {}).get("noSNAT", False))
    return {"enabled": not no_snat, "evidence": [f"antrea-agent.conf noSNAT: {str(no_snat).lower()}"]}


def kube_proxy_config(configmap=None, daemonset=None):
    """kube-proxy's mode, masqueradeAll and clusterCIDR from its ConfigMap (kubeadm 'config.conf', EKS 'config') and flags.

    Returns {present, mode, mode_explicit, masquerade_all, cluster_cidrs, parser, sources}.
    """
    result = {"present": bool(configmap or daemonset), "mode": "iptables", "mode_explicit": False, "masquerade_all": False,
              "cluster_cidrs": [], "parser": None, "sources": []}
    if configmap:
        data = configmap.get("data") or {}
        if not isinstance(data, dict):
            raise ClusterNetworkError("kube-proxy ConfigMap: data is not a mapping")
        for key, text in sorted(data.items()):
            if "KubeProxyConfiguration" not in str(text):
                continue
            config, result["parser"] = load_yaml_document(text, f"kube-proxy ConfigMap key {key}")
            if not isinstance(config, dict):
                raise ClusterNetworkError(f"kube-proxy ConfigMap key {key}: expected a KubeProxyConfiguration mapping")
            if config.get("mode"):
                result.update(mode=config["mode"], mode_explicit=True)
            result["masquerade_all"] = bool((config.get("iptables") or {}).get("masqueradeAll", False))
            if config.get("clusterCIDR"):
                result["cluster_cidrs"] = _parse_cidrs([config["clusterCIDR"]], f"kube-proxy ConfigMap key {key} clusterCIDR")
            result["sources"].append(f"ConfigMap {'/'.join(_metadata(configmap))} key {key}")
            break
        else:
            raise ClusterNetworkError(f"kube-proxy ConfigMap {'/'.join(_metadata(configmap))}: no key holds a KubeProxyConfiguration "
                                      f"(keys: {', '.join(sorted(data)) or 'none'}); pass the kube-proxy or kube-proxy-config ConfigMap")
    if daemonset:
        flags = {}
        for container in pod_template_containers(daemonset):
            flags.update(container_flags(container))
        if flags.get("proxy-mode"):
            result.update(mode=flags["proxy-mode"], mode_explicit=True)
        if "masquerade-all" in flags:
            result["masquerade_all"] = _flag_true(flags["masquerade-all"], True)
        if flags.get("cluster-cidr"):
            result["cluster_cidrs"] = _parse_cidrs([flags["cluster-cidr"]], "kube-proxy --cluster-cidr")
        result["sources"].append(f"DaemonSet {'/'.join(_metadata(daemonset))} flags")
    return result


def ip_masq_agent(configmap=None, daemonset=None):
    """ip-masq-agent's effective config: the ConfigMap's 'config' (or AKS's keys), or the built-in defaults.

    Returns {present, config_source, non_masquerade_cidrs, masq_link_local, resync_interval, parser}.
    """
    result = {"present": bool(configmap or daemonset), "config_source": "defaults", "non_masquerade_cidrs": list(IP_MASQ_AGENT_DEFAULT_NON_MASQ),
              "masq_link_local": False, "resync_interval": "60s", "parser": None}
    if not configmap:
        return result
    data = configmap.get("data") or {}
    keys = [key for key in IP_MASQ_AGENT_CONFIG_KEYS if key in data]
    if not keys:
        raise ClusterNetworkError(f"ip-masq-agent ConfigMap {'/'.join(_metadata(configmap))}: none of the keys {', '.join(IP_MASQ_AGENT_CONFIG_KEYS)}; "
                                  "the agent reads its config from the 'config' key")
    cidrs = []
    for key in keys:
        config, result["parser"] = load_yaml_document(data[key], f"ip-masq-agent ConfigMap key {key}")
        config = config or {}
        if not isinstance(config, dict):
            raise ClusterNetworkError(f"ip-masq-agent ConfigMap key {key}: expected a mapping with nonMasqueradeCIDRs")
        cidrs.extend(_parse_cidrs(config.get("nonMasqueradeCIDRs") or [], f"ip-masq-agent ConfigMap key {key} nonMasqueradeCIDRs"))
        result["masq_link_local"] = bool(config.get("masqLinkLocal", result["masq_link_local"]))
        result["resync_interval"] = str(config.get("resyncInterval", result["resync_interval"]))
    result.update(config_source=f"ConfigMap {'/'.join(_metadata(configmap))} keys {', '.join(keys)}", non_masquerade_cidrs=list(dict.fromkeys(cidrs)))
    return result


_AWS_ZONE_REGION = re.compile(r"^([a-z]{2}(?:-gov|-iso[a-z]?)?-[a-z]+-\d+)")
_AZURE_ID = re.compile(r"^/subscriptions/(?P<subscription>[^/]+)/resourceGroups/(?P<group>[^/]+)/providers/Microsoft\.Compute/"
                       r"(?:virtualMachineScaleSets/(?P<scale_set>[^/]+)/virtualMachines/(?P<index>[^/]+)|virtualMachines/(?P<vm>[^/]+))$",
                       re.IGNORECASE)


def node_identity(node):
    """The cloud instance behind a Node, from spec.providerID and topology labels.

    Returns {name, cloud, region, zone, instance_id, project, resource_group, subscription, scale_set,
    provider_id, internal_ips, external_ips, pod_cidrs}; cloud is "unknown" for a provider we do not parse.
    """
    if not isinstance(node, dict):
        raise ClusterNetworkError(f"node: expected a Node object (dict), got {type(node).__name__}")
    metadata, spec, status = node.get("metadata") or {}, node.get("spec") or {}, node.get("status") or {}
    labels = metadata.get("labels") or {}
    provider_id = spec.get("providerID") or ""
    identity = {"name": metadata.get("name"), "cloud": "unknown", "region": labels.get("topology.kubernetes.io/region")
                or labels.get("failure-domain.beta.kubernetes.io/region"),
                "zone": labels.get("topology.kubernetes.io/zone") or labels.get("failure-domain.beta.kubernetes.io/zone"),
                "instance_id": None, "project": None, "resource_group": None, "subscription": None, "scale_set": None, "provider_id": provider_id,
                "internal_ips": [address["address"] for address in status.get("addresses") or [] if address.get("type") == "InternalIP"],
                "external_ips": [address["address"] for address in status.get("addresses") or [] if address.get("type") == "ExternalIP"],
                "pod_cidrs": _parse_cidrs(spec.get("podCIDRs") or ([spec["podCIDR"]] if spec.get("podCIDR") else []),
                                          f"node {metadata.get('name')} spec.podCIDRs")}
    scheme, _unused, path = provider_id.partition("://")
    if scheme == "aws":
        parts = [part for part in path.split("/") if part]
        identity.update(cloud="aws", instance_id=parts[-1] if parts else None)
        if len(parts) >= 2:
            identity["zone"] = parts[0]
        region = _AWS_ZONE_REGION.match(identity["zone"] or "")
        identity["region"] = identity["region"] or (region.group(1) if region else None)
    elif scheme == "gce":
        parts = path.split("/")
        if len(parts) != 3:
            raise ClusterNetworkError(f"node {identity['name']}: providerID {provider_id!r} is not gce://PROJECT/ZONE/INSTANCE")
        identity.update(cloud="gcp", project=parts[0], zone=parts[1], instance_id=parts[2])
        identity["region"] = identity["region"] or parts[1].rsplit("-", 1)[0]
    elif scheme == "azure":
        match = _AZURE_ID.match("/" + path.lstrip("/"))
        if not match:
            raise ClusterNetworkError(f"node {identity['name']}: providerID {provider_id!r} is not an Azure VM or scale-set VM resource id")
        identity.update(cloud="azure", subscription=match.group("subscription"), resource_group=match.group("group"),
                        scale_set=match.group("scale_set"), instance_id=match.group("vm") or f"{match.group('scale_set')}/{match.group('index')}")
    elif scheme:
        identity.update(cloud=scheme, instance_id=path.strip("/") or None)
    return identity


def _control_plane_flags(pods, component):
    for pod in pods:
        name = _metadata(pod)[1]
        for container in pod_template_containers(pod):
            if name.startswith(component) or container.get("name") == component:
                return container_flags(container)
    return {}


def cluster_cidrs(nodes=None, kube_proxy=None, control_plane_pods=None, kubeadm_config=None):
    """Pod and Service CIDRs with where each was read: {pod_cidrs: [{cidr, sources}], service_cidrs: [...]}."""
    pod, service = {}, {}

    def add(table, cidrs, source):
        for cidr in cidrs:
            table.setdefault(cidr, [])
            if source not in table[cidr]:
                table[cidr].append(source)

    for node in _require_objects(nodes, "nodes"):
        add(pod, node_identity(node)["pod_cidrs"], "node spec.podCIDRs")
    if kube_proxy:
        add(pod, kube_proxy["cluster_cidrs"], "kube-proxy clusterCIDR")
    pods = _require_objects(control_plane_pods, "control_plane_pods")
    apiserver = _control_plane_flags(pods, "kube-apiserver")
    controller_manager = _control_plane_flags(pods, "kube-controller-manager")
    if apiserver.get("service-cluster-ip-range"):
        add(service, _parse_cidrs([apiserver["service-cluster-ip-range"]], "kube-apiserver --service-cluster-ip-range"),
            "kube-apiserver --service-cluster-ip-range")
    if controller_manager.get("cluster-cidr"):
        add(pod, _parse_cidrs([controller_manager["cluster-cidr"]], "kube-controller-manager --cluster-cidr"), "kube-controller-manager --cluster-cidr")
    if kubeadm_config:
        text = (kubeadm_config.get("data") or {}).get("ClusterConfiguration")
        if text:
            config, _unused = load_yaml_document(text, "kubeadm-config ClusterConfiguration")
            networking = (config or {}).get("networking") or {}
            if networking.get("podSubnet"):
                add(pod, _parse_cidrs([networking["podSubnet"]], "kubeadm networking.podSubnet"), "kubeadm-config networking.podSubnet")
            if networking.get("serviceSubnet"):
                add(service, _parse_cidrs([networking["serviceSubnet"]], "kubeadm networking.serviceSubnet"), "kubeadm-config networking.serviceSubnet")
    return {"pod_cidrs": [{"cidr": cidr, "sources": sources} for cidr, sources in pod.items()],
            "service_cidrs": [{"cidr": cidr, "sources": sources} for cidr, sources in service.items()]}


def cluster_network_facts(daemonsets=None, configmaps=None, nodes=None, ippools=None, control_plane_pods=None, vpc_cidrs=None):
    """All of the above from the objects read from a cluster, in one dict snat_for() understands.

    ``vpc_cidrs``: the VPC/VNet CIDRs when known (from the cloud); AWS VPC CNI never SNATs inside them.
    """
    daemonsets = _require_objects(daemonsets, "daemonsets")
    configmaps = _require_objects(configmaps, "configmaps")
    by_name = {_metadata(daemonset)[1]: daemonset for daemonset in daemonsets}
    kube_proxy = kube_proxy_config(_configmap(configmaps, "kube-proxy", "kube-proxy-config"), by_name.get("kube-proxy"))
    masq_daemonset = next((by_name[name] for name in IP_MASQ_AGENT_DAEMONSETS if name in by_name), None)
    nodes = _require_objects(nodes, "nodes")
    return {
        "cni": detect_cni(daemonsets, configmaps, ippools, nodes),
        "kube_proxy": kube_proxy,
        "cilium_kube_proxy_replacement": ((_configmap(configmaps, "cilium-config") or {}).get("data") or {}).get("kube-proxy-replacement"),
        "ip_masq_agent": ip_masq_agent(_configmap(configmaps, *IP_MASQ_AGENT_CONFIGMAPS), masq_daemonset),
        "nodes": [node_identity(node) for node in nodes],
        "cidrs": cluster_cidrs(nodes, kube_proxy, control_plane_pods, _configmap(configmaps, "kubeadm-config")),
        "vpc_cidrs": _parse_cidrs(vpc_cidrs or [], "vpc_cidrs"),
    }


def _containing(ip, cidrs):
    return next((cidr for cidr in cidrs if ip.version == ipaddress.ip_network(cidr).version and ip in ipaddress.ip_network(cidr)), None)


def _ip_masq_decision(ip, config, name):
    if ip in LINK_LOCAL and not config["masq_link_local"]:
        return {"name": name, "snat": False, "reason": f"{name}: {ip} is link-local and masqLinkLocal is false"}
    cidr = _containing(ip, config["non_masquerade_cidrs"])
    where = "its default" if config["config_source"] == "defaults" else config["config_source"]
    if cidr:
        return {"name": name, "snat": False, "reason": f"{name}: {ip} is in nonMasqueradeCIDRs {cidr} ({where}), so pods reach it with their own IP"}
    return {"name": name, "snat": True, "reason": f"{name}: {ip} is outside every nonMasqueradeCIDR ({where}), so it is masqueraded"}


def _cni_decision(ip, plugin, facts):
    name, masquerade = plugin["name"], plugin["masquerade"]
    pod_cidrs = [entry["cidr"] for entry in facts["cidrs"]["pod_cidrs"]]
    if name == "aws-vpc-cni":
        if masquerade["external_snat"]:
            return {"name": "AWS VPC CNI", "snat": False, "reason": "AWS VPC CNI external SNAT is on: pods leave with their VPC IP "
                    "and the subnet's route must lead to a NAT gateway that translates them"}
        excluded = _containing(ip, masquerade["exclude_snat_cidrs"]) or _containing(ip, facts["vpc_cidrs"])
        if excluded:
            return {"name": "AWS VPC CNI", "snat": False, "reason": f"AWS VPC CNI does not SNAT to {excluded} (VPC or excluded CIDR)"}
        if ip.is_private and not facts["vpc_cidrs"]:
            return {"name": "AWS VPC CNI", "snat": None, "reason": f"AWS VPC CNI skips SNAT inside the VPC CIDRs, which were not given; {ip} is private"}
        return {"name": "AWS VPC CNI", "snat": True, "reason": "AWS VPC CNI SNATs pod traffic leaving the VPC to the node's primary ENI address"}
    if masquerade.get("policy_only"):
        return None
    label = {"gke-dataplane-v2": "GKE Dataplane V2", "azure-cni": "Azure CNI", "cilium": "Cilium", "calico": "Calico natOutgoing",
             "flannel": "Flannel --ip-masq", "canal": "Canal (flannel --ip-masq)", "kube-router": "kube-router", "weave": "Weave",
             "antrea": "Antrea"}[name]
    if masquerade.get("ip_masq_agent"):
        decision = _ip_masq_decision(ip, facts["ip_masq_agent"], label)
        return decision if masquerade["enabled"] is not False else {"name": label, "snat": False, "reason": f"{label}: masquerading is off"}
    if masquerade["enabled"] is None:
        return {"name": label, "snat": None, "reason": f"{label}: {'; '.join(masquerade['evidence'])}"}
    if not masquerade["enabled"]:
        return {"name": label, "snat": False, "reason": f"{label}: {'; '.join(masquerade['evidence'])}"}
    excluded = _containing(ip, masquerade.get("non_masquerade_cidrs") or []) or _containing(ip, pod_cidrs)
    if name == "calico":
        excluded = excluded or _containing(ip, [pool["cidr"] for pool in masquerade["pools"] if pool["cidr"]])
    if excluded:
        return {"name": label, "snat": False, "reason": f"{label}: {ip} is inside {excluded}, which it does not masquerade"}
    return {"name": label, "snat": True, "reason": f"{label}: {'; '.join(masquerade['evidence'])}"}


def snat_for(dest_ip, facts):
    """Is pod traffic to ``dest_ip`` source-NATed, and by what?

    Returns {snat: True | False | None (unknown), by, mechanisms: [{name, snat, reason}], reasons}.
    Any mechanism that SNATs wins (iptables/eBPF rules chain: one MASQUERADE suffices); snat is False only
    when every mechanism present declines, None when none says yes and one cannot tell.
    """
    try:
        ip = ipaddress.ip_address(str(dest_ip).strip())
    except ValueError:
        raise ClusterNetworkError(f"snat_for: {dest_ip!r} is not an IP address; resolve the host name first") from None
    if not isinstance(facts, dict) or "cni" not in facts:
        raise ClusterNetworkError("snat_for: facts must be the dict cluster_network_facts() returns")
    reasons = []
    service_cidr = _containing(ip, [entry["cidr"] for entry in facts["cidrs"]["service_cidrs"]])
    if service_cidr:
        masquerade_all = facts["kube_proxy"]["masquerade_all"]
        return {"snat": masquerade_all, "by": "kube-proxy masqueradeAll" if masquerade_all else None, "mechanisms": [],
                "reasons": [f"{ip} is in the Service CIDR {service_cidr}: kube-proxy DNATs it to a pod"
                            + ("; masqueradeAll SNATs it too" if masquerade_all else "; without masqueradeAll the pod IP is kept")]}
    pod_cidr = _containing(ip, [entry["cidr"] for entry in facts["cidrs"]["pod_cidrs"]])
    if pod_cidr:
        return {"snat": False, "by": None, "mechanisms": [], "reasons": [f"{ip} is in the pod CIDR {pod_cidr}: pod-to-pod traffic keeps its source IP"]}
    mechanisms = []
    handled_by_cni = set()
    for plugin in facts["cni"]["plugins"]:
        decision = _cni_decision(ip, plugin, facts)
        if decision:
            mechanisms.append(decision)
            if plugin["masquerade"].get("ip_masq_agent"):
                handled_by_cni.add("ip-masq-agent")
    if facts["ip_masq_agent"]["present"] and "ip-masq-agent" not in handled_by_cni:
        mechanisms.append(_ip_masq_decision(ip, facts["ip_masq_agent"], "ip-masq-agent"))
    if facts["kube_proxy"]["present"]:
        reasons.append("kube-proxy masqueradeAll/clusterCIDR apply to Service traffic only: they do not SNAT pod traffic to external IPs")
    reasons.extend(mechanism["reason"] for mechanism in mechanisms)
    snat_true = [mechanism for mechanism in mechanisms if mechanism["snat"] is True]
    if snat_true:
        return {"snat": True, "by": snat_true[0]["name"], "mechanisms": mechanisms, "reasons": reasons}
    if not mechanisms:
        reasons.append("no SNAT mechanism recognised (no known CNI DaemonSet, no ip-masq-agent): pass the kube-system DaemonSets and ConfigMaps")
        return {"snat": None, "by": None, "mechanisms": [], "reasons": reasons}
    if any(mechanism["snat"] is None for mechanism in mechanisms):
        return {"snat": None, "by": None, "mechanisms": mechanisms, "reasons": reasons}
    declining = mechanisms[0]["name"]
    reasons.append(f"pods reach {ip} with their own IP: it works only if something downstream translates it "
                   "(a cloud NAT gateway or Cloud NAT covering the pod range, Azure outbound for VNet pod IPs)")
    return {"snat": False, "by": declining, "mechanisms": mechanisms, "reasons": reasons}


# ---------------------------------------------------------------- reading the cluster for it

def read_cluster_network(reader, vpc_cidrs=None):
    """cluster_network_facts() from kube-system DaemonSets and ConfigMaps, Nodes, Calico IPPools and control-plane pods."""
    system = "kube-system"
    daemonsets = reader.list("DaemonSet", system)
    configmaps = reader.list("ConfigMap", system)
    nodes = reader.list("Node")
    ippools = reader.list("IPPool")
    control_plane = reader.list("Pod", system, label_selector="tier=control-plane")
    facts = cluster_network_facts(daemonsets, configmaps, nodes, ippools, control_plane, vpc_cidrs)
    facts["daemonsets"] = [f"{system}/{d['metadata']['name']}" for d in daemonsets]
    return facts


def snat_answer(facts, destination, resolver=socket.getaddrinfo):
    """snat_for() for an IP, or for a host name's first address (resolved on the controller)."""
    kind, text = classify_destination(destination, "destination")
    if kind not in ("ip", "host"):
        raise ValueError(f"destination {destination!r}: give an IP address or a host name, not a {kind}")
    ips = [text] if kind == "ip" else resolve_host(text, resolver)
    answer = snat_for(ips[0], facts)
    reasons = list(answer["reasons"])
    if kind == "host":
        reasons.insert(0, f"{text} resolved on the controller to {', '.join(ips)}; decided for {ips[0]}")
    return dict(answer, destination=text, ip=ips[0], reasons=reasons)
