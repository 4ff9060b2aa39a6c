"""app_metrics: /metrics reduced to requests, 5xx rate, p95 and heap; Prometheus over a window."""
from __future__ import annotations

import http.server
import threading

import pytest

from tests.helpers.modules import assert_return_documented, load_module, run_module

METRICS = """# TYPE http_requests_total counter
http_requests_total{method="GET",route="/metrics",status="200"} 1000
http_requests_total{method="GET",route="/api/listings",status="200"} 80
http_requests_total{method="GET",route="/api/listings",status="500"} 15
http_requests_total{method="POST",route="/api/orders",status="503"} 5
# TYPE http_request_duration_seconds histogram
http_request_duration_seconds_bucket{method="GET",route="/metrics",le="0.1"} 1000
http_request_duration_seconds_bucket{method="GET",route="/metrics",le="+Inf"} 1000
http_request_duration_seconds_bucket{method="GET",route="/api/listings",le="0.1"} 50
http_request_duration_seconds_bucket{method="GET",route="/api/listings",le="1"} 90
http_request_duration_seconds_bucket{method="GET",route="/api/listings",le="10"} 95
http_request_duration_seconds_bucket{method="GET",route="/api/listings",le="+Inf"} 95
http_request_duration_seconds_sum{method="GET",route="/api/listings"} 20.0
http_request_duration_seconds_count{method="GET",route="/api/listings"} 95
http_request_duration_seconds_bucket{method="POST",route="/api/orders",le="0.1"} 0
http_request_duration_seconds_bucket{method="POST",route="/api/orders",le="1"} 0
http_request_duration_seconds_bucket{method="POST",route="/api/orders",le="10"} 5
http_request_duration_seconds_bucket{method="POST",route="/api/orders",le="+Inf"} 5
http_request_duration_seconds_sum{method="POST",route="/api/orders"} 30.0
http_request_duration_seconds_count{method="POST",route="/api/orders"} 5
nodejs_heap_used_bytes 1000000
app_info{version="9.9.9"} 1
"""


@pytest.fixture(scope="module")
def metrics_server():
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            body = METRICS.encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/metrics"
    server.shutdown()


def test_reduces_the_text_format(metrics_server):
    result = run_module("app_metrics", {"urls": [metrics_server]})
    t = result["targets"][0]
    assert t["available"] and t["requests"] == 100 and t["errors_5xx"] == 20  # /metrics left out
    assert t["error_rate_pct"] == 20.0 and t["by_class"] == {"2xx": 80, "5xx": 20}
    # 100 requests: 50 <= 0.1 s, 90 <= 1 s, 100 <= 10 s; rank 95 lies in (1, 10]: 1 + 9 * 5/10 = 5.5
    assert t["latency_p95_seconds"] == pytest.approx(5.5)
    assert t["latency_mean_seconds"] == pytest.approx(0.5)
    assert t["heap_used_bytes"] == 1000000 and t["version"] == "9.9.9"
    assert t["top_errors"][0] == {"route": "GET /api/listings", "count": 15}
    checks = {c["name"].split(":")[0]: c for c in result["checks"]}
    assert checks["error_rate"]["status"] == "critical" and checks["latency_p95"]["status"] == "critical"
    assert result["prometheus"] is None
    assert_return_documented("app_metrics", result)


def test_quantile_matches_histogram_quantile():
    mod = load_module("app_metrics")
    assert mod.quantile(0.5, [(1.0, 10), (float("inf"), 10)]) == pytest.approx(0.5)
    assert mod.quantile(0.99, [(1.0, 0), (float("inf"), 10)]) == 1.0  # in +Inf: the highest finite bound
    assert mod.quantile(0.5, []) is None




def test_unreachable_is_a_result():
    result = run_module("app_metrics", {"urls": ["http://127.0.0.1:9/metrics"], "prometheus_url": "http://127.0.0.1:9"})
    assert not result.get("failed") and result["targets"][0]["available"] is False
    assert result["prometheus"]["available"] is False
    statuses = {c["name"]: c["status"] for c in result["checks"]}
    assert statuses["metrics_scrape:http://127.0.0.1:9/metrics"] == "critical" and statuses["prometheus"] == "unknown"


def test_bad_window_fails():
    result = run_module("app_metrics", {"prometheus_url": "http://127.0.0.1:9", "window": "5 minutes"})
    assert result["failed"] and "window" in result["msg"]
