"""Controller-side code (action plugins, the roles' filter plugins, the runbook CLI) reaches module_utils/ through
one loader, module_utils/marketplace_controller.py, into one package (marketplace_module_utils)."""
from __future__ import annotations

import ast
import importlib.util
import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LOADER = ROOT / "module_utils" / "marketplace_controller.py"
CONTROLLER_FILES = sorted(
    [*ROOT.glob("action_plugins/*.py"), *ROOT.glob("roles/*/filter_plugins/*.py"), *ROOT.glob("runbook/*.py")])
# The lines each controller-side user of module_utils starts with (only the way to the repository root differs).
BOOTSTRAP = re.compile(
    r'_spec = importlib\.util\.spec_from_file_location\("marketplace_controller", next\(\(\n'
    r'    p for d in \(Path\(__file__\)\.resolve\(\)\.parents\[\d\] / "module_utils", '
    r'\*\(C\.DEFAULT_MODULE_UTILS_PATH or \(\)\)\)\n'
    r'    if \(p := Path\(d, "marketplace_controller\.py"\)\)\.is_file\(\)\), '
    r'"\(not found\)/marketplace_controller\.py"\)\)\n'
    r'_spec\.loader\.exec_module\(_loader := importlib\.util\.module_from_spec\(_spec\)\)\n'
    r'_module_utils = _loader\.module_utils\n'
    # runbook/ knows the project root: no search
    r'|_spec = importlib\.util\.spec_from_file_location\(\n'
    r'    "marketplace_controller", PROJECT_ROOT / "module_utils" / "marketplace_controller\.py"\)\n'
    r'_spec\.loader\.exec_module\(_loader := importlib\.util\.module_from_spec\(_spec\)\)\n'
    r'_module_utils = _loader\.module_utils\n')
# What loading a file by hand looks like: only the loader may do it for module_utils/.
HAND_LOADING = ("ModuleSpec", "submodule_search_locations", "sys.path")


def _uses_module_utils(text: str) -> bool:
    return "module_utils/" in text or '"module_utils"' in text or "_module_utils(" in text


@pytest.mark.parametrize("path", CONTROLLER_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_controller_plugin_uses_the_one_loader(path):
    text = path.read_text()
    if not _uses_module_utils(text):
        return
    assert BOOTSTRAP.search(text), "%s loads module_utils/ without module_utils/marketplace_controller.py" % path
    assert text.count("spec_from_file_location") == 1, "the loader's bootstrap is the only file loading"
    for word in HAND_LOADING:
        assert word not in text, "%s builds its own module_utils package (%s)" % (path, word)
    tree = ast.parse(text)
    defined = {n.name for n in tree.body if isinstance(n, ast.FunctionDef)}
    assert "_module_utils" not in defined and "_inputs" not in defined, "a private copy of the loader"


def test_the_bootstrap_finds_the_loader_from_where_each_plugin_lives():
    for path in CONTROLLER_FILES:
        match = re.search(r"parents\[(\d)\]", path.read_text())
        if match and "marketplace_controller" in path.read_text():
            assert path.resolve().parents[int(match.group(1))] / "module_utils" / LOADER.name == LOADER


def _load(path: Path, name: str):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_plugins_share_one_package():
    action = _load(ROOT / "action_plugins" / "marketplace_report.py", "marketplace_report_action_for_loader_test")
    checks = _load(ROOT / "roles/checks/filter_plugins/marketplace_checks.py", "checks_for_loader_test")
    deploy = _load(ROOT / "roles/deploy/filter_plugins/deploy_filters.py", "deploy_for_loader_test")
    report = action._module_utils("marketplace_report")
    assert Path(report.__file__).resolve() == ROOT / "module_utils" / "marketplace_report.py"
    assert checks._metrics is sys.modules["marketplace_module_utils.marketplace_metrics"]
    # marketplace_report's relative import of marketplace_common resolved inside that package.
    assert sys.modules["marketplace_module_utils.marketplace_common"].json_safe is report.json_safe
    assert deploy._module_utils("marketplace_inputs") is action._module_utils("marketplace_inputs")
    from runbook import catalogue

    assert catalogue.inputs_spec() is sys.modules["marketplace_module_utils.marketplace_inputs"]
    with pytest.raises(ImportError, match=r"no_such_file\.py not found in"):
        action._module_utils("no_such_file")
