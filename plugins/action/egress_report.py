# Copyright: (c) 2026, kubediag.egress contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""kubediag.egress.egress_report runs on the controller (as ansible.builtin.template does): it writes local files only."""

import os
import tempfile
from typing import ClassVar

from ansible.errors import AnsibleActionFail

from ansible_collections.kubediag.egress.plugins.module_utils.report.render import RENDERERS, ReportError, build_report, render_all, summary_lines
from ansible_collections.kubediag.egress.plugins.plugin_utils.controller_action import ControllerAction


def current_content(report_dir, path):
    """(what path holds now, a warning or None), for the comparison and the diff; None when absent. A symlink is never
    followed out of report_dir (its target is not read), and bytes that are not UTF-8 are shown replaced rather than failing."""
    if not os.path.lexists(path):
        return None, None
    real_dir = os.path.realpath(report_dir)
    if os.path.commonpath([real_dir, os.path.realpath(path)]) != real_dir or not os.path.isfile(path):
        return "", None
    with open(path, "rb") as handle:
        raw = handle.read()
    try:
        return raw.decode("utf-8"), None
    except UnicodeDecodeError as exc:
        return raw.decode("utf-8", errors="replace"), (f"{path} held bytes that are not UTF-8 (at offset {exc.start}), so it was not a report "
                                                       "this collection wrote; it is replaced by the report (shown with U+FFFD in the diff)")


def write_atomically(path, content):
    """Replace path (the link itself when it is a symlink, never its target) with content."""
    handle, temporary = tempfile.mkstemp(dir=os.path.dirname(path), prefix=".egress-report-")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(content)
        os.chmod(temporary, 0o644)
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.unlink(temporary)
        raise


class ActionModule(ControllerAction):
    ARGUMENT_SPEC: ClassVar[dict] = {
        "report_dir": {"type": "path", "required": True},
        "hosts": {"type": "list", "elements": "dict", "required": True},
        "formats": {"type": "list", "elements": "str", "choices": list(RENDERERS), "default": list(RENDERERS)},
    }

    def act(self, args):
        report_dir = args["report_dir"]
        try:
            report = build_report(args["hosts"])
            contents = render_all(report, args["formats"])
        except ReportError as exc:
            raise AnsibleActionFail(f"cannot build the report: {exc}") from None
        if os.path.exists(report_dir) and not os.path.isdir(report_dir):
            raise AnsibleActionFail(f"report_dir {report_dir} exists and is not a directory: choose another path")
        files = {fmt: os.path.join(report_dir, RENDERERS[fmt][0]) for fmt in args["formats"]}
        changed_files, diffs, warnings = [], [], []
        try:
            for path in files.values():
                (before, warning), after = current_content(report_dir, path), contents[os.path.basename(path)]
                if warning:
                    warnings.append(warning)
                if before == after:
                    continue
                changed_files.append(path)
                diffs.append({"before_header": path, "after_header": path, "before": before or "", "after": after})
            if changed_files and not self._task.check_mode:
                os.makedirs(report_dir, exist_ok=True)
                for path in changed_files:
                    write_atomically(path, contents[os.path.basename(path)])
        except OSError as exc:
            raise AnsibleActionFail(f"cannot write the report into {report_dir}: {exc.strerror or exc}; check the path and its permissions") from None
        result = {"changed": bool(changed_files), "report": report, "files": files, "changed_files": changed_files,
                  "summary_lines": summary_lines(report)}
        if self._task.diff:
            result["diff"] = diffs
        if warnings:
            result["warnings"] = warnings
        return result
