"""cache-status, cache-clear and cache-flush against the real Redis, checked with redis-py.

The reference stack keeps the backend's response cache (cache:* keys) in its own database (REDIS_CACHE_DB, 1;
the demo inventory's marketplace_redis_cache_db) and sessions, rate limits and config in db 0. cache-clear tests
only delete their own uniquely named keys. The cache-flush tests flush the real cache database and put its keys
back afterwards (DUMP/RESTORE with their TTLs), so the stack is left as it was. FLUSHALL is only exercised
without confirm and under --check, with keys in two databases proving that nothing went.
"""
from __future__ import annotations

import urllib.request
import uuid

import pytest
import redis

from tests.helpers.playbooks import assert_no_traceback, check_by_name, run

SCRATCH_DB = 7
# Bad patterns for cache-clear: no literal key prefix with a letter or digit before the first wildcard.
BAD_PATTERNS = ["*:*", "[a-z]*", "?*", "**", "\\*", "*"]


def cache_db_number(stack_env) -> int:
    return int(stack_env.get("REDIS_CACHE_DB", "1"))


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
def cache_client(redis_db, stack_env):
    """A client on the cache database (db 1 of the reference stack)."""
    return redis_db(cache_db_number(stack_env))


@pytest.fixture()
def test_keys(cache_client):
    """50 keys cache:test-<uuid>:<n> in the cache db that match, and 10 near misses that must survive."""
    tag = f"test-{uuid.uuid4().hex[:12]}"
    matching = [f"cache:{tag}:{i}" for i in range(50)]
    near = [f"cache:{tag}-other:{i}" for i in range(5)] + [f"session:{tag}:{i}" for i in range(5)]
    pipe = cache_client.pipeline(transaction=False)
    for key in matching + near:
        pipe.set(key, "v", ex=3600)
    pipe.execute()
    yield tag, matching, near
    cache_client.delete(*(matching + near))


def lasting_keys(client) -> set[str]:
    """The keys of a database that will not expire within two minutes (what a run must leave in place)."""
    keys = list(client.scan_iter(count=1000))
    pipe = client.pipeline(transaction=False)
    for key in keys:
        pipe.pttl(key)
    return {k for k, ttl in zip(keys, pipe.execute(), strict=True) if ttl == -1 or ttl > 120_000}


def present(client, keys) -> set[str]:
    keys = list(keys)
    pipe = client.pipeline(transaction=False)
    for key in keys:
        pipe.exists(key)
    return {k for k, e in zip(keys, pipe.execute(), strict=True) if e}


@pytest.fixture()
def cache_db_restored(stack_env):
    """Snapshot every key of the cache database (value and TTL); put them all back after the test."""
    client = redis.Redis(host=stack_env["BIND_ADDRESS"], port=int(stack_env["REDIS_PORT"]),
                         password=stack_env["REDIS_PASSWORD"], db=cache_db_number(stack_env), socket_timeout=10)
    keys = list(client.scan_iter(count=1000))
    pipe = client.pipeline(transaction=False)
    for key in keys:
        pipe.dump(key)
        pipe.pttl(key)
    replies = pipe.execute()
    saved = [(k, replies[2 * i], replies[2 * i + 1]) for i, k in enumerate(keys) if replies[2 * i] is not None]
    try:
        yield client
    finally:
        added = set(client.scan_iter(count=1000)) - set(keys)  # what the test (or the backend) wrote meanwhile
        pipe = client.pipeline(transaction=False)
        if added:
            pipe.unlink(*added)
        for key, value, ttl in saved:
            pipe.restore(key, ttl if ttl > 0 else 0, value, replace=True)
        pipe.execute()
        client.close()


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
    assert int(redis_info["keyspace"][f"db{cache_db_number(stack_env)}"]["keys"]) > 0
    assert "keyspace db0=" in report["summary"] and "hit rate" in report["summary"]
    assert stack_env["REDIS_PASSWORD"] not in result.stdout


def test_cache_clear_without_confirm_deletes_nothing_and_says_how(cache_client, test_keys):
    tag, matching, near = test_keys
    result = run("cache-clear", extravars={"pattern": f"cache:{tag}*"})
    assert_no_traceback(result)
    assert result.rc == 0
    assert existing(cache_client, matching + near) == set(matching + near)
    action = result.report["actions"][0]
    assert action["changed"] is False and action["matched"] == 55 and action["deleted"] == 0
    assert action["prefixes"] == {"cache": 55}
    assert "not confirmed: would delete 55 key(s)" in action["detail"] and "(by prefix: cache: 55)" in action["detail"]
    assert "-e confirm=true" in action["detail"] and "-e confirm=true" in result.stdout
    assert all(s.startswith(f"cache:{tag}") for s in action["samples"]) and action["samples"]
    assert result.changed() == 0


def test_cache_clear_in_check_mode_deletes_nothing_even_with_confirm(cache_client, test_keys):
    tag, matching, near = test_keys
    result = run("cache-clear", extravars={"pattern": f"cache:{tag}:*", "confirm": True}, check=True)
    assert result.rc == 0
    assert existing(cache_client, matching + near) == set(matching + near)
    assert "run without --check" in result.report["actions"][0]["detail"]
    assert result.report["check_mode"] is True


def test_cache_clear_with_confirm_deletes_exactly_the_matching_keys(cache_client, redis_client, test_keys):
    tag, matching, near = test_keys
    before_db0 = lasting_keys(redis_client)
    before_cache = lasting_keys(cache_client) - set(matching)
    result = run("cache-clear", extravars={"pattern": f"cache:{tag}:*", "confirm": True})
    assert_no_traceback(result)
    assert result.rc == 0
    assert existing(cache_client, matching) == set()
    assert existing(cache_client, near) == set(near)
    action = result.report["actions"][0]
    assert action["changed"] is True and action["deleted"] == 50 and action["prefixes"] == {"cache": 50}
    assert check_by_name(result.report, "cache_clear")["value"] == 50
    # Nothing else went, in the cache database or in db 0.
    assert present(cache_client, before_cache) == before_cache
    assert present(redis_client, before_db0) == before_db0


def test_cache_clear_refuses_a_missing_or_unanchored_pattern_and_deletes_nothing(cache_client, redis_client,
                                                                                test_keys):
    """'*:*', '[a-z]*', '?*', '**', '\\*', '*': each refused with a clear message, no key of either db gone."""
    before_db0, before_cache = lasting_keys(redis_client), lasting_keys(cache_client)
    result = run("cache-clear", extravars={"confirm": True})
    assert result.rc != 0 and "pattern" in result.stdout and "cache:listings:*" in result.stdout
    for pattern in BAD_PATTERNS:
        result = run("cache-clear", extravars={"pattern": pattern, "confirm": True})
        assert_no_traceback(result)
        assert result.rc != 0, pattern
        assert "prefix" in result.stdout and "allow_all" in result.stdout, (pattern, result.stdout[-1500:])
        assert result.changed() == 0
    assert present(cache_client, before_cache) == before_cache
    assert present(redis_client, before_db0) == before_db0


def seed(client, keys, ttl=600):
    pipe = client.pipeline(transaction=False)
    for key in keys:
        pipe.set(key, "1", ex=ttl)
    pipe.execute()


def test_cache_flush_cache_db_empties_the_cache_and_sessions_survive(stack_env, redis_client, cache_db_restored):
    """The default scope flushes the backend's cache database (db 1) only: db 0's sessions, rate limits and
    config are all still there, and the backend fills the cache database again."""
    cache = cache_db_restored
    db0_before = lasting_keys(redis_client)
    sessions = {k for k in db0_before if k.startswith("session:")}
    assert len(sessions) >= 100 and "app:config" in db0_before  # the seeded application state
    cache_keys = cache.dbsize()
    assert cache_keys >= 100

    dry = run("cache-flush")
    assert_no_traceback(dry)
    assert dry.rc == 0 and dry.changed() == 0
    action = dry.report["actions"][0]
    assert action["changed"] is False and action["refused"] is False and action["foreign_prefixes"] == {}
    assert set(action["prefixes"]) == {"cache"} and abs(action["prefixes"]["cache"] - cache_keys) <= 5
    db = cache_db_number(stack_env)
    assert f"not confirmed: would run FLUSHDB ASYNC of db {db}" in action["detail"]
    assert "(by prefix: cache: " in action["detail"] and "-e confirm=true" in action["detail"]
    assert cache.dbsize() >= cache_keys - 5

    result = run("cache-flush", extravars={"confirm": True})
    assert_no_traceback(result)
    assert result.rc == 0, result.stdout[-2000:]
    action = result.report["actions"][0]
    assert action["changed"] is True and action["keys"] >= cache_keys - 5
    assert f"FLUSHDB ASYNC of db {db}" in action["detail"] and "removed" in action["detail"]
    assert cache.dbsize() <= 5  # the backend may cache a page meanwhile
    assert present(redis_client, db0_before) == db0_before  # every session, rate limit and config key
    # The backend's cache really is that database: a fresh page lands there, not in db 0.
    page = 900 + uuid.uuid4().int % 99
    base = f"http://{stack_env['BIND_ADDRESS']}:{stack_env['NGINX_HTTP_PORT']}"
    with urllib.request.urlopen(f"{base}/api/listings?category=power&page={page}", timeout=10) as resp:
        assert resp.status == 200 and resp.headers["X-Cache"] == "MISS"
    assert cache.exists(f"cache:listings:power:{page}") == 1
    assert redis_client.exists(f"cache:listings:power:{page}") == 0


def test_cache_flush_of_a_cache_db_holding_other_prefixes_lists_them_and_needs_them_named(
        redis_client, cache_db_restored, stack_env):
    """A cache database that also holds sessions, rate limits and config (a deployment where they share the
    cache's database): the dry run counts each prefix, the confirmed flush is refused with nothing flushed, and
    only naming them (-e include_prefixes=...) flushes them."""
    cache = cache_db_restored
    tag = uuid.uuid4().hex[:8]
    others = ([f"session:{tag}:{i}" for i in range(40)] + [f"ratelimit:{tag}:{i}" for i in range(3)]
              + [f"config:{tag}:{i}" for i in range(2)])
    seed(cache, others)
    db0_before = lasting_keys(redis_client)
    cache_before = lasting_keys(cache)
    db = cache_db_number(stack_env)

    dry = run("cache-flush")
    assert_no_traceback(dry)
    assert dry.rc == 0
    action = dry.report["actions"][0]
    assert action["refused"] is True and action["changed"] is False
    assert action["foreign_prefixes"] == {"session": 40, "ratelimit": 3, "config": 2}
    assert action["prefixes"]["cache"] >= 100 and action["prefixes"]["session"] == 40
    for text in ("session: 40", "ratelimit: 3", "config: 2", "cache: ", "would be refused",
                 "-e include_prefixes=session,ratelimit,config"):
        assert text in action["detail"], (text, action["detail"])
    assert check_by_name(dry.report, "cache_flush")["status"] == "warning"

    refused = run("cache-flush", extravars={"confirm": True})
    assert_no_traceback(refused)
    assert refused.rc != 0 and refused.changed() == 0
    assert "refused" in refused.stdout and "nothing was flushed" in refused.stdout
    assert "include_prefixes=session,ratelimit,config" in refused.stdout
    assert check_by_name(refused.report, "cache_flush")["status"] == "critical"
    assert refused.report["actions"][0]["changed"] is False
    assert present(cache, cache_before) == cache_before  # nothing flushed
    assert present(redis_client, db0_before) == db0_before

    partly = run("cache-flush", extravars={"confirm": True, "include_prefixes": "session"})
    assert partly.rc != 0 and present(cache, cache_before) == cache_before
    assert partly.report["actions"][0]["foreign_prefixes"] == {"ratelimit": 3, "config": 2}
    assert "include_prefixes=session,ratelimit,config" in partly.stdout

    named = run("cache-flush", extravars={"confirm": True, "include_prefixes": "session,ratelimit,config"})
    assert_no_traceback(named)
    assert named.rc == 0, named.stdout[-2000:]
    assert named.report["actions"][0]["changed"] is True
    assert present(cache, others) == set() and cache.dbsize() <= 5
    assert present(redis_client, db0_before) == db0_before
    assert f"FLUSHDB ASYNC of db {db}" in named.report["actions"][0]["detail"]


def test_cache_flush_all_without_confirm_or_in_check_mode_deletes_nothing(redis_db, redis_client):
    scratch = redis_db(SCRATCH_DB)
    sentinel = f"session:test-{uuid.uuid4().hex[:12]}:sentinel"
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
        # Every database's keys per prefix (merged): the sessions of db 0 and the cache of db 1 among them.
        assert action["prefixes"]["session"] >= 100 and action["prefixes"]["cache"] >= 100
        assert action["prefixes"]["scratch"] >= 1 and "session: " in action["detail"]
        result = run("cache-flush", extravars={"scope": "all", "confirm": True}, check=True)
        assert result.rc == 0 and result.report["actions"][0]["changed"] is False
        assert redis_client.exists(sentinel) == 1 and scratch.exists(scratch_key) == 1
    finally:
        redis_client.delete(sentinel)
        scratch.delete(scratch_key)


@pytest.mark.parametrize("extravars, fragment", [
    ({"scope": "ALL"}, "scope"),
    ({"scope": "bogus"}, "scope"),
    ({"scope": "all", "include_prefixes": "session"}, "include_prefixes only applies to scope=cache_db"),
])
def test_cache_flush_refuses_a_bad_scope_and_changes_nothing(redis_client, cache_client, extravars, fragment):
    before_db0, before_cache = lasting_keys(redis_client), lasting_keys(cache_client)
    result = run("cache-flush", extravars={**extravars, "confirm": True})
    assert_no_traceback(result)
    assert result.rc != 0 and result.changed() == 0
    assert fragment in result.stdout
    if extravars["scope"] != "all":
        assert "cache_db" in result.stdout and repr(extravars["scope"])[1:-1] in result.stdout
    assert present(redis_client, before_db0) == before_db0
    assert present(cache_client, before_cache) == before_cache
