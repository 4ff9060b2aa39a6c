"""The health modules' report_checks against the real stack, through health_gather as the health role runs them:
judged with component and severity, the unmeasured Key Metrics listed when a server or the daemon is away, and
the checks of a part that failed."""
from __future__ import annotations

from tests.helpers.modules import assert_return_documented, run_module
from tests.helpers.stackenv import read_env

PROJECT = read_env().get("COMPOSE_PROJECT_NAME", "equipment-marketplace")
NO_DAEMON = "unix:///nonexistent/docker.sock"


def test_a_healthy_stack_reports_judged_checks(pg_params, redis_params):
    result = run_module("health_gather", {
        "postgres": {**pg_params, "sections": ["connections"]},
        "redis": {**redis_params, "sections": ["memory"], "sample_seconds": 0},
        "logs": {"project": PROJECT, "tail": 50, "since": "15m", "errors_warning": 100000},
        "compose": {"project": PROJECT, "stats": False, "critical_services": ["backend", "nginx"]},
        "host": {"sections": ["memory", "load", "cpu", "disk"], "paths": ["/", "/var/lib/docker"],
                 "sample_seconds": 0.2},
    })
    assert result["failed_parts"] == [], result
    pg = result["postgres"]["report_checks"]
    assert [c["name"] for c in pg] == ["postgres_liveness", "postgres_connections"]
    assert all(c["component"] == "postgres" for c in pg) and pg[1]["unit"] == "%"
    assert [c["name"] for c in result["redis"]["report_checks"]][:2] == ["redis_available", "redis_memory"]
    logs = result["logs"]["report_checks"]
    assert [c["name"] for c in logs] == ["log_errors:%s" % s for s in sorted(result["logs"]["logs"])]
    assert all(c["threshold"]["warning"] == 100000 and " in the last " in c["message"] for c in logs)
    compose = result["compose"]["report_checks"]
    assert {c["name"] for c in compose} >= {"service:backend", "service:postgres"}
    assert all(c["component"] for c in compose)
    host = [c["name"] for c in result["host"]["report_checks"]]
    assert host[:4] == ["host_memory", "host_load", "host_cpu", "host_disk"] and "disk:/" in host
    for module, part in (("postgres_health", "postgres"), ("redis_health", "redis"), ("compose_logs", "logs"),
                         ("compose_status", "compose"), ("host_resources", "host")):
        assert_return_documented(module, result[part])


def test_servers_and_daemon_away_are_judged(pg_params, redis_params):
    result = run_module("health_gather", {
        "postgres": {**pg_params, "login_port": 1, "sections": ["connections"], "connect_timeout": 2},
        "redis": {**redis_params, "login_password": "wrong-password-for-the-test", "sections": ["memory"]},
        "logs": {"project": PROJECT, "docker_host": NO_DAEMON, "errors_warning": 5},
        "compose": {"project": PROJECT, "docker_host": NO_DAEMON},
    })
    assert result["failed_parts"] == [], result
    live, conns = result["postgres"]["report_checks"]
    assert live["name"] == "postgres_liveness" and live["status"] == "critical" and live["severity"] == "P0"
    assert conns["status"] == "unknown" and conns["message"].startswith("connections not measured: ")
    available, memory = result["redis"]["report_checks"]
    assert available["severity"] == "P1" and available["component"] == "redis"
    assert memory["name"] == "redis_memory" and memory["status"] == "unknown"
    [logs] = result["logs"]["report_checks"]
    assert logs["name"] == "log_errors" and logs["component"] == "docker"
    assert logs["message"].startswith("logs not read")
    [compose] = result["compose"]["report_checks"]
    assert compose["name"] == "compose" and compose["severity"] == "P1"
    assert compose["message"].startswith("compose state unknown: ")
    assert "wrong-password-for-the-test" not in result["_raw"]


def test_a_failed_part_brings_the_checks_of_what_it_could_not_measure(redis_params):
    result = run_module("health_gather", {
        "logs": {"project": PROJECT, "patterns": ["(unclosed"]},
        "host": {"sections": ["cpu"], "sample_seconds": 3},
        "redis": {**redis_params, "sections": ["memory"], "sample_seconds": 0},
        "timeout": 1,
    })
    assert sorted(result["failed_parts"]) == ["host", "logs"]
    [logs] = result["logs"]["report_checks"]
    assert logs["status"] == "unknown" and "invalid regular expression" in logs["message"]
    host = result["host"]["report_checks"]
    assert [c["name"] for c in host] == ["host_cpu", "host_memory", "host_disk", "host_load"]
    assert all("did not finish within 1 s" in c["message"] for c in host)
    assert "report_checks" in result["redis"] and result["redis"]["available"] is True
