# Read-only Redis health gather for the Equipment Marketplace runbook.
# The code of library/redis_health.py (which keeps the documentation and main()); also a part of health_gather.
from __future__ import annotations

import datetime
import math
import time

from ansible.module_utils.marketplace_common import (
    check,
    json_safe,
    threshold_check,
    validate_non_negative,
    worst_status,
)
from ansible.module_utils.marketplace_redis import (
    classify_error,
    connect,
    decode_key,
    describe_error,
    redis_argument_spec,
    require_redis_lib,
    validate_connection_params,
)

SECTIONS = ["memory", "stats", "clients", "latency", "slowlog", "persistence", "keyspace"]

THRESHOLDS = [
    "memory_warning_pct", "memory_critical_pct", "fragmentation_warning", "fragmentation_critical",
    "fragmentation_min_used_mb", "hit_rate_warning_pct", "hit_rate_critical_pct", "hit_rate_min_lookups",
    "evicted_keys_warning", "evicted_keys_critical", "clients_warning_pct", "clients_critical_pct",
    "rejected_connections_warning", "rejected_connections_critical", "latency_warning_ms", "latency_critical_ms",
    "latency_events_warning", "slowlog_warning", "slowlog_critical", "rdb_age_warning_seconds",
]


def build_argument_spec():
    spec = redis_argument_spec()
    spec.update(
        sections=dict(type="list", elements="str", default=list(SECTIONS), choices=list(SECTIONS)),
        sample_seconds=dict(type="float", default=1.0),
        latency_samples=dict(type="int", default=100),
        slowlog_entries=dict(type="int", default=10),
        recent_seconds=dict(type="int", default=900),
        memory_warning_pct=dict(type="float", default=80),
        memory_critical_pct=dict(type="float", default=90),
        fragmentation_warning=dict(type="float", default=1.5),
        fragmentation_critical=dict(type="float"),
        fragmentation_min_used_mb=dict(type="float", default=100),
        hit_rate_warning_pct=dict(type="float", default=80),
        hit_rate_critical_pct=dict(type="float", default=50),
        hit_rate_min_lookups=dict(type="int", default=100),
        evicted_keys_warning=dict(type="int"),
        evicted_keys_critical=dict(type="int"),
        clients_warning_pct=dict(type="float", default=80),
        clients_critical_pct=dict(type="float", default=95),
        rejected_connections_warning=dict(type="int", default=1),
        rejected_connections_critical=dict(type="int"),
        latency_warning_ms=dict(type="float", default=10),
        latency_critical_ms=dict(type="float", default=50),
        latency_events_warning=dict(type="int", default=1),
        slowlog_warning=dict(type="int", default=10),
        slowlog_critical=dict(type="int"),
        rdb_age_warning_seconds=dict(type="int", default=86400),
    )
    return spec


def validate(module):
    p = module.params
    validate_connection_params(module)
    validate_non_negative(module, p, [*THRESHOLDS, "sample_seconds", "latency_samples", "slowlog_entries",
                                      "recent_seconds"])
    problems = []
    for name in ("memory_warning_pct", "memory_critical_pct", "hit_rate_warning_pct", "hit_rate_critical_pct",
                 "clients_warning_pct", "clients_critical_pct"):
        if p[name] is not None and p[name] > 100:
            problems.append("%s is a percentage and must not exceed 100" % name)
    for warn, crit, higher in (("memory_warning_pct", "memory_critical_pct", True),
                               ("fragmentation_warning", "fragmentation_critical", True),
                               ("hit_rate_warning_pct", "hit_rate_critical_pct", False),
                               ("evicted_keys_warning", "evicted_keys_critical", True),
                               ("clients_warning_pct", "clients_critical_pct", True),
                               ("rejected_connections_warning", "rejected_connections_critical", True),
                               ("latency_warning_ms", "latency_critical_ms", True),
                               ("slowlog_warning", "slowlog_critical", True)):
        w, c = p[warn], p[crit]
        if w is not None and c is not None and ((w > c) if higher else (w < c)):
            problems.append("%s (%s) must be %s %s (%s)" % (warn, w, "at most" if higher else "at least", crit, c))
    if p["sample_seconds"] > 300:
        problems.append("sample_seconds must not exceed 300")
    if p["latency_samples"] > 100000:
        problems.append("latency_samples must not exceed 100000")
    if problems:
        module.fail_json(msg="; ".join(problems))


def named(name, result):
    out = {"name": name}
    out.update(result)
    return out


def pct(part, whole):
    if whole in (None, 0) or part is None:
        return None
    return round(100.0 * part / whole, 2)


def percentile(sorted_values, p):
    """Nearest-rank percentile of an ascending list."""
    if not sorted_values:
        return None
    rank = max(1, math.ceil(p / 100.0 * len(sorted_values)))
    return sorted_values[min(rank, len(sorted_values)) - 1]


def iso(ts):
    return datetime.datetime.fromtimestamp(int(ts), tz=datetime.timezone.utc).isoformat()  # noqa: UP017 - targets may run Python < 3.11


def to_text(value):
    if isinstance(value, (bytes, bytearray)):
        return bytes(value).decode("utf-8", errors="replace")
    return value


class Gatherer:
    def __init__(self, module, client):
        self.module = module
        self.params = module.params
        self.client = client
        self.checks = []
        self.result = {}

    def add(self, name, result):
        self.checks.append(named(name, result))

    def section_error(self, section, exc):
        msg = describe_error(exc, self.params, action="query")
        self.result[section] = {"error": msg}
        self.add("redis_%s" % section, check("unknown", None, None, "%s section unavailable: %s" % (section, msg)))

    # --- sampling -----------------------------------------------------------------------------------------
    def timed_ping(self):
        start = time.perf_counter()
        self.client.ping()
        return (time.perf_counter() - start) * 1000.0

    def sample(self, sections):
        """First INFO, the window (with the timed PINGs spread over it), second INFO."""
        p = self.params
        info0 = self.client.info()
        t0 = time.monotonic()
        windowed = p["sample_seconds"] > 0 and bool({"stats", "clients", "latency"} & set(sections))
        pings, ping_error = [], None
        want_pings = "latency" in sections and p["latency_samples"] > 0
        try:
            if windowed:
                n = p["latency_samples"] if want_pings else 0
                interval = p["sample_seconds"] / n if n else 0.0
                for i in range(n):
                    delay = t0 + i * interval - time.monotonic()
                    if delay > 0:
                        time.sleep(delay)
                    pings.append(self.timed_ping())
                remaining = t0 + p["sample_seconds"] - time.monotonic()
                if remaining > 0:
                    time.sleep(remaining)
            elif want_pings:
                for _ in range(p["latency_samples"]):
                    pings.append(self.timed_ping())
        except Exception as exc:  # a PING timing out mid-window is a latency finding, not a crash
            ping_error = exc
        info1, elapsed = None, None
        if windowed and ({"stats", "clients"} & set(sections)):
            info1 = self.client.info("stats")
            elapsed = time.monotonic() - t0
        return info0, info1, elapsed, pings, ping_error

    # --- sections -----------------------------------------------------------------------------------------
    def server(self, info):
        role = info.get("role")
        server = {
            "version": to_text(info.get("redis_version")),
            "mode": info.get("redis_mode"),
            "uptime_seconds": info.get("uptime_in_seconds"),
            "role": role,
            "connected_slaves": info.get("connected_slaves"),
            "master_link_status": info.get("master_link_status") if role == "slave" else None,
        }
        self.result["server"] = server
        if role == "slave":
            up = info.get("master_link_status") == "up"
            self.add("redis_replication", check("ok" if up else "critical", info.get("master_link_status"), "up",
                                                "replica link to master is %s" % info.get("master_link_status")))

    def memory(self, info):
        p = self.params
        used, maxmem = info.get("used_memory"), info.get("maxmemory") or 0
        frag = info.get("mem_fragmentation_ratio")
        mem = {
            "used_bytes": used,
            "rss_bytes": info.get("used_memory_rss"),
            "peak_bytes": info.get("used_memory_peak"),
            "lua_bytes": info.get("used_memory_lua"),
            "maxmemory_bytes": maxmem,
            "used_pct": pct(used, maxmem) if maxmem else None,
            "policy": info.get("maxmemory_policy"),
            "fragmentation_ratio": frag,
        }
        self.result["memory"] = mem
        if maxmem:
            self.add("redis_memory", threshold_check(mem["used_pct"], p["memory_warning_pct"],
                                                     p["memory_critical_pct"], unit="%",
                                                     label="memory used (% of maxmemory)"))
        else:
            self.add("redis_memory", check("ok", None, {"warning": p["memory_warning_pct"],
                                                        "critical": p["memory_critical_pct"]},
                                           "maxmemory is 0 (unlimited): used %s bytes, no percentage to judge"
                                           % used))
        min_used = p["fragmentation_min_used_mb"] * 1024 * 1024
        if frag is not None and used is not None and used < min_used:
            self.add("redis_fragmentation", check(
                "ok", frag, {"warning": p["fragmentation_warning"], "critical": p["fragmentation_critical"]},
                "fragmentation ratio %s not judged: used memory %.1f MiB is below fragmentation_min_used_mb %s"
                % (frag, used / 1048576.0, p["fragmentation_min_used_mb"])))
        else:
            self.add("redis_fragmentation", threshold_check(frag, p["fragmentation_warning"],
                                                            p["fragmentation_critical"], label="fragmentation ratio"))

    def stats(self, info0, info1, elapsed):
        p = self.params

        def delta(name):
            if info1 is None:
                return None
            a, b = info0.get(name), info1.get(name)
            if a is None or b is None or b < a:  # counters reset (CONFIG RESETSTAT) during the window
                return None
            return b - a

        life_hits, life_misses = info0.get("keyspace_hits", 0), info0.get("keyspace_misses", 0)
        hits, misses = delta("keyspace_hits"), delta("keyspace_misses")
        lookups = None if hits is None or misses is None else hits + misses
        commands = delta("total_commands_processed")
        st = {
            "window_seconds": round(elapsed, 3) if elapsed is not None else None,
            "hits": hits,
            "misses": misses,
            "hit_rate_pct": pct(hits, lookups) if lookups else None,
            "lifetime_hits": life_hits,
            "lifetime_misses": life_misses,
            "lifetime_hit_rate_pct": pct(life_hits, life_hits + life_misses) if (life_hits + life_misses) else None,
            "evicted_keys": delta("evicted_keys"),
            "expired_keys": delta("expired_keys"),
            "lifetime_evicted_keys": info0.get("evicted_keys"),
            "lifetime_expired_keys": info0.get("expired_keys"),
            "commands": commands,
            "ops_per_sec": round(commands / elapsed, 1) if commands is not None and elapsed else None,
        }
        self.result["stats"] = st
        hr_threshold = {"warning": p["hit_rate_warning_pct"], "critical": p["hit_rate_critical_pct"]}
        if info1 is None:
            rate, n, scope = st["lifetime_hit_rate_pct"], life_hits + life_misses, "lifetime"
        else:
            rate, n, scope = st["hit_rate_pct"], lookups or 0, "window of %.1fs" % elapsed
        if n < p["hit_rate_min_lookups"]:
            self.add("redis_hit_rate", check("ok", rate, hr_threshold,
                                             "hit rate not judged: %s lookups in the %s (< hit_rate_min_lookups %s)"
                                             % (n, scope, p["hit_rate_min_lookups"])))
        else:
            self.add("redis_hit_rate", threshold_check(rate, p["hit_rate_warning_pct"], p["hit_rate_critical_pct"],
                                                       higher_is_worse=False, unit="%",
                                                       label="keyspace hit rate (%s, %s lookups)" % (scope, n)))
        evicted = st["evicted_keys"] if info1 is not None else st["lifetime_evicted_keys"]
        self.add("redis_evicted_keys", threshold_check(
            evicted, p["evicted_keys_warning"], p["evicted_keys_critical"],
            label="evicted keys (%s)" % ("window" if info1 is not None else "lifetime")))

    def clients(self, info0, info1):
        p = self.params
        maxclients, source = info0.get("maxclients"), "info"
        if maxclients is None:
            try:
                cfg = self.client.config_get("maxclients")
                maxclients = int(cfg.get(b"maxclients", cfg.get("maxclients")))
                source = "config"
            except Exception:  # CONFIG renamed/disabled or denied by ACL: report without the percentage
                maxclients, source = None, "unavailable"
        connected = info0.get("connected_clients")
        life_rejected = info0.get("rejected_connections")
        rejected = None
        if info1 is not None and info1.get("rejected_connections") is not None and life_rejected is not None:
            rejected = max(0, info1["rejected_connections"] - life_rejected)
        cl = {
            "connected": connected,
            "blocked": info0.get("blocked_clients"),
            "maxclients": maxclients,
            "used_pct": pct(connected, maxclients),
            "maxclients_source": source,
            "rejected_connections": rejected,
            "lifetime_rejected_connections": life_rejected,
        }
        self.result["clients"] = cl
        if maxclients is None:
            self.add("redis_clients", check("unknown", connected, {"warning": p["clients_warning_pct"],
                                                                   "critical": p["clients_critical_pct"]},
                                            "%s clients connected; maxclients unavailable (CONFIG disabled?)"
                                            % connected))
        else:
            self.add("redis_clients", threshold_check(cl["used_pct"], p["clients_warning_pct"],
                                                      p["clients_critical_pct"], unit="%",
                                                      label="clients %s/%s" % (connected, maxclients)))
        value = rejected if info1 is not None else life_rejected
        self.add("redis_rejected_connections", threshold_check(
            value, p["rejected_connections_warning"], p["rejected_connections_critical"],
            label="rejected connections (%s)" % ("window" if info1 is not None else "lifetime")))

    def latency(self, pings, ping_error):
        p = self.params
        values = sorted(pings)
        lat = {
            "samples": len(values),
            "p50_ms": round(percentile(values, 50), 3) if values else None,
            "p99_ms": round(percentile(values, 99), 3) if values else None,
            "max_ms": round(values[-1], 3) if values else None,
            "min_ms": round(values[0], 3) if values else None,
            "mean_ms": round(sum(values) / len(values), 3) if values else None,
        }
        threshold = {"warning": p["latency_warning_ms"], "critical": p["latency_critical_ms"]}
        if ping_error is not None:
            lat["error"] = describe_error(ping_error, p, action="PING")
            self.add("redis_latency", check("critical", lat["max_ms"], threshold,
                                            "PING failed after %d samples: %s" % (len(values), lat["error"])))
        elif values:
            self.add("redis_latency", threshold_check(lat["p99_ms"], p["latency_warning_ms"],
                                                      p["latency_critical_ms"], unit=" ms",
                                                      label="PING p99 over %d samples" % len(values)))
        now = time.time()
        events, recent = [], 0
        try:
            for row in self.client.execute_command("LATENCY", "LATEST") or []:
                name, ts, latest, worst = to_text(row[0]), int(row[1]), int(row[2]), int(row[3])
                age = max(0, int(now - ts))
                recent += age <= p["recent_seconds"]
                events.append({"event": name, "latest_at": iso(ts), "age_seconds": age,
                               "latest_ms": latest, "max_ms": worst})
            lat["events"] = events
            lat["recent_events"] = recent
            self.add("redis_latency_events", threshold_check(
                recent, p["latency_events_warning"], None,
                label="LATENCY LATEST events in the last %ss" % p["recent_seconds"]))
        except Exception as exc:  # LATENCY denied by ACL or renamed: report, do not fail the gather
            lat["events"] = None
            lat["recent_events"] = None
            lat["events_error"] = describe_error(exc, p, action="query")
        self.result["latency"] = lat

    def slowlog(self):
        p = self.params
        now = time.time()
        length = self.client.execute_command("SLOWLOG", "LEN")
        # The whole log (at most slowlog-max-len entries) to count the recent ones; values are never returned.
        rows = self.client.execute_command("SLOWLOG", "GET", max(int(length or 0), p["slowlog_entries"], 1)) or []
        entries, recent = [], 0
        for row in rows:
            ts = int(row[1])
            age = max(0, int(now - ts))
            recent += age <= p["recent_seconds"]
            if len(entries) < p["slowlog_entries"]:
                args = list(row[3]) if len(row) > 3 else []
                entries.append({
                    "id": int(row[0]),
                    "at": iso(ts),
                    "age_seconds": age,
                    "duration_ms": round(int(row[2]) / 1000.0, 3),
                    "command": decode_key(args[0]).lower() if args else None,
                    "first_arg": decode_key(args[1], limit=100) if len(args) > 1 else None,
                    "args": len(args) - 1 if args else 0,
                    "client": to_text(row[4]) if len(row) > 4 else None,
                })
        self.result["slowlog"] = {"length": int(length or 0), "recent": recent, "entries": entries}
        self.add("redis_slowlog", threshold_check(recent, p["slowlog_warning"], p["slowlog_critical"],
                                                  label="slow log entries in the last %ss" % p["recent_seconds"]))

    def persistence(self, info):
        p = self.params
        now = time.time()
        last_save = info.get("rdb_last_save_time")
        per = {
            "loading": bool(info.get("loading")),
            "rdb_last_bgsave_status": info.get("rdb_last_bgsave_status"),
            "rdb_bgsave_in_progress": bool(info.get("rdb_bgsave_in_progress")),
            "rdb_changes_since_last_save": info.get("rdb_changes_since_last_save"),
            "rdb_last_save_age_seconds": max(0, int(now - last_save)) if last_save else None,
            "aof_enabled": bool(info.get("aof_enabled")),
            "aof_last_write_status": info.get("aof_last_write_status"),
            "aof_last_bgrewrite_status": info.get("aof_last_bgrewrite_status"),
            "aof_rewrite_in_progress": bool(info.get("aof_rewrite_in_progress")),
        }
        self.result["persistence"] = per
        failed = []
        if per["rdb_last_bgsave_status"] not in (None, "ok"):
            failed.append("last RDB bgsave %s" % per["rdb_last_bgsave_status"])
        if per["aof_enabled"]:
            for name in ("aof_last_write_status", "aof_last_bgrewrite_status"):
                if per[name] not in (None, "ok"):
                    failed.append("%s %s" % (name.replace("_", " "), per[name]))
        if failed:
            status, message = "critical", "persistence failing: " + "; ".join(failed)
        elif per["loading"]:
            status, message = "warning", "server is loading its dataset from disk"
        else:
            busy = [n for n in ("rdb_bgsave_in_progress", "aof_rewrite_in_progress") if per[n]]
            message = "RDB%s last save ok%s" % (" and AOF" if per["aof_enabled"] else "",
                                                (", in progress: " + ", ".join(busy)) if busy else "")
            status = "ok"
        self.add("redis_persistence", check(status, "failing" if failed else "ok", "ok", message))
        limit = p["rdb_age_warning_seconds"]
        age = per["rdb_last_save_age_seconds"]
        if limit and age is not None:
            if age >= limit and (per["rdb_changes_since_last_save"] or 0) > 0:
                self.add("redis_rdb_age", check("warning", age, limit,
                                                "last RDB save %ss ago with %s unsaved changes (>= %ss)"
                                                % (age, per["rdb_changes_since_last_save"], limit)))
            else:
                self.add("redis_rdb_age", check("ok", age, limit, "last RDB save %ss ago (%s unsaved changes)"
                                                % (age, per["rdb_changes_since_last_save"])))

    def keyspace(self, info):
        ks = {}
        for name, value in info.items():
            if isinstance(name, str) and name.startswith("db") and name[2:].isdigit() and isinstance(value, dict):
                ks[name] = {"keys": value.get("keys"), "expires": value.get("expires"),
                            "avg_ttl_ms": value.get("avg_ttl")}
        self.result["keyspace"] = dict(sorted(ks.items(), key=lambda kv: int(kv[0][2:])))

    def run(self, sections):
        self.result["ping_ms"] = round(self.timed_ping(), 3)
        try:
            info0, info1, elapsed, pings, ping_error = self.sample(sections)
        except Exception as exc:
            if classify_error(exc) in ("connection", "timeout", "auth"):
                raise  # the server went away: the caller reports available=false
            # INFO refused (ACL, renamed command): the server answers PING, so it is available; say what failed.
            self.result["server"] = {k: None for k in ("version", "mode", "uptime_seconds", "role",
                                                       "connected_slaves", "master_link_status")}
            for section in sections:
                self.section_error(section, exc)
            return self.result
        self.server(info0)
        for section in SECTIONS:
            if section not in sections:
                continue
            try:
                if section == "memory":
                    self.memory(info0)
                elif section == "stats":
                    self.stats(info0, info1, elapsed)
                elif section == "clients":
                    self.clients(info0, info1)
                elif section == "latency":
                    self.latency(pings, ping_error)
                elif section == "slowlog":
                    self.slowlog()
                elif section == "persistence":
                    self.persistence(info0)
                elif section == "keyspace":
                    self.keyspace(info0)
            except Exception as exc:  # one section failing (ACL, renamed command) must not hide the others
                self.section_error(section, exc)
        return self.result


def report_checks(checks, sections, reason=None):
    """``checks`` in the run report's form; with ``reason`` (the server unavailable) the Key Metric
    ``redis_memory`` of an asked memory section as an unknown check."""
    out = []
    for chk in checks:
        chk = dict(chk, component="redis")
        if chk["name"] == "redis_available" and chk["status"] == "critical":
            chk["severity"] = "P1"
        out.append(chk)
    names = {c["name"] for c in checks}
    if reason is not None and "memory" in sections and "redis_memory" not in names:
        out.append({"name": "redis_memory", "status": "unknown", "value": None, "threshold": None,
                    "message": "redis_memory not measured: %s" % reason, "component": "redis"})
    return out


def unavailable(reason, kind):
    """The result when the server is not available."""
    checks = [named("redis_available", check("critical", False, True, reason))]
    return dict(changed=False, available=False, reason=reason, reason_kind=kind, status="critical", checks=checks)


def failed_report_checks(params, msg):
    """health_gather: the report checks of a part that failed (``msg`` says why)."""
    checks = [named("redis_available", check("critical", False, True, "Redis check failed: %s" % msg))]
    return report_checks(checks, params["sections"], msg)


def run(module):
    """The module's work for an AnsibleModule-like object (params, fail_json, exit_json, no_log_values);
    health_gather calls it in-process with its own."""
    validate(module)
    require_redis_lib(module)
    p = module.params
    sections = [s for s in SECTIONS if s in set(p["sections"])]

    client, error = connect(p, client_name="ansible-redis_health")
    if error is not None:
        kind, reason = error
        result = unavailable(reason, kind)
        module.exit_json(report_checks=report_checks(result["checks"], sections, reason), **result)
    try:
        gatherer = Gatherer(module, client)
        try:
            result = gatherer.run(sections)
        except Exception as exc:  # the connection dropped mid-gather: a result, not a traceback
            reason = describe_error(exc, p, action="query")
            result = unavailable(reason, classify_error(exc))
            module.exit_json(report_checks=report_checks(result["checks"], sections, reason), **result)
        checks = [named("redis_available", check("ok", True, True, "PONG in %.2f ms" % result["ping_ms"]))]
        checks += gatherer.checks
        module.exit_json(changed=False, available=True, status=worst_status(c["status"] for c in checks),
                         checks=checks, report_checks=report_checks(checks, sections), **json_safe(result))
    finally:
        client.close()
