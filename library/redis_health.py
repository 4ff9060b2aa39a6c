#!/usr/bin/python
# Read-only Redis health gather for the Equipment Marketplace runbook.
from __future__ import annotations

DOCUMENTATION = r"""
---
module: redis_health
short_description: Gather Redis health in one call and judge it against thresholds
description:
  - Read-only. Connects to one Redis server and reports PING, version, uptime and role, memory, hit rate over a
    sampling window and over the server's lifetime, evicted and expired keys as deltas over the window, clients
    against maxclients, rejected connections, latency percentiles from timed PINGs, C(LATENCY LATEST), the slow
    log, persistence status and the keyspace per database.
  - Cumulative INFO counters describe the whole uptime of the server; the hit rate and the evicted, expired and
    rejected counts are therefore measured between two INFO samples taken O(sample_seconds) apart. The timed
    PINGs are spread over the same window, so the module takes about O(sample_seconds) to run.
  - Each judged value becomes a check C({name, status, value, threshold, message}); C(status) is the worst of
    them. A threshold left unset (null) only reports the value.
  - An unreachable server or a refused password is a result, not a failure - C(available=false) with the
    reason - so that the playbook decides the severity. Bad options fail and nothing is contacted.
  - The password never appears in a result or message.
version_added: "1.0.0"
author:
  - Equipment Marketplace operations team
extends_documentation_fragment:
  - marketplace_redis
options:
  sections:
    description:
      - Which sections to gather. PING, version, uptime and role (RV(server)) are always gathered.
      - An unknown section fails the module.
    type: list
    elements: str
    choices: [memory, stats, clients, latency, slowlog, persistence, keyspace]
    default: [memory, stats, clients, latency, slowlog, persistence, keyspace]
  sample_seconds:
    description:
      - Length of the sampling window between the two INFO samples (used by V(stats), V(clients) and, for
        spreading the PINGs, V(latency)).
      - V(0) takes no window; the hit rate and eviction checks then judge lifetime counters.
    type: float
    default: 1.0
  latency_samples:
    description: Number of timed PINGs for the latency percentiles (spread over the window when there is one).
    type: int
    default: 100
  slowlog_entries:
    description:
      - Number of newest slow log entries returned (command name, first argument and argument count, never values).
    type: int
    default: 10
  recent_seconds:
    description: Slow log entries and C(LATENCY LATEST) events younger than this count as recent and are judged.
    type: int
    default: 900
  memory_warning_pct:
    description: Warning when used memory reaches this percentage of C(maxmemory) (only when C(maxmemory) > 0).
    type: float
    default: 80
  memory_critical_pct:
    description: Critical when used memory reaches this percentage of C(maxmemory).
    type: float
    default: 90
  fragmentation_warning:
    description: Warning when C(mem_fragmentation_ratio) reaches this value.
    type: float
    default: 1.5
  fragmentation_critical:
    description: Critical when C(mem_fragmentation_ratio) reaches this value.
    type: float
  fragmentation_min_used_mb:
    description:
      - The fragmentation ratio is judged only when used memory is at least this many MiB; on a nearly empty
        server the ratio of RSS to used memory is large and meaningless.
    type: float
    default: 100
  hit_rate_warning_pct:
    description: Warning when the keyspace hit rate over the window is at or below this percentage.
    type: float
    default: 80
  hit_rate_critical_pct:
    description: Critical when the keyspace hit rate over the window is at or below this percentage.
    type: float
    default: 50
  hit_rate_min_lookups:
    description: The hit rate is judged only when the window saw at least this many lookups (hits + misses).
    type: int
    default: 100
  evicted_keys_warning:
    description: Warning when at least this many keys were evicted during the window.
    type: int
  evicted_keys_critical:
    description: Critical when at least this many keys were evicted during the window.
    type: int
  clients_warning_pct:
    description: Warning when connected clients reach this percentage of C(maxclients).
    type: float
    default: 80
  clients_critical_pct:
    description: Critical when connected clients reach this percentage of C(maxclients).
    type: float
    default: 95
  rejected_connections_warning:
    description: Warning when at least this many connections were rejected (maxclients reached) during the window.
    type: int
    default: 1
  rejected_connections_critical:
    description: Critical when at least this many connections were rejected during the window.
    type: int
  latency_warning_ms:
    description: Warning when the p99 PING round trip reaches this many milliseconds.
    type: float
    default: 10
  latency_critical_ms:
    description: Critical when the p99 PING round trip reaches this many milliseconds.
    type: float
    default: 50
  latency_events_warning:
    description: Warning when at least this many C(LATENCY LATEST) events happened within O(recent_seconds).
    type: int
    default: 1
  slowlog_warning:
    description: Warning when at least this many slow log entries are younger than O(recent_seconds).
    type: int
    default: 10
  slowlog_critical:
    description: Critical when at least this many slow log entries are younger than O(recent_seconds).
    type: int
  rdb_age_warning_seconds:
    description:
      - Warning when the last successful RDB save is older than this while there are unsaved changes.
        V(0) disables the check.
    type: int
    default: 86400
notes:
  - Supports check mode; the module never changes anything.
  - C(maxclients) is read from C(INFO clients) (Redis 7) or C(CONFIG GET); a server with C(CONFIG) renamed or
    denied by ACL is tolerated.
  - Redis Cluster and Sentinel topologies are not walked; point the module at each node.
  - Health data covers the whole server, whichever logical database O(db) selects.
seealso:
  - module: redis_keys
"""

EXAMPLES = r"""
- name: Full Redis health gather against the stack's Redis
  redis_health:
    login_host: 127.0.0.1
    login_port: 56379
    login_password: "{{ marketplace_redis_password }}"
  register: redis_health
  no_log: false

- name: Quick liveness and memory only, no sampling window
  redis_health:
    login_host: 127.0.0.1
    login_port: 56379
    sections: [memory]
    sample_seconds: 0
  environment:
    REDIS_PASSWORD: "{{ marketplace_redis_password }}"
  register: redis_quick

- name: Stricter latency and hit rate, 5 s window
  redis_health:
    login_host: 127.0.0.1
    login_port: 56379
    sample_seconds: 5
    latency_samples: 500
    latency_warning_ms: 2
    hit_rate_warning_pct: 90
  register: redis_health

- name: Fail the play when Redis is down or critical
  ansible.builtin.assert:
    that:
      - redis_health.available | bool
      - redis_health.status != 'critical'
    fail_msg: "{{ redis_health.reason | default(redis_health.checks | selectattr('status', 'eq', 'critical')
      | map(attribute='message') | join('; ')) }}"
"""

RETURN = r"""
available:
  description: Whether the server answered PING after authenticating.
  returned: always
  type: bool
  sample: true
reason:
  description: Why the server is not available (connection refused, timeout, authentication failed...).
  returned: when available is false
  type: str
  sample: "cannot connect to Redis at 127.0.0.1:56379: Error 111 connecting to 127.0.0.1:56379. Connection refused."
reason_kind:
  description: Kind of failure, one of V(connection), V(timeout), V(auth), V(permission), V(error).
  returned: when available is false
  type: str
  sample: auth
status:
  description: Worst status of all checks (V(ok), V(unknown), V(warning), V(critical)); V(critical) when unavailable.
  returned: always
  type: str
  sample: ok
checks:
  description: Every judged value as C({name, status, value, threshold, message}), ready for the run report.
  returned: always
  type: list
  elements: dict
  sample:
    - name: redis_memory
      status: ok
      value: 0.44
      threshold: {warning: 80, critical: 90}
      message: "memory used 0.44% of maxmemory is within thresholds"
report_checks:
  description:
    - The checks in the form of the run report - RV(checks) with C(component=redis) and the runbook C(severity=P1)
      on a critical C(redis_available) (Redis unavailable). When the server is unavailable, C(redis_memory) (the Key
      Metric, when the memory section was asked for) is listed as C(unknown), not measured.
  returned: always
  type: list
  elements: dict
ping_ms:
  description: Round trip of one PING on the established connection, in milliseconds.
  returned: when available is true
  type: float
  sample: 0.21
server:
  description: Version, mode, uptime, role and replication state.
  returned: when available is true
  type: dict
  sample:
    version: 7.0.15
    mode: standalone
    uptime_seconds: 3600
    role: master
    connected_slaves: 0
    master_link_status: null
memory:
  description:
    - Memory in bytes (used, rss, peak, lua, maxmemory), used percentage of maxmemory (null when maxmemory is 0),
      eviction policy and fragmentation ratio.
  returned: when available is true and the memory section is gathered
  type: dict
  sample:
    used_bytes: 1181272
    rss_bytes: 9830400
    peak_bytes: 1400000
    maxmemory_bytes: 268435456
    used_pct: 0.44
    policy: allkeys-lru
    fragmentation_ratio: 8.3
stats:
  description:
    - Keyspace hits and misses, evicted and expired keys and commands over the window, their rates, and the
      lifetime counters. Window values are null when O(sample_seconds=0).
  returned: when available is true and the stats section is gathered
  type: dict
  sample:
    window_seconds: 1.0
    hits: 750
    misses: 250
    hit_rate_pct: 75.0
    lifetime_hits: 10000
    lifetime_misses: 100
    lifetime_hit_rate_pct: 99.01
    evicted_keys: 0
    expired_keys: 3
    lifetime_evicted_keys: 0
    lifetime_expired_keys: 120
    commands: 1042
    ops_per_sec: 1040.3
clients:
  description: Connected and blocked clients against maxclients, and rejected connections (window and lifetime).
  returned: when available is true and the clients section is gathered
  type: dict
  sample:
    connected: 5
    blocked: 0
    maxclients: 1000
    used_pct: 0.5
    maxclients_source: info
    rejected_connections: 0
    lifetime_rejected_connections: 0
latency:
  description: PING round trips in milliseconds (p50, p99, max, min, mean over O(latency_samples) PINGs) and the
    C(LATENCY LATEST) events.
  returned: when available is true and the latency section is gathered
  type: dict
  sample:
    samples: 100
    p50_ms: 0.15
    p99_ms: 0.6
    max_ms: 0.9
    min_ms: 0.1
    mean_ms: 0.18
    events:
      - {event: command, latest_at: "2025-01-01T10:00:00+00:00", age_seconds: 12, latest_ms: 1150, max_ms: 1150}
    recent_events: 1
slowlog:
  description:
    - Slow log length, how many entries are younger than O(recent_seconds), and the newest O(slowlog_entries)
      entries with the command name, its first argument (usually the key; Redis itself redacts secrets such as
      C(AUTH) passwords) and the argument count - never the other arguments, which carry values.
  returned: when available is true and the slowlog section is gathered
  type: dict
  sample:
    length: 2
    recent: 1
    entries:
      - {id: 7, at: "2025-01-01T10:00:00+00:00", age_seconds: 12, duration_ms: 1150.2, command: keys,
         first_arg: "cache:*", args: 1, client: "127.0.0.1:50000"}
persistence:
  description: RDB and AOF status, saves in progress and the age of the last RDB save.
  returned: when available is true and the persistence section is gathered
  type: dict
  sample:
    loading: false
    rdb_last_bgsave_status: ok
    rdb_bgsave_in_progress: false
    rdb_changes_since_last_save: 12
    rdb_last_save_age_seconds: 300
    aof_enabled: true
    aof_last_write_status: ok
    aof_last_bgrewrite_status: ok
    aof_rewrite_in_progress: false
keyspace:
  description: Keys, keys with a TTL and average TTL (ms) per logical database that holds keys.
  returned: when available is true and the keyspace section is gathered
  type: dict
  sample:
    db0: {keys: 2722, expires: 2720, avg_ttl_ms: 179777824}
"""

from ansible.module_utils.marketplace_module import MarketplaceModule
from ansible.module_utils.marketplace_redis_health import build_argument_spec, run


def main():
    run(MarketplaceModule(argument_spec=build_argument_spec(), supports_check_mode=True))


if __name__ == "__main__":
    main()
