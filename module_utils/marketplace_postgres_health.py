# Read-only health gather of a PostgreSQL server for the Equipment Marketplace runbook.
# The code of library/postgres_health.py (which keeps the documentation and main()); also a part of health_gather.
from __future__ import annotations

import contextlib
import time

from ansible.module_utils.marketplace_common import (
    check,
    json_safe,
    threshold_check,
    validate_non_negative,
    worst_status,
)
from ansible.module_utils.marketplace_postgres import (
    ConnectError,
    connect,
    elapsed_ms,
    error_message,
    fetch_dicts,
    ping,
    postgres_common_argument_spec,
    read_only_transaction,
    require_psycopg,
    secrets_of,
    sql,
    truncate,
    validate_common,
)

APPLICATION_NAME = "ansible-postgres_health"
SECTIONS = ["liveness", "connections", "long_queries", "transactions", "blocking", "slow_queries", "cache",
            "maintenance", "databases"]
NON_NEGATIVE = [
    "connections_warning_pct", "connections_critical_pct", "long_query_warning_seconds",
    "long_query_critical_seconds", "long_transaction_warning_seconds", "long_transaction_critical_seconds",
    "idle_in_transaction_warning_seconds", "idle_in_transaction_critical_seconds", "blocking_warning_seconds",
    "blocking_critical_seconds", "slow_query_top", "slow_query_min_calls", "slow_query_mean_warning_ms",
    "slow_query_mean_critical_ms", "cache_hit_warning_pct", "cache_hit_critical_pct", "stale_analyze_days",
    "stale_analyze_warning_tables", "wraparound_warning", "wraparound_critical", "dead_tuples_min",
    "dead_tuples_warning_pct", "dead_tuples_critical_pct", "database_size_warning_bytes",
    "database_size_critical_bytes", "max_rows", "query_max_length",
]
PERCENTAGES = ["connections_warning_pct", "connections_critical_pct", "cache_hit_warning_pct",
               "cache_hit_critical_pct", "dead_tuples_warning_pct", "dead_tuples_critical_pct"]
IDLE_IN_TRANSACTION = ("idle in transaction", "idle in transaction (aborted)")


def build_argument_spec():
    spec = postgres_common_argument_spec()
    spec.update(
        sections=dict(type="list", elements="str", default=list(SECTIONS), choices=list(SECTIONS)),
        connections_warning_pct=dict(type="float", default=80.0),
        connections_critical_pct=dict(type="float", default=95.0),
        long_query_warning_seconds=dict(type="float", default=300.0),
        long_query_critical_seconds=dict(type="float", default=900.0),
        long_transaction_warning_seconds=dict(type="float", default=600.0),
        long_transaction_critical_seconds=dict(type="float", default=1800.0),
        idle_in_transaction_warning_seconds=dict(type="float", default=60.0),
        idle_in_transaction_critical_seconds=dict(type="float", default=300.0),
        blocking_warning_seconds=dict(type="float", default=30.0),
        blocking_critical_seconds=dict(type="float", default=300.0),
        slow_query_top=dict(type="int", default=10),
        slow_query_min_calls=dict(type="int", default=5),
        slow_query_mean_warning_ms=dict(type="float", default=1000.0),
        slow_query_mean_critical_ms=dict(type="float", default=5000.0),
        cache_hit_warning_pct=dict(type="float", default=98.0),
        cache_hit_critical_pct=dict(type="float", default=90.0),
        stale_analyze_days=dict(type="float", default=7.0),
        stale_analyze_warning_tables=dict(type="int", default=1),
        wraparound_warning=dict(type="int", default=1300000000),
        wraparound_critical=dict(type="int", default=1400000000),
        dead_tuples_min=dict(type="int", default=10000),
        dead_tuples_warning_pct=dict(type="float", default=20.0),
        dead_tuples_critical_pct=dict(type="float", default=50.0),
        database_size_warning_bytes=dict(type="int"),
        database_size_critical_bytes=dict(type="int"),
        max_rows=dict(type="int", default=20),
        query_max_length=dict(type="int", default=300),
    )
    return spec


def _lowest(*limits):
    present = [x for x in limits if x is not None]
    return min(present) if present else 0.0


def _f(value, digits=3):
    return None if value is None else round(float(value), digits)


def _seconds(value):
    return "%.1f s" % value if value is not None else "n/a"


class Gatherer:
    """Runs the selected sections on one connection inside one READ ONLY transaction."""

    def __init__(self, params):
        self.p = params
        self.secrets = secrets_of(params)
        self.checks = {}
        self.result = {}
        self._activity = None

    # -- helpers -------------------------------------------------------------------------------------
    def add(self, name, chk):
        self.checks[name] = {"name": name, "status": chk["status"], "value": chk["value"],
                             "threshold": chk["threshold"], "message": chk["message"]}

    def qtext(self, text):
        return truncate(text, self.p["query_max_length"])

    def section(self, conn, name, func, check_names):
        """Run one section in a savepoint; on error its checks become 'unknown' with a scrubbed reason."""
        for attempt in (1, 2):
            try:
                with conn.transaction():
                    func(conn)
                return
            except Exception as exc:  # a statement timeout, a missing privilege, a concurrent DROP DATABASE
                msg = error_message(exc, self.secrets)
                retry = attempt == 1 and getattr(exc, "sqlstate", None) in ("3D000", "40001", "40P01")
                if retry:
                    continue
                self.result.setdefault("section_errors", {})[name] = msg
                for check_name in check_names:
                    self.add(check_name, check("unknown", None, None, "%s not gathered: %s" % (name, msg)))
                return

    def activity(self, conn):
        """pg_stat_activity once per gather (the transaction's snapshot is consistent for every section)."""
        if self._activity is None:
            self._activity = fetch_dicts(conn, """
                SELECT pid, backend_type, usename, datname, application_name, client_addr, state,
                       wait_event_type, wait_event, pid = pg_backend_pid() AS is_self,
                       extract(epoch FROM clock_timestamp() - query_start)::float8 AS query_seconds,
                       extract(epoch FROM clock_timestamp() - xact_start)::float8 AS xact_seconds,
                       extract(epoch FROM clock_timestamp() - state_change)::float8 AS state_seconds,
                       left(query, %s) AS query
                  FROM pg_stat_activity""", (self.p["query_max_length"] + 1,))
        return self._activity

    def session(self, row, **extra):
        out = {"pid": row["pid"], "user": row["usename"], "database": row["datname"],
               "application_name": row["application_name"], "client_addr": row["client_addr"],
               "state": row["state"]}
        out.update(extra)
        out["query"] = self.qtext(row["query"])
        return out

    # -- sections -------------------------------------------------------------------------------------
    def server(self, conn):
        row = fetch_dicts(conn, """
            SELECT current_setting('server_version') AS version,
                   current_setting('server_version_num')::int AS version_num,
                   pg_postmaster_start_time() AS started,
                   extract(epoch FROM clock_timestamp() - pg_postmaster_start_time())::float8 AS uptime_seconds,
                   pg_is_in_recovery() AS in_recovery, current_database() AS database,
                   current_user AS "user", pg_backend_pid() AS pid""")[0]
        row["uptime_seconds"] = _f(row["uptime_seconds"], 1)
        self.version_num = row["version_num"]
        return row

    def connections(self, conn):
        limits = fetch_dicts(conn, """
            SELECT current_setting('max_connections')::int AS max_connections,
                   current_setting('superuser_reserved_connections')::int AS superuser_reserved_connections,
                   coalesce(current_setting('reserved_connections', true), '0')::int AS reserved_connections""")[0]
        clients = [r for r in self.activity(conn) if r["backend_type"] == "client backend"]
        usable = max(limits["max_connections"] - limits["superuser_reserved_connections"]
                     - limits["reserved_connections"], 1)
        by_state, by_db, by_user = {}, {}, {}
        for r in clients:
            state = r["state"] or "unknown"
            by_state[state] = by_state.get(state, 0) + 1
            by_db[r["datname"] or "unknown"] = by_db.get(r["datname"] or "unknown", 0) + 1
            by_user[r["usename"] or "unknown"] = by_user.get(r["usename"] or "unknown", 0) + 1
        pct = round(100.0 * len(clients) / usable, 2)
        info = dict(limits, usable=usable, client_backends=len(clients), pct=pct, by_state=by_state,
                    by_database=by_db, by_user=by_user)
        self.result["connections"] = info
        chk = threshold_check(pct, self.p["connections_warning_pct"], self.p["connections_critical_pct"],
                              unit="%", label="connection usage")
        chk["message"] += " (%d client backends of %d usable: max_connections %d - superuser_reserved %d%s)" % (
            len(clients), usable, limits["max_connections"], limits["superuser_reserved_connections"],
            (" - reserved %d" % limits["reserved_connections"]) if limits["reserved_connections"] else "")
        self.add("connections", chk)

    def long_queries(self, conn):
        warn, crit = self.p["long_query_warning_seconds"], self.p["long_query_critical_seconds"]
        floor = _lowest(warn, crit)
        rows = [r for r in self.activity(conn)
                if r["backend_type"] == "client backend" and not r["is_self"] and r["state"] == "active"
                and r["query_seconds"] is not None and r["query_seconds"] >= floor]
        rows.sort(key=lambda r: -r["query_seconds"])
        self.result["long_queries"] = [
            self.session(r, duration_seconds=_f(r["query_seconds"], 1), wait_event_type=r["wait_event_type"],
                         wait_event=r["wait_event"]) for r in rows[: self.p["max_rows"]]]
        self.add("long_queries", self._age_check(rows, "query_seconds", warn, crit, "active queries",
                                                 "running longer than"))

    def _age_check(self, rows, key, warn, crit, what, verb):
        threshold = {"warning": warn, "critical": crit}
        if not rows:
            return check("ok", 0, threshold, "no %s %s %s" % (what, verb, _seconds(_lowest(warn, crit))))
        longest = rows[0]
        chk = threshold_check(round(longest[key], 1), warn, crit, unit=" s", label="longest")
        chk["message"] = "%d %s %s %s; %s (pid %s, user %s)" % (
            len(rows), what, verb, _seconds(_lowest(warn, crit)), chk["message"], longest["pid"], longest["usename"])
        return chk

    def transactions(self, conn):
        p = self.p
        clients = [r for r in self.activity(conn) if r["backend_type"] == "client backend" and not r["is_self"]]
        lt_floor = _lowest(p["long_transaction_warning_seconds"], p["long_transaction_critical_seconds"])
        long_tx = sorted((r for r in clients if r["xact_seconds"] is not None and r["xact_seconds"] >= lt_floor),
                         key=lambda r: -r["xact_seconds"])
        it_floor = _lowest(p["idle_in_transaction_warning_seconds"], p["idle_in_transaction_critical_seconds"])
        idle = sorted((r for r in clients if r["state"] in IDLE_IN_TRANSACTION and r["state_seconds"] is not None
                       and r["state_seconds"] >= it_floor), key=lambda r: -r["state_seconds"])
        self.result["long_transactions"] = [
            self.session(r, xact_seconds=_f(r["xact_seconds"], 1), state_seconds=_f(r["state_seconds"], 1))
            for r in long_tx[: p["max_rows"]]]
        self.result["idle_in_transaction"] = [
            self.session(r, idle_seconds=_f(r["state_seconds"], 1), xact_seconds=_f(r["xact_seconds"], 1))
            for r in idle[: p["max_rows"]]]
        self.add("long_transactions", self._age_check(
            long_tx, "xact_seconds", p["long_transaction_warning_seconds"], p["long_transaction_critical_seconds"],
            "transactions", "open longer than"))
        self.add("idle_in_transaction", self._age_check(
            idle, "state_seconds", p["idle_in_transaction_warning_seconds"],
            p["idle_in_transaction_critical_seconds"], "sessions", "idle in transaction longer than"))

    def blocking(self, conn):
        by_pid = {r["pid"]: r for r in self.activity(conn)}
        # pg_blocking_pids() takes the lock manager's partition locks: call it only for backends that wait on a
        # heavyweight lock, under the transaction's statement timeout.
        since = "l.waitstart" if getattr(self, "version_num", 150000) >= 140000 else "NULL::timestamptz"
        pairs = fetch_dicts(conn, sql.SQL("""
            SELECT a.pid AS blocked_pid, b.pid AS blocking_pid,
                   extract(epoch FROM clock_timestamp() - coalesce(w.since, a.state_change))::float8 AS wait_seconds
              FROM pg_stat_activity a
              CROSS JOIN LATERAL unnest(pg_blocking_pids(a.pid)) AS b(pid)
              LEFT JOIN LATERAL (SELECT min({since}) AS since FROM pg_locks l
                                  WHERE l.pid = a.pid AND NOT l.granted) w ON true
             WHERE a.wait_event_type = 'Lock' AND a.pid <> pg_backend_pid()""").format(since=sql.SQL(since)))
        out = []
        waiting = {p["blocked_pid"] for p in pairs}
        for pair in pairs:
            blocked = by_pid.get(pair["blocked_pid"], {})
            blocking = by_pid.get(pair["blocking_pid"], {})
            out.append({
                "blocked_pid": pair["blocked_pid"],
                "blocked_user": blocked.get("usename"),
                "blocked_database": blocked.get("datname"),
                "blocked_query": self.qtext(blocked.get("query")),
                "blocked_wait_seconds": _f(pair["wait_seconds"], 1),
                "blocked_wait_event": blocked.get("wait_event"),
                "blocking_pid": pair["blocking_pid"],
                "blocking_user": blocking.get("usename"),
                "blocking_query": self.qtext(blocking.get("query")) if pair["blocking_pid"] else
                "(prepared transaction)",
                "blocking_state": blocking.get("state"),
                "blocking_backend_type": blocking.get("backend_type"),
                "blocking_xact_seconds": _f(blocking.get("xact_seconds"), 1),
                "blocking_application_name": blocking.get("application_name"),
            })
        out.sort(key=lambda x: -(x["blocked_wait_seconds"] or 0))
        blockers = sorted({x["blocking_pid"] for x in out if x["blocking_pid"] and x["blocking_pid"] not in waiting})
        self.result["blocking"] = out[: self.p["max_rows"]]
        self.result["blockers"] = blockers
        warn, crit = self.p["blocking_warning_seconds"], self.p["blocking_critical_seconds"]
        threshold = {"warning": warn, "critical": crit}
        if not out:
            self.add("blocking", check("ok", 0, threshold, "no backend is waiting on a lock held by another"))
            return
        longest = out[0]
        chk = threshold_check(longest["blocked_wait_seconds"] or 0.0, warn, crit, unit=" s", label="longest lock wait")
        chk["message"] = "%d blocking pair(s), %d blocked backend(s), root blocker(s) %s; %s (pid %s blocked by %s)" % (
            len(out), len(waiting), ", ".join(map(str, blockers)) or "none (a wait cycle)", chk["message"],
            longest["blocked_pid"], longest["blocking_pid"])
        self.add("blocking", chk)

    def slow_queries(self, conn):
        p = self.p
        ext = fetch_dicts(conn, """
            SELECT e.extversion, n.nspname FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace
             WHERE e.extname = 'pg_stat_statements'""")
        # pg_settings hides superuser-only settings from other roles: no row means "cannot tell".
        preload = fetch_dicts(conn, "SELECT setting FROM pg_settings WHERE name = 'shared_preload_libraries'")
        preloaded = None
        if preload:
            preloaded = "pg_stat_statements" in [x.strip().strip('"') for x in (preload[0]["setting"] or "").split(",")]
        info = {"enabled": False, "installed": ext[0]["extversion"] if ext else None, "preloaded": preloaded,
                "reason": None, "by_mean": [], "by_total": []}
        self.result["slow_queries"] = info
        threshold = {"warning": p["slow_query_mean_warning_ms"], "critical": p["slow_query_mean_critical_ms"]}
        database = fetch_dicts(conn, "SELECT current_database() AS d")[0]["d"]
        reasons = []
        if preloaded is False:
            reasons.append("pg_stat_statements is not in shared_preload_libraries (needs a server restart)")
        if not ext:
            reasons.append("the extension is not created in database %s (CREATE EXTENSION pg_stat_statements)"
                           % database)
        if reasons:
            info["reason"] = "; ".join(reasons)
            self.add("slow_queries", check("warning", None, threshold,
                                           "pg_stat_statements not enabled: " + info["reason"]))
            return
        version = tuple(int(x) for x in ext[0]["extversion"].split(".")[:2])
        mean_col, total_col = ("mean_exec_time", "total_exec_time") if version >= (1, 8) else ("mean_time",
                                                                                                 "total_time")
        query = sql.SQL("""
            WITH s AS (
              SELECT s.queryid, s.calls, s.{mean}::float8 AS mean_ms, s.{total}::float8 AS total_ms, s.rows,
                     r.rolname, d.datname, left(s.query, %s) AS query,
                     row_number() OVER (ORDER BY s.{mean} DESC) AS rank_mean,
                     row_number() OVER (ORDER BY s.{total} DESC) AS rank_total
                FROM {schema}.pg_stat_statements s
                LEFT JOIN pg_roles r ON r.oid = s.userid
                LEFT JOIN pg_database d ON d.oid = s.dbid
               WHERE s.calls >= %s)
            SELECT * FROM s WHERE rank_mean <= %s OR rank_total <= %s""").format(
            mean=sql.Identifier(mean_col), total=sql.Identifier(total_col),
            schema=sql.Identifier(ext[0]["nspname"]))
        try:
            with conn.transaction():
                rows = fetch_dicts(conn, query, (p["query_max_length"] + 1, p["slow_query_min_calls"],
                                                 p["slow_query_top"], p["slow_query_top"]))
        except Exception as exc:
            if getattr(exc, "sqlstate", None) != "55000":  # object_not_in_prerequisite_state: not preloaded
                raise
            info["preloaded"] = False
            info["reason"] = "pg_stat_statements is not in shared_preload_libraries (needs a server restart)"
            self.add("slow_queries", check("warning", None, threshold,
                                           "pg_stat_statements not enabled: " + info["reason"]))
            return

        def entry(r):
            return {"queryid": r["queryid"], "calls": r["calls"], "mean_exec_time_ms": _f(r["mean_ms"]),
                    "total_exec_time_ms": _f(r["total_ms"]), "rows": r["rows"], "user": r["rolname"],
                    "database": r["datname"], "query": self.qtext(r["query"])}

        info["enabled"] = True
        info["by_mean"] = [entry(r) for r in sorted((r for r in rows if r["rank_mean"] <= p["slow_query_top"]),
                                                    key=lambda r: r["rank_mean"])]
        info["by_total"] = [entry(r) for r in sorted((r for r in rows if r["rank_total"] <= p["slow_query_top"]),
                                                     key=lambda r: r["rank_total"])]
        if not info["by_mean"]:
            self.add("slow_queries", check("ok", 0, threshold, "pg_stat_statements enabled; no statement recorded"))
            return
        top = info["by_mean"][0]
        chk = threshold_check(round(top["mean_exec_time_ms"], 2), threshold["warning"], threshold["critical"],
                              unit=" ms", label="slowest mean execution time")
        chk["message"] += " (queryid %s, %s calls)" % (top["queryid"], top["calls"])
        self.add("slow_queries", chk)

    def cache(self, conn):
        rows = fetch_dicts(conn, """
            SELECT datname, blks_hit, blks_read, datname = current_database() AS current,
                   CASE WHEN blks_hit + blks_read > 0
                        THEN round(100.0 * blks_hit / (blks_hit + blks_read), 3)::float8 END AS hit_ratio_pct
              FROM pg_stat_database WHERE datname IS NOT NULL ORDER BY datname""")
        current = next((r for r in rows if r["current"]), None)
        dbs = [{"database": r["datname"], "hit_ratio_pct": r["hit_ratio_pct"], "blks_hit": r["blks_hit"],
                "blks_read": r["blks_read"]} for r in rows]
        info = {"database": current["datname"] if current else None,
                "hit_ratio_pct": current["hit_ratio_pct"] if current else None,
                "blks_hit": current["blks_hit"] if current else None,
                "blks_read": current["blks_read"] if current else None, "databases": dbs}
        self.result["cache"] = info
        warn, crit = self.p["cache_hit_warning_pct"], self.p["cache_hit_critical_pct"]
        if info["hit_ratio_pct"] is None:
            self.add("cache_hit_ratio", check("ok", None, {"warning": warn, "critical": crit},
                                              "no block reads recorded yet in %s" % info["database"]))
            return
        chk = threshold_check(info["hit_ratio_pct"], warn, crit, higher_is_worse=False, unit="%",
                              label="cache hit ratio of %s" % info["database"])
        self.add("cache_hit_ratio", chk)

    def maintenance(self, conn):
        p = self.p
        stale = fetch_dicts(conn, """
            SELECT schemaname, relname, n_live_tup, n_mod_since_analyze, last_analyze, last_autoanalyze,
                   extract(epoch FROM clock_timestamp() - greatest(last_analyze, last_autoanalyze))::float8
                     AS analyze_age_seconds,
                   count(*) OVER () AS total
              FROM pg_stat_user_tables
             WHERE n_mod_since_analyze > 0
               AND (greatest(last_analyze, last_autoanalyze) IS NULL
                    OR greatest(last_analyze, last_autoanalyze) < clock_timestamp() - make_interval(secs => %s))
             ORDER BY n_mod_since_analyze DESC LIMIT %s""", (p["stale_analyze_days"] * 86400.0, p["max_rows"]))
        dead = fetch_dicts(conn, """
            SELECT schemaname, relname, n_live_tup, n_dead_tup, last_vacuum, last_autovacuum,
                   round(100.0 * n_dead_tup / nullif(n_live_tup + n_dead_tup, 0), 2)::float8 AS dead_pct,
                   count(*) OVER () AS total
              FROM pg_stat_user_tables WHERE n_dead_tup >= %s
             ORDER BY dead_pct DESC NULLS LAST LIMIT %s""", (p["dead_tuples_min"], p["max_rows"]))
        wrap = fetch_dicts(conn, """
            SELECT datname, age(datfrozenxid)::bigint AS xid_age, mxid_age(datminmxid)::bigint AS mxid_age
              FROM pg_database ORDER BY age(datfrozenxid) DESC""")
        info = {
            "stale_analyze": [{"table": "%s.%s" % (r["schemaname"], r["relname"]), "n_live_tup": r["n_live_tup"],
                               "n_mod_since_analyze": r["n_mod_since_analyze"], "last_analyze": r["last_analyze"],
                               "last_autoanalyze": r["last_autoanalyze"],
                               "analyze_age_seconds": _f(r["analyze_age_seconds"], 0)} for r in stale],
            "stale_analyze_total": stale[0]["total"] if stale else 0,
            "dead_tuples": [{"table": "%s.%s" % (r["schemaname"], r["relname"]), "n_live_tup": r["n_live_tup"],
                             "n_dead_tup": r["n_dead_tup"], "dead_pct": r["dead_pct"], "last_vacuum": r["last_vacuum"],
                             "last_autovacuum": r["last_autovacuum"]} for r in dead],
            "dead_tuples_total": dead[0]["total"] if dead else 0,
            "wraparound": [{"database": r["datname"], "xid_age": r["xid_age"], "mxid_age": r["mxid_age"]}
                           for r in wrap],
        }
        self.result["maintenance"] = info

        n_stale = info["stale_analyze_total"]
        threshold = {"days": p["stale_analyze_days"], "warning": p["stale_analyze_warning_tables"]}
        if n_stale and p["stale_analyze_warning_tables"] is not None and n_stale >= p["stale_analyze_warning_tables"]:
            names = ", ".join(t["table"] for t in info["stale_analyze"][:5])
            self.add("stale_analyze", check("warning", n_stale, threshold,
                                            "%d table(s) changed and not analysed for %s days: %s"
                                            % (n_stale, _fmt_num(p["stale_analyze_days"]), names)))
        else:
            self.add("stale_analyze", check("ok", n_stale, threshold, "%d table(s) with a stale analyze (limit %s days)"
                                            % (n_stale, _fmt_num(p["stale_analyze_days"]))))

        dead_threshold = {"warning": p["dead_tuples_warning_pct"], "critical": p["dead_tuples_critical_pct"],
                          "min_dead_tuples": p["dead_tuples_min"]}
        worst = info["dead_tuples"][0] if info["dead_tuples"] else None
        if worst is None or worst["dead_pct"] is None:
            self.add("dead_tuples", check("ok", 0, dead_threshold, "no table has %d or more dead tuples"
                                          % p["dead_tuples_min"]))
        else:
            chk = threshold_check(worst["dead_pct"], p["dead_tuples_warning_pct"], p["dead_tuples_critical_pct"],
                                  unit="%", label="dead tuples of %s" % worst["table"])
            chk["threshold"] = dead_threshold
            chk["message"] += " (%d dead of %d)" % (worst["n_dead_tup"], worst["n_dead_tup"] + worst["n_live_tup"])
            self.add("dead_tuples", chk)

        oldest = wrap[0] if wrap else None
        chk = threshold_check(oldest["xid_age"] if oldest else None, p["wraparound_warning"],
                              p["wraparound_critical"], label="age(datfrozenxid) of %s" % (
                                  oldest["datname"] if oldest else "?"))
        self.add("wraparound", chk)

    def databases(self, conn):
        rows = fetch_dicts(conn, """
            SELECT d.datname, d.datallowconn,
                   CASE WHEN has_database_privilege(d.oid, 'CONNECT') THEN pg_database_size(d.oid) END AS size_bytes,
                   s.numbackends, age(d.datfrozenxid)::bigint AS xid_age
              FROM pg_database d LEFT JOIN pg_stat_database s ON s.datid = d.oid
             WHERE NOT d.datistemplate ORDER BY size_bytes DESC NULLS LAST, d.datname""")
        dbs = [{"name": r["datname"], "size_bytes": r["size_bytes"], "size_pretty": _pretty(r["size_bytes"]),
                "numbackends": r["numbackends"], "allow_connections": r["datallowconn"], "xid_age": r["xid_age"]}
               for r in rows]
        self.result["databases"] = dbs
        biggest = next((d for d in dbs if d["size_bytes"] is not None), None)
        warn, crit = self.p["database_size_warning_bytes"], self.p["database_size_critical_bytes"]
        if biggest is None:
            self.add("database_size", check("ok", None, {"warning": warn, "critical": crit},
                                            "no database size readable"))
            return
        chk = threshold_check(biggest["size_bytes"], warn, crit, label="largest database %s size" % biggest["name"])
        chk["message"] = chk["message"].replace(str(biggest["size_bytes"]), "%d bytes (%s)" % (
            biggest["size_bytes"], biggest["size_pretty"]), 1)
        self.add("database_size", chk)

    # -- driver ---------------------------------------------------------------------------------------
    def run(self):
        p = self.p
        started = time.monotonic()
        sections = ["liveness"] + [s for s in SECTIONS if s != "liveness" and s in p["sections"]]
        self.result.update(available=False, reason=None, sections=sections,
                           liveness={"ping": None, "category": None, "connect_ms": None})
        try:
            conn = connect(p, APPLICATION_NAME)
        except ConnectError as exc:
            return self._unavailable(exc.reason, exc.category, started)
        try:
            lock_timeout = p["statement_timeout"]
            with read_only_transaction(conn, p["statement_timeout"], lock_timeout):
                try:
                    server = self.server(conn)
                except Exception as exc:
                    return self._unavailable(error_message(exc, self.secrets), "query_failed", started)
                connect_ms = elapsed_ms(started)
                self.result.update(available=True, server=server)
                self.result["liveness"]["connect_ms"] = connect_ms
                self.add("liveness", check("ok", connect_ms, None, "PostgreSQL %s answered a query in %s ms"
                                           % (server["version"], connect_ms)))
                plan = [
                    ("connections", self.connections, ["connections"]),
                    ("long_queries", self.long_queries, ["long_queries"]),
                    ("transactions", self.transactions, ["long_transactions", "idle_in_transaction"]),
                    ("blocking", self.blocking, ["blocking"]),
                    ("slow_queries", self.slow_queries, ["slow_queries"]),
                    ("cache", self.cache, ["cache_hit_ratio"]),
                    ("maintenance", self.maintenance, ["stale_analyze", "dead_tuples", "wraparound"]),
                    ("databases", self.databases, ["database_size"]),
                ]
                for name, func, check_names in plan:
                    if name in sections:
                        self.section(conn, name, func, check_names)
        except Exception as exc:  # the connection broke mid-gather (server restarted, network)
            if not self.result.get("available"):
                return self._unavailable(error_message(exc, self.secrets), "query_failed", started)
            self.result.setdefault("section_errors", {})["transaction"] = error_message(exc, self.secrets)
        finally:
            with contextlib.suppress(Exception):
                conn.close()
        self.result["checks"] = self.checks
        self.result["report_checks"] = report_checks(self.checks, sections, p, self.result.get("reason"))
        self.result["status"] = worst_status(c["status"] for c in self.checks.values())
        self.result["duration_ms"] = elapsed_ms(started)
        return json_safe(self.result)

    def _unavailable(self, reason, category, started):
        if category not in ("unreachable", "timeout"):
            # the server answered at the TCP level: say whether it accepts connections (pg_isready's view)
            self.result["liveness"]["ping"] = ping(self.p)
        self.result["liveness"]["category"] = category
        self.result.update(available=False, reason=reason, status="critical")
        self.checks = {}
        self.add("liveness", check("critical", False, None, "PostgreSQL unavailable (%s): %s" % (category, reason)))
        self.result["checks"] = self.checks
        self.result["report_checks"] = report_checks(self.checks, self.result["sections"], self.p, reason)
        self.result["duration_ms"] = elapsed_ms(started)
        return json_safe(self.result)


# The runbook severity of a critical check (others count as P2 in the report).
REPORT_SEVERITY = {"liveness": "P0", "connections": "P1"}


def report_checks(checks, sections, params, reason):
    """``checks`` (by name) in the run report's form; the Key Metrics of the asked sections that were not
    measured (the server unavailable) as unknown checks."""
    out = []
    for name, chk in checks.items():
        chk = dict(chk, name="postgres_" + name, component="postgres")
        if name == "connections":
            chk["unit"] = "%"
        if chk["status"] == "critical" and name in REPORT_SEVERITY:
            chk["severity"] = REPORT_SEVERITY[name]
        out.append(chk)
    if "connections" in sections and "connections" not in checks:  # the Key Metric, listed measured or not
        out.append(missing_connections_check(params, reason or "PostgreSQL unavailable"))
    return out


def missing_connections_check(params, reason):
    return {"name": "postgres_connections", "status": "unknown", "value": None, "component": "postgres", "unit": "%",
            "threshold": {"warning": params["connections_warning_pct"], "critical": params["connections_critical_pct"]},
            "message": "connections not measured: %s" % reason}


def failed_report_checks(params, msg):
    """health_gather: the report checks of a part that failed (``msg`` says why)."""
    out = [{"name": "postgres_liveness", "status": "critical", "value": False, "threshold": None,
            "component": "postgres", "severity": "P0", "message": "PostgreSQL unavailable: %s" % msg}]
    if "connections" in params["sections"]:
        out.append(missing_connections_check(params, "PostgreSQL unavailable"))
    return out


def _fmt_num(value):
    return ("%.2f" % value).rstrip("0").rstrip(".") if isinstance(value, float) else str(value)


def _pretty(size):
    if size is None:
        return None
    value = float(size)
    for unit in ("bytes", "kB", "MB", "GB", "TB"):
        if value < 1024 or unit == "TB":
            return ("%d %s" % (value, unit)) if unit == "bytes" else ("%.1f %s" % (value, unit))
        value /= 1024.0
    return None  # pragma: no cover


def validate(module):
    p = module.params
    validate_common(module)
    validate_non_negative(module, p, NON_NEGATIVE)
    over = [n for n in PERCENTAGES if p.get(n) is not None and p[n] > 100]
    if over:
        module.fail_json(msg="percentage option(s) must be between 0 and 100: %s" % ", ".join(sorted(over)))


def gather(params):
    """The whole gather as a plain function (used by main() and by the benchmark)."""
    return Gatherer(params).run()


def run(module):
    """The module's work for an AnsibleModule-like object (params, fail_json, exit_json, no_log_values);
    health_gather calls it in-process with its own."""
    require_psycopg(module)
    validate(module)
    result = gather(module.params)
    module.exit_json(changed=False, **result)
