"""Decisions of the troubleshoot role: what the gathered module results say, step by step (report checks and the
report's extra sections), and the diagnosis of each guide (startup, memory, cpu, db_connections) with its severity.

The role's tasks only gather (modules, registered results) and act; `troubleshoot_record` turns what they gathered
into the run's record: {checks, actions, extra, diagnosis, severity, summary, failure}. Every function here takes
plain data (registered results, None for a step that did not run) and returns plain data, so it is tested without
Ansible, Docker or a database (tests/unit/test_troubleshoot_filters.py).
"""
from __future__ import annotations

import importlib.util
import json
import re
from collections.abc import Mapping
from numbers import Number
from pathlib import Path

from ansible import constants as C

# module_utils/<name>.py on the controller, through its one loader module_utils/marketplace_controller.py: beside
# this plugin in the repository, else in a module_utils path ansible is configured with.
_spec = importlib.util.spec_from_file_location("marketplace_controller", next((
    p for d in (Path(__file__).resolve().parents[3] / "module_utils", *(C.DEFAULT_MODULE_UTILS_PATH or ()))
    if (p := Path(d, "marketplace_controller.py")).is_file()), "(not found)/marketplace_controller.py"))
_spec.loader.exec_module(_loader := importlib.util.module_from_spec(_spec))
_module_utils = _loader.module_utils
_jinja = _module_utils("marketplace_jinja")

MIB = 1048576
BAD = ("warning", "critical")
ISREADY_ANSWERS = {0: "accepting connections", 1: "rejecting connections", 2: "no response",
                   3: "no attempt (bad parameters)"}
LOG_HINTS = (
    ("missing required environment variable",
     'a required environment variable is missing (startup log: "missing required environment variable")'),
    ("EADDRINUSE|address already in use", "the port is already in use (startup log: EADDRINUSE)"),
    ("password authentication failed",
     "the database refuses the application credentials (startup log: password authentication failed)"),
    ("ECONNREFUSED", "a dependency refuses connections (startup log: ECONNREFUSED)"),
)
LONG_RUNNING_STATES = ["active", "idle in transaction", "idle in transaction (aborted)"]


# --- small helpers: the Jinja semantics the task files used ---------------------------------------------------
_s = _jinja.text


_truncate = _jinja.truncate


_int = _jinja.to_int


_float = _jinja.to_float


def _is_number(value) -> bool:
    return isinstance(value, Number)


_unique = _jinja.unique


def _ran(result) -> bool:
    """A registered result of a task that ran (not undefined, not skipped)."""
    return isinstance(result, Mapping) and not bool(result.get("skipped"))


def _d(value) -> Mapping:
    return value if isinstance(value, Mapping) else {}


def _l(value) -> list:
    return list(value) if isinstance(value, (list, tuple)) else []


def _bad_messages(checks, pattern: str) -> list:
    return [c.get("message") for c in checks
            if re.match(pattern, _s(c.get("name", ""))) and c.get("status") in BAD]


# --- per step: the checks and the report section of what a step gathered -------------------------------------
def troubleshoot_containers(compose) -> list:
    """Per container, the facts a startup investigation needs (compose_status has them all)."""
    out = []
    for c in _l(_d(compose).get("containers")):
        stats = c.get("stats") or {}
        out.append({"name": c.get("name"), "service": c.get("service"), "state": c.get("state"),
                    "health": c.get("health"), "exit_code": c.get("exit_code"), "oom_killed": c.get("oom_killed"),
                    "restart_count": c.get("restart_count"), "started_at": c.get("started_at"),
                    "finished_at": c.get("finished_at"), "error": c.get("error"), "image": c.get("image"),
                    "cpu_percent": stats.get("cpu_percent"), "memory_usage": stats.get("memory_usage"),
                    "memory_limit": stats.get("memory_limit"), "memory_percent": stats.get("memory_percent"),
                    "memory_limited": stats.get("memory_limited")})
    return out


def troubleshoot_failed_services(compose) -> list:
    """Expected services not every container of which runs healthy: exited, missing, restarting, unhealthy, or
    'starting' again and again in a restart loop (between two crashes the container is briefly running)."""
    return [name for name, svc in _d(_d(compose).get("services")).items()
            if svc.get("expected", True) and (_int(svc.get("replicas")) == 0
                                              or _int(svc.get("healthy")) < _int(svc.get("replicas")))]


def troubleshoot_busiest(compose):
    """The running container with the highest CPU sample, or None."""
    running = [c for c in _l(_d(compose).get("containers")) if c.get("state") == "running"
               and isinstance(c.get("stats"), Mapping) and _is_number(c["stats"].get("cpu_percent"))]
    running = sorted(running, key=lambda c: c["stats"]["cpu_percent"], reverse=True)
    return running[0].get("name") if running else None


def _compose_checks(compose) -> list:
    if bool(compose.get("available")):
        return _l(compose.get("checks"))
    return [{"name": "docker", "component": "docker", "status": "critical", "value": None, "threshold": None,
             "message": compose.get("reason", "Docker daemon unavailable")}]


def troubleshoot_log_checks(logs) -> list:
    """One check per service of the startup logs: its error lines (the last one in the message)."""
    out = []
    for svc, info in _d(_d(logs).get("logs")).items():
        n = _int(info.get("match_count", 0))
        matches = _l(info.get("matches"))
        message = "%s error line(s) in the last %s lines of %s" % (n, _s(info.get("lines_scanned", 0)), svc)
        if n > 0 and matches:
            message += ", last: " + _truncate(matches[-1], 300)
        out.append({"name": "startup_log:" + _s(svc), "component": svc, "status": "ok" if n == 0 else "warning",
                    "value": n, "threshold": 0, "message": message})
    return out


def _env_checks(env) -> list:
    if bool(env.get("available")):
        return _l(env.get("checks"))
    return [{"name": "env", "component": "docker", "status": "unknown", "value": None, "threshold": None,
             "message": "cannot read the containers environment: " + _s(env.get("reason", ""))}]


def _connectivity(pg, redis, settings):
    pg_ok, redis_ok = bool(pg.get("available", False)), bool(redis.get("available", False))
    pg_where = "%s:%s" % (settings.get("db_host"), settings.get("db_port"))
    redis_end = "%s:%s" % (settings.get("redis_host"), settings.get("redis_port"))
    redis_where = "Redis at " + redis_end
    pg_message = (_d(_d(pg.get("checks")).get("liveness")).get("message")
                  or "PostgreSQL at %s unavailable: %s" % (pg_where, _s(pg.get("reason", ""))))
    checks = [
        {"name": "postgres_connectivity", "component": "postgres", "status": "ok" if pg_ok else "critical",
         "value": pg_ok, "threshold": None, "message": pg_message},
        {"name": "redis_connectivity", "component": "redis", "status": "ok" if redis_ok else "critical",
         "value": redis_ok, "threshold": None,
         "message": (redis_where + " answered PING in " + _s(redis.get("ping_ms", "?")) + " ms") if redis_ok
         else (redis_where + " unavailable: " + _s(redis.get("reason", "")))},
    ]
    view = {"postgres": {"available": pg.get("available", False), "reason": pg.get("reason"),
                         "category": _d(pg.get("liveness")).get("category"), "endpoint": pg_where},
            "redis": {"available": redis.get("available", False), "reason": redis.get("reason"),
                      "endpoint": redis_end}}
    return checks, view


def troubleshoot_heap(heap_exec) -> list:
    """What `node -e` printed in each container (node_memory.js): the exec'd process, the server's own heap from
    its /metrics, and the V8 limit."""
    out = []
    for r in _l(_d(heap_exec).get("results")):
        stdout = _s(r.get("stdout", "")).strip()
        data = {}
        if r.get("rc", 1) == 0 and stdout.startswith("{"):
            try:
                data = json.loads(stdout)
            except ValueError:
                data = {}
        data = data if isinstance(data, dict) else {}
        used = _d(data.get("server")).get("heap_used_bytes")
        limit = data.get("heap_size_limit")
        error = None
        if not data:
            error = _truncate(r["stderr"] if "stderr" in r else r.get("msg", "no output"), 300)
        out.append({"container": r.get("item"), "ok": len(data) > 0, "error": error,
                    "exec_process": data.get("exec_process"), "heap_size_limit": limit,
                    "server": data.get("server"), "server_error": data.get("server_error"),
                    "node_version": data.get("node_version"),
                    "heap_used_pct_of_limit": round(100.0 * used / limit, 2) if used and limit else None})
    return out


def troubleshoot_heap_checks(heap, warning_pct, critical_pct) -> list:
    """The server's heap against the V8 limit (warning/critical percent)."""
    warning, critical = _float(warning_pct), _float(critical_pct)
    out = []
    for h in heap:
        name = "node_heap:" + _s(h["container"])
        if not h["ok"]:
            out.append({"name": name, "component": "backend", "status": "unknown", "value": None, "threshold": None,
                        "message": "cannot run node in %s: %s" % (h["container"], h["error"])})
            continue
        pct = h["heap_used_pct_of_limit"]
        status = ("unknown" if pct is None else "critical" if pct >= critical
                  else "warning" if pct >= warning else "ok")
        server = _d(h.get("server"))
        if pct is not None:
            text = ("server heap %s MiB used of %s MiB allocated, %s%% of the %s MiB V8 limit; RSS %s MiB"
                    % (round(server["heap_used_bytes"] / MIB, 1), round(server["heap_total_bytes"] / MIB, 1), pct,
                       int(round(h["heap_size_limit"] / MIB, 0)), round(server["rss_bytes"] / MIB, 1)))
        else:
            text = "server heap unknown (%s)" % (h.get("server_error") or "no metrics")
        proc = _d(h.get("exec_process"))
        text += ("; node -e process.memoryUsage(): heapUsed %s MiB, rss %s MiB (of the exec process, not the server)"
                 % (round(proc["heapUsed"] / MIB, 1), round(proc["rss"] / MIB, 1)))
        out.append({"name": name, "component": "backend", "status": status, "value": pct,
                    "threshold": {"warning": warning, "critical": critical}, "message": text})
    return out


def _busiest_view(busiest, top) -> dict:
    first = (_l(_d(top).get("containers")) or [{}])[0]
    return {"name": busiest, "processes": _l(_d(first).get("processes")), "cpu_method": _d(first).get("cpu_method"),
            "summary": _d(top).get("summary", "no running container with a CPU sample")}


def _readiness(host_rc, container_rc, pg):
    from_container = _ran(container_rc)
    res = _d(container_rc if from_container else host_rc)
    where = "container" if from_container else "host"
    rc = _int(res.get("rc", -1))
    out = res.get("stdout", res.get("msg", ""))
    answer = ISREADY_ANSWERS.get(rc, "pg_isready could not run")
    pg_ok = bool(pg.get("available", False))
    query_message = (_d(_d(pg.get("checks")).get("liveness")).get("message")
                     or "no real query possible: " + _s(pg.get("reason", "")))
    if not (pg_ok or rc != 0):
        query_message += " (pg_isready says accepting: it does not log in)"
    checks = [
        {"name": "pg_isready", "component": "postgres",
         "status": "ok" if rc == 0 else ("unknown" if rc not in (1, 2, 3) else "critical"),
         "value": rc, "threshold": 0, "message": "pg_isready (%s): %s (exit %s)" % (where, answer, rc)},
        {"name": "query", "component": "postgres", "status": "ok" if pg_ok else "critical", "value": pg_ok,
         "threshold": None, "message": query_message},
    ]
    view = {"pg_isready": {"rc": rc, "answer": answer, "ran": where, "output": _s(out).strip()},
            "query": {"available": pg.get("available", False), "reason": pg.get("reason"),
                      "category": _d(pg.get("liveness")).get("category")}}
    return checks, view


def troubleshoot_waiters(db) -> list:
    """The backends waiting on a lock (the blocked pids of the blocking pairs)."""
    return sorted(_unique(p.get("blocked_pid") for p in _l(_d(db).get("blocking"))))


def _activity(db):
    db = _d(db)
    checks = [c for c in _d(db.get("checks")).values() if c.get("name") != "liveness"]
    view = {"available": db.get("available", False), "reason": db.get("reason"),
            "connections": db.get("connections", {}), "blocking": db.get("blocking", []),
            "blockers": db.get("blockers", []), "waiters": troubleshoot_waiters(db),
            "long_queries": db.get("long_queries", []), "long_transactions": db.get("long_transactions", []),
            "idle_in_transaction": db.get("idle_in_transaction", [])}
    return checks, view


# --- diagnoses -----------------------------------------------------------------------------------------------
def troubleshoot_diagnose_cpu(checks, compose, host, extra) -> dict:
    """CPU pressure from the host and container checks, the busiest container and its top process."""
    containers = [c for c in _l(_d(compose).get("containers"))
                  if isinstance(c.get("stats"), Mapping) and _is_number(c["stats"].get("cpu_percent"))]
    containers = sorted(containers, key=lambda c: c["stats"]["cpu_percent"], reverse=True)
    top_containers = [{"name": c.get("name"), "cpu_percent": c["stats"]["cpu_percent"],
                       "online_cpus": c["stats"].get("online_cpus")} for c in containers[:5]]
    top_host = ["%s (pid %s%s) %s%%" % (p.get("name"), p.get("pid"),
                                        (", container " + _s(p["container_id"])) if p.get("container_id") else "",
                                        p.get("cpu_pct"))
                for p in _l(_d(_d(host).get("processes")).get("top_cpu"))[:5]]
    busy_procs = _l(_d(_d(extra).get("busiest_container")).get("processes"))
    top_proc = busy_procs[0] if busy_procs else None
    top_proc_text = ("; its busiest process: pid %s at %s%% CPU: %s"
                     % (top_proc.get("pid"), top_proc.get("cpu_pct"), _truncate(top_proc.get("command"), 120))
                     if top_proc else "")
    findings = ([c.get("message") for c in checks if c.get("name") in ("host_cpu", "host_load")
                 and c.get("status") in BAD] + _bad_messages(checks, "^cpu:"))
    leader = top_containers[0] if top_containers else None
    diagnosis = (("CPU pressure: " + "; ".join(map(_s, findings))) if findings else "no CPU pressure")
    if leader:
        diagnosis += ("; busiest container %s at %s%% (100 = one core)" % (leader["name"], leader["cpu_percent"])
                      + top_proc_text)
    if top_host:
        diagnosis += "; busiest host process " + top_host[0]
    return {"diagnosis": diagnosis, "severity": "P2" if findings else None,
            "check": {"name": "diagnosis", "component": "stack", "status": "warning" if findings else "ok",
                      "value": len(findings), "threshold": 0, "message": diagnosis},
            "extra": {"summary": diagnosis, "findings": findings, "top_containers": top_containers,
                      "top_host_processes": top_host}}


def troubleshoot_diagnose_memory(checks, compose, host) -> dict:
    """Memory pressure: OOM kills, containers near their limit, the Node heap near the V8 limit, host memory."""
    containers = [c for c in _l(_d(compose).get("containers"))
                  if isinstance(c.get("stats"), Mapping) and _is_number(c["stats"].get("memory_usage"))]
    containers = sorted(containers, key=lambda c: c["stats"]["memory_usage"], reverse=True)
    top_containers = [{"name": c.get("name"), "usage_mib": round(c["stats"]["memory_usage"] / MIB, 1),
                       "limit_mib": round(c["stats"]["memory_limit"] / MIB, 1) if c["stats"].get("memory_limit")
                       else None,
                       "percent": c["stats"].get("memory_percent"), "limited": c["stats"].get("memory_limited")}
                      for c in containers[:5]]
    top_processes = ["%s (pid %s%s) %s MiB" % (p.get("name"), p.get("pid"),
                                               (", container " + _s(p["container_id"])) if p.get("container_id")
                                               else "", round(p["rss_bytes"] / MIB, 1))
                     for p in _l(_d(_d(host).get("processes")).get("top_memory"))[:5]]
    oom = [c.get("name") for c in _l(_d(compose).get("containers")) if c.get("oom_killed")]
    findings = ([_s(o) + " was OOM-killed: raise its memory limit or find what grows" for o in oom]
                + ["container near its limit: " + _s(m) for m in _bad_messages(checks, "^memory:")]
                + ["Node heap near the V8 limit (a leak, or --max-old-space-size too small): " + _s(m)
                   for m in _bad_messages(checks, "^node_heap:")]
                + ["host memory: " + _s(c.get("message")) for c in checks
                   if c.get("name") == "host_memory" and c.get("status") in BAD])
    biggest = top_containers[0] if top_containers else None
    if findings:
        diagnosis = "memory pressure: " + "; ".join(findings)
    else:
        diagnosis = ("no memory pressure: largest container %s uses %s MiB (%s%% of %s)"
                     % (biggest["name"], biggest["usage_mib"], biggest["percent"],
                        "its limit" if biggest["limited"] else "the host")
                     if biggest else "no memory pressure found")
        if top_processes:
            diagnosis += "; largest process " + top_processes[0]
    return {"diagnosis": diagnosis, "severity": "P2" if findings else None,
            "check": {"name": "diagnosis", "component": "stack", "status": "warning" if findings else "ok",
                      "value": len(findings), "threshold": 0, "message": diagnosis},
            "extra": {"summary": diagnosis, "findings": findings, "top_containers": top_containers,
                      "top_processes": top_processes}}


def _exit_lines(failed, containers, logs) -> list:
    out = []
    for svc in failed:
        cs = [c for c in containers if c.get("service") == svc]
        codes = _unique(c.get("exit_code") for c in cs if _is_number(c.get("exit_code")) and c.get("exit_code") != 0)
        states = _unique(c.get("state") for c in cs)
        matches = _l(_d(logs.get(svc)).get("matches")) if svc in logs else []
        last = (matches[-1] if matches else "") or ""
        line = _s(svc) + " is " + ("/".join(map(_s, states)) if states else "missing")
        line += (" with exit code " + ", ".join(map(_s, codes))) if codes else ""
        line += " (78 = EX_CONFIG: configuration error)" if 78 in codes else ""
        line += ("; last error line: " + _truncate(last, 240)) if last else ""
        out.append(line)
    return out


def troubleshoot_diagnose_startup(checks, compose, failed, env, pg, redis, logs, settings) -> dict:
    """The most likely cause, from the strongest evidence down: no Docker daemon, a required variable unset or
    empty in a failing service, a full disk, an out-of-memory kill, an unreachable database or Redis, a known
    error in the startup log, and finally the exit code and last error line of whatever does not run."""
    compose, settings = _d(compose), _d(settings)
    pg, redis = _d(pg), _d(redis)
    failed = _l(failed)
    docker_ok = bool(compose.get("available", True))
    env_bad = []
    for svc, info in _d(_d(env).get("services")).items():
        missing, empty = _l(info.get("missing")), _l(info.get("empty"))
        if missing or empty:
            env_bad.append({"service": svc, "failing": svc in failed,
                            "text": ", ".join([_s(m) + " unset" for m in missing] + [_s(e) + " empty" for e in empty])})
    env_bad_failing = [e for e in env_bad if e["failing"]]
    disks_full = [c.get("message") for c in checks if re.match(r"^(disk|inodes):", _s(c.get("name", "")))
                  and c.get("status") == "critical"]
    containers = _l(compose.get("containers"))
    oom = [c.get("name") for c in containers if c.get("oom_killed")]
    pg_down = "available" in pg and not bool(pg["available"])
    redis_down = "available" in redis and not bool(redis["available"])
    logs = _d(_d(logs).get("logs"))
    log_text = "\n".join(_s(m) for svc in failed if svc in logs for m in _l(_d(logs[svc]).get("matches"))
                         if m is not None)
    log_hint = next((hint for pattern, hint in LOG_HINTS if re.search(pattern, log_text)), "")
    exits = _exit_lines(failed, containers, logs)
    env_services = [e["service"] for e in env_bad_failing]
    candidates = [c for c in [
        {"when": not docker_ok, "kind": "docker",
         "cause": "the Docker daemon is not reachable (" + _s(compose.get("reason", ""))
                  + "): nothing can start; run emergency-recover.yml"},
        {"when": bool(env_bad_failing), "kind": "environment",
         "cause": ", ".join(map(_s, env_services)) + " cannot start: required environment variable(s) "
                  + "; ".join(e["text"] for e in env_bad_failing)
                  + " in its container; set them in the env file or the compose environment and recreate the"
                  " container (docker compose up -d " + " ".join(map(_s, env_services)) + ")"},
        {"when": bool(disks_full), "kind": "disk", "cause": "disk full: " + "; ".join(map(_s, disks_full))},
        {"when": bool(oom), "kind": "memory",
         "cause": ", ".join(map(_s, oom)) + " was killed for lack of memory (OOMKilled): raise its memory limit or"
                  " find the leak (troubleshoot-memory.yml)"},
        {"when": pg_down, "kind": "database",
         "cause": "PostgreSQL at %s:%s is unreachable (%s): the backend cannot start without it"
                  % (settings.get("db_host"), settings.get("db_port"), _s(pg.get("reason", "")))},
        {"when": redis_down, "kind": "redis",
         "cause": "Redis at %s:%s is unreachable (%s): the backend needs it"
                  % (settings.get("redis_host"), settings.get("redis_port"), _s(redis.get("reason", "")))},
        {"when": bool(failed) and bool(log_hint), "kind": "log",
         "cause": ", ".join(map(_s, failed)) + ": " + log_hint + "; " + "; ".join(exits)},
        {"when": bool(failed), "kind": "exit", "cause": "; ".join(exits)},
    ] if c["when"]]
    warnings = ([_s(e["service"]) + " runs, but would not start again: required variable(s) missing or empty"
                 for e in env_bad if not e["failing"]]
                + [c.get("message") for c in checks if c.get("status") == "warning"
                   and not re.match(r"^startup_log:", _s(c.get("name", "")))])
    kind = candidates[0]["kind"] if candidates else "none"
    if candidates:
        cause = "most likely cause: " + candidates[0]["cause"]
    else:
        cause = "no startup problem found: every expected service runs and is healthy" + (
            (" (note: " + "; ".join(map(_s, warnings)) + ")") if warnings else "")
    essential = [*_l(settings.get("app_services")), "postgres"]
    if any(s in essential for s in failed) or pg_down or not docker_ok:
        severity = "P0"
    else:
        severity = "P2" if failed or candidates or warnings else None
    status = "critical" if failed or len(candidates) > 1 else ("warning" if warnings else "ok")
    return {"diagnosis": cause, "severity": severity,
            "check": {"name": "diagnosis", "component": "stack", "status": status, "value": kind,
                      "threshold": None, "message": cause},
            "extra": {"cause": cause, "kind": kind, "failed_services": failed,
                      "other_findings": [c["cause"] for c in candidates[1:]] + warnings}}


def troubleshoot_blocker_lines(db) -> list:
    """Per root blocker, every backend waiting on it directly or behind another waiter (a lock queue)."""
    db = _d(db)
    pairs = _l(db.get("blocking"))
    out = []
    for b in _l(db.get("blockers")):
        mine = [p for p in pairs if p.get("blocking_pid") == b]
        first = mine[0] if mine else {}
        reach = [b]
        for _round in range(8):
            for p in pairs:
                if p.get("blocking_pid") in reach and p.get("blocked_pid") not in reach:
                    reach.append(p.get("blocked_pid"))
        direct = sorted(_unique(p.get("blocked_pid") for p in mine))
        behind = sorted(x for x in reach[1:] if x not in direct)
        waits = [_float(p.get("blocked_wait_seconds")) for p in pairs if p.get("blocked_pid") in reach[1:]]
        line = "pid %s (%s, %s" % (b, _s(first.get("blocking_user", "?")), _s(first.get("blocking_state", "?")))
        if first.get("blocking_xact_seconds") is not None:
            line += ", transaction open %s s" % first["blocking_xact_seconds"]
        line += ") blocks pid(s) " + ", ".join(map(_s, sorted(reach[1:])))
        if behind:
            line += " (directly %s, queued behind them %s)" % (", ".join(map(_s, direct)), ", ".join(map(_s, behind)))
        line += ", longest wait %s s; its last query: %s" % (max(waits) if waits else "?",
                                                             _truncate(first.get("blocking_query", ""), 160))
        out.append(line)
    return out


def troubleshoot_diagnose_db_connections(db, pg) -> dict:
    """The blocking pid(s) and their waiters, long-running and idle-in-transaction sessions, connection usage.
    Severity by the runbook: database unavailable P0; connection issues (usage, blocking) P1."""
    db = _d(db)
    pg = _d(pg)
    pairs = _l(db.get("blocking"))
    down = not bool(pg.get("available", db.get("available", True)))
    blocker_lines = troubleshoot_blocker_lines(db)
    issues = [c for c in _d(db.get("checks")).values() if c.get("name") != "liveness" and c.get("status") in BAD]
    conn_issue = any(c.get("name") in ("connections", "blocking") for c in issues) or len(pairs) > 0
    findings = blocker_lines + [c.get("message") for c in issues if c.get("name") != "blocking"]
    severity = "P0" if down else ("P1" if conn_issue else ("P2" if issues else None))
    if down:
        diagnosis = "database unavailable: " + _s(pg.get("reason", db.get("reason", "no answer")))
    elif blocker_lines:
        diagnosis = "blocking: " + "; ".join(blocker_lines)
        if len(findings) > len(blocker_lines):
            diagnosis += "; also: " + "; ".join(map(_s, findings[len(blocker_lines):]))
    elif findings:
        diagnosis = "; ".join(map(_s, findings))
    else:
        conn = _d(db.get("connections"))
        diagnosis = ("no connection problem found: %s client backends of %s usable, no blocking, no long-running or"
                     " idle-in-transaction session" % (conn.get("client_backends", "?"), conn.get("usable", "?")))
    return {"diagnosis": diagnosis, "severity": severity,
            "check": {"name": "diagnosis", "component": "postgres",
                      "status": "critical" if severity in ("P0", "P1") else ("warning" if severity else "ok"),
                      "value": severity, "threshold": None, "message": diagnosis},
            "extra": {"summary": diagnosis, "findings": findings, "blockers": blocker_lines}}


# --- terminate -----------------------------------------------------------------------------------------------
def troubleshoot_targets(mode, db, pid_list) -> list:
    """The backends terminate=blockers|long_running|pids names (sorted pids)."""
    db = _d(db)
    if mode == "blockers":
        targets = _l(db.get("blockers"))
    elif mode == "long_running":
        targets = [r.get("pid") for r in _l(db.get("long_queries")) + _l(db.get("idle_in_transaction"))]
    else:
        targets = _l(pid_list)
    return sorted(_unique(_int(t) for t in targets))


def troubleshoot_terminate_filters(mode) -> dict:
    """postgres_admin's filters that re-check each pid before it is signalled."""
    if mode == "blockers":
        return {"blockers_only": True, "states": []}
    if mode == "long_running":
        return {"blockers_only": False, "states": list(LONG_RUNNING_STATES)}
    return {"blockers_only": False, "states": []}


def _terminate(gathered, settings):
    """(actions, checks, extra section, failure) of the terminate step."""
    mode = settings.get("terminate")
    targets = _l(settings.get("targets"))
    waiters = _l(settings.get("waiters"))
    if not targets:
        reason = ("no blocking backend" if mode == "blockers"
                  else "no long-running or idle-in-transaction session past the thresholds")
        return [{"name": "terminate", "changed": False,
                 "detail": "terminate=%s: nothing to terminate (%s)" % (mode, reason)}], [], None, None
    if not settings.get("confirmed"):
        chosen = _l(_d(gathered.get("terminate_plan")).get("targets"))
        detail = "%s: would terminate %s backend(s) (%s): %s" % (
            "check mode" if settings.get("check_mode") else "not confirmed", len(chosen), mode,
            ", ".join(_s(t.get("pid")) for t in chosen) or "none")
        if mode == "blockers" and waiters:
            detail += " - waiting on them: " + ", ".join(map(_s, waiters))
        detail += "" if settings.get("check_mode") else "; rerun with -e confirm=true"
        return [{"name": "terminate", "changed": False, "detail": detail}], [], None, None
    terminated = _d(gathered.get("terminated"))
    after, waiters_after = _d(gathered.get("after")), _d(gathered.get("waiters_after"))
    after_ran = bool(after) and not bool(after.get("skipped"))
    waiters_after_ran = bool(waiters_after) and not bool(waiters_after.get("skipped"))
    done = _l(terminated.get("done"))
    still = (sorted(_unique(p.get("blocked_pid") for p in _l(after.get("blocking")) if p.get("blocked_pid") in waiters))
             if after_ran else [])
    freed = [w for w in waiters if w not in still]
    waiters_now = _l(waiters_after.get("targets")) if waiters_after_ran else []
    states = ["%s: %s" % (w.get("pid"), w.get("state")) for w in waiters_now]
    detail = _s(terminated.get("msg", "terminate"))
    if waiters:
        detail += "; waiters freed: %s; still waiting: %s" % (", ".join(map(_s, freed)) or "none",
                                                              ", ".join(map(_s, still)) or "none")
    checks = []
    if waiters:
        checks.append({"name": "waiters_freed", "component": "postgres", "status": "ok" if not still else "critical",
                       "value": freed, "threshold": waiters,
                       "message": "waiters freed: %s; still waiting: %s%s" % (
                           ", ".join(map(_s, freed)) or "none", ", ".join(map(_s, still)) or "none",
                           (" (now " + ", ".join(states) + ")") if states else "")})
    extra = {"mode": mode, "requested": targets, "terminated": done,
             "no_effect": terminated.get("no_effect", []), "failed": terminated.get("failed", []),
             "skipped": terminated.get("skipped", []), "results": terminated.get("results", []),
             "waiters_before": waiters, "waiters_freed": freed, "still_waiting": still,
             "waiters_now": waiters_now,
             "waiters_gone": waiters_after.get("skipped", []) if waiters_after_ran else [],
             "blocking_after": after.get("blocking", []) if after_ran else []}
    failure = None if not _l(terminated.get("failed")) and not still else detail
    return [{"name": "terminate", "changed": len(done) > 0, "detail": detail}], checks, extra, failure


# --- the record of the run -----------------------------------------------------------------------------------
def troubleshoot_record(gathered, settings) -> dict:
    """The run's record from what the steps registered (None for a step that did not run).

    gathered: compose, logs, env, pg, redis, disk, host, heap_exec, top, isready_host, isready_container, db,
      terminate_check (the terminate step's request check), terminate_plan, terminated, after, waiters_after.
    settings: topic, db_host, db_port, redis_host, redis_port, app_services, heap_warning_pct, heap_critical_pct,
      busiest, terminate, targets, waiters, confirmed, check_mode.
    Returns {checks, actions, extra, diagnosis, severity, summary, failure}, the checks and the report sections
    in the order the steps run."""
    g, settings = _d(gathered), _d(settings)
    topic = settings.get("topic")
    checks, extra, actions, failure = [], {}, [], None
    compose = g.get("compose")
    if isinstance(compose, Mapping):
        checks += _compose_checks(compose)
        extra["containers"] = troubleshoot_containers(compose)
    if topic == "startup":
        if isinstance(g.get("logs"), Mapping):
            checks += troubleshoot_log_checks(g["logs"])
            extra["startup_logs"] = _d(g["logs"]).get("logs", {})
        env = g.get("env")
        if isinstance(env, Mapping):
            checks += _env_checks(env)
            extra["environment"] = {key: env.get(key, {} if key == "services" else [])
                                    for key in ("required", "missing", "empty", "services", "containers")}
        if isinstance(g.get("pg"), Mapping) and isinstance(g.get("redis"), Mapping):
            step_checks, view = _connectivity(g["pg"], g["redis"], settings)
            checks += step_checks
            extra["connectivity"] = view
        if isinstance(g.get("disk"), Mapping):
            checks += _l(g["disk"].get("checks"))
            extra["disks"] = g["disk"].get("disks")
    if topic in ("memory", "cpu") and isinstance(g.get("host"), Mapping):
        checks += _l(g["host"].get("checks"))
        extra["host"] = {k: v for k, v in g["host"].items()
                         if k not in ("checks", "changed", "failed", "invocation", "status")}
    if topic == "memory" and isinstance(g.get("heap_exec"), Mapping):
        heap = troubleshoot_heap(g["heap_exec"])
        checks += troubleshoot_heap_checks(heap, settings.get("heap_warning_pct"), settings.get("heap_critical_pct"))
        extra["node_heap"] = heap
    if topic == "cpu" and isinstance(g.get("top"), Mapping):
        extra["busiest_container"] = _busiest_view(settings.get("busiest"), g["top"])
    if topic == "db_connections":
        if isinstance(g.get("isready_host"), Mapping):
            step_checks, view = _readiness(g["isready_host"], g.get("isready_container"), _d(g.get("pg")))
            checks += step_checks
            extra["readiness"] = view
        if isinstance(g.get("db"), Mapping):
            step_checks, view = _activity(g["db"])
            checks += step_checks
            extra["database"] = view

    if topic == "startup":
        verdict = troubleshoot_diagnose_startup(checks, compose, troubleshoot_failed_services(compose), g.get("env"),
                                                g.get("pg"), g.get("redis"), g.get("logs"), settings)
    elif topic == "memory":
        verdict = troubleshoot_diagnose_memory(checks, compose, g.get("host"))
    elif topic == "cpu":
        verdict = troubleshoot_diagnose_cpu(checks, compose, g.get("host"), extra)
    else:
        verdict = troubleshoot_diagnose_db_connections(g.get("db"), g.get("pg"))
    checks.append(verdict["check"])
    extra["diagnosis"] = verdict["extra"]

    if topic == "db_connections" and _ran(g.get("terminate_check")):
        actions, step_checks, section, failure = _terminate(g, settings)
        checks += step_checks
        if section is not None:
            extra["terminate"] = section
    return {"checks": checks, "actions": actions, "extra": extra, "diagnosis": verdict["diagnosis"],
            "severity": verdict["severity"], "summary": verdict["diagnosis"], "failure": failure}


class FilterModule:
    def filters(self):
        return {
            "troubleshoot_record": troubleshoot_record,
            "troubleshoot_failed_services": troubleshoot_failed_services,
            "troubleshoot_busiest": troubleshoot_busiest,
            "troubleshoot_waiters": troubleshoot_waiters,
            "troubleshoot_targets": troubleshoot_targets,
            "troubleshoot_terminate_filters": troubleshoot_terminate_filters,
        }
