"""redis_keys against the reference stack's Redis (no mocks).

Bulk seeding, deleting and flushing happen in logical databases 10-12 only; db 0 holds the app's seeded keys
that other tests use, and is only ever read here (and checked to be untouched).
"""
from __future__ import annotations

import sys
import uuid

import pytest

from tests.helpers.modules import assert_return_documented, run_module

DB_KEYS = 10      # pattern delete
DB_FLUSH = 11     # flushdb target
DB_NEIGHBOUR = 12  # must survive the flush of DB_FLUSH


def _client(stack_env, db):
    import redis

    return redis.Redis(host=stack_env["BIND_ADDRESS"], port=int(stack_env["REDIS_PORT"]),
                       password=stack_env["REDIS_PASSWORD"], db=db, socket_timeout=10)


@pytest.fixture()
def db_client(stack_env, request):
    """A client on one test database, emptied before and after the test."""
    db = getattr(request, "param", DB_KEYS)
    client = _client(stack_env, db)
    client.flushdb()
    yield client
    client.flushdb()
    client.close()


@pytest.fixture()
def params(redis_params):
    return dict(redis_params, db=DB_KEYS)


def _seed(client, names, value=b"v"):
    names = list(names)
    pipe = client.pipeline(transaction=False)
    for i in range(0, len(names), 1000):
        pipe.mset({n: value for n in names[i:i + 1000]})
    pipe.execute()


def _scan_all(client, match="*"):
    return {k.decode() for k in client.scan_iter(match=match, count=1000)}


def _db0_fingerprint(stack_env):
    client = _client(stack_env, 0)
    try:
        return client.exists("meta:seeded", "app:config"), len(list(client.scan_iter(match="cache:*", count=1000)))
    finally:
        client.close()


OTHER_KEYS = (
    [f"session:{i}" for i in range(2000)]
    + [f"ratelimit:{i}" for i in range(2000)]
    + [f"keep:cache:{i}" for i in range(500)]  # contains 'cache:' but does not start with it
    + [f"Cache:{i}" for i in range(100)]         # patterns are case-sensitive
    + ["cache", "cachex:1", "xcache:1", "cache;1", "app:config"]
)


def test_check_mode_counts_then_deletes_exactly_the_100k(stack_env, db_client, params):
    cache_keys = [f"cache:{i}" for i in range(100_000)]
    _seed(db_client, cache_keys + OTHER_KEYS)
    total = len(cache_keys) + len(OTHER_KEYS)
    assert db_client.dbsize() == total
    db0_before = _db0_fingerprint(stack_env)

    dry = run_module("redis_keys", dict(params, pattern="cache:*"), check_mode=True)
    assert not dry.get("failed"), dry.get("msg")
    assert dry["changed"] is True
    assert dry["matched"] == 100_000 and dry["matched_exact"] is True
    assert dry["deleted"] == 0 and dry["batches"] == 0
    assert 0 < len(dry["samples"]) <= 5 and all(s.startswith("cache:") for s in dry["samples"])
    assert dry["prefixes"] == {"cache": 100_000} and dry["prefixes_more"] == 0
    assert "(by prefix: cache: 100000)" in dry["msg"]
    assert db_client.dbsize() == total, "check mode deleted something"
    assert_return_documented("redis_keys", dry)

    real = run_module("redis_keys", dict(params, pattern="cache:*"))
    assert not real.get("failed"), real.get("msg")
    assert real["changed"] is True
    assert real["deleted"] == 100_000
    assert real["matched"] >= 100_000  # SCAN may return a key twice; deleted is the exact count
    assert real["batches"] >= 100_000 // 500 and real["scan_calls"] > 1
    assert real["duration_seconds"] < 30
    assert "deleted 100000 key(s)" in real["msg"]
    assert_return_documented("redis_keys", real)

    assert db_client.dbsize() == len(OTHER_KEYS)
    assert _scan_all(db_client) == set(OTHER_KEYS)
    assert _db0_fingerprint(stack_env) == db0_before, "db 0 was touched"

    again = run_module("redis_keys", dict(params, pattern="cache:*"))
    assert again["changed"] is False and again["deleted"] == 0
    assert db_client.dbsize() == len(OTHER_KEYS)


# Patterns without a literal key prefix holding a letter or digit before the first wildcard: each can match the
# keys of every prefix (sessions, rate limits, config). The first six were let through before (only '', '*', '**',
# '?*'-like patterns were refused); '\\*' (the key named '*', an escaped wildcard) was run as a literal key.
UNANCHORED = ["*:*", "[a-z]*", "\\*", ":*", "*session*", "??*", "[s]ession:*", "-*",
              "*", "**", "", "?*", "*?*", "***"]


@pytest.mark.parametrize("pattern", UNANCHORED)
def test_unanchored_patterns_are_refused_without_allow_all(db_client, params, pattern):
    keys = ["a:1", "b:2", "session:3", "ratelimit:4", "*", "-x"]
    _seed(db_client, keys)
    for check_mode in (True, False):
        result = run_module("redis_keys", dict(params, pattern=pattern), check_mode=check_mode)
        assert result.get("failed") is True, (pattern, result.get("msg"))
        assert "allow_all" in result["msg"] and "nothing was deleted" in result["msg"]
        assert "Traceback" not in result["_raw"]
        assert _scan_all(db_client) == set(keys)  # the real server: every key still there
    if pattern == "\\*":
        assert "literal key '*'" in result["msg"]
    elif pattern:
        assert "no literal key prefix with a letter or digit" in result["msg"]


@pytest.mark.parametrize("pattern, deleted", [("a*", 2), ("s?ssion:*", 2), ("1*", 1), ("session:[0-9]", 1)])
def test_patterns_with_a_literal_prefix_run(db_client, params, pattern, deleted):
    _seed(db_client, ["a:1", "ab", "session:3", "sassion:x", "1:x", "b"])
    result = run_module("redis_keys", dict(params, pattern=pattern))
    assert not result.get("failed"), result.get("msg")
    assert result["deleted"] == deleted


def test_allow_all_lets_an_unanchored_pattern_and_an_escaped_wildcard_run(db_client, params):
    _seed(db_client, ["*", "x:1", "y:1"])
    literal = run_module("redis_keys", dict(params, pattern="\\*", allow_all=True))
    assert literal["deleted"] == 1 and literal["scan_calls"] == 0
    assert _scan_all(db_client) == {"x:1", "y:1"}
    result = run_module("redis_keys", dict(params, pattern="*:*", allow_all=True))
    assert result["deleted"] == 2 and result["prefixes"] == {"x": 1, "y": 1}


def test_allow_all_deletes_the_whole_database_through_scan(db_client, params):
    _seed(db_client, [f"k:{i}" for i in range(3000)])
    dry = run_module("redis_keys", dict(params, pattern="*", allow_all=True), check_mode=True)
    assert dry["matched"] == 3000 and db_client.dbsize() == 3000
    real = run_module("redis_keys", dict(params, pattern="*", allow_all=True))
    assert real["deleted"] == 3000 and db_client.dbsize() == 0


def test_patterns_that_do_not_match_all_are_not_mistaken_for_match_all(db_client, params):
    _seed(db_client, ["a", "ab", "abc", "x"])
    result = run_module("redis_keys", dict(params, pattern="a?*"))  # keys of two characters or more from 'a'
    assert not result.get("failed"), result.get("msg")
    assert result["deleted"] == 2
    assert _scan_all(db_client) == {"a", "x"}


@pytest.mark.parametrize("pattern, reason", [
    ("cache:[ab", "unbalanced '['"),
    ("cache:[", "unbalanced '['"),
    ("cache:\\", "trailing backslash"),
    ("cache:[]", "empty character class"),
    ("cache:[^]*", "empty character class"),
])
def test_malformed_patterns_fail_and_change_nothing(db_client, params, pattern, reason):
    _seed(db_client, ["cache:a", "cache:b", "cache:[ab"])
    result = run_module("redis_keys", dict(params, pattern=pattern))
    assert result.get("failed") is True
    assert "malformed pattern" in result["msg"] and reason in result["msg"]
    assert db_client.dbsize() == 3


def test_glob_classes_escapes_and_literal_keys(db_client, params):
    _seed(db_client, ["item:1", "item:2", "item:3", "item:a", "lit[1]*", "lit[1]x", "lit1*"])
    ranged = run_module("redis_keys", dict(params, pattern="item:[1-2]"))
    assert ranged["deleted"] == 2
    negated = run_module("redis_keys", dict(params, pattern="item:[^3]"))
    assert negated["deleted"] == 1  # item:a
    literal = run_module("redis_keys", dict(params, pattern="lit\\[1\\]\\*"))
    assert literal["deleted"] == 1 and literal["scan_calls"] == 0  # a literal key: UNLINK, no scan
    assert literal["samples"] == ["lit[1]*"]
    assert_return_documented("redis_keys", literal)
    assert _scan_all(db_client) == {"item:3", "lit[1]x", "lit1*"}
    missing = run_module("redis_keys", dict(params, pattern="no-such-key"), check_mode=True)
    assert missing["changed"] is False and missing["matched"] == 0 and missing["samples"] == []


def test_small_batches_and_binary_keys(db_client, params):
    names = [b"bin:\xff\xfe:%d" % i for i in range(250)]
    _seed(db_client, names)
    result = run_module("redis_keys", dict(params, pattern="bin:*", batch_size=7, scan_count=10, sample_size=2))
    assert result["deleted"] == 250
    assert result["batches"] >= 250 // 7
    assert len(result["samples"]) == 2 and all("\\xff" in s for s in result["samples"])
    assert db_client.dbsize() == 0


@pytest.mark.parametrize("args, fragment", [
    ({"pattern": "cache:*", "scan_count": 0}, "scan_count must be at least 1"),
    ({"pattern": "cache:*", "batch_size": -5}, "batch_size must be at least 1"),
    ({"pattern": "cache:*", "sample_size": -1}, "must not be negative: sample_size"),
    ({}, "needs a pattern"),
    ({"state": "flushdb", "pattern": "cache:*"}, "pattern is only used with state=absent"),
    ({"state": "wipe"}, "value of state must be one of"),
    ({"pattern": "cache:*", "db": -1}, "db must not be negative"),
    ({"pattern": "cache:*", "connect_timeout": 0}, "connect_timeout must be greater than 0"),
])
def test_bad_input_fails_clearly_and_changes_nothing(db_client, params, args, fragment):
    _seed(db_client, ["cache:1", "cache:2"])
    result = run_module("redis_keys", dict(params, **args))
    assert result.get("failed") is True
    assert fragment in result["msg"]
    assert db_client.dbsize() == 2


def test_db_out_of_range_fails_clearly(params):
    result = run_module("redis_keys", dict(params, db=999, pattern="cache:*"))
    assert result.get("failed") is True
    assert "DB index is out of range" in result["msg"] and "nothing was changed" in result["msg"]


@pytest.mark.parametrize("db_client", [DB_FLUSH], indirect=True)
def test_flushdb_empties_only_the_chosen_database(stack_env, db_client, redis_params):
    neighbour = _client(stack_env, DB_NEIGHBOUR)
    neighbour.flushdb()
    try:
        _seed(db_client, [f"f:{i}" for i in range(5000)])
        _seed(neighbour, [f"n:{i}" for i in range(700)])
        db0_before = _db0_fingerprint(stack_env)
        args = dict(redis_params, db=DB_FLUSH, state="flushdb")

        dry = run_module("redis_keys", args, check_mode=True)
        assert dry["changed"] is True and dry["dbsize"] == 5000 and "would flush 5000" in dry["msg"]
        assert db_client.dbsize() == 5000
        assert_return_documented("redis_keys", dry)

        real = run_module("redis_keys", args)
        assert not real.get("failed"), real.get("msg")
        assert real["changed"] is True and real["dbsize"] == 5000 and real["db"] == DB_FLUSH
        assert_return_documented("redis_keys", real)
        assert db_client.dbsize() == 0
        assert neighbour.dbsize() == 700
        assert _db0_fingerprint(stack_env) == db0_before

        again = run_module("redis_keys", args)
        assert again["changed"] is False and again["dbsize"] == 0
    finally:
        neighbour.flushdb()
        neighbour.close()


@pytest.mark.parametrize("db_client", [DB_FLUSH], indirect=True)
def test_flushall_in_check_mode_reports_every_database_and_deletes_nothing(stack_env, db_client, redis_params):
    _seed(db_client, [f"f:{i}" for i in range(1234)])
    db0_size = _client(stack_env, 0).dbsize()
    result = run_module("redis_keys", dict(redis_params, state="flushall"), check_mode=True)
    assert not result.get("failed"), result.get("msg")
    assert result["changed"] is True and result["db"] is None
    assert result["keyspace"][f"db{DB_FLUSH}"] == 1234
    assert "db0" in result["keyspace"] and result["dbsize"] >= 1234 + 1
    assert result["dbsize"] == sum(result["keyspace"].values())
    assert_return_documented("redis_keys", result)
    counted = run_module("redis_keys", dict(redis_params, state="flushall", count_prefixes=True), check_mode=True)
    assert counted["db_prefixes"][f"db{DB_FLUSH}"] == {"f": 1234}
    assert_return_documented("redis_keys", counted)
    assert db_client.dbsize() == 1234
    assert _client(stack_env, 0).dbsize() >= db0_size - 50  # only TTL expiry may have happened meanwhile


def test_wrong_password_fails_without_leaking_it(db_client, params):
    _seed(db_client, ["cache:1"])
    wrong = "not-the-password-" + uuid.uuid4().hex
    result = run_module("redis_keys", dict(params, login_password=wrong, pattern="cache:*"))
    assert result.get("failed") is True
    assert "authentication" in result["msg"] and "nothing was changed" in result["msg"]
    assert wrong not in result["_raw"]
    assert "Traceback" not in result["_raw"]
    assert db_client.dbsize() == 1


def test_unreachable_server_fails_with_a_clear_message(params):
    result = run_module("redis_keys", dict(params, login_port=1, pattern="cache:*"))
    assert result.get("failed") is True
    assert "cannot connect to Redis at" in result["msg"]
    assert params["login_password"] not in result["_raw"]


def test_password_from_environment(db_client, params, monkeypatch):
    _seed(db_client, ["env:1", "env:2"])
    monkeypatch.setenv("REDIS_PASSWORD", params["login_password"])
    args = {k: v for k, v in params.items() if k != "login_password"}
    result = run_module("redis_keys", dict(args, pattern="env:*"), check_mode=True)
    assert not result.get("failed"), result.get("msg")
    assert result["matched"] == 2


def test_missing_redis_library_is_named(monkeypatch, params):
    monkeypatch.setitem(sys.modules, "redis", None)
    for name in [m for m in sys.modules if m.startswith("redis.")]:
        monkeypatch.setitem(sys.modules, name, None)
    monkeypatch.delitem(sys.modules, "ansible.module_utils.marketplace_redis", raising=False)
    result = run_module("redis_keys", dict(params, pattern="cache:*"))
    assert result.get("failed") is True
    assert "Failed to import the required Python library (redis" in result["msg"]


def test_pattern_helpers():
    from ansible.module_utils import marketplace_redis as mr

    refused = ["", "*", "**", "?*", "*?", "*?**", "*:*", "[a-z]*", "\\*", "??*", "?", "[a]*", "*x*", ":*"]
    allowed = ["cache:*", "c*", "a?*", "x", "cache:listing:1", "session:[0-9]*", "9*", "\\*x"]
    for pattern in refused:
        assert mr.pattern_refusal(pattern, db=1), pattern
        assert mr.pattern_refusal(pattern, db=1, allow_all=True) is None, pattern
    for pattern in allowed:
        assert mr.pattern_refusal(pattern, db=1) is None, pattern
    assert "malformed" in mr.pattern_refusal("cache:[", allow_all=True)
    assert mr.literal_key(mr.parse_glob("a\\*b\\[c")[0]) == "a*b[c"
    assert mr.literal_key(mr.parse_glob("a*")[0]) is None
    assert mr.parse_glob("[\\]]x")[1] is None  # an escaped ']' inside a class
    assert mr.key_prefix(b"cache:listing:1") == "cache" and mr.key_prefix("meta") == "meta"
    assert mr.format_prefixes({"session": 40, "cache": 1200, "config": 2}) == "cache: 1200, session: 40, config: 2"
    counter = mr.PrefixCounter(limit=2)
    for key in (b"a:1", b"a:2", b"b:1", b"c:1"):
        counter.add(key)
    assert counter.top() == ({"a": 2, "b": 1}, 1)


@pytest.mark.parametrize("db_client", [DB_FLUSH], indirect=True)
def test_flushdb_with_allowed_prefixes_refuses_a_database_holding_other_prefixes(db_client, redis_params):
    """The cache database also holds sessions and rate limits: the guarded flush refuses, nothing goes."""
    cache = [f"cache:listing:{i}" for i in range(300)]
    others = [f"session:{i}" for i in range(40)] + [f"ratelimit:{i}" for i in range(3)] + ["config:app", "meta"]
    _seed(db_client, cache + others)
    args = dict(redis_params, db=DB_FLUSH, state="flushdb", allowed_prefixes=["cache"])

    dry = run_module("redis_keys", args, check_mode=True)
    assert not dry.get("failed"), dry.get("msg")
    assert dry["refused"] is True and dry["changed"] is False
    assert dry["prefixes"] == {"cache": 300, "session": 40, "ratelimit": 3, "config": 1, "meta": 1}
    assert dry["foreign_prefixes"] == {"session": 40, "ratelimit": 3, "config": 1, "meta": 1}
    assert "would refuse" in dry["msg"] and "session: 40" in dry["msg"]
    assert_return_documented("redis_keys", dry)

    real = run_module("redis_keys", args)
    assert real.get("failed") is True and real["refused"] is True
    assert "nothing was flushed" in real["msg"] and "ratelimit: 3" in real["msg"]
    assert _scan_all(db_client) == set(cache + others)

    wider = run_module("redis_keys", dict(args, allowed_prefixes=["cache", "session:", "ratelimit", "config", "meta"]))
    assert not wider.get("failed"), wider.get("msg")
    assert wider["refused"] is False and wider["dbsize"] == len(cache + others)
    assert db_client.dbsize() == 0


@pytest.mark.parametrize("db_client", [DB_FLUSH], indirect=True)
def test_flushdb_with_allowed_prefixes_flushes_a_cache_only_database(db_client, redis_params):
    _seed(db_client, [f"cache:{i}" for i in range(500)])
    args = dict(redis_params, db=DB_FLUSH, state="flushdb", allowed_prefixes=["cache"])
    dry = run_module("redis_keys", args, check_mode=True)
    assert dry["refused"] is False and dry["foreign_prefixes"] == {} and dry["prefixes"] == {"cache": 500}
    assert "would flush 500 key(s) in db 11" in dry["msg"] and "(by prefix: cache: 500)" in dry["msg"]
    real = run_module("redis_keys", args)
    assert not real.get("failed"), real.get("msg")
    assert real["dbsize"] == 500 and db_client.dbsize() == 0


@pytest.mark.parametrize("allowed, fragment", [
    (["ca*"], "is not a key prefix"), ([""], "is not a key prefix"), (["a b"], "is not a key prefix"),
    ([], "allowed_prefixes is empty"),
])
@pytest.mark.parametrize("db_client", [DB_FLUSH], indirect=True)
def test_bad_allowed_prefixes_fail_and_flush_nothing(db_client, redis_params, allowed, fragment):
    _seed(db_client, ["cache:1", "session:1"])
    result = run_module("redis_keys", dict(redis_params, db=DB_FLUSH, state="flushdb", allowed_prefixes=allowed))
    assert result.get("failed") is True and fragment in result["msg"]
    assert db_client.dbsize() == 2


def test_acl_user_without_unlink_fails_clearly_and_deletes_nothing(db_client, params, redis_client):
    _seed(db_client, [f"acl:{i}" for i in range(50)])
    name, password = "em_test_" + uuid.uuid4().hex[:8], "acl-" + uuid.uuid4().hex
    redis_client.execute_command("ACL", "SETUSER", name, "on", ">" + password, "allkeys", "+ping", "+select",
                                 "+scan", "+exists")
    try:
        args = dict(params, login_user=name, login_password=password, pattern="acl:*")
        dry = run_module("redis_keys", args, check_mode=True)
        assert not dry.get("failed"), dry.get("msg")
        assert dry["matched"] == 50
        real = run_module("redis_keys", args)
        assert real.get("failed") is True
        assert "refused the command (ACL)" in real["msg"] and "after 0 keys deleted" in real["msg"]
        assert password not in real["_raw"]
        assert db_client.dbsize() == 50
    finally:
        redis_client.execute_command("ACL", "DELUSER", name)
