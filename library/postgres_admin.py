#!/usr/bin/python
# PostgreSQL operations of the Equipment Marketplace runbook: ANALYZE, cancel or terminate backends.
from __future__ import annotations

DOCUMENTATION = r"""
---
module: postgres_admin
short_description: ANALYZE a database or tables, cancel or terminate PostgreSQL backends by pid or by filter
description:
  - O(action=analyze) runs C(ANALYZE) on the whole O(login_db) or on the O(tables) given (identifiers quoted with
    C(psycopg.sql)); every table is resolved first, so an unknown name fails before anything runs.
  - O(action=cancel) and O(action=terminate) signal client backends chosen by O(pids) and/or by filters
    (O(older_than), O(states), O(users), O(databases), O(application_names), O(query_pattern),
    O(blockers_only)); every selector given must match. The module's own backend and backends that are not
    client backends (autovacuum, replication, background workers) are never touched.
  - Terminate uses C(pg_terminate_backend(pid, timeout)) and so knows whether the backend really exited.
  - After a cancel the module watches the backend for O(cancel_wait) milliseconds and reports whether the cancel
    had an effect. C(pg_cancel_backend) returns true for a backend that is idle in transaction but does nothing
    to it - its transaction and its locks stay; such a cancel is reported under RV(no_effect).
  - In check mode nothing is signalled or analysed; the result lists what would be done.
  - A connection failure (wrong password, server down) fails with a clear message that carries no password.
version_added: "1.0.0"
author:
  - Equipment Marketplace operations team
extends_documentation_fragment:
  - marketplace_postgres
options:
  action:
    description:
      - C(analyze) updates planner statistics; C(cancel) interrupts the running query of each chosen backend
        (C(pg_cancel_backend)); C(terminate) ends each chosen backend (C(pg_terminate_backend)).
    type: str
    required: true
    choices: [analyze, cancel, terminate]
  tables:
    description:
      - For O(action=analyze), the tables to analyse, as C(table) (found on the search path) or C(schema.table);
        double-quote parts that hold capitals or dots. Empty means the whole database.
    type: list
    elements: str
    default: []
  pids:
    description:
      - Backend process ids to cancel or terminate. Must be whole positive numbers.
    type: list
    elements: int
    default: []
  older_than:
    description:
      - Only backends whose age (see O(age_of)) is at least this many seconds.
    type: float
  age_of:
    description:
      - What O(older_than) measures. C(state) is the time since the last state change (the running time of an
        active query, or how long a session has been idle in transaction), C(query) since the query started,
        C(transaction) since the transaction started, C(backend) since the connection was opened.
    type: str
    default: state
    choices: [state, query, transaction, backend]
  states:
    description:
      - Only backends in one of these states.
    type: list
    elements: str
    choices: [active, idle, idle in transaction, idle in transaction (aborted), fastpath function call, disabled]
    default: []
  users:
    description: Only backends of these roles.
    type: list
    elements: str
    default: []
  databases:
    description: Only backends connected to these databases.
    type: list
    elements: str
    default: []
  application_names:
    description: Only backends with one of these C(application_name) values.
    type: list
    elements: str
    default: []
  query_pattern:
    description:
      - Only backends whose current or last query matches this PostgreSQL regular expression (case-insensitive,
        C(~*)). A malformed pattern fails before anything is signalled.
    type: str
  blockers_only:
    description: Only backends that currently block another backend's lock request (C(pg_blocking_pids)).
    type: bool
    default: false
  max_targets:
    description:
      - Refuse (fail, signalling nothing) when the selection matches more backends than this. 0 means no limit.
    type: int
    default: 50
  terminate_timeout:
    description:
      - Milliseconds C(pg_terminate_backend(pid, timeout)) waits for each backend to exit.
    type: int
    default: 5000
  cancel_wait:
    description:
      - Milliseconds to watch a cancelled backend for the cancel to take effect before reporting it as having had
        no effect.
    type: int
    default: 1000
  analyze_timeout:
    description:
      - Seconds C(ANALYZE) may run (its C(statement_timeout), in place of O(statement_timeout)); 0 means no limit.
    type: int
    default: 600
  query_max_length:
    description: Query texts in the result are cut to this many characters.
    type: int
    default: 300
notes:
  - Check mode is supported and changes nothing.
  - Without O(pids) and without any filter the module refuses to cancel or terminate anything.
  - Signalling another role's backend needs O(login_user) to be a superuser or a member of C(pg_signal_backend).
seealso:
  - module: postgres_health
"""

EXAMPLES = r"""
- name: Terminate the root blockers that postgres_health found
  postgres_admin:
    login_host: 127.0.0.1
    login_port: 55432
    login_db: equipment_marketplace
    login_password: "{{ marketplace_db_superuser_password }}"
    action: terminate
    pids: "{{ pg.blockers }}"
  when: pg.blockers | length > 0

- name: Cancel the application's queries running for more than five minutes
  postgres_admin:
    login_db: equipment_marketplace
    action: cancel
    states: [active]
    users: [marketplace]
    older_than: 300
  environment:
    PGHOST: 127.0.0.1
    PGPORT: "55432"
    PGPASSWORD: "{{ marketplace_db_superuser_password }}"
  register: cancelled

- name: End sessions idle in transaction for ten minutes (a cancel would have no effect on them)
  postgres_admin:
    login_db: equipment_marketplace
    action: terminate
    states: ["idle in transaction", "idle in transaction (aborted)"]
    older_than: 600

- name: Refresh planner statistics of two tables
  postgres_admin:
    login_db: equipment_marketplace
    action: analyze
    tables: [orders, public.payments]
"""

RETURN = r"""
action:
  description: The action asked for.
  returned: always
  type: str
  sample: terminate
msg:
  description: One line saying what was done, or would be done in check mode.
  returned: always
  type: str
  sample: "terminate: 1 backend(s) ended (4242); 0 with no effect"
targets:
  description: >-
    Backends chosen (before acting): pid, user, database, application_name, client_addr, backend_type, state,
    age_seconds (per O(age_of)), xact_seconds, wait_event_type, wait_event, query (cut to O(query_max_length)).
  returned: when action is cancel or terminate
  type: list
  elements: dict
results:
  description: >-
    One entry per target: pid, outcome (C(cancelled), C(terminated), C(ended), C(no_effect), C(failed); C(planned)
    in check mode), signalled (what pg_cancel_backend / pg_terminate_backend returned), state_before,
    state_after, and detail.
  returned: when action is cancel or terminate
  type: list
  elements: dict
done:
  description: Pids on which the action had its effect (query interrupted, backend ended).
  returned: when action is cancel or terminate
  type: list
  elements: int
no_effect:
  description: >-
    Pids that were signalled but did not change, for example a cancel sent to a backend idle in transaction
    (it keeps its transaction and its locks; terminate it instead).
  returned: when action is cancel or terminate
  type: list
  elements: int
failed:
  description: Pids the action could not be applied to (for example permission denied), see RV(results).
  returned: when action is cancel or terminate
  type: list
  elements: int
skipped:
  description: >-
    Pids given in O(pids) that were not acted on, each with a reason (own backend, no such backend, not a
    client backend, does not match the filters).
  returned: when action is cancel or terminate
  type: list
  elements: dict
scope:
  description: C(database) for a whole-database ANALYZE, C(tables) for the given tables.
  returned: when action is analyze
  type: str
tables:
  description: >-
    Tables (schema-qualified) analysed, or that would be in check mode; for the whole database its user tables.
  returned: when action is analyze
  type: list
  elements: str
analyzed:
  description: Tables whose statistics were refreshed, each with its table name and last_analyze after the run.
  returned: when action is analyze and not in check mode
  type: list
  elements: dict
duration_ms:
  description: Wall time of the module's work in milliseconds.
  returned: always
  type: float
"""

import contextlib
import time

from ansible.module_utils.marketplace_common import json_safe, validate_non_negative
from ansible.module_utils.marketplace_module import MarketplaceModule
from ansible.module_utils.marketplace_postgres import (
    ConnectError,
    connect,
    elapsed_ms,
    error_message,
    fetch_dicts,
    postgres_common_argument_spec,
    require_psycopg,
    secrets_of,
    set_session_timeouts,
    split_qualified,
    sql,
    truncate,
    validate_common,
)

APPLICATION_NAME = "ansible-postgres_admin"
STATES = ["active", "idle", "idle in transaction", "idle in transaction (aborted)", "fastpath function call",
          "disabled"]
AGE_COLUMNS = {"state": "state_change", "query": "query_start", "transaction": "xact_start",
               "backend": "backend_start"}
FILTERS = ["older_than", "states", "users", "databases", "application_names", "query_pattern", "blockers_only"]
POLL_SECONDS = 0.02


def build_argument_spec():
    spec = postgres_common_argument_spec()
    spec.update(
        action=dict(type="str", required=True, choices=["analyze", "cancel", "terminate"]),
        tables=dict(type="list", elements="str", default=[]),
        pids=dict(type="list", elements="int", default=[]),
        older_than=dict(type="float"),
        age_of=dict(type="str", default="state", choices=list(AGE_COLUMNS)),
        states=dict(type="list", elements="str", choices=list(STATES), default=[]),
        users=dict(type="list", elements="str", default=[]),
        databases=dict(type="list", elements="str", default=[]),
        application_names=dict(type="list", elements="str", default=[]),
        query_pattern=dict(type="str"),
        blockers_only=dict(type="bool", default=False),
        max_targets=dict(type="int", default=50),
        terminate_timeout=dict(type="int", default=5000),
        cancel_wait=dict(type="int", default=1000),
        analyze_timeout=dict(type="int", default=600),
        query_max_length=dict(type="int", default=300),
    )
    return spec


def _has_filters(p):
    return any(p.get(name) for name in FILTERS) or p.get("older_than") is not None


def validate(module):
    p = module.params
    validate_common(module)
    validate_non_negative(module, p, ["older_than", "max_targets", "terminate_timeout", "cancel_wait",
                                      "analyze_timeout", "query_max_length"])
    bad = [pid for pid in p["pids"] if pid <= 0]
    if bad:
        module.fail_json(msg="pids must be positive process ids; got %s" % ", ".join(map(str, bad)))
    if p["action"] == "analyze":
        used = [n for n in ["pids", *FILTERS] if n != "blockers_only" and (p.get(n) not in (None, [], ""))]
        if p["blockers_only"]:
            used.append("blockers_only")
        if used:
            module.fail_json(msg="action=analyze takes only tables; these options select backends: %s"
                             % ", ".join(used))
        for name in p["tables"]:
            try:
                split_qualified(name)
            except ValueError:
                module.fail_json(msg="malformed table name %r (use table or schema.table)" % name)
        return
    if p["tables"]:
        module.fail_json(msg="tables is only used with action=analyze")
    if p["query_pattern"] is not None and p["query_pattern"] == "":
        module.fail_json(msg="query_pattern must not be empty")
    if not p["pids"] and not _has_filters(p):
        module.fail_json(msg="action=%s needs pids or at least one filter (%s); refusing to signal every backend"
                         % (p["action"], ", ".join(FILTERS)))


class Admin:
    def __init__(self, module):
        self.module = module
        self.p = module.params
        self.secrets = secrets_of(self.p)
        self.started = time.monotonic()
        self.conn = None

    def fail(self, msg, **extra):
        self.close()
        extra.setdefault("action", self.p["action"])
        extra["duration_ms"] = elapsed_ms(self.started)
        self.module.fail_json(msg=msg, **json_safe(extra))

    def close(self):
        if self.conn is not None:
            with contextlib.suppress(Exception):
                self.conn.close()
            self.conn = None

    def db_error(self, what, exc, **extra):
        self.fail("%s failed: %s" % (what, error_message(exc, self.secrets)), **extra)

    def connect(self):
        try:
            self.conn = connect(self.p, APPLICATION_NAME)
        except ConnectError as exc:
            self.module.fail_json(msg="could not connect to PostgreSQL (%s): %s" % (exc.category, exc.reason),
                                  action=self.p["action"], duration_ms=elapsed_ms(self.started))
        try:
            set_session_timeouts(self.conn, self.p["statement_timeout"])
            self.version_num = int(self.conn.info.server_version)
        except Exception as exc:
            self.db_error("setting the session timeouts", exc)

    # -- analyze ---------------------------------------------------------------------------------------
    def analyze(self):
        p = self.p
        resolved, missing = [], []
        try:
            for name in p["tables"]:
                schema, table = split_qualified(name)
                rows = fetch_dicts(self.conn, """
                    SELECT n.nspname, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                     WHERE c.relname = %s AND c.relkind IN ('r', 'm', 'p')
                       AND (n.nspname = %s OR (%s::text IS NULL AND pg_table_is_visible(c.oid)))""",
                                   (table, schema, schema))
                if rows:
                    resolved.append((rows[0]["nspname"], rows[0]["relname"]))
                else:
                    missing.append(name)
            if missing:
                self.fail("table(s) not found in database %s: %s (nothing analysed)"
                          % (self.p["login_db"], ", ".join(missing)))
            if not resolved:
                rows = fetch_dicts(self.conn, "SELECT schemaname, relname FROM pg_stat_user_tables "
                                              "ORDER BY schemaname, relname")
                targets = [(r["schemaname"], r["relname"]) for r in rows]
            else:
                targets = list(dict.fromkeys(resolved))
        except Exception as exc:
            self.db_error("resolving the tables", exc)
        names = ["%s.%s" % t for t in targets]
        scope = "tables" if resolved else "database"
        result = dict(action="analyze", scope=scope, tables=names)
        if self.module.check_mode:
            what = "database %s" % p["login_db"] if scope == "database" else ", ".join(names)
            return dict(result, changed=True, msg="check mode: would ANALYZE %s" % what)
        if scope == "database":
            stmt = sql.SQL("ANALYZE")
        else:
            stmt = sql.SQL("ANALYZE {}").format(sql.SQL(", ").join(sql.Identifier(s, t) for s, t in targets))
        try:
            set_session_timeouts(self.conn, p["analyze_timeout"] * 1000)
            self.conn.execute(stmt)
            set_session_timeouts(self.conn, p["statement_timeout"])
            after = fetch_dicts(self.conn, """
                SELECT schemaname, relname, last_analyze FROM pg_stat_user_tables
                 WHERE (schemaname || '.' || relname) = ANY(%s) ORDER BY schemaname, relname""", (names,))
        except Exception as exc:
            self.db_error("ANALYZE", exc, changed=False)
        analyzed = [{"table": "%s.%s" % (r["schemaname"], r["relname"]), "last_analyze": r["last_analyze"]}
                    for r in after]
        what = "database %s (%d user tables)" % (p["login_db"], len(names)) if scope == "database" else \
            ", ".join(names)
        return dict(result, changed=True, analyzed=analyzed, msg="analysed %s" % what)

    # -- cancel / terminate ----------------------------------------------------------------------------
    def select(self):
        """Rows of pg_stat_activity: given pids (all of them, to say why one is skipped) or every backend."""
        p = self.p
        conds, args = [], []
        if p["states"]:
            conds.append(sql.SQL("a.state = ANY(%s)"))
            args.append(list(p["states"]))
        if p["users"]:
            conds.append(sql.SQL("a.usename = ANY(%s)"))
            args.append(list(p["users"]))
        if p["databases"]:
            conds.append(sql.SQL("a.datname = ANY(%s)"))
            args.append(list(p["databases"]))
        if p["application_names"]:
            conds.append(sql.SQL("a.application_name = ANY(%s)"))
            args.append(list(p["application_names"]))
        if p["query_pattern"] is not None:
            conds.append(sql.SQL("a.query ~* %s"))
            args.append(p["query_pattern"])
        if p["older_than"] is not None:
            conds.append(sql.SQL("a.{} <= clock_timestamp() - make_interval(secs => %s)").format(
                sql.Identifier(AGE_COLUMNS[p["age_of"]])))
            args.append(float(p["older_than"]))
        if p["blockers_only"]:
            conds.append(sql.SQL("a.pid IN (SELECT unnest(pg_blocking_pids(w.pid)) FROM pg_stat_activity w "
                                 "WHERE w.wait_event_type = 'Lock')"))
        matches = sql.SQL(" AND ").join(conds) if conds else sql.SQL("true")
        where = sql.SQL("WHERE a.pid = ANY(%s)") if p["pids"] else sql.SQL("")
        query = sql.SQL("""
            SELECT a.pid, a.usename, a.datname, a.application_name, a.client_addr, a.backend_type, a.state,
                   a.wait_event_type, a.wait_event, a.xact_start, a.query_start, a.state_change,
                   a.pid = pg_backend_pid() AS is_self,
                   extract(epoch FROM clock_timestamp() - a.{age})::float8 AS age_seconds,
                   extract(epoch FROM clock_timestamp() - a.xact_start)::float8 AS xact_seconds,
                   left(a.query, %s) AS query,
                   coalesce(({matches}), false) AS matches
              FROM pg_stat_activity a {where}
             ORDER BY a.pid""").format(age=sql.Identifier(AGE_COLUMNS[p["age_of"]]), matches=matches, where=where)
        params = [p["query_max_length"] + 1] + args + ([list(p["pids"])] if p["pids"] else [])
        return fetch_dicts(self.conn, query, params)

    def check_pattern(self):
        if self.p["query_pattern"] is None:
            return
        try:
            self.conn.execute("SELECT '' ~* %s", (self.p["query_pattern"],))
        except Exception as exc:
            if getattr(exc, "sqlstate", None) == "2201B":  # invalid_regular_expression
                primary = getattr(getattr(exc, "diag", None), "message_primary", None) or "invalid"
                self.fail("query_pattern is not a valid PostgreSQL regular expression (%s); nothing was signalled"
                          % primary.replace(self.p["query_pattern"], "<pattern>"))
            self.db_error("checking query_pattern", exc)

    def target_view(self, row):
        return {"pid": row["pid"], "user": row["usename"], "database": row["datname"],
                "application_name": row["application_name"], "client_addr": row["client_addr"],
                "backend_type": row["backend_type"], "state": row["state"],
                "age_seconds": None if row["age_seconds"] is None else round(row["age_seconds"], 1),
                "xact_seconds": None if row["xact_seconds"] is None else round(row["xact_seconds"], 1),
                "wait_event_type": row["wait_event_type"], "wait_event": row["wait_event"],
                "query": truncate(row["query"], self.p["query_max_length"])}

    def signal(self):
        p = self.p
        self.check_pattern()
        try:
            rows = self.select()
        except Exception as exc:
            self.db_error("selecting the backends", exc)
        targets, skipped = [], []
        found = {r["pid"] for r in rows}
        for pid in p["pids"]:
            if pid not in found:
                skipped.append({"pid": pid, "reason": "no such backend"})
        for row in rows:
            if row["is_self"]:
                if p["pids"]:
                    skipped.append({"pid": row["pid"], "reason": "own backend of this module"})
            elif row["backend_type"] != "client backend":
                if p["pids"]:
                    skipped.append({"pid": row["pid"], "reason": "not a client backend (%s)" % row["backend_type"]})
            elif not row["matches"]:
                if p["pids"]:
                    skipped.append({"pid": row["pid"], "reason": "does not match the filters"})
            else:
                targets.append(row)
        base = dict(action=p["action"], targets=[self.target_view(r) for r in targets], skipped=skipped,
                    done=[], no_effect=[], failed=[])
        if p["max_targets"] and len(targets) > p["max_targets"]:
            self.fail("the selection matches %d backends, more than max_targets=%d; nothing was signalled"
                      % (len(targets), p["max_targets"]), **dict(base, changed=False, results=[]))
        verb = "cancel" if p["action"] == "cancel" else "terminate"
        if self.module.check_mode:
            results = [{"pid": r["pid"], "outcome": "planned", "signalled": False, "state_before": r["state"],
                        "state_after": r["state"], "detail": self.plan_detail(verb, r)} for r in targets]
            pids = ", ".join(str(r["pid"]) for r in targets) or "none"
            return dict(base, results=results, changed=bool(targets),
                        msg="check mode: would %s %d backend(s): %s" % (verb, len(targets), pids))
        results = []
        for row in targets:
            try:
                outcome = self.cancel(row) if p["action"] == "cancel" else self.terminate(row)
            except Exception as exc:
                outcome = {"pid": row["pid"], "outcome": "failed", "signalled": False, "state_before": row["state"],
                           "state_after": None, "detail": error_message(exc, self.secrets)}
            results.append(outcome)
        base["results"] = results
        for res in results:
            if res["outcome"] in ("cancelled", "terminated", "ended"):
                base["done"].append(res["pid"])
            elif res["outcome"] == "no_effect":
                base["no_effect"].append(res["pid"])
            elif res["outcome"] == "failed":
                base["failed"].append(res["pid"])
        base["changed"] = bool(base["done"])
        base["msg"] = "%s: %d backend(s) %s (%s); %d with no effect%s; %d failed; %d skipped" % (
            verb, len(base["done"]), "cancelled" if verb == "cancel" else "ended",
            ", ".join(map(str, base["done"])) or "none", len(base["no_effect"]),
            (" (%s)" % ", ".join(map(str, base["no_effect"]))) if base["no_effect"] else "",
            len(base["failed"]), len(skipped))
        if base["failed"]:
            self.fail(base.pop("msg"), **base)
        return base

    @staticmethod
    def plan_detail(verb, row):
        detail = "check mode: would %s" % verb
        if verb == "cancel" and row["state"] != "active":
            detail += (" - but the backend is %s, with no running query: a cancel would have no effect%s"
                       % (row["state"], "; its transaction and locks would remain (terminate it instead)"
                          if (row["state"] or "").startswith("idle in transaction") else ""))
        return detail

    def current(self, pid):
        rows = fetch_dicts(self.conn, """
            SELECT a.state, a.query_start, a.xact_start, a.backend_type,
                   (SELECT count(*) FROM pg_locks l WHERE l.pid = a.pid AND l.granted) AS locks
              FROM pg_stat_activity a WHERE a.pid = %s""", (pid,))
        return rows[0] if rows else None

    def cancel(self, row):
        pid = row["pid"]
        before = self.current(pid)
        if before is None:
            return {"pid": pid, "outcome": "ended", "signalled": False, "state_before": row["state"],
                    "state_after": None, "detail": "the backend had already exited"}
        signalled = bool(self.conn.execute("SELECT pg_cancel_backend(%s)", (pid,)).fetchone()[0])
        deadline = time.monotonic() + self.p["cancel_wait"] / 1000.0
        after = before
        while True:
            after = self.current(pid)
            if after is None:
                return {"pid": pid, "outcome": "ended", "signalled": signalled, "state_before": before["state"],
                        "state_after": None, "detail": "the backend exited after the cancel"}
            if before["state"] == "active" and (after["state"] != "active"
                                                or after["query_start"] != before["query_start"]):
                return {"pid": pid, "outcome": "cancelled", "signalled": signalled, "state_before": "active",
                        "state_after": after["state"], "detail": "the running query was interrupted"}
            if time.monotonic() >= deadline:
                break
            time.sleep(POLL_SECONDS)
        if before["state"] in ("idle in transaction", "idle in transaction (aborted)"):
            detail = ("pg_cancel_backend returned %s but the backend is idle in transaction: a cancel only interrupts "
                      "a running query, so its transaction (open %s s) and its %d lock(s) remain; terminate it"
                      % (signalled, "?" if row["xact_seconds"] is None else round(row["xact_seconds"], 1),
                         after["locks"]))
        elif before["state"] == "active":
            detail = "the query was still running %d ms after the cancel" % self.p["cancel_wait"]
        else:
            detail = "the backend is %s: there is no running query to cancel" % before["state"]
        return {"pid": pid, "outcome": "no_effect", "signalled": signalled, "state_before": before["state"],
                "state_after": after["state"], "detail": detail}

    def terminate(self, row):
        pid = row["pid"]
        timeout = self.p["terminate_timeout"]
        if self.version_num >= 140000:
            signalled = bool(self.conn.execute("SELECT pg_terminate_backend(%s, %s)", (pid, timeout)).fetchone()[0])
        else:  # pragma: no cover - PostgreSQL 13 and older have no timeout argument
            signalled = bool(self.conn.execute("SELECT pg_terminate_backend(%s)", (pid,)).fetchone()[0])
        # PG 14+ already waited for the exit; allow a short grace for the activity view to catch up
        deadline = time.monotonic() + (timeout / 1000.0 if self.version_num < 140000 else 0.5)
        while True:
            after = self.current(pid)
            if after is None:
                break
            if time.monotonic() >= deadline:
                return {"pid": pid, "outcome": "no_effect", "signalled": signalled, "state_before": row["state"],
                        "state_after": after["state"],
                        "detail": "the backend was still present %d ms after pg_terminate_backend" % timeout}
            time.sleep(POLL_SECONDS)
        if signalled:
            return {"pid": pid, "outcome": "terminated", "signalled": True, "state_before": row["state"],
                    "state_after": None, "detail": "the backend exited"}
        return {"pid": pid, "outcome": "ended", "signalled": False, "state_before": row["state"],
                "state_after": None, "detail": "the backend had already exited"}

    def run(self):
        self.connect()
        try:
            result = self.analyze() if self.p["action"] == "analyze" else self.signal()
        finally:
            self.close()
        result["duration_ms"] = elapsed_ms(self.started)
        return json_safe(result)


def main():
    module = MarketplaceModule(argument_spec=build_argument_spec(), supports_check_mode=True)
    require_psycopg(module)
    validate(module)
    module.exit_json(**Admin(module).run())


if __name__ == "__main__":
    main()
