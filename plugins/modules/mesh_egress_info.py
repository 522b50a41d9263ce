# Copyright: (c) 2026, kubediag.egress contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

DOCUMENTATION = r"""
module: mesh_egress_info
short_description: Say whether Istio lets a pod reach an external host and port, and which ServiceEntry or setting decides
version_added: 0.1.0
author:
  - kubediag.egress maintainers (@kubediag)
description:
  - Reads the pod (is it injected with a sidecar, or in ambient mode?), the mesh config (ConfigMap istio-system/istio, or
    C(istio-<revision>) for a revisioned pod, key C(mesh)), the Sidecar resources, the ServiceEntries (networking.istio.io
    v1, else v1beta1) and the egress gateways, and decides whether the mesh blocks the pod's egress to O(destination):O(port).
  - The finding users struggle to see is C(outboundTrafficPolicy REGISTRY_ONLY) with no ServiceEntry for the host, whose symptom is
    HTTP 502 from BlackHoleCluster or a reset TLS connection; the reasons then name the near misses and the ServiceEntry that fixes it.
  - A cluster without the Istio CRDs gives RV(istio_installed=false) and RV(blocked=false); it is not an error.
  - A list this user may not read is listed in RV(not_checked); it does not fail the module.
options:
  namespace:
    description: Namespace of the pod.
    type: str
    required: true
  pod:
    description: Name of the pod.
    type: str
    required: true
  destination:
    description:
      - The external host name (or IP) the pod connects to.
      - Not O(host), which is the API server (the shared Kubernetes connection options).
    type: str
    required: true
  port:
    description: The destination port.
    type: int
    required: true
  destination_ips:
    description:
      - The addresses O(destination) resolves to, when known. They are matched against ServiceEntry C(addresses)/C(endpoints) and the
        sidecar's C(excludeOutboundIPRanges)/C(includeOutboundIPRanges) annotations. The module does not resolve O(destination) itself.
    type: list
    elements: str
    default: []
extends_documentation_fragment:
  - kubediag.egress.k8s_auth
  - kubediag.egress.info_attributes
"""

EXAMPLES = r"""
- name: Does the mesh let shop/web reach api.example.com:443?
  kubediag.egress.mesh_egress_info:
    namespace: shop
    pod: web
    destination: api.example.com
    port: 443
  register: mesh

- name: Explain a REGISTRY_ONLY block
  ansible.builtin.debug:
    msg: "{{ mesh.reasons }}"
  when: mesh.blocked
"""

RETURN = r"""
istio_installed:
  description: Whether the cluster serves the Istio networking CRDs.
  returned: always
  type: bool
  sample: true
injected:
  description: Whether the pod is in the mesh (a sidecar, or ambient mode).
  returned: always
  type: bool
  sample: true
dataplane:
  description: C(sidecar), C(ambient) or null.
  returned: always
  type: str
  sample: sidecar
mode:
  description: The effective outboundTrafficPolicy, C(ALLOW_ANY) or C(REGISTRY_ONLY).
  returned: always
  type: str
  sample: REGISTRY_ONLY
mode_source:
  description: Where the mode comes from (the mesh ConfigMap, a Sidecar, or Istio's default).
  returned: always
  type: str
  sample: ConfigMap istio-system/istio
blocked:
  description: True only when the sidecar captures the traffic, the mode is REGISTRY_ONLY and no visible ServiceEntry covers host:port.
  returned: always
  type: bool
  sample: true
matching_service_entries:
  description: ServiceEntries that make host:port known to the pod, C({name, namespace, hosts, matched_host, port, location, resolution, export_to, warnings}).
  returned: always
  type: list
  elements: dict
  sample: []
  contains:
    name:
      description: The ServiceEntry's name.
      type: str
    namespace:
      description: Its namespace.
      type: str
    hosts:
      description: Its hosts.
      type: list
      elements: str
    matched_host:
      description: The host (or wildcard) that covers the destination.
      type: str
    port:
      description: The port entry that covers it.
      type: dict
    location:
      description: C(MESH_EXTERNAL) or C(MESH_INTERNAL).
      type: str
    resolution:
      description: C(DNS), C(STATIC), C(NONE)...
      type: str
    export_to:
      description: The namespaces it is exported to.
      type: list
      elements: str
    warnings:
      description: What may still keep the traffic from working.
      type: list
      elements: str
near_misses:
  description: Why ServiceEntries naming the host do not apply (wrong port, not exported, not imported by the Sidecar).
  returned: always
  type: list
  elements: str
  sample: ["ServiceEntry shop/api covers api.example.com but not port 443 (ports 80)"]
sidecar:
  description: The Sidecar resource applying to the pod, C(namespace/name), or null.
  returned: always
  type: str
  sample: null
ambiguous_sidecars:
  description: Several Sidecars that apply to the pod (Istio uses the oldest).
  returned: always
  type: list
  elements: str
  sample: []
egress_gateways:
  description: Istio egress gateways found, C(namespace/name (Kind)).
  returned: always
  type: list
  elements: str
  sample: [istio-system/istio-egressgateway (Deployment)]
reasons:
  description: Sentences explaining the decision, the symptom and the fix.
  returned: always
  type: list
  elements: str
  sample: ["REGISTRY_ONLY (ConfigMap istio-system/istio) and no ServiceEntry visible to shop covers api.example.com:443: ..."]
not_checked:
  description: What could not be read, C({what, reason, message}); reason is C(not_installed) or C(forbidden).
  returned: always
  type: list
  elements: dict
  sample: []
  contains:
    what:
      description: The kind or object.
      type: str
    reason:
      description: C(not_installed) or C(forbidden).
      type: str
    message:
      description: What happened, and what it means for the answer.
      type: str
"""

from ansible_collections.kubediag.egress.plugins.module_utils.cluster.destinations import classify_ip  # noqa: E402
from ansible_collections.kubediag.egress.plugins.module_utils.cluster.mesh import mesh_egress_answer  # noqa: E402
from ansible_collections.kubediag.egress.plugins.module_utils.k8s.module import KubeModule  # noqa: E402 - imports follow the documentation
from ansible_collections.kubediag.egress.plugins.module_utils.k8s.reader import ClusterReader  # noqa: E402

ARGUMENT_SPEC = {
    "namespace": {"type": "str", "required": True},
    "pod": {"type": "str", "required": True},
    "destination": {"type": "str", "required": True},
    "port": {"type": "int", "required": True},
    "destination_ips": {"type": "list", "elements": "str", "default": []},
}


def main():
    module = KubeModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    params = module.params
    try:
        destination_ips = [classify_ip(ip, "destination_ips") for ip in params["destination_ips"]]
        result = mesh_egress_answer(ClusterReader(module.client), params["namespace"], params["pod"], params["destination"],
                                    params["port"], destination_ips, params)
        module.exit_json(changed=False, **result)
    # Every failure becomes a message, never a traceback.
    except Exception as exc:  # pylint: disable=broad-exception-caught
        module.fail_from_exception(exc, changed=False)


if __name__ == "__main__":
    main()
