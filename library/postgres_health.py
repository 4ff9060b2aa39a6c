#!/usr/bin/python
# Read-only health gather of a PostgreSQL server for the Equipment Marketplace runbook.
from __future__ import annotations

DOCUMENTATION = r"""
---
module: postgres_health
short_description: Read-only health gather of a PostgreSQL server (connections, locks, slow queries, maintenance)
description:
  - Gathers in one call what the operations runbook spreads over many C(psql) one-liners, and turns every value
    into a check C({name, status, value, threshold, message}) with C(status) one of C(ok), C(warning),
    C(critical) (or C(unknown) when a section could not be gathered, for example on a statement timeout).
  - Every query runs in a READ ONLY transaction limited by C(SET LOCAL statement_timeout) (O(statement_timeout),
    also used as its C(lock_timeout)); each section runs in its own savepoint, so one failing section does not
    hide the others.
  - An unreachable server, a wrong password or a missing database is a result, not a failure
    (RV(available=false) plus RV(reason)); the playbook decides the severity.
  - Connections count only C(backend_type = 'client backend') against
    C(max_connections - superuser_reserved_connections).
  - Blocking pairs come from C(pg_blocking_pids()), called only for backends waiting on a lock.
  - Slow queries need C(pg_stat_statements) preloaded and created in O(login_db); when it is not, the
    C(slow_queries) check says so clearly.
version_added: "1.0.0"
author:
  - Equipment Marketplace operations team
extends_documentation_fragment:
  - marketplace_postgres
options:
  sections:
    description:
      - Which sections to gather. Liveness (with version and uptime) is always gathered.
    type: list
    elements: str
    choices: [liveness, connections, long_queries, transactions, blocking, slow_queries, cache, maintenance, databases]
    default: [liveness, connections, long_queries, transactions, blocking, slow_queries, cache, maintenance, databases]
  connections_warning_pct:
    description: Client backends as a percentage of the usable connections at which the check warns.
    type: float
    default: 80.0
  connections_critical_pct:
    description: Client backends as a percentage of the usable connections at which the check is critical.
    type: float
    default: 95.0
  long_query_warning_seconds:
    description: An active query (other than this module's) running this many seconds is reported and warns.
    type: float
    default: 300.0
  long_query_critical_seconds:
    description: An active query running this many seconds makes the check critical.
    type: float
    default: 900.0
  long_transaction_warning_seconds:
    description: A transaction open this many seconds (C(xact_start)) is reported and warns.
    type: float
    default: 600.0
  long_transaction_critical_seconds:
    description: A transaction open this many seconds makes the check critical.
    type: float
    default: 1800.0
  idle_in_transaction_warning_seconds:
    description: A session idle in transaction this many seconds (since C(state_change)) is reported and warns.
    type: float
    default: 60.0
  idle_in_transaction_critical_seconds:
    description: A session idle in transaction this many seconds makes the check critical.
    type: float
    default: 300.0
  blocking_warning_seconds:
    description:
      - A backend waiting this many seconds on a lock held by another makes the C(blocking) check warn.
      - Every blocking pair is listed whatever its wait time.
    type: float
    default: 30.0
  blocking_critical_seconds:
    description: A lock wait this long makes the C(blocking) check critical.
    type: float
    default: 300.0
  slow_query_top:
    description: How many statements to list by mean and by total execution time.
    type: int
    default: 10
  slow_query_min_calls:
    description:
      - Statements called fewer times than this are left out of the slow-query lists and check, so one-off
        statements (migrations, seeds, a manual ANALYZE) do not hide the recurring ones. Use 1 to see all.
    type: int
    default: 5
  slow_query_mean_warning_ms:
    description: A statement whose mean execution time reaches this many milliseconds warns.
    type: float
    default: 1000.0
  slow_query_mean_critical_ms:
    description: A statement whose mean execution time reaches this many milliseconds is critical.
    type: float
    default: 5000.0
  cache_hit_warning_pct:
    description: Buffer cache hit ratio of O(login_db) at or below which the check warns.
    type: float
    default: 98.0
  cache_hit_critical_pct:
    description: Buffer cache hit ratio at or below which the check is critical.
    type: float
    default: 90.0
  stale_analyze_days:
    description:
      - A table with changes since its last (auto)analyze, analysed longer ago than this or never, is stale.
    type: float
    default: 7.0
  stale_analyze_warning_tables:
    description: Number of stale tables at which the C(stale_analyze) check warns.
    type: int
    default: 1
  wraparound_warning:
    description: C(age(datfrozenxid)) of any database at which the C(wraparound) check warns.
    type: int
    default: 1300000000
  wraparound_critical:
    description: C(age(datfrozenxid)) at which the C(wraparound) check is critical.
    type: int
    default: 1400000000
  dead_tuples_min:
    description: Tables with fewer dead tuples than this are ignored by the dead tuple check.
    type: int
    default: 10000
  dead_tuples_warning_pct:
    description: Dead tuples as a percentage of all tuples of a table at which the check warns.
    type: float
    default: 20.0
  dead_tuples_critical_pct:
    description: Dead tuples percentage at which the check is critical.
    type: float
    default: 50.0
  database_size_warning_bytes:
    description: Size of any database at which the C(database_size) check warns; unset means no limit.
    type: int
  database_size_critical_bytes:
    description: Size of any database at which the C(database_size) check is critical; unset means no limit.
    type: int
  max_rows:
    description: Longest list returned per finding (long queries, transactions, tables, pairs).
    type: int
    default: 20
  query_max_length:
    description: Query texts in the result are cut to this many characters.
    type: int
    default: 300
notes:
  - Check mode is supported; the module never changes anything.
  - Query texts are shown as the server reports them (cut to O(query_max_length)); passwords of the module
    never appear in the result.
  - O(login_user) sees every session's query text when it is a superuser or a member of C(pg_monitor).
  - The cache and maintenance checks look at O(login_db).
seealso:
  - module: postgres_admin
"""

EXAMPLES = r"""
- name: Gather the database health
  postgres_health:
    login_host: "{{ marketplace_db_host }}"
    login_port: "{{ marketplace_db_port }}"
    login_user: postgres
    login_password: "{{ marketplace_db_superuser_password }}"
    login_db: equipment_marketplace
  register: pg
  no_log: false
  check_mode: false
  changed_when: false

- name: Only connections and locks, with a tighter connection threshold
  postgres_health:
    login_host: 127.0.0.1
    login_port: 55432
    login_db: equipment_marketplace
    sections: [connections, blocking]
    connections_warning_pct: 70
  environment:
    PGPASSWORD: "{{ marketplace_db_superuser_password }}"
  register: pg_locks

- name: Stop when the database is down
  ansible.builtin.fail:
    msg: "database unavailable: {{ pg.reason }}"
  when: not pg.available | bool
"""

RETURN = r"""
available:
  description: Whether a real query succeeded (not only a TCP answer).
  returned: always
  type: bool
  sample: true
reason:
  description: Why the server is unavailable (password and bound values masked); null when available.
  returned: always
  type: str
  sample: "OperationalError: connection failed: ... password authentication failed for user \"postgres\""
status:
  description: Worst status of all checks (ok, warning, critical, unknown).
  returned: always
  type: str
  sample: ok
sections:
  description: Sections gathered.
  returned: always
  type: list
  elements: str
liveness:
  description: >-
    Liveness details. C(ping) is libpq's answer without authentication (accepting, rejecting, no_response,
    no_attempt; asked only when the login failed), C(category) classifies a failure (authentication_failed,
    unreachable, timeout, database_missing, ...), C(connect_ms) the time to connect and run the first query.
  returned: always
  type: dict
  sample: {"ping": null, "category": null, "connect_ms": 4.1}
checks:
  description: >-
    Checks keyed by name, each C({name, status, value, threshold, message}); C(checks.values() | list) is the
    report form. Names are liveness, connections, long_queries, long_transactions, idle_in_transaction, blocking,
    slow_queries, cache_hit_ratio, stale_analyze, dead_tuples, wraparound, database_size (per gathered section).
  returned: always
  type: dict
  sample: {"connections": {"name": "connections", "status": "ok", "value": 7.2,
           "threshold": {"warning": 80.0, "critical": 95.0}, "message": "connection usage 7.2% ..."}}
report_checks:
  description: >-
    The checks in the form of the run report, in the order of RV(checks): each name prefixed with C(postgres_)
    (C(postgres_liveness), C(postgres_connections), ...), C(component=postgres), and the runbook C(severity) of a
    critical C(postgres_liveness) (P0, the database unavailable) or C(postgres_connections) (P1, database
    connection issues); C(postgres_connections) has C(unit=%). When the server is unavailable,
    C(postgres_connections) (the Key Metric, when the connections section was asked for) is listed as
    C(unknown), not measured.
  returned: always
  type: list
  elements: dict
server:
  description: Version, version number, start time, uptime in seconds, recovery state, database, user and pid.
  returned: when available
  type: dict
  sample: {"version": "15.20", "version_num": 150020, "uptime_seconds": 3600.5, "in_recovery": false}
connections:
  description: >-
    C(max_connections), C(superuser_reserved_connections), C(usable), C(client_backends), C(pct), and counts
    C(by_state), C(by_database), C(by_user) of client backends.
  returned: when the connections section is gathered
  type: dict
long_queries:
  description: Active queries past the warning threshold, longest first (pid, user, database, duration, query, ...).
  returned: when the long_queries section is gathered
  type: list
  elements: dict
long_transactions:
  description: Transactions open past the warning threshold, oldest first (pid, user, state, xact_seconds, query).
  returned: when the transactions section is gathered
  type: list
  elements: dict
idle_in_transaction:
  description: Sessions idle in transaction past the warning threshold (pid, user, idle_seconds, xact_seconds, query).
  returned: when the transactions section is gathered
  type: list
  elements: dict
blocking:
  description: >-
    Blocking pairs, longest wait first, each with blocked_pid, blocked_user, blocked_query, blocked_wait_seconds,
    blocking_pid, blocking_user, blocking_query, blocking_state, blocking_xact_seconds, blocking_backend_type.
  returned: when the blocking section is gathered
  type: list
  elements: dict
blockers:
  description: Root blockers, the pids that block others while not waiting on a lock themselves.
  returned: when the blocking section is gathered
  type: list
  elements: int
slow_queries:
  description: >-
    C(enabled), C(installed) (extension version or null), C(preloaded) (null when the role may not read the
    setting), C(reason) when not enabled, and C(by_mean) / C(by_total) lists of statements (queryid, calls,
    mean_exec_time_ms, total_exec_time_ms, rows, user, database, query).
  returned: when the slow_queries section is gathered
  type: dict
cache:
  description: Buffer cache hit ratio of O(login_db) (C(hit_ratio_pct), C(blks_hit), C(blks_read)) and per database.
  returned: when the cache section is gathered
  type: dict
maintenance:
  description: >-
    C(stale_analyze) tables, C(dead_tuples) tables and C(wraparound) (xid and multixact age per database), plus
    C(stale_analyze_total) and C(dead_tuples_total) counts.
  returned: when the maintenance section is gathered
  type: dict
databases:
  description: Databases (not templates) with size_bytes, size_pretty, numbackends, allow_connections, xid_age.
  returned: when the databases section is gathered
  type: list
  elements: dict
section_errors:
  description: >-
    Sections that could not be gathered (a statement timeout, a missing privilege), with a one-line reason
    that carries no password and no bound value; their checks have status C(unknown).
  returned: when a section failed
  type: dict
  sample: {"blocking": "QueryCanceled (SQLSTATE 57014): canceling statement due to statement timeout"}
duration_ms:
  description: Wall time of the gather in milliseconds.
  returned: always
  type: float
"""

from ansible.module_utils.marketplace_module import MarketplaceModule
from ansible.module_utils.marketplace_postgres_health import build_argument_spec, run


def main():
    run(MarketplaceModule(argument_spec=build_argument_spec(), supports_check_mode=True))


if __name__ == "__main__":
    main()
