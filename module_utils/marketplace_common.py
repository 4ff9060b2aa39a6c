# Shared helpers for the Equipment Marketplace runbook modules: check results with thresholds,
# JSON-safe conversion and small validation helpers. Imported by modules as
# `from ansible.module_utils.marketplace_common import ...`.
from __future__ import annotations

import datetime
import decimal
import ipaddress
import math
import uuid

STATUS_ORDER = {"ok": 0, "unknown": 1, "warning": 2, "critical": 3}


def worst_status(statuses):
    """The most severe of an iterable of statuses ('ok' when empty)."""
    worst = "ok"
    for status in statuses:
        if STATUS_ORDER.get(status, 1) > STATUS_ORDER[worst]:
            worst = status
    return worst


def check(status, value, threshold, message):
    """One check result in the shape every module and report uses."""
    return {"status": status, "value": json_safe(value), "threshold": json_safe(threshold), "message": message}


def threshold_check(value, warning=None, critical=None, higher_is_worse=True, unit="", label="value"):
    """Compare a value with warning/critical thresholds and build a check.

    higher_is_worse=False flips the comparison (for ratios such as a cache hit ratio).
    A None value gives status 'unknown'.
    """
    threshold = {"warning": warning, "critical": critical}
    if value is None:
        return check("unknown", None, threshold, "%s unavailable" % label)

    def beyond(limit):
        if limit is None:
            return False
        return value >= limit if higher_is_worse else value <= limit

    shown = _fmt(value, unit)
    if beyond(critical):
        return check("critical", value, threshold, "%s %s is %s critical threshold %s"
                     % (label, shown, "at or above" if higher_is_worse else "at or below", _fmt(critical, unit)))
    if beyond(warning):
        return check("warning", value, threshold, "%s %s is %s warning threshold %s"
                     % (label, shown, "at or above" if higher_is_worse else "at or below", _fmt(warning, unit)))
    return check("ok", value, threshold, "%s %s is within thresholds" % (label, shown))


def _fmt(value, unit):
    if isinstance(value, float):
        text = ("%.2f" % value).rstrip("0").rstrip(".")
    else:
        text = str(value)
    return text + unit


def json_safe(value):
    """Convert database and SDK values (Decimal, timedelta, datetime, bytes, UUID, sets) to JSON types."""
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, decimal.Decimal):
        if not value.is_finite():
            return None
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, datetime.timedelta):
        return round(value.total_seconds(), 3)
    if isinstance(value, (datetime.datetime, datetime.date, datetime.time)):
        return value.isoformat()
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value).decode("utf-8", errors="replace")
    if isinstance(value, (uuid.UUID, ipaddress.IPv4Address, ipaddress.IPv6Address,
                          ipaddress.IPv4Network, ipaddress.IPv6Network)):
        return str(value)
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [json_safe(v) for v in value]
    return str(value)


def validate_non_negative(module, params, names):
    """fail_json (changing nothing) when any of the named numeric options is negative."""
    bad = [n for n in names if params.get(n) is not None and params[n] < 0]
    if bad:
        module.fail_json(msg="option(s) must not be negative: %s" % ", ".join(sorted(bad)))


def validate_choices_list(module, values, allowed, option):
    """fail_json for unknown entries of a list option (e.g. sections)."""
    unknown = [v for v in (values or []) if v not in allowed]
    if unknown:
        module.fail_json(msg="unknown %s: %s (choose from %s)"
                         % (option, ", ".join(map(str, unknown)), ", ".join(sorted(allowed))))
