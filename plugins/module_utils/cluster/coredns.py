"""Reads CoreDNS and kube-dns configuration the way CoreDNS does, and classifies CoreDNS logs.

The analysis is pure functions, stdlib only, no I/O: they take text or ConfigMap dicts. The section at the end reads them
from the cluster through a ``k8s.reader.ClusterReader`` (and probes the upstreams from a pod) for ``coredns_info``.

The grammar is the Caddyfile (v1) one CoreDNS embeds (github.com/coredns/caddy):
tokens split on white space, ``"quoted tokens"`` (``\\"`` escapes a quote, may span lines),
``#`` starts a comment outside quotes, ``{`` and ``}`` are only braces when they stand alone,
a server block's keys end at the end of the line unless a key ends with ``,``,
``(name) {...}`` defines a snippet, ``import`` splices a snippet or files in.
There is no backslash line continuation in that grammar: a trailing ``\\`` is an error here
(CoreDNS would pass it as an argument and the plugin would refuse it).
"""

import fnmatch
import ipaddress
import json
import re
from typing import NamedTuple

from ansible_collections.kubediag.egress.plugins.module_utils.cluster.destinations import HOST_NAME, classify_ip
from ansible_collections.kubediag.egress.plugins.module_utils.k8s.client import KubeError
from ansible_collections.kubediag.egress.plugins.module_utils.k8s.reader import pod_not_found, pod_status, selector_text
from ansible_collections.kubediag.egress.plugins.module_utils.probe.facts import parse_dig, parse_nslookup

ROOT_ZONE = "."
COREDNS_CONFIG_DIR = "/etc/coredns/"
NODE_RESOLV_CONF = "/etc/resolv.conf"

TRANSPORT_DEFAULT_PORTS = {"dns": 53, "tls": 853, "quic": 853, "grpc": 443, "https": 443, "https3": 443}

FORWARD_DEFAULTS = {
    "except": [],
    "force_tcp": False,
    "prefer_udp": False,
    "expire": "10s",
    "max_fails": 2,
    "policy": "random",
    "health_check": {"interval": "0.5s", "no_rec": False, "domain": "."},
    "max_concurrent": None,
    "tls": None,
    "tls_servername": None,
    "next": [],
    "failover": [],
}

NODELOCAL_PLACEHOLDERS = {
    "__PILLAR__LOCAL__DNS__": "the link-local address node-local-dns listens on (169.254.20.10 in the upstream manifest)",
    "__PILLAR__DNS__SERVER__": "the kube-dns Service ClusterIP, also bound on every node so pods keep their nameserver",
    "__PILLAR__DNS__DOMAIN__": "the cluster domain (cluster.local unless changed)",
    "__PILLAR__CLUSTER__DNS__": "filled in by node-cache at start: the kube-dns-upstream Service IP (CoreDNS behind it)",
    "__PILLAR__UPSTREAM__SERVERS__": "filled in by node-cache at start: the node's /etc/resolv.conf nameservers "
                                     "(or upstreamNameservers of the kube-dns ConfigMap)",
}

_ENV_PLACEHOLDER = re.compile(r"\{\$([^}]+)\}|\{%([^%]+)%\}")
_PILLAR = re.compile(r"__PILLAR__[A-Z0-9_]+?__(?=$|[^A-Z0-9_])")
_SNIPPET_KEY = re.compile(r"^\((.+)\)$")
_MAX_IMPORT_EXPANSIONS = 100


class DnsConfigError(ValueError):
    """DNS configuration that cannot be read (a Corefile, a kube-dns ConfigMap); the message says where and what to do."""


class CorefileError(DnsConfigError):
    """A Corefile CoreDNS would refuse; ``line`` (1-based, may be None) and ``source`` say where."""

    def __init__(self, message, line=None, source="Corefile"):
        self.line = line
        self.source = source
        where = f"{source} line {line}" if line else source
        super().__init__(f"{where}: {message}")


class Token(NamedTuple):
    text: str
    line: int
    end_line: int
    source: str
    quoted: bool

    def is_brace(self, brace):
        return not self.quoted and self.text == brace


def tokenize(text, source="Corefile"):
    """Splits Corefile text into tokens exactly as the Caddyfile v1 lexer does."""
    if not isinstance(text, str):
        raise CorefileError(f"expected the Corefile as text, got {type(text).__name__}", source=source)
    tokens = []
    position, length, line = 0, len(text), 1
    while position < length:
        char = text[position]
        if char == "\n":
            line += 1
            position += 1
        elif char.isspace():
            position += 1
        elif char == "#":
            while position < length and text[position] != "\n":
                position += 1
        elif char == '"':
            start_line = line
            position += 1
            chars, escaped = [], False
            while True:
                if position >= length:
                    raise CorefileError('unterminated quoted string: add the closing \'"\'', start_line, source)
                char = text[position]
                position += 1
                if char == "\\" and not escaped:
                    escaped = True
                    continue
                if char == '"' and not escaped:
                    break
                if escaped and char != '"':
                    chars.append("\\")
                if char == "\n":
                    line += 1
                chars.append(char)
                escaped = False
            tokens.append(Token("".join(chars), start_line, line, source, True))
        else:
            start = position
            while position < length and not text[position].isspace() and text[position] != "#":
                position += 1
            tokens.append(Token(text[start:position], line, line, source, False))
    return tokens


def _zone_name(name):
    name = name.strip().lower()
    if name in ("", ROOT_ZONE):
        return ROOT_ZONE
    return name.rstrip(".") + "."


def _reverse_zones(cidr, key, token):
    try:
        network = ipaddress.ip_network(cidr, strict=False)
    except ValueError:
        raise CorefileError(f"server key {key!r}: {cidr!r} is not a valid CIDR", token.line, token.source) from None
    label_bits = 8 if network.version == 4 else 4
    boundary = -(-network.prefixlen // label_bits) * label_bits
    subnets = [network] if boundary == network.prefixlen else list(network.subnets(new_prefix=boundary))
    zones = []
    for subnet in subnets:
        labels = subnet.network_address.reverse_pointer.split(".")
        dropped = (subnet.max_prefixlen - boundary) // label_bits
        zones.append(_zone_name(".".join(labels[dropped:])))
    return zones


def _address_of(token):
    """One server block key (``dns://.:53``, ``example.com``, ``10.0.0.0/24``) as CoreDNS normalises it."""
    key = token.text
    transport, rest = "dns", key
    scheme = re.match(r"^([A-Za-z0-9]+)://(.*)$", key)
    if scheme:
        transport, rest = scheme.group(1).lower(), scheme.group(2)
        if transport not in TRANSPORT_DEFAULT_PORTS:
            raise CorefileError(f"server key {key!r}: unknown transport {transport}://, CoreDNS knows "
                                + ", ".join(f"{name}://" for name in TRANSPORT_DEFAULT_PORTS), token.line, token.source)
    host, port = rest, TRANSPORT_DEFAULT_PORTS[transport]
    # As CoreDNS does: a port is digits after the last colon, so IPv6 reverse keys (fd00::/8) keep their colons.
    before, colon, port_text = rest.rpartition(":")
    if colon and port_text.isdigit():
        if not 0 < int(port_text) < 65536:
            raise CorefileError(f"server key {key!r}: port {port_text!r} is not a number from 1 to 65535", token.line, token.source)
        host, port = before, int(port_text)
    elif colon and not port_text:
        raise CorefileError(f"server key {key!r}: nothing after the last ':'; give a port or remove the colon", token.line, token.source)
    zones = _reverse_zones(host, key, token) if "/" in host else [_zone_name(host)]
    return [{"key": key, "zone": zone, "port": port, "transport": transport} for zone in zones]


class _Parser:
    def __init__(self, tokens, imports, source):
        self.tokens = tokens
        self.position = 0
        self.imports = {_import_path(name): (name, text) for name, text in (imports or {}).items()}
        self.source = source
        self.snippets = {}
        self.import_records = []
        self.expansions = 0

    def at_end(self):
        return self.position >= len(self.tokens)

    def current(self):
        return self.tokens[self.position]

    def starts_line(self, index):
        if index == 0:
            return True
        previous, token = self.tokens[index - 1], self.tokens[index]
        return previous.source != token.source or previous.end_line < token.line

    def error(self, message, token=None):
        token = token or (self.tokens[-1] if self.tokens else None)
        return CorefileError(message, token.line if token else None, token.source if token else self.source)

    def expand_import(self, context):
        """Splices ``import X`` in place: a snippet or files from ``imports``; unresolved ones are only recorded."""
        keyword = self.current()
        if self.position + 1 >= len(self.tokens) or self.starts_line(self.position + 1):
            raise self.error("import needs one argument (a snippet name or a file glob)", keyword)
        pattern = self.tokens[self.position + 1].text
        if self.position + 2 < len(self.tokens) and not self.starts_line(self.position + 2):
            raise self.error(f"import takes one argument, got more after {pattern!r}", keyword)
        self.expansions += 1
        if self.expansions > _MAX_IMPORT_EXPANSIONS:
            raise self.error(f"more than {_MAX_IMPORT_EXPANSIONS} imports expanded: an import cycle around {pattern!r}?", keyword)
        record = {"pattern": pattern, "line": keyword.line, "context": context, "kind": "file", "resolved": []}
        spliced = []
        if pattern in self.snippets:
            record["kind"] = "snippet"
            record["resolved"] = [pattern]
            spliced = [token._replace(source=f"snippet {pattern}") for token in self.snippets[pattern]]
        else:
            wanted = _import_path(pattern)
            for path in sorted(self.imports):
                if fnmatch.fnmatchcase(path, wanted):
                    name, text = self.imports[path]
                    record["resolved"].append(name)
                    spliced.extend(tokenize(text, source=name))
        if keyword.source != self.source:
            record["source"] = keyword.source
        self.import_records.append(record)
        self.tokens[self.position:self.position + 2] = spliced
        return record

    def parse_all(self):
        blocks = []
        while not self.at_end():
            token = self.current()
            if token.text == "import" and not token.quoted and self.starts_line(self.position):
                self.expand_import("top-level")
                continue
            key_tokens = self.read_keys()
            snippet = _SNIPPET_KEY.match(key_tokens[0].text) if len(key_tokens) == 1 else None
            if snippet:
                self.read_snippet(snippet.group(1), key_tokens[0])
                continue
            blocks.append(self.read_server_block(key_tokens))
        return blocks

    def read_keys(self):
        keys, expecting_another = [], False
        while not self.at_end():
            token = self.current()
            if token.is_brace("{"):
                if expecting_another:
                    raise self.error("a server key ends with ',' but '{' follows: remove the extra comma", token)
                break
            if token.is_brace("}"):
                raise self.error("unexpected '}': no '{' is open here; remove it or add the missing '{'", token=token)
            if keys and not expecting_another and self.starts_line(self.position):
                break
            if token.text.endswith("{") and not token.quoted and len(token.text) > 1:
                raise self.error(f"{token.text!r}: put a space before '{{' (a brace is only a brace on its own)", token)
            text = token.text
            expecting_another = text.endswith(",")
            for part in text.split(","):
                if part:
                    keys.append(token._replace(text=part))
            self.position += 1
        if expecting_another:
            raise self.error("the last server key ends with ',' but no key follows")
        if not keys:
            raise self.error("a server block needs at least one key (a zone such as '.:53')", self.tokens[self.position - 1])
        return keys

    def read_snippet(self, name, key_token):
        if self.at_end() or not self.current().is_brace("{"):
            raise self.error(f"snippet ({name}) needs a '{{' block", key_token)
        if name in self.snippets:
            raise self.error(f"snippet ({name}) is defined twice", key_token)
        depth, start = 1, self.position + 1
        self.position += 1
        while not self.at_end():
            token = self.current()
            depth += token.is_brace("{") - token.is_brace("}")
            if depth == 0:
                self.snippets[name] = self.tokens[start:self.position]
                self.position += 1
                return
            self.position += 1
        raise self.error(f"unbalanced braces: the '{{' of snippet ({name}) on line {key_token.line} is never closed", key_token)

    def read_server_block(self, key_tokens):
        addresses = [address for token in key_tokens for address in _address_of(token)]
        first_import = len(self.import_records)
        if not self.at_end() and self.current().is_brace("{"):
            opening = self.current()
            self.position += 1
            plugins = self.read_items(opening)
        else:
            plugins = self.read_items(None)
        ports = {address["port"] for address in addresses}
        transports = {address["transport"] for address in addresses}
        return {
            "keys": [token.text for token in key_tokens],
            "zones": list(dict.fromkeys(address["zone"] for address in addresses)),
            "port": ports.pop() if len(ports) == 1 else None,
            "transport": transports.pop() if len(transports) == 1 else None,
            "addresses": addresses,
            "plugins": plugins,
            "imports": [record for record in self.import_records[first_import:] if record["context"] != "top-level"],
            "line": key_tokens[0].line,
        }

    def read_items(self, opening):
        """Items up to the '}' that matches ``opening`` (or to the end when the server block has no braces)."""
        items = []
        while True:
            if self.at_end():
                if opening is None:
                    return items
                raise CorefileError(f"unbalanced braces: the '{{' on line {opening.line} is never closed; add a '}}'",
                                    opening.line, opening.source)
            token = self.current()
            if token.is_brace("}"):
                if opening is None:
                    raise self.error("unexpected '}': no '{' is open here; remove it or add the missing '{'", token=token)
                self.position += 1
                return items
            if token.is_brace("{"):
                raise self.error("'{' must be on the same line as the plugin or option it opens", token)
            if token.text == "import" and not token.quoted and self.starts_line(self.position):
                self.expand_import("block")
                continue
            items.append(self.read_item())

    def read_item(self):
        name = self.current()
        self.position += 1
        args, block = [], []
        while not self.at_end() and not self.starts_line(self.position):
            token = self.current()
            if token.is_brace("}"):
                break
            if token.is_brace("{"):
                self.position += 1
                block = self.read_items(token)
                break
            if token.text == "\\" and not token.quoted and (self.position + 1 >= len(self.tokens) or self.starts_line(self.position + 1)):
                raise self.error("a line ends with '\\': the Corefile grammar has no line continuation; "
                                 "put the plugin and its arguments on one line", token)
            args.append(token.text)
            self.position += 1
        item = {"name": name.text, "args": args, "block": block, "line": name.line}
        if name.source != self.source:
            item["source"] = name.source
        return item


def _import_path(pattern):
    """Import patterns are relative to the Corefile's directory, /etc/coredns in every common deployment."""
    return pattern[len(COREDNS_CONFIG_DIR):] if pattern.startswith(COREDNS_CONFIG_DIR) else pattern.lstrip("./")


def read_corefile(text, imports=None, source="Corefile"):
    """Parses a Corefile into {server_blocks, imports, snippets, placeholders}.

    ``imports`` optionally maps file names (relative to /etc/coredns, e.g. ``custom/x.server``) to their
    text; imports that match nothing are recorded with ``resolved: []`` and not guessed at.
    """
    if imports is not None and not isinstance(imports, dict):
        raise CorefileError(f"imports must map file names to Corefile text, got {type(imports).__name__}", source=source)
    tokens = tokenize(text, source)
    for name, imported in (imports or {}).items():
        if not isinstance(imported, str):
            raise CorefileError(f"import {name!r}: expected text, got {type(imported).__name__}", source=source)
    parser = _Parser(tokens, imports, source)
    blocks = parser.parse_all()
    placeholders = []
    for token in parser.tokens:
        for match in _ENV_PLACEHOLDER.finditer(token.text):
            placeholders.append({"name": match.group(1) or match.group(2), "text": match.group(0), "line": token.line})
    return {"server_blocks": blocks, "imports": parser.import_records, "snippets": sorted(parser.snippets), "placeholders": placeholders}


def parse_corefile(text, imports=None):
    """The server blocks of a Corefile: [{keys, zones, port, transport, addresses, plugins, imports, line}]."""
    return read_corefile(text, imports)["server_blocks"]


def _blocks_of(corefile):
    if isinstance(corefile, str):
        return parse_corefile(corefile)
    if isinstance(corefile, dict) and "server_blocks" in corefile:
        return corefile["server_blocks"]
    if isinstance(corefile, list):
        return corefile
    raise CorefileError(f"expected Corefile text or parsed server blocks, got {type(corefile).__name__}")


def _in_zone(name, zone):
    return zone == ROOT_ZONE or name == zone or name.endswith("." + zone)


def server_block_for(corefile, name=ROOT_ZONE, port=53, transport="dns"):
    """The server block CoreDNS picks for a query name: the most specific zone on that port, or None."""
    name = _zone_name(name)
    best, best_zone = None, None
    for block in _blocks_of(corefile):
        for address in block["addresses"]:
            if address["port"] != port or address["transport"] != transport or not _in_zone(name, address["zone"]):
                continue
            if best_zone is None or len(address["zone"]) > len(best_zone):
                best, best_zone = block, address["zone"]
    return best


def plugins_named(block, *names):
    return [plugin for plugin in block["plugins"] if plugin["name"] in names]


def parse_upstream(text):
    """One forward/proxy target: an address, a resolv.conf-style file, or an unfilled placeholder."""
    upstream = {"raw": text}
    if _PILLAR.search(text) or _ENV_PLACEHOLDER.search(text):
        upstream.update(kind="placeholder", meaning=NODELOCAL_PLACEHOLDERS.get(text, "filled in when CoreDNS starts"))
        return upstream
    if text.startswith((".", "/")) and "://" not in text:
        upstream.update(kind="resolv_conf" if text == NODE_RESOLV_CONF else "file", path=text)
        if text == NODE_RESOLV_CONF:
            upstream["meaning"] = ("the nameservers in the CoreDNS pod's /etc/resolv.conf: the node's resolv.conf "
                                   "when the pod runs with dnsPolicy: Default, as CoreDNS deployments do")
        return upstream
    transport, rest = "dns", text
    scheme = re.match(r"^([A-Za-z0-9]+)://(.*)$", text)
    if scheme:
        transport, rest = scheme.group(1).lower(), scheme.group(2)
    host, port = rest, TRANSPORT_DEFAULT_PORTS.get(transport, 53)
    bracketed = re.match(r"^\[([^\]]+)\](?::(\d+))?$", rest)
    if bracketed:
        host, port = bracketed.group(1), int(bracketed.group(2) or port)
    elif rest.count(":") == 1:
        host, port_text = rest.split(":")
        port = int(port_text) if port_text.isdigit() else None
    try:
        ip = str(ipaddress.ip_address(host))
    except ValueError:
        upstream.update(kind="invalid", problem="not an IP address, [IPv6]:port or file path; CoreDNS refuses this target")
        return upstream
    if port is None or not 0 < port < 65536:
        upstream.update(kind="invalid", problem="the port is not a number from 1 to 65535")
        return upstream
    upstream.update(kind="address", transport=transport, ip=ip, port=port)
    return upstream


def _forward_options(items):
    options = {}
    unknown = {}
    for item in items:
        name, args = item["name"], item["args"]
        if name in ("force_tcp", "prefer_udp"):
            options[name] = True
        elif name == "except":
            options["except"] = [_zone_name(arg) for arg in args]
        elif name in ("max_fails", "max_concurrent"):
            if len(args) != 1 or not args[0].isdigit():
                raise CorefileError(f"forward option {name} needs one whole number, got {' '.join(args)!r}", item["line"])
            options[name] = int(args[0])
        elif name in ("expire", "policy", "tls_servername") and len(args) == 1:
            options[name] = args[0]
        elif name == "tls":
            options["tls"] = args
        elif name in ("next", "failover"):
            options[name] = [arg.upper() for arg in args]
        elif name == "health_check" and args:
            options["health_check"] = {"interval": args[0], "no_rec": "no_rec" in args[1:],
                                       "domain": _zone_name(args[args.index("domain") + 1]) if "domain" in args[1:-1] else ROOT_ZONE}
        else:
            unknown[name] = args
    return options, unknown


def describe_forward(plugin):
    """A forward (or legacy proxy) plugin: {plugin, from, upstreams, options, explicit_options, unknown_options, ...}."""
    if not plugin["args"]:
        raise CorefileError(f"{plugin['name']} needs FROM and at least one TO", plugin["line"])
    options, unknown = _forward_options(plugin["block"])
    upstreams = [parse_upstream(arg) for arg in plugin["args"][1:]]
    return {
        "plugin": plugin["name"],
        "from": _zone_name(plugin["args"][0]),
        "upstreams": upstreams,
        "options": {**FORWARD_DEFAULTS, **options},
        "explicit_options": sorted(options),
        "unknown_options": unknown,
        "uses_node_resolv_conf": any(upstream["kind"] == "resolv_conf" for upstream in upstreams),
        "line": plugin["line"],
    }


def forward_of(corefile, zone=ROOT_ZONE, port=53):
    """Where CoreDNS forwards queries for ``zone`` (a zone or query name) arriving on ``port``.

    Returns {zone, server_line, plugin, from, upstreams, options, explicit_options, unknown_options,
    uses_node_resolv_conf, line}; plugin is None (with a ``reason``) when nothing forwards that name.
    """
    name = _zone_name(zone)
    block = server_block_for(corefile, name, port)
    empty = {"zone": None, "server_line": None, "plugin": None, "from": None, "upstreams": [], "options": {},
             "explicit_options": [], "unknown_options": {}, "uses_node_resolv_conf": False, "line": None}
    if block is None:
        return {**empty, "reason": f"no server block serves {name} on port {port}: CoreDNS answers REFUSED for it"}
    served_zone = max((address["zone"] for address in block["addresses"] if _in_zone(name, address["zone"])), key=len)
    candidates = []
    for plugin in plugins_named(block, "forward", "proxy"):
        forward = describe_forward(plugin)
        if _in_zone(name, forward["from"]) and not any(_in_zone(name, excluded) for excluded in forward["options"]["except"]):
            candidates.append(forward)
    if not candidates:
        return {**empty, "zone": served_zone, "server_line": block["line"],
                "reason": f"the server block for {served_zone} (line {block['line']}) has no forward or proxy covering {name}"}
    chosen = max(candidates, key=lambda forward: len(forward["from"]))
    return {"zone": served_zone, "server_line": block["line"], **chosen}


def _hosts_of(plugin):
    entries, options = [], {}
    for item in plugin["block"]:
        try:
            ipaddress.ip_address(item["name"])
        except ValueError:
            options[item["name"]] = item["args"]
            continue
        entries.append({"ip": item["name"], "names": [_zone_name(name) for name in item["args"]]})
    return {"file": plugin["args"][0] if plugin["args"] else "/etc/hosts", "zones": [_zone_name(arg) for arg in plugin["args"][1:]],
            "entries": entries, "fallthrough": "fallthrough" in options, "options": options}


def _kubernetes_of(plugin, block):
    options = {item["name"]: item["args"] for item in plugin["block"]}
    return {"zones": [_zone_name(arg) for arg in plugin["args"]] or block["zones"],
            "pods": (options.get("pods") or ["disabled"])[0],
            "fallthrough": [_zone_name(arg) for arg in options["fallthrough"]] if "fallthrough" in options else None,
            "ttl": int(options["ttl"][0]) if (options.get("ttl") or [""])[0].isdigit() else None}


def _cache_of(plugin):
    ttl = plugin["args"][0] if plugin["args"] else None
    return {"ttl": int(ttl) if ttl and ttl.isdigit() else None, "zones": [_zone_name(arg) for arg in plugin["args"][1:]],
            "options": {item["name"]: item["args"] for item in plugin["block"]}}


_FLAG_PLUGINS = ("errors", "log", "loop", "reload", "health", "ready", "loadbalance", "bind", "prometheus", "autopath")


def describe_server_block(block):
    """What the server block does, plugin by plugin: presence flags, hosts entries, rewrite rules, forward."""
    names = [plugin["name"] for plugin in block["plugins"]]
    summary = {"zones": block["zones"], "port": block["port"], "transport": block["transport"], "line": block["line"]}
    for flag in _FLAG_PLUGINS:
        summary[flag] = flag in names
    bind = plugins_named(block, "bind")
    summary["bind"] = [arg for plugin in bind for arg in plugin["args"]]
    cache = plugins_named(block, "cache")
    summary["cache"] = _cache_of(cache[0]) if cache else None
    hosts = plugins_named(block, "hosts")
    summary["hosts"] = _hosts_of(hosts[0]) if hosts else None
    summary["rewrite"] = [{"args": plugin["args"], "rules": [[item["name"], *item["args"]] for item in plugin["block"]], "line": plugin["line"]}
                          for plugin in plugins_named(block, "rewrite")]
    kubernetes = plugins_named(block, "kubernetes")
    summary["kubernetes"] = _kubernetes_of(kubernetes[0], block) if kubernetes else None
    summary["forward"] = [describe_forward(plugin) for plugin in plugins_named(block, "forward", "proxy")]
    summary["plugins"] = names
    summary["imports"] = [record["pattern"] for record in block["imports"]]
    return summary


def stub_zones(corefile):
    """Server blocks for zones other than the root, with where each forwards: [{zone, port, upstreams, line}]."""
    stubs = []
    for block in _blocks_of(corefile):
        forwards = [describe_forward(plugin) for plugin in plugins_named(block, "forward", "proxy")]
        for address in block["addresses"]:
            if address["zone"] == ROOT_ZONE:
                continue
            upstreams = [upstream for forward in forwards if _in_zone(address["zone"], forward["from"]) for upstream in forward["upstreams"]]
            stubs.append({"zone": address["zone"], "port": address["port"], "upstreams": upstreams, "line": block["line"]})
    return stubs


def _is_loopback(upstream):
    return upstream["kind"] == "address" and ipaddress.ip_address(upstream["ip"]).is_loopback


def corefile_warnings(document, cluster_dns_ip=None):
    """Configuration that breaks or hides external resolution: [{id, message, line}]."""
    blocks = document["server_blocks"]
    warnings = []
    root = server_block_for(blocks, ROOT_ZONE, 53)
    if root is None:
        warnings.append({"id": "no_root_zone", "line": None,
                         "message": "no server block serves '.' on port 53: every name outside the configured zones is REFUSED"})
    forward = forward_of(blocks, ROOT_ZONE, 53)
    if root is not None and forward["plugin"] is None:
        warnings.append({"id": "no_forward", "line": root["line"],
                         "message": "the '.' server block forwards nowhere: external names get SERVFAIL; add 'forward . /etc/resolv.conf'"})
    if root is not None and "errors" not in [plugin["name"] for plugin in root["plugins"]]:
        warnings.append({"id": "errors_plugin_missing", "line": root["line"],
                         "message": "the '.' server block has no 'errors' plugin: upstream failures never reach the CoreDNS log"})
    for block in blocks:
        for plugin in plugins_named(block, "forward", "proxy"):
            described = describe_forward(plugin)
            if plugin["name"] == "proxy":
                warnings.append({"id": "proxy_plugin_removed", "line": plugin["line"],
                                 "message": "the proxy plugin left CoreDNS in 1.5: newer CoreDNS refuses this Corefile; use forward"})
            for upstream in described["upstreams"]:
                if _is_loopback(upstream):
                    warnings.append({"id": "forward_to_loopback", "line": plugin["line"],
                                     "message": f"forwards to {upstream['raw']}, the CoreDNS pod itself: a loop unless a local resolver listens there"})
                elif cluster_dns_ip and upstream["kind"] == "address" and upstream["ip"] == cluster_dns_ip:
                    warnings.append({"id": "forward_to_cluster_dns", "line": plugin["line"],
                                     "message": f"forwards to {upstream['raw']}, the cluster DNS Service: queries loop back into CoreDNS"})
                elif upstream["kind"] == "invalid":
                    warnings.append({"id": "invalid_upstream", "line": plugin["line"],
                                     "message": f"forward target {upstream['raw']!r}: {upstream['problem']}"})
            for option in described["unknown_options"]:
                warnings.append({"id": "unknown_forward_option", "line": plugin["line"],
                                 "message": f"{plugin['name']} option {option!r} is unknown to CoreDNS: the Corefile will not load"})
    for record in document["imports"]:
        if not record["resolved"]:
            warnings.append({"id": "unresolved_import", "line": record["line"],
                             "message": f"import {record['pattern']} was not resolved: plugins or server blocks it adds are not analysed"})
    return warnings


def corefile_summary(text, imports=None, cluster_dns_ip=None):
    """Everything the verdict needs from a Corefile in one dict (see docs/cluster-analysis.md)."""
    document = read_corefile(text, imports)
    return {
        "server_blocks": [describe_server_block(block) for block in document["server_blocks"]],
        "forward": forward_of(document["server_blocks"], ROOT_ZONE, 53),
        "stub_zones": stub_zones(document["server_blocks"]),
        "imports": document["imports"],
        "snippets": document["snippets"],
        "placeholders": document["placeholders"],
        "warnings": corefile_warnings(document, cluster_dns_ip),
    }


def _configmap_data(configmap, what):
    if not isinstance(configmap, dict):
        raise DnsConfigError(f"{what}: expected a ConfigMap object (a dict), got {type(configmap).__name__}")
    data = configmap.get("data") or {}
    if not isinstance(data, dict):
        raise DnsConfigError(f"{what}: the ConfigMap's data is {type(data).__name__}, not a mapping")
    return data


def aks_corefile(coredns_configmap, custom_configmap=None):
    """AKS: the coredns ConfigMap's Corefile with coredns-custom keys spliced in where AKS imports them.

    AKS mounts coredns-custom at /etc/coredns/custom; its Corefile imports ``custom/*.override`` inside
    the '.' block and ``custom/*.server`` at top level. Keys with other suffixes are ignored by AKS.
    """
    data = _configmap_data(coredns_configmap, "coredns ConfigMap")
    if "Corefile" not in data:
        raise DnsConfigError("coredns ConfigMap: no 'Corefile' key; is this the kube-system/coredns ConfigMap?")
    custom = _configmap_data(custom_configmap, "coredns-custom ConfigMap") if custom_configmap else {}
    imports = {f"custom/{key}": value for key, value in custom.items() if key.endswith((".override", ".server"))}
    summary = corefile_summary(data["Corefile"], imports)
    summary["ignored_custom_keys"] = sorted(key for key in custom if not key.endswith((".override", ".server")))
    return summary


def _json_value(data, key, expected_type, what):
    raw = data.get(key)
    if raw in (None, ""):
        return expected_type()
    try:
        value = json.loads(raw)
    except ValueError as error:
        raise DnsConfigError(f"kube-dns ConfigMap key {key}: not valid JSON ({error}); expected {what}") from None
    if not isinstance(value, expected_type):
        raise DnsConfigError(f"kube-dns ConfigMap key {key}: expected {what}, got {type(value).__name__}")
    return value


def kube_dns_config(configmap):
    """The legacy kube-dns ConfigMap (kube-system/kube-dns, GKE's default): upstreams and stub domains."""
    data = _configmap_data(configmap, "kube-dns ConfigMap")
    upstreams = _json_value(data, "upstreamNameservers", list, 'a JSON list of IPs, e.g. ["8.8.8.8"]')
    stubs = _json_value(data, "stubDomains", dict, 'a JSON object of domain to IP list, e.g. {"corp.example": ["10.0.0.53"]}')
    warnings = []
    if len(upstreams) > 3:
        warnings.append(f"upstreamNameservers has {len(upstreams)} entries: kube-dns uses at most 3")
    for domain, servers in stubs.items():
        if not isinstance(servers, list) or not servers:
            raise DnsConfigError(f"kube-dns ConfigMap stubDomains[{domain!r}]: expected a non-empty list of IPs")
    return {
        "upstream_nameservers": [parse_upstream(str(server)) for server in upstreams],
        "uses_node_resolv_conf": not upstreams,
        "stub_domains": {_zone_name(domain): [parse_upstream(str(server)) for server in servers] for domain, servers in stubs.items()},
        "warnings": warnings,
    }


def nodelocal_dns(configmap, daemonset=None):
    """NodeLocal DNSCache from its kube-system/node-local-dns ConfigMap (and optionally its DaemonSet).

    Returns {enabled, local_ips, forwarders: [{zone, upstreams, force_tcp}], placeholders: {name: meaning}, warnings}.
    """
    if configmap is None:
        return {"enabled": False, "local_ips": [], "forwarders": [], "placeholders": {}, "warnings": []}
    data = _configmap_data(configmap, "node-local-dns ConfigMap")
    if "Corefile" not in data:
        raise DnsConfigError("node-local-dns ConfigMap: no 'Corefile' key; is this kube-system/node-local-dns?")
    document = read_corefile(data["Corefile"], source="node-local-dns Corefile")
    local_ips = []
    forwarders = []
    for block in document["server_blocks"]:
        local_ips.extend(arg for plugin in plugins_named(block, "bind") for arg in plugin["args"])
        for plugin in plugins_named(block, "forward"):
            forward = describe_forward(plugin)
            for zone in block["zones"]:
                forwarders.append({"zone": zone, "upstreams": forward["upstreams"], "force_tcp": forward["options"]["force_tcp"]})
    if daemonset:
        for container in daemonset.get("spec", {}).get("template", {}).get("spec", {}).get("containers", []):
            args = container.get("args") or []
            if "-localip" in args[:-1]:
                local_ips.extend(args[args.index("-localip") + 1].split(","))
    local_ips = list(dict.fromkeys(local_ips))
    found = sorted({match for token in tokenize(data["Corefile"]) for match in _PILLAR.findall(token.text)} | set(_PILLAR.findall(" ".join(local_ips))))
    warnings = [f"{name} is not filled in: {NODELOCAL_PLACEHOLDERS[name]}" for name in found
                if name in ("__PILLAR__LOCAL__DNS__", "__PILLAR__DNS__SERVER__", "__PILLAR__DNS__DOMAIN__")]
    return {"enabled": True, "local_ips": local_ips, "forwarders": forwarders,
            "placeholders": {name: NODELOCAL_PLACEHOLDERS.get(name, "unknown placeholder") for name in found}, "warnings": warnings}


LOG_CLASSES = ("loop_detected", "upstream_timeout", "forward_error", "servfail", "refused", "nxdomain", "other_error")
ERROR_CLASSES = ("loop_detected", "upstream_timeout", "forward_error", "servfail", "other_error")
_LOOP = re.compile(r'Loop \((\S+) -> (\S*)\) detected for zone "([^"]*)"')
_TIMEOUT = re.compile(r"i/o timeout")
_FORWARD_ERROR = re.compile(r"no healthy (?:proxies|upstreams)|connection refused|no forwarder defined|network is unreachable|no route to host")
_QUERY_LOG = re.compile(r'"(?P<type>\S+) IN (?P<name>\S+) (?:udp|tcp) \d+ (?:true|false) \d+" (?P<rcode>[A-Z]+)')
_ERRORS_PLUGIN_SERVFAIL = re.compile(r"plugin/errors: 2 ")
_SEVERE = re.compile(r"\[(?:ERROR|FATAL)\]")
_REMOTE_ADDRESS = re.compile(r"(?:->\s*|dial (?:udp|tcp) )\[?([0-9A-Fa-f:.]*[0-9A-Fa-f])\]?:(\d+)")
_EXAMPLES_PER_CLASS = 3


def _log_class(line):
    if _LOOP.search(line):
        return "loop_detected"
    if _TIMEOUT.search(line):
        return "upstream_timeout"
    if _FORWARD_ERROR.search(line):
        return "forward_error"
    query = _QUERY_LOG.search(line)
    if query:
        return {"SERVFAIL": "servfail", "REFUSED": "refused", "NXDOMAIN": "nxdomain"}.get(query.group("rcode"))
    if _ERRORS_PLUGIN_SERVFAIL.search(line):
        return "servfail"
    if _SEVERE.search(line):
        return "other_error"
    return None


def classify_coredns_logs(lines, cluster_domain="cluster.local"):
    """Counts CoreDNS log lines per failure class, with examples and the upstream IPs named in errors.

    ``lines``: text or a list of lines (kubectl logs output; --timestamps and --prefix forms are fine).
    NXDOMAIN answers for names under ``cluster_domain`` are search-path expansions (ndots:5), normal noise;
    ``nxdomain_names`` counts only the others.
    """
    if isinstance(lines, str):
        lines = lines.splitlines()
    if not isinstance(lines, (list, tuple)):
        raise DnsConfigError(f"CoreDNS logs: expected text or a list of lines, got {type(lines).__name__}")
    classes = {name: {"count": 0, "examples": []} for name in LOG_CLASSES}
    upstreams = {}
    nxdomain_names = {}
    cluster_suffix = "." + _zone_name(cluster_domain)
    loop_zones = []
    for line in lines:
        line = str(line).rstrip("\n")
        kind = _log_class(line)
        if kind is None:
            continue
        entry = classes[kind]
        entry["count"] += 1
        if len(entry["examples"]) < _EXAMPLES_PER_CLASS:
            entry["examples"].append(line)
        if kind in ("upstream_timeout", "forward_error", "servfail", "other_error"):
            for ip, port in _REMOTE_ADDRESS.findall(line):
                key = f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}"
                upstreams[key] = upstreams.get(key, 0) + 1
        if kind == "loop_detected":
            loop_zones.append(_LOOP.search(line).group(3))
        if kind == "nxdomain":
            name = _QUERY_LOG.search(line).group("name").lower()
            if not name.endswith(cluster_suffix):
                nxdomain_names[name] = nxdomain_names.get(name, 0) + 1
    counts = {name: classes[name]["count"] for name in ERROR_CLASSES if classes[name]["count"]}
    return {
        "lines": len(lines),
        "classes": classes,
        "dominant_error": max(counts, key=counts.get) if counts else None,
        "upstreams_in_errors": [{"address": key, "count": count} for key, count in sorted(upstreams.items(), key=lambda item: (-item[1], item[0]))],
        "nxdomain_names": dict(sorted(nxdomain_names.items(), key=lambda item: (-item[1], item[0]))),
        "loop_zones": sorted(set(loop_zones)),
    }


# ---------------------------------------------------------------- reading the cluster for it

DNS_SERVICE = ("kube-system", "kube-dns")
DEFAULT_DNS_SELECTOR = {"k8s-app": "kube-dns"}


def upstream_probe_argv(tool, ip, port=53, name="."):
    """argv asking the DNS server ip:port for name's NS records, with a short timeout and no retry."""
    address = classify_ip(ip, "upstream")
    if not isinstance(port, int) or isinstance(port, bool) or not 0 < port < 65536:
        raise ValueError(f"upstream port {port!r} is not a number from 1 to 65535")
    if not HOST_NAME.match(name) and name != ".":
        raise ValueError(f"probe name {name!r} is not a DNS name")
    if tool == "dig":
        return ["dig", f"@{address}", "-p", str(port), "+time=2", "+tries=1", "+norecurse", name, "NS"]
    if tool == "nslookup":
        return ["nslookup", "-type=NS", f"-port={port}", "-timeout=2", "-retry=1", name, address]
    raise ValueError(f"probe tool {tool!r} is neither dig nor nslookup")


def read_probe_output(tool, exit_code, output):
    """{answered, status, detail}: did the DNS server answer at all (any rcode counts), as the tool's output shows.

    The output is read by the probe's own dig/nslookup parsers (probe.facts), so both read a DNS tool the same way.
    answered is None when the tool could not run (exit_code None, e.g. not in the image); status is the rcode
    (NOERROR, NXDOMAIN, SERVFAIL, REFUSED...) when it answered, else timeout, unreachable or error.
    """
    text = output or ""
    if exit_code is None:
        return {"answered": None, "status": "not_run", "detail": _last_lines(text)}
    parsed = (parse_dig if tool == "dig" else parse_nslookup)(exit_code, text, {"name": "."})
    rcode = parsed["details"].get("rcode")
    if rcode is None and tool != "dig" and exit_code == 0:   # nslookup -type=NS prints no status line when it answers
        rcode = "NOERROR"
    if rcode:
        return {"answered": True, "status": rcode, "detail": f"answered with {rcode}"}
    if parsed["error_class"] in ("refused", "unreachable"):
        return {"answered": False, "status": "unreachable", "detail": _last_lines(text)}
    if parsed["error_class"] == "timeout":
        return {"answered": False, "status": "timeout", "detail": _last_lines(text)}
    return {"answered": False, "status": "error", "detail": _last_lines(text)}


def _last_lines(text, count=3):
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return " | ".join(lines[-count:])[:300]


DNS_PROBE_TOOLS = ("dig", "nslookup")


def _main_container(pod, preferred):
    names = [container.get("name") for container in (pod.get("spec") or {}).get("containers") or []]
    return preferred if preferred in names else (names[0] if names else None)


def read_coredns(reader, tail_lines=200):
    """CoreDNS configuration, pods, their logs (classified) and NodeLocal DNSCache, as coredns_info returns them.

    tail_lines: the last lines of each DNS pod's log to read; 0 reads none.
    """
    system = "kube-system"
    coredns_cm = reader.get("ConfigMap", "coredns", system)
    custom_cm = reader.get("ConfigMap", "coredns-custom", system)
    kube_dns_cm = reader.get("ConfigMap", "kube-dns", system)
    dns_service = reader.get("Service", DNS_SERVICE[1], DNS_SERVICE[0])
    cluster_dns_ip = ((dns_service or {}).get("spec") or {}).get("clusterIP")
    corefile, sources = None, []
    if coredns_cm is not None:
        if "Corefile" not in (coredns_cm.get("data") or {}):
            raise ValueError("ConfigMap kube-system/coredns has no Corefile key: is CoreDNS configured from another ConfigMap?")
        if custom_cm is not None:
            corefile = aks_corefile(coredns_cm, custom_cm)
            sources.append("ConfigMap kube-system/coredns-custom (AKS)")
        else:
            corefile = corefile_summary(coredns_cm["data"]["Corefile"], cluster_dns_ip=cluster_dns_ip)
        sources.insert(0, "ConfigMap kube-system/coredns")
    kube_dns = None
    if kube_dns_cm is not None:
        kube_dns = kube_dns_config(kube_dns_cm)
        sources.append("ConfigMap kube-system/kube-dns")
    nodelocal = nodelocal_dns(reader.get("ConfigMap", "node-local-dns", system), reader.get("DaemonSet", "node-local-dns", system))
    selector = selector_text(((dns_service or {}).get("spec") or {}).get("selector") or DEFAULT_DNS_SELECTOR)
    pods = reader.list("Pod", system, label_selector=selector)
    statuses, log_lines, per_pod = [], [], []
    for pod in pods:
        status = pod_status(pod)
        statuses.append(status)
        if not tail_lines:
            continue
        text = reader.pod_log(system, pod["metadata"]["name"], _main_container(pod, "coredns"), tail_lines)
        if text is None:
            continue
        lines = text.splitlines()
        log_lines.extend(lines)
        classes = classify_coredns_logs(lines)
        per_pod.append({"pod": status["pod"], "lines": len(lines), "dominant_error": classes["dominant_error"],
                        "error_counts": {name: entry["count"] for name, entry in classes["classes"].items() if entry["count"]}})
    forward = corefile["forward"] if corefile else None
    if forward:
        upstreams = forward["upstreams"]
    elif kube_dns:
        upstreams = kube_dns["upstream_nameservers"] or [parse_upstream("/etc/resolv.conf")]
    else:
        upstreams = []
    return {
        "configured_by": sources,
        "cluster_dns_ip": cluster_dns_ip,
        "corefile": corefile,
        "forward": forward,
        "upstreams": upstreams,
        "kube_dns": kube_dns,
        "nodelocal_dns": nodelocal,
        "pods": statuses,
        "pods_ready": bool(statuses) and all(status["ready"] for status in statuses),
        "logs": dict(classify_coredns_logs(log_lines), per_pod=per_pod),
    }


def probe_upstreams(kube, reader, probe_pod, upstreams, params, container=None, timeout=10.0):
    """Ask each address upstream for the root NS records from inside probe_pod ("namespace/name"), dig or else nslookup.

    Returns [{upstream, ip, port, answered, status, tool, detail}]: answered None when the upstream cannot be probed from a pod
    (a file such as the node's resolv.conf, a placeholder, DNS over TLS) or no tool runs in the pod.
    """
    namespace, _sep, name = probe_pod.partition("/")
    if not namespace or not name or "/" in name:
        raise ValueError(f"probe_pod {probe_pod!r} must be a pod as namespace/name")
    pod = reader.get("Pod", name, namespace)
    if pod is None:
        raise pod_not_found(namespace, name, params)
    results = []
    for upstream in upstreams:
        entry = {"upstream": upstream["raw"], "ip": upstream.get("ip"), "port": upstream.get("port"), "answered": None, "tool": None}
        if upstream.get("kind") != "address" or upstream.get("transport") != "dns":
            why = {"resolv_conf": "the node's resolvers (CoreDNS runs with dnsPolicy: Default): probe them from the node",
                   "placeholder": "a placeholder filled in when the server starts"}.get(upstream.get("kind"), "not a plain DNS address")
            results.append(dict(entry, status="not_probed", detail=f"{upstream['raw']} is {why}"))
            continue
        for tool in DNS_PROBE_TOOLS:
            argv = upstream_probe_argv(tool, upstream["ip"], upstream["port"])
            try:
                run = kube.exec_in_pod(namespace, name, argv, container=container, timeout=timeout)
            except KubeError as error:
                if error.status != 403:
                    raise
                reader.narrow(f"exec in pod {probe_pod}", "forbidden", f"{error} The upstreams were not probed.")
                return [*results, dict(entry, status="not_probed", detail="exec forbidden")]
            outcome = read_probe_output(tool, run.exit_code, "\n".join(part for part in (run.stdout, run.stderr, run.error) if part))
            if outcome["status"] != "not_run":
                break
        results.append(dict(entry, tool=tool if outcome["status"] != "not_run" else None, **outcome))
    return results
