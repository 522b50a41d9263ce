"""The files the server writes for clients: kubeconfig (a context per cluster) and the Ansible inventory."""

import yaml


def test_kubeconfig_has_one_context_per_cluster_and_one_per_user(apiserver):
    with open(apiserver["kubeconfig"], encoding="utf-8") as handle:
        kubeconfig = yaml.safe_load(handle)
    assert [c["name"] for c in kubeconfig["contexts"]] == ["lab", "broken", "offline", "lab-dev", "lab-viewer"]
    users = {u["name"]: u["user"]["token"] for u in kubeconfig["users"]}
    viewer = next(c["context"] for c in kubeconfig["contexts"] if c["name"] == "lab-viewer")
    assert (viewer["cluster"], users[viewer["user"]]) == ("lab", "viewer-token")
    assert all(c["cluster"]["server"].startswith("https://127.0.0.1:") for c in kubeconfig["clusters"])
    assert kubeconfig["clusters"][0]["cluster"]["certificate-authority"] == apiserver["ca"]


def test_inventory_names_the_subject_on_its_cluster(apiserver):
    with open(apiserver["inventory"], encoding="utf-8") as handle:
        hosts = yaml.safe_load(handle)["all"]["children"]["clusters"]["hosts"]
    assert sorted(hosts) == ["broken", "lab", "offline"]
    lab = hosts["lab"]
    assert lab == {"ansible_connection": "local", "ansible_python_interpreter": "{{ ansible_playbook_python }}",
                   "kubeconfig": apiserver["kubeconfig"], "context": "lab", "egress_pod": "shop/web",
                   "egress_targets": ["https://api.example.test/health"], "egress_external_resolver": "192.0.2.8",
                   "egress_echo_url": "http://whoami.example.test/"}
    assert "egress_pod" not in hosts["broken"]
