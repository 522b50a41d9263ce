"""Real kubectl 1.30-1.33 against the lab API server: get (tables), apply, patch, delete, exec, logs, RBAC, dry-run, watch."""

import base64
import json
import subprocess
import time

import pytest
from apiserver_testlib import KUBECTL, KUBECTL_MINORS, audit_records, raw_request

NETPOL = """apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: deny-egress-{minor}
  namespace: shop
spec:
  podSelector:
    matchLabels:
      app: web
  policyTypes: [Egress]
"""


@pytest.mark.parametrize("minor", KUBECTL_MINORS)
def test_get_renders_tables(kubectl, minor):
    pods = kubectl(minor, "get", "pods", "-A", "-o", "wide")
    assert pods.returncode == 0, pods.stderr
    header = pods.stdout.splitlines()[0].split()
    assert header[:6] == ["NAMESPACE", "NAME", "READY", "STATUS", "RESTARTS", "AGE"]
    web = next(line.split() for line in pods.stdout.splitlines() if " web " in line)
    assert web[:4] == ["shop", "web", "1/1", "Running"] and "10.244.0.3" in web and "node-1" in web
    services = kubectl(minor, "get", "svc", "-n", "kube-system")
    assert "kube-dns" in services.stdout and "10.96.0.10" in services.stdout and "53/UDP,53/TCP,9153/TCP" in services.stdout
    nodes = kubectl(minor, "get", "nodes", "-o", "jsonpath={.items[*].spec.providerID}")
    assert nodes.stdout.startswith("aws:///eu-west-1a/i-0")
    entries = kubectl(minor, "get", "se", "-n", "shop")
    assert entries.returncode == 0 and "api.example.test" in entries.stdout


@pytest.mark.parametrize("minor", KUBECTL_MINORS)
def test_apply_patch_delete_networkpolicy(kubectl, minor):
    manifest = NETPOL.format(minor=minor)
    name = f"networkpolicy.networking.k8s.io/deny-egress-{minor}"
    assert kubectl(minor, "apply", "-f", "-", stdin=manifest).stdout.strip() == f"{name} created"
    assert kubectl(minor, "apply", "-f", "-", stdin=manifest).stdout.strip() == f"{name} unchanged"
    patched = kubectl(minor, "patch", "netpol", "-n", "shop", f"deny-egress-{minor}", "--type=merge",
                      "-p", '{"spec":{"policyTypes":["Egress","Ingress"]}}')
    assert patched.returncode == 0, patched.stderr
    shown = kubectl(minor, "get", "netpol", "-n", "shop", f"deny-egress-{minor}", "-o", "jsonpath={.spec.policyTypes} {.metadata.generation}")
    assert shown.stdout == '["Egress","Ingress"] 2'
    deleted = kubectl(minor, "delete", "-f", "-", stdin=manifest)
    assert deleted.returncode == 0 and "deleted" in deleted.stdout
    gone = kubectl(minor, "get", "netpol", "-n", "shop", f"deny-egress-{minor}")
    assert gone.returncode == 1
    assert f'networkpolicies.networking.k8s.io "deny-egress-{minor}" not found' in gone.stderr


@pytest.mark.parametrize("minor", KUBECTL_MINORS)
def test_server_side_apply_creates_then_updates(kubectl, minor):
    manifest = f"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ssa-{minor}\n  namespace: shop\ndata:\n  a: '1'\n"
    assert "serverside-applied" in kubectl(minor, "apply", "--server-side", "-f", "-", stdin=manifest).stdout
    assert "serverside-applied" in kubectl(minor, "apply", "--server-side", "-f", "-", stdin=manifest.replace("'1'", "'2'")).stdout
    assert kubectl(minor, "get", "cm", "-n", "shop", f"ssa-{minor}", "-o", "jsonpath={.data.a}").stdout == "2"


@pytest.mark.parametrize("minor", KUBECTL_MINORS)
def test_strategic_and_json_patch_on_pod(kubectl, minor):
    strategic = kubectl(minor, "patch", "pod", "-n", "shop", "web", "-p", '{"spec":{"containers":[{"name":"web","image":"nicolaka/netshoot:v0.14"}]}}')
    assert strategic.returncode == 0, strategic.stderr
    json_patch = kubectl(minor, "patch", "pod", "-n", "shop", "web", "--type=json", "-p", f'[{{"op":"add","path":"/metadata/labels/k{minor}","value":"x"}}]')
    assert json_patch.returncode == 0, json_patch.stderr
    shown = kubectl(minor, "get", "pod", "-n", "shop", "web", "-o", f"jsonpath={{.spec.containers[0].image}} {{.metadata.labels.k{minor}}}")
    assert shown.stdout == "nicolaka/netshoot:v0.14 x"
    forbidden_change = kubectl(minor, "patch", "pod", "-n", "shop", "web", "-p", '{"spec":{"containers":[{"name":"web","command":["x"]}]}}')
    assert forbidden_change.returncode == 1
    assert 'The Pod "web" is invalid: spec: Forbidden: pod updates may not change fields other than' in forbidden_change.stderr


@pytest.mark.parametrize("minor", KUBECTL_MINORS)
def test_exec_streams_and_exit_code(kubectl, minor):
    result = kubectl(minor, "exec", "-n", "shop", "web", "--", "sh", "-c", 'echo "$GREETING"; echo oops >&2; exit 7')
    assert result.returncode == 7
    assert result.stdout == "hello from web\n"
    assert result.stderr == "oops\ncommand terminated with exit code 7\n"
    piped = kubectl(minor, "exec", "-i", "-n", "shop", "web", "--", "wc", "-c", stdin="12345")
    assert (piped.returncode, piped.stdout.strip()) == (0, "5")


@pytest.mark.parametrize("minor", KUBECTL_MINORS)
def test_exec_missing_tool_like_containerd(kubectl, minor):
    result = kubectl(minor, "exec", "-n", "shop", "static", "-c", "static", "--", "curl", "-sS", "https://api.example.test")
    assert result.returncode == 1
    assert result.stderr.startswith("error: Internal error occurred: error executing command in container: failed to exec in container: "
                                    "failed to start exec \"")
    assert result.stderr.rstrip().endswith(
        'OCI runtime exec failed: exec failed: unable to start container process: exec: "curl": executable file not found in $PATH: unknown')


@pytest.mark.parametrize("minor", KUBECTL_MINORS)
def test_exec_errors(kubectl, minor):
    wrong = kubectl(minor, "exec", "-n", "shop", "web", "-c", "nope", "--", "true")
    assert "container nope is not valid for pod web" in wrong.stderr
    forbidden = kubectl(minor, "--token", "dev-token", "exec", "-n", "shop", "web", "--", "true")
    assert forbidden.returncode == 1
    assert ('Error from server (Forbidden): pods "web" is forbidden: User "dev" cannot create resource "pods/exec" in API group "" '
            'in the namespace "shop"') in forbidden.stderr
    missing = kubectl(minor, "exec", "-n", "shop", "ghost", "--", "true")
    assert 'pods "ghost" not found' in missing.stderr


@pytest.mark.parametrize("minor", KUBECTL_MINORS)
def test_logs_by_label_with_tail(kubectl, minor):
    result = kubectl(minor, "logs", "-n", "kube-system", "-l", "k8s-app=kube-dns", "--tail=1")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("[ERROR] plugin/errors: 2 api.example.test. A: read udp")


@pytest.mark.parametrize("minor", KUBECTL_MINORS)
def test_rbac_forbidden_list_and_dry_run(kubectl, apiserver, minor):
    denied = kubectl(minor, "--token", "viewer-token", "get", "pods", "-n", "kube-system")
    assert ('pods is forbidden: User "viewer" cannot list resource "pods" in API group "" in the namespace "kube-system"') in denied.stderr
    dry = kubectl(minor, "run", f"dry-{minor}", "-n", "shop", "--image=busybox", "--dry-run=server", "-o", "jsonpath={.status.phase}")
    assert (dry.returncode, dry.stdout) == (0, "Running")
    assert kubectl(minor, "get", "pod", "-n", "shop", f"dry-{minor}").returncode == 1
    created = [r for r in audit_records(apiserver) if r["verb"] == "create" and r["name"] == f"dry-{minor}"]
    assert [(r["resource"], r["dry_run"], r["code"]) for r in created] == [("pods", True, 201)]


@pytest.mark.parametrize("minor", KUBECTL_MINORS)
def test_watch_sees_changes(kubectl, apiserver, kube_home, minor):
    env = {"PATH": "/usr/bin:/bin", "HOME": kube_home, "KUBECONFIG": apiserver["kubeconfig"]}
    with subprocess.Popen([KUBECTL.format(minor=minor), "--context", "lab", "get", "cm", "-n", "shop", "-w", "--request-timeout=3s",
                           "-o", "name"], stdout=subprocess.PIPE, text=True, env=env) as watcher:
        time.sleep(1)
        manifest = f"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: watched-{minor}\n  namespace: shop\n"
        assert kubectl(minor, "apply", "-f", "-", stdin=manifest).returncode == 0
        output, _unused = watcher.communicate(timeout=20)
    assert f"configmap/watched-{minor}" in output.split()


@pytest.mark.parametrize("minor", KUBECTL_MINORS)
def test_debug_ephemeral_container_then_exec(kubectl, minor):
    added = kubectl(minor, "debug", "-n", "shop", "static", "--image=nicolaka/netshoot", "--target=static", f"--container=dbg-{minor}",
                    "--", "sleep", "infinity")
    assert added.returncode == 0, added.stderr
    result = kubectl(minor, "exec", "-n", "shop", "static", "-c", f"dbg-{minor}", "--", "sh", "-c", "command -v curl")
    assert result.returncode == 0 and result.stdout.strip().endswith("/curl")


@pytest.mark.parametrize("minor", KUBECTL_MINORS)   # 1.32+ send these typed-client bodies as protobuf, 1.30/1.31 as JSON
def test_typed_create_commands(kubectl, minor):
    created = kubectl(minor, "create", "configmap", f"typed-{minor}", "-n", "shop", "--from-literal=greeting=hello", "--from-literal=n=1")
    assert created.returncode == 0, created.stderr
    stored = json.loads(kubectl(minor, "get", "cm", f"typed-{minor}", "-n", "shop", "-o", "json").stdout)
    assert stored["data"] == {"greeting": "hello", "n": "1"}
    secret = kubectl(minor, "create", "secret", "generic", f"typed-{minor}", "-n", "shop", "--from-literal=password=s3cret", "-o", "json")
    assert json.loads(secret.stdout)["data"] == {"password": base64.b64encode(b"s3cret").decode()}
    namespace = kubectl(minor, "create", "namespace", f"typed-{minor}", "--dry-run=server", "-o", "jsonpath={.status.phase}")
    assert (namespace.returncode, namespace.stdout) == (0, "Active")
    can_i = kubectl(minor, "--token", "dev-token", "auth", "can-i", "create", "pods", "--subresource=exec", "-n", "shop")
    assert (can_i.returncode, can_i.stdout.strip()) == (1, "no")


def test_a_protobuf_body_of_another_kind_gets_a_clear_415(apiserver):
    envelope = b"k8s\x00" + bytes([0x0A, 0x09, 0x0A, 0x02]) + b"v1" + bytes([0x12, 0x03]) + b"Pod"    # typeMeta {apiVersion: v1, kind: Pod}
    status, _headers, body = raw_request(apiserver, "POST", "/api/v1/namespaces/shop/pods", envelope, "application/vnd.kubernetes.protobuf")
    assert status == 415
    assert "decodes protobuf bodies of ConfigMap (v1), Secret (v1), Namespace (v1)" in body["message"] and "not Pod (v1)" in body["message"]
