import socket

import pytest
import yaml
from websocket import WebSocketBadStatusException

from ansible_collections.kubediag.egress.plugins.module_utils.kube import KubeError, _exec_result, api_path, connect, handshake_error


@pytest.mark.parametrize(
    ("status", "exit_code", "error"),
    [
        ('{"metadata":{},"status":"Success"}', 0, ""),
        (
            '{"metadata":{},"status":"Failure","message":"command terminated with non-zero exit code: error executing command [sh -c exit 7],'
            ' exit code 7","reason":"NonZeroExitCode","details":{"causes":[{"reason":"ExitCode","message":"7"}]}}',
            7,
            "",
        ),
        (
            '{"metadata":{},"status":"Failure","message":"OCI runtime exec failed: exec failed: unable to start container process:'
            ' exec: \\"curl\\": executable file not found in $PATH: unknown","reason":"InternalError"}',
            None,
            'exec: "curl": executable file not found in $PATH',
        ),
    ],
)
def test_exec_status_channel_gives_exit_code_or_error(status, exit_code, error):
    result = _exec_result("out", "err", status, 0.1)
    assert result.exit_code == exit_code
    assert error in result.error
    assert (result.stdout, result.stderr) == ("out", "err")


def test_refused_exec_upgrade_is_explained_with_the_servers_message(tmp_path):
    """What websocket-client raises when the API server answers the exec upgrade with a 403 Status."""
    body = (b'{"kind":"Status","apiVersion":"v1","status":"Failure","message":"pods \\"web\\" is forbidden: User \\"viewer\\" cannot create '
            b'resource \\"pods/exec\\" in API group \\"\\" in the namespace \\"shop\\"","reason":"Forbidden","code":403}')
    refused = WebSocketBadStatusException("Handshake status 403 Forbidden", 403, "Forbidden", {"content-type": "application/json"}, body)
    kube = connect(kubeconfig=_kubeconfig(tmp_path, "https://127.0.0.1:1"))
    error = kube.explain(handshake_error(refused), "exec in pod shop/web")
    assert error.status == 403
    assert str(error) == ('forbidden: pods "web" is forbidden: User "viewer" cannot create resource "pods/exec" in API group "" in the '
                          'namespace "shop". Grant this user the RBAC permission named above, or use a context that has it.')


@pytest.mark.parametrize(("args", "path"), [
    (("v1", "pods", "shop", "web", "log"), "/api/v1/namespaces/shop/pods/web/log"),
    (("v1", "nodes"), "/api/v1/nodes"),
    (("apps/v1", "deployments", "shop", "web"), "/apis/apps/v1/namespaces/shop/deployments/web"),
    (("networking.k8s.io/v1", "networkpolicies"), "/apis/networking.k8s.io/v1/networkpolicies"),
])
def test_api_path(args, path):
    assert api_path(*args) == path


def test_missing_kubeconfig_is_named(tmp_path):
    missing = tmp_path / "nope"
    with pytest.raises(KubeError, match=f"kubeconfig {missing} does not exist"):
        connect(kubeconfig=str(missing))


def _kubeconfig(tmp_path, server):
    path = tmp_path / "kubeconfig"
    path.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "lab",
        "clusters": [{"name": "lab", "cluster": {"server": server}}],
        "users": [{"name": "u", "user": {"token": "t"}}],
        "contexts": [{"name": "lab", "context": {"cluster": "lab", "user": "u"}}],
    }))
    return str(path)


def test_unknown_context_is_named(tmp_path):
    with pytest.raises(KubeError, match="context 'elsewhere'"):
        connect(kubeconfig=_kubeconfig(tmp_path, "https://127.0.0.1:1"), context="elsewhere")


def test_unreachable_api_server_is_a_sentence_not_a_traceback(tmp_path):
    with socket.socket() as sock:  # a port that was free a moment ago: connection refused
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    kube = connect(kubeconfig=_kubeconfig(tmp_path, f"http://127.0.0.1:{port}"), retries=1, backoff=0.01, timeout=2)
    with pytest.raises(KubeError, match=f"cannot reach the Kubernetes API server at http://127.0.0.1:{port}"):
        kube.request("GET", api_path("v1", "namespaces"))


def test_explicit_api_key_wins_over_the_kubeconfig_token(tmp_path):
    kube = connect(kubeconfig=_kubeconfig(tmp_path, "https://127.0.0.1:1"), api_key="explicit")
    assert kube.auth_headers() == {"authorization": "Bearer explicit"}


def test_kubeconfig_token_is_used_without_api_key(tmp_path):
    kube = connect(kubeconfig=_kubeconfig(tmp_path, "https://127.0.0.1:1"))
    assert kube.auth_headers() == {"authorization": "Bearer t"}
