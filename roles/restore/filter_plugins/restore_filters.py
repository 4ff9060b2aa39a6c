# Filters of the restore role: what the registered results of its steps mean - the preflight's checks and plan,
# the actions and checks of the replacement (maintenance on, stop, restore, swap, or the failure its rescue
# caught), and of the application's return. The tasks gather and act; these decide the wording and the status.
# Tested in tests/unit/test_restore_filters.py.
from __future__ import annotations

import re

CONFIRM_HINT = "rerun with -e confirm=true"


def _ran(result):
    """True when ``result`` is the registered result of a task that finished (not skipped, not failed)."""
    return isinstance(result, dict) and bool(result) and not result.get("skipped") and not result.get("failed")


def _check(name, component, status, value, threshold, message):
    return {"name": name, "component": component, "status": status, "value": value, "threshold": threshold,
            "message": message}


def restore_preflight(verify, live, containers, maintenance_exists, names, options):
    """The preflight's facts from the backup verification (backup_catalog), the live database (backup_restore
    inspect), the running containers (docker_host_info per service) and the maintenance switch.

    ``names``: database, new_db, replaced_db, into (side by side target or ''). ``options``: maintenance (bool),
    maintenance_file, app_services, health_check (bool).
    Returns checks (to append), selected, failed, error, live_exists, live_state, kept_databases,
    running_services, container_names, maintenance_was_on and plan."""
    database = names["database"]
    ok = bool(verify.get("ok"))
    selected = verify.get("selected") if ok else None
    checks = list(verify.get("checks") or [])
    row_counts = ((selected or {}).get("manifest") or {}).get("row_counts") or {}
    for item in live.get("tables") or []:
        expected = row_counts.get(item["table"]) if selected else None
        error, actual = item.get("error"), item.get("actual")
        status = "warning" if error or (expected is not None and actual != expected) else "ok"
        message = f"{database}.{item['table']}: " + (f"ERROR {error}" if error else f"{actual} rows")
        if expected is not None:
            message += f", the backup has {expected}"
        checks.append(_check("current_rows_" + str(item["table"]).replace(".", "_"), "postgres", status, actual,
                             expected, message))
    exists = live.get("exists")
    kept = live.get("databases") or []
    if not exists:
        checks.append(_check("current_database", "postgres", "warning", False, True,
                             f"database {database} does not exist: the backup will be restored under its name"))
    if kept:
        kept_names = [d["name"] for d in kept]
        checks.append(_check("replaced_databases", "postgres", "ok", kept_names, None,
                             "databases kept by earlier restores (drop with db-restore.yml -e drop_replaced=NAME "
                             "-e confirm=true): " + ", ".join(kept_names)))
    running = [r for r in (containers or {}).get("results") or [] if r.get("containers")]
    container_names = [n[1:] if n.startswith("/") else n
                       for r in running for c in r["containers"] for n in (c.get("Names") or [])]
    out = {
        "checks": checks,
        "selected": selected,
        "failed": not ok,
        "error": f"{verify.get('problem')}; nothing was stopped or changed" if not ok else None,
        "live_exists": exists,
        "live_state": {"database": database, "exists": exists, "size_bytes": live.get("size_bytes"),
                       "sessions": live.get("sessions"), "tables": live.get("tables")},
        "kept_databases": kept,
        "running_services": [r["item"] for r in running],
        "container_names": container_names,
        "maintenance_was_on": bool(maintenance_exists),
    }
    out["plan"] = restore_plan(selected, names, options, container_names, bool(maintenance_exists), exists)
    return out


def restore_plan(selected, names, options, container_names, maintenance_was_on, live_exists):
    """The plan in words: which backup goes into which database, what is stopped, renamed and started."""
    if selected:
        backup = (f"backup {selected.get('name')} ({selected.get('created')}, {selected.get('size_bytes')} bytes, "
                  "verified)")
    else:
        backup = "no usable backup"
    database, new_db = names["database"], names["new_db"]
    if names.get("into"):
        plan = (f"restore {backup} into new database {new_db} beside {database} "
                "(no container is stopped, nothing is swapped)")
    else:
        services = ", ".join(options["app_services"])
        maintenance = bool(options.get("maintenance"))
        switch = (f"switch nginx to maintenance ({options['maintenance_file']}); "
                  if maintenance and not maintenance_was_on else "")
        stop = ", ".join(container_names) if container_names else f"no running containers of {services}"
        if live_exists:
            rename = (f"rename {database} to {names['replaced_db']} (kept until dropped) and {new_db} to {database}")
        else:
            rename = f"rename {new_db} to {database} (the live database is missing)"
        plan = f"restore {backup} into new database {new_db}; {switch}stop {stop}; {rename}; start {services}"
        plan += (", maintenance off" if maintenance else "") + (", health check" if options.get("health_check") else "")
    return re.sub(r"\s+", " ", plan).strip()


def restore_replacement(steps, failure, names, facts):
    """Actions and checks of the confirmed replacement from its registered steps (maintenance_on, stop, restore,
    swap) and the failure its rescue caught ({task, result} or None).

    ``facts``: selected (the backup), live_exists, maintenance_file, container_names.
    Returns checks and actions (to append), failed, error, swapped, swap_unknown and tables."""
    database, new_db, replaced_db = names["database"], names["new_db"], names["replaced_db"]
    checks, actions = [], []
    out = {"failed": False, "error": None, "swapped": False, "swap_unknown": False, "tables": []}
    if _ran(steps.get("maintenance_on")):
        actions.append({"name": "maintenance_on", "changed": True,
                        "detail": f"created {facts['maintenance_file']}: nginx answers 503 with the maintenance page"})
    if _ran(steps.get("stop")):
        actions.append({"name": "stop_app", "changed": True,
                        "detail": "stopped " + ", ".join(facts.get("container_names") or [])})
    restore = steps.get("restore")
    if _ran(restore):
        checks.extend(restore.get("checks") or [])
        out["tables"] = restore.get("tables")
        actions.append({"name": "restore", "changed": True, "detail": (
            f"restored {facts['selected']['name']} into {restore.get('target')} in "
            f"{(restore.get('timings') or {}).get('restore_s')}s; {len(restore.get('tables') or [])} row counts "
            "match the manifest; ANALYZE done")})
        swap = steps.get("swap")
        if failure is None or _ran(swap):
            out["swapped"] = True
            checks.extend((swap or {}).get("checks") or [] if _ran(swap) else [])
            if facts.get("live_exists"):
                detail = (f"renamed {database} to {replaced_db} (kept) and {new_db} to {database}; terminated "
                          f"{swap.get('terminated')} session(s)")
            else:
                detail = f"restored straight into {database} (it did not exist)"
            actions.append({"name": "swap", "changed": True, "detail": detail})
    if failure is not None:
        result = failure.get("result") or {}
        swap_failed = "step" in result
        error = f"{failure.get('task') or 'restore'}: {result['msg'] if 'msg' in result else 'failed'}"
        out.update(failed=True, swapped=swap_failed and result.get("swapped") is True,
                   swap_unknown=swap_failed and result.get("swapped") is None,
                   error=error + ("" if swap_failed else f"; {database} was not touched"))
        if swap_failed:
            checks.extend(result.get("checks") or [])
        else:
            checks.append(_check("restore", "postgres", "critical", None, None, f"{error}; {database} was not touched"))
    out.update(checks=checks, actions=actions)
    return out


def restore_app_back(steps, failure, facts):
    """Actions and checks of the application's return from its registered steps (healthy: the wait for healthy
    containers, maintenance_off) and the failure its rescue caught ({task, msg} or None), then the health check.

    ``facts``: app_services, maintenance_file, error (the restore's error so far), health_checks (None when the
    health check did not run), health_status, health_critical (so far).
    Returns checks and actions (to append), health_critical, app_failed and error."""
    checks, actions = [], []
    if _ran(steps.get("healthy")):
        actions.append({"name": "start_app", "changed": True,
                        "detail": f"started {', '.join(facts['app_services'])}: healthy"})
    if _ran(steps.get("maintenance_off")):
        actions.append({"name": "maintenance_off", "changed": True, "detail": f"removed {facts['maintenance_file']}"})
    critical = bool(facts.get("health_critical"))
    error = facts.get("error")
    if failure is not None:
        message = f"{failure.get('task') or 'start'}: {failure.get('msg')}"
        critical = True
        error = (f"{error}; " if error else "") + f"the application did not come back: {message}"
        checks.append(_check("app_restart", "backend", "critical", None, None, message))
    if facts.get("health_checks") is not None:
        checks.extend(facts["health_checks"])
        critical = critical or facts.get("health_status") == "critical"
    return {"checks": checks, "actions": actions, "health_critical": critical, "app_failed": failure is not None,
            "error": error}


def restore_status(failed, error, health_critical, confirmed, done_summary, plan):
    """The run's severity (P0 when the application is down after the restore, P1 when the restore failed) and
    its one-line summary."""
    severity = "P0" if health_critical else ("P1" if failed else None)
    if failed:
        summary = f"restore FAILED: {error}"
    elif confirmed:
        summary = done_summary if done_summary is not None else "nothing to do"
    else:
        summary = (f"not confirmed: nothing was stopped or changed; {plan if plan is not None else 'no plan'} "
                   f"({CONFIRM_HINT})")
    return {"severity": severity, "summary": summary}


class FilterModule:
    def filters(self):
        return {"restore_preflight": restore_preflight, "restore_plan": restore_plan,
                "restore_replacement": restore_replacement, "restore_app_back": restore_app_back,
                "restore_status": restore_status}
