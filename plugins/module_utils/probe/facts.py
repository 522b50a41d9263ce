"""Parsers: the raw output of each in-pod check into a fact (status, error_class, summary, details).

Each parser takes (exit_code, output, params) and returns a dict. status is ok, fail or error: fail means the
network said no (NXDOMAIN, refused, timeout, a bad certificate, HTTP 403...), error means the check itself could not
run properly (permission denied, a tool failing in an unexpected way). error_class is a stable identifier the
verdict keys on; the vocabulary is listed in docs/pod_probe.md. Every output format here was checked against the
real tools (iputils, BIND, OpenBSD netcat, BusyBox 1.35, curl 7.88, OpenSSL 3.0) in the lab.
"""

import ipaddress
import re
from datetime import UTC, datetime

KILLED_EXIT_CODES = (124, 137, 143)   # timeout(1) expiry, SIGKILL, SIGTERM: the check ran out of time
# The error classes of a check that ran out of time: no answer before its timeout, or no report at all because the exec
# was cut short; for UDP also no reply (it waits for one until the timeout), and for DNS a SERVFAIL, which is what a
# forwarding resolver (CoreDNS's forward plugin) answers when its own upstream did not answer in time. The runner re-runs
# such checks before any rule may conclude from them.
TIMED_OUT_CLASSES = ("timeout", "no_result")
TIMED_OUT_BY_KIND = {"udp": ("no_answer",), "dns": ("servfail",)}
NOT_FOUND_EXIT_CODES = (126, 127)

ASCII_DIGITS = re.compile(r"[0-9]+")
DECIMAL = re.compile(r"[0-9]{1,12}(?:\.[0-9]{1,9})?")
DNS_STATUS = re.compile(r"status: ([A-Z]+)")
DIG_ANSWER_A = re.compile(r"^\S+\s+[0-9]{1,9}\s+IN\s+A\s+(\S.*?)\s*$", re.M)   # any text after "A": checked as an address later
NSLOOKUP_CANT_FIND = re.compile(r"server can't find [^:]*: ([A-Z]+)")
PING_COUNTS = re.compile(r"([0-9]{1,9}) packets transmitted, ([0-9]{1,9}) (?:packets )?received")
PING_RTT = re.compile(r"= [0-9.]{1,20}/([0-9.]{1,20})/[0-9.]{1,20}")
LOCAL_MTU = re.compile(r"message too long, mtu=([0-9]{1,9})")
FRAG_NEEDED = re.compile(r"Frag needed and DF set \(mtu = ([0-9]{1,9})\)")
CURL_ERROR = re.compile(r"curl: \(([0-9]{1,9})\) (.*)")
CURL_WRITE_OUT = re.compile(r"^kdw\|(.*)$", re.M)
CURL_FIELDS = ("http_code", "time_namelookup", "time_connect", "time_appconnect", "time_starttransfer", "time_total", "size_download",
               "ssl_verify_result", "remote_ip")
HTTP_STATUS_LINE = re.compile(r"HTTP/[0-9.]{1,20} ([0-9]{3})")
WGET_ERROR_STATUS = re.compile(r"ERROR ([0-9]{3})")
WGET_BYTES = re.compile(r"^kdwbytes +([0-9]{1,12})$", re.M)   # the probe script's count of the body bytes wget received
VERIFY_RETURN = re.compile(r"Verify return code: ([0-9]{1,9}) \(([^)]*)\)")
VERIFY_ERROR = re.compile(r"verify error:num=([0-9]{1,9}):(.*)")

# OpenSSL X509_V_ERR codes, grouped as the verdict sees them.
TLS_EXPIRED_CODES = {9: "certificate is not yet valid", 10: "certificate has expired"}
TLS_UNKNOWN_CA_CODES = {2: "unable to get issuer certificate", 18: "self-signed certificate", 19: "self-signed certificate in chain",
                        20: "unable to get local issuer certificate", 21: "unable to verify the first certificate",
                        27: "certificate not trusted"}
TLS_HOSTNAME_CODES = {62: "hostname mismatch"}

# Phrases in tool output -> error class; first match wins, so the more specific ones come first.
NETWORK_PHRASES = (
    ("connection refused", "refused"),
    ("connection reset", "reset"),
    ("no route to host", "unreachable"),
    ("network is unreachable", "unreachable"),
    ("host is unreachable", "unreachable"),
    ("destination host unreachable", "unreachable"),
    ("destination net unreachable", "unreachable"),
    ("destination port unreachable", "refused"),
    ("name or service not known", "dns"),
    ("temporary failure in name resolution", "dns"),
    ("no address associated with hostname", "dns"),
    ("bad address", "dns"),
    ("could not resolve host", "dns"),
    ("unknown host", "dns"),
    ("timed out", "timeout"),
    ("operation not permitted", "permission"),
    ("permission denied", "permission"),
)


def ascii_int(text, digits: int = 9):
    """The value of a run of ASCII digits (at most `digits` of them), else None: what the pod prints is never trusted."""
    return int(text) if isinstance(text, str) and len(text) <= digits and ASCII_DIGITS.fullmatch(text) else None


def fact(status: str, error_class=None, summary: str = "", **details) -> dict:
    return {"status": status, "error_class": error_class, "summary": summary, "details": details}


def timed_out(kind: str, error_class) -> bool:
    """Did a check of this kind fail by running out of time (rather than by an answer that says no)?"""
    return error_class in TIMED_OUT_CLASSES or error_class in TIMED_OUT_BY_KIND.get(kind, ())


def classify_text(output: str):
    lowered = output.lower()
    for phrase, error_class in NETWORK_PHRASES:
        if phrase in lowered:
            return error_class
    return None


def _timed_out(exit_code) -> bool:
    return exit_code in KILLED_EXIT_CODES


def _last_line(output: str) -> str:
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    return lines[-1] if lines else ""


def _failure(output: str, exit_code, what: str, timeout_is: str = "timeout") -> dict:
    """A failure classified from the output's wording, else from the exit code."""
    if _timed_out(exit_code):
        return fact("fail", timeout_is, f"{what}: no answer before the timeout")
    if exit_code in NOT_FOUND_EXIT_CODES:
        return fact("error", "tool_missing", f"{what}: the tool could not be run ({_last_line(output)})")
    error_class = classify_text(output)
    if error_class == "permission":
        return fact("error", "permission", f"{what}: {_last_line(output)}")
    if error_class is None:
        return fact("error", "unknown", f"{what}: failed with exit code {exit_code}: {_last_line(output)}")
    return fact("fail", error_class, f"{what}: {_last_line(output)}")


# --- DNS ----------------------------------------------------------------------------------------------------------

RCODE_CLASSES = {"NXDOMAIN": "nxdomain", "SERVFAIL": "servfail", "REFUSED": "refused", "FORMERR": "formerr", "NOTIMP": "notimp"}
# Answers flow into policy evaluation and proposed ipBlocks: a resolver (or a pod) that prints hundreds is capped here.
MAX_DNS_ADDRESSES = 32


def ipv4_answers(values) -> tuple:
    """(addresses, ignored): the distinct canonical IPv4 addresses among the A answers a tool printed, at most
    MAX_DNS_ADDRESSES, and how many answers were not kept (not an IPv4 address, a duplicate, or beyond the cap)."""
    addresses = []
    for value in values:
        try:
            address = ipaddress.IPv4Address(value)
        except ValueError:
            continue
        if str(address) == value and value not in addresses and len(addresses) < MAX_DNS_ADDRESSES:
            addresses.append(value)
    return addresses, len(values) - len(addresses)


def _dns_fact(rcode, answers: list, server, output: str, exit_code, name: str) -> dict:
    who = f"{name} via {server or 'the pod resolver'}"
    addresses, ignored = ipv4_answers(answers)
    if rcode == "NOERROR" and addresses:
        note = f" ({ignored} more answer(s) not kept: duplicates, beyond {MAX_DNS_ADDRESSES}, or not IPv4 addresses)" if ignored else ""
        return fact("ok", None, f"{who}: {', '.join(addresses)}{note}", rcode=rcode, addresses=addresses, server=server)
    if rcode == "NOERROR" and answers:
        return fact("error", "not_an_ip", f"{who}: the A answers are not IPv4 addresses ({len(answers)} answer(s), e.g. "
                    f"{answers[0][:80]!r})", rcode=rcode, addresses=[], server=server)
    if rcode == "NOERROR":
        return fact("fail", "no_answer", f"{who}: the name exists but has no A record", rcode=rcode, addresses=[], server=server)
    if rcode in RCODE_CLASSES:
        return fact("fail", RCODE_CLASSES[rcode], f"{who}: {rcode}", rcode=rcode, addresses=[], server=server)
    lowered = output.lower()
    if "connection refused" in lowered:   # ICMP port unreachable: nothing listens on port 53 there
        return fact("fail", "refused", f"{who}: connection refused", rcode=None, addresses=[], server=server)
    if _timed_out(exit_code) or "timed out" in lowered or "no servers could be reached" in lowered:
        return fact("fail", "timeout", f"{who}: no DNS answer before the timeout", rcode=None, addresses=[], server=server)
    result = _failure(output, exit_code, who)
    result["details"].update(rcode=None, addresses=[], server=server)
    return result


def parse_dig(exit_code, output: str, params: dict) -> dict:
    statuses = DNS_STATUS.findall(output)
    rcode = statuses[-1] if statuses else None
    return _dns_fact(rcode, DIG_ANSWER_A.findall(output), _server(params, re.search(r"^;; SERVER: ([^#\s]+)", output, re.M)), output,
                     exit_code, params["name"])


def _server(params: dict, printed):
    """The resolver asked: the one the collection chose, else the address the tool printed when it is one."""
    if params.get("server"):
        return params["server"]
    try:
        return str(ipaddress.ip_address(printed.group(1))) if printed else None
    except ValueError:
        return None


def parse_nslookup(exit_code, output: str, params: dict) -> dict:
    """BIND and BusyBox nslookup: addresses follow a 'Name:' line; the server's own Address line comes before it."""
    cant_find = NSLOOKUP_CANT_FIND.search(output)
    addresses, in_answer = [], False
    for line in output.splitlines():
        stripped = line.strip()
        if stripped.startswith("Name:"):
            in_answer = True
        elif in_answer and stripped.startswith("Address:"):
            value = stripped.split(":", 1)[1].strip()
            if ipv4_answers([value])[0]:   # an AAAA answer is not an A answer: skipped, not an error
                addresses.append(value)
    server = _server(params, re.search(r"^Server:\s*(\S+)", output, re.M))
    if cant_find:
        rcode = cant_find.group(1)
    elif addresses or "no answer" in output.lower() or "can't find" in output.lower():
        rcode = "NOERROR"
    else:
        rcode = None
    return _dns_fact(rcode, addresses, server, output, exit_code, params["name"])


# --- ICMP and path MTU --------------------------------------------------------------------------------------------


def parse_ping(exit_code, output: str, params: dict) -> dict:
    host = params["host"]
    counts = PING_COUNTS.search(output)
    rtt = PING_RTT.search(output)
    if counts and int(counts.group(2)) > 0:
        return fact("ok", None, f"{host} answers ICMP echo", rtt_ms=_float(rtt.group(1)) if rtt else None)
    text_class = classify_text(output)
    if text_class in ("dns", "unreachable", "permission"):
        result = _failure(output, exit_code, f"ping {host}")
        result["details"]["rtt_ms"] = None
        return result
    if counts or _timed_out(exit_code):
        return fact("fail", "timeout", f"{host} does not answer ICMP echo (many endpoints drop it: not proof of a fault alone)", rtt_ms=None)
    result = _failure(output, exit_code, f"ping {host}")
    result["details"]["rtt_ms"] = None
    return result


def parse_pmtu(exit_code, output: str, params: dict) -> dict:
    """One DF ping of a given packet size: ok, local_too_big, frag_needed (PMTU told), or silently lost."""
    size = params["size"]
    local = LOCAL_MTU.search(output)
    if local:
        return fact("fail", "local_too_big", f"{size} bytes exceed the pod's interface MTU {local.group(1)}", size=size, mtu=int(local.group(1)))
    frag = FRAG_NEEDED.search(output)
    if frag:
        return fact("fail", "frag_needed", f"{size} bytes: a router reports MTU {frag.group(1)}", size=size, mtu=int(frag.group(1)))
    counts = PING_COUNTS.search(output)
    if counts and int(counts.group(2)) > 0:
        return fact("ok", None, f"{size} bytes pass with DF set", size=size, mtu=None)
    if counts or _timed_out(exit_code):
        return fact("fail", "timeout", f"{size} bytes with DF set: no answer", size=size, mtu=None)
    result = _failure(output, exit_code, f"DF ping of {size} bytes")
    result["details"].update(size=size, mtu=None)
    return result


def summarize_mtu(host: str, per_size: list[dict], interface_mtu) -> dict:
    """Combine the DF pings to one host: the largest size that passed, the sizes lost, and whether it is a black hole.

    A black hole is a size that is silently lost (no frag-needed, no local error) while a smaller one passes and the
    pod's own interface could send it: the classic path-MTU black hole where ICMP frag-needed is filtered."""
    results = sorted(per_size, key=lambda r: r["details"]["size"])
    passed = [r["details"]["size"] for r in results if r["status"] == "ok"]
    lost = [r["details"]["size"] for r in results if r["error_class"] == "timeout"]
    reported = sorted({r["details"]["mtu"] for r in results if r["error_class"] == "frag_needed"})
    local = sorted({r["details"]["mtu"] for r in results if r["error_class"] == "local_too_big"})
    sizes = {str(r["details"]["size"]): r["error_class"] or "ok" for r in results}
    largest_ok = max(passed) if passed else None
    blackhole_sizes = [s for s in lost if largest_ok is not None and s > largest_ok and (interface_mtu is None or s <= interface_mtu)]
    details = {"host": host, "sizes": sizes, "largest_ok": largest_ok, "smallest_lost": min(lost) if lost else None,
               "reported_mtu": reported[0] if reported else None, "interface_mtu": interface_mtu or (local[0] if local else None),
               "blackhole": bool(blackhole_sizes)}
    if blackhole_sizes:
        details["path_mtu_estimate"] = largest_ok
        return fact("fail", "blackhole",
                    f"path MTU black hole towards {host}: packets of {min(blackhole_sizes)} bytes and more vanish without an ICMP "
                    f"frag-needed, {largest_ok} bytes pass (path MTU between {largest_ok} and {min(blackhole_sizes) - 1})", **details)
    if not passed:
        details["path_mtu_estimate"] = None
        if all(r["error_class"] == "timeout" for r in results):
            return fact("fail", "no_icmp", f"{host} answers no DF ping at all: path MTU unknown (ICMP filtered?)", **details)
        classes = {r["error_class"] for r in results}
        if len(classes) == 1 and results[0]["status"] == "fail":
            return fact("fail", results[0]["error_class"], f"path MTU to {host} not measured: {results[0]['summary']}", **details)
        return fact("error", "unknown", f"DF pings to {host} failed: {results[0]['summary'] if results else 'no result'}", **details)
    details["path_mtu_estimate"] = reported[0] if reported else largest_ok
    return fact("ok", None, f"path MTU towards {host} is at least {largest_ok}"
                + (f"; routers report {reported[0]} (frag-needed works)" if reported else ""), **details)


# --- TCP and UDP --------------------------------------------------------------------------------------------------


def parse_tcp(exit_code, output: str, params: dict) -> dict:
    """nc -z -v, BusyBox nc -e, bash /dev/tcp, curl telnet://."""
    where = f"TCP {params['host']}:{params['port']}"
    lowered = output.lower()
    connected = (exit_code == 0 or "succeeded" in lowered or _last_line(output).lower() == "connected" or "can't execute" in lowered)
    write_out = CURL_WRITE_OUT.search(output)
    if write_out:
        fields = write_out.group(1).split("|")
        connected = _float(fields[0]) > 0
    if connected and "failed" not in lowered:
        return fact("ok", None, f"{where}: connected")
    return _failure(output, exit_code, where)


def parse_udp(exit_code, output: str, params: dict) -> dict:
    where = f"UDP {params['host']}:{params['port']}"
    if "answered" in output.splitlines():
        return fact("ok", None, f"{where}: answered a {params.get('payload', 'text')} datagram", answered=True)
    text_class = classify_text(output)
    if text_class in ("refused", "dns", "unreachable", "permission"):
        result = _failure(output, exit_code, where)
        result["details"]["answered"] = False
        return result
    return fact("fail", "no_answer", f"{where}: no reply to a {params.get('payload', 'text')} datagram (dropped, or a service that stays "
                "silent: UDP cannot tell them apart)", answered=False)


# --- HTTP(S) ------------------------------------------------------------------------------------------------------


def _float(text: str) -> float:
    """curl's %{time_*}/%{size_*} as a number: plain ASCII decimals only (float() would take "inf" or Arabic digits)."""
    return float(text) if isinstance(text, str) and DECIMAL.fullmatch(text) else 0.0


TLS_PHRASES = (
    (("certificate has expired", "certificate is not yet valid", "certificate expired"), "tls_expired"),
    (("no alternative certificate subject name", "subject name does not match", "hostname mismatch", "does not match hostname",
      "doesn't match"), "tls_hostname_mismatch"),
    (("unable to get local issuer certificate", "self-signed certificate", "self signed certificate", "unknown ca", "not trusted",
      "unable to verify the first certificate", "unable to get issuer certificate"), "tls_unknown_ca"),
    (("error setting certificate verify locations", "error adding trust anchors", "cafile"), "tls_ca_bundle"),
)


def tls_class_of_text(text: str):
    """The TLS error class from a tool's own message (never from URLs or names, which may contain any word)."""
    lowered = text.lower()
    for phrases, error_class in TLS_PHRASES:
        if any(phrase in lowered for phrase in phrases):
            return error_class
    return None


def _timeout_stage(timings: dict, https: bool) -> str:
    if timings["time_connect"] == 0:
        return "connect"
    if https and timings["time_appconnect"] == 0:
        return "tls_handshake"
    if timings["time_starttransfer"] == 0:
        return "waiting_for_response"
    return "transfer"


def parse_curl(exit_code, output: str, params: dict) -> dict:
    url = params["url"]
    https = url.startswith("https:")
    # curl prints its write-out last; a "kdw|" line earlier (or extra fields) is text someone else printed
    write_outs = CURL_WRITE_OUT.findall(output)
    values = write_outs[-1].split("|")[:len(CURL_FIELDS)] if write_outs else []
    timings = dict(zip(CURL_FIELDS, values + [""] * (len(CURL_FIELDS) - len(values)), strict=True))
    http_code = ascii_int(timings["http_code"]) or None
    details = {"url": url, "mode": params.get("mode"), "proxy": params.get("proxy") or params.get("via_proxy"), "http_code": http_code,
               "remote_ip": timings["remote_ip"] or None, "curl_exit": exit_code, "size_download": int(_float(timings["size_download"]))}
    for key in ("time_namelookup", "time_connect", "time_appconnect", "time_starttransfer", "time_total"):
        details[key] = round(_float(timings[key]), 6)
    error = CURL_ERROR.search(output)
    message = error.group(2).strip() if error else _last_line(output)
    what = f"{'HTTPS' if https else 'HTTP'} {url}" + (" (certificate not verified)" if params.get("mode") == "insecure" else "")
    if exit_code == 0 and http_code is not None:
        if http_code in (502, 503, 504) and params.get("mode") == "proxy":
            return fact("fail", "proxy_upstream", f"{what}: the proxy answered HTTP {http_code}: it could not reach the target", **details)
        if http_code >= 400:
            return fact("fail", "http_status", f"{what}: HTTP {http_code} from the server", **details)
        return fact("ok", None, f"{what}: HTTP {http_code} in {details['time_total']:.3f} s", **details)
    curl_exit = exit_code if error is None else int(error.group(1))
    details["curl_exit"] = curl_exit
    if _timed_out(exit_code) or curl_exit == 28:
        stage = _timeout_stage(details, https)
        details["timeout_stage"] = stage
        return fact("fail", "timeout", f"{what}: timed out during {stage.replace('_', ' ')} ({message})", **details)
    if curl_exit == 5:
        return fact("fail", "proxy_dns", f"{what}: {message}", **details)
    if curl_exit == 6:
        return fact("fail", "dns", f"{what}: {message}", **details)
    if curl_exit == 56 and ("connect tunnel failed" in message.lower() or "proxy" in message.lower()):
        return fact("fail", "proxy_refused", f"{what}: {message}", **details)
    if curl_exit in (51, 60, 77, 35, 58, 59, 83, 90, 91):
        error_class = tls_class_of_text(message) or "tls_handshake"
        return fact("fail", error_class, f"{what}: {message}", **details)
    if curl_exit == 52:
        return fact("fail", "empty_reply", f"{what}: {message}", **details)
    if curl_exit in (7, 56, 55):
        return fact("fail", classify_text(message) or ("reset" if curl_exit in (55, 56) else "refused"), f"{what}: {message}", **details)
    result = _failure(output, curl_exit, what)
    result["details"].update(details)
    return result


def parse_wget(exit_code, output: str, params: dict) -> dict:
    """BusyBox and GNU wget with -S: the status lines come from the server headers."""
    url = params["url"]
    received = WGET_BYTES.findall(output)   # printed last: an earlier line is text someone else printed
    output = WGET_BYTES.sub("", output).strip("\n")
    what = f"{'HTTPS' if url.startswith('https:') else 'HTTP'} {url}"
    statuses = [int(code) for code in HTTP_STATUS_LINE.findall(output)] + [int(code) for code in WGET_ERROR_STATUS.findall(output)]
    details = {"url": url, "mode": params.get("mode"), "proxy": params.get("via_proxy"), "http_code": statuses[-1] if statuses else None,
               "certificate_verified": params.get("certificate_verified", True), "size_download": int(received[-1]) if received else None}
    if "ssl_client" in output and ("can't execute" in output or "not found" in output):
        return fact("error", "tool_missing", f"{what}: this wget has no TLS support (ssl_client missing)", **details)
    if "bad TLS record" in output or ("TLS certificate validation not implemented" in output and "error getting response" in output):
        return fact("error", "tool_limited", f"{what}: BusyBox wget's built-in TLS could not complete a handshake with this server (it "
                    "supports few ciphers and does not validate certificates); TLS needs curl or openssl in the container", **details)
    if details["http_code"] is not None and details["http_code"] >= 400:
        return fact("fail", "http_status", f"{what}: HTTP {details['http_code']} from the server", **details)
    if exit_code == 0 and details["http_code"] is not None:
        return fact("ok", None, f"{what}: HTTP {details['http_code']}", **details)
    tls_class = tls_class_of_text(output)
    if tls_class:
        return fact("fail", tls_class, f"{what}: {_last_line(output)}", **details)
    if _timed_out(exit_code) or "download timed out" in output.lower():
        # wget prints "Connecting to" before it connects: without headers, a stall in connect cannot be told from one awaiting
        # the answer; with headers, the body stalled (a path MTU black hole drops the first full-size segment of it)
        stage = "transfer" if details["http_code"] is not None else None
        details["timeout_stage"] = stage
        got = f" after {details['size_download']} bytes of the body" if stage and details["size_download"] is not None else ""
        return fact("fail", "timeout", f"{what}: " + (f"the download stalled{got}" if stage else "no response before the timeout")
                    + (" (0 bytes received)" if not stage and details["size_download"] == 0 else ""), **details)
    result = _failure(output, exit_code, what)
    result["details"].update(details)
    return result


def parse_http(exit_code, output: str, params: dict, tool: str) -> dict:
    return parse_wget(exit_code, output, params) if tool == "wget" else parse_curl(exit_code, output, params)


# --- TLS certificate ----------------------------------------------------------------------------------------------


def _openssl_date(text: str):
    try:
        return datetime.strptime(text.strip().replace("  ", " "), "%b %d %H:%M:%S %Y %Z").replace(tzinfo=UTC).isoformat()
    except ValueError:
        return None


def parse_certificate(text: str) -> dict:
    """The `openssl x509 -noout -subject -issuer -startdate -enddate -ext subjectAltName` block."""
    cert = {"subject": None, "issuer": None, "not_before": None, "not_after": None, "sans": []}
    lines = text.splitlines()
    for index, line in enumerate(lines):
        key, _sep, value = line.partition("=")
        if key == "subject":
            cert["subject"] = value.strip()
        elif key == "issuer":
            cert["issuer"] = value.strip()
        elif key == "notBefore":
            cert["not_before"] = _openssl_date(value)
        elif key == "notAfter":
            cert["not_after"] = _openssl_date(value)
        elif "Subject Alternative Name" in line and index + 1 < len(lines):
            cert["sans"] = [entry.strip() for entry in lines[index + 1].split(",") if entry.strip()]
    return cert


def parse_tls(exit_code, output: str, params: dict, now=None) -> dict:
    where = f"TLS {params['host']}:{params['port']}"
    handshake, _sep, x509 = output.partition("\nkdx509\n")
    cert = parse_certificate(x509) if x509 else {"subject": None, "issuer": None, "not_before": None, "not_after": None, "sans": []}
    now = now or datetime.now(UTC)
    if cert["not_after"]:
        cert["expires_in_days"] = int((datetime.fromisoformat(cert["not_after"]) - now).total_seconds() // 86400)
    verify = VERIFY_RETURN.search(handshake)
    errors = VERIFY_ERROR.findall(handshake)
    code = int(verify.group(1)) if verify else None
    reason = verify.group(2) if verify else ""
    if errors and code == 0:
        code, reason = int(errors[0][0]), errors[0][1]
    details = {"verify_code": code, "verify_result": reason or None, "sni": params.get("sni"), **cert}
    if code == 0:
        return fact("ok", None, f"{where}: certificate verified (issuer {cert['issuer']}, valid until {cert['not_after']})", **details)
    if code in TLS_EXPIRED_CODES:
        when = f" on {cert['not_after']}" if code == 10 and cert["not_after"] else ""
        return fact("fail", "tls_expired", f"{where}: {TLS_EXPIRED_CODES[code]}{when}", **details)
    if code in TLS_HOSTNAME_CODES:
        return fact("fail", "tls_hostname_mismatch", f"{where}: the certificate does not cover {params.get('sni')} (SANs: "
                    f"{', '.join(cert['sans']) or 'none'})", **details)
    if code in TLS_UNKNOWN_CA_CODES:
        return fact("fail", "tls_unknown_ca", f"{where}: {TLS_UNKNOWN_CA_CODES[code]} (issuer {cert['issuer']})", **details)
    if code is not None:
        return fact("fail", "tls_verify", f"{where}: verification failed: {reason} ({code})", **details)
    if cert["subject"] is None and ("no peer certificate" in output or "handshake failure" in output or "alert" in output):
        return fact("fail", "tls_handshake", f"{where}: TLS handshake failed: {_last_line(handshake)}", **details)
    lowered = output.lower()
    if "errno=111" in lowered:
        return fact("fail", "refused", f"{where}: connection refused", **details)
    result = _failure(output, exit_code, where)
    result["details"].update(details)
    return result


# --- egress IP ----------------------------------------------------------------------------------------------------


def parse_egress_ip(exit_code, output: str, params: dict) -> dict:
    url = params["url"]
    for line in output.splitlines():
        candidate = line.strip()
        if not candidate:
            continue
        try:
            address = str(ipaddress.ip_address(candidate))
        except ValueError:
            continue
        return fact("ok", None, f"the endpoint {url} sees this pod's traffic coming from {address}", ip=address, url=url)
    if exit_code == 0:
        return fact("error", "not_an_ip", f"{url} answered, but not with an IP address: {_last_line(output)[:120]}", ip=None, url=url)
    result = parse_curl(exit_code, output, {"url": url}) if "curl:" in output else _failure(output, exit_code, f"echo {url}")
    result["details"].update(ip=None, url=url)
    return result


# --- by address -----------------------------------------------------------------------------------------------

ADDRESS_SOURCES = {"external": "the external resolver", "controller": "the controller's resolver (getaddrinfo)"}


def parse_by_address(kind: str, tool: str, exit_code, output: str, params: dict) -> dict:
    """A by-address check: its first line says `resolved` (the pod resolved the name: nothing ran), `noaddress` (no
    address to test) or `address IP SOURCE`, and the check's own output follows, parsed as the ordinary check's."""
    host = params["host"]
    first, _sep, rest = output.partition("\n")
    words = first.strip().split(" ")
    if words == ["resolved"]:
        return fact("skipped", "not_needed", f"the pod resolved {host}: no by-address check needed", address=None, address_source=None)
    if words == ["noaddress"]:
        external = params.get("external_resolver")
        asked = f"the external resolver {external}" if external else "no external resolver (external_resolver is off)"
        return fact("skipped", "no_address", f"the pod could not resolve {host}, and {asked} and the controller gave no address: "
                    f"{kind.upper()} to {host}:{params['port']} was not tested behind the DNS failure", address=None, address_source=None)
    source = {"external": "external", "fallback": params.get("fallback_source")}.get(words[2] if len(words) == 3 else None)
    if words[0] != "address" or len(words) != 3 or not ipv4_answers(words[1:2])[0] or source not in ADDRESS_SOURCES \
            or (source != "external" and words[1] != params.get("fallback_address")):
        return fact("error", "unknown", f"by-address {kind} check of {host}: unexpected first line {first[:120]!r} (exit {exit_code})",
                    address=None, address_source=None)
    parsed = parse_check(kind, tool, exit_code, rest, {k: v for k, v in params.items() if k != "by_address"})
    where = f"the external resolver {params.get('external_resolver')}" if source == "external" else ADDRESS_SOURCES[source]
    parsed["summary"] += f" (by address {words[1]}, from {where})"
    parsed["details"].update(address=words[1], address_source=source)
    return parsed


# --- local facts from round trip 1 --------------------------------------------------------------------------------


def parse_resolv_conf(lines, cluster_dns_ip) -> dict:
    if lines is None:
        return fact("fail", "missing", "/etc/resolv.conf is missing: the pod has no DNS configuration", nameservers=[], search=[], ndots=None,
                    options=[], cluster_dns_ip=cluster_dns_ip, nameserver_is_cluster_dns=False, evidence="")
    nameservers, search, options, ndots = [], [], [], 1
    for line in lines:
        words = line.split("#", 1)[0].split(";", 1)[0].split()
        if not words:
            continue
        if words[0] == "nameserver" and len(words) > 1:
            nameservers.append(words[1])
        elif words[0] in ("search", "domain"):
            search = words[1:]
        elif words[0] == "options":
            options.extend(words[1:])
            for option in words[1:]:
                if option.startswith("ndots:") and ascii_int(option[6:]) is not None:
                    ndots = ascii_int(option[6:])
    is_cluster = bool(cluster_dns_ip) and bool(nameservers) and nameservers[0] == cluster_dns_ip
    details = {"nameservers": nameservers, "search": search, "ndots": ndots, "options": options, "cluster_dns_ip": cluster_dns_ip,
               "nameserver_is_cluster_dns": is_cluster if cluster_dns_ip else None, "evidence": "\n".join(lines)}
    if not nameservers:
        return fact("fail", "no_nameserver", "/etc/resolv.conf has no nameserver line", **details)
    if cluster_dns_ip and not is_cluster:
        return fact("fail", "not_cluster_dns", f"the pod's nameserver is {nameservers[0]}, not the cluster DNS service {cluster_dns_ip}", **details)
    return fact("ok", None, f"nameserver {', '.join(nameservers)}, search {' '.join(search) or '(none)'}, ndots {ndots}", **details)


def ca_bundle_fact(bundles: list, env: dict) -> dict:
    usable = [b for b in bundles if b["certificates"] > 0]
    details = {"bundles": bundles, "ssl_cert_file": env.get("SSL_CERT_FILE"), "ssl_cert_dir": env.get("SSL_CERT_DIR"),
               "curl_ca_bundle": env.get("CURL_CA_BUNDLE")}
    if usable:
        best = max(usable, key=lambda b: b["certificates"])
        return fact("ok", None, f"CA bundle {best['path']} with {best['certificates']} certificates", **details)
    return fact("fail", "missing", "no CA bundle in the usual places (/etc/ssl/certs/ca-certificates.crt, /etc/pki/tls/certs/ca-bundle.crt,"
                " /etc/ssl/cert.pem): TLS verification of public endpoints will fail", **details)


def proxy_env_fact(env: dict, settings: dict) -> dict:
    variables = {name: value for name, value in env.items() if "proxy" in name.lower()}
    details = {"variables": variables, **settings}
    if not variables:
        return fact("ok", None, "no proxy variables in the container environment", **details)
    note = "; curl ignores uppercase HTTP_PROXY (set http_proxy)" if settings.get("uppercase_http_proxy_ignored") else ""
    return fact("ok", None, f"proxy variables set: {', '.join(sorted(variables))}{note}", **details)


PARSERS = {"icmp": parse_ping, "tcp": parse_tcp, "proxy": parse_tcp, "udp": parse_udp, "tls": parse_tls,
           "egress_ip": parse_egress_ip, "mtu": parse_pmtu}


def parse_check(kind: str, tool: str, exit_code, output: str, params: dict) -> dict:
    if params.get("by_address"):
        return parse_by_address(kind, tool, exit_code, output, params)
    if kind == "dns":
        return parse_dig(exit_code, output, params) if tool == "dig" else parse_nslookup(exit_code, output, params)
    if kind == "http":
        return parse_http(exit_code, output, params, tool)
    return PARSERS[kind](exit_code, output, params)
