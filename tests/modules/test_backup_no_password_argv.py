"""No database password on a command line or in a task's environment in the backup roles (issue 10, defect 10).

The roles run pg_dump / pg_restore only through the modules: in the postgres container with peer authentication
(no password at all), or with tools=local on this host with the password in the environment of the module's own
subprocess (PGPASSWORD), never in argv. Checked statically on the task files and for real: a real pg_dump run by
backup_dump with tools=local, through a wrapper that records the argv it was given and then runs the real pg_dump.
"""
from __future__ import annotations

import shutil
import stat
from pathlib import Path

import pytest
import yaml

from tests.helpers import backups as bk
from tests.helpers.modules import run_module

ROOT = Path(__file__).resolve().parents[2]
ROLES = ("backup", "restore", "backup_verify")
RUNS_A_PROGRAM = {"command", "shell", "raw", "script", "ansible.builtin.command", "ansible.builtin.shell",
                  "ansible.builtin.raw", "ansible.builtin.script"}


def _tasks(node):
    if isinstance(node, list):
        for item in node:
            yield from _tasks(item)
    elif isinstance(node, dict):
        if any(k in node for k in ("block", "rescue", "always")):
            for k in ("block", "rescue", "always"):
                yield from _tasks(node.get(k) or [])
        yield node


@pytest.mark.parametrize("role", ROLES)
def test_no_password_in_a_command_or_a_task_environment(role):
    offenders = []
    for path in sorted((ROOT / "roles" / role / "tasks").glob("*.yml")):
        for task in _tasks(yaml.safe_load(path.read_text()) or []):
            text = yaml.safe_dump(task).lower()
            env = yaml.safe_dump(task.get("environment") or {}).lower()
            if "password" in env or "pgpass" in env:
                offenders.append(f"{path.name}: {task.get('name')}: environment holds a password")
            if RUNS_A_PROGRAM & set(task) and ("password" in text or "pgpass" in text):
                offenders.append(f"{path.name}: {task.get('name')}: a command that mentions a password")
    assert offenders == []


def test_local_pg_dump_gets_the_password_in_its_environment_not_in_argv(tmp_path, pg_params, stack_env):
    real = shutil.which("pg_dump")
    if real is None:
        pytest.skip("no pg_dump on this host")
    record = tmp_path / "argv"
    bindir = tmp_path / "bin"
    bindir.mkdir()
    for tool in ("pg_dump", "pg_restore"):
        wrapper = bindir / tool
        wrapper.write_text(f'#!/bin/sh\nprintf "%s\\n" "$0" "$@" >> {record}\n'
                           f'[ -n "$PGPASSWORD" ] && echo PGPASSWORD-set >> {record}\n'
                           f'exec {shutil.which(tool)} "$@"\n')
        wrapper.chmod(wrapper.stat().st_mode | stat.S_IXUSR)
    target = bk.new_backup_dir("argv")
    try:
        r = run_module("backup_dump", {**pg_params, "database": bk.APP_DB, "backup_dir": str(target),
                                       "count_tables": ["users"], "tools": "local", "pg_bin_dir": str(bindir)})
        assert not r.get("failed"), r.get("msg")
        argv = record.read_text()
        assert "pg_dump" in argv and "pg_restore" in argv and "PGPASSWORD-set" in argv  # both ran, with the env
        assert stack_env["POSTGRES_PASSWORD"] not in argv
        assert stack_env["POSTGRES_PASSWORD"] not in r["_raw"]
    finally:
        shutil.rmtree(target, ignore_errors=True)
