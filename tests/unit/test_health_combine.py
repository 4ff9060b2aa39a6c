"""The health check's combine step (roles/checks/filter_plugins: health_combine, health_results, health_summary,
health_metrics_probes): the modules' judged checks put together in report order, the report's results, and the
summary line. No Docker, no server."""
from __future__ import annotations

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location(
    "marketplace_checks", ROOT / "roles" / "checks" / "filter_plugins" / "marketplace_checks.py")
mc = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(mc)

ALL = ["http", "services", "containers", "host", "logs", "postgres", "redis", "traffic"]


def _c(name, status="ok", value=1, message=None, **extra):
    return dict({"name": name, "status": status, "value": value, "threshold": None,
                 "message": message or "%s is within the threshold 2" % name}, **extra)


GATHERED = {
    "http": {"probes": {"nginx_health": {"ok": True}, "api_health": {"ok": True}, "metrics_first": {"ok": True},
                        "prometheus_requests": {"ok": True}}},
    "postgres": {"available": True, "reason": None, "server": {}, "connections": {"pct": 2}, "liveness": {},
                 "checks": {}, "report_checks": [_c("postgres_liveness"), _c("postgres_connections")]},
    "redis": {"available": True, "server": {}, "memory": {}, "ping_ms": 1.0, "checks": [],
              "report_checks": [_c("redis_available"), _c("redis_memory")]},
    "logs": {"available": True, "logs": {"backend": {"match_count": 0}}, "report_checks": [_c("log_errors:backend")]},
    "host": {"cpu": {}, "memory": {}, "load": {}, "disks": [], "summary": "s", "processes": {},
             "report_checks": [_c("host_memory"), _c("host_disk")]},
    "compose": {"available": True, "summary": "5/5", "services": {}, "containers": [], "missing": [], "exited": [],
                "restarting": [], "unhealthy": [], "checks": [],
                "report_checks": [_c("service:backend"), _c("restarts:b-1"), _c("memory:b-1"), _c("cpu:b-1"),
                                  _c("stats:b-2", "unknown"), _c("project:x", "critical")]},
    "timings": {}, "failed_parts": [],
}
HTTP = [_c("nginx_health")]
TRAFFIC = [_c("error_rate_5xx"), _c("p95_latency")]


def test_every_section_in_report_order():
    names = [c["name"] for c in mc.health_combine(GATHERED, ALL, HTTP, TRAFFIC)]
    assert names == ["nginx_health", "postgres_liveness", "postgres_connections", "redis_available", "redis_memory",
                     "log_errors:backend", "error_rate_5xx", "p95_latency", "host_memory", "host_disk",
                     "service:backend", "restarts:b-1", "memory:b-1", "cpu:b-1"]


def test_sections_select_their_checks():
    names = [c["name"] for c in mc.health_combine(GATHERED, ["postgres", "services"], HTTP, TRAFFIC)]
    assert names == ["postgres_liveness", "postgres_connections", "service:backend", "restarts:b-1"]
    names = [c["name"] for c in mc.health_combine(GATHERED, ["containers"], HTTP, TRAFFIC)]
    assert names == ["memory:b-1", "cpu:b-1"]
    assert mc.health_combine(GATHERED, ["http"], HTTP, TRAFFIC) == HTTP
    assert mc.health_combine(GATHERED, [], HTTP, TRAFFIC) == []


def test_compose_unknown_and_failed_parts_keep_their_checks():
    down = {"compose": {"available": False, "reason": "no daemon",
                        "report_checks": [_c("compose", "critical", False, severity="P1", component="docker")]},
            "postgres": {"failed": True, "msg": "timed out",
                         "report_checks": [_c("postgres_liveness", "critical", False, severity="P0")]},
            "redis": {"failed": True, "msg": "x"}}
    out = mc.health_combine(down, ["services", "postgres", "redis"], [], [])
    assert [(c["name"], c.get("severity")) for c in out] == [("postgres_liveness", "P0"), ("compose", "P1")]


def test_results_keep_the_report_fields_of_each_section():
    results = mc.health_results(GATHERED, ALL, {"source": "prometheus"})
    assert list(results) == ["http", "postgres", "redis", "logs", "traffic", "host", "compose"]
    assert set(results["http"]) == {"nginx_health", "api_health"}
    assert set(results["postgres"]) == {"available", "reason", "server", "connections", "liveness"}
    assert set(results["redis"]) == {"available", "server", "memory", "ping_ms"}
    assert results["logs"] == {"backend": {"match_count": 0}}
    assert results["traffic"] == {"source": "prometheus"}
    assert set(results["host"]) == {"cpu", "memory", "load", "disks", "summary"}
    assert "checks" not in results["compose"] and "summary" in results["compose"]
    assert list(mc.health_results(GATHERED, ["redis", "containers"])) == ["redis", "compose"]
    assert mc.health_results({"logs": {"failed": True, "msg": "x"}}, ["logs"]) == {"logs": {}}


def test_summary_all_ok_names_the_key_metrics():
    checks = [_c("nginx_health"), _c("p95_latency", message="p95 latency 0.02 s is within the threshold 2 s (x)"),
              _c("host_cpu", message="host CPU busy 3% is within thresholds (iowait 0%)"),
              _c("host_disk", value=None, message="host_disk not measured")]
    assert mc.health_summary(checks) == ("all 4 checks ok (p95 latency 0.02 s, "
                                         "host CPU busy 3% is within thresholds (iowait 0%))")
    assert mc.health_summary([_c("nginx_health")]) == "all 1 checks ok"


def test_summary_lists_problems_worst_first():
    checks = [_c("a", "unknown", message="a unknown"), _c("b", "warning", message="b warns"),
              _c("c", "critical", message="c down", severity="P1"), _c("d")]
    assert mc.health_summary(checks) == "P1: c down; b warns; a unknown"
    assert mc.health_summary([_c("a", "unknown", message="u")]) == "P3: u"


def test_metrics_probes():
    assert mc.health_metrics_probes("http://x/metrics", 2, "m_") == [
        {"name": "m_0", "return_content": True, "url": "http://x/metrics"},
        {"name": "m_1", "return_content": True, "url": "http://x/metrics"}]
    assert mc.health_metrics_probes("u", "0") == []
