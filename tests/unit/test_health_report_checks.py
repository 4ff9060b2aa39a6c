"""The health modules' report checks (report_checks): judged in the modules, with component and runbook severity,
exactly as the health report lists them. Pure functions of the modules, no Docker and no server."""
from __future__ import annotations

import random

import pytest
from jinja2 import Environment

from tests.helpers.modules import load_utils

compose_status = load_utils("marketplace_compose_status")
compose_logs = load_utils("marketplace_compose_logs")
host_resources = load_utils("marketplace_host_resources")
postgres_health = load_utils("marketplace_postgres_health")
redis_health = load_utils("marketplace_redis_health")


def _svc(name, status):
    return {"name": "service:" + name, "component": name, "status": status, "value": {}, "threshold": {},
            "message": "service %s" % name}


def test_compose_critical_service_is_p1_others_p2():
    checks = [_svc("backend", "critical"), _svc("prometheus", "critical"), _svc("redis", "warning"),
              {"name": "cpu:stack-backend-1", "component": "backend", "status": "critical", "value": 200,
               "threshold": {}, "message": "cpu"}]
    out = compose_status.report_checks(checks, ["backend", "nginx", "postgres", "redis"])
    assert [c.get("severity") for c in out] == ["P1", "P2", None, None]
    assert [c["component"] for c in out] == ["backend", "prometheus", "redis", "backend"]
    assert "severity" not in checks[0]  # the module's own checks stay as they were


def test_compose_unknown_state_is_one_p1_check():
    [chk] = compose_status.unavailable_checks("socket not found")
    assert chk == {"name": "compose", "status": "critical", "value": False, "threshold": True, "component": "docker",
                   "severity": "P1", "message": "compose state unknown: socket not found"}
    assert compose_status.failed_report_checks({}, "boom")[0]["message"] == "compose state unknown: boom"


def _entry(path, total, used, free, inodes=1000):
    return {"path": path, "measured_path": path, "total_bytes": total, "used_bytes": used, "free_bytes": free,
            "used_pct": round(100.0 * used / (used + free), 2), "inodes_total": inodes, "inodes_used_pct": 5.0}


def _host_checks(disks):
    checks = [{"name": n, "component": "host", "status": "ok", "value": 1.0, "threshold": {}, "message": n}
              for n in ("host_memory", "host_load", "host_cpu")]
    for d in disks:
        checks.append({"name": "disk:" + d["path"], "component": "host", "status": "ok", "value": d["used_pct"],
                       "threshold": {}, "message": "disk " + d["path"]})
        checks.append({"name": "inodes:" + d["path"], "component": "host", "status": "ok", "value": 5.0,
                       "threshold": {}, "message": "inodes " + d["path"]})
    return checks


def test_host_disk_is_the_fullest_and_each_file_system_once():
    root = _entry("/", 100, 30, 70)
    docker = _entry("/var/lib/docker", 100, 30, 70)  # the same file system as /
    backups = _entry("/backups", 100, 60, 40)
    out = host_resources.report_checks(_host_checks([root, docker, backups]), [root, docker, backups])
    assert [c["name"] for c in out] == ["host_memory", "host_load", "host_cpu", "host_disk", "disk:/", "inodes:/",
                                        "disk:/backups", "inodes:/backups"]
    disk = out[3]
    assert disk["path"] == "/backups" and disk["value"] == 60.0 and disk["message"] == "disk /backups"
    assert [m["path"] for m in disk["mounts"]] == ["/", "/backups"]
    assert all(c["component"] == "host" for c in out)


def test_host_disk_of_equal_file_systems_is_the_first():
    a, b = _entry("/", 100, 30, 70, inodes=1), _entry("/data", 100, 30, 70, inodes=2)
    out = host_resources.report_checks(_host_checks([a, b]), [a, b])
    assert out[3]["path"] == "/" and [m["path"] for m in out[3]["mounts"]] == ["/", "/data"]


def test_host_failed_part_lists_the_key_metrics_unmeasured():
    out = host_resources.failed_report_checks({}, "no /proc")
    assert [c["name"] for c in out] == ["host_cpu", "host_memory", "host_disk", "host_load"]
    assert all(c["status"] == "unknown" and c["message"].endswith("not measured: no /proc") for c in out)


def _log(count, matches, scanned=10):
    return {"match_count": count, "matches": matches, "lines_scanned": scanned}


def test_log_errors_counted_and_judged():
    chk = compose_logs.log_errors_check("nginx", _log(3, ["a", "b [error] x"], 11), None, "15m")
    assert chk["status"] == "ok" and chk["value"] == 3 and chk["component"] == "nginx"
    assert chk["threshold"] == {"warning": None, "critical": None}
    assert chk["message"] == "nginx: 3 error lines in the last 11 lines of 15m; last: b [error] x"
    chk = compose_logs.log_errors_check("backend", _log(1, ["one"]), 1, "")
    assert chk["status"] == "warning" and chk["threshold"] == {"warning": 1.0, "critical": None}
    assert chk["message"] == "backend: 1 error line in the last 10 lines (warning at 1); last: one"
    chk = compose_logs.log_errors_check("redis", _log(0, []), 5, None)
    assert chk["message"] == "redis: 0 error lines in the last 10 lines" and chk["last_matches"] == []


def test_log_lines_cut_as_jinja_truncate_cuts_them():
    env = Environment(autoescape=True)  # the filter does not escape; the policy (leeway 5) is Jinja's default
    do_truncate = env.filters["truncate"]
    rng = random.Random(7)
    for _ in range(500):
        words = [("x" * rng.randint(1, 30)) for _ in range(rng.randint(1, 40))]
        text = " ".join(words)
        for length in (200, 300):
            assert compose_logs.truncate(text, length) == do_truncate(env, text, length), (text, length)


def test_logs_not_read_is_one_unknown_check():
    [chk] = compose_logs.unavailable_checks("daemon down", 10)
    assert chk["name"] == "log_errors" and chk["status"] == "unknown" and chk["component"] == "docker"
    assert chk["message"] == "logs not read: daemon down" and chk["threshold"] == {"warning": 10, "critical": None}


PG_PARAMS = {"sections": ["connections"], "connections_warning_pct": 80.0, "connections_critical_pct": 95.0}


def test_postgres_checks_are_prefixed_with_severity():
    checks = {"liveness": {"name": "liveness", "status": "ok", "value": 3.1, "threshold": None, "message": "up"},
              "connections": {"name": "connections", "status": "critical", "value": 97.0,
                              "threshold": {"warning": 80.0, "critical": 95.0}, "message": "many"}}
    out = postgres_health.report_checks(checks, ["liveness", "connections"], PG_PARAMS, None)
    assert [c["name"] for c in out] == ["postgres_liveness", "postgres_connections"]
    assert out[0].get("severity") is None and out[1]["severity"] == "P1" and out[1]["unit"] == "%"
    assert all(c["component"] == "postgres" for c in out)


def test_postgres_unavailable_is_p0_and_connections_unmeasured():
    checks = {"liveness": {"name": "liveness", "status": "critical", "value": False, "threshold": None,
                           "message": "PostgreSQL unavailable (unreachable): refused"}}
    out = postgres_health.report_checks(checks, ["liveness", "connections"], PG_PARAMS, "refused")
    assert out[0]["severity"] == "P0" and out[0]["name"] == "postgres_liveness"
    assert out[1] == {"name": "postgres_connections", "status": "unknown", "value": None, "component": "postgres",
                      "unit": "%", "threshold": {"warning": 80.0, "critical": 95.0},
                      "message": "connections not measured: refused"}
    failed = postgres_health.failed_report_checks(PG_PARAMS, "timed out")
    assert failed[0]["message"] == "PostgreSQL unavailable: timed out" and failed[0]["severity"] == "P0"
    assert failed[1]["message"] == "connections not measured: PostgreSQL unavailable"


def test_redis_unavailable_is_p1_and_memory_unmeasured():
    checks = [{"name": "redis_available", "status": "critical", "value": False, "threshold": True, "message": "no"}]
    out = redis_health.report_checks(checks, ["memory"], "refused")
    assert out[0]["severity"] == "P1" and out[0]["component"] == "redis"
    assert out[1] == {"name": "redis_memory", "status": "unknown", "value": None, "threshold": None,
                      "message": "redis_memory not measured: refused", "component": "redis"}
    failed = redis_health.failed_report_checks({"sections": ["memory"]}, "boom")
    assert failed[0]["message"] == "Redis check failed: boom" and failed[0]["severity"] == "P1"
    assert failed[1]["message"] == "redis_memory not measured: boom"


@pytest.mark.parametrize("status", ["ok", "warning"])
def test_redis_available_has_no_severity(status):
    checks = [{"name": "redis_available", "status": "ok", "value": True, "threshold": True, "message": "PONG"},
              {"name": "redis_memory", "status": status, "value": 50, "threshold": {}, "message": "mem"}]
    out = redis_health.report_checks(checks, ["memory"])
    assert [c.get("severity") for c in out] == [None, None] and len(out) == 2
