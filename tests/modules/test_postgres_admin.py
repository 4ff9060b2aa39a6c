"""postgres_admin against the real reference PostgreSQL: analyze, cancel and terminate, each caused for real.

Backends are opened in a scratch database made for this module (dropped after) and carry an application_name
with a per-run tag; filters in these tests always include that tag (or the test's pids), so nothing outside
the test is ever signalled. A finaliser terminates any tagged session that is left.
"""
from __future__ import annotations

import uuid

import psycopg
import pytest

from tests.helpers.modules import assert_return_documented, run_module
from tests.helpers.pg_sessions import poll, scratch_dsn_with_lock_table

TAG = "em-test-pgadmin-" + uuid.uuid4().hex[:8]


@pytest.fixture(scope="module")
def pg_tag():
    return TAG


@pytest.fixture(scope="module")
def scratch_dsn(pg_dsn, scratch_db):
    return scratch_dsn_with_lock_table(pg_dsn, scratch_db,
                                      'CREATE SCHEMA "Ops"', 'CREATE TABLE "Ops"."Mixed Case" (id int)',
                                      'INSERT INTO "Ops"."Mixed Case" SELECT generate_series(1, 100)')


@pytest.fixture()
def scratch_params(pg_params, scratch_db):
    return {**pg_params, "login_db": scratch_db}


def activity(admin_conn, pid):
    """(state, wait_event_type, xact_start) of a backend, or None when it is gone."""
    rows = admin_conn.execute("SELECT state, wait_event_type, xact_start FROM pg_stat_activity WHERE pid = %s",
                              (pid,)).fetchall()
    return rows[0] if rows else None


@pytest.fixture()
def lock_pair(scratch_dsn, sessions, admin_conn):
    """A blocker idle in transaction holding a row lock, and a waiter blocked on it (in a thread)."""
    blocker = sessions.open(scratch_dsn, "s-blocker", autocommit=False)
    blocker.execute("SELECT v FROM locks WHERE id = 1 FOR UPDATE")
    waiter = sessions.open(scratch_dsn, "s-waiter")
    job = sessions.background(waiter, "UPDATE locks SET v = v + 1 WHERE id = 1 RETURNING v")
    bpid, wpid = blocker.info.backend_pid, waiter.info.backend_pid
    poll(lambda: (activity(admin_conn, wpid) or (None, None))[1] == "Lock", what="the waiter to wait on the lock")
    assert activity(admin_conn, bpid)[0] == "idle in transaction"
    return {"blocker": blocker, "bpid": bpid, "wpid": wpid, "job": job}


def test_cancel_idle_in_transaction_blocker_has_no_effect_then_terminate_frees_waiter(
        scratch_params, lock_pair, admin_conn):
    bpid, wpid, job = lock_pair["bpid"], lock_pair["wpid"], lock_pair["job"]
    xact_before = activity(admin_conn, bpid)[2]

    # check mode: lists the target, signals nothing
    planned = run_module("postgres_admin", {**scratch_params, "action": "terminate", "pids": [bpid]}, check_mode=True)
    assert not planned.get("failed"), planned.get("msg")
    assert planned["changed"] is True
    assert [t["pid"] for t in planned["targets"]] == [bpid]
    assert planned["targets"][0]["state"] == "idle in transaction"
    assert planned["results"][0]["outcome"] == "planned" and planned["done"] == []
    assert "would terminate 1 backend(s): %d" % bpid in planned["msg"]
    assert_return_documented("postgres_admin", planned)
    assert activity(admin_conn, bpid)[0] == "idle in transaction"
    assert activity(admin_conn, wpid)[1] == "Lock" and not job["done"]

    # check mode already warns that a cancel would not help this backend
    foreseen = run_module("postgres_admin", {**scratch_params, "action": "cancel", "pids": [bpid]}, check_mode=True)
    assert "would have no effect" in foreseen["results"][0]["detail"]

    # cancel on the idle-in-transaction blocker: pg_cancel_backend says true, nothing happens
    cancelled = run_module("postgres_admin", {**scratch_params, "action": "cancel", "pids": [bpid],
                                              "cancel_wait": 300})
    assert not cancelled.get("failed"), cancelled.get("msg")
    assert cancelled["changed"] is False
    assert cancelled["no_effect"] == [bpid] and cancelled["done"] == [] and cancelled["failed"] == []
    res = cancelled["results"][0]
    assert res["outcome"] == "no_effect" and res["signalled"] is True
    assert res["state_before"] == res["state_after"] == "idle in transaction"
    assert "idle in transaction" in res["detail"] and "terminate" in res["detail"]
    assert "1 with no effect" in cancelled["msg"]
    assert_return_documented("postgres_admin", cancelled)
    state, _, xact_after = activity(admin_conn, bpid)
    assert state == "idle in transaction" and xact_after == xact_before  # same transaction, locks kept
    assert activity(admin_conn, wpid)[1] == "Lock" and not job["done"]

    # terminate ends the blocker and frees the waiter
    ended = run_module("postgres_admin", {**scratch_params, "action": "terminate", "pids": [bpid]})
    assert not ended.get("failed"), ended.get("msg")
    assert ended["changed"] is True and ended["done"] == [bpid] and ended["no_effect"] == []
    assert ended["results"][0]["outcome"] == "terminated" and ended["results"][0]["signalled"] is True
    assert_return_documented("postgres_admin", ended)
    assert activity(admin_conn, bpid) is None
    job["thread"].join(timeout=10)
    assert job["done"] and job["error"] is None, job["error"]
    assert activity(admin_conn, wpid)[0] == "idle"


def test_terminate_blockers_by_filter(scratch_params, lock_pair, admin_conn):
    bpid, wpid, job = lock_pair["bpid"], lock_pair["wpid"], lock_pair["job"]
    args = {**scratch_params, "action": "terminate", "blockers_only": True,
            "application_names": [f"{TAG}-s-blocker", f"{TAG}-s-waiter"]}
    planned = run_module("postgres_admin", args, check_mode=True)
    assert [t["pid"] for t in planned["targets"]] == [bpid]  # the waiter blocks nobody
    ended = run_module("postgres_admin", args)
    assert ended["done"] == [bpid]
    job["thread"].join(timeout=10)
    assert job["done"] and job["error"] is None
    assert activity(admin_conn, wpid) is not None


def test_cancel_active_query_by_filter(scratch_params, scratch_dsn, sessions, admin_conn):
    marker = "em_marker_" + uuid.uuid4().hex[:8]
    sleeper = sessions.open(scratch_dsn, "s-sleeper")
    bystander = sessions.open(scratch_dsn, "s-bystander")
    spid = sleeper.info.backend_pid
    job = sessions.background(sleeper, f"SELECT pg_sleep(60) AS {marker}")
    poll(lambda: (activity(admin_conn, spid) or (None,))[0] == "active", what="the sleeper to be active")
    args = {**scratch_params, "action": "cancel", "states": ["active"], "query_pattern": marker + "$",
            "older_than": 0.2, "age_of": "query", "cancel_wait": 3000}
    poll(lambda: run_module("postgres_admin", args, check_mode=True)["targets"], what="the sleeper older than 0.2 s")

    planned = run_module("postgres_admin", args, check_mode=True)
    assert [t["pid"] for t in planned["targets"]] == [spid]
    assert marker in planned["targets"][0]["query"] and planned["targets"][0]["age_seconds"] >= 0.2
    assert activity(admin_conn, spid)[0] == "active" and not job["done"]

    result = run_module("postgres_admin", args)
    assert not result.get("failed"), result.get("msg")
    assert result["changed"] is True and result["done"] == [spid]
    assert result["results"][0]["outcome"] == "cancelled" and result["results"][0]["state_after"] == "idle"
    assert_return_documented("postgres_admin", result)
    job["thread"].join(timeout=10)
    assert isinstance(job["error"], psycopg.errors.QueryCanceled)
    assert activity(admin_conn, spid)[0] == "idle"  # cancelled, not terminated
    assert activity(admin_conn, bystander.info.backend_pid) is not None


def test_terminate_idle_sessions_by_filters_and_max_targets(scratch_params, scratch_dsn, sessions, admin_conn):
    idle = [sessions.open(scratch_dsn, "s-idle") for _ in range(3)]
    other = sessions.open(scratch_dsn, "s-other")
    pids = sorted(c.info.backend_pid for c in idle)
    args = {**scratch_params, "action": "terminate", "states": ["idle"], "application_names": [f"{TAG}-s-idle"],
            "users": [scratch_params["login_user"]], "databases": [scratch_params["login_db"]]}

    refused = run_module("postgres_admin", {**args, "max_targets": 2})
    assert refused["failed"] is True and "more than max_targets=2" in refused["msg"]
    assert all(activity(admin_conn, pid) is not None for pid in pids)

    result = run_module("postgres_admin", args)
    assert sorted(result["done"]) == pids and result["changed"] is True
    assert {r["outcome"] for r in result["results"]} == {"terminated"}
    assert all(activity(admin_conn, pid) is None for pid in pids)
    assert activity(admin_conn, other.info.backend_pid) is not None

    again = run_module("postgres_admin", args)  # idempotent: nothing left to do
    assert again["changed"] is False and again["targets"] == [] and again["done"] == []


def test_pids_that_are_not_client_backends_are_skipped(scratch_params, admin_conn):
    checkpointer = admin_conn.execute(
        "SELECT pid FROM pg_stat_activity WHERE backend_type = 'checkpointer'").fetchone()[0]
    own = admin_conn.info.backend_pid
    gone = 4194000  # above any pid this container has used
    result = run_module("postgres_admin", {**scratch_params, "action": "terminate",
                                           "pids": [checkpointer, gone], "databases": ["postgres"]})
    assert result["changed"] is False and result["targets"] == [] and result["done"] == []
    reasons = {s["pid"]: s["reason"] for s in result["skipped"]}
    assert reasons[gone] == "no such backend"
    assert reasons[checkpointer].startswith("not a client backend")
    # a pid that exists but does not match the filters is skipped, never signalled
    result = run_module("postgres_admin", {**scratch_params, "action": "terminate", "pids": [own],
                                           "application_names": ["no-such-app"]})
    assert {s["pid"]: s["reason"] for s in result["skipped"]} == {own: "does not match the filters"}
    assert activity(admin_conn, own) is not None
    assert_return_documented("postgres_admin", result)


def test_analyze_tables_and_whole_database(scratch_params, scratch_dsn):
    def last_analyze(table):
        with psycopg.connect(scratch_dsn, autocommit=True) as conn:
            return conn.execute("SELECT last_analyze FROM pg_stat_user_tables WHERE relname = %s",
                                (table,)).fetchone()[0]

    args = {**scratch_params, "action": "analyze", "tables": ["locks", '"Ops"."Mixed Case"']}
    before = last_analyze("locks")
    planned = run_module("postgres_admin", args, check_mode=True)
    assert planned["changed"] is True and planned["scope"] == "tables"
    assert planned["tables"] == ["public.locks", "Ops.Mixed Case"]
    assert "analyzed" not in planned and "would ANALYZE" in planned["msg"]
    assert last_analyze("locks") == before
    assert_return_documented("postgres_admin", planned)

    done = run_module("postgres_admin", args)
    assert not done.get("failed"), done.get("msg")
    assert done["changed"] is True
    stamps = {a["table"]: a["last_analyze"] for a in done["analyzed"]}
    assert set(stamps) == {"public.locks", "Ops.Mixed Case"} and all(stamps.values())
    assert last_analyze("locks") is not None and last_analyze("locks") != before
    assert_return_documented("postgres_admin", done)

    whole = run_module("postgres_admin", {**scratch_params, "action": "analyze"})
    assert whole["scope"] == "database" and "public.locks" in whole["tables"] and whole["changed"] is True


@pytest.mark.parametrize("extra, fragment", [
    ({"action": "terminate", "pids": ["abc"]}, "pids"),
    ({"action": "terminate", "pids": [0]}, "pids must be positive process ids"),
    ({"action": "cancel"}, "needs pids or at least one filter"),
    ({"action": "terminate", "states": ["sleeping"]}, "states"),
    ({"action": "terminate", "older_than": -1}, "must not be negative: older_than"),
    ({"action": "analyze", "pids": [123]}, "action=analyze takes only tables"),
    ({"action": "analyze", "tables": ["bad name!"]}, "malformed table name"),
    ({"action": "analyze", "tables": ["no_such_table"]}, "table(s) not found"),
    ({"action": "cancel", "tables": ["locks"], "pids": [1]}, "tables is only used with action=analyze"),
    ({"action": "cancel", "query_pattern": ""}, "query_pattern must not be empty"),
])
def test_bad_input_fails_clearly(scratch_params, extra, fragment):
    result = run_module("postgres_admin", {**scratch_params, **extra})
    assert result.get("failed") is True, result
    assert fragment in result["msg"]
    assert scratch_params["login_password"] not in result["_raw"]


def test_malformed_pattern_fails_and_changes_nothing(scratch_params, scratch_dsn, sessions, admin_conn):
    victim = sessions.open(scratch_dsn, "s-victim")
    result = run_module("postgres_admin", {**scratch_params, "action": "terminate", "query_pattern": "(unclosed",
                                           "application_names": [f"{TAG}-s-victim"]})
    assert result["failed"] is True
    assert "not a valid PostgreSQL regular expression" in result["msg"] and "nothing was signalled" in result["msg"]
    assert "(unclosed" not in result["msg"]
    assert activity(admin_conn, victim.info.backend_pid) is not None


def test_wrong_password_fails_without_leaking_it(scratch_params):
    wrong = "Wr0ng-" + uuid.uuid4().hex
    result = run_module("postgres_admin", {**scratch_params, "login_password": wrong, "action": "cancel",
                                           "pids": [1]})
    assert result["failed"] is True
    assert "could not connect to PostgreSQL (authentication_failed)" in result["msg"]
    assert wrong not in result["_raw"] and scratch_params["login_password"] not in result["_raw"]
