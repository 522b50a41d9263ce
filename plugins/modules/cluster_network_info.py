# Copyright: (c) 2026, kubediag.egress contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

DOCUMENTATION = r"""
module: cluster_network_info
short_description: Read the cluster's network setup and say whether pod egress to an address is source-NATed, and by what
version_added: 0.1.0
author:
  - kubediag.egress maintainers (@kubediag)
description:
  - Reads the kube-system DaemonSets and ConfigMaps, the Nodes, Calico IPPools (when their CRD exists) and the static
    control-plane pods, and reports the CNI (Calico, Cilium, AWS VPC CNI, Azure CNI, GKE Dataplane V2, Flannel, kube-router,
    Weave, Antrea) with its masquerade settings, kube-proxy's mode, C(masqueradeAll) and C(clusterCIDR), ip-masq-agent's
    C(nonMasqueradeCIDRs), the pod and Service CIDRs, and each node's cloud instance from its C(providerID).
  - With O(destination), concludes whether pod traffic to it leaves with a translated source address (SNAT) and which
    mechanism does it, or names the setting that declines it.
  - kube-proxy's C(masqueradeAll) and C(clusterCIDR) only concern Service traffic; they never SNAT pod traffic to an external
    address. The reasons say so.
  - A list this user may not read, or a missing CRD, is listed in RV(not_checked); it does not fail the module.
options:
  destination:
    description:
      - An IP address, or a host name resolved on the controller with C(socket.getaddrinfo) (its first address is used).
    type: str
  vpc_cidrs:
    description:
      - The VPC or VNet CIDRs when known; AWS VPC CNI never SNATs traffic to them.
    type: list
    elements: str
    default: []
extends_documentation_fragment:
  - kubediag.egress.k8s_auth
  - kubediag.egress.info_attributes
"""

EXAMPLES = r"""
- name: Is pod traffic to the partner API source-NATed?
  kubediag.egress.cluster_network_info:
    destination: 203.0.113.10
  register: net

- name: Say what leaves with the pod IP
  ansible.builtin.debug:
    msg: "{{ net.snat.reasons }}"
  when: net.snat.snat is false

- name: Node to cloud instance map for the cloud analysis
  kubediag.egress.cluster_network_info:
    context: prod-eu
    vpc_cidrs: [10.0.0.0/16]
  register: net
"""

RETURN = r"""
cni:
  description: C({primary, plugins}); each plugin is C({name, daemonset, images, masquerade}) and C(masquerade.enabled) is true, false or null (unknown).
  returned: always
  type: dict
  sample:
    primary: cilium
    plugins: [{name: cilium, daemonset: kube-system/cilium, masquerade: {enabled: false, evidence: [cilium-config enable-ipv4-masquerade=false]}}]
kube_proxy:
  description: C({present, mode, mode_explicit, masquerade_all, cluster_cidrs, parser, sources}).
  returned: always
  type: dict
  sample: {present: true, mode: iptables, masquerade_all: false, cluster_cidrs: [10.244.0.0/16]}
cilium_kube_proxy_replacement:
  description: The C(kube-proxy-replacement) value of cilium-config, null without Cilium.
  returned: always
  type: str
  sample: null
ip_masq_agent:
  description: C({present, config_source, non_masquerade_cidrs, masq_link_local, resync_interval, parser}).
  returned: always
  type: dict
  sample: {present: true, config_source: "ConfigMap kube-system/ip-masq-agent keys config", non_masquerade_cidrs: [0.0.0.0/0]}
nodes:
  description:
    - Per node C({name, cloud, region, zone, instance_id, project, resource_group, subscription, scale_set, provider_id, internal_ips,
      external_ips, pod_cidrs}).
  returned: always
  type: list
  elements: dict
  sample: [{name: node-1, cloud: aws, region: eu-west-1, zone: eu-west-1a, instance_id: i-0abc, internal_ips: [172.20.0.10]}]
cidrs:
  description: C({pod_cidrs, service_cidrs}), each a list of C({cidr, sources}).
  returned: always
  type: dict
  sample: {pod_cidrs: [{cidr: 10.244.0.0/24, sources: [node spec.podCIDRs]}], service_cidrs: []}
  contains:
    pod_cidrs:
      description: The pod ranges (nodes' spec.podCIDRs, kube-proxy clusterCIDR, controller-manager --cluster-cidr, kubeadm podSubnet).
      type: list
      elements: dict
      contains: &cidr
        cidr:
          description: The range, normalised.
          type: str
        sources:
          description: Where it was read.
          type: list
          elements: str
    service_cidrs:
      description: The Service ranges (kube-apiserver --service-cluster-ip-range, kubeadm serviceSubnet); empty when neither is readable.
      type: list
      elements: dict
      contains: *cidr
vpc_cidrs:
  description: The O(vpc_cidrs) given, normalised.
  returned: always
  type: list
  elements: str
  sample: []
daemonsets:
  description: The kube-system DaemonSets read, C(namespace/name).
  returned: always
  type: list
  elements: str
  sample: [kube-system/kube-proxy, kube-system/cilium]
snat:
  description:
    - For O(destination), C({destination, ip, snat, by, mechanisms, reasons}); C(snat) is true, false, or null when unknown, C(by)
      names the mechanism that SNATs (or the one that declines), C(mechanisms) are C({name, snat, reason}).
  returned: when O(destination) is given
  type: dict
  sample: {destination: 203.0.113.10, ip: 203.0.113.10, snat: false, by: GKE Dataplane V2, mechanisms: [], reasons: []}
  contains:
    destination:
      description: O(destination) as given.
      type: str
    ip:
      description: The address decided for.
      type: str
    snat:
      description: True when pod traffic to it is source-NATed, false when it leaves with the pod IP, null when unknown.
      type: bool
    by:
      description: The mechanism that SNATs, or the one that declines.
      type: str
    mechanisms:
      description: Each mechanism considered, C({name, snat, reason}).
      type: list
      elements: dict
      contains:
        name:
          description: kube-proxy, ip-masq-agent, the CNI...
          type: str
        snat:
          description: Its decision (true, false, null when it cannot tell).
          type: bool
        reason:
          description: Why, naming the setting.
          type: str
    reasons:
      description: Sentences explaining the decision.
      type: list
      elements: str
not_checked:
  description: What could not be read, C({what, reason, message}); reason is C(not_installed) or C(forbidden).
  returned: always
  type: list
  elements: dict
  sample: [{what: ippools.crd.projectcalico.org, reason: not_installed, message: "IPPool ... is not served by this cluster (no CRD)"}]
  contains:
    what:
      description: The object or request.
      type: str
    reason:
      description: C(not_installed) or C(forbidden).
      type: str
    message:
      description: What happened, and what it means for the answer.
      type: str
"""

from ansible_collections.kubediag.egress.plugins.module_utils.cluster.network import read_cluster_network, snat_answer  # noqa: E402
from ansible_collections.kubediag.egress.plugins.module_utils.k8s.module import KubeModule  # noqa: E402 - imports follow the documentation
from ansible_collections.kubediag.egress.plugins.module_utils.k8s.reader import ClusterReader  # noqa: E402

ARGUMENT_SPEC = {
    "destination": {"type": "str"},
    "vpc_cidrs": {"type": "list", "elements": "str", "default": []},
}


def main():
    module = KubeModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    params = module.params
    try:
        reader = ClusterReader(module.client)
        result = read_cluster_network(reader, params["vpc_cidrs"])
        if params["destination"]:
            result["snat"] = snat_answer(result, params["destination"])
        result["not_checked"] = reader.not_checked
        module.exit_json(changed=False, **result)
    # Every failure becomes a message, never a traceback.
    except Exception as exc:  # pylint: disable=broad-exception-caught
        module.fail_from_exception(exc, changed=False)


if __name__ == "__main__":
    main()
