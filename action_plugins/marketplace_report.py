# The `marketplace_report` task, run in the controller's ansible process: writes the run report (JSON + Markdown +
# <host>-latest.json) on the controller without starting a module process (AnsiballZ costs ~0.5 s per run).
#
# ansible-core pairs it with library/marketplace_report.py by name: the module has no action redirect, so
# TaskExecutor takes the action plugin of the task's name when one is found (`action_plugins = action_plugins`
# in ansible.cfg), else `normal`, which would run the module. The module file stays the documentation and the
# argument spec; both write through module_utils/marketplace_report.py, so files, return values, redaction,
# check mode and errors are the module's.
from __future__ import annotations

import importlib.util
from pathlib import Path

from ansible import constants as C
from ansible.plugins.action import ActionBase

# module_utils/<name>.py on the controller, through its one loader module_utils/marketplace_controller.py: beside
# this plugin in the repository, else in a module_utils path ansible is configured with.
_spec = importlib.util.spec_from_file_location("marketplace_controller", next((
    p for d in (Path(__file__).resolve().parents[1] / "module_utils", *(C.DEFAULT_MODULE_UTILS_PATH or ()))
    if (p := Path(d, "marketplace_controller.py")).is_file()), "(not found)/marketplace_controller.py"))
_spec.loader.exec_module(_loader := importlib.util.module_from_spec(_spec))
_module_utils = _loader.module_utils


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _requires_connection = False  # writes on the controller; never touches the target's connection
    _supports_check_mode = True
    _supports_async = False

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        del tmp
        report = _module_utils("marketplace_report")

        # Validate like MarketplaceModule: the same spec, messages and masking of no_log values (``redact``, and
        # the secrets early_no_log_values finds in the raw arguments, such as a URL's password, before validation).
        spec = report.build_argument_spec()
        params, msg, no_log_values = _loader.validate_module_args(
            self, spec, _module_utils("marketplace_common").early_no_log_values)
        if msg:
            result.update(failed=True, msg=msg)
        else:
            try:
                result.update(report.write_report(params, check_mode=bool(self._task.check_mode)))
            except report.ReportError as exc:
                result.update(exc.result, failed=True, msg=exc.msg)
        return _loader.module_result(result, params, no_log_values)
