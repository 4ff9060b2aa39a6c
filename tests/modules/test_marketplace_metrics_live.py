"""module_utils/marketplace_metrics: the Prometheus text format and its arithmetic, shared by app_metrics,
metrics_window and the checks role's filters.

data/metrics_backend_{1,2}.txt are two real answers of the reference stack's /metrics (through nginx), taken
from one backend process with six GET /api/health and one scrape between them.
"""
from __future__ import annotations

import importlib
import importlib.util
import urllib.request
from pathlib import Path

import tests.helpers.modules  # noqa: F401  (makes module_utils/ importable as ansible.module_utils.*)

mm = importlib.import_module("ansible.module_utils.marketplace_metrics")
bucket_deltas, finite_number, histogram_quantile = mm.bucket_deltas, mm.finite_number, mm.histogram_quantile
identity, parse_samples, query_result_value = mm.identity, mm.parse_samples, mm.query_result_value
request_deltas, select_series, went_backwards = mm.request_deltas, mm.select_series, mm.went_backwards

ROOT = Path(__file__).resolve().parents[2]
NAMES = {"http_requests_total", "http_request_duration_seconds_bucket"}
INF = float("inf")


def test_the_live_endpoint_parses(stack_env):
    url = f"http://{stack_env['BIND_ADDRESS']}:{stack_env['NGINX_HTTP_PORT']}/metrics"
    with urllib.request.urlopen(url, timeout=10) as resp:  # read-only scrape
        samples = parse_samples(resp.read().decode())
    names = {name for name, _, _ in samples}
    assert {"http_requests_total", "http_request_duration_seconds_bucket", "process_start_time_seconds"} <= names
    assert identity(samples)["version"]
    assert all(lab.get("le") for name, lab, _ in samples if name.endswith("_bucket"))
