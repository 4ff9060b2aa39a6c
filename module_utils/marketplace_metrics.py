# The Prometheus text exposition format and the arithmetic on it, shared by the metrics modules (app_metrics,
# metrics_window) and the checks role's filters: parsing, histogram_quantile interpolation, counter deltas
# between two samples of one process, and the value of a Prometheus HTTP API answer.
#
# Modules import it as `from ansible.module_utils.marketplace_metrics import ...` (AnsiballZ ships it with
# them). The filter plugin roles/checks/filter_plugins/marketplace_checks.py runs on the controller, where
# custom module_utils are not importable as ansible.module_utils.*; it loads this file by its path. So: pure
# functions, the standard library only, no ansible imports.
from __future__ import annotations

import math
import re

# name, optional {labels}, value, optional timestamp (any token: integer milliseconds in the text format,
# seconds with a fraction in OpenMetrics; it is not used).
SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)(?:\s+\S+)?$")
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)\s*=\s*"((?:[^"\\]|\\.)*)"')
ESCAPE = re.compile(r'\\([\\"n])')


def finite_number(value):
    """``value`` as a finite float; None for None, booleans, text that is no number, NaN and infinities."""
    if value is None or isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def unescape(value):
    """A label value as written in the text format -> the value (``\\\\``, ``\\"`` and ``\\n``, in one pass)."""
    return ESCAPE.sub(lambda m: "\n" if m.group(1) == "n" else m.group(1), value)


def parse_samples(text, finite_only=False):
    """Prometheus text format -> list of ``(name, labels dict, float value)``.

    Comments, blank lines and lines that are not samples are skipped. ``+Inf``, ``-Inf`` and ``NaN`` values are
    kept unless ``finite_only``. ``text`` may be None (no samples).
    """
    samples = []
    for line in (text or "").splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        match = SAMPLE.match(line)
        if not match:
            continue
        name, labels_text, raw = match.groups()
        try:
            value = float(raw)
        except ValueError:
            continue
        if finite_only and not math.isfinite(value):
            continue
        samples.append((name, {k: unescape(v) for k, v in LABEL.findall(labels_text or "")}, value))
    return samples


def histogram_quantile(q, buckets, none_if_unbounded=False):
    """Prometheus' histogram_quantile over cumulative bucket counts; None without observations.

    ``buckets`` is ``{le: count}`` or ``[(le, count)]`` in any order, ``le`` a number or its text (``"0.5"``,
    ``"+Inf"``). Linear interpolation inside the bucket that holds rank ``q * total`` (the lowest bucket starts
    at 0); a rank in the +Inf bucket gives the highest finite bound, as Prometheus does.

    When there is no bound to give - only a +Inf bucket, or no bucket reaches the rank (q > 1, NaN counts) - the
    answer is the last bound passed (0.0 when none), or None with ``none_if_unbounded``.
    """
    pairs = buckets.items() if hasattr(buckets, "items") else buckets
    ordered = sorted(((float(le), count) for le, count in pairs), key=lambda bucket: bucket[0])
    if not ordered:
        return None
    total = ordered[-1][1]
    if total <= 0:
        return None
    rank = q * total
    lower, lower_count, bounded = 0.0, 0.0, False
    for upper, count in ordered:
        if count >= rank:
            if math.isinf(upper):
                return None if none_if_unbounded and not bounded else lower
            if count == lower_count:
                return upper
            return lower + (upper - lower) * (rank - lower_count) / (count - lower_count)
        lower, lower_count, bounded = upper, count, True
    return None if none_if_unbounded else lower


# Two samples of one /metrics endpoint: counters are cumulative since the process started, so only the deltas
# between the samples say what happened in between - and only when both samples came from the same process.


def identity(samples):
    """``{start_time, version}`` of the process that answered (process_start_time_seconds, app_info), else None."""
    start = version = None
    for name, labels, value in samples:
        if name == "process_start_time_seconds":
            start = value
        elif name == "app_info" and "version" in labels:
            version = labels["version"]
    if start is None and version is None:
        return None
    return {"start_time": start, "version": version}


def series_key(name, labels):
    return name + "{" + ",".join("%s=%s" % kv for kv in sorted(labels.items())) + "}"


def select_series(samples, names, exclude_routes=()):
    """``{series key: (name, labels, value)}`` of the samples named in ``names``, less routes in ``exclude_routes``."""
    return {series_key(n, lab): (n, lab, v) for n, lab, v in samples
            if n in names and lab.get("route") not in exclude_routes}


def went_backwards(before, after):
    """Whether a series of both selections is lower in ``after`` (another process answered, or a restart)."""
    return any(key in after and after[key][2] < value for key, (_, _, value) in before.items())


def _deltas(before, after, name, exclude_routes):
    for key, (series_name, labels, value) in after.items():
        if series_name == name and labels.get("route") not in exclude_routes:
            yield labels, value - (before[key][2] if key in before else 0.0)


def request_deltas(before, after, metric, exclude_routes=()):
    """Requests between the samples per status code (``status`` or ``code`` label); a new series counts from 0."""
    by_status = {}
    for labels, delta in _deltas(before, after, metric, exclude_routes):
        if delta <= 0:
            continue
        status = labels.get("status", labels.get("code", "unknown"))
        by_status[status] = by_status.get(status, 0) + round(delta)
    return by_status


def bucket_deltas(before, after, metric, exclude_routes=(), floor_at_zero=True):
    """Cumulative histogram bucket counts between the samples, summed over series: ``{upper bound: count}``.

    ``metric`` is the histogram's name without ``_bucket``. A bucket that went down counts 0, or its negative
    delta with ``floor_at_zero=False``. Series without a numeric ``le`` are skipped.
    """
    buckets = {}
    for labels, delta in _deltas(before, after, metric + "_bucket", exclude_routes):
        try:
            upper = float(labels["le"])
        except (KeyError, ValueError):
            continue
        buckets[upper] = buckets.get(upper, 0.0) + (max(delta, 0.0) if floor_at_zero else delta)
    return buckets


def query_result_value(series):
    """The value of one series of a Prometheus HTTP API vector answer (``{"value": [time, "1.5"]}``) as a
    finite float; None when it is missing, no number, NaN or infinite."""
    try:
        return finite_number(series["value"][1])
    except (KeyError, IndexError, TypeError):
        return None
