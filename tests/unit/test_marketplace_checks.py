"""The shared check filters (roles/checks/filter_plugins): thresholds, severity, metrics arithmetic."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location(
    "marketplace_checks", ROOT / "roles" / "checks" / "filter_plugins" / "marketplace_checks.py")
mc = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(mc)

METRICS_1 = """\
# HELP http_requests_total HTTP requests by method, route and status code.
# TYPE http_requests_total counter
http_requests_total{method="GET",route="/api/health",status="200"} 100
http_requests_total{method="GET",route="/metrics",status="200"} 50
http_requests_total{method="GET",route="/api/fault/:status",status="500"} 1
# TYPE http_request_duration_seconds histogram
http_request_duration_seconds_bucket{method="GET",route="/api/health",le="0.1"} 100
http_request_duration_seconds_bucket{method="GET",route="/api/health",le="1"} 100
http_request_duration_seconds_bucket{method="GET",route="/api/health",le="+Inf"} 100
http_request_duration_seconds_bucket{method="GET",route="/metrics",le="0.1"} 50
http_request_duration_seconds_bucket{method="GET",route="/metrics",le="1"} 50
http_request_duration_seconds_bucket{method="GET",route="/metrics",le="+Inf"} 50
process_start_time_seconds 1000
"""

METRICS_2 = """\
http_requests_total{method="GET",route="/api/health",status="200"} 190
http_requests_total{method="GET",route="/metrics",status="200"} 900
http_requests_total{method="GET",route="/api/fault/:status",status="500"} 11
http_request_duration_seconds_bucket{method="GET",route="/api/health",le="0.1"} 110
http_request_duration_seconds_bucket{method="GET",route="/api/health",le="1"} 190
http_request_duration_seconds_bucket{method="GET",route="/api/health",le="+Inf"} 190
http_request_duration_seconds_bucket{method="GET",route="/api/fault/:status",le="0.1"} 10
http_request_duration_seconds_bucket{method="GET",route="/api/fault/:status",le="1"} 10
http_request_duration_seconds_bucket{method="GET",route="/api/fault/:status",le="+Inf"} 10
http_request_duration_seconds_bucket{method="GET",route="/metrics",le="0.1"} 900
http_request_duration_seconds_bucket{method="GET",route="/metrics",le="1"} 900
http_request_duration_seconds_bucket{method="GET",route="/metrics",le="+Inf"} 900
process_start_time_seconds 1000
"""


def test_threshold_check_statuses_and_shape():
    ok = mc.health_check(1.5, "p95_latency", 2.0, 5.0, unit=" s")
    assert ok["status"] == "ok" and ok["value"] == 1.5 and ok["threshold"] == {"warning": 2.0, "critical": 5.0}
    assert {"name", "status", "value", "threshold", "message"} <= set(ok)
    assert mc.health_check(2.0, "x", 2.0, 5.0)["status"] == "warning"  # at the threshold is a breach
    crit = mc.health_check(7, "x", 2, 5, severity={"critical": "P1"})
    assert crit["status"] == "critical" and crit["severity"] == "P1" and crit["value"] == 7
    assert mc.health_check(None, "x", 1, 2)["status"] == "unknown"
    assert mc.health_check("nan", "x", 1, 2)["status"] == "unknown"
    low = mc.health_check(40, "hit", 80, 50, higher_is_worse=False)
    assert low["status"] == "critical"
    assert mc.health_check(3, "x", None, None)["status"] == "ok"  # no threshold: reported, not judged


def test_status_and_severity():
    checks = [{"name": "a", "status": "ok"}, {"name": "b", "status": "unknown"}]
    assert mc.health_status(checks) == "warning"
    assert mc.health_severity(checks) == "P3"
    assert mc.health_severity([{"name": "a", "status": "ok"}]) is None
    assert mc.health_severity([{"name": "a", "status": "warning"}]) == "P2"
    mixed = [{"name": "a", "status": "critical"}, {"name": "b", "status": "critical", "severity": "P1"},
             {"name": "c", "status": "critical", "severity": "P0"}]
    assert mc.health_severity(mixed) == "P0" and mc.health_status(mixed) == "critical"
    # A severity hint on an ok check means nothing.
    assert mc.health_severity([{"name": "a", "status": "ok", "severity": "P0"}]) is None


def test_metrics_window_uses_deltas_and_leaves_out_scrapes():
    window = mc.health_metrics_window(METRICS_1, METRICS_2, seconds=5)
    # 90 health + 10 faults; the 850 scrapes of /metrics are left out.
    assert window["requests"] == 100 and window["errors_5xx"] == 10
    assert window["error_rate_pct"] == 10.0
    # 100 observations in the window: 20 at <= 0.1 s, 80 in (0.1, 1]; p95 rank 95 -> 0.1 + 0.9 * 75/80.
    assert window["p95_seconds"] == pytest.approx(0.1 + 0.9 * (95 - 20) / 80, abs=1e-3)
    assert window["comparable"] is True


def test_metrics_window_from_two_processes_gives_no_figures():
    other = METRICS_2.replace("process_start_time_seconds 1000", "process_start_time_seconds 2000")
    window = mc.health_metrics_window(METRICS_1, other)
    assert window["comparable"] is False and window["error_rate_pct"] is None and window["requests"] is None
    assert "different backend processes" in window["metrics_reason"]
    backwards = METRICS_2.replace(" 190\n", " 5\n").replace("process_start_time_seconds 1000\n", "")
    assert mc.health_metrics_window(METRICS_2, backwards)["comparable"] is False
    assert mc.health_metrics_process(METRICS_2) == 1000
    checks = mc.health_traffic_checks(window, 2, 5, 1, 5)
    assert checks[0]["status"] == "unknown" and "different backend processes" in checks[0]["message"]


def test_metrics_window_without_samples():
    window = mc.health_metrics_window("", "")
    assert window["requests"] is None and window["error_rate_pct"] is None and window["p95_seconds"] is None
    assert window["samples_parsed"] is False


def test_histogram_quantile_matches_prometheus():
    assert mc.histogram_quantile(0.5, {"1": 10, "2": 20, "+Inf": 20}) == pytest.approx(1.0)
    assert mc.histogram_quantile(0.95, {"1": 0, "+Inf": 10}) == 1.0  # in +Inf: highest finite bound
    assert mc.histogram_quantile(0.95, {"1": 0, "+Inf": 0}) is None


def test_prometheus_scalar():
    vector = {"status": "success", "data": {"resultType": "vector", "result": [{"metric": {}, "value": [1, "0.25"]}]}}
    assert mc.health_prom_scalar(vector) == 0.25
    assert mc.health_prom_scalar({"status": "success", "data": {"resultType": "vector", "result": []}}) is None
    nan = {"status": "success", "data": {"resultType": "vector", "result": [{"metric": {}, "value": [1, "NaN"]}]}}
    assert mc.health_prom_scalar(nan) is None
    assert mc.health_prom_scalar({"status": "error"}) is None
    assert mc.health_prom_scalar(None) is None


def test_traffic_checks_severity_lines():
    def rate(pct, requests=1000):
        traffic = {"source": "prometheus", "window": "1m", "requests": requests,
                   "errors_5xx": int(requests * pct / 100), "error_rate_pct": pct, "p95_seconds": 0.1}
        return mc.health_traffic_checks(traffic, 2.0, 5.0, 1.0, 5.0, 50.0, 20)

    assert rate(0.5)[0]["status"] == "ok"
    assert rate(2)[0]["status"] == "warning" and rate(2)[0]["severity"] == "P2"
    assert rate(10)[0]["status"] == "critical" and rate(10)[0]["severity"] == "P1"
    assert rate(60)[0]["severity"] == "P0"
    few = rate(50, requests=4)[0]
    assert few["status"] == "ok" and few["judged"] is False and "fewer than 20" in few["message"]
    slow = mc.health_traffic_checks({"source": "metrics", "window_seconds": 5, "requests": 100, "errors_5xx": 0,
                                     "error_rate_pct": 0.0, "p95_seconds": 6.0, "comparable": True},
                                    2.0, 5.0, 1.0, 5.0)[1]
    assert slow["status"] == "critical" and slow["severity"] == "P1"
    none = mc.health_traffic_checks({"prometheus_reason": "connection refused", "metrics_reason": "timed out",
                                     "comparable": False}, 2, 5, 1, 5)
    assert [c["status"] for c in none] == ["unknown", "unknown"]
    assert "connection refused" in none[0]["message"]


def test_http_checks_name_the_component_and_severity():
    probes = {
        "nginx_health": {"url": "http://x/health", "status": 200, "ok": True, "latency_ms": 3.0},
        "api_health": {"url": "http://x/api/health", "status": 503, "ok": False, "latency_ms": 9.0,
                       "json": {"status": "error", "checks": {"database": {"status": "ok"},
                                                             "redis": {"status": "error", "error": "not connected"}}}},
    }
    checks = {c["name"]: c for c in mc.health_http_checks(probes, 2.0, 5.0)}
    api = checks["api_health"]
    assert api["status"] == "critical" and api["component"] == "redis" and api["severity"] == "P1"
    assert "redis (not connected)" in api["message"]
    assert checks["nginx_health"]["status"] == "ok" and checks["nginx_health_latency"]["value"] == 0.003
    probes["api_health"] = {"url": "http://x/api/health", "status": 502, "ok": False, "latency_ms": 4.0}
    down = {c["name"]: c for c in mc.health_http_checks(probes, 2.0, 5.0)}["api_health"]
    assert down["severity"] == "P0" and down["component"] == "backend"
    probes["api_health"]["json"] = {"checks": {"database": {"status": "error", "error": "timeout"}}}
    probes["api_health"]["status"] = 503
    db = {c["name"]: c for c in mc.health_http_checks(probes, 2.0, 5.0)}["api_health"]
    assert db["severity"] == "P0" and db["component"] == "postgres"
    probes["nginx_health"] = {"url": "http://x/health", "status": -1, "ok": False, "reason": "connection refused",
                              "latency_ms": 1.0}
    front = {c["name"]: c for c in mc.health_http_checks(probes, 2.0, 5.0)}
    assert front["nginx_health"]["severity"] == "P0" and "nginx_health_latency" not in front


def test_missing_and_prefixed():
    present = [{"name": "redis_available", "status": "critical"}]
    missing = mc.health_missing(present, [{"name": "redis_available"}, {"name": "redis_memory", "component": "redis"}],
                                "Redis unavailable")
    assert [m["name"] for m in missing] == ["redis_memory"] and missing[0]["status"] == "unknown"
    renamed = mc.checks_prefixed([{"name": "liveness"}, {"name": "postgres_x", "component": "db"}], "postgres_",
                                 "postgres")
    assert renamed == [{"name": "postgres_liveness", "component": "postgres"},
                       {"name": "postgres_x", "component": "db"}]
    marked = mc.health_with_severity({"name": "redis_available", "status": "critical"}, {"redis_available": "P1"})
    assert marked["severity"] == "P1"
