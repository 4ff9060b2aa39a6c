"""The logs role's report pieces from compose_logs' result: one check per service (lines read, error or matching
lines, lines written, the file) and the summary printed by the play. Plain data in, plain data out
(tests/unit/test_logs_filters.py)."""
from __future__ import annotations

from collections.abc import Mapping


def _truncate(text, length: int, end: str = "...", leeway: int = 5) -> str:
    """Jinja's truncate filter (killwords=False, the default leeway of 5)."""
    text = str(text)
    if len(text) <= length + leeway:
        return text
    return text[: length - len(end)].rsplit(" ", 1)[0] + end


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
