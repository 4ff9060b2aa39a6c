"""metrics_window: 5xx rate and latency percentile from two samples of a Prometheus endpoint.

The arithmetic runs against a local endpoint whose answers the test scripts (two samples, a restart between
them, traffic that gets 5xx), and once against the reference stack's real /metrics through nginx.
"""
from __future__ import annotations

from tests.helpers.modules import load_module, run_module

MOD = load_module("metrics_window")


def test_against_the_reference_stack(stack_env):
    base = f"http://{stack_env['BIND_ADDRESS']}:{stack_env['NGINX_HTTP_PORT']}"
    result = run_module("metrics_window", {"url": base + "/metrics", "window": 2,
                                           "traffic_urls": [base + "/api/health"], "traffic_requests": 10})
    assert result["available"], result
    assert result["traffic"]["sent"] == 10
    # Other tests restart the backend or switch nginx to maintenance meanwhile; judge only a clean window.
    if result["same_process"] and result["traffic"]["by_status"] == {"200": 10}:
        assert result["requests"] >= 10 and result["latency_seconds"] is not None
        assert result["process"]["version"]
