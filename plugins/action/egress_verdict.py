# Copyright: (c) 2026, kubediag.egress contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""kubediag.egress.egress_verdict runs on the controller: the verdict is a pure function of the facts (no module round trip)."""

from typing import ClassVar

from ansible.errors import AnsibleActionFail

from ansible_collections.kubediag.egress.plugins.module_utils.cluster.plan import strip_invocations
from ansible_collections.kubediag.egress.plugins.module_utils.verdict.inputs import verdict_input_problem
from ansible_collections.kubediag.egress.plugins.module_utils.verdict.rules import VerdictError, evaluate_cluster
from ansible_collections.kubediag.egress.plugins.module_utils.verdict.sources import argument_spec
from ansible_collections.kubediag.egress.plugins.module_utils.vocabulary import FIX_ORDER, HEALTHY
from ansible_collections.kubediag.egress.plugins.plugin_utils.controller_action import ControllerAction


class ActionModule(ControllerAction):
    # One option per fact source (verdict/sources.py): a new source is a row there, not an edit here.
    ARGUMENT_SPEC: ClassVar[dict] = argument_spec()

    def act(self, args):
        facts = strip_invocations(dict(args))
        # Checked here, once, so that a wrong shape is named instead of surfacing as a KeyError deep in a rule.
        problem = verdict_input_problem(facts)
        if problem:
            raise AnsibleActionFail(f"cannot conclude: {problem}")
        try:
            verdicts = evaluate_cluster(facts)
        except VerdictError as exc:
            raise AnsibleActionFail(f"cannot conclude: {exc}") from None
        causes = {cause for verdict in verdicts for cause in verdict["root_causes"]}
        return {"changed": False, "pods": verdicts, "root_causes": [c for c in (*FIX_ORDER, HEALTHY.id) if c in causes],
                "healthy": all(v["healthy"] for v in verdicts), "facts": facts}
