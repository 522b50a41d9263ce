# Copyright: (c) 2026, kubediag.egress contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""kubediag.egress.diagnose_plan runs on the controller: planning touches no cluster, so it costs no module round trip."""

from typing import ClassVar

from ansible.errors import AnsibleActionFail

from ansible_collections.kubediag.egress.plugins.module_utils.cluster.plan import PlanError, plan_cluster_reads
from ansible_collections.kubediag.egress.plugins.plugin_utils.controller_action import ControllerAction


class ActionModule(ControllerAction):
    ARGUMENT_SPEC: ClassVar[dict] = {"pod_probes": {"type": "list", "elements": "raw", "required": True}}

    def act(self, args):
        try:
            return dict(plan_cluster_reads(args["pod_probes"]), changed=False)
        except PlanError as exc:
            raise AnsibleActionFail(f"cannot plan the cluster reads: {exc}; pass the registered pod_probe results (.results)") from None
