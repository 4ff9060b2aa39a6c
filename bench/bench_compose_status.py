#!/usr/bin/env python3
"""Benchmark: compose_status on the whole reference stack against the runbook's
`docker stats --no-stream` plus `docker compose ps`, in the same run.

Both sides are timed as an operator (or Ansible) pays for them: each repetition starts fresh processes.
- module: a new Python process runs library/compose_status.py the way Ansible would (import, argument
  parsing, Docker SDK, parallel inspect + one stats sample per container, JSON out). The module's own
  gather time (`duration_seconds`) is printed as well.
- runbook: `docker stats --no-stream` then `docker compose -f docker-compose.production.yml ps`.
Repetitions alternate which side goes first and are separated by a pause (default 2.5 s) so that every run
starts with the daemon's stats collector idle, as an operator's check would: a stats read needs two rounds
of that collector, which ticks once a second and sleeps a second after each round, so a run that starts
right after another one's stats would pay for the previous run's tick. The medians and their ratio are
printed, with the load average (other test suites share this machine).

Usage: .venv/bin/python bench/bench_compose_status.py [--reps 7] [--pause 2.5] [--project equipment-marketplace]
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

from tests.helpers import stackenv  # noqa: E402

RUNNER = """
import json, sys
sys.path.insert(0, {root!r})
from tests.helpers.modules import run_module
result = run_module("compose_status", {{"project": {project!r}, "stats": {stats!r}}})
result.pop("_raw", None)
print(json.dumps({{"failed": result.get("failed"), "msg": result.get("msg"), "status": result.get("status"),
                  "containers": len(result.get("containers") or []),
                  "sampled": sum(1 for c in result.get("containers") or [] if c.get("stats")),
                  "duration_seconds": result.get("duration_seconds"), "summary": result.get("summary")}}))
"""


def run_module_process(project: str, stats: bool = True) -> tuple[float, dict]:
    started = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", RUNNER.format(root=str(ROOT), project=project, stats=stats)],
                          capture_output=True, text=True, check=True, timeout=120, cwd=ROOT)
    elapsed = time.perf_counter() - started
    info = json.loads(proc.stdout.strip().splitlines()[-1])
    if info.get("failed"):
        raise SystemExit(f"compose_status failed: {info.get('msg')}")
    return elapsed, info


def run_runbook() -> tuple[float, dict]:
    started = time.perf_counter()
    stats = subprocess.run(["docker", "stats", "--no-stream"], capture_output=True, text=True, check=True,
                           timeout=120)
    ps = stackenv.compose("ps", timeout=120)
    elapsed = time.perf_counter() - started
    return elapsed, {"stats_rows": len(stats.stdout.strip().splitlines()) - 1,
                     "ps_rows": len(ps.stdout.strip().splitlines()) - 1}


def run_ps() -> float:
    started = time.perf_counter()
    stackenv.compose("ps", timeout=120)
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reps", type=int, default=7)
    parser.add_argument("--pause", type=float, default=2.5, help="seconds between runs (idle stats collector)")
    parser.add_argument("--project", default=stackenv.read_env().get("COMPOSE_PROJECT_NAME", "equipment-marketplace"))
    args = parser.parse_args()

    load_before = os.getloadavg()[0]
    run_module_process(args.project)  # warm the page cache once (not timed)
    run_runbook()
    module_times, module_inner, runbook_times = [], [], []
    last_module = last_runbook = None
    for rep in range(args.reps):
        order = ("module", "runbook") if rep % 2 == 0 else ("runbook", "module")
        for side in order:
            time.sleep(args.pause)
            if side == "module":
                elapsed, last_module = run_module_process(args.project)
                module_times.append(elapsed)
                module_inner.append(last_module["duration_seconds"])
            else:
                elapsed, last_runbook = run_runbook()
                runbook_times.append(elapsed)
        print(f"rep {rep + 1}: compose_status {module_times[-1]:.3f}s (gather {module_inner[-1]:.3f}s)   "
              f"docker stats --no-stream + docker compose ps {runbook_times[-1]:.3f}s", flush=True)

    med_module = statistics.median(module_times)
    med_inner = statistics.median(module_inner)
    med_runbook = statistics.median(runbook_times)
    print()
    print(f"load average (1 min) {load_before:.2f} before, {os.getloadavg()[0]:.2f} after; {os.cpu_count()} CPUs")
    print(f"compose_status (fresh process, {last_module['containers']} containers, "
          f"{last_module['sampled']} sampled): median {med_module:.3f}s  "
          f"[gather inside the module: median {med_inner:.3f}s]  -> {last_module['summary']}")
    print(f"docker stats --no-stream ({last_runbook['stats_rows']} rows) + docker compose ps "
          f"({last_runbook['ps_rows']} rows): median {med_runbook:.3f}s")
    print(f"ratio compose_status / runbook = {med_module / med_runbook:.2f}  "
          f"({'faster' if med_module < med_runbook else 'NOT faster'}; goal: faster)")
    print(f"ratio without the Python start-up (module gather / runbook) = {med_inner / med_runbook:.2f}; "
          f"start-up + imports cost {med_module - med_inner:.3f}s (CPU-bound: grows with the machine's load)")

    # Without the CPU/memory sample: compose_status stats=false against `docker compose ps` alone.
    nostats, ps_times, nostats_inner = [], [], []
    for rep in range(args.reps):
        for side in (("module", "ps") if rep % 2 == 0 else ("ps", "module")):
            if side == "module":
                elapsed, info = run_module_process(args.project, stats=False)
                nostats.append(elapsed)
                nostats_inner.append(info["duration_seconds"])
            else:
                ps_times.append(run_ps())
    med_nostats, med_ps = statistics.median(nostats), statistics.median(ps_times)
    print(f"compose_status stats=false: median {med_nostats:.3f}s "
          f"[gather {statistics.median(nostats_inner):.3f}s]  vs  docker compose ps: median "
          f"{med_ps:.3f}s  -> ratio {med_nostats / med_ps:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
