"""kubernetes.core (from the `ansible` package) against the lab API server with ansible-playbook, through the inventory and
kubeconfig the server writes: k8s_info, k8s apply in check mode and for real, k8s_exec, k8s state=absent."""

import os
import subprocess
import sys

from apiserver_testlib import audit_records

PLAYBOOK = os.path.join(os.path.dirname(os.path.abspath(__file__)), "kubernetes_core.yml")
VENV_BIN = os.path.dirname(sys.executable)


def test_kubernetes_core_modules_work_against_the_lab(apiserver, tmp_path):
    env = {**os.environ, "HOME": str(tmp_path), "ANSIBLE_PIPELINING": "1", "ANSIBLE_LOCAL_TEMP": str(tmp_path / "tmp"),
           "ANSIBLE_PYTHON_INTERPRETER": sys.executable, "ANSIBLE_COLLECTIONS_PATH": str(tmp_path / "no-collections"), "ANSIBLE_NOCOLOR": "1",
           "PATH": f"{VENV_BIN}:{os.environ.get('PATH', '/usr/bin:/bin')}"}
    inventory = os.path.join(apiserver["dir"], "inventory.yml")
    result = subprocess.run([os.path.join(VENV_BIN, "ansible-playbook"), "-i", inventory, "--limit", "lab", "-e", "configmap=from-ansible",
                             PLAYBOOK], env=env, capture_output=True, text=True, timeout=180, check=False, cwd=str(tmp_path))
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "kubernetes.core" not in result.stderr          # no deprecation or collection-loading warnings about it
    writes = [(r["verb"], r["dry_run"], r["code"]) for r in audit_records(apiserver)
              if r["resource"] == "configmaps" and r["name"] == "from-ansible" and r["verb"] in ("create", "patch", "update", "delete")]
    # check mode is a server-side dry run; the real apply creates; the second apply sends nothing or an unchanged patch
    assert writes[0][1] is True and any(w[:2] == ("create", False) or w[:2] == ("patch", False) for w in writes[1:])
    assert writes[-1] == ("delete", False, 200)
