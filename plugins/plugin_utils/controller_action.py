# Copyright: (c) 2026, kubediag.egress contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The base of the collection's controller-side actions (verdict, report, read planning): they touch no host, so they
need no connection and transfer no file; their arguments are checked against the documented spec before they act."""

from typing import ClassVar

from ansible.plugins.action import ActionBase


class ControllerAction(ActionBase):
    """Subclasses set ARGUMENT_SPEC and implement act(args) -> the result's keys."""

    TRANSFERS_FILES = False
    _requires_connection = False
    ARGUMENT_SPEC: ClassVar[dict] = {}

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        result.update(self.act(self.validate_argument_spec(argument_spec=self.ARGUMENT_SPEC)[1]))
        return result

    def act(self, args):
        raise NotImplementedError
