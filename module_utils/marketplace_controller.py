# The controller's one way into module_utils/: the action plugins, the roles' filter plugins and the runbook CLI
# import module_utils/<name>.py through module_utils() below. No module imports this file (AnsiballZ never packs it).
#
# A controller plugin cannot import module_utils/<name>.py as ``ansible.module_utils.<name>``: there
# ``ansible.module_utils`` is ansible-core's own package, and ``module_utils = module_utils`` in ansible.cfg only
# tells AnsiballZ where to find the imports of the modules it packs (ansible/executor/module_common.py). So the
# directory of this file becomes a package of its own, ``marketplace_module_utils``; files there import each other
# relatively (``from .marketplace_common import ...``), which resolves in this package and in AnsiballZ's
# ``ansible.module_utils`` alike. The package lives in sys.modules: a process loads each file once, whichever
# plugin asks first.
#
# Each controller-side plugin finds this file relative to itself (which holds wherever the repository is checked
# out and however the playbooks run: ansible-playbook, ansible-runner with the repository as project_dir,
# ansible-lint, the unit tests), else in the module_utils paths ansible is configured with (a plugin copied away
# from the repository), with the same lines (tests/unit/test_controller_loader.py checks them):
#
#     _spec = importlib.util.spec_from_file_location("marketplace_controller", next((
#         p for d in (Path(__file__).resolve().parents[N] / "module_utils", *(C.DEFAULT_MODULE_UTILS_PATH or ()))
#         if (p := Path(d, "marketplace_controller.py")).is_file()), "(not found)/marketplace_controller.py"))
#     _spec.loader.exec_module(_loader := importlib.util.module_from_spec(_spec))
#     _module_utils = _loader.module_utils
from __future__ import annotations

import importlib
import importlib.machinery
import importlib.util
import json
import sys
from pathlib import Path

PACKAGE = "marketplace_module_utils"
MODULE_UTILS_DIR = Path(__file__).resolve().parent


def module_utils(name):
    """module_utils/<name>.py on the controller, imported (once per process) as ``marketplace_module_utils.<name>``."""
    package = sys.modules.get(PACKAGE)
    if package is None:
        spec = importlib.machinery.ModuleSpec(PACKAGE, None, is_package=True)
        spec.submodule_search_locations = [str(MODULE_UTILS_DIR)]
        package = sys.modules[PACKAGE] = importlib.util.module_from_spec(spec)
    try:
        return importlib.import_module("%s.%s" % (PACKAGE, name))
    except ModuleNotFoundError as exc:
        if exc.name != "%s.%s" % (PACKAGE, name):
            raise
        raise ImportError("%s.py not found in %s" % (name, ", ".join(package.__path__))) from None


def module_code(name, paths):
    """module_utils/<name>.py imported the way AnsiballZ's modules import it, as ``ansible.module_utils.<name>``
    with its absolute imports of other module_utils files: the directories ``paths`` (the module_utils paths
    ansible is configured with) are appended to ansible.module_utils' search path. For an action plugin that
    runs a module's code in its task's worker process (health_gather), which ends with the task."""
    import os

    import ansible.module_utils

    for entry in paths or []:
        entry = os.path.abspath(os.path.expanduser(str(entry)))
        if os.path.isdir(entry) and entry not in ansible.module_utils.__path__:
            ansible.module_utils.__path__.append(entry)
    return importlib.import_module("ansible.module_utils." + name)


# ------------------------------------------------------------------- action plugins that stand in for a module
# marketplace_report and health_gather run a module's code in the controller's process. What the task gets back
# must be what the module would have returned: its arguments as AnsiballZ hands them over, validated with the
# module's argument spec (AnsibleModule's messages), the invocation, and every no_log value masked.


def module_args(task_args):
    """The task's arguments as the module would receive them: through the JSON encoder and decoder AnsiballZ uses
    (profile ``legacy``, controller to module), so tuples and sets become lists, dates ISO strings, and ansible's
    templating tags are dropped."""
    from ansible.module_utils.common.json import Direction, get_module_decoder, get_module_encoder

    encoder = get_module_encoder("legacy", Direction.CONTROLLER_TO_MODULE)
    decoder = get_module_decoder("legacy", Direction.CONTROLLER_TO_MODULE)
    return json.loads(json.dumps(dict(task_args), cls=encoder), cls=decoder)


def validate_module_args(action, spec, early_no_log_values):
    """Validate ``action``'s task arguments (module_args) with ActionBase.validate_argument_spec.

    Returns ``(params, msg, no_log_values)``: the validated parameters (on an error, the arguments with what
    validation filled in, as AnsibleModule.fail_json's invocation shows them), the error message or None, and the
    values to mask - what ``early_no_log_values(params, spec)`` (marketplace_common) finds in the arguments before
    validation, and what AnsibleModule masks."""
    from ansible.errors import AnsibleActionFail
    from ansible.module_utils.common.arg_spec import ArgumentSpecValidator
    from ansible.module_utils.common.parameters import _list_no_log_values

    params = action._task.args = module_args(action._task.args)
    no_log_values = early_no_log_values(params, spec)
    msg = None
    try:
        _validation, params = action.validate_argument_spec(spec)
    except AnsibleActionFail as exc:
        msg = exc.message
        params.update(ArgumentSpecValidator(spec).validate(params).validated_parameters)
    no_log_values.update(_list_no_log_values(spec, params))
    return params, msg, no_log_values


def module_result(result, params, no_log_values):
    """As AnsibleModule.exit_json/fail_json: the arguments under ``invocation``, every no_log value masked."""
    from ansible.module_utils.common.parameters import remove_values

    result["invocation"] = {"module_args": params}
    return remove_values(result, no_log_values)
