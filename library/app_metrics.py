#!/usr/bin/python
# The application's own metrics: Prometheus text from /metrics, and windowed rates from a Prometheus server.
from __future__ import annotations

DOCUMENTATION = r"""
---
module: app_metrics
short_description: Request counts, error rate, latency and memory of the application from /metrics and Prometheus
description:
  - Scrapes each URL of I(urls) (the backend's C(/metrics) in the Prometheus text format, directly or
    through nginx) and reduces it to request totals by status class, the 5xx error rate, mean and
    estimated p95 latency (from the C(http_request_duration_seconds) histogram, interpolated like
    C(histogram_quantile)), the Node heap, resident memory, uptime and version.
  - The counters of C(/metrics) cover the lifetime of the process that answered. For rates over a recent
    window, give I(prometheus_url) - the module then asks the Prometheus HTTP API for the request rate,
    5xx error rate and p95 latency over I(window), and how many backend targets are up.
  - Routes in I(exclude_routes) (by default the scrape endpoint itself) are left out of the request,
    error and latency figures.
  - Error rate and p95 become checks C({name, status, value, threshold, message}); an unreachable
    endpoint is a C(critical) check for C(/metrics) and C(unknown) for Prometheus, never a module failure.
  - Read-only; check mode gathers the same.
version_added: "1.0.0"
author: Equipment Marketplace operations
options:
  urls:
    description:
      - C(/metrics) URLs to scrape. Each answer is reported separately (behind a load balancer, one
        replica answers each scrape).
    type: list
    elements: str
    default: []
  prometheus_url:
    description:
      - Base URL of a Prometheus server (C(http://host:9090)); empty skips the windowed queries.
    type: str
  job:
    description:
      - Prometheus C(job) label of the backend targets.
    type: str
    default: backend
  window:
    description:
      - Range of the Prometheus C(rate()) queries, a Prometheus duration (C(5m), C(15m), C(1h)).
    type: str
    default: 5m
  exclude_routes:
    description:
      - Values of the C(route) label left out of the request, error and latency figures.
    type: list
    elements: str
    default: [/metrics]
  timeout:
    description:
      - Timeout of each HTTP request in seconds.
    type: float
    default: 5.0
  validate_certs:
    description:
      - Verify TLS certificates of HTTPS URLs.
    type: bool
    default: true
  error_rate_warning_pct:
    description:
      - 5xx responses in percent of all responses at which the error-rate check warns.
    type: float
    default: 1.0
  error_rate_critical_pct:
    description:
      - 5xx percentage at which the error-rate check is critical (the runbook's P1 starts at 5 %).
    type: float
    default: 5.0
  latency_p95_warning_seconds:
    description:
      - Estimated p95 latency at which the latency check warns.
    type: float
    default: 2.0
  latency_p95_critical_seconds:
    description:
      - Estimated p95 latency at which the latency check is critical (the runbook's P1 is responses over 5 s).
    type: float
    default: 5.0
  min_requests:
    description:
      - Error rate and latency are judged only over at least this many requests (else C(ok) with a note).
    type: int
    default: 20
notes:
  - The p95 from a histogram is an estimate within the bucket that holds it.
"""

EXAMPLES = r"""
- name: Application metrics through nginx and from Prometheus (last 5 minutes)
  app_metrics:
    urls: ["{{ marketplace_backend_metrics_url }}"]
    prometheus_url: "{{ marketplace_prometheus_url | default('') }}"
    window: 5m
  register: app
  changed_when: false
  check_mode: false

- name: Every backend replica directly, stricter error rate
  app_metrics:
    urls:
      - http://127.0.0.1:53000/metrics
      - http://127.0.0.1:53001/metrics
    error_rate_warning_pct: 0.5
"""

RETURN = r"""
targets:
  description:
    - Per URL - C(url), C(available), C(reason) (when not), C(requests) (total), C(by_class) (C(2xx),
      C(3xx), C(4xx), C(5xx) counts), C(errors_5xx), C(error_rate_pct), C(latency_mean_seconds),
      C(latency_p95_seconds), C(heap_used_bytes), C(heap_total_bytes), C(rss_bytes), C(uptime_seconds),
      C(version), C(top_errors) (routes with the most 5xx).
  returned: always
  type: list
  elements: dict
prometheus:
  description:
    - C(url), C(available), C(reason), C(window), C(request_rate) (requests per second),
      C(error_rate_pct), C(latency_p95_seconds), C(targets_up), C(targets_total), C(heap_used_bytes)
      (largest replica); null when I(prometheus_url) is empty.
  returned: always
  type: dict
checks:
  description: Checks C(metrics_scrape:<url>), C(error_rate:<url>), C(latency_p95:<url>) and, with
    Prometheus, C(prometheus), C(error_rate_window), C(latency_p95_window).
  returned: always
  type: list
  elements: dict
status:
  description: Worst status of the checks.
  returned: always
  type: str
summary:
  description: One line with the main figures.
  returned: always
  type: str
"""

import json
import math
import re
import time
from urllib.parse import urlencode

from ansible.module_utils.marketplace_common import json_safe, threshold_check, validate_non_negative, worst_status
from ansible.module_utils.marketplace_metrics import histogram_quantile as quantile
from ansible.module_utils.marketplace_metrics import parse_samples, query_result_value
from ansible.module_utils.marketplace_module import MarketplaceModule
from ansible.module_utils.urls import open_url

DURATION = re.compile(r"^(\d+(ms|s|m|h|d|w|y))+$")


def build_argument_spec():
    return dict(
        urls=dict(type="list", elements="str", default=[]),
        prometheus_url=dict(type="str"),
        job=dict(type="str", default="backend"),
        window=dict(type="str", default="5m"),
        exclude_routes=dict(type="list", elements="str", default=["/metrics"]),
        timeout=dict(type="float", default=5.0),
        validate_certs=dict(type="bool", default=True),
        error_rate_warning_pct=dict(type="float", default=1.0),
        error_rate_critical_pct=dict(type="float", default=5.0),
        latency_p95_warning_seconds=dict(type="float", default=2.0),
        latency_p95_critical_seconds=dict(type="float", default=5.0),
        min_requests=dict(type="int", default=20),
    )


def reduce_metrics(samples, exclude):
    requests, by_class, errors_by_route = 0, {}, {}
    buckets, dur_sum, dur_count = {}, 0.0, 0.0
    gauges, version = {}, None
    for name, labels, value in samples:
        route = labels.get("route")
        if name == "http_requests_total":
            if route in exclude:
                continue
            requests += value
            status = labels.get("status", "")
            klass = (status[:1] + "xx") if status[:1].isdigit() else "other"
            by_class[klass] = by_class.get(klass, 0) + value
            if klass == "5xx":
                key = "%s %s" % (labels.get("method", ""), route)
                errors_by_route[key] = errors_by_route.get(key, 0) + value
        elif name == "http_request_duration_seconds_bucket" and route not in exclude:
            le = float("inf") if labels.get("le") in ("+Inf", "Inf") else float(labels.get("le", "nan"))
            if not math.isnan(le):
                buckets[le] = buckets.get(le, 0) + value
        elif name == "http_request_duration_seconds_sum" and route not in exclude:
            dur_sum += value
        elif name == "http_request_duration_seconds_count" and route not in exclude:
            dur_count += value
        elif name in ("nodejs_heap_used_bytes", "nodejs_heap_total_bytes", "process_resident_memory_bytes",
                      "process_start_time_seconds"):
            gauges[name] = value
        elif name == "app_info":
            version = labels.get("version")
    errors = by_class.get("5xx", 0)
    start = gauges.get("process_start_time_seconds")
    top_errors = sorted(errors_by_route.items(), key=lambda kv: kv[1], reverse=True)[:5]
    return {
        "requests": int(requests),
        "by_class": {k: int(v) for k, v in sorted(by_class.items())},
        "errors_5xx": int(errors),
        "error_rate_pct": round(100.0 * errors / requests, 2) if requests else None,
        "latency_mean_seconds": round(dur_sum / dur_count, 4) if dur_count else None,
        "latency_p95_seconds": _round(quantile(0.95, buckets)),
        "heap_used_bytes": _int(gauges.get("nodejs_heap_used_bytes")),
        "heap_total_bytes": _int(gauges.get("nodejs_heap_total_bytes")),
        "rss_bytes": _int(gauges.get("process_resident_memory_bytes")),
        "uptime_seconds": round(time.time() - start, 1) if start else None,
        "version": version,
        "top_errors": [{"route": k, "count": int(v)} for k, v in top_errors],
    }


def _round(value):
    return None if value is None else round(value, 4)


def _int(value):
    return None if value is None else int(value)


def http_get(url, params):
    resp = open_url(url, method="GET", timeout=params["timeout"], validate_certs=params["validate_certs"],
                    headers={"Accept": "text/plain, application/json"}, follow_redirects="safe")
    return resp.read().decode("utf-8", errors="replace")


def _reason(exc):
    text = str(getattr(exc, "reason", None) or exc) or exc.__class__.__name__
    code = getattr(exc, "code", None)
    return ("HTTP %s: %s" % (code, text) if code else text)[:300]


def judged(name, value, warning, critical, label, unit, requests, min_requests, component="backend"):
    if value is not None and requests is not None and requests < min_requests:
        result = {"status": "ok", "value": value, "threshold": {"warning": warning, "critical": critical},
                  "message": "%s %s%s over only %d requests (not judged below %d)"
                  % (label, value, unit, requests, min_requests)}
    else:
        result = threshold_check(value, warning, critical, unit=unit, label=label)
    result.update(name=name, component=component)
    return result


def scrape(url, params):
    target = {"url": url}
    try:
        samples = parse_samples(http_get(url, params))
    except Exception as exc:  # any transport error is a result
        target.update(available=False, reason=_reason(exc))
        return target, [{"name": "metrics_scrape:%s" % url, "component": "backend", "status": "critical",
                         "value": None, "threshold": None, "message": "cannot scrape %s: %s" % (url, target["reason"])}]
    if not samples:
        target.update(available=False, reason="no metrics in the answer")
        return target, [{"name": "metrics_scrape:%s" % url, "component": "backend", "status": "critical",
                         "value": None, "threshold": None, "message": "%s answered without metrics" % url}]
    target["available"] = True
    target.update(reduce_metrics(samples, set(params["exclude_routes"])))
    checks = [
        {"name": "metrics_scrape:%s" % url, "component": "backend", "status": "ok", "value": target["requests"],
         "threshold": None, "message": "%s: %d requests, %d 5xx (lifetime of the answering process)"
         % (url, target["requests"], target["errors_5xx"])},
        judged("error_rate:%s" % url, target["error_rate_pct"], params["error_rate_warning_pct"],
               params["error_rate_critical_pct"], "5xx error rate (lifetime) at %s" % url, "%",
               target["requests"], params["min_requests"]),
        judged("latency_p95:%s" % url, target["latency_p95_seconds"], params["latency_p95_warning_seconds"],
               params["latency_p95_critical_seconds"], "estimated p95 latency (lifetime) at %s" % url, " s",
               target["requests"], params["min_requests"]),
    ]
    return target, checks


def prom_query(base, expr, params):
    url = base.rstrip("/") + "/api/v1/query?" + urlencode({"query": expr})
    data = json.loads(http_get(url, params))
    if data.get("status") != "success":
        raise ValueError(data.get("error") or "query failed")
    return data["data"]["result"]


def prom_scalar(result):
    """The value of the first series of a query's result list (finite), else None."""
    return query_result_value(result[0]) if result else None


def query_prometheus(params):
    base, window, job = params["prometheus_url"], params["window"], params["job"]
    excl = "|".join(re.escape(r) for r in params["exclude_routes"])
    sel = 'job="%s"' % job + (',route!~"%s"' % excl if excl else "")
    out = {"url": base, "window": window}
    try:
        rate = prom_scalar(prom_query(base, "sum(rate(http_requests_total{%s}[%s]))" % (sel, window), params))
        errors = prom_scalar(prom_query(
            base, 'sum(rate(http_requests_total{%s,status=~"5.."}[%s]))' % (sel, window), params))
        p95 = prom_scalar(prom_query(
            base, "histogram_quantile(0.95, sum by (le) (rate(http_request_duration_seconds_bucket{%s}[%s])))"
            % (sel, window), params))
        up = prom_query(base, 'up{job="%s"}' % job, params)
        heap = prom_scalar(prom_query(base, 'max(nodejs_heap_used_bytes{job="%s"})' % job, params))
    except Exception as exc:  # an unreachable Prometheus is a result
        out.update(available=False, reason=_reason(exc))
        return out, [{"name": "prometheus", "component": "prometheus", "status": "unknown", "value": None,
                      "threshold": None, "message": "cannot query Prometheus at %s: %s" % (base, out["reason"])}]
    errors = errors or 0.0
    out.update(available=True, request_rate=_round(rate),
               error_rate_pct=round(100.0 * errors / rate, 2) if rate else None,
               latency_p95_seconds=_round(p95),
               targets_up=sum(1 for r in up if prom_scalar([r]) == 1), targets_total=len(up),
               heap_used_bytes=_int(heap))
    window_requests = round((rate or 0) * _seconds(window))
    checks = [
        {"name": "prometheus", "component": "prometheus", "status": "ok", "value": out["request_rate"],
         "threshold": None, "message": "Prometheus: %s requests/s over %s, %d of %d %s targets up"
         % (out["request_rate"], window, out["targets_up"], out["targets_total"], job)},
        judged("error_rate_window", out["error_rate_pct"], params["error_rate_warning_pct"],
               params["error_rate_critical_pct"], "5xx error rate over %s" % window, "%",
               window_requests, params["min_requests"]),
        judged("latency_p95_window", out["latency_p95_seconds"], params["latency_p95_warning_seconds"],
               params["latency_p95_critical_seconds"], "p95 latency over %s" % window, " s",
               window_requests, params["min_requests"]),
    ]
    return out, checks


def _seconds(duration):
    units = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "y": 31536000}
    return sum(int(n) * units[u] for n, u in re.findall(r"(\d+)(ms|s|m|h|d|w|y)", duration))


def main():
    module = MarketplaceModule(argument_spec=build_argument_spec(), supports_check_mode=True)
    params = module.params
    validate_non_negative(module, params, ["timeout", "error_rate_warning_pct", "error_rate_critical_pct",
                                           "latency_p95_warning_seconds", "latency_p95_critical_seconds",
                                           "min_requests"])
    if not DURATION.match(params["window"] or ""):
        module.fail_json(msg="window must be a Prometheus duration such as 5m, 90s or 1h")
    if not params["urls"] and not params["prometheus_url"]:
        module.fail_json(msg="give at least one of urls and prometheus_url")
    targets, checks = [], []
    for url in params["urls"]:
        target, target_checks = scrape(url, params)
        targets.append(target)
        checks.extend(target_checks)
    prom = None
    if params["prometheus_url"]:
        prom, prom_checks = query_prometheus(params)
        checks.extend(prom_checks)
    parts = []
    for t in targets:
        if t.get("available"):
            parts.append("%s: %s%% 5xx of %d requests, p95 %s s" % (
                t["url"], t["error_rate_pct"] if t["error_rate_pct"] is not None else "-", t["requests"],
                t["latency_p95_seconds"] if t["latency_p95_seconds"] is not None else "-"))
        else:
            parts.append("%s: unavailable (%s)" % (t["url"], t["reason"]))
    if prom:
        if prom.get("available"):
            parts.append("Prometheus %s: %s req/s, %s%% 5xx, p95 %s s" % (
                prom["window"], prom["request_rate"], prom["error_rate_pct"], prom["latency_p95_seconds"]))
        else:
            parts.append("Prometheus unavailable (%s)" % prom["reason"])
    module.exit_json(changed=False, **json_safe(dict(targets=targets, prometheus=prom, checks=checks,
                                                     status=worst_status(c["status"] for c in checks),
                                                     summary="; ".join(parts))))


if __name__ == "__main__":
    main()
