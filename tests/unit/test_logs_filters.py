"""The logs role's report pieces (roles/logs/filter_plugins/logs_filters.py): one check per service and the
printed summary, from compose_logs' result. No Docker."""
from __future__ import annotations

import importlib.util
from pathlib import Path

_PATH = Path(__file__).resolve().parents[2] / "roles" / "logs" / "filter_plugins" / "logs_filters.py"
_spec = importlib.util.spec_from_file_location("logs_filters", _PATH)
lf = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(lf)

LOGS = {
    "nginx": {"lines_scanned": 10, "match_count": 0, "matches": [], "last_lines": ["a", "b"], "errors": [],
              "pattern_counts": {"error\\b": 0, "fatal": 0}},
    "backend": {"lines_scanned": 40, "match_count": 3, "matches": ["e1", "e2", "x" * 300],
                "last_lines": ["l"] * 5, "errors": [], "pattern_counts": {"error\\b": 2, "fatal": 1, "panic": 0}},
    "Redis": {"lines_scanned": 0, "match_count": 0, "matches": [], "last_lines": [], "errors": ["b1: gone"],
              "pattern_counts": {}},
}


def test_one_check_per_service_sorted_by_name():
    checks = lf.logs_checks(LOGS, "/r/logs")
    assert [c["name"] for c in checks] == ["logs:backend", "logs:nginx", "logs:Redis"]
    backend = checks[0]
    assert backend == {"name": "logs:backend", "status": "ok", "value": 3, "threshold": None, "component": "backend",
                       "lines_scanned": 40, "lines_written": 5, "file": "/r/logs/backend.log",
                       "message": "backend: 40 lines read, 3 error lines, 5 written to /r/logs/backend.log"}
    assert checks[2]["status"] == "unknown" and checks[2]["message"].endswith("; unreadable: b1: gone")


def test_with_a_pattern_the_matching_lines_are_written():
    checks = lf.logs_checks(LOGS, "/r/logs", "failed login")
    assert checks[0]["lines_written"] == 3 and "3 matching lines, 3 written" in checks[0]["message"]


def test_the_printed_summary():
    lines = lf.logs_summary_text(LOGS, "/r/logs", "", 2)
    assert lines[0] == "backend: 40 lines, 3 errors (error\\b: 2, fatal: 1)"
    assert lines[1] == "    e2" and lines[2] == "    " + "x" * 237 + "..."
    assert lines[3] == "nginx: 10 lines, 0 errors" and lines[4] == "Redis: 0 lines, 0 errors"
    assert lines[-1] == "files: /r/logs"
    matching = lf.logs_summary_text(LOGS, "/r/logs", "e", 0)
    assert matching[0] == "backend: 40 lines, 3 matching" and len(matching) == 1 + 3 + 2 + 1
    assert lf.logs_summary_text({}, "/d") == ["files: /d"]
