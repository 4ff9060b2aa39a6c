"""Decisions of the cache role that are not simple lookups: the one-line summary of the Redis status
(redis_health's result over the sampling window)."""
from __future__ import annotations

from ansible.module_utils.common.text.formatters import bytes_to_human

_STATUS = ("Redis %s: memory %s of %s (%s%%, %s); hit rate %s over %s s (%s hits, %s misses; lifetime %s%%); "
           "p50/p99 PING %s/%s ms; %s evicted, %s expired in the window; keyspace %s")


def cache_status_summary(result, sample_seconds=None):
    """'Redis 7.2.4: memory 1.20 MB of 256.00 MB (0.47%, allkeys-lru); hit rate 99.5% over 5 s ...', or
    'Redis unavailable: <reason>' when redis_health could not reach it."""
    result = result or {}
    if not result.get("available"):
        return "Redis unavailable: %s" % result.get("reason", "no answer")
    server, memory = result.get("server") or {}, result.get("memory") or {}
    stats, latency = result.get("stats") or {}, result.get("latency") or {}
    maxmemory = int(memory.get("maxmemory_bytes", 0))
    hit_rate = stats.get("hit_rate_pct")
    keyspace = ", ".join("%s=%s" % (db, info["keys"]) for db, info in (result.get("keyspace") or {}).items())
    return _STATUS % (
        server.get("version", "?"), bytes_to_human(int(memory.get("used_bytes", 0))),
        bytes_to_human(maxmemory) if maxmemory > 0 else "no limit", memory.get("used_pct", "-"),
        memory.get("policy", "?"), ("%s%%" % hit_rate) if hit_rate is not None else "n/a (no lookups)",
        stats.get("window_seconds", sample_seconds), stats.get("hits", "?"), stats.get("misses", "?"),
        stats.get("lifetime_hit_rate_pct", "?"), latency.get("p50_ms", "?"), latency.get("p99_ms", "?"),
        stats.get("evicted_keys", "?"), stats.get("expired_keys", "?"), keyspace or "empty")


class FilterModule:
    def filters(self):
        return {"cache_status_summary": cache_status_summary}
