"""A user's first hour: the collection built with ansible-galaxy, installed into a fresh collections path, and run as
`ansible-playbook kubediag.egress.diagnose_egress` from a directory outside the checkout (no ansible.cfg, no .collections)
with an inventory that holds only kubeconfig and context.

Against one lab (full-diagnosis.yml beside this file) whose users hold exactly the rules of the least-privilege ClusterRole
of docs/examples/: a token user, an exec-plugin user (as EKS, GKE and AKS kubeconfigs authenticate), the README's inventory,
a host with no kubeconfig/context, and users with one permission less."""

import json
import os
import shutil
import socket
import subprocess
import sys

import pytest
import yaml

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
VENV_BIN = os.path.dirname(sys.executable)
sys.path.insert(0, os.path.join(REPO, "tests", "lab"))
CLUSTERROLE = os.path.join(REPO, "docs", "examples", "kubediag-diagnose-clusterrole.yml")
SCENARIO = os.path.join(os.path.dirname(os.path.abspath(__file__)), "full-diagnosis.yml")


def _env(home, collections):
    # Nothing of this machine's own Ansible or Kubernetes setup: the default kubeconfig is the one under the fresh HOME.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ANSIBLE_", "K8S_AUTH_")) and k != "KUBECONFIG"}
    env.update(ANSIBLE_HOME=home, ANSIBLE_COLLECTIONS_PATH=collections, ANSIBLE_NOCOLOR="1", HOME=home,
               PATH=f"{VENV_BIN}:{os.environ.get('PATH', '')}")
    return env


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """(cwd, env): the built tarball installed into a temporary collections path; cwd is an empty directory."""
    root = tmp_path_factory.mktemp("first-hour")
    home, collections, build_dir, cwd = (root / n for n in ("home", "collections", "build", "cwd"))
    for d in (home, collections, build_dir, cwd):
        d.mkdir()
    env = _env(str(home), str(collections))
    galaxy = os.path.join(VENV_BIN, "ansible-galaxy")
    subprocess.run([galaxy, "collection", "build", REPO, "--output-path", str(build_dir)], cwd=str(cwd), env=env,
                   check=True, capture_output=True, timeout=120)
    (tarball,) = build_dir.glob("kubediag-egress-*.tar.gz")
    subprocess.run([galaxy, "collection", "install", str(tarball), "-p", str(collections)], cwd=str(cwd), env=env,
                   check=True, capture_output=True, timeout=120)
    return str(cwd), env


def _diagnose(installed, inventory, extra=None, env_extra=None):
    cwd, env = installed
    env = {**env, **(env_extra or {})}
    path = os.path.join(cwd, "clusters.yml")
    with open(path, "w", encoding="utf-8") as handle:
        yaml.safe_dump(inventory, handle)
    report_dir = os.path.join(cwd, "report")
    shutil.rmtree(report_dir, ignore_errors=True)
    argv = [os.path.join(VENV_BIN, "ansible-playbook"), "kubediag.egress.diagnose_egress", "-i", path,
            "-e", json.dumps({"report_dir": report_dir, "timeout": 3, **(extra or {})})]
    done = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=300, check=False)
    report = None
    if os.path.exists(os.path.join(report_dir, "report.json")):
        with open(os.path.join(report_dir, "report.json"), encoding="utf-8") as handle:
            report = json.load(handle)
    return done.returncode, done.stdout + done.stderr, report


def _closed_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def kubeconfig_to_nowhere(tmp_path_factory):
    config = {"apiVersion": "v1", "kind": "Config", "current-context": "down",
              "clusters": [{"name": "down", "cluster": {"server": f"https://127.0.0.1:{_closed_port()}", "insecure-skip-tls-verify": True}}],
              "users": [{"name": "u", "user": {"token": "t"}}], "contexts": [{"name": "down", "context": {"cluster": "down", "user": "u"}}]}
    path = tmp_path_factory.mktemp("nowhere") / "kubeconfig"
    path.write_text(yaml.safe_dump(config))
    return str(path)


def test_cluster_host_runs_locally_with_the_controllers_python(installed, kubeconfig_to_nowhere):
    """The README's two-line host: no ssh, no interpreter discovery; the run reaches the (absent) API server."""
    code, output, report = _diagnose(installed, {"all": {"hosts": {"prod": {"kubeconfig": kubeconfig_to_nowhere, "context": "down"}}}},
                                     {"pod": "shop/web"})
    assert code != 0
    assert "ssh" not in output.lower() and "deserialization" not in output, output[-3000:]
    assert report is not None, output[-3000:]
    assert "cannot reach the Kubernetes API server" in report["errors"][0]["msg"], report["errors"]


@pytest.mark.parametrize("level", ["host", "group"])
def test_inventory_connection_and_interpreter_win(installed, kubeconfig_to_nowhere, level):
    """What the inventory says wins over the plays' defaults, set on the host or on the group."""
    host = {"kubeconfig": kubeconfig_to_nowhere, "context": "down"}
    overrides = {"ansible_python_interpreter": "/nonexistent/kd-python"}
    inventory = {"all": {"hosts": {"prod": {**host, **overrides}}}} if level == "host" else \
        {"all": {"vars": overrides, "hosts": {"prod": host}}}
    _code, output, _report = _diagnose(installed, inventory, {"pod": "shop/web"})
    assert "/nonexistent/kd-python" in output, output[-3000:]
    ssh = {"ansible_connection": "ssh", "ansible_host": "kd-no-such-host.invalid"}
    inventory = {"all": {"hosts": {"prod": {**host, **ssh}}}} if level == "host" else \
        {"all": {"vars": ssh, "hosts": {"prod": host}}}
    _code, output, _report = _diagnose(installed, inventory, {"pod": "shop/web"})
    assert "kd-no-such-host.invalid" in output and "ssh" in output.lower(), output[-3000:]


def test_no_pod_says_how_to_name_one(installed, kubeconfig_to_nowhere):
    code, output, report = _diagnose(installed, {"all": {"hosts": {"prod": {"kubeconfig": kubeconfig_to_nowhere, "context": "down"}}}})
    assert code != 0
    assert report is not None, output[-3000:]
    (error,) = report["errors"]
    assert error["msg"].startswith("no pod given: name the pod to diagnose as namespace/name"), error
    assert "-e pod=shop/web" in error["msg"] and "egress_pod" in error["msg"]


# ---------------------------------------------------------------- against the lab, with the least-privilege ClusterRole

def _clusterrole_rules():
    with open(CLUSTERROLE, encoding="utf-8") as handle:
        (role,) = [d for d in yaml.safe_load_all(handle) if d and d["kind"] == "ClusterRole"]
    return role["rules"]


# Lab users: each holds the ClusterRole's rules; the last two have one permission taken away.
LAB_USERS = {
    "diagnoser": [],
    "oncall": [],  # reached through the exec credential plugin
    "no-exec": [{"apiGroups": [""], "resources": ["pods/exec"], "verbs": ["create"]}],
    "no-netpol": [{"apiGroups": ["networking.k8s.io"], "resources": ["networkpolicies"], "verbs": ["list"]}],
    "no-debug-pod": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["create"]}],
}
# A private mirror, pinned by digest, as a user without access to Docker Hub sets it (the lab runs any image as netshoot).
MIRRORED_DEBUG_IMAGE = "registry.example.test/mirror/netshoot@sha256:" + "0123456789abcdef" * 4


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    from kdlab import build

    root = tmp_path_factory.mktemp("first-hour-lab")
    with open(SCENARIO, encoding="utf-8") as handle:
        scenario = yaml.safe_load(handle)
    rules = _clusterrole_rules()
    scenario["clusters"][0]["users"] = [{"name": name, "rules": rules, "deny": deny} for name, deny in LAB_USERS.items()]
    path = root / "scenario.yml"
    path.write_text(yaml.safe_dump(scenario))
    lab_dir = str(root / "lab")
    try:
        yield build.up(str(path), lab_dir)
    finally:
        build.down(lab_dir)


def _lab_kubeconfig(lab):
    with open(lab.info["kubeconfig"], encoding="utf-8") as handle:
        return yaml.safe_load(handle)


def _token(config, context):
    (entry,) = [c["context"] for c in config["contexts"] if c["name"] == context]
    return next(u["user"]["token"] for u in config["users"] if u["name"] == entry["user"])


def _readme_inventory():
    """The example inventory of the README's "Diagnose a pod" section, as a user copies it."""
    with open(os.path.join(REPO, "README.md"), encoding="utf-8") as handle:
        section = handle.read().split("One inventory host per cluster", 1)[1]
    return yaml.safe_load(section.split("```yaml\n", 1)[1].split("```", 1)[0])


def _lab_extra(lab, **extra):
    """What the lab's own inventory knows about its world (resolver, echo URL, proxy), passed as a user passes options."""
    with open(lab.info["inventory"], encoding="utf-8") as handle:
        hosts = yaml.safe_load(handle)["all"]["children"]["clusters"]["hosts"]
    host = hosts["lab"]
    subject = lab.scenario["subject"]
    return {"pod": subject["pod"], "targets": subject["targets"], "external_resolver": host["egress_external_resolver"],
            "echo_url": host["egress_echo_url"], "test_proxy": host["egress_test_proxy"], **extra}


def _audit(lab, user):
    with open(os.path.join(lab.dir, "audit.jsonl"), encoding="utf-8") as handle:
        return [e for e in (json.loads(line) for line in handle if line.strip()) if e.get("user") == user]


def _allowed(rules, entry):
    group = entry["path"].split("/")[2] if entry["path"].startswith("/apis/") else ""
    return any(entry["verb"] in rule["verbs"] and entry["resource"] in rule["resources"] and group in rule["apiGroups"] for rule in rules)


def _expected_causes(lab):
    return set(lab.scenario["expect"]["root_causes"])


def _assert_diagnosed(report, output, lab, cluster, context, pods):
    mine = [r for r in report["results"] if r["cluster"] == cluster]
    assert sorted({r["pod"] for r in mine}) == pods, output[-3000:]
    for result in mine:
        assert set(result["root_causes"]) == _expected_causes(lab), json.dumps(result, indent=1)[:3000]
        assert result["context"] == context
        for finding in result["findings"]:
            assert not [n for n in finding["not_checked"] if "forbidden" in json.dumps(n)], finding["not_checked"]


@pytest.mark.lab
def test_least_privilege_clusterrole_is_enough_for_a_full_diagnosis(installed, lab):
    """A token user bound to exactly the ClusterRole: node probe and debug container (from a digest-pinned private mirror)
    on, a failing probe (so the cluster reads are made): the expected verdict, nothing forbidden, every request allowed by
    the role, and its exec, write, log and list permissions all used. (The kinds the lab does not serve, Istio, Cilium,
    Calico, AdminNetworkPolicy, are not read, as on a cluster without them.)"""
    inventory = {"all": {"hosts": {"lab": {"kubeconfig": lab.info["kubeconfig"], "context": "lab-diagnoser"}}}}
    code, output, report = _diagnose(installed, inventory, _lab_extra(lab, pod="shop/app=web", allow_debug_container=True,
                                                                      debug_image=MIRRORED_DEBUG_IMAGE))
    assert code == 0, output[-4000:]
    assert not report["errors"], report["errors"]
    _assert_diagnosed(report, output, lab, "lab", "lab-diagnoser", ["shop/web", "shop/web-distroless"])
    assert "forbidden" not in json.dumps(report).lower()
    entries = [e for e in _audit(lab, "diagnoser") if e["resource"] not in ("discovery", "openapi")]
    assert [e for e in entries if e["code"] == 403] == []
    used = {(e["verb"], e["resource"]) for e in entries}
    for needed in [("create", "pods/exec"), ("create", "pods"), ("delete", "pods"), ("patch", "pods/ephemeralcontainers"),
                   ("get", "pods/log"), ("list", "networkpolicies"), ("list", "nodes"), ("get", "configmaps")]:
        assert needed in used, sorted(used)
    rules = _clusterrole_rules()
    assert [e for e in entries if not _allowed(rules, e)] == []
    debug = [r for r in report["results"] if r["pod"] == "shop/web-distroless"]
    # probed, from the debug container (a by-address check is skipped by design when the pod resolves the name)
    assert debug and all(c["status"] != "skip" for c in debug[0]["checks"] if ".by_address:" not in c["name"]), debug
    from kubernetes import client, config

    api = client.CoreV1Api(config.new_client_from_config(lab.info["kubeconfig"], context="lab"))
    ephemeral = api.read_namespaced_pod("web-distroless", "shop").spec.ephemeral_containers or []
    assert [c.image for c in ephemeral] == [MIRRORED_DEBUG_IMAGE]


@pytest.mark.lab
def test_readme_inventory_exec_plugin_user_and_default_kubeconfig(installed, lab):
    """~/.kube/config holds `prod-eu` (user authenticated by an exec credential plugin, as EKS/GKE/AKS kubeconfigs are) and
    `dev` (a token user, the current-context). The README's inventory works as written; a host added with neither
    kubeconfig nor context uses the default kubeconfig's current-context and says so."""
    _cwd, env = installed
    inventory = _readme_inventory()
    ((readme_host, readme_vars),) = inventory["all"]["hosts"].items()
    assert readme_vars["kubeconfig"] == "~/.kube/config", readme_vars  # the file this test writes under the fresh HOME
    config = _lab_kubeconfig(lab)
    (cluster,) = [c for c in config["clusters"] if c["name"] == "lab"]
    plugin_dir = os.path.join(env["HOME"], "bin")
    os.makedirs(plugin_dir, exist_ok=True)
    plugin = os.path.join(plugin_dir, "kd-lab-token")
    token_file = os.path.join(plugin_dir, "oncall.token")
    with open(token_file, "w", encoding="utf-8") as handle:
        handle.write(_token(config, "lab-oncall"))
    with open(plugin, "w", encoding="utf-8") as handle:  # what `aws eks get-token` prints, with a token the lab accepts
        handle.write('#!/bin/sh\necho "$KUBERNETES_EXEC_INFO" > "$1.called"\n'
                     'printf \'{"apiVersion": "client.authentication.k8s.io/v1beta1", "kind": "ExecCredential", '
                     '"status": {"token": "%s"}}\\n\' "$(cat "$1")"\n')
    os.chmod(plugin, 0o700)
    exec_plugin = {"apiVersion": "client.authentication.k8s.io/v1beta1", "command": plugin, "args": [token_file], "interactiveMode": "Never"}
    home_config = {
        "apiVersion": "v1", "kind": "Config", "current-context": "dev", "clusters": [cluster],
        "users": [{"name": "oncall", "user": {"exec": exec_plugin}}, {"name": "diagnoser", "user": {"token": _token(config, "lab-diagnoser")}}],
        "contexts": [{"name": readme_vars["context"], "context": {"cluster": "lab", "user": "oncall"}},
                     {"name": "dev", "context": {"cluster": "lab", "user": "diagnoser"}}]}
    os.makedirs(os.path.join(env["HOME"], ".kube"), exist_ok=True)
    with open(os.path.join(env["HOME"], ".kube", "config"), "w", encoding="utf-8") as handle:
        yaml.safe_dump(home_config, handle)
    inventory["all"]["hosts"]["fallback"] = {}
    code, output, report = _diagnose(installed, inventory, _lab_extra(lab, node_probe=False))
    assert code == 0, output[-4000:]
    assert not report["errors"], report["errors"]
    _assert_diagnosed(report, output, lab, readme_host, readme_vars["context"], ["shop/web"])
    _assert_diagnosed(report, output, lab, "fallback", "dev", ["shop/web"])
    assert "fallback (context dev) shop/web" in output and f"{readme_host} (context {readme_vars['context']}) shop/web" in output
    assert os.path.exists(token_file + ".called")  # the plugin ran ...
    assert _audit(lab, "oncall")  # ... and its token is who the API server saw


@pytest.mark.lab
def test_one_permission_less_or_a_wrong_context_is_named(installed, lab):
    """Users with the ClusterRole minus pods/exec create, minus networkpolicies list, minus pods create (the node debug pod);
    a context the kubeconfig lacks; a pod that is not in the cluster the context names. Each cluster fails with a message
    naming what is missing, and the context it was reached through, except the one that may not exec: it gets the answer the
    cluster's configuration gives (issue 9), not probed, naming the permission. No credential is printed."""
    kubeconfig = lab.info["kubeconfig"]
    hosts = {"no-exec": "lab-no-exec", "no-netpol": "lab-no-netpol", "no-debug-pod": "lab-no-debug-pod", "typo": "lab-diagnoserr",
             "ghost": "lab-diagnoser"}
    inventory = {"all": {"vars": {"kubeconfig": kubeconfig, "egress_pod": lab.scenario["subject"]["pod"]},
                         "hosts": {host: {"context": context} for host, context in hosts.items()}}}
    inventory["all"]["hosts"]["ghost"]["egress_pod"] = "shop/no-such-pod"
    extra = {k: v for k, v in _lab_extra(lab).items() if k != "pod"}  # the node probe on, as by default
    code, output, report = _diagnose(installed, inventory, extra)
    assert code != 0
    errors = {e["cluster"]: e for e in report["errors"]}
    assert set(errors) == set(hosts) - {"no-exec"}, output[-4000:]
    failed = {host: context for host, context in hosts.items() if host != "no-exec"}
    assert {host: e["context"] for host, e in errors.items()} == {**failed, "typo": None}  # a context that is not there is not used
    assert "pod shop/no-such-pod not found in context lab-diagnoser" in errors["ghost"]["msg"] and "ERR  ghost (context lab-diagnoser)" in output
    [no_exec] = [r for r in report["results"] if r["cluster"] == "no-exec"]
    assert no_exec["status"] == "not_probed" and no_exec["context"] == "lab-no-exec", no_exec
    assert ('User "no-exec" cannot create resource "pods/exec" in API group "" in the namespace "shop"' in no_exec["note"]
            and "RBAC" in no_exec["note"]), no_exec
    assert ('User "no-netpol" cannot list resource "networkpolicies" in API group "networking.k8s.io" in the namespace "shop"'
            in errors["no-netpol"]["msg"] and "RBAC" in errors["no-netpol"]["msg"]), errors["no-netpol"]
    assert ('User "no-debug-pod" cannot create resource "pods" in API group "" in the namespace "shop"' in errors["no-debug-pod"]["msg"]
            and "node_probe false" in errors["no-debug-pod"]["msg"]), errors["no-debug-pod"]
    assert errors["typo"]["msg"].startswith(f"context 'lab-diagnoserr' is not in kubeconfig {kubeconfig}: it has 'lab', "), errors["typo"]
    assert "'lab-diagnoser'" in errors["typo"]["msg"]
    config = _lab_kubeconfig(lab)
    for user in config["users"]:
        assert user["user"]["token"] not in output and user["user"]["token"] not in json.dumps(report)


@pytest.mark.lab
def test_k8s_auth_environment_as_awx_passes_it(installed, lab):
    """AWX's Kubernetes bearer token credential: K8S_AUTH_HOST, _API_KEY, _VERIFY_SSL, _SSL_CA_CERT in the environment, an
    inventory host with no vars at all, and KUBECONFIG pointing at no file: nothing comes from a kubeconfig."""
    config = _lab_kubeconfig(lab)
    (cluster,) = [c["cluster"] for c in config["clusters"] if c["name"] == "lab"]
    env = {"K8S_AUTH_HOST": cluster["server"], "K8S_AUTH_API_KEY": _token(config, "lab-diagnoser"), "K8S_AUTH_VERIFY_SSL": "True",
           "K8S_AUTH_SSL_CA_CERT": cluster["certificate-authority"], "KUBECONFIG": os.path.join(installed[0], "no-such-kubeconfig")}
    code, output, report = _diagnose(installed, {"all": {"hosts": {"awx-cluster": {}}}}, _lab_extra(lab, node_probe=False), env)
    assert code == 0, output[-4000:]
    _assert_diagnosed(report, output, lab, "awx-cluster", None, ["shop/web"])
    assert env["K8S_AUTH_API_KEY"] not in output
