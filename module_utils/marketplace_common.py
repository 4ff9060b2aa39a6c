# Shared helpers for the Equipment Marketplace runbook modules: check results with thresholds,
# JSON-safe conversion and small validation helpers. Imported by modules as
# `from ansible.module_utils.marketplace_common import ...`.
from __future__ import annotations

import datetime
import decimal
import ipaddress
import math
import re
import uuid
from collections.abc import Mapping
from urllib.parse import unquote

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


# --- Masking before any failure -------------------------------------------------------------------------------
# AnsibleModule learns the no_log values of its top-level options (and of sub-options declared with `options`)
# while it validates, but not the secrets in a dict option handled by hand (health_gather's parts), nor the
# password of a URL or a libpq conninfo string. early_no_log_values() finds them in the raw arguments, before any
# check can fail, so that every fail_json/exit_json (and its `invocation`) masks them.

# Keys whose values are secrets wherever they appear in a nested dict option (a part's login_password or its alias
# password, extra_secrets, an Authorization header, an API key...). tests/unit/test_masking.py checks that every
# no_log option of every module is matched.
SECRET_KEY = re.compile(r"pass(word|wd)?$|passphrase|secret|token|api[-_]?key|credential|private[-_]?key|"
                        r"authorization|cookie|session[-_]?id|access[-_]?key", re.I)
PASSWORD_KEY = re.compile(r"pass(word|wd)?$", re.I)
_URL_USERINFO = re.compile(r"[a-z][a-z0-9+.-]*://([^/@\s?#]*)@", re.I)
_CONNINFO_PASSWORD = re.compile(r"(?:^|[\s?&;])password\s*=\s*('(?:[^'\\]|\\.)*'|[^\s&;]+)", re.I)


def url_secrets(text):
    """The secrets written inside a string: the password of every URL's userinfo (``scheme://user:PASS@host``,
    as written and percent-decoded; a userinfo without ``:`` is a token and counts whole) and ``password=`` of a
    libpq conninfo or a URL query."""
    found = set()
    if not isinstance(text, str) or not text:
        return found
    for match in _URL_USERINFO.finditer(text):
        userinfo = match.group(1)
        secret = userinfo.partition(":")[2] if ":" in userinfo else userinfo
        if ":" not in userinfo and not re.match(r"(?i)(rediss?|https?)://", match.group(0)):
            secret = ""  # postgresql://user@host: a user name alone is no secret
        if secret:
            found.add(secret)
            found.add(unquote(secret))
    for match in _CONNINFO_PASSWORD.finditer(text):
        secret = match.group(1)
        if secret.startswith("'") and secret.endswith("'") and len(secret) >= 2:
            secret = re.sub(r"\\(.)", r"\1", secret[1:-1])
        if secret:
            found.add(secret)
            found.add(unquote(secret))
    return found


def _secret_values(value, found):
    """The strings that sit directly under a secret key: a string, or a list of strings (extra_secrets). A dict
    under such a key is data about a secret (container_env_check's {JWT_SECRET: {state: set, length: 64}}), and
    numbers and booleans are settings (token_ttl, password_set): masking those would blank every equal text or
    number in the result."""
    if isinstance(value, str):
        if value:
            found.add(value)
    elif isinstance(value, (list, tuple)):
        found.update(item for item in value if isinstance(item, str) and item)


def early_no_log_values(params, argument_spec=None):
    """The secrets in raw module arguments, found before any validation: the values of the spec's no_log options
    (and their aliases), every value under a secret-looking key of a nested dict, and the passwords written in
    URLs and conninfo strings anywhere. Nothing here can fail on a bad argument."""
    found = set()
    names = set()
    for name, spec in (argument_spec or {}).items():
        if isinstance(spec, Mapping) and spec.get("no_log"):
            names.add(name)
            names.update(spec.get("aliases") or ())

    def walk(value, top):
        if isinstance(value, Mapping):
            for key, item in value.items():
                if (top and key in names) or (not top and isinstance(key, str) and SECRET_KEY.search(key)):
                    _secret_values(item, found)
                    if (isinstance(item, (int, float)) and not isinstance(item, bool) and isinstance(key, str)
                            and PASSWORD_KEY.search(key)):
                        found.add(str(item))  # login_password: 12345 in YAML is a password all the same
                walk(item, False)
        elif isinstance(value, (list, tuple, set, frozenset)):
            for item in value:
                walk(item, False)
        elif isinstance(value, str):
            found.update(url_secrets(value))

    walk(params if isinstance(params, Mapping) else {}, True)
    found.discard("")
    return found
