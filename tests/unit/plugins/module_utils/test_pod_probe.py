"""pod_probe.probe() end to end on this host (the exec transport is a local subprocess), batching, and the no-shell path."""

import subprocess
from urllib.parse import quote_plus

import pytest

from ansible_collections.kubediag.egress.plugins.module_utils import pod_probe, probe_script
from ansible_collections.kubediag.egress.plugins.module_utils.kube import ExecResult
from ansible_collections.kubediag.egress.plugins.module_utils.targets import TargetError, parse_targets


def local_run(argv, timeout):
    completed = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)
    return ExecResult(completed.stdout, completed.stderr, completed.returncode)


def test_probe_on_this_host_against_a_closed_port():
    options = pod_probe.build_options(timeout=2, external_resolver=None, mtu_sizes=[1500, 576])
    facts = pod_probe.probe(local_run, parse_targets(["tcp://127.0.0.1:9", "http://127.0.0.1:9/"]), options)
    checks = {c["id"]: c for c in facts["checks"]}
    assert facts["exec_round_trips"] == 2 and facts["concurrent_execs"] == 1
    assert checks["tcp:127.0.0.1:9"]["error_class"] == "refused"
    assert checks["http:http://127.0.0.1:9/"]["error_class"] == "refused"
    assert checks["icmp:127.0.0.1"]["status"] == "ok"
    assert checks["mtu:127.0.0.1"]["status"] == "ok" and checks["mtu:127.0.0.1"]["details"]["largest_ok"] == 1500
    assert facts["targets"][0]["status"] == "fail" and "tcp:127.0.0.1:9" in facts["targets"][0]["check_ids"]
    assert facts["summary"]["fail"] == 2 and facts["environment"]["tools"]["curl"]["flavor"] == "curl"


def test_many_targets_are_spread_over_concurrent_execs_within_the_budget():
    env = probe_script.parse_detection("tool curl c curl\ntool dig d DiG 9.18\ntool nc n OpenBSD netcat\ntool ping p ping from iputils\n"
                                       "tool openssl o OpenSSL 3\ntimeout gnu\n")
    targets = parse_targets([f"https://service-{i}.example.test/health/check" for i in range(32)])
    checks = probe_script.plan_checks(targets, env, pod_probe.build_options(cluster_dns_ip="10.96.0.10"))
    groups = pod_probe.batches(checks, 5, "gnu")
    assert len(groups) > 1
    assert sum(len(g) for g in groups) == sum(1 for c in checks if c.record is not None)
    for group in groups:
        argv = probe_script.probe_argv(group, 5, "gnu", probe_script.new_nonce())
        assert sum(len(quote_plus(a)) + len("&command=") for a in argv) <= pod_probe.EXEC_URL_BUDGET


@pytest.mark.parametrize("result", [
    ExecResult("", "", None, error='OCI runtime exec failed: exec failed: unable to start container process: exec: "sh": executable file '
               'not found in $PATH: unknown'),
    ExecResult('OCI runtime exec failed: exec: "sh": executable file not found in $PATH: unknown\r\n', "", 126),
])
def test_no_shell_is_recognised(result):
    with pytest.raises(pod_probe.NoShell, match="executable file not found"):
        pod_probe.probe(lambda argv, timeout: result, parse_targets(["https://api.example.test/"]), pod_probe.build_options())


@pytest.mark.parametrize(("option", "value", "message"), [
    ("cluster_dns_ip", "kube-dns", "cluster_dns_ip must be an IP address"), ("external_resolver", "8.8.8.8; id", "external_resolver"),
    ("echo_url", "ftp://x.example/", "echo_url"), ("test_proxy", "http://p:3128;id", "test_proxy"), ("timeout", 0, "timeout"),
    ("mtu_sizes", [20], "mtu_sizes"), ("known_good_ip", "one.one.one.one", "known_good_ip"),
])
def test_options_are_validated(option, value, message):
    with pytest.raises(TargetError, match=message):
        pod_probe.build_options(**{option: value})


def test_node_debug_pod_is_pinned_host_network_and_short_lived():
    manifest = pod_probe.node_debug_pod_manifest("node-1", "shop", "nicolaka/netshoot", 120)
    spec = manifest["spec"]
    assert spec["nodeName"] == "node-1" and spec["hostNetwork"] is True and spec["restartPolicy"] == "Never"
    assert spec["containers"][0]["command"] == ["sleep", "120"]
    assert manifest["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "kubediag.egress"
