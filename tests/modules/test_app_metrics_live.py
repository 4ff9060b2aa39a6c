"""app_metrics: /metrics reduced to requests, 5xx rate, p95 and heap; Prometheus over a window."""
from __future__ import annotations

from tests.helpers.modules import run_module


def test_the_stack_through_nginx_and_prometheus(stack_env):
    from tests.helpers.faults import wait_healthy

    wait_healthy("backend")
    wait_healthy("nginx")
    base = f"http://{stack_env['BIND_ADDRESS']}:{stack_env['NGINX_HTTP_PORT']}/metrics"
    prom = f"http://{stack_env['BIND_ADDRESS']}:{stack_env['PROMETHEUS_PORT']}"
    result = run_module("app_metrics", {"urls": [base], "prometheus_url": prom, "window": "5m"})
    assert result["targets"][0]["available"] and result["targets"][0]["version"]
    p = result["prometheus"]
    if p["available"]:  # Prometheus may be restarted by another test; its absence is a result
        assert p["targets_total"] >= 1 and p["request_rate"] is not None
    else:
        assert any(c["name"] == "prometheus" and c["status"] == "unknown" for c in result["checks"])
