"""up/down robustness, isolation of two labs, and the hooks the lab's API server uses."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest
from kdlab import Lab, LabError, build, extensions, scenario, system
from kdlab.errors import ExecNotFound
from kdlab.state import Journal
from kdlab.testing import leftovers, run_in

LAB_PARENT = os.path.dirname(os.path.dirname(os.path.abspath(scenario.__file__)))
WHOAMI = ["curl", "-sS", "--max-time", "2", "http://whoami.example.test"]
WHOAMI_BLOCKED = ["curl", "-sS", "--max-time", "1", "http://whoami.example.test"]   # expected to time out: keep it short


@pytest.mark.lab
def test_down_with_nothing_up_succeeds_and_is_idempotent(tmp_path):
    assert build.down(str(tmp_path / "never")) == []
    assert build.down(str(tmp_path / "never")) == []


@pytest.mark.lab
def test_up_refuses_a_second_lab_in_the_same_dir(lab_dir):
    build.up("healthy", lab_dir)
    with pytest.raises(LabError, match="already up"):
        build.up("healthy", lab_dir)
    assert run_in(Lab.load(lab_dir), WHOAMI, pod="shop/web").returncode == 0


@pytest.mark.lab
def test_failing_post_up_hook_rolls_everything_back(lab_dir):
    def broken_hook(lab):
        lab.start_process("sleeper", ["sleep", "300"])
        raise RuntimeError("api server did not start")

    extensions.register_post_up(broken_hook)
    try:
        with pytest.raises(LabError, match=r"rolled back: post-up hook .*broken_hook failed: api server did not start"):
            build.up("healthy", lab_dir)
    finally:
        extensions.POST_UP_HOOKS.remove(broken_hook)
    assert leftovers(lab_dir) == []
    assert not any(os.path.exists(os.path.join(lab_dir, name)) for name in ("lab.json", "plan.json", "pods", ".kdlab-state.jsonl"))


@pytest.mark.lab
def test_down_cleans_up_after_an_up_killed_midway(lab_dir):
    up = subprocess.Popen([sys.executable, "-m", "kdlab", "up", "--scenario", "healthy-fleet", "--lab", lab_dir],
                          env={**os.environ, "PYTHONPATH": LAB_PARENT}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while not any(e["kind"] == "etc" for e in Journal(lab_dir).entries()) and time.monotonic() < deadline:
        time.sleep(0.002)
    up.send_signal(signal.SIGKILL)
    up.wait()
    assert leftovers(lab_dir), "the up was killed before it created anything; the test proves nothing"
    build.down(lab_dir)
    assert leftovers(lab_dir) == []


@pytest.mark.lab
def test_two_labs_up_at_once_do_not_collide(tmp_path):
    first, second = str(tmp_path / "a"), str(tmp_path / "b")
    try:
        lab_a, lab_b = build.up("healthy", first, run_hooks=False), build.up("nat.missing_snat", second, run_hooks=False)
        assert {p.netns for p in lab_a.pods}.isdisjoint(p.netns for p in lab_b.pods)
        assert lab_a.pod("shop/web").ip == lab_b.pod("shop/web").ip
        assert run_in(lab_a, WHOAMI, pod="shop/web").stdout == "203.0.113.10"
        assert run_in(lab_b, WHOAMI_BLOCKED, pod="shop/web").returncode == 28
        build.down(second)
        assert leftovers(second) == []
        assert run_in(lab_a, WHOAMI, pod="shop/web").stdout == "203.0.113.10"
    finally:
        build.down(first)
        build.down(second)
    assert leftovers(first) == []


@pytest.mark.lab
def test_hooks_change_the_running_dataplane(lab_dir):
    lab = build.up("healthy", lab_dir, run_hooks=False)
    web = lab.pod("shop/web")

    lab.set_pod_egress_rules("lab", web, [f"-d {lab.cluster().pod_cidr} -j RETURN", "-j DROP"])
    assert run_in(lab, WHOAMI_BLOCKED, pod="shop/web").returncode == 28
    # The chain is the pod's own: its neighbour still gets out. (Debian busybox's `wget -T` segfaults: use timeout.)
    assert run_in(lab, ["timeout", "3", "wget", "-qO-", "http://whoami.example.test"], pod="shop/tiny").stdout == "203.0.113.10"
    lab.set_pod_egress_rules("lab", "shop/web", [])
    assert run_in(lab, WHOAMI, pod="shop/web").stdout == "203.0.113.10"
    with pytest.raises(LabError, match="iptables"):
        lab.set_pod_egress_rules("lab", web, ["-j NO-SUCH-TARGET"])

    lab.set_node_snat("lab", enabled=False)
    assert run_in(lab, WHOAMI_BLOCKED, pod="shop/web").returncode == 28
    lab.set_node_snat("lab", enabled=True, non_masquerade_cidrs=["10.244.0.0/16", "198.51.100.0/24"])
    assert run_in(lab, WHOAMI_BLOCKED, pod="shop/web").returncode == 28
    lab.set_node_snat("lab")
    assert run_in(lab, WHOAMI, pod="shop/web").stdout == "203.0.113.10"

    original = lab.corefile("lab")
    lab.write_corefile("lab", original.replace("forward . /etc/resolv.conf", "forward . 192.0.2.99"))
    assert _eventually(lambda: "SERVFAIL" in run_in(lab, ["nslookup", "-timeout=4", "-retry=0", "api.example.test"], pod="shop/web").stdout)
    lab.write_corefile("lab", original)
    assert _eventually(lambda: run_in(lab, ["nslookup", "api.example.test"], pod="shop/web").returncode == 0)
    with open(lab.pod("kube-system/coredns").log_path, encoding="utf-8") as f:
        assert f.read().count("[INFO] Reloading complete") == 2

    pid = lab.start_process("sleeper", ["sleep", "300"], netns=lab.node("node-1").netns)
    extra = lab.track_path(os.path.join(lab_dir, "extra.txt"))
    with open(extra, "w", encoding="utf-8") as f:
        f.write("made by a hook\n")
    with pytest.raises(LabError, match="not inside the lab dir"):
        lab.track_path("/etc/passwd")
    lab.update_info(kubeconfig=os.path.join(lab_dir, "kubeconfig"))
    assert Lab.load(lab_dir).info["kubeconfig"].endswith("/kubeconfig")
    with pytest.raises(LabError, match="no key 'colour'"):
        lab.update_info(colour="blue")
    build.down(lab_dir)
    assert system.process_start_time(pid) is None
    assert not os.path.exists(extra)
    assert leftovers(lab_dir) == []


@pytest.mark.lab
def test_lab_json_is_the_public_contract(lab_dir):
    build.up("healthy-fleet", lab_dir)
    with open(os.path.join(lab_dir, "lab.json"), encoding="utf-8") as f:
        info = json.load(f)
    assert sorted(info) == sorted(["pods", "nodes", "endpoints", "subject", "expect", "resolvers", "egress_ips", "clusters", "kubeconfig",
                                   "inventory", "aws"])
    assert info["aws"] is None      # no cluster has an aws: section (docs/lab.md)
    assert sorted(info["pods"][0]) == ["cluster", "image", "ip", "name", "namespace", "netns", "node"]
    assert sorted(info["nodes"][0]) == ["cluster", "ip", "name", "netns"]
    assert all(sorted(e) == ["host", "ip", "ports"] and all(isinstance(p, int) for p in e["ports"]) for e in info["endpoints"])
    assert info["subject"] == {"pod": "shop/web", "targets": ["https://api.example.test/health"]}
    assert info["resolvers"] == {"cluster_dns": "10.96.0.10", "public": "192.0.2.8"}
    assert info["egress_ips"] == {"prod-aws": "203.0.113.10", "prod-gce": "203.0.113.11", "prod-azure": "203.0.113.12"}
    assert info["clusters"][1] == {"name": "prod-gce", "provider": "gce"}
    for key in ("kubeconfig", "inventory"):      # null until a post-up hook (the lab's API server) fills them
        assert info[key] is None or os.path.exists(info[key])
    lab = Lab.load(lab_dir)
    with pytest.raises(LabError, match="exists in clusters prod-aws, prod-gce, prod-azure"):
        lab.pod("shop/web")
    with pytest.raises(ExecNotFound):
        lab.exec_argv(lab.pod("kube-system/coredns", "prod-gce"), ["sh"])


def test_load_without_a_lab_says_how_to_make_one(tmp_path):
    with pytest.raises(LabError, match="run `python -m kdlab up"):
        Lab.load(str(tmp_path))


def _eventually(condition, timeout: float = 8.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return False
