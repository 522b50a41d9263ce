# Copyright: (c) 2026, kubediag.egress contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

DOCUMENTATION = r"""
module: diagnose_plan
short_description: Plan which cluster reads a diagnosis needs from the pod_probe results
version_added: 0.2.0
author:
  - kubediag.egress maintainers (@kubediag)
description:
  - Runs on the controller (an action plugin, no I/O). From the registered kubediag.egress.pod_probe results it decides whether the
    cluster's own configuration must be read (a pod could not be probed, or a check failed), and computes the arguments of each
    read - the address cluster_network_info asks about, the per-pod destinations of netpol_egress_info, the pod x target pairs
    of mesh_egress_info.
  - Used by the kubediag.egress.diagnose role; the decisions live in Python (C(module_utils/cluster/plan.py)), not in Jinja.
options:
  pod_probes:
    description: The registered pod_probe result's C(.results), one per pod (the O(kubediag.egress.pod_probe#module:pods) form).
    type: list
    elements: raw
    required: true
attributes:
  check_mode:
    description: Can run in check_mode and return changed status prediction without modifying target.
    support: full
    details: Computes the same plan; it changes nothing.
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in check_mode), when in diff mode.
    support: none
extends_documentation_fragment:
  - kubediag.egress.action_attributes
"""

EXAMPLES = r"""
- name: Plan the cluster reads
  kubediag.egress.diagnose_plan:
    pod_probes: "{{ probes.results }}"
  register: plan

- name: Read CoreDNS only when a probe failed
  kubediag.egress.coredns_info:
  when: plan.needed
"""

RETURN = r"""
needed:
  description: True when a pod could not be probed or a check failed or errored; the cluster-side analysers matter only then.
  returned: always
  type: bool
  sample: true
cluster_network_destination:
  description: The first address a pod's DNS check resolved (null when none), for kubediag.egress.cluster_network_info.
  returned: always
  type: str
  sample: 203.0.113.10
netpol:
  description:
    - One C({namespace, pod, destinations}) per pod pod_probe reached, destinations as kubediag.egress.netpol_egress_info takes them.
    - For a pod that could not be probed, every target is asked about (the verdict answers it from these reads alone), by the
      addresses its node probe resolved, else by name alone (netpol_egress_info then resolves it on the controller).
  returned: always
  type: list
  elements: dict
  sample: [{"namespace": "shop", "pod": "web", "destinations": [{"to": "api.example.test", "ips": ["203.0.113.10"], "port": 443, "protocol": "TCP"}]}]
mesh:
  description: One C({namespace, pod, host, port}) per pod and target, for kubediag.egress.mesh_egress_info.
  returned: always
  type: list
  elements: dict
  sample: [{"namespace": "shop", "pod": "web", "host": "api.example.test", "port": 443}]
"""
