"""Kubernetes API access shared by every k8s module: one client factory, retries, exec, and human errors.

Plain Python over the official ``kubernetes`` client, no Ansible: modules wrap it with ``ansible_kube.KubeModule``,
tests and benchmarks call it directly.
"""

import contextlib
import json
import os
import random
import re
import socket
import ssl
import threading
import time
from email.utils import parsedate_to_datetime
from urllib.parse import quote, unquote, urlencode, urlsplit

try:
    import certifi
    import urllib3
    import websocket
    import yaml
    from kubernetes import client as k8s_client
    from kubernetes import config as k8s_config
    from kubernetes.client.rest import RESTClientObject
    from kubernetes.config.config_exception import ConfigException
    from kubernetes.stream.ws_client import ERROR_CHANNEL, STDERR_CHANNEL, STDOUT_CHANNEL, get_websocket_url
    from websocket import ABNF, WebSocketBadStatusException, WebSocketException

    KUBERNETES_IMPORT_ERROR = None
except ImportError as import_error:  # reported by the module wrapper with missing_required_lib
    KUBERNETES_IMPORT_ERROR = import_error
    ConfigException = WebSocketBadStatusException = WebSocketException = None

RETRYABLE_STATUS = frozenset({429, 500, 502, 503, 504})
# Repeating these changes nothing: a DELETE that already happened answers 404, which its callers take as gone.
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "DELETE"})
MAX_BACKOFF = 5.0  # seconds: the exponential backoff's ceiling
MAX_RETRY_AFTER = 30.0  # seconds: a longer Retry-After is not waited out in full
MIB = 1024 * 1024
EXEC_OUTPUT_CAP = 4 * MIB  # stdout + stderr kept of one exec; the probes print a few KiB
EXEC_PROTOCOLS = ("v5.channel.k8s.io", "v4.channel.k8s.io")
READ_CHUNK = 65536
PAGE_SIZE = 500
MAX_PAGES = 200  # 100 000 objects of one kind: beyond that a diagnosis should narrow its scope
EXIT_CODE_STATUS = re.compile(r'"ExitCode".*?"message"\s*:\s*"(\d+)"')


class KubeError(Exception):
    """A failure worth a sentence to the user: what happened, on which object, what to try.

    status is the API server's HTTP status when there was one (404, 403, ...), else None; attempts how many times the
    request was sent; server_message the `message` of its Status answer, as it said it, for callers that tell refusals
    apart (RBAC, admission).
    """

    def __init__(self, message, status=None, attempts=1, server_message=None):
        super().__init__(message)
        self.status = status
        self.attempts = attempts
        self.server_message = server_message


class ApiError(Exception):
    """An HTTP error answer of the API server, before it becomes a KubeError: status, reason, body (a Status), headers."""

    def __init__(self, status, reason="", body="", headers=None):
        super().__init__(f"HTTP {status} {reason}")
        self.status = status
        self.reason = reason
        self.body = body
        self.headers = headers or {}


class ExecResult:
    """What an exec returned. exit_code is None when the command never started (error then holds the runtime's message,
    e.g. a missing executable) or when its output outgrew EXEC_OUTPUT_CAP (truncated: the exec was stopped there).
    reruns counts the times a read-only command was run again after the connection dropped mid-exec. duration is the whole
    call; stream_duration the last attempt from its upgraded connection to the end (without the API server's own latency,
    the rate limit and the retries), None when not measured."""

    def __init__(self, stdout, stderr, exit_code, error="", duration=0.0, truncated=False, reruns=0, stream_duration=None):
        self.stdout = stdout
        self.stderr = stderr
        self.exit_code = exit_code
        self.error = error
        self.duration = duration
        self.truncated = truncated
        self.reruns = reruns
        self.stream_duration = stream_duration


def _retry_after(headers):
    """Seconds the server asks to wait: Retry-After in any case, as seconds or as an HTTP date; None when absent."""
    value = next((v for k, v in (headers or {}).items() if k.lower() == "retry-after"), None)
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError, IndexError, OverflowError):
        return None


def _server_message(error):
    """The `message` of a Kubernetes Status body, or the HTTP reason."""
    try:
        return json.loads(error.body).get("message") or error.reason
    except (TypeError, ValueError, AttributeError):
        return error.reason or str(error)


DNS1123_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")
NAME_RULES = {
    "label": ("a DNS-1123 label: at most 63 lowercase letters, digits and '-', starting and ending with a letter or digit",
              lambda value: DNS1123_LABEL.fullmatch(value) is not None),
    "subdomain": ("a DNS-1123 subdomain: at most 253 characters, dot-separated DNS-1123 labels (lowercase letters, digits, '-')",
                  lambda value: len(value) <= 253 and all(DNS1123_LABEL.fullmatch(part) for part in value.split("."))),
}


def is_valid_name(value, rule):
    """Whether value is a Kubernetes name by rule: "label" (namespaces, containers) or "subdomain" (pods, most objects)."""
    return isinstance(value, str) and NAME_RULES[rule][1](value)


def validate_name(value, option, rule):
    """value when is_valid_name(value, rule), else a KubeError naming the option. A name ends up in a URL path: "" would
    turn a GET into a LIST, ".." would be normalised into another path."""
    if not is_valid_name(value, rule):
        raise KubeError(f"{option} {value!r} is not a valid name: it must be {NAME_RULES[rule][0]}.")
    return value


def api_path(api_version, plural, namespace=None, name=None, subresource=None):
    """The REST path of a collection or an object: /api/v1/namespaces/shop/pods/web/log, /apis/apps/v1/deployments.

    A namespace must be a DNS-1123 label and a name a path segment the API server accepts (not "", "." or "..", no "/"
    or "%"), whatever the caller checked before: nothing else ever reaches a URL."""
    parts = ["api" if api_version == "v1" else "apis", *api_version.split("/")]
    if namespace is not None:
        parts += ["namespaces", validate_name(namespace, "namespace", "label")]
    parts.append(plural)
    if name is not None:
        if not isinstance(name, str) or name in ("", ".", "..") or "/" in name or "%" in name:
            raise KubeError(f"{plural} name {name!r} cannot be part of an API path: it must be a non-empty name without '/' or '%', "
                            "and not '.' or '..'.")
        parts.append(name)
    if subresource:
        parts.append(subresource)
    return "/" + "/".join(quote(part, safe="") for part in parts)


class RateLimiter:
    """A token bucket shared by every thread of one client (client-go's flowcontrol): qps tokens a second, burst saved.

    A caller takes a token (the count may go negative: a reservation) and sleeps until its turn, outside the lock.
    """

    def __init__(self, qps, burst):
        self.qps = qps
        self.burst = max(1, burst)
        self.tokens = float(self.burst)
        self.stamp = time.monotonic()
        self.lock = threading.Lock()

    def wait(self):
        if not self.qps:
            return
        with self.lock:
            now = time.monotonic()
            self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.qps) - 1
            self.stamp = now
            delay = -self.tokens / self.qps if self.tokens < 0 else 0.0
        if delay:
            time.sleep(delay)


class Attempts:
    """The attempts of one call: waits (Retry-After, else jittered exponential backoff) while the retries and the
    deadline allow, and says truthfully what was tried."""

    def __init__(self, client, deadline):
        self.client = client
        self.deadline = deadline
        self.started = time.monotonic()
        self.count = 0
        self.spent = ""

    def again(self, retry_after=None):
        """Sleep before one more attempt and return True, or return False (and note why) when none is allowed."""
        if self.count > self.client.retries:
            self.spent = f"backoff_retries={self.client.retries} spent"
            return False
        delay = min(retry_after, MAX_RETRY_AFTER) if retry_after is not None else min(self.client.backoff * 2 ** (self.count - 1), MAX_BACKOFF)
        delay *= random.uniform(0.8, 1.2)  # noqa: S311 - jitter, not crypto
        if time.monotonic() + delay >= self.deadline:
            self.spent = "the time budget is spent"
            return False
        time.sleep(delay)
        return True

    def __str__(self):
        told = f"{self.count} attempt{'s' if self.count != 1 else ''} over {time.monotonic() - self.started:.1f}s"
        return f"{told}, {self.spent}" if self.spent else told


class ExecTimeout(Exception):
    """The exec's deadline passed; the message says in which phase."""


class ExecDropped(Exception):
    """The exec's connection ended after the upgrade without the command's exit status."""


class Watchdog:
    """Shuts the exec's socket down at the deadline, so that no handshake or read outlives it: a peer that trickles a
    byte at a time keeps any per-call socket timeout from firing."""

    def __init__(self, ws, deadline):
        self.ws = ws
        self.fired = False
        self.timer = threading.Timer(max(0.0, deadline - time.monotonic()), self._fire)
        self.timer.daemon = True
        self.timer.start()

    def _fire(self):
        self.fired = True
        sock = self.ws.sock  # read once: the reader may be shutting it at the same moment
        if sock is not None:
            with contextlib.suppress(OSError):  # already closed
                sock.shutdown(socket.SHUT_RDWR)

    def cancel(self):
        self.timer.cancel()


class KubeClient:
    """One API server connection: JSON requests with retries, a pod exec helper, and human errors.

    Build it with ``connect()``. Requests go straight to the REST paths through the official client's configured
    connection pool (TLS, client certificates, proxy, token refresh from the kubeconfig): the typed ``*Api`` classes
    are not used, as importing them builds hundreds of model classes (about 0.5 s per module run).

    Every call is bounded: a request by ``timeout`` in total (body included), an exec by its own timeout on every socket
    operation. Reads (GET), DELETE and ``create`` (a POST of a named object) retry every transient failure; other verbs
    only what surely did not reach the server (429, a refused connection). All retries of one client (one module run)
    share one time ``budget`` and the ``qps``/``burst`` rate limit, so a sick API server makes a run slower, never endless,
    and a fleet run does not add to its load.
    """

    def __init__(self, configuration, retries=8, backoff=0.5, timeout=15.0, budget=60.0, qps=10.0, burst=30):
        self.configuration = configuration
        self.server = configuration.host
        self.retries = retries
        self.backoff = backoff
        self.timeout = timeout
        self.deadline = time.monotonic() + budget
        self.limiter = RateLimiter(qps, burst)
        self.exec_reruns = 0
        self.context = None  # the kubeconfig context connect() used, when it read a kubeconfig
        self.pool = RESTClientObject(configuration).pool_manager

    def auth_headers(self):
        """The Authorization header as the kubeconfig (or api_key) sets it; refreshed tokens included."""
        headers = {}
        for setting in self.configuration.auth_settings().values():
            if setting.get("in") == "header" and setting.get("value"):
                headers[setting["key"]] = setting["value"]
        return headers

    def request(self, method, path, what="the Kubernetes API", query=None, body=None, content_type="application/json", text=False,
                repeatable=False):
        """The decoded JSON answer (or the text, for logs) of one API request; KubeError when it fails.

        repeatable: the caller knows that sending the request twice does no harm (``create`` of a named object), so it is
        retried like a read.
        """
        url = self.server.rstrip("/") + path + (f"?{urlencode(query, doseq=True)}" if query else "")
        headers = {"Accept": "text/plain, */*" if text else "application/json", "User-Agent": "kubediag.egress", **self.auth_headers()}
        payload = None
        if body is not None:
            payload = json.dumps(body)
            headers["Content-Type"] = content_type
        idempotent = repeatable or method in IDEMPOTENT_METHODS
        attempts = Attempts(self, self.deadline)
        while True:
            attempts.count += 1
            self.limiter.wait()
            try:
                data = self._send(method, url, payload, headers)
                break
            except ApiError as error:
                # A 429 was refused before any processing (API Priority and Fairness); a 5xx may come after the change.
                if (error.status == 429 or (idempotent and error.status in RETRYABLE_STATUS)) and attempts.again(_retry_after(error.headers)):
                    continue
                if not idempotent and error.status in RETRYABLE_STATUS and error.status != 429:
                    attempts.spent = f"a {method} is not repeated once the server may have applied it"
                raise self.explain(error, what, attempts) from error
            except urllib3.exceptions.HTTPError as error:
                sent = not isinstance(error, urllib3.exceptions.ConnectTimeoutError)  # refused or never connected: nothing sent
                if (idempotent or not sent) and attempts.again():
                    continue
                if sent and not idempotent:
                    raise KubeError(
                        f"the connection to the API server at {self.server} failed during {what} ({getattr(error, 'reason', None) or error}; "
                        f"{attempts}) after the request may have reached it: the {method} may have been applied. It is not repeated blindly."
                    ) from error
                if isinstance(error, urllib3.exceptions.ReadTimeoutError):
                    raise KubeError(f"the API server at {self.server} did not answer {what} within api_timeout={self.timeout:g}s ({attempts}): "
                                    "it is overloaded or a proxy in front of it stalls; retry, or raise api_timeout.") from error
                raise self.unreachable(error, attempts) from error
        try:
            return data if text else json.loads(data or "{}")
        except ValueError as error:
            raise KubeError(f"the API server at {self.server} answered {what} with something that is not JSON: {error}") from error

    def create(self, path, body, what):
        """POST an object that has a metadata.name, retried like a read: the API server refuses a second object of the same
        name (409 AlreadyExists), so a repeat cannot make a duplicate, and a 409 answering a repeat means that an earlier
        attempt, whose answer was lost (a 5xx, a dropped connection), created it: that object is read and returned."""
        try:
            return self.request("POST", path, what=what, body=body, repeatable=True)
        except KubeError as error:
            if error.status != 409 or error.attempts < 2:
                raise
        return self.request("GET", f"{path}/{quote(body['metadata']['name'], safe='')}", what=what)

    def list(self, api_version, plural, namespace=None, what=None, query=None):
        """Every item of a collection, page by page (limit + continue): at most MAX_PAGES pages, and a continue token the
        server hands back twice (a proxy replaying a page, a broken aggregated API) ends with a KubeError, not a loop."""
        what = what or f"the list of {plural}"
        path = api_path(api_version, plural, namespace)
        query = {**(query or {}), "limit": PAGE_SIZE}
        items, seen = [], set()
        for _page in range(MAX_PAGES):
            page = self.request("GET", path, what=what, query=query)
            items.extend(page.get("items") or [])
            token = (page.get("metadata") or {}).get("continue")
            if not token:
                return items
            if token in seen:
                raise KubeError(f"the API server handed back the same continue token twice while listing {what} (after {len(items)} items): "
                                "its pagination is broken (an aggregated API or a proxy in front of it); nothing was concluded from a partial list.")
            seen.add(token)
            query["continue"] = token
        raise KubeError(f"{what} has more than {MAX_PAGES} pages of {PAGE_SIZE}: not read further; narrow the namespace or the selector.")

    def _send(self, method, url, payload, headers):
        """The body of one HTTP exchange, read within self.timeout in total (a trickled body cannot stretch it)."""
        deadline = time.monotonic() + self.timeout
        response = self.pool.request(method, url, body=payload, headers=headers, retries=False, preload_content=False,
                                     timeout=urllib3.Timeout(connect=self.timeout, read=self.timeout))
        chunks = []
        try:
            while True:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise urllib3.exceptions.ReadTimeoutError(None, url, f"the answer did not arrive within api_timeout={self.timeout:g}s")
                sock = getattr(response.connection, "sock", None)
                if sock is not None:
                    sock.settimeout(remaining)
                chunk = response.read1(READ_CHUNK)
                if not chunk:
                    break
                chunks.append(chunk)
        except BaseException:
            response.close()  # half read: the connection cannot serve another request
            raise
        finally:
            response.release_conn()
        data = b"".join(chunks).decode("utf-8", errors="replace")
        if response.status >= 400:
            raise ApiError(response.status, response.reason or "", data, dict(response.headers))
        return data

    def unreachable(self, exc, attempts=None):
        reason = getattr(exc, "reason", None) or exc
        return KubeError(
            f"cannot reach the Kubernetes API server at {self.server}: {reason}{f' ({attempts})' if attempts else ''}. "
            "Check that the kubeconfig/context (or host) points at a running cluster and that this machine can reach it."
        )

    def explain(self, error, what, attempts=None):
        message = _server_message(error)
        if error.status == 404:
            text = f"{what} not found ({message})."
        elif error.status == 401:
            text = (f"the API server at {self.server} rejected the credentials (401 Unauthorized) while reading {what}: "
                    "refresh the token or pick another context.")
        elif error.status == 403 and ("violates PodSecurity" in message or "admission webhook" in message):
            # An admission policy refused the object itself: no RBAC grant changes that.
            text = f"refused by admission policy: {message}."
        elif error.status == 403:
            # The server's message names the verb, resource and namespace; `what` says which step needed it (and its way out).
            text = f"forbidden: {message} ({what}). Grant this user the RBAC permission named above, or use a context that has it."
        elif error.status in RETRYABLE_STATUS:
            tried = f"; {attempts}" if attempts else ""
            text = (f"the API server kept failing on {what} (last answer HTTP {error.status}: {message}{tried}): its control plane "
                    "is overloaded or unhealthy; retry later, or raise backoff_retries and api_budget.")
        else:
            text = f"the API server refused {what} (HTTP {error.status}: {message})."
        return KubeError(text, status=error.status, attempts=attempts.count if attempts else 1, server_message=message)

    def exec_in_pod(self, namespace, pod, argv, container=None, timeout=30.0, read_only=False):
        """Run argv in a container (no shell, no tty) and return its output and exit code, all within timeout.

        The websocket upgrade is retried like a request (429, 5xx, connection errors). A connection lost after the upgrade
        runs the command again only when the caller says it is read_only (counted in ExecResult.reruns), else it is a
        KubeError: running a command twice may not be harmless. Raises KubeError when the exec cannot be opened
        (forbidden, pod gone, API down), is cut, or exceeds timeout. Each call opens its own websocket.
        """
        what = f"exec in pod {namespace}/{pod}"
        started = time.monotonic()
        deadline = started + timeout
        query = [("command", arg) for arg in argv] + [("stdout", "true"), ("stderr", "true"), ("stdin", "false"), ("tty", "false")]
        if container:
            query.append(("container", container))
        url = get_websocket_url(self.server.rstrip("/") + api_path("v1", "pods", namespace, pod, "exec"), query)
        attempts = Attempts(self, min(deadline, self.deadline))
        reruns = 0
        while True:
            attempts.count += 1
            self.limiter.wait()
            try:
                try:
                    ws, dog = self._open_exec(url, deadline)
                except WebSocketBadStatusException as exc:
                    error = handshake_error(exc)
                    if error.status in RETRYABLE_STATUS and attempts.again(_retry_after(error.headers)):
                        continue
                    raise self.explain(error, what, attempts) from exc
                except (WebSocketException, OSError) as exc:
                    if attempts.again():
                        continue
                    raise self.unreachable(exc, attempts) from exc
                opened = time.monotonic()
                try:
                    result = _read_exec(ws, dog, deadline)
                except ExecDropped as dropped:
                    if read_only and attempts.again():
                        reruns += 1
                        with self.limiter.lock:
                            self.exec_reruns += 1
                        continue
                    rerun = "" if read_only else " (not run again: the caller did not mark the command read-only)"
                    raise KubeError(f"{what} was cut: {dropped} ({attempts}){rerun}. The API server or a proxy in front of it "
                                    "dropped the connection; retry.") from dropped
            except ExecTimeout as late:
                raise KubeError(f"{what} did not finish within {timeout:g}s: {late} ({attempts}). The pod may be overloaded or "
                                "the API server slow; raise the timeout or retry.") from late
            result.reruns = reruns
            result.duration = time.monotonic() - started
            result.stream_duration = time.monotonic() - opened
            return result

    def _open_exec(self, url, deadline):
        """A websocket upgraded for exec, and the watchdog that ends it at the deadline."""
        ws = websocket.WebSocket(sslopt=self._ssl_options(), skip_utf8_validation=True)
        dog = Watchdog(ws, deadline)
        try:
            ws.connect(url, header=[f"{key}: {value}" for key, value in self.auth_headers().items()], subprotocols=list(EXEC_PROTOCOLS),
                       timeout=max(0.01, min(self.timeout, deadline - time.monotonic())), **self._proxy_options())
        except BaseException as exc:
            dog.cancel()
            ws.shutdown()
            if dog.fired or time.monotonic() >= deadline:
                raise ExecTimeout(f"the API server did not complete the websocket upgrade ({exc or type(exc).__name__})") from exc
            raise
        return ws, dog

    def _ssl_options(self):
        c = self.configuration
        options = {"cert_reqs": ssl.CERT_NONE}
        if c.verify_ssl:
            options = {"cert_reqs": ssl.CERT_REQUIRED, "ca_certs": c.ssl_ca_cert or certifi.where()}
            if c.assert_hostname is not None:
                options["check_hostname"] = c.assert_hostname
        for key, value in (("certfile", c.cert_file), ("keyfile", c.key_file), ("server_hostname", c.tls_server_name)):
            if value:
                options[key] = value
        return options

    def _proxy_options(self):
        c = self.configuration
        if not c.proxy:
            return {}
        proxy = urlsplit(c.proxy)
        options = {"http_proxy_host": proxy.hostname, "http_proxy_port": proxy.port, "proxy_type": "http"}
        if proxy.username:
            options["http_proxy_auth"] = (unquote(proxy.username), unquote(proxy.password or ""))
        if c.no_proxy:
            options["http_no_proxy"] = [host.strip() for host in c.no_proxy.split(",")]
        return options


def _read_exec(ws, dog, deadline):
    """The ExecResult of an upgraded exec websocket: frames until the close, at most EXEC_OUTPUT_CAP bytes of output."""
    buffers = {STDOUT_CHANNEL: bytearray(), STDERR_CHANNEL: bytearray(), ERROR_CHANNEL: bytearray()}
    truncated = False
    try:
        while True:
            try:
                ws.settimeout(max(0.01, deadline - time.monotonic()))
                opcode, frame = ws.recv_data_frame(True)
            except (WebSocketException, OSError) as exc:
                if dog.fired or time.monotonic() >= deadline:
                    raise ExecTimeout("the command was still running or its output stopped arriving") from exc
                if buffers[ERROR_CHANNEL]:
                    break  # the status came: a connection closed without a close frame after it lost nothing
                raise ExecDropped(f"the connection was lost before the command's exit status ({exc or type(exc).__name__})") from exc
            if opcode == ABNF.OPCODE_CLOSE:
                break
            if opcode in (ABNF.OPCODE_BINARY, ABNF.OPCODE_TEXT) and frame.data and frame.data[0] in buffers:
                buffers[frame.data[0]] += frame.data[1:]
                if len(buffers[STDOUT_CHANNEL]) + len(buffers[STDERR_CHANNEL]) > EXEC_OUTPUT_CAP:
                    truncated = True
                    break
    finally:
        dog.cancel()
        ws.shutdown()
    stdout, stderr = (bytes(buffers[channel][:EXEC_OUTPUT_CAP]).decode("utf-8", errors="replace") for channel in (STDOUT_CHANNEL, STDERR_CHANNEL))
    if truncated:
        return ExecResult(stdout, stderr, None, error=f"the command printed more than {EXEC_OUTPUT_CAP // MIB} MiB: the exec was stopped "
                          "and its output cut there", truncated=True)
    if not buffers[ERROR_CHANNEL]:
        raise ExecDropped("the API server closed the exec without the command's exit status")
    return _exec_result(stdout, stderr, buffers[ERROR_CHANNEL].decode("utf-8", errors="replace"), 0.0)


def handshake_error(exc):
    """The API server's refusal of an exec's websocket upgrade (403 with a Status body, 404...) as an ApiError."""
    body = getattr(exc, "resp_body", None) or b""  # websocket-client >= 1.6
    if isinstance(body, bytes):
        body = body.decode("utf-8", errors="replace")
    return ApiError(exc.status_code, getattr(exc, "status_message", None) or "", body, dict(getattr(exc, "resp_headers", None) or {}))


def _exec_result(stdout, stderr, status_text, duration):
    """The ExecResult the status channel's text (never empty: an exec without it is ExecDropped) gives."""
    try:
        status = json.loads(status_text)
    except ValueError:
        return ExecResult(stdout, stderr, None, error=status_text.strip(), duration=duration)
    if status.get("status") == "Success":
        return ExecResult(stdout, stderr, 0, duration=duration)
    if status.get("reason") == "NonZeroExitCode":
        match = EXIT_CODE_STATUS.search(status_text)
        return ExecResult(stdout, stderr, int(match.group(1)) if match else 1, duration=duration)
    return ExecResult(stdout, stderr, None, error=status.get("message", status_text), duration=duration)


def connect(kubeconfig=None, context=None, host=None, api_key=None, validate_certs=None, ca_cert=None,
            client_cert=None, client_key=None, proxy=None, no_proxy=None, retries=8, backoff=0.5, timeout=15.0, budget=None,
            qps=10.0, burst=30):
    """Build a KubeClient the way kubernetes.core does: an explicit host/api_key, else a kubeconfig (path or dict).

    budget: seconds all retries of this client (one module run) share; 4 x timeout when None.
    """
    if KUBERNETES_IMPORT_ERROR is not None:
        raise KubeError(f"the Python 'kubernetes' library is required: {KUBERNETES_IMPORT_ERROR}")
    configuration = k8s_client.Configuration()
    used_context = None
    if host is None or kubeconfig is not None or context is not None:
        if isinstance(kubeconfig, dict):
            source, config_file = "the kubeconfig given as a mapping", None
            names, current = _context_names([kubeconfig])
        else:
            # Like kubectl: the kubeconfig option, else every file of KUBECONFIG (os.pathsep-separated), else ~/.kube/config.
            listed = kubeconfig or os.environ.get("KUBECONFIG") or "~/.kube/config"
            paths = [os.path.expanduser(p) for p in ([listed] if kubeconfig else listed.split(os.pathsep)) if p]
            existing = [p for p in paths if os.path.exists(p)]
            if not existing:
                raise KubeError(f"kubeconfig {os.pathsep.join(paths)} does not exist: pass kubeconfig=, set K8S_AUTH_KUBECONFIG, or give host and api_key.")
            source, config_file = f"kubeconfig {os.pathsep.join(existing)}", os.pathsep.join(existing)
            names, current = _context_names(_read_kubeconfigs(existing))
        used_context = context or current
        # Named here, before the client's loader: its message would not say which contexts there are.
        if used_context not in names:
            has = f"it has {', '.join(repr(n) for n in names)}" if names else "it has no contexts"
            asked = (f"context {context!r} is not in" if context else f"the current-context {current!r} is not in" if current else
                     "no context was given and there is no current-context in")
            raise KubeError(f"{asked} {source}: {has}; set the inventory host's context (or context=, K8S_AUTH_CONTEXT) to one of them.")
        try:
            if config_file is None:
                k8s_config.load_kube_config_from_dict(kubeconfig, context=used_context, client_configuration=configuration, persist_config=False)
            else:
                k8s_config.load_kube_config(config_file=config_file, context=used_context, client_configuration=configuration, persist_config=False)
        except ConfigException as exc:
            raise KubeError(f"cannot use the {source} context {used_context!r}: {exc}") from exc
    if host:
        configuration.host = host
    if api_key:
        # An explicit token wins over the kubeconfig's, whose refresh hook would otherwise put its own back.
        configuration.api_key = {"authorization": f"Bearer {api_key}"}
        configuration.refresh_api_key_hook = None
    if validate_certs is not None:
        configuration.verify_ssl = validate_certs
    if ca_cert:
        configuration.ssl_ca_cert = ca_cert
    if client_cert:
        configuration.cert_file = client_cert
    if client_key:
        configuration.key_file = client_key
    if proxy:
        configuration.proxy = proxy
    if no_proxy:
        configuration.no_proxy = no_proxy
    configuration.retries = False  # KubeClient.request retries, with backoff and Retry-After
    kube = KubeClient(configuration, retries=retries, backoff=backoff, timeout=timeout, budget=4 * timeout if budget is None else budget,
                      qps=qps, burst=burst)
    kube.context = used_context
    return kube


def _read_kubeconfigs(paths):
    documents = []
    for path in paths:
        try:
            with open(path, encoding="utf-8") as handle:
                documents.append(yaml.safe_load(handle))
        except OSError as exc:
            raise KubeError(f"cannot read the kubeconfig {path}: {exc.strerror or exc}") from exc
        except yaml.YAMLError as exc:
            # Only the position and the problem: PyYAML's full message quotes the offending line, which may hold a token.
            mark = getattr(exc, "problem_mark", None)
            where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
            raise KubeError(f"the kubeconfig {path} is not valid YAML{where} ({getattr(exc, 'problem', None) or 'unreadable'}): "
                            "fix the file or point kubeconfig= at another one.") from None
    return documents


def _context_names(documents):
    """(context names, current context) of kubeconfigs merged as kubectl merges them: the first current-context set wins."""
    names, current = [], None
    for document in documents:
        if not isinstance(document, dict):
            continue
        for entry in document.get("contexts") or []:
            if isinstance(entry, dict) and isinstance(entry.get("name"), str) and entry["name"] not in names:
                names.append(entry["name"])
        current = current or document.get("current-context") or None
    return names, current
