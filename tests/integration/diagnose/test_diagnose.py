"""The diagnose playbook against the lab, as a user runs it: every bundled scenario gives exactly its root causes with evidence
and writes nothing but its own debug pods; bad input fails that cluster only; the HTML report renders in headless Chromium."""

import json
import os
import shutil
import socket
import subprocess
import sys

import pytest
import yaml

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import diagnoselab
from kdlab import build

pytestmark = pytest.mark.lab
OUTPUT = os.path.join(diagnoselab.REPO, "tests", "output", "diagnose")


@pytest.fixture
def workdir(tmp_path):
    yield tmp_path
    build.down(str(tmp_path / "lab"))


def _diagnose(workdir, scenario, **extra):
    lab = build.up(scenario, str(workdir / "lab"))
    report_dir = str(workdir / "report")
    code, output, seconds = diagnoselab.run_playbook(lab.info["inventory"], report_dir, str(workdir / "home"),
                                                     {"timeout": 3, **extra})
    return lab, code, output, seconds, report_dir


@pytest.mark.parametrize("scenario", diagnoselab.scenarios())
def test_scenario_gives_exactly_its_root_causes(workdir, scenario):
    lab, code, output, _seconds, report_dir = _diagnose(workdir, scenario)
    assert code == 0, output[-4000:]
    report = diagnoselab.read_report(report_dir)
    subject = lab.scenario["subject"]
    cluster = subject.get("cluster") or lab.scenario["clusters"][0]["name"]
    mine = [r for r in report["results"] if r["cluster"] == cluster and r["pod"] == subject["pod"]]
    assert sorted(r["target"] for r in mine) == sorted(subject["targets"])
    found = {cause for r in mine for cause in r["root_causes"]}
    assert found == set(lab.scenario["expect"]["root_causes"]), json.dumps(mine, indent=1)[:4000]
    for result in mine:
        for finding in result["findings"]:
            assert finding["evidence"], finding
    assert not report["errors"], report["errors"]
    entries = diagnoselab.audit_entries(lab.dir)
    assert diagnoselab.writes_outside_debug(entries) == []
    assert diagnoselab.debug_pods_left(entries) == 0
    assert "result(s) in" in output and "reports: " in output  # the console ends with the summary


def test_bad_input_fails_that_cluster_only(workdir):
    """healthy-fleet: prod-aws is diagnosed normally; the other clusters each get one kind of bad input; extra hosts point at an
    unknown context, at an API server that is not there and at a user who may not exec into pods.
    Each fails with its reason; the good cluster is still reported; the user who may not exec gets the answer the cluster's
    configuration gives (issue 9: not probed, naming the missing permission)."""
    lab = build.up("healthy-fleet", str(workdir / "lab"))
    with open(lab.info["inventory"], encoding="utf-8") as handle:
        inventory = yaml.safe_load(handle)
    hosts = inventory["all"]["children"]["clusters"]["hosts"]
    base = hosts["prod-aws"]
    hosts["prod-gce"].update(egress_pod="shop/no-such-pod", egress_targets=["https://api.example.test/health"])
    hosts["prod-azure"].update(egress_pod="shop/web", egress_targets=["https://x;touch /tmp/pwned/"])
    hosts["ghost-ns"] = {**base, "context": "prod-gce", "egress_pod": "nowhere/web"}
    hosts["no-context"] = {**base, "context": "no-such-context"}
    hosts["no-exec"] = {**base, "context": "prod-aws-viewer"}  # the scenario's user without pods/exec
    hosts["api-down"] = {**{k: v for k, v in base.items() if k not in ("kubeconfig", "context")}, "kubeconfig": _kubeconfig_to_nowhere(workdir)}
    path = str(workdir / "inventory.yml")
    with open(path, "w", encoding="utf-8") as handle:
        yaml.safe_dump(inventory, handle)
    report_dir = str(workdir / "report")
    code, output, _seconds = diagnoselab.run_playbook(path, report_dir, str(workdir / "home"), {"timeout": 2, "node_probe": False})
    assert code != 0
    report = diagnoselab.read_report(report_dir)
    assert {r["cluster"]: r["status"] for r in report["results"]} == {"prod-aws": "healthy", "no-exec": "not_probed"}
    [no_exec] = [r for r in report["results"] if r["cluster"] == "no-exec"]
    assert 'User "viewer" cannot create resource "pods/exec"' in no_exec["note"] and "RBAC permission" in no_exec["note"]
    assert no_exec["note"].endswith("no static cause found; probe to be sure")
    errors = {e["cluster"]: e["msg"] for e in report["errors"]}
    assert set(errors) == {"prod-gce", "prod-azure", "ghost-ns", "no-context", "api-down"}, errors
    assert "shop/no-such-pod not found" in errors["prod-gce"]
    assert "x;touch" in errors["prod-azure"]
    assert "namespace nowhere not found" in errors["ghost-ns"]
    assert "no-such-context" in errors["no-context"]
    assert "cannot reach the Kubernetes API server" in errors["api-down"]
    assert not os.path.exists("/tmp/pwned")
    for cluster in errors:
        assert f"{cluster}: " in output  # the failed host says why, on the console too
    execs = [e for e in diagnoselab.audit_entries(lab.dir) if e.get("resource") == "pods/exec" and e.get("cluster") == "prod-azure"]
    assert execs == []  # the malformed target stopped everything before any exec


def _closed_port():
    """A local TCP port nothing listens on: bound to learn a free number, then released."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _kubeconfig_to_nowhere(workdir):
    config = {"apiVersion": "v1", "kind": "Config", "current-context": "down",
              "clusters": [{"name": "down", "cluster": {"server": f"https://127.0.0.1:{_closed_port()}", "insecure-skip-tls-verify": True}}],
              "users": [{"name": "u", "user": {"token": "t"}}], "contexts": [{"name": "down", "context": {"cluster": "down", "user": "u"}}]}
    path = str(workdir / "kubeconfig-down")
    with open(path, "w", encoding="utf-8") as handle:
        yaml.safe_dump(config, handle)
    return path


def test_html_report_shows_the_failing_hop_in_chromium(workdir):
    _lab, code, output, _seconds, report_dir = _diagnose(workdir, "dns.upstream_forwarding")
    assert code == 0, output[-3000:]
    html_path = os.path.join(report_dir, "report.html")
    with open(html_path, encoding="utf-8") as handle:
        html = handle.read()
    assert "http://" not in html.replace('xmlns="http://www.w3.org/2000/svg"', "") and "<link" not in html and "<script" not in html
    os.makedirs(OUTPUT, exist_ok=True)
    screenshot = os.path.join(OUTPUT, "report-dns.upstream_forwarding.png")
    if os.path.exists(screenshot):
        os.unlink(screenshot)
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
             "--disable-component-update", "--disable-sync", f"--user-data-dir={workdir / 'chromium'}", "--window-size=1280,1600"]
    chromium = shutil.which("chromium") or "chromium"
    dom = subprocess.run([chromium, *flags, "--dump-dom", f"file://{html_path}"], capture_output=True, text=True, timeout=90, check=True).stdout
    assert 'data-hop="dns" data-status="fail"' in dom
    assert 'data-hop="pod" data-status="ok"' in dom and 'data-hop="endpoint" data-status="not_reached"' in dom
    assert "dns.upstream_forwarding" in dom and "forward . 192.0.2.99" in dom
    subprocess.run([chromium, *flags, f"--screenshot={screenshot}", f"file://{html_path}"], capture_output=True, timeout=90, check=True)
    assert os.path.getsize(screenshot) > 10000


def test_pod_security_forbidding_the_node_pod_still_gives_the_pods_answer(workdir):
    """Issue 10: a namespace that enforces Pod Security baseline refuses the node debug pod; the diagnosis still answers from
    the pod's own checks (healthy here), without an error, and leaves nothing behind."""
    scenario = os.path.join(diagnoselab.REPO, "tests", "integration", "pod_probe", "scenarios", "pod-security-baseline.yml")
    lab, code, output, _seconds, report_dir = _diagnose(workdir, scenario)
    assert code == 0, output[-4000:]
    assert "node not probed: Pod Security baseline forbids hostNetwork in shop" in output  # the module's warning
    report = diagnoselab.read_report(report_dir)
    assert not report["errors"], report["errors"]
    assert [r["root_causes"] for r in report["results"]] == [["healthy"]]
    entries = diagnoselab.audit_entries(lab.dir)
    assert [e["code"] for e in entries if e["verb"] == "create" and e["resource"] == "pods"] == [403]
    assert diagnoselab.debug_pods_left(entries) == 0


def test_saved_facts_are_owner_only_and_hold_no_invocation_or_secret(workdir):
    facts_dir = workdir / "facts"
    facts_dir.mkdir()
    lab, code, output, _seconds, _report_dir = _diagnose(workdir, "healthy", save_facts_dir=str(facts_dir))
    assert code == 0, output[-4000:]
    with open(lab.info["kubeconfig"], encoding="utf-8") as handle:
        tokens = [user["user"]["token"] for user in yaml.safe_load(handle)["users"] if user["user"].get("token")]
    assert tokens
    saved = list(facts_dir.iterdir())
    assert [path.name for path in saved] == ["lab.json"]
    assert saved[0].stat().st_mode & 0o777 == 0o600
    text = saved[0].read_text(encoding="utf-8")
    facts = json.loads(text)
    assert facts["cluster"] == "lab" and facts["pod_probes"]
    assert '"invocation"' not in text and "module_args" not in text
    assert not any(token in text for token in tokens)


@pytest.mark.parametrize(("scenario", "status", "shown"), [
    ("netpol.egress_blocked-distroless", "failing", "Observed from: `static`"),
    ("not_probed-distroless", "not_probed", "no static cause found; probe to be sure"),
])
def test_a_pod_that_cannot_be_probed_is_answered_from_the_cluster_alone(workdir, scenario, status, shown):
    """Issue 9: a distroless pod, debug containers not allowed (the default): nothing is run in it, no ephemeral container is
    added, and the verdict says what the cluster's configuration proves (observed_from: static) or that it was not probed."""
    lab, code, output, _seconds, report_dir = _diagnose(workdir, scenario)
    assert code == 0, output[-4000:]
    [result] = diagnoselab.read_report(report_dir)["results"]
    assert result["status"] == status and result["checks"] == []
    assert all(f["observed_from"] == "static" for f in result["findings"])
    assert result["note"].startswith("not probed: container 'static' of pod shop/static has no shell")
    with open(os.path.join(report_dir, "report.md"), encoding="utf-8") as handle:
        assert shown in handle.read()
    with open(os.path.join(report_dir, "report.html"), encoding="utf-8") as handle:
        page = handle.read()
    assert f'data-status="{status}"' in page
    assert ('data-observed-from="static"' in page) == (status == "failing")
    entries = diagnoselab.audit_entries(lab.dir)
    assert not [e for e in entries if e.get("resource") == "pods/ephemeralcontainers"]
    assert diagnoselab.debug_pods_left(entries) == 0


def test_a_refused_debug_container_still_gives_the_static_answer(workdir):
    """Issue 9: debug containers allowed, but the user may not patch pods/ephemeralcontainers (RBAC 403): the pod is not probed,
    not failed, and the policy that blocks it is named from the cluster's configuration."""
    scenario = os.path.join(diagnoselab.REPO, "tests", "integration", "pod_probe", "scenarios", "distroless-debug-refused.yml")
    lab = build.up(scenario, str(workdir / "lab"))
    with open(lab.info["inventory"], encoding="utf-8") as handle:
        inventory = yaml.safe_load(handle)
    inventory["all"]["children"]["clusters"]["hosts"]["lab"]["context"] = "lab-diag"
    path = str(workdir / "inventory.yml")
    with open(path, "w", encoding="utf-8") as handle:
        yaml.safe_dump(inventory, handle)
    report_dir = str(workdir / "report")
    code, output, _seconds = diagnoselab.run_playbook(path, report_dir, str(workdir / "home"), {"timeout": 3, "allow_debug_container": True})
    assert code == 0, output[-4000:]
    report = diagnoselab.read_report(report_dir)
    assert not report["errors"], report["errors"]
    [result] = report["results"]
    assert result["root_causes"] == ["netpol.egress_blocked"] and result["findings"][0]["observed_from"] == "static"
    assert "the ephemeral debug container was refused" in result["note"] and "pods/ephemeralcontainers" in result["note"]
    entries = diagnoselab.audit_entries(lab.dir)
    assert [e["code"] for e in entries if e.get("resource") == "pods/ephemeralcontainers" and e["method"] == "PATCH"] == [403]
    assert diagnoselab.debug_pods_left(entries) == 0
