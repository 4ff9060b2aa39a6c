"""Shared code lives in module_utils/: the health parts' modules are documentation plus main(), and health_gather
runs the parts from module_utils/, so library/ is not on the module_utils path (ansible.cfg)."""
from __future__ import annotations

import ast
import configparser
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PARTS = ["http_probe", "postgres_health", "redis_health", "compose_logs", "compose_status", "host_resources"]
# library/ modules with no module_utils/ file of the same name (marketplace_report has both: the module and its code)
LIBRARY_MODULES = sorted({p.stem for p in (ROOT / "library").glob("*.py")}
                         - {p.stem for p in (ROOT / "module_utils").glob("*.py")})


def _tree(name: str) -> ast.Module:
    return ast.parse((ROOT / "library" / f"{name}.py").read_text())


@pytest.mark.parametrize("name", [*PARTS, "health_gather"])
def test_the_module_is_documentation_and_main(name):
    tree = _tree(name)
    functions = [n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.ClassDef))]
    assert functions == ["main"], f"library/{name}.py defines {functions}: its code belongs in module_utils/"
    assigned = {t.id for n in tree.body if isinstance(n, ast.Assign) for t in n.targets if isinstance(t, ast.Name)}
    assert assigned == {"DOCUMENTATION", "EXAMPLES", "RETURN"}
    imported = {n.module for n in tree.body if isinstance(n, ast.ImportFrom)} - {"__future__"}
    assert f"ansible.module_utils.marketplace_{name}" in imported


def test_no_module_imports_another_module():
    """What a module imports from ansible.module_utils is a module_utils file, never a sibling in library/."""
    for path in [*(ROOT / "library").glob("*.py"), *(ROOT / "module_utils").glob("*.py")]:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module == "ansible.module_utils":
                names = {a.name for a in node.names}
                assert not names & set(LIBRARY_MODULES), f"{path.name} imports library modules {names}"
            elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("ansible.module_utils."):
                assert node.module.split(".")[2] not in LIBRARY_MODULES, f"{path.name} imports {node.module}"


def test_library_is_not_on_the_module_utils_path():
    config = configparser.ConfigParser()
    config.read(ROOT / "ansible.cfg")
    assert config["defaults"]["module_utils"] == "module_utils"
