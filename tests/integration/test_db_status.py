"""db-status.yml against the real PostgreSQL: sizes, connections, active and long-running queries, a real blocking
pair (advisory locks, no table touched) and pg_stat_statements with the PG 13+ columns."""
from __future__ import annotations

import threading
import time
import uuid

import psycopg
import pytest

from tests.helpers import faults
from tests.helpers.playbooks import assert_no_traceback, check_by_name, raw_artifacts, run


@pytest.fixture()
def blocking_pair(pg_dsn):
    """Session A holds an advisory lock and sleeps; session B waits for the same lock."""
    key = uuid.uuid4().int % 2_000_000_000
    holder = psycopg.connect(pg_dsn, autocommit=True)
    holder.execute("SELECT pg_advisory_lock(%s)", (key,))
    holder_pid = holder.info.backend_pid
    waiter = psycopg.connect(pg_dsn, autocommit=True)
    waiter_pid = waiter.info.backend_pid
    errors: list[Exception] = []

    def wait_for_lock():
        try:
            waiter.execute("SET application_name = 'em-test-waiter'")
            waiter.execute("SELECT pg_advisory_lock(%s), pg_sleep(0)", (key,))
            waiter.execute("SELECT pg_advisory_unlock(%s)", (key,))
        except psycopg.Error as exc:  # pragma: no cover - only when the test went wrong
            errors.append(exc)

    thread = threading.Thread(target=wait_for_lock, daemon=True)
    thread.start()
    time.sleep(1.5)  # the waiter is in the lock queue now
    try:
        yield holder_pid, waiter_pid
    finally:
        holder.execute("SELECT pg_advisory_unlock(%s)", (key,))
        thread.join(10)
        holder.close()
        waiter.close()


@pytest.fixture()
def long_query(pg_dsn):
    """An active query running for 30 s (cancelled at the end)."""
    conn = psycopg.connect(pg_dsn, autocommit=True)
    pid = conn.info.backend_pid
    thread = threading.Thread(target=lambda: _swallow(conn, "SELECT pg_sleep(30) /* em-test-long-query */"),
                              daemon=True)
    thread.start()
    time.sleep(2.5)
    try:
        yield pid
    finally:
        with psycopg.connect(pg_dsn, autocommit=True) as admin:
            admin.execute("SELECT pg_cancel_backend(%s)", (pid,))
        thread.join(10)
        conn.close()


def _swallow(conn, sql):
    try:
        conn.execute(sql)
    except psycopg.Error:
        pass


def test_db_status_reports_size_connections_queries_locks_and_slow_queries(stack_env, blocking_pair, long_query):
    faults.wait_healthy("postgres")
    holder_pid, waiter_pid = blocking_pair
    result = run("db-status", extravars={"database_long_query_warning_s": 2})
    assert_no_traceback(result)
    assert result.rc == 0, result.stdout[-3000:]
    report = result.report
    db = report["database"]
    assert check_by_name(report, "postgres_liveness")["status"] == "ok"
    conn = check_by_name(report, "postgres_connections")
    assert conn["threshold"]["warning"] == 80 and conn["value"] > 0
    assert db["connections"]["usable"] == db["connections"]["max_connections"] - \
        db["connections"]["superuser_reserved_connections"] - db["connections"].get("reserved_connections", 0)
    sizes = {d["name"]: d for d in db["databases"]}
    assert sizes[stack_env["POSTGRES_DB"]]["size_bytes"] > 1_000_000
    # The blocking pair, with both pids.
    pairs = [(p["blocked_pid"], p["blocking_pid"]) for p in db["blocking"]]
    assert (waiter_pid, holder_pid) in pairs, db["blocking"]
    assert holder_pid in db["blockers"]
    # The long query, as long-running (threshold lowered to 2 s) and among the active ones.
    assert long_query in [q["pid"] for q in db["long_queries"]]
    assert long_query in [q["pid"] for q in db["active_queries"]]
    assert check_by_name(report, "postgres_long_queries")["status"] in ("warning", "critical")
    # Slow queries from pg_stat_statements with the PG 13+ column names.
    slow = db["slow_queries"]
    assert slow["enabled"] is True, slow
    assert slow["by_mean"] and {"mean_exec_time_ms", "total_exec_time_ms", "calls", "query"} <= set(slow["by_mean"][0])
    assert "slow:" in result.stdout and "client backends of" in report["summary"]
    assert stack_env["POSTGRES_PASSWORD"] not in raw_artifacts(result)


def test_db_status_in_check_mode_still_gathers(stack_env):
    result = run("db-status", check=True)
    assert result.rc == 0
    assert result.report["check_mode"] is True
    assert check_by_name(result.report, "postgres_liveness")["status"] == "ok"
    assert result.report["database"]["databases"]


def test_db_status_unreachable_is_reported_not_a_crash(stack_env):
    result = run("db-status", extravars={"marketplace_db_port": 9})
    assert_no_traceback(result)
    assert result.rc != 0
    live = check_by_name(result.report, "postgres_liveness")
    assert live["status"] == "critical" and live["severity"] == "P0"
    assert result.report["severity"] == "P0" and "PostgreSQL unavailable" in result.report["summary"]
