# The `validate_inputs` task (first task of every playbook), run in the controller's ansible process: reads the
# playbook's public extra vars from the play's variables and checks them with module_utils/marketplace_inputs.py.
# library/validate_inputs.py keeps the documentation (and runs where this action is not configured, checking only
# the values it is given).
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

from ansible.errors import AnsibleError
from ansible.module_utils.common.arg_spec import ArgumentSpecValidator
from ansible.plugins.action import ActionBase

INPUTS_FILE = Path(__file__).resolve().parents[1] / "module_utils" / "marketplace_inputs.py"
INPUTS_MODULE = "marketplace_inputs_controller"


def _inputs():
    """module_utils/marketplace_inputs.py (pure Python, no relative imports), loaded by path once per process."""
    module = sys.modules.get(INPUTS_MODULE)
    if module is None:
        spec = importlib.util.spec_from_file_location(INPUTS_MODULE, INPUTS_FILE)
        module = importlib.util.module_from_spec(spec)
        sys.modules[INPUTS_MODULE] = module
        spec.loader.exec_module(module)
    return module


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _requires_connection = False
    _supports_check_mode = True
    _supports_async = False

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        del tmp
        task_vars = task_vars or {}
        inputs = _inputs()
        validation = ArgumentSpecValidator(inputs.task_argument_spec()).validate(dict(self._task.args))
        if validation.error_messages:
            result.update(failed=True, msg=validation.errors.msg)
            return result
        playbook = validation.validated_parameters["playbook"]
        values = validation.validated_parameters.get("values")
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
        result.update(changed=False, inputs=normalised)
        return result
