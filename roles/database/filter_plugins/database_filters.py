"""The database role's report pieces from postgres_health's result: the one-line summary of db-status and the
slow-query lines it prints. Plain data in, plain data out (tests/unit/test_database_filters.py)."""
from __future__ import annotations

import importlib.util
import re
from collections.abc import Mapping
from pathlib import Path

from ansible import constants as C

# module_utils/<name>.py on the controller, through its one loader module_utils/marketplace_controller.py: beside
# this plugin in the repository, else in a module_utils path ansible is configured with.
_spec = importlib.util.spec_from_file_location("marketplace_controller", next((
    p for d in (Path(__file__).resolve().parents[3] / "module_utils", *(C.DEFAULT_MODULE_UTILS_PATH or ()))
    if (p := Path(d, "marketplace_controller.py")).is_file()), "(not found)/marketplace_controller.py"))
_spec.loader.exec_module(_loader := importlib.util.module_from_spec(_spec))
_module_utils = _loader.module_utils
_jinja = _module_utils("marketplace_jinja")

_WS = re.compile(r"\s+")


def _d(value) -> Mapping:
    return value if isinstance(value, Mapping) else {}


_truncate = _jinja.truncate


def database_summary(pg, active_queries=None) -> str:
    """'PostgreSQL <version> up <s> s; <db sizes>; <n> client backends of <usable> usable (<pct>%); <n> active,
    <n> long-running, <n> blocking pair(s); slow queries: ...', or why PostgreSQL is unavailable."""
    pg = _d(pg)
    if not bool(pg.get("available", False)):
        return "PostgreSQL unavailable: %s" % (pg.get("reason", "no answer"),)
    server, conn, slow = _d(pg.get("server")), _d(pg.get("connections")), _d(pg.get("slow_queries"))
    try:
        uptime = int(server.get("uptime_seconds", 0))
    except (TypeError, ValueError):
        uptime = 0
    sizes = ", ".join("%s %s" % (d.get("name"), d.get("size_pretty")) for d in pg.get("databases") or [])
    if slow.get("enabled", False):
        slow_text = "slow queries: %s listed" % len(slow.get("by_mean") or [])
    else:
        slow_text = "slow queries unavailable: %s" % (slow.get("reason", "not gathered"),)
    return ("PostgreSQL %s up %s s; %s; %s client backends of %s usable (%s%%); %s active, %s long-running,"
            " %s blocking pair(s); %s") % (
        server.get("version", "?"), uptime, sizes or "sizes not gathered", conn.get("client_backends", "?"),
        conn.get("usable", "?"), conn.get("pct", "?"), len(active_queries or []), len(pg.get("long_queries") or []),
        len(pg.get("blocking") or []), slow_text)


def database_slow_lines(pg) -> list:
    """One line per slow statement (by mean execution time): mean ms, calls, the query on one line."""
    return ["slow: %s ms mean, %s calls: %s" % (round(q["mean_exec_time_ms"], 1), q["calls"],
                                                _truncate(_WS.sub(" ", str(q.get("query", ""))), 160))
            for q in _d(_d(pg).get("slow_queries")).get("by_mean") or []]


class FilterModule:
    def filters(self):
        return {"database_summary": database_summary, "database_slow_lines": database_slow_lines}
