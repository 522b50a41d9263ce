"""Kubernetes API access shared by every k8s module: one client factory, retries, exec, and human errors.

Plain Python over the official ``kubernetes`` client, no Ansible: modules wrap it with ``ansible_kube.KubeModule``,
tests and benchmarks call it directly.
"""

import json
import os
import random
import re
import time

try:
    import urllib3
    from kubernetes import client as k8s_client
    from kubernetes import config as k8s_config
    from kubernetes.client.rest import ApiException
    from kubernetes.config.config_exception import ConfigException
    from kubernetes.stream import stream as k8s_stream

    KUBERNETES_IMPORT_ERROR = None
except ImportError as import_error:  # reported by the module wrapper with missing_required_lib
    KUBERNETES_IMPORT_ERROR = import_error
    ApiException = ConfigException = None

RETRYABLE_STATUS = frozenset({429, 500, 502, 503, 504})
EXIT_CODE_STATUS = re.compile(r'"ExitCode".*?"message"\s*:\s*"(\d+)"')
HANDSHAKE_STATUS = re.compile(r"Handshake status (\d{3})([^-]*)")


class KubeError(Exception):
    """A failure worth a sentence to the user: what happened, on which object, what to try.

    status is the API server's HTTP status when there was one (404, 403, ...), else None.
    """

    def __init__(self, message, status=None):
        super().__init__(message)
        self.status = status


class ExecResult:
    """What an exec returned. exit_code is None when the command never started; error then holds the runtime's
    message (e.g. a missing executable)."""

    def __init__(self, stdout, stderr, exit_code, error="", duration=0.0):
        self.stdout = stdout
        self.stderr = stderr
        self.exit_code = exit_code
        self.error = error
        self.duration = duration


def _retry_after(exc):
    headers = getattr(exc, "headers", None) or {}
    value = headers.get("Retry-After") if hasattr(headers, "get") else None
    try:
        return max(0.0, float(value))
    except (TypeError, ValueError):
        return None


def _server_message(exc):
    """The `message` of a Kubernetes Status body, or the HTTP reason."""
    try:
        return json.loads(exc.body).get("message") or exc.reason
    except (TypeError, ValueError, AttributeError):
        return exc.reason or str(exc)


class KubeClient:
    """One configured API client with retrying calls and a pod exec helper.

    Build it with ``connect()``; every call goes through ``call()`` so throttling and 5xx are retried with
    jittered backoff (honouring Retry-After) and failures become ``KubeError`` with a message naming the object.
    """

    def __init__(self, api_client, server, retries=3, backoff=0.5, timeout=15.0):
        self.api_client = api_client
        self.server = server
        self.retries = retries
        self.backoff = backoff
        self.timeout = timeout
        self.core = k8s_client.CoreV1Api(api_client)

    def call(self, method, *args, what="the Kubernetes API", **kwargs):
        kwargs.setdefault("_request_timeout", self.timeout)
        attempt = 0
        while True:
            try:
                return method(*args, **kwargs)
            except ApiException as exc:
                if exc.status in RETRYABLE_STATUS and attempt < self.retries:
                    self._sleep(attempt, _retry_after(exc))
                    attempt += 1
                    continue
                raise self.explain(exc, what) from exc
            except urllib3.exceptions.HTTPError as exc:
                if attempt < self.retries and isinstance(exc, urllib3.exceptions.ProtocolError):
                    self._sleep(attempt, None)
                    attempt += 1
                    continue
                raise self.unreachable(exc) from exc

    def _sleep(self, attempt, retry_after):
        delay = retry_after if retry_after is not None else self.backoff * (2**attempt)
        time.sleep(min(delay, 30.0) * random.uniform(0.8, 1.2))  # noqa: S311 - jitter, not crypto

    def unreachable(self, exc):
        reason = getattr(exc, "reason", None) or exc
        return KubeError(
            f"cannot reach the Kubernetes API server at {self.server}: {reason}. "
            "Check that the kubeconfig/context (or host) points at a running cluster and that this machine can reach it."
        )

    def explain(self, exc, what):
        message = _server_message(exc)
        if exc.status == 404:
            text = f"{what} not found ({message})."
        elif exc.status == 401:
            text = (f"the API server at {self.server} rejected the credentials (401 Unauthorized) while reading {what}: "
                    "refresh the token or pick another context.")
        elif exc.status == 403:
            text = f"forbidden: {message}. Grant this user the RBAC permission named above, or use a context that has it."
        elif exc.status in RETRYABLE_STATUS:
            text = f"the API server kept failing on {what} (HTTP {exc.status}: {message}) after {self.retries} retries."
        else:
            text = f"the API server refused {what} (HTTP {exc.status}: {message})."
        return KubeError(text, status=exc.status)

    def exec_in_pod(self, namespace, pod, argv, container=None, timeout=30.0):
        """Run argv in a container (no shell, no tty) and return its output and exit code.

        Raises KubeError when the exec cannot be opened (forbidden, pod gone, API down) or exceeds timeout.
        """
        what = f"exec in pod {namespace}/{pod}"
        started = time.monotonic()
        kwargs = {"command": list(argv), "stdout": True, "stderr": True, "stdin": False, "tty": False, "_preload_content": False}
        if container:
            kwargs["container"] = container
        # kubernetes.stream swaps the ApiClient's request method while an exec opens: concurrent execs (probe batches,
        # the node probe) each need their own ApiClient.
        api_client = k8s_client.ApiClient(self.api_client.configuration)
        try:
            ws = k8s_stream(k8s_client.CoreV1Api(api_client).connect_get_namespaced_pod_exec, pod, namespace, **kwargs)
        except ApiException as exc:
            api_client.close()
            raise self.explain(handshake_error(exc), what) from exc
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            api_client.close()
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
            api_client.close()
        return _exec_result("".join(stdout), "".join(stderr), status_text, time.monotonic() - started)


def handshake_error(exc):
    """kubernetes.stream reports a refused exec upgrade as ApiException(status=0, reason=websocket-client's
    "Handshake status 403 Forbidden -+-+- {headers} -+-+- {body}"): give it back its HTTP status and Status body."""
    handshake = HANDSHAKE_STATUS.match(str(exc.reason or "")) if exc.status == 0 else None
    if handshake:
        exc.status = int(handshake.group(1))
        exc.body = str(exc.reason).rsplit(" -+-+- ", 1)[-1]
        exc.reason = handshake.group(2).strip() or f"HTTP {exc.status}"
    return exc


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
        configuration.api_key = {"BearerToken": f"Bearer {api_key}"}
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
    return KubeClient(k8s_client.ApiClient(configuration), configuration.host, retries=retries, backoff=backoff, timeout=timeout)
