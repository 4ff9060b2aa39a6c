#!/usr/bin/env python3
"""Benchmark: health-check.yml against the runbook's health commands, and over 1, 5 and 20 host aliases.

    .venv/bin/python bench/bench_health_check.py [--rounds 3] [--hosts 1,5,20] [--skip-scale]

1. Wall time of `ansible-playbook playbooks/health-check.yml` (one host, the demo inventory) against the
   runbook's health commands run back to back in the same run, alternating which goes first each round:
       curl /health, curl /api/health, docker compose ps, docker stats --no-stream,
       docker compose logs --tail=100 | grep -i error,
       docker compose exec postgres pg_isready + psql "SELECT count(*) FROM pg_stat_activity",
       docker compose exec redis redis-cli ping + INFO memory.
   The playbook does more than those commands (every Key Metric against thresholds, severity, a report);
   the goal is that it costs no more: ratio <= 1.0. Medians of --rounds rounds are printed, and the ratio.
2. The same playbook over an inventory of N aliases of the demo target (N = --hosts), generated in a temporary
   directory with group_vars symlinked to inventory/demo/group_vars, to show how the wall time grows.

Reports of the benchmark runs go to a temporary directory, not reports/. The machine's load average is printed
with each figure: other work on the machine makes every figure larger.
"""
from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from devtools.stackenv import COMPOSE_FILE, ENV_FILE, STACK_DIR, read_env  # noqa: E402

VENV_BIN = Path(sys.executable).parent


def compose_cmd() -> str:
    return f"docker compose --project-directory {STACK_DIR} -f {COMPOSE_FILE} --env-file {ENV_FILE}"


def runbook_script(env: dict[str, str]) -> str:
    base = f"http://{env['BIND_ADDRESS']}:{env['NGINX_HTTP_PORT']}"
    dc = compose_cmd()
    db, user = env["POSTGRES_DB"], env["POSTGRES_SUPERUSER"]
    # The runbook's commands, as an operator types them (psql and redis-cli inside their containers).
    return f"""
curl -s -o /dev/null -w 'health %{{http_code}} %{{time_total}}s\\n' {base}/health
curl -s -o /dev/null -w 'api %{{http_code}} %{{time_total}}s\\n' {base}/api/health
{dc} ps
docker stats --no-stream
{dc} logs --tail=100 | grep -i error | tail -n 3
{dc} exec -T postgres sh -c 'pg_isready -h "$BIND_ADDRESS" -p "$POSTGRES_PORT"; PGPASSWORD="$POSTGRES_PASSWORD" psql -h "$BIND_ADDRESS" -p "$POSTGRES_PORT" -U {user} -d {db} -Atc "SELECT count(*) FROM pg_stat_activity"'
{dc} exec -T redis sh -c 'REDISCLI_AUTH="$REDIS_PASSWORD" redis-cli -h "$BIND_ADDRESS" -p "$REDIS_PORT" ping; REDISCLI_AUTH="$REDIS_PASSWORD" redis-cli -h "$BIND_ADDRESS" -p "$REDIS_PORT" info memory | head -n 3'
"""  # noqa: E501


def loadavg() -> float:
    with open("/proc/loadavg") as fh:
        return float(fh.read().split()[0])


def time_runbook(script: str) -> float:
    started = time.monotonic()
    proc = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=300)
    elapsed = time.monotonic() - started
    if proc.returncode not in (0, 1):  # grep without a match exits 1
        raise RuntimeError(f"runbook commands failed: {proc.stderr[-2000:]}")
    return elapsed


def time_playbook(inventory: Path, report_dir: Path, extra: list[str] | None = None) -> tuple[float, int]:
    env = {**os.environ, "PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}",
           "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"), "ANSIBLE_NOCOLOR": "1"}
    cmd = [str(VENV_BIN / "ansible-playbook"), str(ROOT / "playbooks" / "health-check.yml"), "-i", str(inventory),
           "-e", "health_fail_on_critical=false", "-e", f"marketplace_report_dir={report_dir}",
           "-e", f"marketplace_project_root={ROOT}", *(extra or [])]
    started = time.monotonic()
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, env=env, timeout=1800)
    elapsed = time.monotonic() - started
    if proc.returncode != 0:
        raise RuntimeError(f"health-check failed (rc {proc.returncode}):\n{proc.stdout[-3000:]}")
    return elapsed, proc.returncode


def alias_inventory(directory: Path, count: int) -> Path:
    inv = directory / f"aliases-{count}"
    inv.mkdir()
    (inv / "group_vars").symlink_to(ROOT / "inventory" / "demo" / "group_vars")
    hosts = "\n".join(
        f"        demo-{i}:\n          ansible_host: 127.0.0.1\n          ansible_connection: local\n"
        f"          ansible_python_interpreter: \"{{{{ ansible_playbook_python }}}}\"" for i in range(1, count + 1))
    (inv / "hosts.yml").write_text(f"---\nall:\n  children:\n    marketplace:\n      hosts:\n{hosts}\n")
    return inv


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--hosts", default="1,5,20")
    parser.add_argument("--skip-scale", action="store_true")
    args = parser.parse_args()
    env = read_env()
    script = runbook_script(env)
    tmp = Path(tempfile.mkdtemp(prefix="em-bench-health-"))
    try:
        reports = tmp / "reports"
        # Warm-up of both (first docker/ansible start-up pays for cold caches).
        time_runbook(script)
        time_playbook(ROOT / "inventory" / "demo", reports)

        runbook_times, playbook_times = [], []
        for i in range(args.rounds):
            order = ("runbook", "playbook") if i % 2 == 0 else ("playbook", "runbook")
            for what in order:
                load = loadavg()
                if what == "runbook":
                    runbook_times.append(time_runbook(script))
                    print(f"round {i + 1}: runbook commands {runbook_times[-1]:6.2f} s  (load {load:.2f})", flush=True)
                else:
                    playbook_times.append(time_playbook(ROOT / "inventory" / "demo", reports)[0])
                    print(f"round {i + 1}: health-check.yml {playbook_times[-1]:6.2f} s  (load {load:.2f})", flush=True)
        rb, pb = statistics.median(runbook_times), statistics.median(playbook_times)
        print()
        print(f"runbook health commands, back to back: {rb:.2f} s (median of {len(runbook_times)})")
        print(f"health-check.yml (one host):           {pb:.2f} s (median of {len(playbook_times)})")
        print(f"ratio playbook / runbook:              {pb / rb:.2f}  (goal <= 1.0)")

        if not args.skip_scale:
            print()
            print("health-check.yml over N aliases of the demo target (forks = 20):")
            print(f"{'hosts':>6} {'wall s':>8} {'s/host':>8} {'vs 1 host':>10} {'load':>6}")
            first = None
            for count in [int(n) for n in args.hosts.split(",") if n.strip()]:
                inv = alias_inventory(tmp, count)
                load = loadavg()
                wall, _rc = time_playbook(inv, reports)
                first = first or wall
                print(f"{count:>6} {wall:>8.2f} {wall / count:>8.2f} {wall / first:>9.2f}x {load:>6.2f}", flush=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
