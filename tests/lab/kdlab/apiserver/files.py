"""What the API server writes for clients: its TLS material, `<dir>/kubeconfig` and `<dir>/inventory.yml`."""

import os

import trustme
import yaml

SERVER_NAMES = ("127.0.0.1", "localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc")


def write_tls(directory: str, ca_cert: str | None = None, ca_key: str | None = None) -> dict[str, str]:
    """A serving certificate for 127.0.0.1 signed by the given CA (the lab's), or by a new one; returns the paths."""
    os.makedirs(directory, exist_ok=True)
    if ca_cert and ca_key:
        with open(ca_cert, "rb") as cert_file, open(ca_key, "rb") as key_file:
            ca = trustme.CA.from_pem(cert_file.read(), key_file.read())
        ca_path = ca_cert
    else:
        ca = trustme.CA(organization_name="kubediag lab apiserver CA")
        ca_path = os.path.join(directory, "apiserver-ca.pem")
        ca.cert_pem.write_to_path(ca_path)
    leaf = ca.issue_cert(*SERVER_NAMES, common_name="kube-apiserver")
    cert_path, key_path = os.path.join(directory, "apiserver.pem"), os.path.join(directory, "apiserver-key.pem")
    with open(cert_path, "wb") as cert_file:
        for blob in leaf.cert_chain_pems:
            cert_file.write(blob.bytes())
    leaf.private_key_pem.write_to_path(key_path)
    os.chmod(key_path, 0o600)
    return {"ca": ca_path, "cert": cert_path, "key": key_path}


def kubeconfig(endpoints: list[dict], ca_path: str) -> dict:
    """One cluster per lab cluster, with a context named after it (the admin) and one `<cluster>-<user>` per scenario user."""
    # (context, cluster, kubeconfig user, token)
    users = [(e["name"], e["name"], f"{e['name']}-admin", e["token"]) for e in endpoints]
    users += [(f"{e['name']}-{u['name']}", e["name"], f"{e['name']}-{u['name']}", u["token"]) for e in endpoints for u in e.get("users") or []]
    return {
        "apiVersion": "v1", "kind": "Config", "preferences": {},
        "current-context": endpoints[0]["name"] if endpoints else "",
        "clusters": [{"name": e["name"], "cluster": {"server": e["server"], "certificate-authority": ca_path}} for e in endpoints],
        "users": [{"name": user, "user": {"token": token}} for _context, _cluster, user, token in users],
        "contexts": [{"name": context, "context": {"cluster": cluster, "user": user}} for context, cluster, user, _token in users],
    }


def inventory(endpoints: list[dict], kubeconfig_path: str, subject: dict | None, info: dict) -> dict:
    """One Ansible host per cluster; the scenario's subject pod and targets go to the subject's cluster (all, if unnamed)."""
    subject = subject or {}
    hosts = {}
    for endpoint in endpoints:
        host = {"ansible_connection": "local", "ansible_python_interpreter": "{{ ansible_playbook_python }}",
                "kubeconfig": kubeconfig_path, "context": endpoint["name"]}
        if subject and subject.get("cluster", endpoint["name"]) == endpoint["name"]:
            host["egress_pod"] = subject["pod"]
            host["egress_targets"] = list(subject.get("targets") or [])
        for key in ("egress_external_resolver", "egress_echo_url", "egress_test_proxy"):
            if info.get(key):
                host[key] = info[key]
        hosts[endpoint["name"]] = host
    return {"all": {"children": {"clusters": {"hosts": hosts}}}}


def write_yaml(path: str, document: dict, mode: int = 0o600) -> None:
    with open(path, "w", encoding="utf-8") as handle:
        yaml.safe_dump(document, handle, sort_keys=False)
    os.chmod(path, mode)
