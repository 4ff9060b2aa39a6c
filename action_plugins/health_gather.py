# The `health_gather` task. On a local connection whose Python is the controller's own (the demo inventory:
# ansible_connection=local, ansible_python_interpreter={{ ansible_playbook_python }}), the parts run in this
# task's worker process instead of a module process: the module's own code (module_utils/marketplace_health_gather.py,
# its gather() and the parts' run()), the same argument specs, results, masking and errors, without building the
# AnsiballZ payload (~0.25 s: ansible-core parses every module_utils file it packs, 60-odd for this module) and
# without a second Python start-up that imports ansible.module_utils.basic (~0.2 s). That is about a sixth of a
# health check.
#
# Anything else runs the module as ansible-core's `normal` action would: another connection (ssh, docker, ...),
# become, async, an `environment:` keyword, another interpreter, or health_gather_in_process=false. The target is
# then a real remote host or a user/Python/environment this process does not have.
# The result says which way it ran (`in_process`).
from __future__ import annotations

import importlib.util
import json
import os
import sys
import traceback
from pathlib import Path

from ansible import constants as C
from ansible.module_utils.common.json import Direction, get_module_decoder, get_module_encoder
from ansible.module_utils.parsing.convert_bool import boolean
from ansible.plugins.action.normal import ActionModule as NormalAction
from ansible.utils.display import Display

# module_utils/<name>.py on the controller, through its one loader module_utils/marketplace_controller.py: beside
# this plugin in the repository, else in a module_utils path ansible is configured with.
_spec = importlib.util.spec_from_file_location("marketplace_controller", next((
    p for d in (Path(__file__).resolve().parents[1] / "module_utils", *(C.DEFAULT_MODULE_UTILS_PATH or ()))
    if (p := Path(d, "marketplace_controller.py")).is_file()), "(not found)/marketplace_controller.py"))
_spec.loader.exec_module(_loader := importlib.util.module_from_spec(_spec))
_module_utils = _loader.module_utils

display = Display()

MODULE_NAME = "health_gather"
MODULE_CODE = "marketplace_health_gather"
SWITCH = "health_gather_in_process"


def _same_python(interpreter):
    """Whether ``interpreter`` is this process's Python: the same file in the same directory (a venv's python is
    a symlink to the base interpreter, so the resolved file alone would not tell two venvs apart)."""
    if not interpreter or not os.path.isabs(interpreter):
        return False
    mine = sys.executable
    try:
        return (os.path.dirname(os.path.abspath(interpreter)) == os.path.dirname(os.path.abspath(mine))
                and os.path.samefile(interpreter, mine))
    except OSError:
        return False


class ActionModule(NormalAction):

    def _in_process_refusal(self, task_vars):
        """Why the parts cannot run in this process (None when they can)."""
        if not boolean(task_vars.get(SWITCH, True), strict=False):
            return "%s is false" % SWITCH
        if getattr(self._connection, "transport", None) != "local":
            return "the connection is not local"
        if self._play_context.become:
            return "become is set"
        if self._task.async_val:
            return "the task is async"
        environment = {}
        self._compute_environment_string(environment)
        if environment:
            return "the task sets an environment"
        interpreter = task_vars.get("ansible_python_interpreter")
        if interpreter is None:
            return "ansible_python_interpreter is not set"
        interpreter = self._templar.template(interpreter)
        if not _same_python(interpreter):
            return "ansible_python_interpreter is not this Python (%s)" % sys.executable
        return None

    def run(self, tmp=None, task_vars=None):
        task_vars = task_vars or {}
        refusal = self._in_process_refusal(task_vars)
        if refusal is None:
            try:
                # The module's code as AnsiballZ would pack it: ansible.module_utils.marketplace_health_gather
                # and the files it imports, from the configured module_utils paths.
                gather_module = _loader.module_code(MODULE_CODE, C.DEFAULT_MODULE_UTILS_PATH)
            except ImportError as exc:  # the module process would name the missing import itself
                refusal = "its code did not import here (%s)" % exc
        if refusal is not None:
            display.vvv("health_gather runs as a module: %s" % refusal, host=task_vars.get("inventory_hostname"))
            return super().run(tmp, task_vars)  # the module process; its result says in_process=false

        result = super(NormalAction, self).run(tmp, task_vars)  # ActionBase: check mode and async support
        del tmp
        result.update(self._run_in_process(gather_module))
        return result

    def _run_in_process(self, gather_module):
        # Validate like AnsibleModule: the same spec and messages, and the same masking of no_log values.
        # MarketplaceModule's masking before any failure: the parts' passwords (nested, unknown to the top-level
        # spec), the passwords in URLs and conninfo strings, registered before anything can fail.
        spec = gather_module.build_argument_spec()
        params, msg, no_log_values = _loader.validate_module_args(self, spec, gather_module.early_no_log_values)
        if msg:
            result = dict(failed=True, msg=msg)
        else:
            # gather() needs of its module what each part needs: the module's own PartModule serves both.
            top = gather_module.PartModule(params, bool(self._task.check_mode), no_log_values)
            try:
                result = dict(changed=False, in_process=True, **gather_module.gather(top))
            except gather_module.PartDone as done:  # gather()'s own fail_json (no part, bad timeout, bad options)
                result = done.result
            except Exception as exc:  # reported like a module crash, without a traceback in the output
                frame = traceback.extract_tb(exc.__traceback__)[-1]
                result = dict(failed=True, msg="%s: unexpected %s: %s (%s:%d)" % (
                    MODULE_NAME, type(exc).__name__, exc, frame.filename.rsplit("/", 1)[-1], frame.lineno))
        # As AnsibleModule.exit_json/fail_json: the arguments under invocation, every no_log value masked, and
        # the result through the JSON a module process would print (module to controller).
        result = _loader.module_result(result, params, no_log_values)
        encoder = get_module_encoder("legacy", Direction.MODULE_TO_CONTROLLER)
        decoder = get_module_decoder("legacy", Direction.MODULE_TO_CONTROLLER)
        return json.loads(json.dumps(result, cls=encoder), cls=decoder)
