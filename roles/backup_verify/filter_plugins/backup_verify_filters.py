# Filters of the backup_verify role: what a restore drill's outcome means (the drill record of the report, its
# checks, ok / problem and the action line), from the registered backup_restore result, the failure its rescue
# caught, or the quick verification that kept it from starting. Tested in tests/unit/test_backup_verify_filters.py.
from __future__ import annotations


def _check(name, status, value, threshold, message):
    return {"name": name, "component": "postgres", "status": status, "value": value, "threshold": threshold,
            "message": message}


def backup_verify_selected(selected):
    """The report's view of the backup backup_catalog selected: name, created, age_hours, size_bytes, sha256, path
    ({} when none was found)."""
    if not selected:
        return {}
    return {"name": selected.get("name"), "created": selected.get("created"), "age_hours": selected.get("age_hours"),
            "size_bytes": selected.get("size_bytes"), "sha256": (selected.get("manifest") or {}).get("sha256"),
            "path": (selected.get("paths") or {}).get("dump")}


def backup_verify_drill_outcome(restore, failure, backup, scratch_db, check_mode, started, problem=None):
    """The drill's outcome: {drill, checks, ok, problem, actions}.

    ``restore`` is the registered backup_restore result, ``failure`` the failed result the rescue caught (or None),
    ``backup`` the verified backup (backup_verify_backup), ``started`` whether the quick verification let the drill
    start (when not, ``problem`` is why)."""
    backup = backup or {}
    check_mode = bool(check_mode)
    if not started:
        drill = {"backup": backup.get("name"), "scratch_database": scratch_db, "check_mode": check_mode,
                 "restored": False, "counts_match": None, "tables": [], "analyzed": False, "dropped": False,
                 "timings": {}, "error": problem}
        return {"drill": drill, "ok": False, "problem": problem, "actions": [],
                "checks": [_check("drill_restore", "critical", None, None, f"restore drill not run: {problem}")]}
    base = {"backup": backup.get("name"), "backup_created": backup.get("created"), "scratch_database": scratch_db,
            "check_mode": check_mode}
    if failure is not None:
        error = failure["msg"] if "msg" in failure else "the restore failed"
        drill = dict(base, restored=False, counts_match=failure.get("counts_match"),
                     tables=failure.get("tables") or [], analyzed=False, dropped=failure.get("dropped", False),
                     timings=failure.get("timings", {}), error=error)
        message = f"restore drill of {backup.get('name')} into {scratch_db} failed: {error}"
        return {"drill": drill, "ok": False, "problem": f"restore drill of {backup.get('name')} failed: {error}",
                "actions": [], "checks": [_check("drill_restore", "critical", None, None, message)]}
    tables = restore.get("tables") or []
    counts_match = restore.get("counts_match")
    dropped = restore.get("dropped")
    drill = dict(base, restored=not check_mode, counts_match=counts_match, tables=tables, analyzed=not check_mode,
                 dropped=dropped, timings=restore.get("timings"), error=None)
    checks = list(restore.get("checks") or [])
    if not check_mode:
        checks.append(_check("drill_scratch_dropped", "ok" if dropped else "warning", dropped, True,
                             f"scratch database {scratch_db}" + (" dropped" if dropped else " NOT dropped")))
    ok = check_mode or bool(counts_match)
    mismatched = ", ".join(str(t.get("table")) for t in tables if not t.get("match"))
    if check_mode:
        detail = restore.get("msg")
    else:
        restore_s = (restore.get("timings") or {}).get("restore_s")
        verdict = "all match" if counts_match else "MISMATCH"
        detail = (f"restored {backup.get('name')} into {scratch_db} in {restore_s}s, compared {len(tables)} row "
                  f"counts ({verdict}), ANALYZE, "
                  "dropped it")
    return {"drill": drill, "checks": checks, "ok": ok,
            "problem": None if ok else f"row counts of the restored backup differ from its manifest: {mismatched}",
            "actions": [{"name": "restore_drill", "changed": False, "detail": detail}]}


def backup_verify_drill_line(drill, ok, problem):
    """The one line the drill shows: table restored manifest for each table, or why it failed."""
    if not ok:
        return f"RESTORE DRILL FAILED: {problem}"
    counts = ", ".join(f"{t.get('table')} {t.get('actual')} {t.get('expected')}" for t in drill.get("tables") or [])
    return f"restore drill of {drill.get('backup')}: {counts} (table restored manifest)"


class FilterModule:
    def filters(self):
        return {"backup_verify_selected": backup_verify_selected,
                "backup_verify_drill_outcome": backup_verify_drill_outcome,
                "backup_verify_drill_line": backup_verify_drill_line}
