"""No credential given to a module (a kubeconfig dict, a proxy password) appears in its result or at -vvv."""

import json
import os
import subprocess
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # ansible_module

from ansible_module import REPO, VENV_BIN, run_module

TOKEN = "kd-secret-token-3f9a1c"  # noqa: S105 - a fake credential the test hunts for
KEY_DATA = "a2Qtc2VjcmV0LWtleS1kYXRh"
PROXY_PASSWORD = "kd-proxy-pass-77"  # noqa: S105 - a fake credential
KUBECONFIG = {
    "apiVersion": "v1", "kind": "Config", "current-context": "lab",
    "clusters": [{"name": "lab", "cluster": {"server": "https://127.0.0.1:9", "insecure-skip-tls-verify": True}}],
    "users": [{"name": "lab", "user": {"token": TOKEN, "client-key-data": KEY_DATA}}],
    "contexts": [{"name": "lab", "context": {"cluster": "lab", "user": "lab"}}],
}
ARGS = {"pod": "shop/web", "kubeconfig": KUBECONFIG, "proxy": f"http://kd:{PROXY_PASSWORD}@127.0.0.1:9", "backoff_retries": 0, "api_timeout": 2}


@pytest.fixture
def home(tmp_path):
    os.makedirs(tmp_path / "tmp")
    return str(tmp_path)


def test_credentials_never_appear_in_the_module_result(home):
    result = run_module("egress_pods_info", ARGS, home)
    assert result["failed"]
    text = repr(result)
    for secret in (TOKEN, KEY_DATA, PROXY_PASSWORD):
        assert secret not in text


def screen_at_vvv(module, args, home):
    env = dict(os.environ, HOME=home, ANSIBLE_CONFIG=os.path.join(REPO, "ansible.cfg"), ANSIBLE_PYTHON_INTERPRETER=sys.executable,
               ANSIBLE_LOCAL_TEMP=os.path.join(home, "tmp"), PATH=f"{VENV_BIN}:{os.environ.get('PATH', '/usr/bin:/bin')}")
    argv = [os.path.join(VENV_BIN, "ansible"), "-vvv", "-i", "localhost,", "-c", "local", "localhost", "-m",
            f"kubediag.egress.{module}", "-a", json.dumps(args)]
    completed = subprocess.run(argv, cwd=REPO, env=env, capture_output=True, text=True, timeout=120, check=False)
    return completed.stdout + completed.stderr


def test_credentials_never_appear_at_vvv(home):
    screen = screen_at_vvv("egress_pods_info", ARGS, home)
    assert "module_args" in screen
    for secret in (TOKEN, KEY_DATA, PROXY_PASSWORD):
        assert secret not in screen


URL_PASSWORD = "kd-url-pass-4d2e"  # noqa: S105 - a fake credential


@pytest.mark.parametrize("option", ["test_proxy", "echo_url", "targets"])
def test_credentials_in_a_url_option_never_appear(home, option):
    url = f"http://kd:{URL_PASSWORD}@proxy.example.test:3128/"
    args = {"namespace": "shop", "pod": "web", "kubeconfig": KUBECONFIG, "backoff_retries": 0, "api_timeout": 2,
            "targets": ["https://api.example.test/"], option: [url] if option == "targets" else url}
    result = run_module("pod_probe", args, home)
    assert result["failed"] and "carries credentials" in result["msg"], result
    assert URL_PASSWORD not in repr(result)
    screen = screen_at_vvv("pod_probe", args, home)
    assert "module_args" in screen and "carries credentials" in screen
    assert URL_PASSWORD not in screen
