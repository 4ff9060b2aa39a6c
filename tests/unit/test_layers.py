"""tests/unit holds only tests that need no Docker engine and no service (issue 11): no test here asks for a
fixture of the reference stack. (`make unit` runs them; CI's netns check:
`unshare -n` with DOCKER_HOST pointing nowhere, docs/ARCHITECTURE.md.)"""
from __future__ import annotations

import ast
from pathlib import Path

UNIT = Path(__file__).resolve().parent
STACK_FIXTURES = {"stack_env", "pg_params", "pg_dsn", "app_dsn", "redis_params", "redis_client", "ssh_target",
                  "local_host", "container_host", "admin_conn", "scratch_db", "sessions"}


def test_no_unit_test_needs_the_stack():
    found = []
    for path in sorted(UNIT.glob("test_*.py")):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef) and (node.name.startswith("test_") or node.decorator_list):
                wanted = {a.arg for a in node.args.args} & STACK_FIXTURES
                if wanted:
                    found.append(f"{path.name}::{node.name} asks for {sorted(wanted)}")
    assert not found, "move these to tests/modules or tests/integration: " + "; ".join(found)
    assert not (UNIT / "conftest.py").exists(), "the stack fixtures of the module tests live in tests/modules"
