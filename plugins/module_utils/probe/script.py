"""The two shell programs pod_probe runs inside a pod, and the plan that turns targets into checks.

Round trip 1 (DETECT_SCRIPT): which tools the container has (and whether each is BusyBox), which `timeout` syntax
works, and the local facts a probe needs: resolv.conf, /etc/hosts, proxy variables, CA bundles, interface MTUs. curl is
never started there: its libraries resolve the host name at start-up, which takes seconds when DNS is down.

Round trip 2 (PROBE_SCRIPT): every check at once. The script text is constant; the checks arrive as positional
arguments, one per check: "kind arg1 arg2 arg3", split on spaces with globbing off (`set -f`), so no target value is
ever parsed as shell code (validation already refused spaces and shell metacharacters in every value). Each check
runs in the background under its own timeout, captures its output in memory (no temp files: it works on a read-only
root filesystem and in images without mktemp or rm) and prints it as lines tagged with the check's index:

    <nonce> <index> o <one line of output>
    <nonce> <index> x <exit code> <duration ms> <start lag ms>

The start lag is how long after the script's own start the check began: on a container starved of CPU it grows, and the
runner reads it to tell whether the probe's timings can be trusted (see runner.timing_verdict).

Each line is written with one printf, well under PIPE_BUF, so concurrent checks interleave only whole lines.
wget has no write-out like curl's: its body goes through `wc -c`, so a download that stalls still says how many bytes came
(`kdwbytes N`, printed after wget ends), and its exit code is the check's (without wc the body goes to /dev/null).
Both scripts run under bash, dash and BusyBox ash.
"""

import dataclasses
import re
import secrets
from dataclasses import dataclass, field

from ansible_collections.kubediag.egress.plugins.module_utils import vocabulary
from ansible_collections.kubediag.egress.plugins.module_utils.probe.facts import ascii_int
from ansible_collections.kubediag.egress.plugins.module_utils.probe.targets import (
    Target,
    parse_proxy_url,
    redact_urls_in_text,
    redact_userinfo,
    split_userinfo,
)

NEWLINE = "\n"

DETECT_SCRIPT = r"""
nl='
'
for t in sh bash curl wget dig nslookup nc ping openssl timeout sleep wc; do
  p=$(command -v "$t" 2>/dev/null) || continue
  case $t in
    curl) v=curl ;;
    wget|timeout) v=$("$t" --version 2>&1 </dev/null) ;;
    dig) v=$(dig -v 2>&1 </dev/null) ;;
    nslookup) v=$(nslookup -version 2>&1 </dev/null) ;;
    nc) v=$(nc -h 2>&1 </dev/null) ;;
    ping) v=$(ping -V 2>&1 </dev/null) ;;
    openssl) v=$(openssl version 2>&1 </dev/null) ;;
    *) v= ;;
  esac
  case $v in *BusyBox*) v=BusyBox ;; *) v=${v%%"$nl"*} ;; esac
  printf 'tool %s %s %s\n' "$t" "$p" "$v"
done
tm=none
if command -v timeout >/dev/null 2>&1; then
  if timeout 2 sh -c : >/dev/null 2>&1; then tm=gnu; elif timeout -t 2 sh -c : >/dev/null 2>&1; then tm=old; fi
fi
printf 'timeout %s\n' "$tm"
printf 'shell %s\n' "${BASH_VERSION:+bash}"
pf() {
  if [ -r "$2" ]; then
    while IFS= read -r l || [ -n "$l" ]; do printf '%s %s\n' "$1" "$l"; done < "$2"
  else
    printf 'missing %s\n' "$1"
  fi
}
pf resolv /etc/resolv.conf
pf hosts /etc/hosts
for v in http_proxy HTTP_PROXY https_proxy HTTPS_PROXY no_proxy NO_PROXY all_proxy ALL_PROXY SSL_CERT_FILE SSL_CERT_DIR CURL_CA_BUNDLE; do
  eval "s=\${$v+x} x=\${$v-}"
  [ -n "$s" ] && printf 'env %s %s\n' "$v" "$x"
done
for f in /etc/ssl/certs/ca-certificates.crt /etc/pki/tls/certs/ca-bundle.crt /etc/ssl/ca-bundle.pem /etc/ssl/cert.pem \
  /etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem; do
  [ -s "$f" ] || continue
  n=0
  while IFS= read -r l; do case $l in *'BEGIN CERTIFICATE'*) n=$((n+1)) ;; esac; done < "$f"
  printf 'ca %s %s\n' "$n" "$f"
done
for f in /sys/class/net/*/mtu; do
  [ -r "$f" ] || continue
  read -r m < "$f"; i=${f%/mtu}
  printf 'mtu %s %s\n' "${i##*/}" "$m"
done
"""

PROBE_SCRIPT = r"""
T=$1 TM=$2 N=$3; shift 3
NL='
'
W='kdw|%{http_code}|%{time_namelookup}|%{time_connect}|%{time_appconnect}|%{time_starttransfer}|%{time_total}|%{size_download}|%{ssl_verify_result}|%{remote_ip}\n'
now() { IFS=' .' read -r s c _ 2>/dev/null < /proc/uptime && echo $((s*1000+1${c}0-1000)) || echo 0; }
S=$(now)
to() {
  case $TM in
    gnu) timeout -s KILL $((T+1)) "$@" ;;
    old) timeout -t $((T+1)) -s KILL "$@" ;;
    none) "$@" ;;
    *) "$@" & p=$!
       ( sleep $((T+1)); kill -9 $p ) >/dev/null 2>&1 &
       w=$!; wait $p; r=$?; kill $w 2>/dev/null; return $r ;;
  esac
}
ck_dig() { if [ -n "$2" ]; then to dig +time=$T +tries=1 "@$2" "$1" A; else to dig +time=$T +tries=1 +search "$1" A; fi; }
ck_nslookup() { to nslookup -timeout=$T -retry=0 "$1" ${2:+"$2"}; }
ck_bbnslookup() { to nslookup "$1" ${2:+"$2"}; }
ck_ping() { to ping -c 1 -W $T "$1"; }
ck_pmtu() { to ping -c 1 -M do -s "$2" -W $T "$1"; }
ck_nc() { to nc -v -z -w $T "$1" "$2" </dev/null; }
ck_bbnc() { to nc -w $T "$1" "$2" -e true </dev/null; }
ck_bashtcp() { to bash -c 'exec 3<>"/dev/tcp/$1/$2" && echo connected' kd "$1" "$2"; }
ck_curltcp() { to curl -sS -o /dev/null --connect-timeout $T --max-time $T -w 'kdw|%{time_connect}|%{remote_ip}\n' "telnet://$1:$2" </dev/null; }
ck_bashudp() {
  to bash -c 'exec 3<>"/dev/udp/$1/$2" || exit 2; printf "$4" >&3; if read -r -n 1 -t "$3" x <&3; then echo answered; else echo no answer; exit 1; fi' \
    kd "$1" "$2" "$T" "$3"
}
ck_ncudp() {
  printf "$3" | to nc -u -w $T "$1" "$2" | {
    n=0; while IFS= read -r l || [ -n "$l" ]; do n=$((n+1)); done
    if [ $n -gt 0 ]; then echo answered; else echo no answer; exit 1; fi
  }
}
ck_curl() {
  u=$1
  case $2 in
    direct) set -- --noproxy '*' ;;
    insecure) set -- -k ;;
    proxy) set -- --proxy "$3" ;;
    resolve) set -- --noproxy '*' --resolve "$3" ;;
    *) set -- ;;
  esac
  to curl -sS -o /dev/null --connect-timeout $T --max-time $T -w "$W" "$@" "$u" </dev/null
}
ck_wget() {
  [ "$2" = direct ] && unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY all_proxy ALL_PROXY
  if [ -n "$3" ]; then set -- "$1"; else set -- -T "$T" "$1"; fi
  command -v wc >/dev/null 2>&1 || { to wget -S -O /dev/null "$@"; return; }
  exec 4>&1
  r=$( { { to wget -S -O - "$@" 2>&4; echo $? >&5; } | { n=$(wc -c); echo "kdwbytes $n" >&4; }; } 5>&1 )
  return "${r:-1}"
}
ck_curlbody() { to curl -sS --connect-timeout $T --max-time $T --max-filesize 65536 "$1" </dev/null; }
ck_wgetbody() { if [ -n "$2" ]; then to wget -q -O - "$1"; else to wget -q -O - -T $T "$1"; fi; }
ck_tls() {
  if [ -n "$2" ]; then
    r=$(to openssl s_client -connect "$1" -servername "$2" -verify_hostname "$2" </dev/null 2>&1)
  else
    r=$(to openssl s_client -connect "$1" </dev/null 2>&1)
  fi
  rc=$?
  printf '%s\n' "$r"
  case $r in *'BEGIN CERTIFICATE'*)
    echo kdx509
    printf '%s\n' "$r" | openssl x509 -noout -subject -issuer -startdate -enddate -ext subjectAltName -nameopt RFC2253 2>/dev/null ||
      printf '%s\n' "$r" | openssl x509 -noout -subject -issuer -startdate -enddate -text 2>&1 ;;
  esac
  return $rc
}
da() { r=$(to dig +short +time=$T +tries=1 "$@" A); r=${r##*"$NL"}; case $r in *[!0-9.]*) r= ;; esac; echo "$r"; } 2>/dev/null
ck_ba() {
  q=$(da +search "$1") w=external
  [ "$q" ] && { echo resolved; return; }
  [ "$2" = - ] || q=$(da "@$2" "$1.")
  [ "$q" ] || q=$3 w=fallback
  [ "$q" = - ] && { echo noaddress; return; }
  echo "address $q $w"
  case $4 in curl) ck_curl "$6" resolve "$1:$5:$q" ;; tls) ck_tls "$q:$5" "$1" ;; *) "ck_$4" "$q" "$5" ;; esac
}
emit() {
  if [ -n "$4" ]; then printf '%s\n' "$4" | while IFS= read -r l || [ -n "$l" ]; do printf '%s %s o %s\n' "$N" "$1" "$l"; done; fi
  printf '%s %s x %s %s %s\n' "$N" "$1" "$2" "$3" "$5"
}
i=0
set -f
for r in "$@"; do
  (
    IFS=' '; set -- $r; IFS=
    s=$(now)
    case $1 in
      dig|nslookup|bbnslookup|ping|pmtu|nc|bbnc|bashtcp|curltcp|bashudp|ncudp|curl|wget|curlbody|wgetbody|tls)
        out=$("ck_$1" "$2" "$3" "$4" 2>&1); rc=$? ;;
      ba) shift; out=$(ck_ba "$@" 2>&1); rc=$? ;;
      *) out="unknown check kind"; rc=125 ;;
    esac
    e=$(now)
    emit $i $rc $((e-s)) "$out" $((s-S))
  ) &
  i=$((i+1))
done
wait
"""

KINDS = ("dig", "nslookup", "bbnslookup", "ping", "pmtu", "nc", "bbnc", "bashtcp", "curltcp", "bashudp", "ncudp", "curl", "wget",
         "curlbody", "wgetbody", "tls", "ba")
# printf formats of the datagram a UDP check sends: an NTP client request, a DNS query for ". A", else a short text.
UDP_PAYLOADS = {123: ("ntp", "\\033" + "\\000" * 47), 53: ("dns", "\\153\\144\\001\\000\\000\\001" + "\\000" * 8 + "\\001\\000\\001")}
UDP_TEXT_PAYLOAD = ("text", "kubediag-probe\\n")
DEFAULT_MTU_SIZES = (1500, 1472, 1450, 1400, 1350, 1280, 1000, 576)
IP_AND_ICMP_HEADERS = 28
NONCE_BYTES = 8
# <nonce> <index> o <text> | <nonce> <index> x <exit code> <duration ms> [<start lag ms>]: ASCII digits, capped, nothing else.
# The lag is optional so that a shell whose clock read failed (no /proc/uptime) still reports its checks.
LINE = re.compile(r"([0-9a-f]{16}) ([0-9]{1,4}) (?:o ?(.*)|x (-?[0-9]{1,3}) ([0-9]{1,9})(?: (-?[0-9]{1,9}))?)", re.S)


def minify(script: str) -> str:
    """Drop indentation and blank lines: the script travels in the exec URL, where every byte counts."""
    return NEWLINE.join(line.strip() for line in script.splitlines() if line.strip())


# --- round trip 1 -------------------------------------------------------------------------------------------------


@dataclass
class Environment:
    """What round trip 1 found in the container."""

    tools: dict = field(default_factory=dict)          # name -> {"path": ..., "version": first line or "BusyBox"}
    timeout_mode: str = "none"                         # gnu | old (busybox -t) | watchdog (sleep+kill) | none
    shell: str = "sh"
    resolv_conf: list = None                    # lines, None when the file is missing
    hosts: list = None
    env: dict = field(default_factory=dict)            # proxy and CA variables as set in the container
    ca_bundles: list = field(default_factory=list)     # [{"path", "certificates"}]
    interface_mtu: dict = field(default_factory=dict)  # iface -> mtu

    def has(self, tool: str) -> bool:
        return tool in self.tools

    def is_busybox(self, tool: str) -> bool:
        return self.tools.get(tool, {}).get("version") == "BusyBox"

    def flavor(self, tool: str) -> str:
        """'busybox', 'bind', 'iputils', 'openbsd', 'gnu'... or '' when the tool is absent."""
        if tool not in self.tools:
            return ""
        version = self.tools[tool]["version"].lower()
        if version == "busybox":
            return "busybox"
        for marker, name in (("iputils", "iputils"), ("openbsd", "openbsd"), ("ncat", "ncat"), ("gnu", "gnu"), ("nslookup 9", "bind"),
                             ("dig 9", "bind"), ("openssl", "openssl"), ("libressl", "libressl"), ("curl", "curl")):
            if marker in version:
                return name
        return "unknown"

    def as_dict(self) -> dict:
        return {"tools": {name: dict(info, flavor=self.flavor(name)) for name, info in sorted(self.tools.items())},
                "timeout_mode": self.timeout_mode, "shell": self.shell, "interface_mtu": dict(self.interface_mtu)}


def parse_detection(stdout: str) -> Environment:
    found = Environment()
    resolv, hosts = [], []
    missing = set()
    for line in stdout.split(NEWLINE):   # the script frames on \n; a \r or U+2028 in resolv.conf is not a new record
        key, _sep, rest = line.partition(" ")
        if key == "tool":
            parts = rest.split(" ", 2)
            if len(parts) >= 2:
                found.tools[parts[0]] = {"path": parts[1], "version": parts[2].strip() if len(parts) == 3 else ""}
        elif key == "timeout":
            found.timeout_mode = rest.strip() or "none"
        elif key == "shell":
            found.shell = rest.strip() or "sh"
        elif key == "resolv":
            resolv.append(rest)
        elif key == "hosts":
            hosts.append(rest)
        elif key == "missing":
            missing.add(rest.strip())
        elif key == "env":
            name, _sep, value = rest.partition(" ")
            # A proxy variable's user:password@ is redacted here, where it is read, so no id, param, summary or target
            # built from it can ever repeat it; curl in the pod still reads the real value from its own environment.
            found.env[name] = redact_userinfo(value) if "proxy" in name.lower() else value
        elif key == "ca":
            count, _sep, path = rest.partition(" ")
            found.ca_bundles.append({"path": path, "certificates": ascii_int(count) or 0})
        elif key == "mtu":
            iface, _sep, value = rest.partition(" ")
            if ascii_int(value.strip(), 6) is not None:
                found.interface_mtu[iface] = ascii_int(value.strip(), 6)
    found.resolv_conf = None if "resolv" in missing else resolv
    found.hosts = None if "hosts" in missing else hosts
    if found.timeout_mode == "none" and found.has("sleep"):
        found.timeout_mode = "watchdog"
    return found


# --- the plan: which check runs with which tool -------------------------------------------------------------------


@dataclass
class Check:
    """One planned check. record is (kind, arg...) as the probe script reads it; None when the check is skipped."""

    id: str
    kind: str                       # the fact kind: dns, icmp, tcp, udp, http, tls, mtu, egress_ip, proxy
    target: str
    tool: str = ""
    record: tuple = None
    skipped_reason: str = ""
    params: dict = field(default_factory=dict)


@dataclass
class ProbeOptions:
    timeout: int = 5
    cluster_dns_ip: str = None
    cluster_domain: str = "cluster.local"
    external_resolver: str = "8.8.8.8"
    known_good_ip: str = None
    echo_url: Target = None
    test_proxy: Target = None
    mtu_sizes: tuple = DEFAULT_MTU_SIZES


def _skip(check_id, kind, target, reason, **params) -> Check:
    return Check(check_id, kind, target, record=None, skipped_reason=reason, params=params)


def _dns_check(check_id: str, host: str, via: str, server: str, env: Environment) -> Check:
    params = {"name": host, "via": via, "server": server or None}
    if env.has("dig"):
        # Ask the explicit resolvers for the absolute name, so no search domain gets in the way.
        name = host if not server else host + "."
        return Check(check_id, "dns", host, "dig", ("dig", name, server), params=params)
    if env.has("nslookup"):
        kind = "bbnslookup" if env.is_busybox("nslookup") else "nslookup"
        return Check(check_id, "dns", host, "nslookup", (kind, host + "." if server else host, server), params=params)
    return _skip(check_id, "dns", host, "needs dig or nslookup in the container", **params)


def _dns_checks(host: str, env: Environment, options: ProbeOptions) -> list[Check]:
    resolvers = [("pod", "")]
    if options.cluster_dns_ip:
        resolvers.append(("cluster", options.cluster_dns_ip))
    if options.external_resolver:
        resolvers.append(("external", options.external_resolver))
    return [_dns_check(vocabulary.check_id(f"dns.{via}", host), host, via, server, env) for via, server in resolvers]


def _cluster_internal_dns_check(env: Environment, options: ProbeOptions) -> Check:
    """A name only the cluster DNS knows: it answers when the cluster DNS is reachable, whatever its upstreams do."""
    name = f"kubernetes.default.svc.{options.cluster_domain}"
    return _dns_check(vocabulary.check_id("dns.cluster_internal", name), name, "cluster", options.cluster_dns_ip, env)


def _icmp_check(check_id: str, host: str, env: Environment, **params) -> Check:
    if not env.has("ping"):
        return _skip(check_id, "icmp", host, "needs ping in the container", host=host, **params)
    return Check(check_id, "icmp", host, "ping", ("ping", host), params={"host": host, **params})


def tcp_check(check_id: str, kind: str, target: Target, env: Environment, **params) -> Check:
    host, port = target.host, str(target.port)
    params = {"host": host, "port": target.port, **params}
    if env.flavor("nc") in ("openbsd", "ncat", "unknown"):
        return Check(check_id, kind, target.url, "nc", ("nc", host, port), params=params)
    if env.has("bash"):
        return Check(check_id, kind, target.url, "bash /dev/tcp", ("bashtcp", host, port), params=params)
    if env.is_busybox("nc"):
        return Check(check_id, kind, target.url, "nc (BusyBox)", ("bbnc", host, port), params=params)
    if env.has("curl"):
        return Check(check_id, kind, target.url, "curl telnet://", ("curltcp", target.host_port.rsplit(":", 1)[0], port),
                     params=params)
    return _skip(check_id, kind, target.url, "needs nc, bash or curl in the container", **params)


def _udp_check(target: Target, env: Environment) -> Check:
    check_id = vocabulary.check_id("udp", target.host_port)
    payload, printf_format = UDP_PAYLOADS.get(target.port, UDP_TEXT_PAYLOAD)
    params = {"host": target.host, "port": target.port, "payload": payload}
    if env.has("bash"):
        return Check(check_id, "udp", target.url, "bash /dev/udp", ("bashudp", target.host, str(target.port), printf_format), params=params)
    if env.has("nc") and not env.is_busybox("nc"):
        return Check(check_id, "udp", target.url, "nc -u", ("ncudp", target.host, str(target.port), printf_format), params=params)
    return _skip(check_id, "udp", target.url, "needs bash or a netcat with -u (BusyBox nc has no UDP) in the container", **params)


def _http_check(check_id: str, url: str, target_url: str, env: Environment, mode: str, proxy: str = "", **params) -> Check:
    params = {"url": url, "mode": mode, "proxy": proxy or None, **params}
    if env.has("curl"):
        return Check(check_id, "http", target_url, "curl", ("curl", url, mode, proxy), params=params)
    if env.has("wget") and mode in ("env", "direct"):
        if url.startswith("https:") and env.is_busybox("wget"):
            params["certificate_verified"] = False
        return Check(check_id, "http", target_url, "wget", ("wget", url, mode, *_busybox_wget_flag(env)), params=params)
    needs = "curl" if mode in ("insecure", "proxy") else "curl or wget"
    return _skip(check_id, "http", target_url, f"needs {needs} in the container", **params)


def _busybox_wget_flag(env: Environment) -> tuple:
    """BusyBox 1.35 wget crashes (SIGSEGV) on success when given -T: leave the timeout to the script's wrapper."""
    return ("busybox",) if env.is_busybox("wget") else ()


def proxy_settings(env: dict) -> dict:
    """The proxy variables as curl reads them: lowercase wins; HTTP_PROXY (uppercase) is ignored by curl for CGI safety."""
    def first(*names):
        for name in names:
            if env.get(name):
                return env[name]
        return None
    return {"http_proxy": first("http_proxy"), "https_proxy": first("https_proxy", "HTTPS_PROXY"),
            "all_proxy": first("all_proxy", "ALL_PROXY"), "no_proxy": first("no_proxy", "NO_PROXY"),
            "uppercase_http_proxy_ignored": bool(env.get("HTTP_PROXY")) and not env.get("http_proxy")}


def no_proxy_matches(host: str, no_proxy) -> bool:
    """curl's NO_PROXY rule: '*', or a comma list of names matched as suffixes at a dot boundary (leading dot optional)."""
    if not no_proxy:
        return False
    for entry in (e.strip().lower() for e in no_proxy.split(",")):
        entry = entry.lstrip(".")
        if entry == "*" or (entry and (host == entry or host.endswith("." + entry))):
            return True
    return False


def proxy_for(target: Target, settings: dict):
    if target.scheme not in ("http", "https") or no_proxy_matches(target.host, settings["no_proxy"]):
        return None
    return settings[f"{target.scheme}_proxy"] or settings["all_proxy"]


def _tls_check(target: Target, env: Environment) -> Check:
    check_id = vocabulary.check_id("tls", target.host_port)
    sni = "" if target.is_ip else target.host
    params = {"host": target.host, "port": target.port, "sni": sni or None}
    if not env.has("openssl"):
        return _skip(check_id, "tls", target.url, "needs openssl in the container", **params)
    return Check(check_id, "tls", target.url, "openssl s_client", ("tls", target.host_port, sni), params=params)


def _mtu_checks(host: str, env: Environment, options: ProbeOptions) -> list[Check]:
    if env.flavor("ping") != "iputils":
        reason = "needs iputils ping (-M do) in the container" + (" (BusyBox ping cannot set DF)" if env.is_busybox("ping") else "")
        return [_skip(vocabulary.check_id("mtu", host), "mtu", host, reason, host=host)]
    return [Check(vocabulary.check_id("mtu", f"{host}:{size}"), "mtu", host, "ping -M do", ("pmtu", host, str(size - IP_AND_ICMP_HEADERS)),
                  params={"host": host, "size": size}) for size in options.mtu_sizes]


def plan_checks(targets: list[Target], env: Environment, options: ProbeOptions, by_address=None) -> list[Check]:
    """Every check for these targets, with the best tool the container has; skipped ones say which tool is missing.

    by_address (host -> (address, source) from outside the pod, possibly empty) adds the by-address chains; None (the node
    probe) plans none."""
    checks: list[Check] = []
    names = list(dict.fromkeys(t.host for t in targets if not t.is_ip))
    hosts = list(dict.fromkeys(t.host for t in targets))
    settings = proxy_settings(env.env)
    for name in names:
        checks.extend(_dns_checks(name, env, options))
    if names and options.cluster_dns_ip:
        checks.append(_cluster_internal_dns_check(env, options))
    for host in hosts:
        checks.append(_icmp_check(vocabulary.check_id("icmp", host), host, env))
    if options.known_good_ip:
        checks.append(_icmp_check(vocabulary.check_id("icmp.known_good", options.known_good_ip), options.known_good_ip, env, known_good=True))
    for target in targets:
        if target.protocol == "udp":
            checks.append(_udp_check(target, env))
            continue
        checks.append(tcp_check(vocabulary.check_id("tcp", target.host_port), "tcp", target, env))
        if target.scheme not in ("http", "https"):
            continue
        proxy = proxy_for(target, settings)
        checks.append(_http_check(vocabulary.check_id("http", target.url), target.url, target.url, env, "env", via_proxy=proxy))
        if proxy:
            checks.append(_http_check(vocabulary.check_id("http.direct", target.url), target.url, target.url, env, "direct"))
        if options.test_proxy is not None:
            checks.append(_http_check(vocabulary.check_id("http.test_proxy", target.url), target.url, target.url, env, "proxy", options.test_proxy.url))
        if target.scheme == "https":
            checks.append(_http_check(vocabulary.check_id("http.insecure", target.url), target.url, target.url, env, "insecure"))
            checks.append(_tls_check(target, env))
    for host in hosts:
        checks.extend(_mtu_checks(host, env, options))
    if by_address is not None:
        checks.extend(by_address_checks(targets, env, options, settings, by_address))
    for proxy_url in _proxies_to_reach(settings, options):
        checks.append(_proxy_reach_check(proxy_url, env))
    if options.echo_url is not None:
        checks.append(_egress_ip_check(options.echo_url, env))
    unique = {}
    for check in checks:
        unique.setdefault(check.id, check)   # two targets on one host:port share their TCP and TLS checks
    return list(unique.values())


def by_address_checks(targets: list[Target], env: Environment, options: ProbeOptions, settings: dict, fallback: dict) -> list[Check]:
    """The checks that test a named TCP target by address when the pod cannot resolve its name (record `ba`).

    Each one first resolves the name through the pod's resolver (dig +search). When that works, it stops there and says so
    (the ordinary checks cover the target). When it does not, it asks the external resolver, else takes the fallback
    address resolved outside the pod, and runs its check against that address: the HTTP request with curl --resolve
    host:port:IP (else the TCP connect to IP:port), the TLS handshake with openssl -connect IP:port -servername host. So the
    causes behind a DNS failure are found in the same exec. Only with dig (its +short output is read in the pod)."""
    if not env.has("dig"):
        return []
    checks = []
    for target in targets:
        if target.is_ip or target.protocol != "tcp":
            continue
        address, source = fallback.get(target.host) or ("", "")
        params = {"host": target.host, "port": target.port, "by_address": True, "external_resolver": options.external_resolver or None,
                  "fallback_address": address or None, "fallback_source": source or None}
        head = ("ba", target.host, options.external_resolver or "-", address or "-")
        if target.scheme in ("http", "https") and env.has("curl") and proxy_for(target, settings) is None:
            # curl's own connect stands for the TCP one: every record counts against the exec URL budget
            checks.append(Check(vocabulary.check_id("http.by_address", target.url), "http", target.url, "curl",
                                (*head, "curl", str(target.port), target.url), params={**params, "url": target.url, "mode": "resolve", "proxy": None}))
        else:
            tcp = tcp_check(vocabulary.check_id("tcp.by_address", target.host_port), "tcp", target, env, **params)
            if tcp.record is not None:
                checks.append(dataclasses.replace(tcp, record=(*head, tcp.record[0], str(target.port))))
        if target.scheme == "https" and env.has("openssl"):
            checks.append(Check(vocabulary.check_id("tls.by_address", target.host_port), "tls", target.url, "openssl s_client",
                                (*head, "tls", str(target.port)), params={**params, "sni": target.host}))
    return checks


def _proxies_to_reach(settings: dict, options: ProbeOptions) -> list[str]:
    urls = [settings[k] for k in ("http_proxy", "https_proxy", "all_proxy") if settings[k]]
    if settings["uppercase_http_proxy_ignored"]:
        urls.append(None)
    if options.test_proxy is not None:
        urls.append(options.test_proxy.url)
    return list(dict.fromkeys(u for u in urls if u))


def _proxy_reach_check(proxy_url: str, env: Environment) -> Check:
    """A TCP connect to the proxy's host:port; an authenticated proxy (its credentials already redacted) is reached too."""
    check_id = vocabulary.check_id("proxy.reach", proxy_url)
    prefix, _userinfo, rest = split_userinfo(proxy_url)
    try:
        proxy = parse_proxy_url(prefix + rest, "proxy")
    except ValueError as error:
        return Check(check_id, "proxy", proxy_url, record=None, skipped_reason=f"cannot probe this proxy: {error}",
                     params={"proxy": proxy_url, "invalid": True})
    return tcp_check(check_id, "proxy", proxy, env, proxy=proxy_url)


def _egress_ip_check(echo: Target, env: Environment) -> Check:
    check_id = vocabulary.check_id("egress_ip", echo.url)
    if env.has("curl"):
        return Check(check_id, "egress_ip", echo.url, "curl", ("curlbody", echo.url), params={"url": echo.url})
    if env.has("wget"):
        return Check(check_id, "egress_ip", echo.url, "wget", ("wgetbody", echo.url, *_busybox_wget_flag(env)), params={"url": echo.url})
    return _skip(check_id, "egress_ip", echo.url, "needs curl or wget in the container", url=echo.url)


def new_nonce() -> str:
    """A per-run marker for the probe's records: text a remote server puts in a check's output cannot guess it."""
    return secrets.token_hex(NONCE_BYTES)


def probe_argv(checks: list[Check], timeout: int, timeout_mode: str, nonce: str) -> list[str]:
    """`sh -c SCRIPT kdprobe TIMEOUT MODE NONCE <records...>` for the checks that run (in their order)."""
    args = ["sh", "-c", minify(PROBE_SCRIPT), "kdprobe", str(int(timeout)), timeout_mode, nonce]
    return args + [encode_record(check.record) for check in checks if check.record is not None]


def encode_record(record: tuple) -> str:
    """One positional argument per check. Trailing empty fields are dropped; an empty or spaced field elsewhere is a bug."""
    fields = [str(value) for value in record]
    while fields and fields[-1] == "":
        fields.pop()
    if not fields or fields[0] not in KINDS or any(not f or any(c.isspace() for c in f) for f in fields):
        raise ValueError(f"bad probe record {record!r}")
    return " ".join(fields)


def detect_argv() -> list[str]:
    return ["sh", "-c", minify(DETECT_SCRIPT), "kddetect"]


def split_probe_output(stdout: str, count: int, nonce: str) -> list[dict]:
    """Per check index: {"exit_code", "duration_ms", "start_lag_ms", "output"}; exit_code None when the check never reported.

    Records are split on "\n" only, as the script frames them (str.splitlines would also split on \r, U+2028 and
    friends inside a check's output), and only lines carrying this run's nonce count.
    """
    results = [{"exit_code": None, "duration_ms": None, "start_lag_ms": None, "lines": []} for _unused in range(count)]
    for line in stdout.split(NEWLINE):
        match = LINE.fullmatch(line)
        if not match or match.group(1) != nonce:
            continue
        index = int(match.group(2))
        if index >= count:
            continue
        if match.group(4) is None:
            # a tool may quote the proxy URL it used (credentials included) in an error: redacted before any parser sees it
            results[index]["lines"].append(redact_urls_in_text(match.group(3)))
        else:
            results[index]["exit_code"] = int(match.group(4))
            results[index]["duration_ms"] = int(match.group(5))
            results[index]["start_lag_ms"] = max(0, int(match.group(6))) if match.group(6) else None
    return [{"exit_code": r["exit_code"], "duration_ms": r["duration_ms"], "start_lag_ms": r["start_lag_ms"], "output": NEWLINE.join(r["lines"])}
            for r in results]
