# Copyright: (c) 2026, kubediag.egress contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

DOCUMENTATION = r"""
module: egress_verdict
short_description: Conclude from egress facts why pods cannot reach their targets, and propose the fix
version_added: 0.1.0
author:
  - kubediag.egress maintainers (@kubediag)
description:
  - A pure function of the facts the other modules gathered (no connection, no I/O), one verdict per pod. Every conclusion of the field
    guide is a rule (see C(docs/verdict.md)), for example IP works but names fail means DNS, an external resolver that works while
    the cluster DNS fails means CoreDNS forwarding, C(curl -k) working means TLS, the node working while the pod fails means pod
    networking.
  - Each finding has a root-cause id from the collection's table, a layer and hop, a severity, a one-line summary, the evidence quoted
    from the facts, what was not checked and why, and a concrete remediation (the NetworkPolicy to add, the Corefile line to change,
    the ServiceEntry to create, the proxy environment to set). Several causes can hold at once; they are ordered by what to fix first.
  - A pod whose every target works gets the single finding C(healthy).
options:
  pod_probes:
    description:
      - Results of M(kubediag.egress.pod_probe), one per pod (a registered loop's C(results) is fine; skipped items are ignored).
      - Each is a mapping; anything else, or a result lacking what the verdict reads (a target's C(port), a check's C(status)),
        fails with a message naming the part.
    type: list
    elements: raw
    required: true
  netpol:
    description: Results of M(kubediag.egress.netpol_egress_info), matched to pods by their C(source).
    type: list
    elements: dict
    default: []
  coredns:
    description: The result (a mapping) of M(kubediag.egress.coredns_info) for the cluster (a skipped task's result counts as absent).
    type: raw
  cluster_network:
    description: The result (a mapping) of M(kubediag.egress.cluster_network_info) for the cluster.
    type: raw
  mesh:
    description:
      - Results of M(kubediag.egress.mesh_egress_info), one per pod and target; each carries C(namespace), C(pod), C(host) and
        C(port), at the top level or in the loop C(item) it was registered with.
    type: list
    elements: dict
    default: []
  pods:
    description: The C(pods) of M(kubediag.egress.egress_pods_info), for the pods' labels (used in the proposed NetworkPolicy).
    type: list
    elements: dict
    default: []
attributes:
  check_mode:
    description: Can run in check_mode and return changed status prediction without modifying target.
    support: full
    details: The module only computes; it runs the same way in check mode.
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in check_mode), when in diff mode.
    support: none
extends_documentation_fragment:
  - kubediag.egress.action_attributes
"""

EXAMPLES = r"""
- name: Probe the pod
  kubediag.egress.pod_probe:
    namespace: shop
    pod: web
    targets: [https://api.example.com/health]
    node_probe: true
  register: probe

- name: Conclude
  kubediag.egress.egress_verdict:
    pod_probes: ["{{ probe }}"]
  register: verdict

- name: Show the root causes
  ansible.builtin.debug:
    msg: "{{ verdict.pods[0].root_causes }}"
"""

RETURN = r"""
pods:
  description:
    - One verdict per pod, C({pod, node, ip, healthy, inconclusive, root_causes, findings, targets, not_checked, notes}).
    - C(inconclusive) is null, or the reason no root cause is drawn for the pod (the probe could not trust its own timings
      and a failure rests only on a timeout); its targets then have status C(inconclusive) and that C(reason).
    - C(findings) are C({id, layer, hop, severity, summary, evidence, not_checked, remediation{summary, module, params}, targets,
      observed_from}), ordered by what to fix first; C(observed_from) is C(pod) (its own checks), C(node) (the node probe
      measured what the pod's tools cannot, e.g. BusyBox) or C(static) (the cluster's configuration alone, for a pod that could
      not be probed).
    - C(targets) are C({target, status, root_causes, path, checks}); status is C(healthy), C(ok), C(failing), C(unknown),
      C(not_probed) (the pod could not be probed and its configuration proves no cause; C(note) says why) or
      C(inconclusive), and C(path)
      gives each hop of pod, dns, policy, node, nat, internet, endpoint as C(ok), C(fail), C(not_reached) or C(unknown).
  returned: always
  type: list
  elements: dict
  sample: [{"pod": "shop/web", "healthy": false, "root_causes": ["dns.upstream_forwarding"], "findings": [], "targets": []}]
root_causes:
  description: Every root-cause id found, over all pods, in fix-first order.
  returned: always
  type: list
  elements: str
  sample: ["dns.upstream_forwarding"]
healthy:
  description: True when every pod is healthy.
  returned: always
  type: bool
  sample: false
facts:
  description: The facts the verdict was drawn from (its options), without Ansible's C(invocation) records, for saving.
  returned: always
  type: dict
  sample: {"pod_probes": [], "netpol": [], "coredns": null, "cluster_network": null, "mesh": [], "pods": []}
"""
