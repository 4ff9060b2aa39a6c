"""The troubleshoot role's decisions (roles/troubleshoot/filter_plugins/troubleshoot_filters.py): the checks and
report sections of each step, the diagnosis of each guide with its severity, and what terminate chose and did,
from registered results shaped as the modules return them. No Docker, no database."""
from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

_PATH = Path(__file__).resolve().parents[2] / "roles" / "troubleshoot" / "filter_plugins" / "troubleshoot_filters.py"
_spec = importlib.util.spec_from_file_location("troubleshoot_filters", _PATH)
tf = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(tf)

MIB = 1048576
SETTINGS = {"db_host": "127.0.0.1", "db_port": 5432, "redis_host": "127.0.0.1", "redis_port": 6379,
            "app_services": ["backend", "nginx"], "heap_warning_pct": 80, "heap_critical_pct": 95,
            "terminate": "", "targets": [], "waiters": [], "confirmed": False, "check_mode": False}
SKIPPED = {"changed": False, "skipped": True, "skip_reason": "Conditional result was False"}


def check(name, status="ok", message=None, value=None):
    return {"name": name, "component": "x", "status": status, "value": value, "threshold": None,
            "message": message or f"{name} is {status}"}


def container(name, service, state="running", exit_code=0, oom=False, stats=None, health="healthy"):
    return {"name": name, "service": service, "state": state, "health": health, "exit_code": exit_code,
            "oom_killed": oom, "restart_count": 0, "started_at": "t0", "finished_at": None, "error": "",
            "image": f"{service}:1", "stats": stats}


def compose(containers, services=None, checks=None, available=True, reason=None):
    out = {"available": available, "containers": containers, "checks": checks or [], "services": services or {}}
    if reason is not None:
        out["reason"] = reason
    return out


def record(topic, **gathered):
    return tf.troubleshoot_record(gathered, {**SETTINGS, "topic": topic, **gathered.pop("_settings", {})})


# --- helpers that must behave like the Jinja they replace ----------------------------------------------------
def test_truncate_is_jinjas():
    assert tf._truncate("short", 10) == "short"
    assert tf._truncate("a" * 14, 10) == "a" * 14  # within the leeway of 5
    assert tf._truncate("word " * 10, 20) == "word word word..."
    assert tf._truncate(None, 10) == "None"


def test_failed_services_and_busiest():
    c = compose([container("b1", "backend", stats={"cpu_percent": 3.0}),
                 container("n1", "nginx", stats={"cpu_percent": 9.5}),
                 container("p1", "postgres", state="exited", stats={"cpu_percent": 50.0})],
                services={"backend": {"expected": True, "replicas": 1, "healthy": 1},
                          "nginx": {"expected": True, "replicas": 1, "healthy": 0},
                          "redis": {"expected": True, "replicas": 0, "healthy": 0},
                          "extra": {"expected": False, "replicas": 0, "healthy": 0}})
    assert tf.troubleshoot_failed_services(c) == ["nginx", "redis"]
    assert tf.troubleshoot_busiest(c) == "n1"  # the exited one is not running
    assert tf.troubleshoot_busiest(None) is None and tf.troubleshoot_failed_services(None) == []


# --- startup -------------------------------------------------------------------------------------------------
def startup_gathered(**over):
    g = {
        "compose": compose([container("b1", "backend", state="restarting", exit_code=78, health=None)],
                           services={"backend": {"expected": True, "replicas": 1, "healthy": 0}},
                           checks=[check("service:backend", "critical")]),
        "logs": {"logs": {"backend": {"match_count": 2, "lines_scanned": 40,
                                      "matches": ["boot", "FATAL missing required environment variable JWT_SECRET"]}}},
        "env": {"available": True, "checks": [check("env:backend:JWT_SECRET", "critical")], "required": ["JWT_SECRET"],
                "missing": ["JWT_SECRET"], "empty": [],
                "services": {"backend": {"missing": ["JWT_SECRET"], "empty": []}}, "containers": ["b1"]},
        "pg": {"available": True, "checks": {"liveness": {"message": "PostgreSQL answered"}}, "liveness": {}},
        "redis": {"available": True, "ping_ms": 0.1},
        "disk": {"checks": [check("disk:/", "ok")], "disks": [{"path": "/"}]},
    }
    g.update(over)
    return g


def test_startup_names_the_missing_variable_first():
    r = record("startup", **startup_gathered())
    names = [c["name"] for c in r["checks"]]
    assert names == ["service:backend", "startup_log:backend", "env:backend:JWT_SECRET", "postgres_connectivity",
                     "redis_connectivity", "disk:/", "diagnosis"]
    assert r["summary"].startswith("most likely cause: backend cannot start: required environment variable(s)"
                                   " JWT_SECRET unset in its container")
    assert r["severity"] == "P0"  # backend is an application service
    diag = r["extra"]["diagnosis"]
    assert diag["kind"] == "environment" and diag["failed_services"] == ["backend"]
    # the log and the exit code are further findings, in order
    assert diag["other_findings"][0].startswith("backend: a required environment variable is missing")
    assert "backend is restarting with exit code 78 (78 = EX_CONFIG: configuration error); last error line: FATAL" \
        in diag["other_findings"][1]
    assert r["checks"][-1]["status"] == "critical" and r["checks"][-1]["value"] == "environment"
    log = next(c for c in r["checks"] if c["name"] == "startup_log:backend")
    assert log["status"] == "warning"
    assert log["message"].startswith("2 error line(s) in the last 40 lines of backend, last:")
    assert list(r["extra"]) == ["containers", "startup_logs", "environment", "connectivity", "disks", "diagnosis"]
    assert r["extra"]["connectivity"]["postgres"]["endpoint"] == "127.0.0.1:5432"
    assert r["actions"] == [] and r["failure"] is None


def test_startup_without_docker_is_p0_and_says_so():
    g = startup_gathered(compose=compose([], available=False, reason="connection refused"))
    r = record("startup", **g)
    assert r["checks"][0] == {"name": "docker", "component": "docker", "status": "critical", "value": None,
                              "threshold": None, "message": "connection refused"}
    assert r["summary"] == ("most likely cause: the Docker daemon is not reachable (connection refused): nothing can"
                            " start; run emergency-recover.yml")
    assert r["severity"] == "P0"


def test_startup_database_down_and_healthy_stack():
    healthy = compose([container("b1", "backend")], services={"backend": {"expected": True, "replicas": 1,
                                                                           "healthy": 1}})
    g = startup_gathered(compose=healthy, env={"available": True, "checks": [], "services": {}},
                         pg={"available": False, "reason": "timeout"})
    r = record("startup", **g)
    assert r["summary"] == ("most likely cause: PostgreSQL at 127.0.0.1:5432 is unreachable (timeout): the backend"
                            " cannot start without it")
    assert r["severity"] == "P0"
    pg = next(c for c in r["checks"] if c["name"] == "postgres_connectivity")
    assert pg["status"] == "critical" and pg["message"] == "PostgreSQL at 127.0.0.1:5432 unavailable: timeout"
    ok = record("startup", **startup_gathered(compose=healthy, env={"available": True, "checks": [], "services": {}},
                                              logs={"logs": {}}))
    assert ok["summary"] == "no startup problem found: every expected service runs and is healthy"
    assert ok["severity"] is None and ok["checks"][-1]["status"] == "ok"


def test_startup_warnings_are_notes():
    healthy = compose([container("b1", "backend")], services={"backend": {"expected": True, "replicas": 1,
                                                                           "healthy": 1}})
    env = {"available": True, "checks": [], "services": {"backend": {"missing": [], "empty": ["REDIS_URL"]}}}
    r = record("startup", **startup_gathered(compose=healthy, env=env, logs={"logs": {}},
                                             disk={"checks": [check("disk:/", "warning", "disk 85%")], "disks": []}))
    assert r["summary"] == ("no startup problem found: every expected service runs and is healthy (note: backend runs,"
                            " but would not start again: required variable(s) missing or empty; disk 85%)")
    assert r["severity"] == "P2" and r["checks"][-1]["status"] == "warning"


# --- memory and cpu ------------------------------------------------------------------------------------------
def test_memory_no_pressure_names_the_largest():
    stats = {"memory_usage": 100 * MIB, "memory_limit": 200 * MIB, "memory_percent": 50.0, "memory_limited": True}
    host = {"checks": [check("host_memory")], "processes": {"top_memory": [
        {"name": "node", "pid": 7, "container_id": "abc", "rss_bytes": 50 * MIB}]}, "changed": False}
    heap_out = {"exec_process": {"heapUsed": 4 * MIB, "rss": 48 * MIB}, "heap_size_limit": 4096 * MIB,
                "server": {"heap_used_bytes": 16 * MIB, "heap_total_bytes": 20 * MIB, "rss_bytes": 70 * MIB,
                           "port": 53001}}
    heap_exec = {"results": [{"item": "b1", "rc": 0, "stdout": json.dumps(heap_out)},
                             {"item": "b2", "rc": 1, "stdout": "", "stderr": "node: not found"}]}
    r = record("memory", compose=compose([container("b1", "backend", stats=stats)]), host=host, heap_exec=heap_exec)
    assert r["summary"] == ("no memory pressure: largest container b1 uses 100.0 MiB (50.0% of its limit); largest"
                            " process node (pid 7, container abc) 50.0 MiB")
    assert r["severity"] is None
    heap = {c["name"]: c for c in r["checks"] if c["name"].startswith("node_heap:")}
    assert heap["node_heap:b1"]["status"] == "ok" and heap["node_heap:b1"]["value"] == 0.39
    assert heap["node_heap:b1"]["message"].startswith("server heap 16.0 MiB used of 20.0 MiB allocated, 0.39% of the"
                                                      " 4096 MiB V8 limit; RSS 70.0 MiB; node -e")
    assert heap["node_heap:b2"] == {"name": "node_heap:b2", "component": "backend", "status": "unknown", "value": None,
                                    "threshold": None, "message": "cannot run node in b2: node: not found"}
    assert "changed" not in r["extra"]["host"] and r["extra"]["node_heap"][0]["ok"] is True


def test_memory_pressure_findings_in_order():
    checks_host = {"checks": [check("host_memory", "warning", "92% used")], "processes": {}}
    c = compose([container("b1", "backend", oom=True)], checks=[check("memory:b1", "critical", "b1 at 99%")])
    r = record("memory", compose=c, host=checks_host)
    assert r["extra"]["diagnosis"]["findings"] == [
        "b1 was OOM-killed: raise its memory limit or find what grows", "container near its limit: b1 at 99%",
        "host memory: 92% used"]
    assert r["summary"].startswith("memory pressure: b1 was OOM-killed") and r["severity"] == "P2"


def test_cpu_names_the_busiest_container_and_process():
    c = compose([container("b1", "backend", stats={"cpu_percent": 97.5, "online_cpus": 2}),
                 container("n1", "nginx", stats={"cpu_percent": 1.0})],
                checks=[check("cpu:b1", "warning", "b1 CPU 97.5%")])
    host = {"checks": [check("host_load", "ok"), check("host_cpu", "ok")],
            "processes": {"top_cpu": [{"name": "node", "pid": 9, "container_id": "", "cpu_pct": 96.0}]}}
    top = {"containers": [{"processes": [{"pid": 9, "cpu_pct": 95.0, "command": "node -e burn"}],
                           "cpu_method": "proc"}], "summary": "1 container"}
    r = record("cpu", compose=c, host=host, top=top, _settings={"busiest": "b1"})
    assert r["summary"] == ("CPU pressure: b1 CPU 97.5%; busiest container b1 at 97.5% (100 = one core); its busiest"
                            " process: pid 9 at 95.0% CPU: node -e burn; busiest host process node (pid 9) 96.0%")
    assert r["extra"]["busiest_container"] == {"name": "b1", "processes": top["containers"][0]["processes"],
                                               "cpu_method": "proc", "summary": "1 container"}
    assert r["severity"] == "P2" and r["checks"][-1]["value"] == 1
    idle = record("cpu", compose=compose([]), host={"checks": []}, top=SKIPPED)
    assert idle["summary"] == "no CPU pressure" and idle["severity"] is None
    assert idle["extra"]["busiest_container"]["summary"] == "no running container with a CPU sample"


# --- db_connections ------------------------------------------------------------------------------------------
def pair(blocking, blocked, wait, **kw):
    return {"blocking_pid": blocking, "blocked_pid": blocked, "blocked_wait_seconds": wait, "blocking_user": "app",
            "blocking_state": "idle in transaction", "blocking_xact_seconds": 12.5, "blocking_query": "UPDATE t", **kw}


DB = {"available": True, "blockers": [100], "blocking": [pair(100, 201, 3.5), pair(201, 202, 2)],
      "connections": {"client_backends": 5, "usable": 97},
      "checks": {"liveness": check("liveness"), "connections": check("connections"),
                 "blocking": check("blocking", "warning", "2 blocked"),
                 "long_queries": check("long_queries", "warning", "1 long query")},
      "long_queries": [{"pid": 300}], "idle_in_transaction": [{"pid": 100}]}
READY = {"rc": 0, "stdout": "127.0.0.1:5432 - accepting connections\n"}
PG = {"available": True, "checks": {"liveness": {"message": "PostgreSQL answered"}}, "liveness": {"category": None}}


def test_db_connections_names_the_blocker_its_queue_and_p1():
    r = record("db_connections", isready_host=READY, isready_container=SKIPPED, pg=PG, db=DB)
    line = ("pid 100 (app, idle in transaction, transaction open 12.5 s) blocks pid(s) 201, 202 (directly 201, queued"
            " behind them 202), longest wait 3.5 s; its last query: UPDATE t")
    assert r["extra"]["diagnosis"]["blockers"] == [line]
    assert r["summary"] == "blocking: " + line + "; also: 1 long query"
    assert r["severity"] == "P1" and r["checks"][-1]["status"] == "critical"
    assert [c["name"] for c in r["checks"]] == ["pg_isready", "query", "connections", "blocking", "long_queries",
                                                "diagnosis"]
    assert r["checks"][0]["message"] == "pg_isready (host): accepting connections (exit 0)"
    assert r["extra"]["readiness"]["pg_isready"]["output"] == "127.0.0.1:5432 - accepting connections"
    assert r["extra"]["database"]["waiters"] == [201, 202]
    assert "terminate" not in r["extra"] and r["actions"] == []


def test_db_connections_down_is_p0_and_pg_isready_alone_is_not_trusted():
    r = record("db_connections", isready_host=READY, pg={"available": False, "reason": "password authentication"},
               db={"available": False, "reason": "password authentication"})
    assert r["summary"] == "database unavailable: password authentication" and r["severity"] == "P0"
    query = next(c for c in r["checks"] if c["name"] == "query")
    assert query["message"] == ("no real query possible: password authentication (pg_isready says accepting: it does"
                                " not log in)")
    quiet = record("db_connections", db={"available": True, "checks": {}, "connections": {"client_backends": 2,
                                                                                          "usable": 97}})
    assert quiet["summary"] == ("no connection problem found: 2 client backends of 97 usable, no blocking, no"
                                " long-running or idle-in-transaction session") and quiet["severity"] is None


def test_terminate_targets_and_filters():
    assert tf.troubleshoot_targets("blockers", DB, []) == [100]
    assert tf.troubleshoot_targets("long_running", DB, []) == [100, 300]
    assert tf.troubleshoot_targets("pids", DB, ["12", "7", "12"]) == [7, 12]
    assert tf.troubleshoot_terminate_filters("blockers") == {"blockers_only": True, "states": []}
    assert tf.troubleshoot_terminate_filters("long_running")["states"] == ["active", "idle in transaction",
                                                                          "idle in transaction (aborted)"]
    assert tf.troubleshoot_waiters(DB) == [201, 202]


@pytest.mark.parametrize(("check_mode", "start", "tail"), [(False, "not confirmed", "; rerun with -e confirm=true"),
                                                           (True, "check mode", "")])
def test_terminate_unconfirmed_describes_the_plan(check_mode, start, tail):
    plan = {"targets": [{"pid": 100, "state": "idle in transaction"}]}
    r = record("db_connections", db=DB, terminate_check={"changed": False}, terminate_plan=plan,
               _settings={"terminate": "blockers", "targets": [100], "waiters": [201, 202], "check_mode": check_mode})
    assert r["actions"] == [{"name": "terminate", "changed": False,
                             "detail": f"{start}: would terminate 1 backend(s) (blockers): 100 - waiting on them:"
                                       f" 201, 202{tail}"}]
    assert "terminate" not in r["extra"] and r["failure"] is None


def test_terminate_nothing_to_do_and_not_requested():
    r = record("db_connections", db=DB, terminate_check={"changed": False}, _settings={"terminate": "long_running"})
    assert r["actions"][0]["detail"] == ("terminate=long_running: nothing to terminate (no long-running or"
                                         " idle-in-transaction session past the thresholds)")
    assert record("db_connections", db=DB, terminate_check=None)["actions"] == []


def test_terminate_confirmed_frees_the_waiters_or_fails():
    settings = {"terminate": "blockers", "targets": [100], "waiters": [201, 202], "confirmed": True}
    terminated = {"done": [100], "failed": [], "no_effect": [], "skipped": [], "results": [],
                  "msg": "terminate: 1 backend(s) terminated"}
    waiters_after = {"targets": [{"pid": 201, "state": "idle"}, {"pid": 202, "state": "active"}], "skipped": []}
    r = record("db_connections", db=DB, terminate_check={}, terminated=terminated, after={"blocking": []},
               waiters_after=waiters_after, _settings=settings)
    assert r["actions"] == [{"name": "terminate", "changed": True, "detail": "terminate: 1 backend(s) terminated;"
                             " waiters freed: 201, 202; still waiting: none"}]
    freed = r["checks"][-1]
    assert freed["name"] == "waiters_freed" and freed["status"] == "ok"
    assert freed["message"] == "waiters freed: 201, 202; still waiting: none (now 201: idle, 202: active)"
    assert r["extra"]["terminate"]["terminated"] == [100] and r["extra"]["terminate"]["waiters_now"] == \
        waiters_after["targets"]
    assert r["failure"] is None
    stuck = record("db_connections", db=DB, terminate_check={}, terminated=terminated,
                   after={"blocking": [pair(555, 202, 9)]}, waiters_after=waiters_after, _settings=settings)
    assert stuck["extra"]["terminate"]["still_waiting"] == [202] and stuck["checks"][-1]["status"] == "critical"
    assert stuck["failure"] == "terminate: 1 backend(s) terminated; waiters freed: 201; still waiting: 202"
