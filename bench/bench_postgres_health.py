#!/usr/bin/env python3
"""Benchmark: one full postgres_health gather against the runbook's psql one-liners, in the same run.

The runbook checks the database with one `docker compose exec -T postgres psql -U postgres -c "..."` per
question (is it up, version, uptime, connections, states, long queries, idle transactions, locks, slow
queries, cache hit ratio, vacuum/analyze, wraparound, sizes). This script times, alternately:

  module (in-process)  postgres_health's main() with every section, as the module runs inside Ansible's
                       interpreter (argument parsing, connect, gather, JSON result)
  module (new python)  the same in a fresh Python process (interpreter start + imports + gather), the cost a
                       cold worker pays
  psql one-liners      the runbook's equivalent one-liners, one `docker compose exec` each, sequentially

and prints the median and best of each and the ratios. Usage (from the repo root):

    .venv/bin/python bench/bench_postgres_health.py [--rounds 5]

The stack must be running (stack/bin/stack.sh up). Passwords are read from the stack's env file and never
printed; the fresh process gets its arguments on stdin, not on the command line.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from devtools import stackenv  # noqa: E402
from devtools.modules import load_utils, run_module  # noqa: E402

# The runbook's questions as psql one-liners (PG 15 names: mean_exec_time, not mean_time).
ONE_LINERS = [
    ("pg_isready", None),
    ("version", "SELECT version();"),
    ("uptime", "SELECT now() - pg_postmaster_start_time() AS uptime;"),
    ("max_connections", "SHOW max_connections;"),
    ("connections", "SELECT count(*) FROM pg_stat_activity;"),
    ("connections by state", "SELECT state, count(*) FROM pg_stat_activity GROUP BY state;"),
    ("long queries", "SELECT pid, now() - query_start AS duration, query, state FROM pg_stat_activity "
                     "WHERE state = 'active' AND now() - query_start > interval '5 minutes';"),
    ("long transactions", "SELECT pid, now() - xact_start AS xact_age, state, query FROM pg_stat_activity "
                          "WHERE xact_start < now() - interval '10 minutes';"),
    ("idle in transaction", "SELECT pid, now() - state_change AS idle, query FROM pg_stat_activity "
                            "WHERE state = 'idle in transaction';"),
    ("blocking", "SELECT blocked.pid AS blocked_pid, blocked.usename, blocking.pid AS blocking_pid, "
                 "blocking.usename, blocked.query, blocking.query FROM pg_stat_activity blocked "
                 "JOIN pg_stat_activity blocking ON blocking.pid = ANY(pg_blocking_pids(blocked.pid));"),
    ("slow by mean", "SELECT query, calls, mean_exec_time, total_exec_time FROM pg_stat_statements "
                     "ORDER BY mean_exec_time DESC LIMIT 10;"),
    ("slow by total", "SELECT query, calls, mean_exec_time, total_exec_time FROM pg_stat_statements "
                      "ORDER BY total_exec_time DESC LIMIT 10;"),
    ("cache hit ratio", "SELECT sum(blks_hit) * 100.0 / nullif(sum(blks_hit) + sum(blks_read), 0) "
                        "FROM pg_stat_database;"),
    ("analyze/dead tuples", "SELECT relname, n_live_tup, n_dead_tup, last_analyze, last_autoanalyze "
                            "FROM pg_stat_user_tables ORDER BY n_dead_tup DESC;"),
    ("wraparound", "SELECT datname, age(datfrozenxid) FROM pg_database ORDER BY 2 DESC;"),
    ("database sizes", "SELECT datname, pg_size_pretty(pg_database_size(datname)) FROM pg_database;"),
]

FRESH_PROCESS = r"""
import json, sys
sys.path.insert(0, sys.argv[1])
from devtools.modules import run_module
result = run_module("postgres_health", json.loads(sys.stdin.read()))
sys.exit(0 if result.get("available") else 3)
"""


def compose_exec(env: dict, argv: list[str]) -> subprocess.CompletedProcess:
    cmd = ["docker", "compose", "--project-directory", str(stackenv.STACK_DIR), "-f", str(stackenv.COMPOSE_FILE),
           "--env-file", str(stackenv.ENV_FILE), "exec", "-T", "postgres", *argv]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=60)


def run_one_liners(env: dict) -> float:
    port, db = env["POSTGRES_PORT"], env["POSTGRES_DB"]
    started = time.perf_counter()
    for name, query in ONE_LINERS:
        if query is None:
            argv = ["pg_isready", "-h", env["BIND_ADDRESS"], "-p", port]
        else:
            argv = ["psql", "-U", "postgres", "-p", port, "-d", db, "-c", query]
        proc = compose_exec(env, argv)
        if proc.returncode != 0:
            raise SystemExit(f"one-liner {name!r} failed (rc {proc.returncode}): {proc.stderr.strip()[:300]}")
    return time.perf_counter() - started


def module_params(env: dict) -> dict:
    return {"login_host": env["BIND_ADDRESS"], "login_port": int(env["POSTGRES_PORT"]), "login_user": "postgres",
            "login_password": env["POSTGRES_PASSWORD"], "login_db": env["POSTGRES_DB"]}


def run_module_in_process(params: dict) -> float:
    started = time.perf_counter()
    result = run_module("postgres_health", params)
    elapsed = time.perf_counter() - started
    if not result.get("available") or result.get("section_errors"):
        raise SystemExit(f"postgres_health gather incomplete: {result.get('reason') or result.get('section_errors')}")
    return elapsed


def run_module_fresh_process(params: dict) -> float:
    started = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", FRESH_PROCESS, str(ROOT)], input=json.dumps(params),
                          capture_output=True, text=True, timeout=120, env={**os.environ})
    elapsed = time.perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit(f"postgres_health in a fresh process failed (rc {proc.returncode})")
    return elapsed


def summary(samples: list[float]) -> str:
    return "median %7.1f ms   best %7.1f ms" % (statistics.median(samples) * 1000, min(samples) * 1000)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5, help="timed rounds per side (after one warm-up)")
    args = parser.parse_args()
    env = stackenv.read_env()
    params = module_params(env)

    # warm-up: caches, imports, the docker CLI
    run_module_in_process(params)
    run_one_liners(env)

    inproc, fresh, psql = [], [], []
    for _ in range(args.rounds):  # alternate so drift on the machine hits every side alike
        inproc.append(run_module_in_process(params))
        fresh.append(run_module_fresh_process(params))
        psql.append(run_one_liners(env))

    m_in, m_fresh, m_psql = (statistics.median(x) for x in (inproc, fresh, psql))
    sections = ", ".join(load_utils("marketplace_postgres_health").SECTIONS)
    print("postgres_health full gather vs the runbook's psql one-liners (%d rounds, same run)" % args.rounds)
    print("  module sections: %s" % sections)
    print("  psql side: %d one-liners, one `docker compose exec -T postgres ...` each" % len(ONE_LINERS))
    print("  module (in-process main) : %s" % summary(inproc))
    print("  module (fresh python)    : %s" % summary(fresh))
    print("  psql one-liners          : %s" % summary(psql))
    print("  ratio psql / module (in-process): %.1fx faster" % (m_psql / m_in))
    print("  ratio psql / module (fresh python): %.1fx faster" % (m_psql / m_fresh))
    goal = m_in < m_psql and m_fresh < m_psql
    print("  goal (module faster): %s" % ("met" if goal else "NOT met"))
    sys.exit(0 if goal else 1)


if __name__ == "__main__":
    main()
