"""backup_restore action=swap when its admin session is killed, against the real reference PostgreSQL.

Each test makes three scratch databases of its own (live, new, and the name the live one gets), never the
application database. The admin session of the module is really terminated (pg_terminate_backend from another
session) - either while a statement of the swap waits on a lock the test holds (no help from the module), or
at each named step of the swap (the module's ``_at`` marks the step; the test kills the session there).
Afterwards the real state is checked: the database named ``live`` accepts connections (datallowconn, and a
real connect as the application user), the module failed naming the step and said whether the rename was
committed, no traceback, no database left behind.
"""
from __future__ import annotations

import contextlib
import io
import json
import threading
import uuid

import psycopg
import pytest
from ansible.module_utils.testing import patch_module_args
from psycopg import sql
from psycopg.conninfo import make_conninfo

from tests.helpers.modules import assert_return_documented, load_module
from tests.helpers.pg_sessions import poll

STEPS = ["copy_grants", "disallow_connections", "terminate_sessions", "rename", "allow_connections", "comment"]
COMMITTED = {"allow_connections", "comment"}  # steps after the rename's commit
APP_NAME = "ansible-marketplace-restore"


def _run(args: dict, at=None) -> dict:
    """Run backup_restore in-process; ``at(restorer, step)`` is called at each step the swap marks."""
    mod = load_module("backup_restore")
    if at is not None:
        original = mod.Restorer._at

        def hooked(self, step):
            original(self, step)
            at(self, step)

        mod.Restorer._at = hooked
    out = io.StringIO()
    with patch_module_args(args), contextlib.redirect_stdout(out):
        try:
            mod.main()
        except SystemExit:
            pass
    raw = out.getvalue()
    result = json.loads(raw)  # a traceback instead of a result fails here
    result["_raw"] = raw
    return result


@pytest.fixture()
def dbs(pg_dsn, stack_env):
    """(admin connection, names) - live, new and replaced scratch names; live grants CONNECT to the app user
    only (so the swap has a grant to copy), each database has a ``marker`` table saying which it is."""
    tag = uuid.uuid4().hex[:8]
    names = {"live": f"em_swaptest_{tag}_live", "new": f"em_swaptest_{tag}_new", "replaced": f"em_swaptest_{tag}_old"}
    admin = psycopg.connect(pg_dsn, autocommit=True, application_name=f"em-swaptest-{tag}-admin")
    for key in ("live", "new"):
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(names[key])))
        with psycopg.connect(make_conninfo(pg_dsn, dbname=names[key]), autocommit=True) as c:
            c.execute("CREATE TABLE marker (v text)")
            c.execute("INSERT INTO marker VALUES (%s)", (key,))
            c.execute(sql.SQL("GRANT SELECT ON marker TO {}").format(sql.Identifier(stack_env["APP_DB_USER"])))
    admin.execute(sql.SQL("REVOKE CONNECT ON DATABASE {} FROM PUBLIC").format(sql.Identifier(names["live"])))
    admin.execute(sql.SQL("GRANT CONNECT ON DATABASE {} TO {}").format(sql.Identifier(names["live"]),
                                                                      sql.Identifier(stack_env["APP_DB_USER"])))
    try:
        yield admin, names
    finally:
        for name in names.values():
            with contextlib.suppress(psycopg.Error):
                admin.execute(sql.SQL("ALTER DATABASE {} WITH ALLOW_CONNECTIONS true").format(sql.Identifier(name)))
            admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        admin.close()


def _swap_args(pg_params, names, **extra):
    return {**pg_params, "login_db": "postgres", "action": "swap", "database": names["live"],
            "target": names["new"], "replaced_name": names["replaced"],
            "comment": "previous live database of the swap test", **extra}


def _state(admin, names):
    rows = admin.execute("SELECT datname, datallowconn FROM pg_database WHERE datname LIKE %s",
                         (names["live"].rsplit("_", 1)[0] + "_%",)).fetchall()
    return dict(rows)


def _marker_as_app(stack_env, dbname) -> str:
    """A real connection as the application user; returns which database answered (live / new)."""
    dsn = make_conninfo(host=stack_env["BIND_ADDRESS"], port=stack_env["POSTGRES_PORT"], dbname=dbname,
                        user=stack_env["APP_DB_USER"], password=stack_env["APP_DB_PASSWORD"], connect_timeout=5)
    with psycopg.connect(dsn) as conn:
        return conn.execute("SELECT v FROM marker").fetchone()[0]


def _assert_failed_cleanly(result, step, stack_env):
    assert result.get("failed") is True, result.get("msg")
    assert result["step"] == step
    assert f"swap failed at step {step}" in result["msg"]
    assert "Traceback" not in result["_raw"] and stack_env["POSTGRES_PASSWORD"] not in result["_raw"]
    assert_return_documented("backup_restore", result)


def _assert_not_renamed(result, admin, names, stack_env):
    assert result["swapped"] is False and result["live_allows_connections"] is True
    assert "nothing was renamed" in result["msg"] and "accepts connections" in result["msg"]
    assert _state(admin, names) == {names["live"]: True, names["new"]: True}
    assert _marker_as_app(stack_env, names["live"]) == "live"
    conn_check = next(c for c in result["checks"] if c["name"] == "database_connections")
    assert conn_check["status"] == "ok" and conn_check["value"] is True


@pytest.mark.parametrize("step", STEPS)
def test_killing_the_admin_session_at_each_step_leaves_the_live_database_open(dbs, pg_params, stack_env, step):
    admin, names = dbs
    killed = []

    def kill(restorer, at):
        if at == step and not killed:
            pid = restorer._admin.info.backend_pid
            assert admin.execute("SELECT pg_terminate_backend(%s, 5000)", (pid,)).fetchone()[0]
            killed.append(pid)

    result = _run(_swap_args(pg_params, names), at=kill)
    assert killed, f"the swap never reached step {step}"
    _assert_failed_cleanly(result, step, stack_env)
    if step in COMMITTED:
        # the rename was committed before the kill: the fresh connection finished the swap and says so
        assert result["swapped"] is True
        assert result["live_allows_connections"] is True and result["replaced_allows_connections"] is True
        assert "the rename was committed" in result["msg"]
        assert _state(admin, names) == {names["live"]: True, names["replaced"]: True}
        assert _marker_as_app(stack_env, names["live"]) == "new"
        comment = admin.execute("SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = %s",
                                (names["replaced"],)).fetchone()[0]
        assert comment == "previous live database of the swap test"
    else:
        _assert_not_renamed(result, admin, names, stack_env)


def _kill_when_waiting(admin, query_prefix: str, release) -> dict:
    """In a thread: wait until the module's admin session waits on a lock in a statement starting with
    ``query_prefix``, terminate it, then ``release()`` the test's lock."""
    box: dict = {}

    def waiter():
        try:
            pid = poll(lambda: (admin.execute(
                "SELECT pid FROM pg_stat_activity WHERE application_name = %s AND wait_event_type = 'Lock' "
                "AND query LIKE %s", (APP_NAME, query_prefix + "%")).fetchone() or [None])[0],
                timeout=20, what="the swap to wait on the test's lock")
            box["killed"] = admin.execute("SELECT pg_terminate_backend(%s, 5000)", (pid,)).fetchone()[0]
        except Exception as exc:  # reported by the test
            box["error"] = exc
        finally:
            release()

    thread = threading.Thread(target=waiter, daemon=True)
    thread.start()
    box["thread"] = thread
    return box


def test_killed_while_renaming_the_live_database_is_open_again(dbs, pg_dsn, pg_params, stack_env):
    """The rename waits on a lock of the live database (COMMENT in an open transaction); the admin session is
    terminated while it waits - after ALTER DATABASE ... ALLOW_CONNECTIONS false was committed."""
    admin, names = dbs
    blocker = psycopg.connect(pg_dsn, autocommit=False)
    blocker.execute(sql.SQL("COMMENT ON DATABASE {} IS 'held by the swap test'").format(sql.Identifier(names["live"])))
    box = _kill_when_waiting(admin, "ALTER DATABASE", blocker.rollback)
    try:
        result = _run(_swap_args(pg_params, names))
    finally:
        box["thread"].join(30)
        blocker.close()
    assert "error" not in box and box.get("killed") is True
    _assert_failed_cleanly(result, "rename", stack_env)
    _assert_not_renamed(result, admin, names, stack_env)


def test_killed_while_disallowing_connections_reports_instead_of_crashing(dbs, pg_dsn, pg_params, stack_env):
    """ALTER DATABASE ... ALLOW_CONNECTIONS false waits on the test's uncommitted update of the live database's
    row; the admin session is terminated while it waits."""
    admin, names = dbs
    blocker = psycopg.connect(pg_dsn, autocommit=False)
    blocker.execute(sql.SQL("ALTER DATABASE {} WITH CONNECTION LIMIT -1").format(sql.Identifier(names["live"])))
    box = _kill_when_waiting(admin, "ALTER DATABASE", blocker.rollback)
    try:
        result = _run(_swap_args(pg_params, names))
    finally:
        box["thread"].join(30)
        blocker.close()
    assert "error" not in box and box.get("killed") is True
    _assert_failed_cleanly(result, "disallow_connections", stack_env)
    _assert_not_renamed(result, admin, names, stack_env)
