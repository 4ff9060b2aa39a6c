# Filters shared by the runbook roles (health, database, cache, ...): threshold checks in the report's shape,
# overall status, the runbook's severity (P0-P3), and the arithmetic that is clumsy in Jinja (Prometheus
# text-format deltas, histogram quantiles). They run on the controller, on data the probes brought back.
# Roles get them by depending on the `checks` role.
from __future__ import annotations

import importlib.util
import re
from pathlib import Path

from ansible import constants as C

# module_utils/<name>.py on the controller, through its one loader module_utils/marketplace_controller.py: beside
# this plugin in the repository, else in a module_utils path ansible is configured with.
_spec = importlib.util.spec_from_file_location("marketplace_controller", next((
    p for d in (Path(__file__).resolve().parents[3] / "module_utils", *(C.DEFAULT_MODULE_UTILS_PATH or ()))
    if (p := Path(d, "marketplace_controller.py")).is_file()), "(not found)/marketplace_controller.py"))
_spec.loader.exec_module(_loader := importlib.util.module_from_spec(_spec))
_module_utils = _loader.module_utils


_metrics = _module_utils("marketplace_metrics")
_num = _metrics.finite_number
histogram_quantile = _metrics.histogram_quantile

STATUS_ORDER = {"ok": 0, "unknown": 1, "warning": 2, "critical": 3}
SEVERITY_ORDER = {"P3": 1, "P2": 2, "P1": 3, "P0": 4}
REQUESTS = "http_requests_total"
DURATION = "http_request_duration_seconds"


def _fmt(value, unit=""):
    if isinstance(value, float):
        text = ("%.3f" % value).rstrip("0").rstrip(".")
    else:
        text = str(value)
    return text + unit


def health_check(value, name, warning=None, critical=None, unit="", label=None, higher_is_worse=True,
                 component=None, severity=None, extra=None):
    """A report check comparing ``value`` with warning/critical thresholds (at or beyond = breach).

    ``severity`` maps a status to the runbook severity a breach means (``{'critical': 'P1'}``); it is kept on
    the check as ``severity`` when that status is reached, and read by ``health_severity``.
    """
    label = label or name
    threshold = {"warning": _num(warning), "critical": _num(critical)}
    number = _num(value)
    if number is None:
        status, message = "unknown", "%s: no value" % label
    else:
        def beyond(limit):
            if limit is None:
                return False
            return number >= limit if higher_is_worse else number <= limit

        word = "at or above" if higher_is_worse else "at or below"
        if beyond(threshold["critical"]):
            status = "critical"
            message = "%s %s is %s the critical threshold %s" % (label, _fmt(number, unit), word,
                                                                 _fmt(threshold["critical"], unit))
        elif beyond(threshold["warning"]):
            status = "warning"
            message = "%s %s is %s the threshold %s" % (label, _fmt(number, unit), word,
                                                        _fmt(threshold["warning"], unit))
        else:
            status = "ok"
            limit = threshold["warning"] if threshold["warning"] is not None else threshold["critical"]
            message = "%s %s is within the threshold%s" % (label, _fmt(number, unit),
                                                          "" if limit is None else " %s" % _fmt(limit, unit))
        value = number if not float(number).is_integer() or isinstance(value, float) else int(number)
    check = {"name": name, "status": status, "value": value if number is not None else None,
             "threshold": threshold, "message": message}
    if unit:
        check["unit"] = unit.strip()
    if component:
        check["component"] = component
    if severity and status in severity and severity[status]:
        check["severity"] = severity[status]
    if extra:
        check.update(extra)
    return check


def health_status(checks):
    """Overall status: the worst of the checks; unknown counts as warning."""
    worst = "ok"
    for check in checks or []:
        status = check.get("status", "unknown")
        if STATUS_ORDER.get(status, 1) > STATUS_ORDER[worst]:
            worst = status
    return "warning" if worst == "unknown" else worst


def health_severity(checks):
    """Runbook severity of a set of checks.

    P0 complete outage / database unavailable / 5xx > 50 %; P1 error rate 5-50 %, responses > 5 s, database
    connection issues; P2 any other warning or critical; P3 cosmetic (only unknown values); None when all ok.
    A non-ok check carries its meaning in ``severity`` (set by ``health_check`` or by the role); a non-ok
    check without one counts as P2 (warning/critical) or P3 (unknown).
    """
    worst = None
    for check in checks or []:
        status = check.get("status", "unknown")
        if status == "ok":
            continue
        severity = check.get("severity")
        if severity not in SEVERITY_ORDER:
            severity = "P3" if status == "unknown" else "P2"
        if worst is None or SEVERITY_ORDER[severity] > SEVERITY_ORDER[worst]:
            worst = severity
    return worst


def parse_metrics(text):
    """Prometheus text format -> list of (name, labels dict, value); samples that are no finite number left out."""
    return _metrics.parse_samples(text, finite_only=True)


def _window_sample(text, exclude_routes):
    samples = parse_metrics(text)
    process = _metrics.identity(samples) or {}
    return (_metrics.select_series(samples, {REQUESTS}, exclude_routes),
            _metrics.select_series(samples, {DURATION + "_bucket"}, exclude_routes), process.get("start_time"))


def health_metrics_window(first, second, seconds=None, quantile=0.95, exclude_routes=("/metrics",)):
    """5xx rate and latency quantile between two samples of a backend's /metrics text.

    Counters are cumulative, so only the deltas tell what happened in the window. Two samples from different
    processes (another replica behind the proxy, or a restart: ``process_start_time_seconds`` differs, or a
    request counter went backwards) cannot be compared and give no figures (``comparable=false``).
    ``exclude_routes`` leaves out scrapes of /metrics.
    """
    exclude = set(exclude_routes or [])
    req1, bkt1, start1 = _window_sample(first, exclude)
    req2, bkt2, start2 = _window_sample(second, exclude)
    comparable = (bool(req2) and (start1 is None or start2 is None or start1 == start2)
                  and not _metrics.went_backwards(req1, req2))
    out = {"source": "metrics", "window_seconds": _num(seconds), "requests": None, "errors_5xx": None,
           "error_rate_pct": None, "p95_seconds": None, "quantile": quantile, "comparable": comparable,
           "samples_parsed": bool(req1) and bool(req2)}
    if not comparable:
        if out["samples_parsed"]:
            out["metrics_reason"] = ("the two /metrics samples came from different backend processes (replicas "
                                     "behind the proxy, or a restart)")
        return out
    by_status = _metrics.request_deltas(req1, req2, REQUESTS)
    requests = sum(by_status.values())
    errors = sum(count for status, count in by_status.items() if str(status).startswith("5"))
    # Comparability is judged on the request counters only; a bucket that went down (another process with the
    # same start second) still subtracts here, as this filter always did (metrics_window floors it at 0).
    buckets = _metrics.bucket_deltas(bkt1, bkt2, DURATION, floor_at_zero=False)
    latency = histogram_quantile(quantile, buckets) if buckets else None
    out.update({
        "requests": int(requests),
        "errors_5xx": int(errors),
        "error_rate_pct": round(100.0 * errors / requests, 3) if requests > 0 else None,
        "p95_seconds": round(latency, 4) if latency is not None else None,
    })
    return out


def health_metrics_process(text):
    """process_start_time_seconds of a /metrics text (which process answered), or None."""
    for name, _labels, value in parse_metrics(text):
        if name == "process_start_time_seconds":
            return value
    return None


def health_prom_scalar(answer):
    """The single value of a Prometheus instant query answer (JSON), or None (no series, NaN, error)."""
    if not isinstance(answer, dict) or answer.get("status") != "success":
        return None
    data = answer.get("data") or {}
    result = data.get("result")
    if data.get("resultType") == "scalar":
        return _num((result or [None, None])[1])
    if not result:
        return None
    values = [v for v in map(_metrics.query_result_value, result) if v is not None]
    return max(values) if values else None


HTTP_COMPONENT = {"nginx_health": "nginx", "api_health": "backend", "api_health_https": "nginx"}
DEPENDENCY_COMPONENT = {"database": "postgres", "postgres": "postgres", "db": "postgres", "redis": "redis",
                        "cache": "redis"}


def _failing_dependencies(body):
    """Names of the failing dependencies in an /api/health JSON body ({checks: {database: {status, error}}})."""
    if not isinstance(body, dict) or not isinstance(body.get("checks"), dict):
        return []
    failing = []
    for name, detail in body["checks"].items():
        status = detail.get("status") if isinstance(detail, dict) else detail
        if str(status).lower() not in ("ok", "up", "healthy", "pass"):
            error = detail.get("error") if isinstance(detail, dict) else None
            failing.append((name, error))
    return failing


def health_http_checks(probes, latency_warning_s=None, latency_critical_s=None):
    """Status and latency checks from the http_probe results of nginx_health, api_health, api_health_https.

    Severity: the front door (/health) or the API not answering (no answer, 502, 504, 500) is a complete
    outage (P0), as is an /api/health 503 that blames the database; a 503 that blames another dependency
    (Redis) is P1; a slow answer (at or above the critical latency) is P1.
    """
    checks = []
    api_down = False
    for name in ("nginx_health", "api_health", "api_health_https"):
        probe = (probes or {}).get(name)
        if not probe:
            continue
        code = probe.get("status", -1)
        ok = bool(probe.get("ok"))
        component = HTTP_COMPONENT[name]
        answered = isinstance(code, int) and code > 0
        detail = "answered %s" % code if answered else "did not answer (%s)" % (probe.get("reason") or "no answer")
        message = "%s %s in %s ms" % (probe.get("url"), detail, probe.get("latency_ms"))
        check = {"name": name, "status": "ok" if ok else "critical", "value": code, "threshold": 200,
                 "message": message, "component": component, "latency_ms": probe.get("latency_ms"),
                 "url": probe.get("url")}
        if not ok:
            failing = _failing_dependencies(probe.get("json"))
            if name == "nginx_health":
                check["severity"] = "P0"
                check["message"] = "front door down: " + message
            elif code == 503 and failing:
                names = [DEPENDENCY_COMPONENT.get(n.lower(), n) for n, _ in failing]
                check["component"] = ", ".join(names)
                check["failing_dependencies"] = names
                check["message"] = "%s; failing: %s" % (message, "; ".join(
                    "%s (%s)" % (DEPENDENCY_COMPONENT.get(n.lower(), n), e or "error") for n, e in failing))
                check["severity"] = "P0" if "postgres" in names else "P1"
            elif name == "api_health" or api_down:
                check["severity"] = "P0"
                check["message"] = "API down: " + message
                api_down = True
            else:
                check["severity"] = "P1"
            if name == "api_health" and code in (-1, 500, 502, 504):
                api_down = True
        checks.append(check)
        if answered and probe.get("latency_ms") is not None:
            checks.append(health_check(round(probe["latency_ms"] / 1000.0, 4), name + "_latency", latency_warning_s,
                                       latency_critical_s, unit=" s", label="%s latency" % name,
                                       component=component, severity={"critical": "P1"}))
    return checks


def health_with_severity(check, mapping, statuses=("critical",)):
    """Attach the runbook severity ``mapping[name]`` to a check whose status is in ``statuses``."""
    check = dict(check)
    if check.get("status") in statuses and check.get("name") in (mapping or {}):
        check["severity"] = mapping[check["name"]]
    return check


def health_missing(checks, expected, reason):
    """Unknown checks for the expected names that ``checks`` lacks (a source that did not answer)."""
    present = {c.get("name") for c in checks or []}
    out = []
    for item in expected or []:
        if item["name"] not in present:
            out.append({"name": item["name"], "status": "unknown", "value": None,
                        "threshold": item.get("threshold"), "message": "%s not measured: %s" % (item["name"], reason),
                        "component": item.get("component")})
    return out


def health_traffic_checks(traffic, p95_warning_s=None, p95_critical_s=None, rate_warning_pct=None,
                          rate_critical_pct=None, rate_outage_pct=50.0, min_requests=0):
    """The error_rate_5xx and p95_latency checks from the traffic window the role measured.

    Severity: 5xx at or above ``rate_outage_pct`` is P0, at or above the critical threshold P1, above the
    warning threshold P2; p95 at or above the critical threshold (responses > 5 s) P1. Fewer than
    ``min_requests`` requests in the window are reported but not judged.
    """
    traffic = traffic or {}
    source = traffic.get("source")
    if source == "prometheus":
        where = "Prometheus, last %s" % traffic.get("window")
    elif source == "metrics":
        where = "two /metrics samples %s s apart" % traffic.get("window_seconds")
    else:
        where = "no source"
    reasons = [r for r in (traffic.get("prometheus_reason"), traffic.get("metrics_reason")) if r]
    requests = traffic.get("requests")
    errors = traffic.get("errors_5xx")
    measured = source == "prometheus" or (traffic.get("comparable") and not traffic.get("metrics_reason"))
    extra = {"source": source, "requests": requests, "errors_5xx": errors}

    rate = health_check(traffic.get("error_rate_pct"), "error_rate_5xx", rate_warning_pct, rate_critical_pct,
                        unit="%", label="5xx rate", component="backend", extra=extra)
    if rate["status"] == "unknown":
        rate["message"] = ("5xx rate: no requests in the window (%s)" % where if measured
                           else "5xx rate not measured: %s" % ("; ".join(reasons) or "no traffic data"))
    elif requests is not None and _num(requests) < _num(min_requests or 0) and rate["status"] != "ok":
        rate["status"] = "ok"
        rate["judged"] = False
        rate["message"] = ("5xx rate %s%% (%s of %s requests; %s) not judged: fewer than %s requests"
                           % (_fmt(rate["value"]), errors, requests, where, min_requests))
    else:
        rate["message"] += " (%s of %s requests; %s)" % (errors, requests, where)
        if rate["status"] in ("warning", "critical"):
            outage = _num(rate_outage_pct)
            rate["severity"] = ("P0" if outage is not None and rate["value"] >= outage
                                else "P1" if rate["status"] == "critical" else "P2")

    p95 = health_check(traffic.get("p95_seconds"), "p95_latency", p95_warning_s, p95_critical_s, unit=" s",
                       label="p95 latency", component="backend", severity={"critical": "P1"},
                       extra={"source": source})
    if p95["status"] == "unknown":
        p95["message"] = ("p95 latency: no requests in the window (%s)" % where if measured
                          else "p95 latency not measured: %s" % ("; ".join(reasons) or "no traffic data"))
    else:
        p95["message"] += " (%s)" % where
    return [rate, p95]


def checks_prefixed(checks, prefix, component=None):
    """Prefix check names (``liveness`` -> ``postgres_liveness``) and set a component where none is set."""
    out = []
    for check in checks or []:
        check = dict(check)
        if not str(check.get("name", "")).startswith(prefix):
            check["name"] = prefix + str(check.get("name"))
        if component and not check.get("component"):
            check["component"] = component
        out.append(check)
    return out


def health_metrics_probes(url, count, prefix="metrics_"):
    """``count`` http_probe requests of a /metrics ``url`` with their content, named ``prefix`` + 0, 1, ..."""
    return [{"name": "%s%d" % (prefix, i), "return_content": True, "url": url} for i in range(int(count))]


# The health check's parts in report order, and which of a part's result fields the report's results keep.
HEALTH_ORDER = ("http", "postgres", "redis", "logs", "traffic", "host", "compose")
HEALTH_RESULT_KEYS = {
    "http": ("nginx_health", "api_health", "api_health_https"),
    "postgres": ("available", "reason", "server", "connections", "liveness"),
    "redis": ("available", "reason", "server", "memory", "ping_ms"),
    "host": ("cpu", "memory", "load", "disks", "summary"),
    "compose": ("available", "reason", "summary", "services", "containers", "missing", "exited", "restarting",
                "unhealthy"),
}
# Compose checks per section: service states and restarts (services), the CPU/memory sample (containers).
COMPOSE_KINDS = {"services": ("service", "restarts"), "containers": ("cpu", "memory")}
# The Key Metrics whose figures an all-ok summary line names.
KEY_METRICS = ("p95_latency", "error_rate_5xx", "host_cpu", "host_memory", "host_disk", "postgres_connections")


def _ran(gathered, part):
    return isinstance((gathered or {}).get(part), dict)


def health_combine(gathered, selected, http_checks=None, traffic_checks=None):
    """Every selected section's checks, in report order (http, postgres, redis, logs, traffic, host, compose).

    ``gathered`` is the health_gather result: each part brings its checks judged by its module
    (``report_checks``, also for a part that failed). The http checks (``health_http_checks``) and the traffic
    checks (``health_traffic_checks``) are judged here from the probes. Of the compose checks the selected
    sections keep theirs: ``service:``/``restarts:`` (services), ``cpu:``/``memory:`` (containers).
    """
    selected = set(selected or [])
    gathered = gathered or {}
    checks = []
    for section in HEALTH_ORDER:
        if section == "http":
            checks.extend((http_checks or []) if "http" in selected else [])
        elif section == "traffic":
            checks.extend((traffic_checks or []) if "traffic" in selected else [])
        elif section == "compose":
            kinds = {k for s, ks in COMPOSE_KINDS.items() if s in selected for k in ks}
            if kinds and _ran(gathered, "compose"):
                checks.extend(c for c in gathered["compose"].get("report_checks") or []
                              if c.get("name") == "compose" or str(c.get("name")).partition(":")[0] in kinds)
        elif section in selected and _ran(gathered, section):
            checks.extend(gathered[section].get("report_checks") or [])
    return [dict(c) for c in checks]


def health_results(gathered, selected, traffic=None):
    """The raw figures of the report (``results``), per selected section: a few fields of each part."""
    selected = set(selected or [])
    gathered = gathered or {}
    out = {}
    for section in HEALTH_ORDER:
        if section == "traffic":
            if "traffic" in selected:
                out["traffic"] = traffic or {}
            continue
        part = gathered.get(section) or {}
        if section == "http":
            wanted = "http" in selected
            part = part.get("probes") or {}
        elif section == "compose":
            wanted = "services" in selected or "containers" in selected
        elif section == "logs":
            if "logs" in selected:
                out["logs"] = part.get("logs") or {}
            continue
        else:
            wanted = section in selected
        if wanted:
            out[section] = {k: v for k, v in part.items() if k in HEALTH_RESULT_KEYS[section]}
    return out


def health_summary(checks):
    """One line: the severity and every problem's message (critical, then warning, then unknown), or, when all
    are ok, their number and the Key Metrics' figures."""
    checks = checks or []
    problems = [c.get("message") for status in ("critical", "warning", "unknown")
                for c in checks if c.get("status") == status]
    if problems:
        return "%s: %s" % (health_severity(checks) or "ok", "; ".join(str(p) for p in problems))
    figures = [re.sub(r" is within the threshold.*$", "", str(c.get("message"))) for c in checks
               if c.get("name") in KEY_METRICS and c.get("value") is not None]
    return "all %d checks ok%s" % (len(checks), " (%s)" % ", ".join(figures) if figures else "")


class FilterModule:
    def filters(self):
        return {
            "health_check": health_check,
            "health_status": health_status,
            "health_severity": health_severity,
            "health_metrics_window": health_metrics_window,
            "health_metrics_process": health_metrics_process,
            "health_prom_scalar": health_prom_scalar,
            "health_http_checks": health_http_checks,
            "health_with_severity": health_with_severity,
            "health_traffic_checks": health_traffic_checks,
            "checks_prefixed": checks_prefixed,
            "health_missing": health_missing,
            "health_combine": health_combine,
            "health_results": health_results,
            "health_summary": health_summary,
            "health_metrics_probes": health_metrics_probes,
        }
