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
import json
from pathlib import Path

from ansible import constants as C
from ansible.errors import AnsibleActionFail
from ansible.module_utils.common.arg_spec import ArgumentSpecValidator
from ansible.module_utils.common.json import Direction, get_module_decoder, get_module_encoder
from ansible.module_utils.common.parameters import _list_no_log_values, remove_values
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

    def _module_args(self):
        """The task's arguments as the module would receive them.

        Through the JSON encoder and decoder AnsiballZ uses for module arguments (profile ``legacy``, controller to
        module): tuples and sets become lists, dates ISO strings, and ansible's templating tags are dropped.
        """
        encoder = get_module_encoder("legacy", Direction.CONTROLLER_TO_MODULE)
        decoder = get_module_decoder("legacy", Direction.CONTROLLER_TO_MODULE)
        return json.loads(json.dumps(dict(self._task.args), cls=encoder), cls=decoder)

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        del tmp
        report = _module_utils("marketplace_report")

        # Validate like MarketplaceModule: the same spec, messages and masking of no_log values (``redact``, and
        # the secrets early_no_log_values finds in the raw arguments, such as a URL's password, before validation).
        params = self._module_args()
        spec = report.build_argument_spec()
        no_log_values = _module_utils("marketplace_common").early_no_log_values(params, spec)
        self._task.args = params
        try:
            _validation, params = self.validate_argument_spec(spec)
        except AnsibleActionFail as exc:
            result.update(failed=True, msg=exc.message)
            # The invocation AnsibleModule.fail_json shows: the arguments with what validation did fill in.
            params.update(ArgumentSpecValidator(spec).validate(params).validated_parameters)
        else:
            try:
                result.update(report.write_report(params, check_mode=bool(self._task.check_mode)))
            except report.ReportError as exc:
                result.update(exc.result, failed=True, msg=exc.msg)
        no_log_values.update(_list_no_log_values(spec, params))  # what AnsibleModule masks, too

        # As AnsibleModule.exit_json/fail_json: the arguments under invocation, every no_log value masked.
        result["invocation"] = {"module_args": params}
        return remove_values(result, no_log_values)
