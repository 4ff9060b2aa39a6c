#!/usr/bin/python
# Two samples of a Prometheus /metrics endpoint around a short window of traffic: requests, 5xx rate and a
# latency percentile from the counter and histogram deltas (the deploy gate's Key Metrics).
from __future__ import annotations

DOCUMENTATION = r"""
---
module: metrics_window
short_description: 5xx rate and latency percentile from two samples of a Prometheus /metrics endpoint
description:
  - Reads a Prometheus text-format endpoint (the backend's C(/metrics)) twice, I(window) seconds apart,
    optionally sending I(traffic_requests) GET requests to I(traffic_urls) in between, and computes from the
    deltas of the request counter and the latency histogram the number of requests, the 5xx rate and a
    latency percentile (C(histogram_quantile) style interpolation). Cumulative counters since process start
    say nothing about now; only the delta does.
  - Behind a load balancer the two reads may be answered by different replicas. The process identity
    (C(process_start_time_seconds) and C(app_info)) of both samples is compared; when it differs, or a
    counter went backwards, up to I(max_resamples) further reads look for the first process again. When
    none matches, the rates are C(unknown) rather than wrong.
  - 5xx answers that never reach the application (a 502 from the proxy while the backend is down) do not
    show in its metrics, so the status codes of the traffic this module sends are counted as well and get
    their own check.
  - Read-only for the target (the traffic is GET requests); runs the same in check mode. An endpoint that
    does not answer gives C(available=false) and a reason, not a failure.
version_added: "1.0.0"
author: Equipment Marketplace operations
options:
  url:
    description: URL of the Prometheus text-format endpoint, for example C(http://127.0.0.1:58080/metrics).
    type: str
    required: true
  window:
    description: Seconds between the two samples.
    type: float
    default: 5.0
  traffic_urls:
    description:
      - URLs requested with GET during the window (round robin), so that a quiet service has requests to
        measure. Empty sends nothing and measures whatever traffic there is.
    type: list
    elements: str
    default: []
  traffic_requests:
    description: Number of traffic requests spread evenly over the window.
    type: int
    default: 20
  timeout:
    description: Timeout in seconds of each HTTP request.
    type: float
    default: 5.0
  validate_certs:
    description: Validate TLS certificates of HTTPS URLs.
    type: bool
    default: true
  request_metric:
    description: Counter of requests with a C(status) label (and optionally C(route)).
    type: str
    default: http_requests_total
  duration_metric:
    description: Histogram of request durations in seconds (the name without C(_bucket)).
    type: str
    default: http_request_duration_seconds
  exclude_routes:
    description: Values of the C(route) label left out of the figures (the metrics scrapes themselves).
    type: list
    elements: str
    default: [/metrics]
  quantile:
    description: Latency quantile to compute, between 0 and 1.
    type: float
    default: 0.95
  error_rate_warning:
    description: 5xx rate in percent at which the C(error_rate_5xx) and C(traffic_errors) checks turn C(warning).
    type: float
    default: 1.0
  error_rate_critical:
    description: 5xx rate in percent at which those checks turn C(critical).
    type: float
    default: 5.0
  latency_warning:
    description: Latency percentile in seconds at which the latency check turns C(warning).
    type: float
    default: 2.0
  latency_critical:
    description: Latency percentile in seconds at which the latency check turns C(critical).
    type: float
    default: 5.0
  min_requests:
    description: Fewer requests than this in the window make the rates C(unknown).
    type: int
    default: 1
  max_resamples:
    description: Extra reads allowed to find the process of the first sample again (replicas, restarts).
    type: int
    default: 6
notes:
  - The latency check is named after the quantile, C(latency_p95) for the default 0.95.
"""

EXAMPLES = r"""
- name: Key Metrics of the new backend over 5 s of smoke traffic
  metrics_window:
    url: "{{ marketplace_backend_metrics_url }}"
    window: 5
    traffic_urls:
      - "{{ marketplace_base_url }}/api/health"
      - "{{ marketplace_base_url }}/api/listings"
    error_rate_warning: "{{ marketplace_threshold_error_rate_pct }}"
    latency_warning: "{{ marketplace_threshold_p95_latency_s }}"
  register: metrics
  changed_when: false
  check_mode: false
"""

RETURN = r"""
available:
  description: Whether the metrics endpoint answered the first read.
  returned: always
  type: bool
reason:
  description: Why the endpoint could not be read (only when C(available) is false).
  returned: when available is false
  type: str
url:
  description: The metrics URL.
  returned: always
  type: str
status:
  description: Worst status of the checks.
  returned: always
  type: str
summary:
  description: One line for humans.
  returned: always
  type: str
window_seconds:
  description: Seconds between the two samples that were compared.
  returned: when available
  type: float
same_process:
  description: Whether both samples came from the same process (false makes the rates unknown).
  returned: when available
  type: bool
samples:
  description: Number of reads taken (2 plus the resamples).
  returned: when available
  type: int
process:
  description: Identity of the sampled process, C(start_time) and C(version) when the endpoint exports them.
  returned: when available
  type: dict
requests:
  description: Requests counted in the window (without I(exclude_routes)).
  returned: when available
  type: int
errors_5xx:
  description: Of those, answers with a 5xx status.
  returned: when available
  type: int
error_rate_pct:
  description: 5xx answers in percent of the requests of the window (null when unknown).
  returned: when available
  type: float
by_status:
  description: Requests of the window per status code.
  returned: when available
  type: dict
latency_seconds:
  description: The latency quantile of the window in seconds (null when unknown).
  returned: when available
  type: float
latency_observations:
  description: Histogram observations in the window.
  returned: when available
  type: int
traffic:
  description:
    - What the traffic sent - C(sent), C(by_status) (status code, or C(error) for no answer), C(failed)
      (5xx or no answer) and C(error_rate_pct).
  returned: when available
  type: dict
checks:
  description:
    - Report checks C(error_rate_5xx), C(latency_p95) (named after the quantile) and, when traffic was sent,
      C(traffic_errors), each with C(name), C(status), C(value), C(threshold) and C(message).
  returned: always
  type: list
  elements: dict
"""

import time
import urllib.error

from ansible.module_utils.marketplace_common import check, json_safe, threshold_check, worst_status
from ansible.module_utils.marketplace_metrics import (
    bucket_deltas,
    identity,
    request_deltas,
    select_series,
    went_backwards,
)
from ansible.module_utils.marketplace_metrics import histogram_quantile as _histogram_quantile
from ansible.module_utils.marketplace_metrics import parse_samples as parse_metrics
from ansible.module_utils.marketplace_module import MarketplaceModule
from ansible.module_utils.urls import open_url


def build_argument_spec():
    return dict(
        url=dict(type="str", required=True),
        window=dict(type="float", default=5.0),
        traffic_urls=dict(type="list", elements="str", default=[]),
        traffic_requests=dict(type="int", default=20),
        timeout=dict(type="float", default=5.0),
        validate_certs=dict(type="bool", default=True),
        request_metric=dict(type="str", default="http_requests_total"),
        duration_metric=dict(type="str", default="http_request_duration_seconds"),
        exclude_routes=dict(type="list", elements="str", default=["/metrics"]),
        quantile=dict(type="float", default=0.95),
        error_rate_warning=dict(type="float", default=1.0),
        error_rate_critical=dict(type="float", default=5.0),
        latency_warning=dict(type="float", default=2.0),
        latency_critical=dict(type="float", default=5.0),
        min_requests=dict(type="int", default=1),
        max_resamples=dict(type="int", default=6),
    )


def histogram_quantile(q, buckets):
    """The window's latency quantile; None (unknown) when no finite bucket bound holds it."""
    return _histogram_quantile(q, buckets, none_if_unbounded=True)


# ------------------------------------------------------------------------------------------ sampling


def fetch(url, params):
    response = open_url(url, method="GET", timeout=params["timeout"], validate_certs=params["validate_certs"],
                        headers={"Accept": "text/plain"})
    return response.read().decode("utf-8", errors="replace")


def send_traffic(params):
    urls, count, window = params["traffic_urls"], params["traffic_requests"], params["window"]
    by_status = {}
    if not urls or count <= 0:
        time.sleep(window)
        return {"sent": 0, "by_status": {}, "failed": 0, "error_rate_pct": None}
    pause = window / count
    deadline = time.monotonic()
    for i in range(count):
        url = urls[i % len(urls)]
        try:
            resp = open_url(url, method="GET", timeout=params["timeout"], validate_certs=params["validate_certs"])
            resp.read()
            code = str(resp.getcode())
        except urllib.error.HTTPError as exc:
            code = str(exc.code)
        except Exception:  # no answer at all (refused, reset, timeout): counted, never raised
            code = "error"
        by_status[code] = by_status.get(code, 0) + 1
        deadline += pause
        time.sleep(max(0.0, deadline - time.monotonic()))
    failed = sum(n for code, n in by_status.items() if code == "error" or code.startswith("5"))
    return {"sent": count, "by_status": by_status, "failed": failed,
            "error_rate_pct": round(100.0 * failed / count, 3)}


def named(name, result):
    result["name"] = name
    return result


def measure(module):
    p = module.params
    names = {p["request_metric"], p["duration_metric"] + "_bucket"}
    latency_name = "latency_p%s" % ("%g" % (p["quantile"] * 100)).replace(".", "_")
    try:
        first_text = fetch(p["url"], p)
    except Exception as exc:  # any failure to read is a result, never a traceback
        reason = "cannot read %s: %s" % (p["url"], _short_error(exc))
        unknown = [named(n, check("unknown", None, None, reason)) for n in ("error_rate_5xx", latency_name)]
        return dict(available=False, reason=reason, url=p["url"], status="unknown", summary=reason, checks=unknown)
    first = parse_metrics(first_text)
    t0 = time.monotonic()
    first_id, first_counters = identity(first), select_series(first, names)
    traffic = send_traffic(p)

    second_counters, same, samples, elapsed = None, False, 1, 0.0
    second_id = None
    for _attempt in range(1 + max(0, p["max_resamples"])):
        try:
            text = fetch(p["url"], p)
        except Exception:  # a replica that does not answer: try again
            samples += 1
            continue
        samples += 1
        elapsed = time.monotonic() - t0
        parsed = parse_metrics(text)
        second_id, second_counters = identity(parsed), select_series(parsed, names)
        same = (first_id == second_id) and not went_backwards(first_counters, second_counters)
        if same:
            break

    result = dict(available=True, url=p["url"], samples=samples, window_seconds=round(elapsed, 3),
                  same_process=same, process=first_id or {}, traffic=traffic)
    checks = []
    if not same or second_counters is None:
        why = ("the second read of %s came from another process (replicas or a restart) %d time(s)"
               % (p["url"], samples - 1))
        result.update(requests=None, errors_5xx=None, error_rate_pct=None, by_status={}, latency_seconds=None,
                      latency_observations=None)
        checks.append(named("error_rate_5xx", check("unknown", None, None, why)))
        checks.append(named(latency_name, check("unknown", None, None, why)))
    else:
        by_status = request_deltas(first_counters, second_counters, p["request_metric"], p["exclude_routes"])
        total = sum(by_status.values())
        errors = sum(n for code, n in by_status.items() if str(code).startswith("5"))
        buckets = bucket_deltas(first_counters, second_counters, p["duration_metric"], p["exclude_routes"])
        observations = round(max(buckets.values())) if buckets else 0
        latency = histogram_quantile(p["quantile"], buckets) if observations >= p["min_requests"] else None
        rate = round(100.0 * errors / total, 3) if total >= p["min_requests"] and total > 0 else None
        result.update(requests=total, errors_5xx=errors, error_rate_pct=rate, by_status=by_status,
                      latency_seconds=None if latency is None else round(latency, 4),
                      latency_observations=observations)
        rate_check = threshold_check(rate, p["error_rate_warning"], p["error_rate_critical"], unit="%",
                                     label="5xx rate (%d requests in %.1f s)" % (total, elapsed))
        lat_check = threshold_check(result["latency_seconds"], p["latency_warning"], p["latency_critical"],
                                    unit=" s", label="p%g latency (%d requests)"
                                    % (p["quantile"] * 100, observations))
        checks += [named("error_rate_5xx", rate_check), named(latency_name, lat_check)]
    if traffic["sent"]:
        checks.append(named("traffic_errors", threshold_check(
            traffic["error_rate_pct"], p["error_rate_warning"], p["error_rate_critical"], unit="%",
            label="failed answers (5xx or none) to %d smoke requests" % traffic["sent"])))
    status = worst_status(c["status"] for c in checks)
    result.update(checks=checks, status=status,
                  summary="; ".join(c["message"] for c in checks if c["status"] != "ok") or "all within thresholds")
    return result


def _short_error(exc):
    if isinstance(exc, urllib.error.HTTPError):
        return "HTTP %s" % exc.code
    reason = getattr(exc, "reason", None)
    return str(reason or exc or exc.__class__.__name__)[:300]


def main():
    module = MarketplaceModule(argument_spec=build_argument_spec(), supports_check_mode=True)
    p = module.params
    bad = [n for n in ("window", "timeout", "traffic_requests", "min_requests", "max_resamples",
                       "error_rate_warning", "error_rate_critical", "latency_warning", "latency_critical")
           if p[n] is not None and p[n] < 0]
    if bad:
        module.fail_json(msg="option(s) must not be negative: %s" % ", ".join(sorted(bad)))
    if not 0 < p["quantile"] < 1:
        module.fail_json(msg="quantile must be between 0 and 1 (exclusive)")
    if p["timeout"] <= 0:
        module.fail_json(msg="timeout must be a positive number of seconds")
    module.exit_json(changed=False, **json_safe(measure(module)))


if __name__ == "__main__":
    main()
