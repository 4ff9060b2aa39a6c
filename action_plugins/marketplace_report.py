# The `marketplace_report` task, run in the controller's ansible process: writes the run report (JSON + Markdown +
# <host>-latest.json) on the controller without starting a module process (AnsiballZ costs ~0.5 s per run).
#
# ansible-core pairs it with library/marketplace_report.py by name: the module has no action redirect, so
# TaskExecutor takes the action plugin of the task's name when one is found (`action_plugins = action_plugins`
# in ansible.cfg), else `normal`, which would run the module. The module file stays the documentation and the
# argument spec; both write through module_utils/marketplace_report.py, so files, return values, redaction,
# check mode and errors are the module's.
from __future__ import annotations

import importlib
import importlib.machinery
import importlib.util
import json
import sys
from pathlib import Path

from ansible.module_utils.common.arg_spec import ArgumentSpecValidator
from ansible.module_utils.common.json import Direction, get_module_decoder, get_module_encoder
from ansible.module_utils.common.parameters import remove_values
from ansible.module_utils.errors import UnsupportedError
from ansible.plugins.action import ActionBase

MODULE_NAME = "marketplace_report"
MODULE_UTILS_PACKAGE = "marketplace_module_utils"
# This repository's module_utils/, from action_plugins/.
MODULE_UTILS_DIR = Path(__file__).resolve().parents[1] / "module_utils"


def _module_utils(name):
    """module_utils/<name>.py on the controller, imported as ``marketplace_module_utils.<name>``.

    A controller plugin cannot import it as ``ansible.module_utils.<name>``: there ``ansible.module_utils`` is
    ansible-core's own package, and ``module_utils = module_utils`` in ansible.cfg only tells AnsiballZ where
    to find the imports of the modules it packs (ansible/executor/module_common.py). So module_utils/ becomes a
    package of its own: MODULE_UTILS_DIR, relative to the plugin, which holds wherever the repository is
    checked out and however the playbooks run (ansible-playbook, ansible-runner with the repository as
    project_dir, ansible-lint, the unit tests); failing that, the module_utils paths ansible is configured
    with. Files there import each other relatively (``from .marketplace_common import ...``), which resolves
    in this package and in AnsiballZ's ``ansible.module_utils`` alike. The controller plugins that need
    module_utils (the checks filters, the marketplace_report action) carry this same function
    (tests/unit/test_marketplace_report.py compares them) and share the package: a process loads each file
    once, whichever plugin asks first.
    """
    package = sys.modules.get(MODULE_UTILS_PACKAGE)
    if package is None:
        if MODULE_UTILS_DIR.is_dir():
            paths = [str(MODULE_UTILS_DIR)]
        else:
            from ansible import constants

            paths = [str(p) for p in constants.DEFAULT_MODULE_UTILS_PATH or []]
        spec = importlib.machinery.ModuleSpec(MODULE_UTILS_PACKAGE, None, is_package=True)
        spec.submodule_search_locations = paths
        package = sys.modules[MODULE_UTILS_PACKAGE] = importlib.util.module_from_spec(spec)
    try:
        return importlib.import_module("%s.%s" % (MODULE_UTILS_PACKAGE, name))
    except ModuleNotFoundError as exc:
        if exc.name != "%s.%s" % (MODULE_UTILS_PACKAGE, name):
            raise
        raise ImportError("%s.py not found in %s" % (name, ", ".join(package.__path__))) from None


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
        validation = ArgumentSpecValidator(spec).validate(params)
        params.update(validation.validated_parameters)
        no_log_values.update(validation._no_log_values)  # what AnsibleModule masks, too
        if validation.error_messages:
            msg = validation.errors.msg
            if isinstance(validation.errors[0], UnsupportedError):
                msg = "Unsupported parameters for (%s) module: %s" % (MODULE_NAME, msg)
            result.update(failed=True, msg=msg)
        else:
            try:
                result.update(report.write_report(params, check_mode=bool(self._task.check_mode)))
            except report.ReportError as exc:
                result.update(exc.result, failed=True, msg=exc.msg)

        # As AnsibleModule.exit_json/fail_json: the arguments under invocation, every no_log value masked.
        result["invocation"] = {"module_args": params}
        return remove_values(result, no_log_values)
