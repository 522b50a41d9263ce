"""Probe targets: parse URLs or dicts into validated Target records, and validate the other values a probe sends.

Every value that later reaches a pod is checked here first, strictly: a host is an IDNA-valid DNS name or an IP
literal, a port is 1-65535, a path holds only URL-safe characters. Anything else raises TargetError naming the
bad value, before anything runs. (Values are still passed to the pod's shell as positional arguments, never
spliced into script text: validation is the first wall, not the only one.)
"""

import ipaddress
import re
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

SCHEMES = ("http", "https", "tcp", "udp")
DEFAULT_PORTS = {"http": 80, "https": 443}
PROTOCOL_OF_SCHEME = {"http": "tcp", "https": "tcp", "tcp": "tcp", "udp": "udp"}
DNS_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")
# RFC 3986 unreserved characters plus the delimiters a path and query need; no quote, space, '$', ';', '`', '|'...
SAFE_PATH = re.compile(r"^/[A-Za-z0-9._~:@/%?=&+,-]*$")
PERCENT_ESCAPE = re.compile(r"%(?![0-9A-Fa-f]{2})")
MAX_TARGETS = 32
REDACTED = "REDACTED"
SCHEME_PREFIX = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]{0,30}://")
URL_IN_TEXT = re.compile(r"(?<![A-Za-z0-9+.-])[A-Za-z][A-Za-z0-9+.-]{0,30}://\S+")


class TargetError(ValueError):
    """A target or probe option is invalid; str() says which value and why."""


@dataclass(frozen=True)
class Target:
    """One destination to probe. host is normalised (lowercase ASCII/punycode, or a canonical IP literal)."""

    host: str
    port: int
    scheme: str
    protocol: str
    path: str = "/"

    @property
    def is_ip(self) -> bool:
        return is_ip_literal(self.host)

    @property
    def host_port(self) -> str:
        """host:port as openssl and URLs want it (IPv6 in brackets)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    @property
    def url(self) -> str:
        if self.scheme in ("http", "https"):
            default = DEFAULT_PORTS[self.scheme] == self.port
            return f"{self.scheme}://{self.host_port if not default else self.host_port.rsplit(':', 1)[0]}{self.path}"
        return f"{self.scheme}://{self.host_port}"

    def as_dict(self) -> dict:
        return {"url": self.url, "host": self.host, "port": self.port, "scheme": self.scheme, "protocol": self.protocol,
                "path": self.path, "host_is_ip": self.is_ip}


def split_userinfo(url: str) -> tuple:
    """(scheme://, userinfo or None, rest) of a URL or a bare user:password@host:port as proxy variables hold them.

    The userinfo ends at the *last* '@': a password with an unescaped '/', '#' or '@' (which curl still accepts) is
    then never mistaken for a host or path. An '@' in a path is over-redacted, which loses nothing secret."""
    match = SCHEME_PREFIX.match(url)
    prefix = match.group(0) if match else ""
    userinfo, at, rest = url[len(prefix):].rpartition("@")
    return (prefix, userinfo, rest) if at else (prefix, None, url[len(prefix):])


def redact_userinfo(url) -> str:
    """The URL with any user:password@ replaced by REDACTED@: what every message and result shows of a URL that may
    carry credentials (a target, test_proxy, echo_url, a proxy variable read from the pod)."""
    if not isinstance(url, str):
        return url
    prefix, userinfo, rest = split_userinfo(url)
    return url if userinfo is None else f"{prefix}{REDACTED}@{rest}"


def redact_urls_in_text(text: str) -> str:
    """Free text (a tool's output) with redact_userinfo applied to every scheme://... word in it."""
    return URL_IN_TEXT.sub(lambda match: redact_userinfo(match.group()), text)


def url_credentials(url) -> set:
    """The secret parts of a URL's user:password@ (as written and percent-decoded), to register as no_log values: the
    password (the user name alone would mask every occurrence of a common word), or the whole userinfo when it is a
    token without a password."""
    if not isinstance(url, str):
        return set()
    userinfo = split_userinfo(url)[1]
    if not userinfo:
        return set()
    _user, colon, password = userinfo.partition(":")
    parts = {userinfo, password} if colon and password else {userinfo}
    return {part for value in parts for part in (value, unquote(value)) if part}


def is_ip_literal(value: str) -> bool:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


def validate_host(value, what: str = "host") -> str:
    """An IP literal (canonical form) or a DNS name (lowercase, IDNA-encoded). Raises TargetError otherwise."""
    if not isinstance(value, str) or not value:
        raise TargetError(f"{what} must be a non-empty string, got {value!r}")
    candidate = value[1:-1] if value.startswith("[") and value.endswith("]") else value
    try:
        return str(ipaddress.ip_address(candidate))
    except ValueError:
        pass
    name = candidate[:-1] if candidate.endswith(".") else candidate
    try:
        ascii_name = name.encode("idna").decode("ascii").lower()
    except (UnicodeError, ValueError):
        raise TargetError(f"{what} {value!r} is not a valid DNS name or IP address") from None
    labels = ascii_name.split(".")
    if len(ascii_name) > 253 or not all(DNS_LABEL.match(label) for label in labels):
        raise TargetError(
            f"{what} {value!r} is not a valid DNS name or IP address (a name is dot-separated labels of letters, digits "
            "and '-', each 1-63 characters; nothing else such as spaces, quotes, ';', '$' or '`' is allowed)"
        )
    if labels[-1].isdigit():
        raise TargetError(f"{what} {value!r} is neither a valid IP address nor a DNS name (a name cannot end in a numeric label)")
    return ascii_name


def validate_ip(value, what: str) -> str:
    if not isinstance(value, str) or not is_ip_literal(value.strip("[]")):
        raise TargetError(f"{what} must be an IP address, got {value!r}")
    return str(ipaddress.ip_address(value.strip("[]")))


def validate_port(value, what: str = "port") -> int:
    if isinstance(value, str) and value.isascii() and value.isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise TargetError(f"{what} must be an integer between 1 and 65535, got {value!r}")
    port = value
    if not 1 <= port <= 65535:
        raise TargetError(f"{what} must be between 1 and 65535, got {port}")
    return port


def validate_path(value, what: str = "path") -> str:
    if value in (None, ""):
        return "/"
    if not isinstance(value, str) or not SAFE_PATH.match(value) or PERCENT_ESCAPE.search(value):
        raise TargetError(
            f"{what} {value!r} contains characters that are not allowed; use only letters, digits and . _ ~ - / : @ % ? = & + , "
            "(percent-encode anything else)"
        )
    return value


def _reject_unsafe(text: str, what: str, shown: str) -> None:
    for char in text:
        if char.isspace() or char in "\"'`$;|<>\\{}^" or ord(char) < 32:
            if char not in shown:   # it is in the redacted credentials: not even one character of them is repeated
                raise TargetError(f"{what} {shown!r} carries credentials; pass a URL without user:password@")
            raise TargetError(f"{what} {shown!r} contains the character {char!r}, which is not allowed in a target")


def parse_url(url, what: str = "target") -> Target:
    """http(s)://host[:port][/path], tcp://host:port, udp://host:port."""
    if not isinstance(url, str) or not url:
        raise TargetError(f"{what} must be a URL string or a mapping, got {url!r}")
    shown = redact_userinfo(url)   # every message below repeats the URL: never with its credentials
    _reject_unsafe(url, what, shown)
    try:
        parts = urlsplit(url)
    except ValueError:
        raise TargetError(f"{what} {shown!r} is not a valid URL (a bracketed host must be an IPv6 address)") from None
    scheme = parts.scheme.lower()
    if scheme not in SCHEMES or not parts.netloc:
        raise TargetError(f"{what} {shown!r} is not a URL with a scheme of {', '.join(SCHEMES)} (e.g. https://api.example.com/health)")
    if parts.username is not None or parts.password is not None:
        raise TargetError(f"{what} {shown!r} carries credentials; pass a URL without user:password@")
    if parts.fragment:
        raise TargetError(f"{what} {shown!r} has a #fragment, which is never sent to a server; remove it")
    try:
        hostname, port_text = parts.hostname, parts.port
    except ValueError:
        raise TargetError(f"{what} {shown!r} has an invalid port (must be between 1 and 65535)") from None
    host = validate_host(hostname or "", f"{what} {shown!r}: host")
    if port_text is None:
        if scheme not in DEFAULT_PORTS:
            raise TargetError(f"{what} {shown!r} needs a port ({scheme}://host:port)")
        port = DEFAULT_PORTS[scheme]
    else:
        port = validate_port(port_text, f"{what} {shown!r}: port")
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    if scheme in ("tcp", "udp"):
        if path != "/":
            raise TargetError(f"{what} {shown!r}: a {scheme}:// target has no path")
        path = "/"
    return Target(host=host, port=port, scheme=scheme, protocol=PROTOCOL_OF_SCHEME[scheme], path=validate_path(path, f"{what} {shown!r}: path"))


TARGET_KEYS = ("host", "port", "protocol", "scheme", "path")


def parse_mapping(item: dict, what: str = "target") -> Target:
    unknown = sorted(set(map(str, item)) - set(TARGET_KEYS))
    if unknown:
        raise TargetError(f"{what} has the unknown key {unknown[0]!r} (allowed: {', '.join(TARGET_KEYS)})")
    if "host" not in item:
        raise TargetError(f"{what} needs a 'host'")
    host = validate_host(item["host"], f"{what}: host")
    protocol = item.get("protocol")
    scheme = item.get("scheme")
    if protocol is not None and protocol not in ("tcp", "udp"):
        raise TargetError(f"{what}: protocol must be tcp or udp, got {protocol!r}")
    if scheme is not None and scheme not in SCHEMES:
        raise TargetError(f"{what}: scheme must be one of {', '.join(SCHEMES)}, got {scheme!r}")
    if scheme is None:
        scheme = protocol or ("https" if item.get("port") in (None, 443) else "tcp")
    protocol = protocol or PROTOCOL_OF_SCHEME[scheme]
    if PROTOCOL_OF_SCHEME[scheme] != protocol:
        raise TargetError(f"{what}: scheme {scheme} runs over {PROTOCOL_OF_SCHEME[scheme]}, not {protocol}")
    if item.get("port") is None:
        if scheme not in DEFAULT_PORTS:
            raise TargetError(f"{what}: a {scheme} target needs a 'port'")
        port = DEFAULT_PORTS[scheme]
    else:
        port = validate_port(item["port"], f"{what}: port")
    path = validate_path(item.get("path"), f"{what}: path")
    if scheme in ("tcp", "udp") and path != "/":
        raise TargetError(f"{what}: a {scheme} target has no path")
    return Target(host=host, port=port, scheme=scheme, protocol=protocol, path=path)


def parse_targets(items) -> list[Target]:
    """The module's `targets` option: a non-empty list of URLs or mappings. Duplicates are dropped, order kept."""
    if not isinstance(items, list) or not items:
        raise TargetError("targets must be a non-empty list of URLs (e.g. https://api.example.com/health) or mappings with a host")
    if len(items) > MAX_TARGETS:
        raise TargetError(f"at most {MAX_TARGETS} targets per probe, got {len(items)}; split them over several runs")
    targets = []
    for index, item in enumerate(items):
        what = f"targets[{index}]"
        target = parse_mapping(item, what) if isinstance(item, dict) else parse_url(item, what)
        if target not in targets:
            targets.append(target)
    return targets


def parse_http_url(url, what: str) -> Target:
    """An http(s) URL option such as echo_url or a proxy URL."""
    target = parse_url(url, what)
    if target.scheme not in ("http", "https"):
        raise TargetError(f"{what} must be an http:// or https:// URL, got {redact_userinfo(url)!r}")
    return target


def parse_proxy_url(url, what: str) -> Target:
    """A proxy as HTTP(S)_PROXY holds it: http://host:port, https://..., or a bare host:port."""
    if isinstance(url, str) and "://" not in url:
        url = "http://" + url
    return parse_http_url(url, what)


def validate_mtu_sizes(sizes) -> list[int]:
    """Packet sizes (IP MTU, bytes) for DF pings: 68-9216, largest first, no duplicates."""
    if not isinstance(sizes, list) or not sizes:
        raise TargetError("mtu_sizes must be a non-empty list of packet sizes in bytes (e.g. [1500, 1400, 1280])")
    if len(sizes) > 16:
        raise TargetError(f"mtu_sizes takes at most 16 sizes, got {len(sizes)}")
    result = set()
    for size in sizes:
        if isinstance(size, bool) or not isinstance(size, int) or not 68 <= size <= 9216:
            raise TargetError(f"mtu_sizes: {size!r} is not a packet size between 68 and 9216 bytes")
        result.add(size)
    return sorted(result, reverse=True)


def validate_timeout(value) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 60:
        raise TargetError(f"timeout must be a whole number of seconds between 1 and 60, got {value!r}")
    return value
