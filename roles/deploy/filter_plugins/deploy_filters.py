# Filters of the deploy role. The version check is module_utils/marketplace_inputs.validate_version, the one the
# playbooks' validate_inputs pre_task applies to the public `version`: the role applies it again to the version it
# acts on, whether it came from `version`, from deploy_version or from the deploy history (a rollback target).
from __future__ import annotations

import importlib
import importlib.machinery
import importlib.util
import sys
from pathlib import Path

MODULE_UTILS_PACKAGE = "marketplace_module_utils"
# This repository's module_utils/, from roles/deploy/filter_plugins/.
MODULE_UTILS_DIR = Path(__file__).resolve().parents[3] / "module_utils"


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



def deploy_version_error(value, name="version"):
    """'' when ``value`` is a valid release version (image tag), else the one-line reason it is refused."""
    inputs = _module_utils("marketplace_inputs")
    try:
        inputs.validate_version(value, name)
    except inputs.InputError as exc:
        return str(exc)
    return ""


# Values shorter than this are not masked: "1" (BROKEN_HEALTH=1) would mask every digit of a message.
MASK_MIN_LENGTH = 4


def deploy_redact(text, values):
    """``text`` with every value of ``values`` (build-arg values) of MASK_MIN_LENGTH characters or more masked."""
    text = "" if text is None else str(text)
    for value in sorted((str(v) for v in values or [] if v is not None), key=len, reverse=True):
        if len(value) >= MASK_MIN_LENGTH:
            text = text.replace(value, "********")
    return text


class FilterModule:
    def filters(self):
        return {"deploy_version_error": deploy_version_error, "deploy_redact": deploy_redact}
