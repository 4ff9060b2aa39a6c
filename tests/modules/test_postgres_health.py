"""postgres_health against the real reference PostgreSQL: every condition is caused for real.

Sessions opened here carry an application_name with a per-run tag; a finaliser terminates any that are left.
Lock and "extension missing" scenarios run in a scratch database created for this module (and dropped after),
so nothing in equipment_marketplace is locked or changed.
"""
from __future__ import annotations

import socket
import uuid

import psycopg
import pytest

from tests.helpers.modules import assert_return_documented, run_module
from tests.helpers.pg_sessions import poll, scratch_dsn_with_lock_table

TAG = "em-test-pghealth-" + uuid.uuid4().hex[:8]
STATUSES = {"ok", "warning", "critical", "unknown"}


@pytest.fixture(scope="module")
def pg_tag():
    return TAG


@pytest.fixture(scope="module")
def scratch_dsn(pg_dsn, scratch_db):
    return scratch_dsn_with_lock_table(pg_dsn, scratch_db)


def activity(admin_conn, pid):
    rows = admin_conn.execute("SELECT state, wait_event_type FROM pg_stat_activity WHERE pid = %s", (pid,)).fetchall()
    return rows[0] if rows else None


def assert_check_shape(result):
    for name, chk in result["checks"].items():
        assert set(chk) == {"name", "status", "value", "threshold", "message"}, name
        assert chk["name"] == name
        assert chk["status"] in STATUSES, chk
        assert chk["message"]


def test_full_gather_reports_every_section(pg_params):
    result = run_module("postgres_health", pg_params)
    assert not result.get("failed"), result.get("msg")
    assert result["changed"] is False
    assert result["available"] is True and result["reason"] is None
    assert result["server"]["version_num"] >= 150000
    assert result["server"]["uptime_seconds"] > 0
    assert set(result["checks"]) == {"liveness", "connections", "long_queries", "long_transactions",
                                     "idle_in_transaction", "blocking", "slow_queries", "cache_hit_ratio",
                                     "stale_analyze", "dead_tuples", "wraparound", "database_size"}
    assert_check_shape(result)
    assert "section_errors" not in result, result.get("section_errors")
    conns = result["connections"]
    assert conns["usable"] == conns["max_connections"] - conns["superuser_reserved_connections"]
    assert conns["pct"] == round(100.0 * conns["client_backends"] / conns["usable"], 2)
    assert sum(conns["by_state"].values()) == conns["client_backends"]
    assert result["checks"]["connections"]["threshold"] == {"warning": 80.0, "critical": 95.0}
    # the module's own backend is never a long query or transaction
    own = result["server"]["pid"]
    assert own not in [q["pid"] for q in result["long_queries"] + result["long_transactions"]]
    names = {d["name"] for d in result["databases"]}
    assert pg_params["login_db"] in names
    assert all(d["size_bytes"] > 0 for d in result["databases"] if d["name"] == pg_params["login_db"])
    assert 0 <= result["cache"]["hit_ratio_pct"] <= 100
    assert result["maintenance"]["wraparound"][0]["xid_age"] >= 0
    assert result["status"] in STATUSES
    assert pg_params["login_password"] not in result["_raw"]
    assert_return_documented("postgres_health", result)


def test_sections_are_selectable_and_check_mode_works(pg_params):
    result = run_module("postgres_health", {**pg_params, "sections": ["connections"]}, check_mode=True)
    assert result["available"] is True and result["changed"] is False
    assert result["sections"] == ["liveness", "connections"]
    assert set(result["checks"]) == {"liveness", "connections"}
    for absent in ("long_queries", "blocking", "slow_queries", "cache", "maintenance", "databases"):
        assert absent not in result
    assert_return_documented("postgres_health", result)


def test_blocking_pair_reported_with_both_pids(pg_params, scratch_db, scratch_dsn, sessions, admin_conn):
    blocker = sessions.open(scratch_dsn, "s-blocker", autocommit=False)
    blocker.execute("SELECT v FROM locks WHERE id = 1 FOR UPDATE")  # now idle in transaction, holding the row lock
    waiter = sessions.open(scratch_dsn, "s-waiter")
    bpid, wpid = blocker.info.backend_pid, waiter.info.backend_pid
    job = sessions.background(waiter, "UPDATE locks SET v = v + 1 WHERE id = 1")
    poll(lambda: (activity(admin_conn, wpid) or (None, None))[1] == "Lock", what="the waiter to wait on the lock")

    args = {**pg_params, "sections": ["blocking", "transactions"], "blocking_warning_seconds": 0,
            "idle_in_transaction_warning_seconds": 0, "long_transaction_warning_seconds": 0}

    def pair_seen():
        res = run_module("postgres_health", args)
        pairs = [p for p in res["blocking"] if p["blocked_pid"] == wpid and p["blocking_pid"] == bpid]
        return (res, pairs[0]) if pairs else None

    result, pair = poll(pair_seen, what="the blocking pair in postgres_health")
    assert pair["blocked_user"] == pg_params["login_user"]
    assert pair["blocked_database"] == scratch_db
    assert "UPDATE locks" in pair["blocked_query"]
    assert pair["blocked_wait_seconds"] >= 0
    assert pair["blocking_user"] == pg_params["login_user"]
    assert pair["blocking_state"] == "idle in transaction"
    assert "FOR UPDATE" in pair["blocking_query"]
    assert pair["blocking_backend_type"] == "client backend"
    assert bpid in result["blockers"] and wpid not in result["blockers"]
    assert result["checks"]["blocking"]["status"] in ("warning", "critical")
    assert str(bpid) in result["checks"]["blocking"]["message"]
    # the blocker is idle in transaction, and both sit in an open transaction
    assert bpid in [s["pid"] for s in result["idle_in_transaction"]]
    assert {bpid, wpid} <= {s["pid"] for s in result["long_transactions"]}
    assert result["checks"]["idle_in_transaction"]["status"] != "ok"
    assert_check_shape(result)
    assert_return_documented("postgres_health", result)
    assert not job["done"]  # the waiter is still waiting: health changed nothing

    blocker.rollback()
    job["thread"].join(timeout=10)
    assert job["done"] and job["error"] is None


def test_long_running_query_reported(pg_params, scratch_dsn, sessions, admin_conn):
    sleeper = sessions.open(scratch_dsn, "s-sleeper")
    spid = sleeper.info.backend_pid
    job = sessions.background(sleeper, "SELECT pg_sleep(60)")
    poll(lambda: (activity(admin_conn, spid) or (None,))[0] == "active", what="the sleeper to be active")
    args = {**pg_params, "sections": ["long_queries"], "long_query_warning_seconds": 0.5,
            "long_query_critical_seconds": 3600}

    def reported():
        res = run_module("postgres_health", args)
        rows = [q for q in res["long_queries"] if q["pid"] == spid]
        return (res, rows[0]) if rows else None

    result, row = poll(reported, what="the sleeping query as long-running")
    assert row["duration_seconds"] >= 0.5
    assert "pg_sleep" in row["query"]
    assert row["state"] == "active" and row["application_name"] == f"{TAG}-s-sleeper"
    chk = result["checks"]["long_queries"]
    assert chk["status"] == "warning" and chk["threshold"] == {"warning": 0.5, "critical": 3600.0}
    assert chk["value"] >= 0.5
    assert result["server"]["pid"] not in [q["pid"] for q in result["long_queries"]]
    assert_return_documented("postgres_health", result)
    # with the default threshold (300 s) the same query is not reported
    quiet = run_module("postgres_health", {**pg_params, "sections": ["long_queries"]})
    assert spid not in [q["pid"] for q in quiet["long_queries"]]
    assert not job["done"]


def test_extra_sessions_turn_connection_check_to_warning(pg_params, scratch_dsn, sessions):
    args = {**pg_params, "sections": ["connections"]}
    base = run_module("postgres_health", args)["connections"]
    usable, before = base["usable"], base["client_backends"]
    # warn a few connections above what is open now; 8 extra sessions push usage past it
    warn_pct = round(100.0 * (before + 3) / usable, 2)
    calm = run_module("postgres_health", {**args, "connections_warning_pct": warn_pct,
                                          "connections_critical_pct": 100})
    assert calm["checks"]["connections"]["status"] == "ok", calm["checks"]["connections"]
    for i in range(8):
        sessions.open(scratch_dsn, f"s-extra{i}")
    busy = run_module("postgres_health", {**args, "connections_warning_pct": warn_pct,
                                          "connections_critical_pct": 100})
    chk = busy["checks"]["connections"]
    assert chk["status"] == "warning", chk
    assert chk["threshold"] == {"warning": warn_pct, "critical": 100.0}
    assert busy["connections"]["client_backends"] >= before + 8
    assert busy["connections"]["by_state"].get("idle", 0) >= 8
    assert "client backends" in chk["message"]
    assert_return_documented("postgres_health", busy)


def test_slow_queries_when_pg_stat_statements_enabled(pg_params, pg_dsn):
    with psycopg.connect(pg_dsn, autocommit=True, application_name=TAG + "-slow") as conn:
        for _ in range(2):
            conn.execute("SELECT pg_sleep(0.12)")
    result = run_module("postgres_health", {**pg_params, "sections": ["slow_queries"], "slow_query_min_calls": 2,
                                            "slow_query_top": 1000, "slow_query_mean_warning_ms": 100,
                                            "slow_query_mean_critical_ms": 100000})
    info = result["slow_queries"]
    assert info["enabled"] is True and info["installed"] and info["preloaded"] is True and info["reason"] is None
    means = [q["mean_exec_time_ms"] for q in info["by_mean"]]
    totals = [q["total_exec_time_ms"] for q in info["by_total"]]
    assert means == sorted(means, reverse=True) and totals == sorted(totals, reverse=True)
    assert all(q["calls"] >= 2 for q in info["by_mean"] + info["by_total"])
    sleeps = [q for q in info["by_mean"] if "pg_sleep" in q["query"] and q["mean_exec_time_ms"] >= 100]
    assert sleeps, info["by_mean"]
    chk = result["checks"]["slow_queries"]
    assert chk["status"] == "warning" and chk["value"] >= 100
    assert_return_documented("postgres_health", result)


def test_slow_queries_when_extension_missing(pg_params, scratch_db, scratch_dsn):
    with psycopg.connect(scratch_dsn, autocommit=True) as conn:
        assert conn.execute("SELECT count(*) FROM pg_extension WHERE extname = 'pg_stat_statements'").fetchone()[0] == 0
    result = run_module("postgres_health", {**pg_params, "login_db": scratch_db, "sections": ["slow_queries"]})
    assert result["available"] is True
    info = result["slow_queries"]
    assert info["enabled"] is False and info["installed"] is None
    assert info["preloaded"] is True  # preloaded in the server, only the extension is missing in this database
    assert "CREATE EXTENSION pg_stat_statements" in info["reason"] and scratch_db in info["reason"]
    assert info["by_mean"] == [] and info["by_total"] == []
    chk = result["checks"]["slow_queries"]
    assert chk["status"] == "warning" and "not enabled" in chk["message"]
    assert_return_documented("postgres_health", result)


def test_wrong_password_is_a_result_not_a_failure(pg_params):
    wrong = "Wr0ng-" + uuid.uuid4().hex
    result = run_module("postgres_health", {**pg_params, "login_password": wrong})
    assert not result.get("failed")
    assert result["available"] is False
    assert "password authentication failed" in result["reason"]
    assert result["liveness"]["category"] == "authentication_failed"
    assert result["liveness"]["ping"] == "accepting"  # what pg_isready would have said
    assert result["status"] == "critical" and result["checks"]["liveness"]["status"] == "critical"
    assert wrong not in result["_raw"] and pg_params["login_password"] not in result["_raw"]
    assert_return_documented("postgres_health", result)


def test_unreachable_server_is_a_result(pg_params):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    result = run_module("postgres_health", {**pg_params, "login_port": port, "connect_timeout": 2})
    assert not result.get("failed")
    assert result["available"] is False and result["liveness"]["category"] == "unreachable"
    assert "Connection refused" in result["reason"]
    assert pg_params["login_password"] not in result["_raw"]


def test_password_from_pgpassword_env(pg_params, monkeypatch):
    monkeypatch.setenv("PGPASSWORD", pg_params["login_password"])
    args = {k: v for k, v in pg_params.items() if k != "login_password"}
    result = run_module("postgres_health", {**args, "sections": ["connections"]})
    assert result["available"] is True
    assert pg_params["login_password"] not in result["_raw"]


@pytest.mark.parametrize("extra, fragment", [
    ({"sections": ["connections", "bogus"]}, "value of sections must be one or more of: liveness"),
    ({"long_query_warning_seconds": -1}, "must not be negative: long_query_warning_seconds"),
    ({"connections_warning_pct": 150}, "between 0 and 100: connections_warning_pct"),
    ({"statement_timeout": -5}, "must not be negative: statement_timeout"),
    ({"slow_query_top": "many"}, "slow_query_top"),
])
def test_bad_input_fails_clearly(pg_params, extra, fragment):
    result = run_module("postgres_health", {**pg_params, **extra})
    assert result.get("failed") is True
    assert fragment in result["msg"]
    assert pg_params["login_password"] not in result["_raw"]
