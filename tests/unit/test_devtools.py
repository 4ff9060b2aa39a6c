"""bench/ and tests/ share devtools/ (run a module in-process, the stack's env file, backup helpers); bench/ and
devtools/ never import tests/."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FILES = sorted([*ROOT.glob("bench/*.py"), *ROOT.glob("devtools/*.py")])


def _imported(path: Path) -> set[str]:
    names = set()
    text = path.read_text()
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and "import" in node.value:
            # code run in a fresh interpreter (python -c): its imports count too
            try:
                names |= _imported_source(node.value)
            except SyntaxError:
                pass
    return names


def _imported_source(source: str) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_bench_and_devtools_do_not_import_tests(path):
    assert not {n for n in _imported(path) if n == "tests" or n.startswith("tests.")}


def test_the_tests_use_the_same_helpers():
    from devtools import backups, modules, stackenv
    from tests.helpers import backups as test_backups
    from tests.helpers import faults
    from tests.helpers import modules as test_modules
    from tests.helpers import stackenv as test_stackenv

    assert test_modules.run_module is modules.run_module and test_modules.load_module is modules.load_module
    assert test_stackenv.read_env is stackenv.read_env and faults.containers is stackenv.containers
    assert test_backups.new_backup_dir is backups.new_backup_dir and test_backups.admin_conn is backups.admin_conn
