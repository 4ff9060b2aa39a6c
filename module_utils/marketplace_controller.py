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
