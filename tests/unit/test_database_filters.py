"""The database role's report pieces (roles/database/filter_plugins/database_filters.py): the db-status summary
line and the slow-query lines, from postgres_health's result. No database."""
from __future__ import annotations

import importlib.util
from pathlib import Path

_PATH = Path(__file__).resolve().parents[2] / "roles" / "database" / "filter_plugins" / "database_filters.py"
_spec = importlib.util.spec_from_file_location("database_filters", _PATH)
dbf = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(dbf)

PG = {"available": True, "server": {"version": "15.2", "uptime_seconds": 3600.7},
      "databases": [{"name": "marketplace", "size_pretty": "9 MB"}, {"name": "postgres", "size_pretty": "7 MB"}],
      "connections": {"client_backends": 4, "usable": 97, "pct": 4.1}, "long_queries": [{"pid": 1}],
      "blocking": [], "slow_queries": {"enabled": True, "by_mean": [
          {"mean_exec_time_ms": 1234.56, "calls": 7, "query": "SELECT *\n   FROM  equipment_listings"}]}}


def test_the_summary_line():
    assert dbf.database_summary(PG, [{"pid": 1}, {"pid": 2}]) == (
        "PostgreSQL 15.2 up 3600 s; marketplace 9 MB, postgres 7 MB; 4 client backends of 97 usable (4.1%);"
        " 2 active, 1 long-running, 0 blocking pair(s); slow queries: 1 listed")


def test_what_was_not_gathered_says_so():
    pg = {"available": True, "slow_queries": {"enabled": False, "reason": "pg_stat_statements is not installed"}}
    assert dbf.database_summary(pg) == (
        "PostgreSQL ? up 0 s; sizes not gathered; ? client backends of ? usable (?%); 0 active, 0 long-running,"
        " 0 blocking pair(s); slow queries unavailable: pg_stat_statements is not installed")
    assert dbf.database_summary({"available": True}).endswith("slow queries unavailable: not gathered")


def test_unavailable():
    assert dbf.database_summary({"available": False, "reason": "connection refused"}) == \
        "PostgreSQL unavailable: connection refused"
    assert dbf.database_summary({}) == "PostgreSQL unavailable: no answer"


def test_slow_lines():
    assert dbf.database_slow_lines(PG) == ["slow: 1234.6 ms mean, 7 calls: SELECT * FROM equipment_listings"]
    assert dbf.database_slow_lines({"available": False}) == []
