# Jinja's and Ansible's filters as plain Python, for the role filter plugins that took over decisions written in
# Jinja before (roles/*/filter_plugins): one definition of each, so a check's message is cut, a count is read and a
# list is de-duplicated exactly as the template did. Pure functions; the controller reaches them through
# marketplace_controller.py.
from __future__ import annotations

LEEWAY = 5  # Jinja's default leeway of truncate


def text(value) -> str:
    """Jinja's ``~``: str() of anything (None is 'None')."""
    return "%s" % (value,)


def truncate(value, length=255, killwords=False, end="...", leeway=LEEWAY) -> str:
    """Jinja's ``truncate``: a text up to ``length + leeway`` stays whole; a longer one is cut to
    ``length - len(end)`` (at the last word boundary unless ``killwords``) and ends in ``end``."""
    value = text(value)
    if len(value) <= length + leeway:
        return value
    if killwords:
        return value[: length - len(end)] + end
    return value[: length - len(end)].rsplit(" ", 1)[0] + end


def to_int(value, default=0) -> int:
    """Jinja's ``int``: a number, a numeric string (also '2.5'), else the default."""
    try:
        return int(value)
    except (TypeError, ValueError):
        try:
            return int(float(value))
        except (TypeError, ValueError):
            return default


def to_float(value, default=0.0) -> float:
    """Jinja's ``float``."""
    try:
        return float(value)
    except (TypeError, ValueError):
        return default


def to_bool(value) -> bool:
    """Ansible's ``bool`` (ansible-core 2.19): yes/on/true/1 and no/off/false/0 in any case; anything else is
    ``value == 1`` (what the filter still does for other values, with a deprecation warning)."""
    check = value.lower() if isinstance(value, str) else str(value).lower() if isinstance(value, int) else value
    try:
        if check in ("yes", "on", "true", "1"):
            return True
        if check in ("no", "off", "false", "0"):
            return False
        return check == 1
    except TypeError:
        return False


def unique(items) -> list:
    """Jinja's ``unique`` (first occurrence kept, order kept, unhashable items too)."""
    out = []
    for item in items:
        if item not in out:
            out.append(item)
    return out
