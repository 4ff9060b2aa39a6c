#!/usr/bin/env python3
"""Benchmark: redis_keys pattern delete against the redis-cli idioms, on the reference stack's Redis.

    .venv/bin/python bench/bench_redis_keys.py [--match 1000000] [--others 1000000] [--db 14] [--rounds 1]

Each round seeds --match keys that match the pattern among --others that do not (in logical database --db,
never db 0), then deletes the matching ones three ways, re-seeding them in between:

  1. redis_keys (state=absent, SCAN + UNLINK through a non-transactional pipeline), run as its own Python
     process the way Ansible runs a module (interpreter start-up included in the wall time);
  2. redis-cli --scan --pattern P | xargs -n 1000 redis-cli unlink     (the runbook-safe idiom);
  3. redis-cli KEYS P | xargs -n 1000 redis-cli del                     (the runbook's fast-but-blocking idiom).

During every delete another client - a separate process, so that the benchmark's own Python (GIL) cannot
delay it - sends PING every --ping-interval-ms and records the round trips; the worst one is the stall every
other client of the server saw. An idle baseline of the same pinger shows this machine's noise floor.

Goals (issue 3): redis_keys wall time <= 1.2x the SCAN/UNLINK idiom, and no stall over 50 ms.

Side effects, all undone or reported: the database --db must be empty at start and is emptied at the end;
maxmemory is raised temporarily when the data would not fit under the current limit without eviction, and
restored in `finally`; LATENCY RESET and SLOWLOG RESET at the end (KEYS leaves a latency event and slow log
entries that would make every health check warn for the next 15 minutes) unless --keep-diagnostics.
The password is read from stack/.env and handed to children through the environment, never argv.
"""
from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import redis  # noqa: E402

from devtools.stackenv import read_env  # noqa: E402

MATCH_PREFIX = "bench:del:"
KEEP_PREFIX = "bench:keep:"
PATTERN = MATCH_PREFIX + "*"

MODULE_RUNNER = r"""
import json, sys
sys.path.insert(0, sys.argv[1])
from devtools.modules import run_module
result = run_module("redis_keys", json.loads(sys.argv[2]))
result.pop("_raw", None)
result.pop("invocation", None)
print(json.dumps(result))
"""


# --- the other client ----------------------------------------------------------------------------------------
def _pinger(conn_kwargs, interval, ready, stop, out):
    try:  # a higher priority keeps this machine's CPU contention out of the measurement as far as possible
        os.nice(-10)
    except OSError:
        pass
    client = redis.Redis(**conn_kwargs)
    client.ping()
    rtts, errors = [], 0
    ready.set()
    while not stop.is_set():
        start = time.perf_counter()
        try:
            client.ping()
        except redis.exceptions.RedisError:  # the server went away: count it, keep trying
            errors += 1
            time.sleep(0.5)
            continue
        rtts.append((time.perf_counter() - start) * 1000.0)
        time.sleep(interval)
    out.send((rtts, errors))
    out.close()


class Pinger:
    """PING every `interval` seconds from a separate process; stop() returns the round-trip stats (ms)."""

    def __init__(self, conn_kwargs, interval):
        self.conn_kwargs, self.interval = conn_kwargs, interval

    def __enter__(self):
        ctx = mp.get_context("spawn")
        self.ready, self.stop_event = ctx.Event(), ctx.Event()
        self.recv, send = ctx.Pipe(duplex=False)
        self.proc = ctx.Process(target=_pinger, args=(self.conn_kwargs, self.interval, self.ready,
                                                      self.stop_event, send), daemon=True)
        self.proc.start()
        if not self.ready.wait(30):
            raise RuntimeError("pinger did not start")
        return self

    def __exit__(self, *exc):
        self.stop_event.set()
        rtts, errors = self.recv.recv() if self.recv.poll(30) else ([], -1)
        self.proc.join(10)
        rtts.sort()
        self.stats = {
            "pings": len(rtts),
            "max_ms": round(rtts[-1], 2) if rtts else None,
            "p99_ms": round(rtts[max(0, int(len(rtts) * 0.99) - 1)], 2) if rtts else None,
            "median_ms": round(statistics.median(rtts), 3) if rtts else None,
            "over_50ms": sum(1 for r in rtts if r > 50),
            "failed_pings": errors,
        }
        return False


# --- data ----------------------------------------------------------------------------------------------------
def seed(client, prefix, n, chunk=1000):
    value = b"v"
    pipe = client.pipeline(transaction=False)
    queued = 0
    for start in range(0, n, chunk):
        pipe.mset({"%s%d" % (prefix, i): value for i in range(start, min(n, start + chunk))})
        queued += 1
        if queued == 50:
            pipe.execute()
            pipe = client.pipeline(transaction=False)
            queued = 0
    if queued:
        pipe.execute()


def wait_for_persistence(client, timeout=300):
    """Wait for a running BGSAVE / AOF rewrite, so that a fork does not land in a timed run by chance."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        info = client.info("persistence")
        if not (info.get("rdb_bgsave_in_progress") or info.get("aof_rewrite_in_progress")
                or info.get("aof_rewrite_scheduled")):
            return
        time.sleep(0.5)


def _pairs(flat):
    return dict(zip(flat[0::2], flat[1::2], strict=True))


def command_histograms(client, commands=("unlink", "scan", "del", "keys")):
    """LATENCY HISTOGRAM (Redis 7): per command, cumulative call counts at power-of-two usec bucket bounds."""
    raw = client.execute_command("LATENCY", "HISTOGRAM", *commands)
    out = {}
    for name, body in (raw.items() if isinstance(raw, dict) else _pairs(raw).items()):
        fields = _pairs(body) if isinstance(body, list) else body
        hist = fields.get(b"histogram_usec", fields.get("histogram_usec", []))
        hist = _pairs(hist) if isinstance(hist, list) else hist
        out[name.decode() if isinstance(name, bytes) else name] = {int(k): int(v) for k, v in hist.items()}
    return out


def longest_commands(before, after):
    """Per command: calls made between two histograms and the bucket bound (ms) the slowest of them fell in."""
    out = {}
    for name, hist in after.items():
        prev = before.get(name, {})

        def cum_before(bound, prev=prev):
            return max((v for k, v in prev.items() if k <= bound), default=0)

        bounds = sorted(hist)
        total = hist[bounds[-1]] - cum_before(bounds[-1]) if bounds else 0
        if total <= 0:
            continue
        slowest = next(b for b in bounds if hist[b] - cum_before(b) == total)
        out[name] = {"calls": total, "slowest_le_ms": round(slowest / 1000.0, 3)}
    return out


def forks(client):
    info = client.info("persistence")
    return info.get("rdb_saves", 0) + info.get("aof_rewrites", 0)


# --- the three contenders ------------------------------------------------------------------------------------
def run_module(env, args):
    proc_env = dict(os.environ, REDIS_PASSWORD=env["REDIS_PASSWORD"])
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", MODULE_RUNNER, str(ROOT), json.dumps(args)], env=proc_env,
                          capture_output=True, text=True, timeout=1800)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError("module runner failed: %s" % proc.stderr[-2000:])
    result = json.loads(proc.stdout)
    if result.get("failed"):
        raise RuntimeError("redis_keys failed: %s" % result.get("msg"))
    return wall, result


def run_shell(env, script):
    proc_env = dict(os.environ, REDISCLI_AUTH=env["REDIS_PASSWORD"])
    start = time.perf_counter()
    proc = subprocess.run(["bash", "-c", "set -euo pipefail; " + script], env=proc_env, capture_output=True,
                          text=True, timeout=1800)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError("shell pipeline failed (%s): %s" % (proc.returncode, proc.stderr[-2000:]))
    return wall


def cleanup(client, args, old_persistence, raised, old_maxmemory, evicted_before):
    """Undo everything; if the server went away meanwhile (restarted by someone), wait for it to come back.

    Redis restarts from its AOF, so the benchmark keys would come back with it: they are removed as soon as it
    answers again (up to 5 minutes); a restart also resets CONFIG SET changes from the config file.
    """
    deadline = time.monotonic() + 300
    while True:
        try:
            client.ping()
            break
        except redis.exceptions.ConnectionError:
            if time.monotonic() > deadline:
                print("WARNING: Redis is unreachable; database %d may still hold the benchmark keys (bench:*). "
                      "Run FLUSHDB ASYNC on db %d when it is back." % (args.db, args.db), file=sys.stderr)
                return
            print("Redis unreachable; waiting for it to come back to clean up ...", file=sys.stderr, flush=True)
            time.sleep(5)
    client.flushdb(asynchronous=True)
    print("database %d emptied (FLUSHDB ASYNC)" % args.db)
    if old_persistence:
        for key, value in old_persistence.items():
            client.config_set(key, value)
        print("persistence settings restored: %s" % old_persistence)
    if raised:
        client.config_set("maxmemory", old_maxmemory)
        print("maxmemory restored to %d bytes" % old_maxmemory)
    evicted = client.info("stats")["evicted_keys"] - evicted_before
    print("evicted keys during the benchmark (server-wide; meaningless if the server restarted): %d" % evicted)
    if not args.keep_diagnostics:
        client.execute_command("LATENCY", "RESET")
        client.execute_command("SLOWLOG", "RESET")
        print("LATENCY RESET and SLOWLOG RESET done (the KEYS run leaves events behind)")
    client.close()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--match", type=int, default=1_000_000, help="keys matching the pattern (deleted)")
    ap.add_argument("--others", type=int, default=1_000_000, help="keys not matching (must survive)")
    ap.add_argument("--db", type=int, default=14, help="logical database to use (never 0); must be empty")
    ap.add_argument("--rounds", type=int, default=1, help="repeat the three deletes (order alternates)")
    ap.add_argument("--scan-count", type=int, default=None, help="redis_keys scan_count (default: module's)")
    ap.add_argument("--batch-size", type=int, default=None, help="redis_keys batch_size (default: module's)")
    ap.add_argument("--ping-interval-ms", type=float, default=3.0)
    ap.add_argument("--skip-keys-del", action="store_true", help="skip the KEYS + DEL contender")
    ap.add_argument("--only-module", action="store_true", help="run redis_keys only (for tuning; no ratio)")
    ap.add_argument("--pause-rewrites", action="store_true",
                    help="temporarily set auto-aof-rewrite-percentage 0 and save '' (restored at the end), so that "
                         "no fork for an AOF rewrite or BGSAVE lands in a timed run")
    ap.add_argument("--keep-diagnostics", action="store_true", help="no LATENCY RESET / SLOWLOG RESET at the end")
    args = ap.parse_args()
    if args.db == 0:
        ap.error("db 0 holds the application's keys; use another database")
    if not shutil.which("redis-cli"):
        sys.exit("redis-cli not found: apt-get install redis-tools (or run inside the redis container)")

    env = read_env()
    host, port = env["BIND_ADDRESS"], int(env["REDIS_PORT"])
    conn = dict(host=host, port=port, password=env["REDIS_PASSWORD"], db=args.db, socket_timeout=60)
    client = redis.Redis(**conn)
    if client.dbsize():
        sys.exit("database %d is not empty (%d keys); choose another --db" % (args.db, client.dbsize()))

    module_args = dict(login_host=host, login_port=port, db=args.db, pattern=PATTERN, sample_size=0)
    if args.scan_count:
        module_args["scan_count"] = args.scan_count
    if args.batch_size:
        module_args["batch_size"] = args.batch_size
    cli = "redis-cli -h %s -p %d -n %d" % (host, port, args.db)
    contenders = {
        "redis_keys": None,
        "redis-cli --scan | xargs unlink": "%s --scan --pattern '%s' | xargs -r -n 1000 %s unlink >/dev/null"
                                           % (cli, PATTERN, cli),
        "redis-cli KEYS | xargs del": "%s --raw keys '%s' | xargs -r -n 1000 %s del >/dev/null" % (cli, PATTERN, cli),
    }
    if args.skip_keys_del or args.only_module:
        del contenders["redis-cli KEYS | xargs del"]
    if args.only_module:
        del contenders["redis-cli --scan | xargs unlink"]
    pinger_conn = dict(host=host, port=port, password=env["REDIS_PASSWORD"], socket_timeout=60)
    interval = args.ping_interval_ms / 1000.0

    config = client.config_get("maxmemory")
    old_maxmemory = int(config.get(b"maxmemory", config.get("maxmemory", 0)))
    evicted_before = client.info("stats")["evicted_keys"]
    raised = False
    results = {name: [] for name in contenders}
    old_persistence = None
    try:
        if args.pause_rewrites:
            old_persistence = {k: client.config_get(k) for k in ("auto-aof-rewrite-percentage", "save")}
            old_persistence = {k: next(iter(v.values())) for k, v in old_persistence.items()}
            client.config_set("auto-aof-rewrite-percentage", 0)
            client.config_set("save", "")
            print("NOTE: AOF auto-rewrite and RDB save points paused temporarily (%s); restored at the end"
                  % old_persistence)
        need = client.info("memory")["used_memory"] + (args.match + args.others) * 120 + 64 * 1024 * 1024
        if old_maxmemory and need > old_maxmemory * 0.9:
            new = max(need * 2, 1024 * 1024 * 1024)
            client.config_set("maxmemory", new)
            raised = True
            print("NOTE: maxmemory raised temporarily from %d to %d bytes so that nothing is evicted; "
                  "restored at the end" % (old_maxmemory, new))

        print("seeding %d non-matching keys in db %d ..." % (args.others, args.db), flush=True)
        t = time.perf_counter()
        seed(client, KEEP_PREFIX, args.others)
        print("  %.1fs" % (time.perf_counter() - t))

        print("idle baseline of the pinger (3 s) ...", flush=True)
        with Pinger(pinger_conn, interval) as idle:
            time.sleep(3)
        print("  idle: %s" % idle.stats)

        order = list(contenders)
        for rnd in range(args.rounds):
            for name in (order if rnd % 2 == 0 else order[::-1]):
                t = time.perf_counter()
                seed(client, MATCH_PREFIX, args.match)
                assert client.dbsize() == args.match + args.others
                wait_for_persistence(client)
                print("round %d: seeded %d matching keys in %.1fs; %s ..."
                      % (rnd + 1, args.match, time.perf_counter() - t, name), flush=True)
                forks_before = forks(client)
                hist_before = command_histograms(client)
                run_started = time.time()
                with Pinger(pinger_conn, interval) as ping:
                    if contenders[name] is None:
                        wall, result = run_module(env, module_args)
                        deleted = result["deleted"]
                        extra = "module duration %.2fs, %d SCAN calls, %d UNLINK batches" % (
                            result["duration_seconds"], result["scan_calls"], result["batches"])
                    else:
                        wall = run_shell(env, contenders[name])
                        deleted = args.match + args.others - client.dbsize()
                        extra = ""
                server = longest_commands(hist_before, command_histograms(client))
                events = [(e[0].decode(), int(e[3])) for e in client.execute_command("LATENCY", "LATEST")
                          if int(e[1]) >= int(run_started)]
                remaining = client.dbsize()
                ok = remaining == args.others and deleted == args.match and client.exists(KEEP_PREFIX + "0")
                fork_note = forks(client) - forks_before
                slowest = max((v["slowest_le_ms"] or 0 for v in server.values()), default=0)
                results[name].append(dict(wall=wall, stall=ping.stats["max_ms"], ping=ping.stats, ok=ok,
                                          server_ms=slowest, forks=fork_note))
                print("  wall %.2fs, deleted %d, remaining %d (%s); worst PING %.1f ms, p99 %.2f ms, %d pings"
                      "%s%s" % (wall, deleted, remaining, "ok" if ok else "WRONG", ping.stats["max_ms"],
                                ping.stats["p99_ms"], ping.stats["pings"], ("; " + extra) if extra else "",
                                ("; %d fork(s) for BGSAVE/AOF rewrite during the run" % fork_note)
                                if fork_note else ""), flush=True)
                print("  server side: slowest command per LATENCY HISTOGRAM %s; LATENCY LATEST events >= 50 ms "
                      "during the run: %s" % (", ".join("%s x%d <= %s ms" % (k, v["calls"], v["slowest_le_ms"])
                                                         for k, v in server.items()), events or "none"), flush=True)
        print("idle baseline of the pinger again (3 s) ...", flush=True)
        with Pinger(pinger_conn, interval) as idle_end:
            time.sleep(3)
        print("  idle: %s" % idle_end.stats)
    except (redis.exceptions.ConnectionError, RuntimeError) as exc:
        failure = exc
        print("BENCHMARK ABORTED: %s" % exc, file=sys.stderr)
    else:
        failure = None
    finally:
        cleanup(client, args, old_persistence, raised, old_maxmemory, evicted_before)
    if failure is not None:
        sys.exit(1)

    print()
    print("%-32s %4s %11s %9s %8s %11s %11s %14s %5s %s" % (
        "method", "runs", "median wall", "best wall", "vs scan", "worst PING", "median wPING", "slowest cmd",
        "forks", "correct"))
    medians = {name: statistics.median(r["wall"] for r in runs) for name, runs in results.items() if runs}
    base = medians.get("redis-cli --scan | xargs unlink", float("nan"))
    for name, runs in results.items():
        if not runs:
            continue
        print("%-32s %4d %10.2fs %8.2fs %7.2fx %8.1f ms %8.1f ms %11s ms %5d %s" % (
            name, len(runs), medians[name], min(r["wall"] for r in runs), medians[name] / base,
            max(r["stall"] for r in runs), statistics.median(r["stall"] for r in runs),
            "<= %g" % max(r["server_ms"] for r in runs), sum(r["forks"] for r in runs),
            "yes" if all(r["ok"] for r in runs) else "NO"))
    mod = results["redis_keys"]
    ratio = medians["redis_keys"] / base
    worst = max(r["stall"] for r in mod)
    print()
    print("pinger idle baseline (no delete running): worst PING %.1f ms at start, %.1f ms at the end"
          % (idle.stats["max_ms"], idle_end.stats["max_ms"]))
    print("goal wall <= 1.2x scan idiom (medians): %s (%.2fx)" % ("met" if ratio <= 1.2 else "NOT met", ratio))
    print("goal worst stall <= 50 ms:              %s (worst %.1f ms over %d run(s); median of per-run worst %.1f ms)"
          % ("met" if worst <= 50 else "NOT met", worst, len(mod), statistics.median(r["stall"] for r in mod)))
    print("(slowest cmd: upper bound of the slowest LATENCY HISTOGRAM bucket the deleting commands hit; forks: "
          "BGSAVE/AOF rewrites that started during the runs. Both the PING stalls and the command times include "
          "any CPU contention from other work on this machine.)")

if __name__ == "__main__":
    main()
