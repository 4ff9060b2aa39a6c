"""cache-status, cache-clear and cache-flush against the real Redis, checked with redis-py.

Redis db 0 holds the application's keys: tests only ever delete their own uniquely prefixed keys there, and
flush a scratch database (7) by pointing marketplace_redis_cache_db at it. FLUSHALL is only exercised without
confirm and under --check, with keys in two databases proving that nothing went.
"""
from __future__ import annotations

import uuid

import pytest
import redis

from tests.helpers.playbooks import assert_no_traceback, check_by_name, run

SCRATCH_DB = 7


@pytest.fixture()
def redis_db(stack_env):
    clients = []

    def connect(db: int) -> redis.Redis:
        client = redis.Redis(host=stack_env["BIND_ADDRESS"], port=int(stack_env["REDIS_PORT"]),
                             password=stack_env["REDIS_PASSWORD"], db=db, socket_timeout=10, decode_responses=True)
        clients.append(client)
        return client

    yield connect
    for client in clients:
        client.close()


@pytest.fixture()
def test_keys(redis_client):
    """50 keys cache:test-<uuid>:<n> that match, and 10 near misses that must survive; all removed after."""
    tag = f"test-{uuid.uuid4().hex[:12]}"
    matching = [f"cache:{tag}:{i}" for i in range(50)]
    near = [f"cache:{tag}-other:{i}" for i in range(5)] + [f"session:{tag}:{i}" for i in range(5)]
    pipe = redis_client.pipeline(transaction=False)
    for key in matching + near:
        pipe.set(key, "v", ex=3600)
    pipe.execute()
    yield tag, matching, near
    redis_client.delete(*(matching + near))


def existing(client, keys) -> set[str]:
    pipe = client.pipeline(transaction=False)
    for key in keys:
        pipe.exists(key)
    return {k for k, e in zip(keys, pipe.execute(), strict=True) if e}


def test_cache_status_reports_memory_hit_rate_latency_evictions_keyspace(stack_env, redis_client):
    # Lookups during the window so the hit rate is measured, not n/a.
    result = run("cache-status", extravars={"cache_sample_seconds": 1})
    assert_no_traceback(result)
    assert result.rc == 0, result.stdout[-2000:]
    report = result.report
    for name in ("redis_available", "redis_memory", "redis_hit_rate", "redis_evicted_keys", "redis_latency"):
        check = check_by_name(report, name)
        assert "threshold" in check and check["message"]
    assert check_by_name(report, "redis_available")["status"] == "ok"
    redis_info = report["redis"]
    assert redis_info["memory"]["used_bytes"] > 0 and redis_info["memory"]["policy"]
    assert redis_info["stats"]["window_seconds"] >= 1
    assert redis_info["latency"]["p99_ms"] is not None
    assert int(redis_info["keyspace"]["db0"]["keys"]) > 0
    assert "keyspace db0=" in report["summary"] and "hit rate" in report["summary"]
    assert stack_env["REDIS_PASSWORD"] not in result.stdout


def test_cache_clear_without_confirm_deletes_nothing_and_says_how(redis_client, test_keys):
    tag, matching, near = test_keys
    result = run("cache-clear", extravars={"pattern": f"cache:{tag}:*"})
    assert_no_traceback(result)
    assert result.rc == 0
    assert existing(redis_client, matching + near) == set(matching + near)
    action = result.report["actions"][0]
    assert action["changed"] is False and action["matched"] == 50 and action["deleted"] == 0
    assert "not confirmed: would delete 50 key(s)" in action["detail"]
    assert "-e confirm=true" in action["detail"] and "-e confirm=true" in result.stdout
    assert all(s.startswith(f"cache:{tag}:") for s in action["samples"]) and action["samples"]
    assert result.changed() == 0


def test_cache_clear_in_check_mode_deletes_nothing_even_with_confirm(redis_client, test_keys):
    tag, matching, near = test_keys
    result = run("cache-clear", extravars={"pattern": f"cache:{tag}:*", "confirm": True}, check=True)
    assert result.rc == 0
    assert existing(redis_client, matching + near) == set(matching + near)
    assert "run without --check" in result.report["actions"][0]["detail"]
    assert result.report["check_mode"] is True


def test_cache_clear_with_confirm_deletes_exactly_the_matching_keys(redis_client, test_keys):
    tag, matching, near = test_keys
    before_db0 = redis_client.dbsize()
    result = run("cache-clear", extravars={"pattern": f"cache:{tag}:*", "confirm": True})
    assert_no_traceback(result)
    assert result.rc == 0
    assert existing(redis_client, matching) == set()
    assert existing(redis_client, near) == set(near)
    action = result.report["actions"][0]
    assert action["changed"] is True and action["deleted"] == 50
    assert check_by_name(result.report, "cache_clear")["value"] == 50
    # Nothing else of db 0 went (the app's keys may come and go meanwhile, hence the slack).
    assert redis_client.dbsize() >= before_db0 - 50 - 100


def test_cache_clear_refuses_a_missing_or_match_all_pattern(redis_client):
    before = redis_client.dbsize()
    result = run("cache-clear", extravars={"confirm": True})
    assert result.rc != 0 and "needs a pattern" in result.stdout
    result = run("cache-clear", extravars={"pattern": "*", "confirm": True})
    assert result.rc != 0
    assert_no_traceback(result)
    assert redis_client.dbsize() >= before - 100


def test_cache_flush_cache_db_needs_confirm_and_flushes_only_that_db(redis_db, redis_client):
    scratch = redis_db(SCRATCH_DB)
    if scratch.dbsize():
        pytest.skip(f"scratch db {SCRATCH_DB} is in use")
    sentinel = f"cache:test-{uuid.uuid4().hex[:12]}:sentinel"
    redis_client.set(sentinel, "1", ex=600)
    try:
        for i in range(20):
            scratch.set(f"scratch:{i}", i, ex=600)
        extravars = {"marketplace_redis_cache_db": SCRATCH_DB}
        result = run("cache-flush", extravars=extravars)
        assert result.rc == 0 and scratch.dbsize() == 20 and result.changed() == 0
        action = result.report["actions"][0]
        assert action["changed"] is False and action["keys"] == 20
        assert f"FLUSHDB ASYNC of db {SCRATCH_DB}" in action["detail"] and "-e confirm=true" in action["detail"]

        result = run("cache-flush", extravars={**extravars, "confirm": True}, check=True)
        assert result.rc == 0 and scratch.dbsize() == 20

        result = run("cache-flush", extravars={**extravars, "confirm": True})
        assert_no_traceback(result)
        assert result.rc == 0 and result.report["actions"][0]["changed"] is True
        assert scratch.dbsize() == 0
        assert redis_client.exists(sentinel) == 1  # db 0 untouched
    finally:
        scratch.flushdb()
        redis_client.delete(sentinel)


def test_cache_flush_all_without_confirm_or_in_check_mode_deletes_nothing(redis_db, redis_client):
    scratch = redis_db(SCRATCH_DB)
    sentinel = f"cache:test-{uuid.uuid4().hex[:12]}:sentinel"
    scratch_key = f"scratch:{uuid.uuid4().hex[:12]}"
    redis_client.set(sentinel, "1", ex=600)
    scratch.set(scratch_key, "1", ex=600)
    try:
        result = run("cache-flush", extravars={"scope": "all"})
        assert result.rc == 0
        action = result.report["actions"][0]
        assert action["changed"] is False and "FLUSHALL ASYNC" in action["detail"]
        assert "-e confirm=true -e scope=all" in action["detail"]
        assert action["keys"] >= 2
        result = run("cache-flush", extravars={"scope": "all", "confirm": True}, check=True)
        assert result.rc == 0 and result.report["actions"][0]["changed"] is False
        assert redis_client.exists(sentinel) == 1 and scratch.exists(scratch_key) == 1
        result = run("cache-flush", extravars={"scope": "everything", "confirm": True})
        assert result.rc != 0 and "cache_scope must be one of: cache_db, all" in result.stdout
        assert redis_client.exists(sentinel) == 1 and scratch.exists(scratch_key) == 1
    finally:
        redis_client.delete(sentinel)
        scratch.delete(scratch_key)
