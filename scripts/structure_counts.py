#!/usr/bin/env python3
"""Count the structural debts issue 11 names, in this tree or in a git revision, side by side.

    python scripts/structure_counts.py               # this working tree
    python scripts/structure_counts.py --compare REV # REV (e.g. the commit before the restructuring) beside it

Counted over roles/ and playbooks/ (the YAML layer):
  tasks               every task (blocks' own tasks counted, the block itself not)
  set_fact            tasks that run ansible.builtin.set_fact
  jinja_blocks_gt10   YAML string values in task/vars/defaults files holding a Jinja statement ({%)
                      and longer than 10 lines
  default_on_contract `marketplace_*` variables given `| default(` inside roles/
  docker_compose_cmd  command/shell tasks that run `docker compose` / `docker-compose` / marketplace_compose_command
  login_dicts         PostgreSQL/Redis login options written out (each login_password given in YAML)
"""
from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

import yaml

TASK_LISTS = ("tasks", "pre_tasks", "post_tasks", "handlers")
BLOCK_KEYS = ("block", "rescue", "always")
SET_FACT = {"set_fact", "ansible.builtin.set_fact", "ansible.legacy.set_fact"}
COMMANDS = {"command", "shell", "ansible.builtin.command", "ansible.builtin.shell", "ansible.legacy.command",
            "ansible.legacy.shell", "raw", "ansible.builtin.raw"}
COMPOSE_RE = re.compile(r"docker[ -]compose|compose_command|compose_argv")
DEFAULT_RE = re.compile(r"\bmarketplace_\w+\s*\|\s*default\(")
LOGIN_RE = re.compile(r"""(?<![\w])['"]?login_password['"]?\s*:""")


class Loader(yaml.SafeLoader):
    """Safe loader that accepts the vault tag."""


Loader.add_constructor("!vault", lambda loader, node: "")
Loader.add_constructor("!unsafe", lambda loader, node: loader.construct_scalar(node))


def _load(path: Path):
    try:
        return yaml.load(path.read_text(encoding="utf-8"), Loader=Loader)  # noqa: S506 - SafeLoader subclass
    except yaml.YAMLError:
        return None


def _walk_tasks(tasks):
    for task in tasks or []:
        if not isinstance(task, dict):
            continue
        if any(k in task for k in BLOCK_KEYS):
            for key in BLOCK_KEYS:
                yield from _walk_tasks(task.get(key))
            continue
        yield task


def _strings(node):
    if isinstance(node, str):
        yield node
    elif isinstance(node, dict):
        for value in node.values():
            yield from _strings(value)
    elif isinstance(node, list):
        for value in node:
            yield from _strings(value)


def _jinja_scalars(path: Path):
    """Source line count of every scalar that holds a Jinja statement (folded scalars lose their lines once parsed)."""
    try:
        root = yaml.compose(path.read_text(encoding="utf-8"), Loader=Loader)
    except yaml.YAMLError:
        return
    stack = [root] if root is not None else []
    while stack:
        node = stack.pop()
        if isinstance(node, yaml.ScalarNode):
            if "{%" in node.value:
                end = node.end_mark.line - (1 if node.end_mark.column == 0 else 0)
                yield end - node.start_mark.line + (0 if node.style in ("|", ">") else 1)
        elif isinstance(node, yaml.SequenceNode):
            stack.extend(node.value)
        elif isinstance(node, yaml.MappingNode):
            stack.extend(value for _key, value in node.value)


def _is_command_compose(task: dict) -> bool:
    for key in COMMANDS:
        if key in task:
            text = " ".join(_strings(task[key])) + " " + " ".join(_strings(task.get("args", {})))
            return bool(COMPOSE_RE.search(text))
    return False


def count(root: Path, only: str | None = None) -> dict[str, int]:
    """Counts over roles/ and playbooks/, or over one role (only='health') or the playbooks (only='playbooks')."""
    totals = dict.fromkeys(("tasks", "set_fact", "jinja_blocks_gt10", "default_on_contract",
                            "docker_compose_cmd", "login_dicts"), 0)
    role_glob = f"{only}/" if only and only != "playbooks" else "*/"
    roles_root = root / "roles" if only != "playbooks" else root / "no-roles"
    plays_root = root / "playbooks" if only in (None, "playbooks") else root / "no-playbooks"
    files = [*sorted(roles_root.glob(role_glob + "tasks/**/*.yml")),
             *sorted(roles_root.glob(role_glob + "handlers/*.yml"))]
    task_files = {p: _load(p) for p in files}
    plays = {p: _load(p) for p in sorted(plays_root.glob("*.yml"))}
    task_lists = [doc for doc in task_files.values() if isinstance(doc, list)]
    for doc in plays.values():
        for play in doc or []:
            if isinstance(play, dict):
                task_lists.extend(play.get(k) for k in TASK_LISTS if play.get(k))
    for tasks in task_lists:
        for task in _walk_tasks(tasks):
            totals["tasks"] += 1
            if SET_FACT & task.keys():
                totals["set_fact"] += 1
            if _is_command_compose(task):
                totals["docker_compose_cmd"] += 1
    vars_files = [*sorted(roles_root.glob(role_glob + "vars/*.yml")),
                  *sorted(roles_root.glob(role_glob + "defaults/*.yml"))]
    for path in list(task_files) + list(plays) + vars_files:
        totals["jinja_blocks_gt10"] += sum(1 for lines in _jinja_scalars(path) if lines > 10)
    for path in sorted(roles_root.glob(role_glob + "**/*")):
        if path.suffix in (".yml", ".yaml", ".j2") and path.is_file():
            text = path.read_text(encoding="utf-8", errors="replace")
            totals["default_on_contract"] += len(DEFAULT_RE.findall(text))
            if "/meta/" not in str(path):
                totals["login_dicts"] += len(LOGIN_RE.findall(text))
    for path in sorted(plays_root.glob("*.yml")):
        totals["login_dicts"] += len(LOGIN_RE.findall(path.read_text(encoding="utf-8")))
    return totals


def _tree_at(rev: str, repo: Path, into: str) -> Path:
    archive = subprocess.run(["git", "-C", str(repo), "archive", "--format=tar", rev, "roles", "playbooks"],
                             check=True, capture_output=True).stdout
    with tempfile.NamedTemporaryFile(suffix=".tar") as handle:
        handle.write(archive)
        handle.flush()
        with tarfile.open(handle.name) as tar:
            tar.extractall(into, filter="data")
    return Path(into)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", default=os.path.join(os.path.dirname(__file__), ".."), help="tree to count")
    parser.add_argument("--compare", metavar="REV", help="a git revision to count beside this tree")
    parser.add_argument("--by-role", action="store_true", help="one line per role (and one for the playbooks)")
    args = parser.parse_args(argv)
    root = Path(args.root).resolve()
    if args.by_role:
        names = [*sorted(p.name for p in (root / "roles").iterdir() if p.is_dir()), "playbooks"]
        print(f"{'':16}" + "".join(f"{k[:10]:>11}" for k in count(root, "playbooks")))
        for name in names:
            print(f"{name:16}" + "".join(f"{v:11}" for v in count(root, name).values()))
        return 0
    now = count(root)
    if not args.compare:
        for key, value in now.items():
            print(f"{key:22} {value:6}")
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        before = count(_tree_at(args.compare, root, tmp))
    print(f"{'':22} {args.compare[:12]:>12} {'now':>8}")
    for key, value in now.items():
        print(f"{key:22} {before[key]:12} {value:8}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
