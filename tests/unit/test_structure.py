"""The house rules of the YAML layer (issue 11), read from the files themselves: every role depends on the
inventory contract, no role second-guesses a contract variable with `| default(`, compose lifecycle never goes
through the CLI, roles find roles through Ansible, only playbooks read the raw `confirm`, and every play gives the
PostgreSQL/Redis logins and the compose project once (module_defaults) for each module its roles use.

Parametrised per role / per playbook, so `pytest tests/unit/test_structure.py -k deploy` checks one area.
"""
from __future__ import annotations

import re
from pathlib import Path

import jinja2
import jinja2.nodes
import pytest
import yaml

from devtools.modules import load_utils

ROOT = Path(__file__).resolve().parents[2]
ROLES = ROOT / "roles"
PLAYBOOKS = ROOT / "playbooks"
CONTRACT = "marketplace"
# Roles that are part of the contract itself (the contract and the filters it brings).
CONTRACT_ROLES = {CONTRACT, "checks"}
RUNBOOK_ROLES = sorted(p.name for p in ROLES.iterdir() if p.is_dir() and p.name not in CONTRACT_ROLES)
PLAYBOOK_FILES = sorted(p.name for p in PLAYBOOKS.glob("*.yml"))
COMPOSE_MODULE = "community.docker.docker_compose_v2"
TASK_KEYS = ("tasks", "pre_tasks", "post_tasks", "handlers")
BLOCK_KEYS = ("block", "rescue", "always")
INCLUDE_ROLE = {"include_role", "import_role", "ansible.builtin.include_role", "ansible.builtin.import_role"}
INCLUDE_TASKS = {"include_tasks", "import_tasks", "ansible.builtin.include_tasks", "ansible.builtin.import_tasks"}


class _Loader(yaml.SafeLoader):
    pass


_Loader.add_constructor("!vault", lambda loader, node: "")
_Loader.add_constructor("!unsafe", lambda loader, node: loader.construct_scalar(node))


def _load(path: Path):
    return yaml.load(path.read_text(encoding="utf-8"), Loader=_Loader)  # noqa: S506 - a SafeLoader subclass


def _library_modules(fragment: str) -> set[str]:
    found = set()
    for path in (ROOT / "library").glob("*.py"):
        if re.search(rf"^extends_documentation_fragment:\n(?:  - \w+\n)*  - {fragment}\n", path.read_text(), re.M):
            found.add(path.stem)
    return found


POSTGRES_MODULES = _library_modules("marketplace_postgres")
REDIS_MODULES = _library_modules("marketplace_redis")
LOGIN_DICT = {**dict.fromkeys(POSTGRES_MODULES, "marketplace_postgres_login"),
              **dict.fromkeys(REDIS_MODULES, "marketplace_redis_login"),
              COMPOSE_MODULE: "marketplace_compose_options"}


def _walk(tasks):
    for task in tasks or []:
        if isinstance(task, dict):
            if any(k in task for k in BLOCK_KEYS):
                yield task
                for key in BLOCK_KEYS:
                    yield from _walk(task.get(key))
            else:
                yield task


def _role_files(role: str, kinds=("tasks", "handlers", "vars", "defaults", "templates")) -> list[Path]:
    return [p for kind in kinds for p in sorted((ROLES / role / kind).rglob("*")) if p.is_file()
            and p.suffix in (".yml", ".yaml", ".j2")]


def _strings(node):
    if isinstance(node, str):
        yield node
    elif isinstance(node, dict):
        for key, value in node.items():
            if key in ("when", "failed_when", "changed_when", "until") and isinstance(value, (str, bool)):
                yield "{{ %s }}" % value
            elif key in ("when", "failed_when", "changed_when", "until") and isinstance(value, list):
                yield from ("{{ %s }}" % v for v in value)
            else:
                yield from _strings(value)
    elif isinstance(node, list):
        for value in node:
            yield from _strings(value)


_ENV = jinja2.Environment(autoescape=False)  # noqa: S701 - parses YAML values, renders nothing


def _names(text: str) -> set[str]:
    """Names a template reads (parsed, so words in messages and comments do not count)."""
    try:
        tree = _ENV.parse(text)
    except jinja2.TemplateSyntaxError:
        return set()
    return {node.name for node in tree.find_all(jinja2.nodes.Name) if node.ctx == "load"}


def _role_deps(role: str) -> list[str]:
    meta = ROLES / role / "meta" / "main.yml"
    deps = (_load(meta) or {}).get("dependencies") or [] if meta.exists() else []
    return [d if isinstance(d, str) else d.get("role") or d.get("name") for d in deps]


# --- per role -------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("role", RUNBOOK_ROLES)
def test_every_role_depends_on_the_contract(role):
    assert CONTRACT in _role_deps(role), f"roles/{role}/meta/main.yml: list `- role: {CONTRACT}` in dependencies"


@pytest.mark.parametrize("role", RUNBOOK_ROLES)
def test_no_role_defaults_a_contract_variable(role):
    found = [f"{p.relative_to(ROOT)}:{n}" for p in _role_files(role)
             for n, line in enumerate(p.read_text().splitlines(), 1)
             if re.search(r"\bmarketplace_\w+\s*\|\s*default\(", line)]
    assert not found, "contract variables get their default in roles/marketplace, not here: " + ", ".join(found)


@pytest.mark.parametrize("role", RUNBOOK_ROLES)
def test_no_role_drives_compose_through_the_cli(role):
    found = []
    for path in _role_files(role, ("tasks", "handlers")):
        for task in _walk(_load(path)):
            for key in ("command", "shell", "ansible.builtin.command", "ansible.builtin.shell"):
                if key in task and re.search(r"compose", " ".join(_strings(task[key]))):
                    found.append(f"{path.relative_to(ROOT)}: {task.get('name')}")
    assert not found, f"lifecycle goes through {COMPOSE_MODULE}: " + "; ".join(found)


@pytest.mark.parametrize("role", RUNBOOK_ROLES)
def test_roles_find_roles_through_ansible(role):
    found = [f"{p.relative_to(ROOT)}:{n}" for p in _role_files(role)
             for n, line in enumerate(p.read_text().splitlines(), 1)
             if "playbook_dir" in line and not line.lstrip().startswith("#")]
    assert not found, "no paths relative to playbook_dir in roles (role dependencies, include_role, role_path): " \
        + ", ".join(found)


@pytest.mark.parametrize("role", RUNBOOK_ROLES)
def test_roles_never_read_the_raw_confirm_or_another_public_extra_var(role):
    """The playbook maps `confirm` (and every other public extra var) to the role's own variable; a public name that
    is itself the role's (restore_into) is the role's variable."""
    public = {name for names in load_utils("marketplace_inputs").PLAYBOOK_INPUTS.values() for name in names}
    assert "confirm" in public and "version" in public
    found = []
    for path in _role_files(role, ("tasks", "handlers", "vars", "defaults")):
        read = {n for text in _strings(_load(path)) for n in _names(text) & public if not n.startswith(role + "_")}
        if read:
            found.append(f"{path.relative_to(ROOT)}: {sorted(read)}")
    assert not found, f"roles read {role}_confirm / {role}_<input> (the playbook maps the extra vars to them): " \
        + ", ".join(found)


# --- per playbook ---------------------------------------------------------------------------------------------
def _tasks_roles_modules(tasks, roles: set[str], modules: set[str], seen_files: set[Path], role: str | None):
    for task in _walk(tasks):
        for key, value in task.items():
            if key in INCLUDE_ROLE and isinstance(value, dict):
                name = value.get("name")
                if name and "{{" not in name:
                    _role_modules(name, roles, modules, seen_files, value.get("tasks_from"))
            elif key in INCLUDE_TASKS and role:
                file = value.get("file") if isinstance(value, dict) else value
                if isinstance(file, str) and "{{" not in file:
                    _task_file(ROLES / role / "tasks" / file, roles, modules, seen_files, role)
            elif key.split(".")[-1] in LOGIN_DICT or key in LOGIN_DICT:
                modules.add(key if key in LOGIN_DICT else key.split(".")[-1])


def _task_file(path: Path, roles, modules, seen_files, role):
    if path.suffix != ".yml":
        path = path.with_suffix(".yml")
    if path in seen_files or not path.exists():
        return
    seen_files.add(path)
    _tasks_roles_modules(_load(path), roles, modules, seen_files, role)


def _role_modules(role: str, roles: set[str], modules: set[str], seen_files: set[Path], tasks_from=None):
    for dep in _role_deps(role):
        if dep not in roles:
            roles.add(dep)
            _role_modules(dep, roles, modules, seen_files)
    roles.add(role)
    _task_file(ROLES / role / "tasks" / (tasks_from or "main.yml"), roles, modules, seen_files, role)
    for handler in (ROLES / role / "handlers").glob("*.yml"):
        _task_file(handler, roles, modules, seen_files, role)


def _play_needs(play: dict) -> set[str]:
    roles: set[str] = set()
    modules: set[str] = set()
    seen: set[Path] = set()
    for entry in play.get("roles") or []:
        _role_modules(entry if isinstance(entry, str) else entry.get("role") or entry.get("name"), roles, modules, seen)
    for key in TASK_KEYS:
        _tasks_roles_modules(play.get(key), roles, modules, seen, None)
    return modules


@pytest.mark.parametrize("playbook", PLAYBOOK_FILES)
def test_every_play_gives_the_logins_its_roles_use_once(playbook):
    problems = []
    for play in _load(PLAYBOOKS / playbook) or []:
        defaults = play.get("module_defaults") or {}
        for module in sorted(_play_needs(play)):
            given = {k for k in defaults if k == module or k.split(".")[-1] == module}
            if not given:
                problems.append(f"{module}: add `{module}: \"{{{{ {LOGIN_DICT[module]} }}}}\"` to module_defaults")
            elif LOGIN_DICT[module] not in str(defaults[given.pop()]):
                problems.append(f"{module}: module_defaults should be {LOGIN_DICT[module]}")
    assert not problems, f"{playbook}: " + "; ".join(problems)


def test_the_module_lists_are_found():
    """The lists the play test relies on are read from library/ (a silent empty list would pass everything)."""
    assert {"postgres_admin", "postgres_health", "backup_dump"} <= POSTGRES_MODULES
    assert {"redis_keys", "redis_health"} <= REDIS_MODULES


# --- the contract itself --------------------------------------------------------------------------------------
def _contract():
    defaults = _load(ROLES / CONTRACT / "defaults" / "main.yml") or {}
    options = _load(ROLES / CONTRACT / "meta" / "argument_specs.yml")["argument_specs"]["main"]["options"]
    return defaults, options


DERIVED = {"marketplace_postgres_login", "marketplace_redis_login", "marketplace_compose_options",
           "marketplace_secrets"}


def test_the_contract_declares_every_variable_once_with_type_and_default():
    defaults, options = _contract()
    assert set(options) == set(defaults) - DERIVED | {k for k, v in options.items() if v.get("required")}
    for name, spec in options.items():
        assert spec.get("type") and spec.get("description"), name
        if spec.get("required"):
            assert name not in defaults, f"{name} is required: no default"
        else:
            assert spec.get("default") == defaults[name], f"{name}: argument spec and defaults disagree"


def test_every_contract_variable_the_roles_and_playbooks_read_is_declared():
    defaults, options = _contract()
    declared = set(defaults) | set(options)
    read = {}
    files = [p for role in RUNBOOK_ROLES for p in _role_files(role)] + sorted(PLAYBOOKS.glob("*.yml"))
    for path in files:
        texts = [path.read_text()] if path.suffix == ".j2" else list(_strings(_load(path)))
        for text in texts:
            for name in _names(text):
                if name.startswith("marketplace_"):
                    read.setdefault(name, str(path.relative_to(ROOT)))
    undeclared = {n: f for n, f in read.items() if n not in declared}
    assert not undeclared, f"declare these in roles/{CONTRACT}: {undeclared}"
    unused = declared - set(read) - DERIVED - {"marketplace_stack_env_file", "marketplace_project_root"}
    # read only by the contract's own derived values or by the inventory
    contract_text = (ROLES / CONTRACT / "defaults" / "main.yml").read_text()
    unused = {n for n in unused if not re.search(rf"{{{{[^}}]*\b{n}\b", contract_text)}
    assert not unused, f"declared but read by no role or playbook: {sorted(unused)}"
