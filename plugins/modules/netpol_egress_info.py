# Copyright: (c) 2026, kubediag.egress contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

DOCUMENTATION = r"""
module: netpol_egress_info
short_description: Say whether network policies let a pod reach destinations, and which policy and rule decide
version_added: 0.1.0
author:
  - kubediag.egress maintainers (@kubediag)
description:
  - For one pod and a list of destinations (IP, CIDR, host name or another pod) with port and protocol, answers whether the
    pod's egress is allowed and why, naming every policy that selects the pod, the rule that allows, or the rules that miss.
  - Evaluates NetworkPolicy (networking.k8s.io/v1) with full semantics, AdminNetworkPolicy and BaselineAdminNetworkPolicy,
    CiliumNetworkPolicy and CiliumClusterwideNetworkPolicy when their CRDs are installed. See C(docs/netpol.md) for the model.
  - Also answers whether DNS works under those policies (UDP and TCP 53 to the cluster DNS pods), the most common
    self-inflicted outage.
  - Online, it reads Namespaces, Nodes, Pods, the pod's NetworkPolicies and CiliumNetworkPolicies, the cluster-wide policies,
    Services and the kube-dns Service. A kind whose CRD is missing, or a list this user may not read, narrows the answer and is
    listed in RV(not_checked); it does not fail the module.
  - Offline, with O(manifests), it reads YAML or JSON manifests instead of a cluster, so a CI job can check a change before it is
    deployed. Deployments, StatefulSets, DaemonSets, ReplicaSets, Jobs and CronJobs stand for their pods (named like the workload).
options:
  namespace:
    description:
      - Namespace of the source pod. In offline mode also the namespace of manifests that do not set one (as C(kubectl apply -n)).
    type: str
    required: true
  pod:
    description:
      - Name of the source pod, or in offline mode of a Pod or workload in the manifests.
    type: str
    required: true
  destinations:
    description:
      - Where the pod wants to send traffic. Each item is a string or a dictionary.
      - A string is an IP address, a CIDR (evaluated at its first and last address), a host name or a pod as C(namespace/name);
        it uses O(port) and O(protocol).
      - A dictionary has C(to) (the same forms), and optionally C(port), C(protocol) and, for a host name, C(ips), the addresses
        to evaluate instead of resolving it.
      - A host name without C(ips) is resolved on the controller with C(socket.getaddrinfo); the pod may resolve it differently.
        The name is also matched against Cilium C(toFQDNs) and AdminNetworkPolicy C(domainNames) rules.
      - Leave it empty to check only DNS.
    type: list
    elements: raw
    default: []
  port:
    description:
      - Destination port for string destinations. Leave it out to ask whether every port is allowed.
    type: int
  protocol:
    description:
      - Protocol for string destinations.
    type: str
    choices: [TCP, UDP, SCTP]
    default: TCP
  check_dns:
    description:
      - Also check UDP and TCP port 53 to the cluster DNS pods (the pods the kube-system/kube-dns Service selects).
    type: bool
    default: true
  manifests:
    description:
      - Offline mode. Files or directories (searched recursively for C(.yaml), C(.yml), C(.json)) holding the manifests to
        evaluate instead of a cluster; multi-document files and List kinds are read.
      - When no cluster DNS pod is among them, a standard one (kube-system, label C(k8s-app=kube-dns), IP unknown) is assumed.
      - No connection to a cluster is made; the connection options are ignored.
    type: list
    elements: path
extends_documentation_fragment:
  - kubediag.egress.k8s_auth
  - kubediag.egress.info_attributes
notes:
  - Policies are evaluated for the source side only; the ingress policies of a destination pod are a separate question.
  - Policies act after kube-proxy DNAT, so ask about the pods behind a Service, not its ClusterIP (the reasons say so).
seealso:
  - name: Network policy evaluator
    description: The model this module applies (docs/netpol.md in the collection).
    link: https://kubernetes.io/docs/concepts/services-networking/network-policies/
"""

EXAMPLES = r"""
- name: Can shop/web reach the payment API and the database?
  kubediag.egress.netpol_egress_info:
    namespace: shop
    pod: web
    destinations:
      - to: api.example.com
        port: 443
      - to: 10.20.0.0/16
        port: 5432
      - to: data/postgres-0
        port: 5432
  register: egress

- name: Fail when one of them is blocked, naming the policy
  ansible.builtin.assert:
    that: egress.allowed
    fail_msg: "{{ egress.destinations | rejectattr('allowed') | map(attribute='reasons') | flatten }}"

- name: In CI, before deploying, check the new manifests still let web reach the API and DNS
  kubediag.egress.netpol_egress_info:
    manifests:
      - deploy/
    namespace: shop
    pod: web
    destinations:
      - to: api.example.com
        ips: [203.0.113.10]
        port: 443
"""

RETURN = r"""
source:
  description: The source pod, as C(namespace/name).
  returned: always
  type: str
  sample: shop/web
mode:
  description: Where the objects came from, C(cluster) or C(manifests).
  returned: always
  type: str
  sample: cluster
allowed:
  description: True when every destination (and DNS, when checked) is allowed, false when one is denied, null when one could not be evaluated.
  returned: always
  type: bool
  sample: false
destinations:
  description: One answer per destination and address (a host name with two addresses gives two answers).
  returned: always
  type: list
  elements: dict
  contains:
    destination:
      description: The destination as given (normalised).
      type: str
      sample: api.example.com
    ip:
      description: The address evaluated; null for a pod without an IP or a host that did not resolve.
      type: str
      sample: 203.0.113.10
    port:
      description: The port asked about; null means every port.
      type: int
      sample: 443
    protocol:
      description: TCP, UDP or SCTP.
      type: str
      sample: TCP
    allowed:
      description: Whether the packet may leave the pod; null when the destination could not be evaluated.
      type: bool
      sample: false
    tier:
      description: The layer that decided, C(AdminNetworkPolicy), C(NetworkPolicy), C(CiliumNetworkPolicy), C(BaselineAdminNetworkPolicy) or C(default).
      type: str
      sample: NetworkPolicy
    destination_pod:
      description: The pod the destination is (or whose IP it is), as C(namespace/name).
      type: str
      sample: null
    selected_by:
      description: The policies isolating the pod for egress, C(namespace/name).
      type: list
      elements: str
      sample: [shop/deny-external]
    allowed_by:
      description: The rules that allow, each C({policy, kind, rule_index, rule}).
      type: list
      elements: dict
      sample: []
    denied_by:
      description: The rules that deny explicitly (AdminNetworkPolicy, Cilium egressDeny), each C({policy, kind, rule_index, rule}).
      type: list
      elements: dict
      sample: []
    reasons:
      description: Sentences naming every policy and rule involved, and what missed.
      type: list
      elements: str
      sample:
        - "selected by shop/deny-external (policyTypes Egress, 1 egress rule): egress isolated"
        - "no egress rule of shop/deny-external allows TCP 203.0.113.10:443"
dns:
  description:
    - UDP and TCP 53 from the pod to every cluster DNS pod. C(checked) is false when O(check_dns) is false or no DNS pod was found.
    - C(checks) holds one C({destination, protocol, port, allowed, tier, reasons}) per DNS pod and protocol.
  returned: always
  type: dict
  sample:
    checked: true
    allowed: false
    udp_allowed: false
    tcp_allowed: false
    targets: [kube-system/coredns-5d78c9869d-abcde]
    checks: []
    reasons: ["UDP 53 to all cluster DNS pods is blocked (e.g. kube-system/coredns-5d78c9869d-abcde: no egress rule of shop/web-egress allows ...)"]
  contains:
    checked:
      description: Whether DNS was evaluated.
      type: bool
    allowed:
      description: True when UDP and TCP 53 reach every DNS pod, false when one is blocked, null when not checked.
      type: bool
    udp_allowed:
      description: The same for UDP 53 only.
      type: bool
    tcp_allowed:
      description: The same for TCP 53 only.
      type: bool
    source:
      description: The source pod, C(namespace/name).
      type: str
    targets:
      description: The DNS pods evaluated, C(namespace/name).
      type: list
      elements: str
    checks:
      description: One C({destination, protocol, port, allowed, tier, reasons}) per DNS pod and protocol.
      type: list
      elements: dict
    reasons:
      description: Sentences naming what blocks DNS, or why it was not checked.
      type: list
      elements: str
policies_selecting:
  description: Every policy of any kind whose subject includes the pod, with the directions it covers.
  returned: always
  type: list
  elements: dict
  sample: [{policy: shop/deny-external, kind: NetworkPolicy, policy_types: [Egress]}]
notes:
  description: What was assumed in offline mode (workloads standing for pods, an assumed DNS pod).
  returned: always
  type: list
  elements: str
  sample: ["Deployment shop/web stands for its pods as pod shop/web (labels of its pod template, no IP)"]
not_checked:
  description:
    - What could not be read and so is not taken into account, each C({what, reason, message}); reason is C(not_installed) or
      C(forbidden) (a kind not served or not readable), or C(invalid) (an entry of an object that cannot be evaluated, such as a
      named container port without C(containerPort) in an offline manifest; the rest of the object is evaluated).
  returned: always
  type: list
  elements: dict
  sample: [{what: ciliumnetworkpolicies.cilium.io, reason: not_installed, message: "CiliumNetworkPolicy ... is not served by this cluster (no CRD)"}]
  contains:
    what:
      description: The kind or object.
      type: str
    reason:
      description: C(not_installed), C(forbidden) or C(invalid).
      type: str
    message:
      description: What happened, and what it means for the answer.
      type: str
"""

from ansible_collections.kubediag.egress.plugins.module_utils.cluster.destinations import parse_destinations  # noqa: E402
from ansible_collections.kubediag.egress.plugins.module_utils.cluster.netpol import netpol_egress  # noqa: E402
from ansible_collections.kubediag.egress.plugins.module_utils.k8s.module import KubeModule  # noqa: E402 - imports follow the documentation
from ansible_collections.kubediag.egress.plugins.module_utils.k8s.reader import ClusterReader  # noqa: E402

ARGUMENT_SPEC = {
    "namespace": {"type": "str", "required": True},
    "pod": {"type": "str", "required": True},
    "destinations": {"type": "list", "elements": "raw", "default": []},
    "port": {"type": "int"},
    "protocol": {"type": "str", "choices": ["TCP", "UDP", "SCTP"], "default": "TCP"},
    "check_dns": {"type": "bool", "default": True},
    "manifests": {"type": "list", "elements": "path"},
}


def main():
    module = KubeModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    params = module.params
    try:
        destinations = parse_destinations(params["destinations"], params["port"], params["protocol"]) if params["destinations"] else []
        reader = None if params["manifests"] else ClusterReader(module.client)
        result = netpol_egress(reader, params["namespace"], params["pod"], destinations, params, params["manifests"], params["check_dns"])
        module.exit_json(changed=False, **result)
    # Every failure becomes a message, never a traceback.
    except Exception as exc:  # pylint: disable=broad-exception-caught
        module.fail_from_exception(exc, changed=False)


if __name__ == "__main__":
    main()
