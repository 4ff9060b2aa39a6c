#!/usr/bin/env python3
"""Benchmark: compose_status on the whole reference stack against the runbook's
`docker stats --no-stream` plus `docker compose ps`, in the same run.

Every side is timed as an operator (or Ansible) pays for it: each repetition starts fresh processes.
- module (default): a new Python process runs library/compose_status.py the way Ansible would (import,
  argument parsing, Docker SDK, parallel inspect, one CPU/memory sample of all containers, JSON out) with
  its defaults: stats_method=auto, which on this host reads the cgroup counters over one 0.5 s window.
- module (daemon): the same with stats_method=daemon (the daemon's stats API, as before the cgroup path).
- runbook: `docker stats --no-stream` then `docker compose -f docker-compose.production.yml ps`.
The module's own gather time (`duration_seconds`) is printed as well. Repetitions rotate which side goes
first and are separated by a pause (default 2.5 s) so that every run starts with the daemon's stats
collector idle, as an operator's check would: a stats read needs two rounds of that collector, which ticks
once a second and sleeps a second after each round, so a run that starts right after another one's stats
would pay for the previous run's tick. The medians and their ratios are printed, with the load average
(other test suites share this machine).

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

from devtools import stackenv  # noqa: E402

RUNNER = """
import json, sys
sys.path.insert(0, {root!r})
from devtools.modules import run_module
result = run_module("compose_status", {{"project": {project!r}, "stats": {stats!r}, **{extra!r}}})
result.pop("_raw", None)
print(json.dumps({{"failed": result.get("failed"), "msg": result.get("msg"), "status": result.get("status"),
                  "containers": len(result.get("containers") or []),
                  "sampled": sum(1 for c in result.get("containers") or [] if c.get("stats")),
                  "methods": result.get("stats_methods"),
                  "cpu": {{c["name"]: (c.get("stats") or {{}}).get("cpu_percent")
                          for c in result.get("containers") or []}},
                  "duration_seconds": result.get("duration_seconds"), "summary": result.get("summary")}}))
"""
SIDES = ("module", "daemon", "runbook")


def run_module_process(project: str, stats: bool = True, extra: dict | None = None) -> tuple[float, dict]:
    started = time.perf_counter()
    code = RUNNER.format(root=str(ROOT), project=project, stats=stats, extra=dict(extra or {}))
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120,
                          cwd=ROOT)
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
    times = {side: [] for side in SIDES}
    inner = {"module": [], "daemon": []}
    last = {}
    for rep in range(args.reps):
        order = SIDES[rep % 3:] + SIDES[:rep % 3]  # each side goes first as often as the others
        for side in order:
            time.sleep(args.pause)
            if side == "runbook":
                elapsed, last[side] = run_runbook()
            else:
                extra = {"stats_method": "daemon"} if side == "daemon" else {}
                elapsed, last[side] = run_module_process(args.project, extra=extra)
                inner[side].append(last[side]["duration_seconds"])
            times[side].append(elapsed)
        print(f"rep {rep + 1}: compose_status {times['module'][-1]:.3f}s (gather {inner['module'][-1]:.3f}s, "
              f"{last['module']['methods']})   stats_method=daemon {times['daemon'][-1]:.3f}s "
              f"(gather {inner['daemon'][-1]:.3f}s)   docker stats --no-stream + docker compose ps "
              f"{times['runbook'][-1]:.3f}s", flush=True)

    med = {side: statistics.median(values) for side, values in times.items()}
    med_inner = {side: statistics.median(values) for side, values in inner.items()}
    print()
    print(f"load average (1 min) {load_before:.2f} before, {os.getloadavg()[0]:.2f} after; {os.cpu_count()} CPUs")
    for side, label in (("module", "compose_status (default: stats_method=auto)"),
                        ("daemon", "compose_status stats_method=daemon")):
        info = last[side]
        print(f"{label} (fresh process, {info['containers']} containers, {info['sampled']} sampled, "
              f"{info['methods']}): median {med[side]:.3f}s  [gather inside the module: median "
              f"{med_inner[side]:.3f}s]  -> {info['summary']}")
    print(f"docker stats --no-stream ({last['runbook']['stats_rows']} rows) + docker compose ps "
          f"({last['runbook']['ps_rows']} rows): median {med['runbook']:.3f}s")
    for side in ("module", "daemon"):
        ratio = med[side] / med["runbook"]
        print(f"ratio compose_status{' stats_method=daemon' if side == 'daemon' else ''} / runbook = {ratio:.2f}  "
              f"({'faster' if ratio < 1 else 'NOT faster'}; goal: faster)")
    print(f"ratio without the Python start-up (module gather / runbook) = {med_inner['module'] / med['runbook']:.2f} "
          f"(daemon method {med_inner['daemon'] / med['runbook']:.2f}); start-up + imports cost "
          f"{med['module'] - med_inner['module']:.3f}s (CPU-bound: grows with the machine's load)")
    print("last CPU% per container, default (cgroup) / daemon method (different windows, a few seconds apart): "
          + ", ".join(f"{name.rsplit('-', 2)[-2]} {cpu} / {last['daemon']['cpu'].get(name)}"
                      for name, cpu in sorted(last["module"]["cpu"].items())))

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
