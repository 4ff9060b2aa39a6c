"""metrics_window: 5xx rate and latency percentile from two samples of a Prometheus endpoint.

The arithmetic runs against a local endpoint whose answers the test scripts (two samples, a restart between
them, traffic that gets 5xx), and once against the reference stack's real /metrics through nginx.
"""
from __future__ import annotations

import http.server
import threading

import pytest

from tests.helpers.modules import assert_return_documented, load_module, run_module

MOD = load_module("metrics_window")


def metrics_text(start: float, version: str, ok: int, err: int, buckets: dict[str, int]) -> str:
    lines = [
        "# HELP http_requests_total HTTP requests.",
        "# TYPE http_requests_total counter",
        f'http_requests_total{{method="GET",route="/api/health",status="200"}} {ok}',
        f'http_requests_total{{method="GET",route="/metrics",status="200"}} {ok * 3}',
    ]
    if err:
        lines.append(f'http_requests_total{{method="GET",route="/api/health",status="503"}} {err}')
    for le, count in buckets.items():
        lines.append(f'http_request_duration_seconds_bucket{{method="GET",route="/api/health",le="{le}"}} {count}')
    lines.append(f'http_request_duration_seconds_bucket{{method="GET",route="/metrics",le="+Inf"}} {ok * 3}')
    lines += [f"process_start_time_seconds {start}", f'app_info{{version="{version}"}} 1']
    return "\n".join(lines) + "\n"


class Scripted:
    """A tiny HTTP server: /metrics answers the scripted texts in turn, /traffic answers `traffic_status`."""

    def __init__(self, texts: list[str], traffic_status: int = 200):
        self.texts = list(texts)
        self.traffic_status = traffic_status
        owner = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # http.server calls it by this name
                if self.path == "/metrics":
                    body = (owner.texts.pop(0) if len(owner.texts) > 1 else owner.texts[0]).encode()
                    self.send_response(200)
                else:
                    body = b"{}"
                    self.send_response(owner.traffic_status)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture()
def scripted():
    servers = []

    def make(texts, traffic_status=200):
        server = Scripted(texts, traffic_status)
        servers.append(server)
        return server

    yield make
    for server in servers:
        server.close()


def test_parse_and_quantile_like_prometheus():
    samples = MOD.parse_metrics('a_total{route="/x",status="500"} 3\n# comment\nbad line\nb 1.5 1700000000\n')
    assert samples == [("a_total", {"route": "/x", "status": "500"}, 3.0), ("b", {}, 1.5)]
    # 100 observations: 50 <= 0.1 s, 90 <= 0.5 s, all <= 1 s -> p95 halfway between 0.5 and 1.
    buckets = {0.1: 50.0, 0.5: 90.0, 1.0: 100.0, float("inf"): 100.0}
    assert MOD.histogram_quantile(0.95, buckets) == pytest.approx(0.75)
    assert MOD.histogram_quantile(0.5, buckets) == pytest.approx(0.1)
    assert MOD.histogram_quantile(0.99, {0.1: 1.0, float("inf"): 10.0}) == 0.1  # in +Inf: the largest finite bound
    assert MOD.histogram_quantile(0.95, {0.1: 0.0, float("inf"): 0.0}) is None


def test_rates_come_from_the_deltas_and_skip_the_metrics_route(scripted):
    before = metrics_text(1000, "1.0.0", ok=500, err=400, buckets={"0.1": 800, "0.5": 900, "+Inf": 900})
    # window: 90 ok + 10 errors; 50 fast, 40 medium, 10 slower than 0.5 s
    after = metrics_text(1000, "1.0.0", ok=590, err=410, buckets={"0.1": 850, "0.5": 990, "+Inf": 1000})
    server = scripted([before, after])
    result = run_module("metrics_window", {"url": server.url + "/metrics", "window": 0.1,
                                           "error_rate_warning": 1.0, "error_rate_critical": 5.0})
    assert result["available"] and result["same_process"]
    assert result["requests"] == 100 and result["errors_5xx"] == 10 and result["error_rate_pct"] == 10.0
    assert result["by_status"] == {"200": 90, "503": 10}
    assert result["latency_observations"] == 100
    assert result["latency_seconds"] == pytest.approx(0.5)  # rank 95 falls in +Inf: the largest finite bound
    checks = {c["name"]: c for c in result["checks"]}
    assert checks["error_rate_5xx"]["status"] == "critical" and checks["latency_p95"]["status"] == "ok"
    assert result["status"] == "critical" and "traffic_errors" not in checks
    assert_return_documented("metrics_window", result)


def test_another_process_makes_the_rates_unknown_not_wrong(scripted):
    first = metrics_text(1000, "1.0.0", ok=500, err=0, buckets={"+Inf": 500})
    restarted = metrics_text(2000, "1.0.1", ok=5, err=0, buckets={"+Inf": 5})
    server = scripted([first, restarted])
    result = run_module("metrics_window", {"url": server.url + "/metrics", "window": 0.05, "max_resamples": 2})
    assert result["available"] and result["same_process"] is False and result["samples"] == 4
    assert result["error_rate_pct"] is None
    assert {c["status"] for c in result["checks"]} == {"unknown"}
    assert_return_documented("metrics_window", result)


def test_traffic_answers_are_counted_even_when_the_app_never_sees_them(scripted):
    same = metrics_text(1000, "1.0.0", ok=10, err=0, buckets={"+Inf": 10})
    server = scripted([same, same], traffic_status=502)
    result = run_module("metrics_window", {"url": server.url + "/metrics", "window": 0.2,
                                           "traffic_urls": [server.url + "/api/health"], "traffic_requests": 4})
    assert result["traffic"] == {"sent": 4, "by_status": {"502": 4}, "failed": 4, "error_rate_pct": 100.0}
    checks = {c["name"]: c for c in result["checks"]}
    assert checks["traffic_errors"]["status"] == "critical"
    assert checks["error_rate_5xx"]["status"] == "unknown"  # the app itself saw no request in the window


def test_an_endpoint_that_does_not_answer_is_a_result():
    result = run_module("metrics_window", {"url": "http://127.0.0.1:9/metrics", "timeout": 2})
    assert result["available"] is False and not result.get("failed")
    assert "cannot read http://127.0.0.1:9/metrics" in result["reason"]
    assert result["status"] == "unknown"


def test_bad_options_fail_clearly():
    result = run_module("metrics_window", {"url": "http://127.0.0.1:9/metrics", "quantile": 1.5})
    assert result["failed"] and "quantile" in result["msg"]


