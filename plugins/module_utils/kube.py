"""Kubernetes API access shared by every k8s module: one client factory, retries, exec, and human errors.

Plain Python over the official ``kubernetes`` client, no Ansible: modules wrap it with ``ansible_kube.KubeModule``,
tests and benchmarks call it directly.
"""

import json
import os
import random
import re
import time
from urllib.parse import quote, urlencode

try:
    import urllib3
    from kubernetes import client as k8s_client
    from kubernetes import config as k8s_config
    from kubernetes.client.rest import RESTClientObject
    from kubernetes.config.config_exception import ConfigException
    from kubernetes.stream.ws_client import WSClient, get_websocket_url
    from websocket import WebSocketBadStatusException, WebSocketException

    KUBERNETES_IMPORT_ERROR = None
except ImportError as import_error:  # reported by the module wrapper with missing_required_lib
    KUBERNETES_IMPORT_ERROR = import_error
    ConfigException = WebSocketBadStatusException = WebSocketException = None

RETRYABLE_STATUS = frozenset({429, 500, 502, 503, 504})
EXIT_CODE_STATUS = re.compile(r'"ExitCode".*?"message"\s*:\s*"(\d+)"')


class KubeError(Exception):
    """A failure worth a sentence to the user: what happened, on which object, what to try.

    status is the API server's HTTP status when there was one (404, 403, ...), else None.
    """

    def __init__(self, message, status=None):
        super().__init__(message)
        self.status = status


class ApiError(Exception):
    """An HTTP error answer of the API server, before it becomes a KubeError: status, reason, body (a Status), headers."""

    def __init__(self, status, reason="", body="", headers=None):
        super().__init__(f"HTTP {status} {reason}")
        self.status = status
        self.reason = reason
        self.body = body
        self.headers = headers or {}


class ExecResult:
    """What an exec returned. exit_code is None when the command never started; error then holds the runtime's
    message (e.g. a missing executable)."""

    def __init__(self, stdout, stderr, exit_code, error="", duration=0.0):
        self.stdout = stdout
        self.stderr = stderr
        self.exit_code = exit_code
        self.error = error
        self.duration = duration


def _retry_after(error):
    try:
        return max(0.0, float(error.headers.get("Retry-After")))
    except (TypeError, ValueError):
        return None


def _server_message(error):
    """The `message` of a Kubernetes Status body, or the HTTP reason."""
    try:
        return json.loads(error.body).get("message") or error.reason
    except (TypeError, ValueError, AttributeError):
        return error.reason or str(error)


def api_path(api_version, plural, namespace=None, name=None, subresource=None):
    """The REST path of a collection or an object: /api/v1/namespaces/shop/pods/web/log, /apis/apps/v1/deployments."""
    parts = ["api" if api_version == "v1" else "apis", *api_version.split("/")]
    if namespace:
        parts += ["namespaces", namespace]
    parts.append(plural)
    if name:
        parts.append(name)
    if subresource:
        parts.append(subresource)
    return "/" + "/".join(quote(part, safe="") for part in parts)


class KubeClient:
    """One API server connection: JSON requests with retries, a pod exec helper, and human errors.

    Build it with ``connect()``. Requests go straight to the REST paths through the official client's configured
    connection pool (TLS, client certificates, proxy, token refresh from the kubeconfig): the typed ``*Api`` classes
    are not used, as importing them builds hundreds of model classes (about 0.5 s per module run). Throttling and 5xx
    are retried with jittered backoff (honouring Retry-After); failures become ``KubeError`` naming the object.
    """

    def __init__(self, configuration, retries=3, backoff=0.5, timeout=15.0):
        self.configuration = configuration
        self.server = configuration.host
        self.retries = retries
        self.backoff = backoff
        self.timeout = timeout
        self.pool = RESTClientObject(configuration).pool_manager

    def auth_headers(self):
        """The Authorization header as the kubeconfig (or api_key) sets it; refreshed tokens included."""
        headers = {}
        for setting in self.configuration.auth_settings().values():
            if setting.get("in") == "header" and setting.get("value"):
                headers[setting["key"]] = setting["value"]
        return headers

    def request(self, method, path, what="the Kubernetes API", query=None, body=None, content_type="application/json", text=False):
        """The decoded JSON answer (or the text, for logs) of one API request; KubeError when it fails."""
        url = self.server.rstrip("/") + path + (f"?{urlencode(query, doseq=True)}" if query else "")
        headers = {"Accept": "text/plain, */*" if text else "application/json", "User-Agent": "kubediag.egress", **self.auth_headers()}
        payload = None
        if body is not None:
            payload = json.dumps(body)
            headers["Content-Type"] = content_type
        attempt = 0
        while True:
            try:
                response = self.pool.request(method, url, body=payload, headers=headers, retries=False, timeout=urllib3.Timeout(total=self.timeout))
                data = response.data.decode("utf-8", errors="replace")
                if response.status >= 400:
                    raise ApiError(response.status, response.reason or "", data, dict(response.headers))
                return data if text else json.loads(data or "{}")
            except ApiError as error:
                if error.status in RETRYABLE_STATUS and attempt < self.retries:
                    self._sleep(attempt, _retry_after(error))
                    attempt += 1
                    continue
                raise self.explain(error, what) from error
            except ValueError as error:
                raise KubeError(f"the API server at {self.server} answered {what} with something that is not JSON: {error}") from error
            except urllib3.exceptions.HTTPError as error:
                if attempt < self.retries and isinstance(error, urllib3.exceptions.ProtocolError):
                    self._sleep(attempt, None)
                    attempt += 1
                    continue
                raise self.unreachable(error) from error

    def _sleep(self, attempt, retry_after):
        delay = retry_after if retry_after is not None else self.backoff * (2**attempt)
        time.sleep(min(delay, 30.0) * random.uniform(0.8, 1.2))  # noqa: S311 - jitter, not crypto

    def unreachable(self, exc):
        reason = getattr(exc, "reason", None) or exc
        return KubeError(
            f"cannot reach the Kubernetes API server at {self.server}: {reason}. "
            "Check that the kubeconfig/context (or host) points at a running cluster and that this machine can reach it."
        )

    def explain(self, error, what):
        message = _server_message(error)
        if error.status == 404:
            text = f"{what} not found ({message})."
        elif error.status == 401:
            text = (f"the API server at {self.server} rejected the credentials (401 Unauthorized) while reading {what}: "
                    "refresh the token or pick another context.")
        elif error.status == 403:
            text = f"forbidden: {message}. Grant this user the RBAC permission named above, or use a context that has it."
        elif error.status in RETRYABLE_STATUS:
            text = f"the API server kept failing on {what} (HTTP {error.status}: {message}) after {self.retries} retries."
        else:
            text = f"the API server refused {what} (HTTP {error.status}: {message})."
        return KubeError(text, status=error.status)

    def exec_in_pod(self, namespace, pod, argv, container=None, timeout=30.0):
        """Run argv in a container (no shell, no tty) and return its output and exit code.

        Raises KubeError when the exec cannot be opened (forbidden, pod gone, API down) or exceeds timeout.
        Each call opens its own websocket, so execs may run concurrently.
        """
        what = f"exec in pod {namespace}/{pod}"
        started = time.monotonic()
        query = [("command", arg) for arg in argv] + [("stdout", "true"), ("stderr", "true"), ("stdin", "false"), ("tty", "false")]
        if container:
            query.append(("container", container))
        url = get_websocket_url(self.server.rstrip("/") + api_path("v1", "pods", namespace, pod, "exec"), query)
        try:
            ws = WSClient(self.configuration, url, self.auth_headers(), True)
        except WebSocketBadStatusException as exc:
            raise self.explain(handshake_error(exc), what) from exc
        except (WebSocketException, OSError) as exc:
            raise self.unreachable(exc) from exc

        stdout, stderr = [], []
        deadline = started + timeout
        try:
            while ws.is_open():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise KubeError(
                        f"{what} did not finish within {timeout:g}s; the pod may be overloaded or the API server slow. "
                        "Raise the timeout or retry."
                    )
                ws.update(timeout=min(remaining, 1.0))
                stdout.append(ws.read_stdout())
                stderr.append(ws.read_stderr())
            stdout.append(ws.read_stdout())
            stderr.append(ws.read_stderr())
            status_text = ws.read_channel(3)
        finally:
            ws.close()
        return _exec_result("".join(stdout), "".join(stderr), status_text, time.monotonic() - started)


def handshake_error(exc):
    """The API server's refusal of an exec's websocket upgrade (403 with a Status body, 404...) as an ApiError."""
    body = getattr(exc, "resp_body", None) or b""  # websocket-client >= 1.6
    if isinstance(body, bytes):
        body = body.decode("utf-8", errors="replace")
    return ApiError(exc.status_code, getattr(exc, "status_message", None) or "", body, dict(getattr(exc, "resp_headers", None) or {}))


def _exec_result(stdout, stderr, status_text, duration):
    if not status_text:
        return ExecResult(stdout, stderr, 0, duration=duration)
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
            client_cert=None, client_key=None, proxy=None, no_proxy=None, retries=3, backoff=0.5, timeout=15.0):
    """Build a KubeClient the way kubernetes.core does: an explicit host/api_key, else a kubeconfig (path or dict)."""
    if KUBERNETES_IMPORT_ERROR is not None:
        raise KubeError(f"the Python 'kubernetes' library is required: {KUBERNETES_IMPORT_ERROR}")
    configuration = k8s_client.Configuration()
    if host is None or kubeconfig is not None or context is not None:
        try:
            if isinstance(kubeconfig, dict):
                k8s_config.load_kube_config_from_dict(kubeconfig, context=context, client_configuration=configuration, persist_config=False)
            else:
                path = os.path.expanduser(kubeconfig or os.environ.get("KUBECONFIG", "~/.kube/config"))
                if not os.path.exists(path):
                    raise KubeError(f"kubeconfig {path} does not exist: pass kubeconfig=, set K8S_AUTH_KUBECONFIG, or give host and api_key.")
                k8s_config.load_kube_config(config_file=path, context=context, client_configuration=configuration, persist_config=False)
        except ConfigException as exc:
            raise KubeError(f"cannot use the kubeconfig{f' context {context!r}' if context else ''}: {exc}") from exc
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
    configuration.retries = False  # KubeClient.call retries, with backoff and Retry-After
    return KubeClient(configuration, retries=retries, backoff=backoff, timeout=timeout)
