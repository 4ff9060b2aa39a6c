"""The cache role's status summary (roles/cache/filter_plugins/cache_filters.py). No Docker, no Redis."""
from __future__ import annotations

import importlib.util
from pathlib import Path

_PATH = Path(__file__).resolve().parents[2] / "roles" / "cache" / "filter_plugins" / "cache_filters.py"
_spec = importlib.util.spec_from_file_location("cache_filters", _PATH)
cf = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(cf)

RESULT = {"available": True, "server": {"version": "7.2.4"},
          "memory": {"used_bytes": 1258291, "maxmemory_bytes": 268435456, "used_pct": 0.47, "policy": "allkeys-lru"},
          "stats": {"hit_rate_pct": 99.5, "window_seconds": 5.0, "hits": 199, "misses": 1,
                    "lifetime_hit_rate_pct": 97.1, "evicted_keys": 0, "expired_keys": 2},
          "latency": {"p50_ms": 0.11, "p99_ms": 0.3},
          "keyspace": {"db0": {"keys": 12, "expires": 3}, "db1": {"keys": 40, "expires": 40}}}


def test_summary_of_a_reachable_redis():
    assert cf.cache_status_summary(RESULT, 5) == (
        "Redis 7.2.4: memory 1.20 MB of 256.00 MB (0.47%, allkeys-lru); hit rate 99.5% over 5.0 s (199 hits, "
        "1 misses; lifetime 97.1%); p50/p99 PING 0.11/0.3 ms; 0 evicted, 2 expired in the window; "
        "keyspace db0=12, db1=40")


def test_summary_without_limit_lookups_or_keys():
    result = {**RESULT, "memory": {"used_bytes": 1024, "maxmemory_bytes": 0, "used_pct": None, "policy": "noeviction"},
              "stats": {"hit_rate_pct": None}, "keyspace": {}}
    text = cf.cache_status_summary(result, 5)
    assert "memory 1.00 KB of no limit (None%, noeviction)" in text
    assert "hit rate n/a (no lookups) over 5 s (? hits, ? misses; lifetime ?%)" in text
    assert text.endswith("keyspace empty")


def test_summary_of_an_unreachable_redis():
    assert cf.cache_status_summary({"available": False, "reason": "connection refused"}) == \
        "Redis unavailable: connection refused"
    assert cf.cache_status_summary({"available": False}) == "Redis unavailable: no answer"
