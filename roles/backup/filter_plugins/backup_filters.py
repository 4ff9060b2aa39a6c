# Filters of the backup role: what each step's module result means for the report (the action line, the
# checks) and the role's outcome (name, paths, status, summary). The tasks register the module results; these
# filters turn them into the role's facts, so the wording lives in one tested place (tests/unit/test_backup_filters.py).
from __future__ import annotations

CONFIRM_HINT = "rerun with -e confirm=true"


def _ran(result):
    """True when ``result`` is the registered result of a module run that finished (not skipped, not failed)."""
    return isinstance(result, dict) and bool(result) and not result.get("skipped") and not result.get("failed")


def backup_step(result, step, confirmed, database=""):
    """The action entry ({name, changed, detail}) of one step (dump, retention, offsite); None when it did not run."""
    if not _ran(result):
        return None
    confirmed = bool(confirmed)
    if step == "dump":
        if confirmed:
            manifest = result.get("manifest") or {}
            detail = (f"dumped {database} to {result['paths']['dump']} ({manifest.get('size_bytes')} bytes, sha256 "
                      f"{manifest.get('sha256')}) {result.get('tools')}; leftovers removed: "
                      f"{len(result.get('leftovers_removed') or [])}")
        else:
            detail = (f"not confirmed: {result.get('msg')}, verify it with pg_restore -l and commit it with a sha256 "
                      f"and a manifest; {CONFIRM_HINT}")
        return {"name": "backup_dump", "changed": confirmed, "detail": detail}
    if step == "retention":
        leftovers = result.get("leftovers_removed") or []
        detail = "" if confirmed else "not confirmed: would apply the retention; "
        detail += str(result["checks"][0]["message"])
        if leftovers:
            detail += "; leftovers removed: " + ", ".join(str(x) for x in leftovers)
        return {"name": "backup_retention", "changed": bool(result.get("changed")), "detail": detail}
    if step == "offsite":
        prefix = "" if confirmed else (f"not confirmed: would upload the new backup to {result.get('location')} "
                                       "and verify it there; ")
        detail = prefix + "; ".join(str(c.get("message")) for c in result.get("checks") or [])
        return {"name": "backup_offsite", "changed": bool(result.get("changed")), "detail": detail}
    raise ValueError(f"unknown backup step {step!r}")


def backup_outcome(results, confirmed, database="", failure=None):
    """The role's outcome from the registered results of its steps (a dict step -> result, in order) and the
    failure recorded by its rescue ({task, error} or None): checks, actions, name, manifest, paths, committed,
    failed, error, severity and summary."""
    confirmed = bool(confirmed)
    checks, actions = [], []
    for step, result in (results or {}).items():
        action = backup_step(result, step, confirmed, database)
        if action is not None:
            checks.extend(result.get("checks") or [])
            actions.append(action)
    dump = (results or {}).get("dump")
    dumped = _ran(dump)
    out = {
        "checks": checks,
        "actions": actions,
        "name": dump.get("name") if dumped else None,
        "manifest": dump.get("manifest") or {} if dumped else {},
        "paths": dump.get("paths") or {} if dumped else {},
        "committed": confirmed and dumped,
        "failed": failure is not None,
        "error": None,
    }
    if failure is not None:
        error = failure.get("error") or "the backup failed"
        out["error"] = error
        checks.append({"name": "backup", "component": "postgres", "status": "critical", "value": None,
                       "threshold": None, "message": f"{failure.get('task') or 'backup'}: {error}"})
        out["severity"] = "P2"
        out["summary"] = f"backup FAILED: {error}"
    else:
        out["severity"] = None
        out["summary"] = (f"backup {out['name']} taken, verified and committed" if confirmed
                          else f"not confirmed: nothing was changed ({CONFIRM_HINT})")
    return out


class FilterModule:
    def filters(self):
        return {"backup_step": backup_step, "backup_outcome": backup_outcome}
