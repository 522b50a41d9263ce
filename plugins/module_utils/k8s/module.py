"""The Ansible side of every k8s module: shared auth options, dependency check, one way to fail.

Modules build ``KubeModule(argument_spec=...)`` instead of ``AnsibleModule``; it merges ``AUTH_ARG_SPEC``
(documented once in the ``kubediag.egress.k8s_auth`` doc fragment) and hands out a connected ``KubeClient``.
"""

import traceback

from ansible.module_utils.basic import AnsibleModule, env_fallback, missing_required_lib

from ansible_collections.kubediag.egress.plugins.module_utils.k8s.client import KUBERNETES_IMPORT_ERROR, KubeError, connect
from ansible_collections.kubediag.egress.plugins.module_utils.probe.targets import url_credentials

AUTH_ARG_SPEC = {
    "kubeconfig": {"type": "raw", "fallback": (env_fallback, ["K8S_AUTH_KUBECONFIG"])},
    "context": {"type": "str", "fallback": (env_fallback, ["K8S_AUTH_CONTEXT"])},
    "host": {"type": "str", "fallback": (env_fallback, ["K8S_AUTH_HOST"])},
    "api_key": {"type": "str", "no_log": True, "fallback": (env_fallback, ["K8S_AUTH_API_KEY"])},
    "validate_certs": {"type": "bool", "aliases": ["verify_ssl"], "fallback": (env_fallback, ["K8S_AUTH_VERIFY_SSL"])},
    "ca_cert": {"type": "path", "aliases": ["ssl_ca_cert"], "fallback": (env_fallback, ["K8S_AUTH_SSL_CA_CERT"])},
    "client_cert": {"type": "path", "aliases": ["cert_file"], "fallback": (env_fallback, ["K8S_AUTH_CERT_FILE"])},
    "client_key": {"type": "path", "aliases": ["key_file"], "no_log": False, "fallback": (env_fallback, ["K8S_AUTH_KEY_FILE"])},
    "proxy": {"type": "str", "fallback": (env_fallback, ["K8S_AUTH_PROXY"])},
    "no_proxy": {"type": "str", "fallback": (env_fallback, ["K8S_AUTH_NO_PROXY"])},
    "backoff_retries": {"type": "int", "default": 8},
    "backoff_delay": {"type": "float", "default": 0.5},
    "api_timeout": {"type": "float", "default": 15.0},
    "api_budget": {"type": "float"},
    "api_qps": {"type": "float", "default": 10.0},
    "api_burst": {"type": "int", "default": 30},
}


# kubeconfig keys whose values are credentials (users[].user, auth-provider config, exec env), at any depth.
KUBECONFIG_SECRET_KEYS = frozenset({"token", "password", "client-key-data", "access-token", "refresh-token", "id-token",
                                    "client-secret"})


def secret_values(kubeconfig, proxy) -> set:
    """Every credential in a kubeconfig given as a dict and in a proxy URL's user:password@, to register as no_log values.

    A kubeconfig dict (as AWX credentials and vaults pass it) and a proxy URL cannot be no_log as a whole (a path or a
    bare proxy host is useful in messages), so the secret parts inside them are masked wherever they would be echoed.
    """
    found = set()

    def walk(node):
        if isinstance(node, dict):
            for key, value in node.items():
                if key in KUBECONFIG_SECRET_KEYS and isinstance(value, str) and value:
                    found.add(value)
                else:
                    walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    if isinstance(kubeconfig, dict):
        walk(kubeconfig.get("users"))
    found.update(url_credentials(proxy))
    return found


class KubeModule:
    """AnsibleModule plus the shared Kubernetes auth options, by composition."""

    def __init__(self, argument_spec, **kwargs):
        self.module = AnsibleModule(argument_spec={**AUTH_ARG_SPEC, **argument_spec}, **kwargs)
        self.module.no_log_values.update(secret_values(self.module.params["kubeconfig"], self.module.params["proxy"]))
        self.params = self.module.params
        self.check_mode = self.module.check_mode
        self._client = None

    @property
    def client(self):
        """The connected KubeClient, built on first use (so offline modes need no kubernetes library)."""
        if KUBERNETES_IMPORT_ERROR is not None:
            self.module.fail_json(msg=missing_required_lib("kubernetes"), exception=str(KUBERNETES_IMPORT_ERROR))
        if self._client is None:
            p = self.params
            self._client = connect(
                kubeconfig=p["kubeconfig"], context=p["context"], host=p["host"], api_key=p["api_key"],
                validate_certs=p["validate_certs"], ca_cert=p["ca_cert"], client_cert=p["client_cert"],
                client_key=p["client_key"], proxy=p["proxy"], no_proxy=p["no_proxy"],
                retries=p["backoff_retries"], backoff=p["backoff_delay"], timeout=p["api_timeout"], budget=p["api_budget"],
                qps=p["api_qps"], burst=p["api_burst"],
            )
        return self._client

    @property
    def context(self):
        """The kubeconfig context the client connected with (None before connecting, or with host/api_key only)."""
        return self._client.context if self._client is not None else None

    def exit_json(self, **result):
        self.module.exit_json(**result)

    def fail_from_exception(self, exc, **result):
        """One way to fail: a KubeError's sentence as msg, anything else named as a bug, traceback attached."""
        if isinstance(exc, KubeError):
            msg = str(exc)
        elif isinstance(exc, ValueError):
            msg = f"invalid input: {exc}"
        else:
            msg = f"unexpected {type(exc).__name__}: {exc} (this is a bug in kubediag.egress; please report it with the traceback)"
        self.module.fail_json(msg=msg, exception=traceback.format_exc(), **result)
