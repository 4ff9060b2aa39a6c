"""redis_health against the reference stack's Redis (no mocks).

Traffic for the sampling window is generated in logical database 13 only; nothing in db 0 is changed.
"""
from __future__ import annotations

import threading
import time
import uuid

import pytest

from tests.helpers.modules import assert_return_documented, run_module

DB = 13
ALL_SECTIONS = ["memory", "stats", "clients", "latency", "slowlog", "persistence", "keyspace"]


@pytest.fixture()
def db_client(stack_env):
    import redis

    client = redis.Redis(host=stack_env["BIND_ADDRESS"], port=int(stack_env["REDIS_PORT"]),
                         password=stack_env["REDIS_PASSWORD"], db=DB, socket_timeout=10)
    client.flushdb()
    yield client
    client.flushdb()
    client.close()


def _checks(result):
    return {c["name"]: c for c in result["checks"]}


def test_full_gather_reports_every_section(redis_params, stack_env):
    result = run_module("redis_health", dict(redis_params, latency_samples=50, sample_seconds=0.5))
    assert not result.get("failed"), result.get("msg")
    assert result["available"] is True and result["changed"] is False
    assert result["status"] in ("ok", "unknown", "warning", "critical")
    assert_return_documented("redis_health", result)
    assert stack_env["REDIS_PASSWORD"] not in result["_raw"]

    for section in ALL_SECTIONS:
        assert section in result and "error" not in result[section], section
    server = result["server"]
    assert server["version"].startswith("7.") and server["role"] == "master" and server["uptime_seconds"] > 0
    mem = result["memory"]
    assert mem["maxmemory_bytes"] > 0 and mem["policy"] == "allkeys-lru"
    assert 0 < mem["used_pct"] < 100 and mem["rss_bytes"] > 0 and mem["peak_bytes"] >= mem["used_bytes"] * 0.5
    stats = result["stats"]
    assert 0.45 <= stats["window_seconds"] < 3 and stats["commands"] >= 50  # at least our own PINGs
    assert stats["evicted_keys"] >= 0 and stats["expired_keys"] >= 0
    clients = result["clients"]
    assert clients["maxclients"] == 1000 and clients["connected"] >= 1 and clients["rejected_connections"] >= 0
    lat = result["latency"]
    assert lat["samples"] == 50 and 0 < lat["min_ms"] <= lat["p50_ms"] <= lat["p99_ms"] <= lat["max_ms"]
    assert isinstance(lat["events"], list)
    assert result["persistence"]["aof_enabled"] is True
    assert result["persistence"]["aof_last_write_status"] == "ok"
    assert result["keyspace"]["db0"]["keys"] > 0

    checks = _checks(result)
    for name in ("redis_available", "redis_memory", "redis_fragmentation", "redis_hit_rate", "redis_evicted_keys",
                 "redis_clients", "redis_rejected_connections", "redis_latency", "redis_latency_events",
                 "redis_slowlog", "redis_persistence", "redis_rdb_age"):
        assert name in checks, name
        assert set(checks[name]) == {"name", "status", "value", "threshold", "message"}
        assert checks[name]["status"] in ("ok", "unknown", "warning", "critical")
    assert checks["redis_available"]["status"] == "ok"
    assert checks["redis_memory"]["value"] == mem["used_pct"]


def test_windowed_hit_rate_reflects_traffic_during_the_window(redis_params, db_client):
    """One hit for three misses during the window: windowed rate ~25 % and judged critical (<= 50)."""
    db_client.set("hr:hit", "1")
    stop = threading.Event()
    done = {"hits": 0, "misses": 0}

    def traffic():
        while not stop.is_set():
            pipe = db_client.pipeline(transaction=False)
            pipe.get("hr:hit")
            for i in range(3):
                pipe.get("hr:miss:%d" % i)
            pipe.execute()
            done["hits"] += 1
            done["misses"] += 3
            time.sleep(0.002)

    thread = threading.Thread(target=traffic, daemon=True)
    thread.start()
    try:
        time.sleep(0.2)
        result = run_module("redis_health", dict(redis_params, sections=["stats"], sample_seconds=1.5))
    finally:
        stop.set()
        thread.join(5)
    assert not result.get("failed"), result.get("msg")
    assert_return_documented("redis_health", result)
    stats = result["stats"]
    assert stats["hits"] + stats["misses"] >= 400, stats
    assert stats["hits"] + stats["misses"] <= done["hits"] + done["misses"] + 1000  # the window, not the lifetime
    # 25 % from our traffic; the app's own lookups on db 0 during the window may move it a little
    assert 15 <= stats["hit_rate_pct"] <= 35, stats
    hit_rate = _checks(result)["redis_hit_rate"]
    assert hit_rate["status"] == "critical" and hit_rate["value"] == stats["hit_rate_pct"]
    assert "window" in hit_rate["message"]
    # only the requested section (plus the always-present server block)
    assert "memory" not in result and "latency" not in result and "server" in result


def test_expired_keys_are_counted_as_a_delta_over_the_window(redis_params, db_client):
    pipe = db_client.pipeline(transaction=False)
    for i in range(150):
        pipe.set("exp:%d" % i, "x", px=400)
    pipe.execute()

    def touch_later():  # forces lazy expiry of whatever the active cycle has not reclaimed yet
        time.sleep(1.0)
        db_client.exists(*["exp:%d" % i for i in range(150)])

    thread = threading.Thread(target=touch_later, daemon=True)
    thread.start()
    result = run_module("redis_health", dict(redis_params, sections=["stats", "keyspace"], sample_seconds=1.5))
    thread.join(5)
    assert result["stats"]["expired_keys"] >= 150
    assert result["stats"]["lifetime_expired_keys"] >= 0
    assert f"db{DB}" not in result["keyspace"] or result["keyspace"][f"db{DB}"]["keys"] <= 150


def test_tiny_thresholds_turn_memory_and_latency_into_warning(redis_params):
    result = run_module("redis_health", dict(redis_params, sections=["memory", "latency"], sample_seconds=0,
                                             latency_samples=20, memory_warning_pct=0.0001,
                                             latency_warning_ms=0.0001))
    checks = _checks(result)
    assert checks["redis_memory"]["status"] == "warning"
    assert checks["redis_memory"]["threshold"] == {"warning": 0.0001, "critical": 90}
    assert "warning threshold" in checks["redis_memory"]["message"]
    assert checks["redis_latency"]["status"] == "warning"
    assert result["status"] in ("warning", "critical")
    assert result["latency"]["samples"] == 20

    crit = run_module("redis_health", dict(redis_params, sections=["latency"], sample_seconds=0,
                                           latency_samples=10, latency_warning_ms=0.00001,
                                           latency_critical_ms=0.0001))
    assert _checks(crit)["redis_latency"]["status"] == "critical" and crit["status"] == "critical"


def test_slow_command_shows_in_slowlog_without_its_values(redis_params, db_client):
    secret_value = "value-" + uuid.uuid4().hex
    # ~15 ms of server time: above slowlog-log-slower-than (10 ms), below latency-monitor-threshold (50 ms).
    script = ("local t0 = redis.call('TIME') local v = ARGV[1] "
              "repeat local t = redis.call('TIME') "
              "until (t[1] - t0[1]) * 1000000 + (t[2] - t0[2]) >= 15000 return 1")
    db_client.eval(script, 1, "slow:key", secret_value)
    result = run_module("redis_health", dict(redis_params, sections=["slowlog"], sample_seconds=0,
                                             slowlog_warning=1, slowlog_entries=128))
    assert not result.get("failed"), result.get("msg")
    assert_return_documented("redis_health", result)
    slowlog = result["slowlog"]
    assert slowlog["length"] >= 1 and slowlog["recent"] >= 1
    ours = [e for e in slowlog["entries"] if e["command"] == "eval" and e["duration_ms"] >= 10]
    assert ours, slowlog["entries"]
    assert ours[0]["args"] == 4 and ours[0]["age_seconds"] < 60
    assert secret_value not in result["_raw"] and "slow:key" not in result["_raw"]
    assert _checks(result)["redis_slowlog"]["status"] == "warning"


def test_lifetime_counters_are_judged_without_a_window(redis_params):
    result = run_module("redis_health", dict(redis_params, sections=["stats", "clients"], sample_seconds=0,
                                             hit_rate_min_lookups=0))
    stats = result["stats"]
    assert stats["window_seconds"] is None and stats["hits"] is None and stats["evicted_keys"] is None
    assert stats["lifetime_hits"] >= 0
    assert result["clients"]["rejected_connections"] is None
    checks = _checks(result)
    assert "lifetime" in checks["redis_hit_rate"]["message"]
    assert "lifetime" in checks["redis_rejected_connections"]["message"]


@pytest.mark.parametrize("args, fragment", [
    ({"sections": ["memory", "bogus"]}, "value of sections must be one or more of: memory"),
    ({"memory_warning_pct": -1}, "must not be negative: memory_warning_pct"),
    ({"latency_samples": -3}, "must not be negative: latency_samples"),
    ({"memory_warning_pct": 150}, "memory_warning_pct is a percentage"),
    ({"memory_warning_pct": 95, "memory_critical_pct": 90}, "memory_warning_pct (95.0) must be at most"),
    ({"hit_rate_warning_pct": 40, "hit_rate_critical_pct": 50}, "hit_rate_warning_pct (40.0) must be at least"),
    ({"sample_seconds": 301}, "sample_seconds must not exceed 300"),
    ({"login_port": 70000}, "login_port must be between 1 and 65535"),
])
def test_bad_input_fails_clearly(redis_params, args, fragment):
    result = run_module("redis_health", dict(redis_params, **args))
    assert result.get("failed") is True
    assert fragment in result["msg"]


def test_wrong_password_is_a_result_not_a_crash(redis_params):
    wrong = "wrong-password-" + uuid.uuid4().hex
    result = run_module("redis_health", dict(redis_params, login_password=wrong))
    assert not result.get("failed"), result.get("msg")
    assert result["available"] is False and result["reason_kind"] == "auth"
    assert "authentication" in result["reason"]
    assert result["status"] == "critical" and _checks(result)["redis_available"]["status"] == "critical"
    assert wrong not in result["_raw"] and "Traceback" not in result["_raw"]
    assert "memory" not in result
    assert_return_documented("redis_health", result)


def test_unreachable_server_is_a_result_and_quick(redis_params):
    start = time.monotonic()
    result = run_module("redis_health", dict(redis_params, login_port=1, connect_timeout=1.0))
    assert time.monotonic() - start < 5
    assert result["available"] is False and result["reason_kind"] == "connection"
    assert "cannot connect to Redis at" in result["reason"]
    assert redis_params["login_password"] not in result["_raw"]


def test_missing_password_is_an_auth_failure(redis_params, monkeypatch):
    monkeypatch.delenv("REDIS_PASSWORD", raising=False)
    args = {k: v for k, v in redis_params.items() if k != "login_password"}
    result = run_module("redis_health", dict(args, sections=["keyspace"], sample_seconds=0))
    assert result["available"] is False and result["reason_kind"] == "auth"


def test_password_from_environment(redis_params, monkeypatch):
    monkeypatch.setenv("REDIS_PASSWORD", redis_params["login_password"])
    args = {k: v for k, v in redis_params.items() if k != "login_password"}
    result = run_module("redis_health", dict(args, sections=["keyspace"], sample_seconds=0))
    assert result["available"] is True and "db0" in result["keyspace"]


@pytest.fixture()
def acl_user(redis_client):
    """A temporary ACL user (removed afterwards) that may PING and INFO but not SLOWLOG, LATENCY or CONFIG."""
    name = "em_test_" + uuid.uuid4().hex[:8]
    password = "acl-" + uuid.uuid4().hex
    redis_client.execute_command("ACL", "SETUSER", name, "on", ">" + password, "+ping", "+info")
    try:
        yield name, password
    finally:
        redis_client.execute_command("ACL", "DELUSER", name)


def test_acl_user_without_diagnostic_commands_gets_partial_results(redis_params, redis_client, acl_user):
    name, password = acl_user
    result = run_module("redis_health", dict(redis_params, login_user=name, login_password=password,
                                             sample_seconds=0.2, latency_samples=10))
    assert not result.get("failed"), result.get("msg")
    assert result["available"] is True
    assert_return_documented("redis_health", result)
    assert "error" in result["slowlog"] and "ACL" in result["slowlog"]["error"]
    assert result["latency"]["events"] is None and "events_error" in result["latency"]
    assert result["latency"]["samples"] == 10
    assert result["clients"]["maxclients"] == 1000  # from INFO clients, CONFIG is not needed
    assert result["memory"]["used_bytes"] > 0
    checks = _checks(result)
    assert checks["redis_slowlog"]["status"] == "unknown"
    assert password not in result["_raw"]

    redis_client.execute_command("ACL", "SETUSER", name, "-info")
    denied = run_module("redis_health", dict(redis_params, login_user=name, login_password=password,
                                             sections=["memory", "keyspace"], sample_seconds=0))
    assert denied["available"] is True and denied["status"] == "unknown"
    assert "error" in denied["memory"] and "error" in denied["keyspace"]
    assert denied["server"]["version"] is None
