"""The API server as part of a lab's life: one CA for the whole lab, and `down` leaves the lab dir as the user had it."""

import os
import socket
import ssl

import pytest

pytestmark = pytest.mark.lab


@pytest.fixture
def user_dir(tmp_path):
    """A LAB dir the user already keeps a file in; always taken down."""
    from kdlab import build

    if os.geteuid() != 0:
        pytest.fail("the lab needs root (it creates network namespaces); run as root")
    directory = tmp_path / "lab"
    directory.mkdir()
    (directory / "notes.txt").write_text("mine\n")
    yield str(directory)
    build.down(str(directory))


def test_the_api_server_is_signed_by_the_lab_ca_and_down_leaves_only_the_users_files(user_dir):
    from kdlab import Lab, build
    from kdlab.testing import files_in, leftovers

    before = files_in(user_dir)
    build.up("healthy", user_dir)
    info = Lab.load(user_dir).info
    lab_ca = os.path.join(user_dir, "pki", "ca.pem")
    written = {name for name in ("kubeconfig", "inventory.yml", "apiserver.json", "audit.jsonl", "apiserver.pem", "apiserver-key.pem")
               if os.path.exists(os.path.join(user_dir, name))}
    assert written == {"kubeconfig", "inventory.yml", "apiserver.json", "audit.jsonl", "apiserver.pem", "apiserver-key.pem"}
    assert not os.path.exists(os.path.join(user_dir, "apiserver-ca.pem"))  # no second CA: the lab's signs the API server

    import yaml

    with open(info["kubeconfig"], encoding="utf-8") as handle:
        kubeconfig = yaml.safe_load(handle)
    [cluster] = kubeconfig["clusters"]
    assert cluster["cluster"]["certificate-authority"] == lab_ca
    host, port = cluster["cluster"]["server"].removeprefix("https://").rsplit(":", 1)
    context = ssl.create_default_context(cafile=lab_ca)
    with socket.create_connection((host, int(port)), timeout=5) as raw, context.wrap_socket(raw, server_hostname=host) as tls:
        assert tls.version()  # the handshake verified the serving certificate against the lab CA alone

    build.down(user_dir)
    assert leftovers(user_dir, before) == []
    assert files_in(user_dir) == before == {"notes.txt"}


def test_two_labs_with_api_created_pods_come_down_clean(tmp_path):
    from kdlab import Lab, build
    from kdlab.testing import leftovers
    from kubernetes import client, config

    if os.geteuid() != 0:
        pytest.fail("the lab needs root (it creates network namespaces); run as root")
    directories = [str(tmp_path / "a"), str(tmp_path / "b")]
    try:
        for directory in directories:
            build.up("healthy", directory)
        for directory in directories:
            configuration = client.Configuration()
            config.load_kube_config(config_file=Lab.load(directory).info["kubeconfig"], context="lab", client_configuration=configuration)
            core = client.CoreV1Api(client.ApiClient(configuration))
            core.create_namespaced_pod("default", {"metadata": {"name": "canary"}, "spec": {
                "containers": [{"name": "canary", "image": "nicolaka/netshoot", "command": ["sleep", "infinity"]}]}})
        canaries = [Lab.load(directory).pod("default/canary") for directory in directories]
        assert canaries[0].ip == canaries[1].ip and canaries[0].netns != canaries[1].netns    # same addresses, separate labs
        build.down(directories[0])
        assert leftovers(directories[0], set()) == [] and not os.path.exists(directories[0])
        assert Lab.load(directories[1]).pod("default/canary").netns == canaries[1].netns
    finally:
        for directory in directories:
            build.down(directory)
    assert leftovers(directories[1], set()) == [] and not os.path.exists(directories[1])
