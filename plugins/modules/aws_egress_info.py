# Copyright: (c) 2026, kubediag.egress contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

DOCUMENTATION = r"""
module: aws_egress_info
short_description: Whether a node's VPC lets its traffic out to each destination, hop by hop, and with which egress IP
version_added: 0.1.0
author:
  - kubediag.egress maintainers (@kubediag)
description:
  - Reads, with boto3, the EC2 objects a node's egress depends on (the instance and its network interfaces, their security
    groups, the VPC's network ACLs, route tables, NAT gateways and internet gateways, the managed prefix lists they
    reference) and decides locally, for every destination, whether each hop lets the traffic through.
  - "The hops: the security groups of the ENI that carries the traffic (the node's primary ENI when the CNI source-NATs pod
    traffic, the ENI holding the pod's IP otherwise, a branch ENI with security groups for pods); the subnet's network ACL
    outbound and, since ACLs are stateless, inbound for the return traffic to the ephemeral ports; the subnet's route table
    (explicit association, else the VPC's main table; longest prefix; blackhole routes); a NAT gateway's state, type and
    own subnet (its ACL both ways, its route to an internet gateway); an internet gateway's attachment and the public IP it
    needs."
  - "Each hop names the object and the rule that decided (C(sg-... egress rule #2), C(acl-... outbound rule 90 deny),
    C(rtb-... 0.0.0.0/0 -> nat-...)), with Reachability Analyzer's explanation code where one applies
    (C(ENI_SG_RULES_MISMATCH), C(SUBNET_ACL_RESTRICTION), C(NO_ROUTE_TO_DESTINATION), C(BAD_STATE_ROUTE),
    C(BAD_STATE_ATTACHMENT)) and our own otherwise (C(NAT_GATEWAY_PRIVATE), C(NO_PUBLIC_IP)), and what to change."
  - Every hop is evaluated even after a deny, so every cause shows in one run. One snapshot serves all destinations.
  - Missing credentials, a denied call, an unreachable endpoint or a node that is not an EC2 instance make the result
    C(checked=false) with RV(not_checked) saying why and what to do; the module does not fail for them.
  - "The IAM actions it needs (read-only): ec2:DescribeInstances, ec2:DescribeNetworkInterfaces, ec2:DescribeSecurityGroups,
    ec2:DescribeNetworkAcls, ec2:DescribeRouteTables, ec2:DescribeNatGateways, ec2:DescribeInternetGateways,
    ec2:DescribeVpcs, ec2:GetManagedPrefixListEntries."
options:
  instance_id:
    description:
      - The node's EC2 instance id, as RV(kubediag.egress.cluster_network_info#module:nodes) reports it from the node's
        C(spec.providerID) (with the node's region).
    type: str
    required: true
  pod_ip:
    description:
      - The pod's IP. Needed when O(snat=false), to find the ENI that holds it.
    type: str
  snat:
    description:
      - Whether the cluster source-NATs the pod's traffic to the node's address for these destinations (the AWS VPC CNI does
        unless C(AWS_VPC_K8S_CNI_EXTERNALSNAT=true); cluster_network_info says so as C(snat)).
      - With C(false), the ENI holding O(pod_ip) and its security groups carry the traffic.
    type: bool
    default: true
  destinations:
    description:
      - The destinations to evaluate, each C({ip, port, protocol}); protocol C(tcp) (default), C(udp) or C(icmp) (no port).
    type: list
    elements: dict
    required: true
  timeout:
    description:
      - Seconds each EC2 call may take to connect and to answer. Throttled calls are retried with jittered backoff.
    type: float
    default: 10.0
extends_documentation_fragment:
  - kubediag.egress.aws_auth
  - kubediag.egress.info_attributes
requirements:
  - boto3
"""

EXAMPLES = r"""
- name: Does the VPC let node ip-10-0-1-20 reach the payment provider on 443?
  kubediag.egress.aws_egress_info:
    instance_id: i-0123456789abcdef0
    region: eu-west-1
    destinations:
      - {ip: 198.51.100.10, port: 443}
  register: vpc

- name: Show what blocks it, and the address the provider must allow-list
  ansible.builtin.debug:
    msg: "{{ vpc.paths[0].blocking | map(attribute='detail') | list }} / egress IPs {{ vpc.egress_ips }}"

- name: A pod with its own ENI (no SNAT), credentials from a profile
  kubediag.egress.aws_egress_info:
    instance_id: i-0123456789abcdef0
    region: eu-west-1
    profile: audit
    pod_ip: 10.0.1.57
    snat: false
    destinations:
      - {ip: 198.51.100.10, port: 5432}
"""

RETURN = r"""
checked:
  description: True when the VPC could be read; false with RV(not_checked) saying why.
  returned: always
  type: bool
  sample: true
not_checked:
  description:
    - Why the cloud part was not checked, C({reason, message}), null when it was. C(reason) is one of C(no_credentials),
      C(access_denied) (the message names the IAM action), C(unreachable), C(not_found), C(error).
  returned: always
  type: dict
  sample: {reason: access_denied, message: "AWS denied ec2:DescribeNetworkAcls (UnauthorizedOperation): allow it for this identity"}
  contains:
    reason:
      description: C(no_credentials), C(access_denied), C(unreachable), C(not_found) or C(error).
      type: str
    message:
      description: What happened and what to do.
      type: str
instance_id:
  description: The instance the path was read for.
  returned: always
  type: str
  sample: i-0123456789abcdef0
region:
  description: The region read.
  returned: always
  type: str
  sample: eu-west-1
vpc_id:
  description: The instance's VPC.
  returned: when checked
  type: str
  sample: vpc-0abc
subnet_id:
  description: The instance's subnet.
  returned: when checked
  type: str
  sample: subnet-0node
paths:
  description:
    - One per destination, C({destination, result, source, hops, blocking, egress_ips}). C(result) is C(allow), C(deny) or
      C(unknown) (a hop could not be decided, or the traffic leaves the VPC through a transit gateway, peering or VPN).
    - C(source) is C({eni, ip, subnet, why}); each hop is C({hop, result, object, rule, code, detail, fix}) with C(result)
      C(allow), C(deny), C(partial) (a NACL lets part of the ephemeral port range back in) or C(unknown); C(blocking)
      lists the denying and partial hops.
  returned: always
  type: list
  elements: dict
  sample:
    - destination: {ip: 198.51.100.10, port: 443, protocol: tcp}
      result: deny
      source: {eni: eni-0node, ip: 10.0.1.20, subnet: subnet-0node, why: "the node's primary ENI (pod traffic is SNATed to the node's address)"}
      hops:
        - {hop: security_group, result: deny, object: sg-0node, rule: null, code: ENI_SG_RULES_MISMATCH,
           detail: "no egress rule of sg-0node allows tcp 443 to 198.51.100.10/32", fix: "add an egress rule to sg-0node: tcp 443 to 198.51.100.10/32"}
      blocking: []
      egress_ips: [203.0.113.10]
  contains:
    destination:
      description: The destination evaluated, C({ip, port, protocol}).
      type: dict
      contains:
        ip:
          description: Its address.
          type: str
        port:
          description: Its port, null for every port.
          type: int
        protocol:
          description: C(tcp), C(udp), C(icmp) or C(all).
          type: str
    result:
      description: C(allow), C(deny) or C(unknown).
      type: str
    source:
      description: Where the traffic leaves from, C({eni, ip, subnet, why}).
      type: dict
      contains:
        eni:
          description: The network interface whose security groups apply.
          type: str
        ip:
          description: The source address AWS sees.
          type: str
        subnet:
          description: The subnet whose NACL and route table apply.
          type: str
        why:
          description: Why this interface (the node's, SNAT; or the pod's own).
          type: str
    hops:
      description: Each hop in path order.
      type: list
      elements: dict
      contains: &hop
        hop:
          description: C(security_group), C(network_acl), C(route_table), C(nat_gateway), C(internet_gateway)...
          type: str
        result:
          description: C(allow), C(deny), C(partial) or C(unknown).
          type: str
        object:
          description: The AWS object that decides (C(sg-...), C(acl-...), C(rtb-...), C(nat-...)).
          type: str
        rule:
          description: The rule or route that decides, as text; null when none matched.
          type: str
        code:
          description: A stable code in the style of AWS Reachability Analyzer (C(ENI_SG_RULES_MISMATCH), C(BAD_STATE_ROUTE)...), null when allowed.
          type: str
        detail:
          description: One sentence.
          type: str
        fix:
          description: What to change, null when nothing.
          type: str
    blocking:
      description: The hops that deny or are partial, as in RV(paths.hops).
      type: list
      elements: dict
      contains: *hop
    egress_ips:
      description: The public addresses this path leaves with.
      type: list
      elements: str
egress_ips:
  description: The public addresses the traffic leaves with (the NAT gateway's or the node's public IP), what an endpoint must allow-list.
  returned: always
  type: list
  elements: str
  sample: [203.0.113.10]
api_calls:
  description: The EC2 API calls made, retries included.
  returned: always
  type: int
  sample: 8
"""

from ansible.module_utils.basic import AnsibleModule, env_fallback, missing_required_lib  # noqa: E402 - imports follow the documentation

from ansible_collections.kubediag.egress.plugins.module_utils.cloud import aws_read  # noqa: E402
from ansible_collections.kubediag.egress.plugins.module_utils.cloud.aws_path import AwsPathError  # noqa: E402

ARGUMENT_SPEC = {
    "instance_id": {"type": "str", "required": True},
    "pod_ip": {"type": "str"},
    "snat": {"type": "bool", "default": True},
    "destinations": {"type": "list", "elements": "dict", "required": True},
    "timeout": {"type": "float", "default": 10.0},
    "region": {"type": "str", "aliases": ["aws_region"], "fallback": (env_fallback, ["AWS_REGION", "AWS_DEFAULT_REGION"])},
    "profile": {"type": "str", "aliases": ["aws_profile"], "fallback": (env_fallback, ["AWS_PROFILE"])},
    "access_key": {"type": "str", "aliases": ["aws_access_key_id", "aws_access_key"], "no_log": False,
                   "fallback": (env_fallback, ["AWS_ACCESS_KEY_ID"])},
    "secret_key": {"type": "str", "aliases": ["aws_secret_access_key", "aws_secret_key"], "no_log": True,
                   "fallback": (env_fallback, ["AWS_SECRET_ACCESS_KEY"])},
    "session_token": {"type": "str", "aliases": ["aws_session_token", "security_token"], "no_log": True,
                      "fallback": (env_fallback, ["AWS_SESSION_TOKEN"])},
    "endpoint_url": {"type": "str", "aliases": ["aws_endpoint_url", "ec2_url"], "fallback": (env_fallback, ["AWS_URL"])},
    "aws_ca_bundle": {"type": "path", "fallback": (env_fallback, ["AWS_CA_BUNDLE"])},
    "validate_certs": {"type": "bool", "default": True},
}


def main():
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True, mutually_exclusive=[("profile", "access_key")])
    if aws_read.BOTO3_IMPORT_ERROR is not None:
        module.fail_json(msg=missing_required_lib("boto3"), exception=str(aws_read.BOTO3_IMPORT_ERROR))
    params = module.params
    result = {"changed": False, "instance_id": params["instance_id"], "region": params["region"], "paths": [],
              "egress_ips": [], "api_calls": 0, "checked": False, "not_checked": None}
    try:
        client = aws_read.ec2_client(result["region"], params["profile"], params["access_key"], params["secret_key"],
                                     params["session_token"], params["endpoint_url"], params["aws_ca_bundle"],
                                     params["validate_certs"], timeout=params["timeout"])
        counter = aws_read.CallCounter(client)
        result.update(aws_read.node_egress(client, result["instance_id"], params["destinations"], params["pod_ip"],
                                           params["snat"]))
        result["api_calls"] = counter.calls
    except aws_read.AwsReadError as exc:
        result["not_checked"] = {"reason": exc.reason, "message": str(exc)}
    except AwsPathError as exc:
        module.fail_json(msg=str(exc), **result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
