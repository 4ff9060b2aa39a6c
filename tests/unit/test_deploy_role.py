"""The deploy and recover roles: their filters, and what their task files may not do (static, fast)."""
from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
FILTER_FILE = ROOT / "roles" / "deploy" / "filter_plugins" / "deploy_filters.py"
ROLES = [ROOT / "roles" / "deploy", ROOT / "roles" / "recover"]


def _load(path: Path, name: str):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def filters():
    return _load(FILTER_FILE, "deploy_filters_for_test")


BAD = ["1.0;id", "$(id)", "-x", "../x", "v" * 129, "", ".hidden", "1..2", "a b"]
GOOD = ["1.0.0", "1.0.2-broken", "v" * 128, "_x", "2026.12.03-rc_1"]


@pytest.mark.parametrize("value", BAD)
def test_the_role_refuses_what_the_central_validator_refuses(filters, value):
    inputs = filters._module_utils("marketplace_inputs")
    with pytest.raises(inputs.InputError) as central:
        inputs.validate_version(value, "version")
    assert filters.deploy_version_error(value) == str(central.value)
    assert "is not a valid image tag" in filters.deploy_version_error(value)


@pytest.mark.parametrize("value", GOOD)
def test_the_role_accepts_valid_versions(filters, value):
    assert filters.deploy_version_error(value) == ""


def test_the_version_check_names_where_the_version_came_from(filters):
    msg = filters.deploy_version_error("1.0;id", "the rollback target from the deploy history")
    assert msg.startswith("the rollback target from the deploy history '1.0;id' is not a valid image tag")
    assert "must be a string" in filters.deploy_version_error(1.0)


def test_redact_masks_build_arg_values(filters):
    text = "step 3/9: ARG TOKEN=s3cr3t-token and s3cr3t-token-long; BROKEN_HEALTH=1 at 10:01"
    out = filters.deploy_redact(text, ["s3cr3t-token", "s3cr3t-token-long", "1", None])
    assert "s3cr3t" not in out and out.count("********") == 2
    assert "BROKEN_HEALTH=1 at 10:01" in out  # values shorter than 4 characters are left alone
    assert filters.deploy_redact(None, ["abcd"]) == ""


def _tasks(node):
    """Every task mapping of a task file, blocks and rescue/always included."""
    if isinstance(node, list):
        for item in node:
            yield from _tasks(item)
    elif isinstance(node, dict):
        yield node
        for key in ("block", "rescue", "always"):
            if key in node:
                yield from _tasks(node[key])


def _role_files():
    for role in ROLES:
        yield from sorted(role.rglob("*.yml"))


@pytest.mark.parametrize("path", list(_role_files()), ids=lambda p: str(p.relative_to(ROOT)))
def test_no_password_in_a_task_environment_or_argv(path):
    for task in _tasks(yaml.safe_load(path.read_text()) or []):
        env = task.get("environment") or {}
        assert not any(re.search(r"PASS|SECRET|TOKEN", str(k), re.I) for k in env), (path, task.get("name"), list(env))
        args = task.get("ansible.builtin.command") or task.get("ansible.builtin.shell") or task.get("command") or {}
        assert "password" not in str(args).lower(), (path, task.get("name"))


# Controller-side probes that judge the target by the controller's files or environment.
CONTROLLER_PROBES = re.compile(
    r"fileglob|playbook_dir|lookup\(\s*['\"](ansible\.builtin\.)?(file|first_found|pipe)['\"]")


@pytest.mark.parametrize("path", list(_role_files()), ids=lambda p: str(p.relative_to(ROOT)))
def test_no_controller_side_probe_decides_for_the_target(path):
    hits = [line.strip() for line in path.read_text().splitlines() if CONTROLLER_PROBES.search(line)]
    assert not hits, (path, hits)
