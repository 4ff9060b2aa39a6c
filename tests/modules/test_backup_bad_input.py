"""Bad input to the backup modules, refused by the modules themselves against the real reference PostgreSQL.

The playbooks check the syntax of the public extra vars first (validate_inputs); these tests show that
backup_catalog and backup_restore refuse the same input on their own (defence in depth), with a clear message,
no traceback and nothing changed - checked on the real state: the list of databases, the live database still
accepting connections, the files of the backup directory.
"""
from __future__ import annotations

import datetime
import shutil
import uuid

import psycopg
import pytest
from psycopg import sql

from tests.helpers import backups as bk
from tests.helpers.modules import run_module

LIVE = bk.APP_DB
WHEN = datetime.datetime(2026, 1, 2, 3, 4, 5, tzinfo=datetime.UTC)


@pytest.fixture()
def backup_dir(stack_env):
    path = bk.new_backup_dir("badinput")
    name = bk.fake_backup(path, WHEN)
    yield path, name
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture()
def real_state(pg_dsn):
    """A function returning (databases, datallowconn of the live database); the same before and after."""
    def state():
        with psycopg.connect(pg_dsn, autocommit=True) as conn:
            dbs = [r[0] for r in conn.execute("SELECT datname FROM pg_database ORDER BY 1").fetchall()]
            allow = conn.execute("SELECT datallowconn FROM pg_database WHERE datname = %s", (LIVE,)).fetchone()[0]
        return dbs, allow
    return state


def _files(path):
    return sorted((p.name, p.stat().st_size) for p in path.iterdir())


def _clean(result, stack_env):
    assert "Traceback" not in result["_raw"] and stack_env["POSTGRES_PASSWORD"] not in result["_raw"]
    return result


BAD_BACKUPS = {
    "dot-dot": ("../../etc/passwd", "'..' is not allowed"),
    "absolute": ("/etc/passwd", "outside the backup directory"),
    # a real backup's file name, but in another directory: never silently taken from the backup directory
    "elsewhere": ("/tmp/elsewhere/{name}.dump", "outside the backup directory"),
    "missing": ("equipment_marketplace-20200101T000000Z", "not found"),
}


@pytest.mark.parametrize("case", sorted(BAD_BACKUPS))
def test_backup_catalog_refuses_a_bad_backup_name(backup_dir, stack_env, case):
    path, name = backup_dir
    given, expect = BAD_BACKUPS[case]
    given = given.format(name=name)
    before = _files(path)
    r = _clean(run_module("backup_catalog", {"action": "verify", "backup_dir": str(path), "name": given,
                                             "database": LIVE}), stack_env)
    assert r["ok"] is False and r["selected"] is None, r
    assert expect in r["problem"] and r["checks"][0]["status"] == "critical"
    assert _files(path) == before


@pytest.mark.parametrize("case", sorted(BAD_BACKUPS))
def test_backup_restore_refuses_a_bad_backup_name(backup_dir, pg_params, stack_env, real_state, case):
    path, name = backup_dir
    given, expect = BAD_BACKUPS[case]
    before = real_state()
    r = _clean(run_module("backup_restore", {**pg_params, "login_db": "postgres", "action": "restore",
                                             "backup_dir": str(path), "name": given.format(name=name),
                                             "target": "em_badinput_" + uuid.uuid4().hex[:8]}), stack_env)
    assert r.get("failed") is True
    assert expect in r["msg"], r["msg"]
    assert real_state() == before


BAD_TARGETS = {
    "live": (LIVE, "protected"),
    "postgres": ("postgres", "protected"),
    "template1": ("template1", "protected"),
    "upper case": ("Equipment_Marketplace_Copy", "not a database name"),
    "64 characters": ("e" * 64, "not a database name"),
}


@pytest.mark.parametrize("case", sorted(BAD_TARGETS))
def test_backup_restore_refuses_a_bad_restore_target(backup_dir, pg_params, stack_env, real_state, case):
    path, name = backup_dir
    target, expect = BAD_TARGETS[case]
    before = real_state()
    r = _clean(run_module("backup_restore", {**pg_params, "login_db": "postgres", "action": "restore",
                                             "backup_dir": str(path), "name": name, "target": target,
                                             "protect": [LIVE]}), stack_env)
    assert r.get("failed") is True and expect in r["msg"] and "nothing was changed" in r["msg"], r["msg"]
    assert real_state() == before


@pytest.mark.parametrize("case", sorted(BAD_TARGETS))
def test_backup_restore_refuses_to_drop_a_bad_name(pg_params, stack_env, real_state, case):
    target, expect = BAD_TARGETS[case]
    before = real_state()
    r = _clean(run_module("backup_restore", {**pg_params, "login_db": "postgres", "action": "drop", "target": target,
                                             "protect": [LIVE]}), stack_env)
    assert r.get("failed") is True and ("protected" in r["msg"] or expect in r["msg"]), r["msg"]
    assert real_state() == before


def test_a_64_character_name_never_reaches_the_63_character_database(pg_dsn, pg_params, stack_env, real_state):
    """PostgreSQL cuts identifiers to 63 bytes: dropping '<63 chars>x' would drop '<63 chars>'. Refused."""
    name63 = ("em_badinput_" + uuid.uuid4().hex)[:12] + "t" * 51
    assert len(name63) == 63
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name63)))
    try:
        before = real_state()
        for args in ({"action": "drop", "target": name63 + "x"},
                     {"action": "swap", "database": LIVE, "target": name63 + "x", "replaced_name": "em_badinput_old"}):
            r = _clean(run_module("backup_restore", {**pg_params, "login_db": "postgres", **args}), stack_env)
            assert r.get("failed") is True and "at most 63 characters" in r["msg"], r["msg"]
            assert real_state() == before and name63 in before[0]
    finally:
        with psycopg.connect(pg_dsn, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name63)))
