# The `validate_inputs` task (first task of every playbook), run in the controller's ansible process: reads the
# playbook's public extra vars from the play's variables and checks them with module_utils/marketplace_inputs.py.
# library/validate_inputs.py keeps the documentation (and runs where this action is not configured, checking only
# the values it is given). It also records when the run started (fact report_started, read by the report role).
from __future__ import annotations

import importlib.util
from datetime import UTC, datetime
from pathlib import Path

from ansible import constants as C
from ansible.errors import AnsibleActionFail, AnsibleError
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
    _requires_connection = False
    _supports_check_mode = True
    _supports_async = False

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        del tmp
        task_vars = task_vars or {}
        inputs = _module_utils("marketplace_inputs")
        try:
            _validation, args = self.validate_argument_spec(inputs.task_argument_spec())
        except AnsibleActionFail as exc:
            result.update(failed=True, msg=exc.message)
            return result
        playbook = args["playbook"]
        values = args.get("values")
        if values is None:
            values = {}
            for name in inputs.PLAYBOOK_INPUTS.get(playbook, {}):
                if name not in task_vars:
                    continue
                try:
                    values[name] = self._templar.template(task_vars[name])
                except AnsibleError as exc:
                    msg = "%s cannot be read: %s" % (name, str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
                    result.update(failed=True, errors=[msg], inputs={}, msg=inputs.refusal(playbook, [msg]))
                    return result
        normalised, errors = inputs.validate_inputs(playbook, values)
        if errors:
            result.update(failed=True, errors=errors, inputs={}, msg=inputs.refusal(playbook, errors))
            return result
        # The run starts here (the first task of every playbook): its report's start time, as a fact.
        started = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        result.update(changed=False, inputs=normalised, ansible_facts={"report_started": started})
        return result
