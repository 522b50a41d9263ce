"""A cluster read the verdict needs gives up after its retries (issue 17): the diagnose playbook draws no verdict for that
cluster from the facts it had, and the report says the cluster was not diagnosed, where it stopped, and what was tried."""

import json
import os
import sys
import threading
import time

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "apiserver"))

import diagnoselab
from apiserver_testlib import raw_request
from kdlab import build

pytestmark = pytest.mark.lab


def break_api_after(lab_dir, path_suffix, stop):
    """Once the API server has answered a request for path_suffix, make it answer 503 to every request."""
    with open(os.path.join(lab_dir, "apiserver.json"), encoding="utf-8") as handle:
        endpoints = json.load(handle)
    with open(os.path.join(lab_dir, "audit.jsonl"), encoding="utf-8") as audit:
        audit.seek(0, os.SEEK_END)
        while not stop.is_set():
            line = audit.readline()
            if not line:
                time.sleep(0.01)
            elif json.loads(line)["path"].split("?")[0].endswith(path_suffix):
                raw_request(endpoints, "PUT", "/_lab/faults", {"errors": {"fraction": 1.0, "code": 503}})
                return


def test_a_cluster_read_that_gives_up_leaves_the_cluster_inconclusive(tmp_path):
    lab = build.up("netpol.egress_blocked", str(tmp_path / "lab"))  # the probe fails, so the verdict needs the cluster reads
    stop = threading.Event()
    breaker = threading.Thread(target=break_api_after, args=(lab.dir, "/configmaps/coredns", stop), daemon=True)
    breaker.start()
    try:
        report_dir = str(tmp_path / "report")
        code, output, _seconds = diagnoselab.run_playbook(lab.info["inventory"], report_dir, str(tmp_path / "home"),
                                                          {"timeout": 1, "node_probe": False})
        assert not breaker.is_alive(), "coredns_info never read the coredns ConfigMap"
        report = diagnoselab.read_report(report_dir)
    finally:
        stop.set()
        build.down(lab.dir)
    assert code != 0
    assert report["results"] == [] and report["summary"]["clusters_failed"] == ["lab"]
    [error] = report["errors"]
    # The API server breaks once coredns_info has read the Corefile: under load coredns_info may finish its reads first, and
    # the next cluster read is the one that gives up. Either way it is a read after the probe, the verdict's input.
    assert error["stage"] not in ("Resolve which pods to diagnose", "Probe from inside each pod and from its node"), error
    assert "last answer HTTP 503" in error["msg"] and " attempts over " in error["msg"], error
    assert f"lab: not diagnosed (inconclusive, stopped at {error['stage']}): the API server kept failing" in " ".join(output.split())  # the console
    with open(os.path.join(report_dir, "report.md"), encoding="utf-8") as handle:
        assert "## Not diagnosed (inconclusive)" in handle.read()
