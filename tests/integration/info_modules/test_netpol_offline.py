"""netpol_egress_info in offline mode (manifests, no cluster), through `ansible` as a CI job runs it."""

import textwrap

from ansible_module import run_module

MANIFESTS = textwrap.dedent("""\
    apiVersion: apps/v1
    kind: Deployment
    metadata: {name: web}
    spec:
      selector: {matchLabels: {app: web}}
      template:
        metadata: {labels: {app: web}}
        spec:
          containers: [{name: web, image: nginx:1.27, ports: [{name: http}, {name: admin, containerPort: 9000}]}]
    ---
    apiVersion: networking.k8s.io/v1
    kind: NetworkPolicy
    metadata: {name: web-egress}
    spec:
      podSelector: {matchLabels: {app: web}}
      policyTypes: [Egress]
      egress: [{to: [{ipBlock: {cidr: 203.0.113.0/24}}], ports: [{port: 443}]}]
    """)


def test_a_port_without_container_port_is_listed_not_fatal(tmp_path):
    (tmp_path / "app.yaml").write_text(MANIFESTS)
    home = tmp_path / "home"
    home.mkdir()
    result = run_module("netpol_egress_info", {"namespace": "shop", "pod": "web", "manifests": [str(tmp_path / "app.yaml")],
                                               "destinations": [{"to": "203.0.113.10", "port": 443}, {"to": "203.0.113.10", "port": 80}]},
                        str(home))
    assert not result["failed"], result.get("msg")
    assert [d["allowed"] for d in result["destinations"]] == [True, False]
    [skipped] = result["not_checked"]
    assert skipped["what"] == "pod shop/web port 'http'" and skipped["reason"] == "invalid"
    assert "containerPort: None is not a port number" in skipped["message"]
