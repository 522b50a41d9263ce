# Copyright: (c) 2026, kubediag.egress contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

DOCUMENTATION = r"""
module: egress_pods_info
short_description: Resolve the pods an egress diagnosis is about, from a pod name, a workload or a label selector
version_added: 0.1.0
author:
  - kubediag.egress maintainers (@kubediag)
description:
  - Turns O(pod) into the running pods to diagnose. C(namespace/name) is one pod; C(namespace/deployment/name) (also
    C(statefulset/), C(daemonset/), C(deploy/), C(sts/), C(ds/)) is the running pods its selector matches;
    C(namespace/<label selector>) (for example C(shop/app=web,tier!=batch)) is the running pods with those labels.
  - A pod, namespace or workload that does not exist fails with a sentence naming it; a selector that matches no running pod fails too.
extends_documentation_fragment:
  - kubediag.egress.k8s_auth
  - kubediag.egress.info_attributes
options:
  pod:
    description: The pod reference, in one of the three forms above.
    type: str
    required: true
  max_pods:
    description: At most this many pods (the first by name) are returned for a workload or selector.
    type: int
    default: 10
"""

EXAMPLES = r"""
- name: The pods of the checkout deployment
  kubediag.egress.egress_pods_info:
    pod: shop/deployment/checkout
  register: selected

- name: Pods labelled app=web
  kubediag.egress.egress_pods_info:
    pod: shop/app=web
    max_pods: 3
"""

RETURN = r"""
pods:
  description: The running pods, sorted by name.
  returned: always
  type: list
  elements: dict
  sample: [{"namespace": "shop", "name": "web", "ref": "shop/web", "node": "node-1", "ip": "10.244.0.3", "phase": "Running",
            "labels": {"app": "web"}, "containers": ["web"], "ready": true}]
  contains:
    namespace:
      description: The pod's namespace.
      type: str
    name:
      description: The pod's name.
      type: str
    ref:
      description: C(namespace/name), how the other modules' results name the pod.
      type: str
    node:
      description: The node it runs on.
      type: str
    ip:
      description: Its IP address.
      type: str
    phase:
      description: Its phase (C(Running); other pods are left out, see RV(notes)).
      type: str
    labels:
      description: Its labels (a proposed NetworkPolicy selects them).
      type: dict
    containers:
      description: Its container names, in order.
      type: list
      elements: str
    ready:
      description: Whether every container is ready.
      type: bool
reference:
  description: How O(pod) was read, C({namespace, kind, name, workload_kind, selector}); kind is C(pod), C(workload) or C(selector).
  returned: always
  type: dict
  sample: {"namespace": "shop", "kind": "selector", "name": null, "workload_kind": null, "selector": "app=web"}
context:
  description:
    - The kubeconfig context used, the one O(context) names or else the kubeconfig's C(current-context) (so a host without
      C(kubeconfig)/C(context) says which cluster of the default kubeconfig it diagnosed); null with O(host) and no kubeconfig.
    - Also returned on failure once the kubeconfig was read.
  returned: always
  type: str
  sample: prod-eu
notes:
  description: Pods left out (not running, over O(max_pods)).
  returned: always
  type: list
  elements: str
  sample: []
"""

from ansible_collections.kubediag.egress.plugins.module_utils.k8s.module import KubeModule  # noqa: E402 - imports follow the documentation
from ansible_collections.kubediag.egress.plugins.module_utils.k8s.pod_select import PodRefError, parse_pod_ref, select_pods  # noqa: E402

ARGUMENT_SPEC = {
    "pod": {"type": "str", "required": True},
    "max_pods": {"type": "int", "default": 10},
}


def main():
    module = KubeModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    params = module.params
    try:
        parse_pod_ref(params["pod"])  # a malformed reference fails before any connection
        if params["max_pods"] < 1:
            raise PodRefError(f"max_pods must be at least 1, got {params['max_pods']}")
        reference, pods, notes = select_pods(module.client, params["pod"], params["max_pods"])
        module.exit_json(changed=False, pods=pods, reference=reference, notes=notes, context=module.context)
    except PodRefError as exc:
        module.module.fail_json(msg=str(exc), changed=False)
    # Every failure becomes a message, never a traceback.
    except Exception as exc:  # pylint: disable=broad-exception-caught
        module.fail_from_exception(exc, changed=False, context=module.context)


if __name__ == "__main__":
    main()
