"""The logs role's report pieces from compose_logs' result: one check per service (lines read, error or matching
lines, lines written, the file) and the summary printed by the play. Plain data in, plain data out
(tests/unit/test_logs_filters.py)."""
from __future__ import annotations

import importlib.util
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

_truncate = _jinja.truncate


def _logs(logs) -> list:
    """compose_logs' `logs` (service -> log) sorted by service, as dictsort does."""
    return sorted((logs or {}).items(), key=lambda item: str(item[0]).lower()) if isinstance(logs, Mapping) else []


def logs_checks(logs, log_dir, pattern="") -> list:
    """One report check per service: unknown when the service's log could not be read, else ok."""
    matching = bool(str(pattern or ""))
    out = []
    for service, log in _logs(logs):
        written = len(log["matches"] if matching else log["last_lines"])
        path = "%s/%s.log" % (log_dir, service)
        errors = log.get("errors") or []
        out.append({"name": "logs:%s" % service, "status": "unknown" if errors else "ok",
                    "value": log["match_count"], "threshold": None, "component": service,
                    "lines_scanned": log["lines_scanned"], "lines_written": written, "file": path,
                    "message": "%s: %d lines read, %d %s lines, %d written to %s%s" % (
                        service, log["lines_scanned"], log["match_count"], "matching" if matching else "error",
                        written, path, ("; unreadable: " + ", ".join(map(str, errors))) if errors else "")})
    return out


def logs_summary_text(logs, log_dir, pattern="", last=3) -> list:
    """The lines the play prints: per service its counts (and, without a pattern, the count per error pattern)
    and its last `last` error or matching lines, then where the files are."""
    matching = bool(str(pattern or ""))
    out = []
    for service, log in _logs(logs):
        counts = ""
        if not matching and log["match_count"] > 0:
            hits = [(k, v) for k, v in (log.get("pattern_counts") or {}).items() if v]
            counts = " (" + ", ".join("%s: %s" % (k, v) for k, v in hits) + ")"
        out.append("%s: %d lines, %d %s%s" % (service, log["lines_scanned"], log["match_count"],
                                              "matching" if matching else "errors", counts))
        out.extend("    " + _truncate(line, 240) for line in log["matches"][-int(last):])
    out.append("files: %s" % log_dir)
    return out


class FilterModule:
    def filters(self):
        return {"logs_checks": logs_checks, "logs_summary_text": logs_summary_text}
