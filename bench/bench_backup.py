#!/usr/bin/env python3
"""Benchmark: our verified backup and restore drill against raw pg_dump / pg_restore, in the same run.

Backup (goal: backup + quick verification at most 1.1x a raw `pg_dump -Fc` of the same database):

  raw pg_dump -Fc          `docker exec <postgres> pg_dump -Fc -f /backups/...` (the same binary, socket,
                           compression and destination our module uses)
  module: dump + quick     backup_dump (snapshot + row counts, pg_dump -Fc, fsync, SHA-256, pg_restore -l,
                           manifest, commit) then backup_catalog verify (exists, fresh, checksum), in-process
  playbook tasks           the same two tasks as db-backup.yml runs them (task durations from the runner events)
  playbook end to end      the whole `db-backup -e confirm=true` run (ansible-playbook start, facts, retention,
                           report; fixed costs that do not grow with the database)

Restore drill:

  raw pg_restore           createdb -T template0 + pg_restore (1 job, and --jobs 2) + dropdb, by docker exec
  module drill             backup_restore (CREATE DATABASE ... TEMPLATE template0, pg_restore --exit-on-error
                           --jobs 2, row counts compared with the manifest, ANALYZE, DROP), in-process
  playbook drill           `backup-verify -e backup_verify_mode=drill` end to end

Rounds alternate the sides; medians and bests are printed with the ratios. Usage (from the repo root):

    .venv/bin/python bench/bench_backup.py [--rounds 3] [--skip-playbooks]

Writes only into a private sub-directory of the stack's backup directory (removed at the end) and into
scratch databases it drops. Passwords come from the stack's env file and are never printed.
"""
from __future__ import annotations

import argparse
import datetime
import json
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from devtools import backups as bk  # noqa: E402
from devtools import stackenv  # noqa: E402
from devtools.modules import run_module  # noqa: E402
from runbook.driver import run_playbook  # noqa: E402

DB = "equipment_marketplace"
BACKUP_TASK = "Dump, checksum, verify (pg_restore -l) and commit the backup"
VERIFY_TASK_PREFIX = "Verify the backup (exists, fresh, checksum"


def docker_exec(container: str, *argv: str) -> None:
    subprocess.run(["docker", "exec", "-u", "root", container, *argv], check=True, capture_output=True)


def timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def task_seconds(result, name_prefix: str) -> float:
    total = 0.0
    for ev in result.events:
        data = ev.get("event_data", {})
        if ev.get("event") == "runner_on_ok" and (data.get("task") or "").startswith(name_prefix):
            total += float(data.get("duration") or 0)
    return total


def stats(values: list[float]) -> str:
    return "median %6.2fs  best %6.2fs" % (statistics.median(values), min(values))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--skip-playbooks", action="store_true", help="only the module-level comparison")
    args = parser.parse_args()

    env = stackenv.read_env()
    conn = dict(login_host=env["BIND_ADDRESS"], login_port=int(env["POSTGRES_PORT"]),
                login_user=env["POSTGRES_SUPERUSER"], login_password=env["POSTGRES_PASSWORD"])
    container = bk.postgres_container().name
    port = env["POSTGRES_PORT"]
    bench_dir = bk.new_backup_dir("bench")
    cdir = f"/backups/{bench_dir.name}"
    results: dict[str, list[float]] = {k: [] for k in (
        "raw_dump", "module_backup", "module_dump_only", "module_quick", "task_backup", "task_quick",
        "playbook_backup", "raw_restore_1", "raw_restore_2", "module_drill", "playbook_drill")}
    size = None
    try:
        db_size = bk.admin_conn().execute("SELECT pg_database_size(%s)", (DB,)).fetchone()[0]
        print(f"database {DB}: {db_size / 1e6:.1f} MB; {args.rounds} rounds; container {container}")
        for i in range(args.rounds):
            def raw(i=i):
                docker_exec(container, "pg_dump", "-Fc", "-p", port, "-U", "postgres",
                            "-f", f"{cdir}/raw-{i}.dump", DB)

            def module(box):
                r = run_module("backup_dump", dict(conn, database=DB, backup_dir=str(bench_dir)))
                assert not r.get("failed"), r.get("msg")
                q = run_module("backup_catalog", dict(backup_dir=str(bench_dir), database=DB, action="verify",
                                                      max_age_hours=26))
                assert q["ok"], q["problem"]
                box.update(dump=r["timings"]["total_s"])

            box: dict = {}
            sides = [("raw_dump", raw), ("module_backup", lambda box=box: module(box))]
            for key, fn in (sides if i % 2 == 0 else sides[::-1]):
                results[key].append(timed(fn))
            results["module_dump_only"].append(box["dump"])
            results["module_quick"].append(results["module_backup"][-1] - box["dump"])
            size = (bench_dir / f"raw-{i}.dump").stat().st_size

            if not args.skip_playbooks:
                r = run_playbook("db-backup", extravars={"confirm": True, "marketplace_backup_dir": str(bench_dir),
                                                         "backup_prune": False})
                assert r.rc == 0, r.stdout[-2000:]
                results["playbook_backup"].append(r.duration_s)
                results["task_backup"].append(task_seconds(r, BACKUP_TASK))
                results["task_quick"].append(task_seconds(r, VERIFY_TASK_PREFIX))

        name = bk.backups_in(bench_dir)[0]
        dump = f"{cdir}/{name}.dump"
        for i in range(args.rounds):
            def raw_restore(jobs, i=i):
                scratch = f"{DB}_benchraw_{i}_{jobs}"
                docker_exec(container, "createdb", "-p", port, "-U", "postgres", "-T", "template0", "-O",
                            "marketplace", scratch)
                try:
                    docker_exec(container, "pg_restore", "-p", port, "-U", "postgres", "--exit-on-error",
                                "--jobs", str(jobs), "-d", scratch, dump)
                finally:
                    docker_exec(container, "dropdb", "-p", port, "-U", "postgres", scratch)

            def module_drill(i=i):
                stamp = datetime.datetime.now(datetime.UTC).strftime("%Y%m%d_%H%M%S")
                r = run_module("backup_restore", dict(conn, action="restore", backup_dir=str(bench_dir), name=name,
                                                      target=f"{DB}_drill_{stamp}{i}", jobs=2, drop_after=True,
                                                      on_mismatch="report", check_prefix="drill"))
                assert not r.get("failed") and r["counts_match"], r.get("msg")

            sides = [("raw_restore_1", lambda: raw_restore(1)), ("raw_restore_2", lambda: raw_restore(2)),
                     ("module_drill", module_drill)]
            for key, fn in (sides if i % 2 == 0 else sides[::-1]):
                results[key].append(timed(fn))
            if not args.skip_playbooks:
                r = run_playbook("backup-verify", extravars={"marketplace_backup_dir": str(bench_dir),
                                                             "backup_verify_mode": "drill", "backup": name})
                assert r.rc == 0, r.stdout[-2000:]
                results["playbook_drill"].append(r.duration_s)
    finally:
        shutil.rmtree(bench_dir, ignore_errors=True)
        for db in bk.databases(f"^{DB}_(benchraw|drill)_"):
            bk.drop_database(db)

    raw = statistics.median(results["raw_dump"])
    print(f"\nBackup of {DB} (archive {size / 1e6:.1f} MB)")
    print(f"  raw pg_dump -Fc (docker exec)        {stats(results['raw_dump'])}")
    print(f"  module: dump + quick verification    {stats(results['module_backup'])}  "
          f"ratio {statistics.median(results['module_backup']) / raw:.2f}x")
    print(f"    of which backup_dump               {stats(results['module_dump_only'])}  "
          f"ratio {statistics.median(results['module_dump_only']) / raw:.2f}x")
    print(f"    of which quick verification        {stats(results['module_quick'])}")
    if results["playbook_backup"]:
        tasks = [a + b for a, b in zip(results["task_backup"], results["task_quick"], strict=True)]
        print(f"  playbook tasks: backup + quick       {stats(tasks)}  ratio {statistics.median(tasks) / raw:.2f}x")
        print(f"  playbook end to end (db-backup)      {stats(results['playbook_backup'])}  "
              f"ratio {statistics.median(results['playbook_backup']) / raw:.2f}x  (fixed Ansible costs included)")
    raw1 = statistics.median(results["raw_restore_1"])
    print("\nRestore drill")
    print(f"  raw createdb + pg_restore + dropdb   {stats(results['raw_restore_1'])}  (1 job)")
    print(f"  raw createdb + pg_restore + dropdb   {stats(results['raw_restore_2'])}  (--jobs 2)")
    print(f"  module drill (compare, ANALYZE, drop){stats(results['module_drill'])}  "
          f"ratio {statistics.median(results['module_drill']) / raw1:.2f}x vs 1 job, "
          f"{statistics.median(results['module_drill']) / statistics.median(results['raw_restore_2']):.2f}x vs 2 jobs")
    if results["playbook_drill"]:
        print(f"  playbook drill end to end            {stats(results['playbook_drill'])}  "
              f"ratio {statistics.median(results['playbook_drill']) / raw1:.2f}x vs 1 job")
    goal = statistics.median(results["module_backup"]) / raw
    print(f"\nGoal backup + quick verification <= 1.1x raw pg_dump: {'met' if goal <= 1.1 else 'NOT met'} "
          f"({goal:.2f}x, module level)")
    print(json.dumps({k: [round(x, 3) for x in v] for k, v in results.items()}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
