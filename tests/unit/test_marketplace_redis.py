"""module_utils/marketplace_redis.py: the pieces redis_keys counts with (no server)."""
from __future__ import annotations

import importlib

from devtools.modules import MODULE_UTILS  # noqa: F401 - registers module_utils/ under ansible.module_utils

_redis = importlib.import_module("ansible.module_utils.marketplace_redis")
DistinctKeys, PrefixCounter = _redis.DistinctKeys, _redis.PrefixCounter


def test_distinct_keys_counts_each_key_once_up_to_the_limit():
    distinct = DistinctKeys(limit=3)
    assert [k for k in [b"a", b"b", b"a", b"c", b"b"] if distinct.first(k)] == [b"a", b"b", b"c"]
    assert distinct.exact
    # The 4th distinct key passes the limit: it counts, and from then on every key does (no longer exact).
    assert distinct.first(b"d") and not distinct.exact
    assert distinct.first(b"a") and distinct.first(b"a")


def test_prefix_counter():
    counter = PrefixCounter(limit=2)
    for key in (b"cache:1", b"cache:2", b"session:1", b"other"):
        counter.add(key)
    assert counter.top(5) == ({"cache": 2, "session": 1}, 1)
