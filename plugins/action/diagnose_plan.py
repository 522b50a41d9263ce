# Copyright: (c) 2026, kubediag.egress contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""kubediag.egress.diagnose_plan runs on the controller: planning touches no cluster, so it costs no module round trip."""

from ansible.errors import AnsibleActionFail
from ansible.plugins.action import ActionBase

from ansible_collections.kubediag.egress.plugins.module_utils.diagnose_plan import PlanError, plan_cluster_reads

ARGUMENT_SPEC = {"pod_probes": {"type": "list", "elements": "raw", "required": True}}


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _requires_connection = False

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        args = self.validate_argument_spec(argument_spec=ARGUMENT_SPEC)[1]
        try:
            result.update(plan_cluster_reads(args["pod_probes"]))
        except PlanError as exc:
            raise AnsibleActionFail(f"cannot plan the cluster reads: {exc}; pass the registered pod_probe results (.results)") from None
        result["changed"] = False
        return result
