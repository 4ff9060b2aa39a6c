"""Decisions of the maintenance role: each step's module results turned into report checks (and, for the acting
steps, the report's action), and the run's overall status, severity and summary.

Every filter takes what the step's tasks registered and returns plain data in the report's shape
({name, step, component, status, value, threshold, message, ...}); the task files only gather, act and append.
"""
from __future__ import annotations

import importlib.util
import json
import re
from datetime import UTC, datetime
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

GIB = 1073741824
MIB = 1048576
_INST = re.compile(r"^Inst (\S+) .*$")
_ROOT_USER = re.compile(r"^(root|0)?(:.*)?$")
PRUNE_ACTION = "Prune dangling images and build cache, never volumes (acts every run)"
ANALYZE_ACTION = "ANALYZE the database (acts every run)"


def _truncate(text, length=200, end="..."):
    """Jinja's truncate(length, true): cut at the length, not at a word."""
    return _jinja.truncate(text, length, True, end)


def _level(value, warning, critical):
    return "critical" if value >= critical else ("warning" if value >= warning else "ok")


def _unknown(name, step, component, message, **extra):
    return {"name": name, "step": step, "component": component, "status": "unknown", **extra,
            "value": None, "threshold": None, "message": message}


def _head(names, limit=15):
    names = list(names)
    return ", ".join(str(n) for n in names[:limit]) + (" ..." if len(names) > limit else "")


# --- daily ------------------------------------------------------------------------------------------------------
def maintenance_smoke_checks(login, me, listing, user, path):
    """The request path through nginx: login, authenticated request, cached listing read twice."""
    login, me = login or {}, me or {}
    login_status = int(login.get("status", -1))
    token = (login.get("json") or {}).get("token") or ""
    login_ok = login_status == 200 and len(token) > 0
    answered = ("%s%s" % (login_status, " with a token" if login_ok else " without a token")) if login_status > 0 \
        else "nothing (%s)" % login.get("msg", "no answer")
    me_status = int(me.get("status", -1))
    me_email = ((me.get("json") or {}).get("user") or {}).get("email") or ""
    me_ok = me_status == 200 and me_email == user
    if "status" in me:
        me_message = "GET /api/me with the token answered %s%s" % (
            me_status, (" for " + me_email) if me_ok else " (not the smoke user)")
    else:
        me_message = "GET /api/me not tried: the login gave no token"
    reads = (listing or {}).get("results") or []
    codes = [int(r.get("status", -1)) for r in reads]
    cache = [r.get("x_cache", "none") for r in reads]
    listing_status = "critical" if any(c != 200 for c in codes) else ("ok" if cache[1] == "HIT" else "warning")
    tail = "" if listing_status == "ok" else ("; the second read was not served from the cache"
                                              if listing_status == "warning" else "; the listing endpoint failed")
    return [
        {"name": "smoke_login", "step": "smoke", "component": "backend", "status": "ok" if login_ok else "critical",
         "value": login_status, "threshold": 200,
         "message": "POST /api/auth/login as %s through nginx answered %s" % (user, answered)},
        {"name": "smoke_authenticated_request", "step": "smoke", "component": "backend",
         "status": "ok" if me_ok else "critical", "value": me_status, "threshold": 200, "message": me_message},
        {"name": "smoke_listing_cache", "step": "smoke", "component": "redis", "status": listing_status,
         "value": cache[1], "threshold": "HIT",
         "message": "GET %s twice through nginx: %s (%s), then %s (%s)%s" % (path, codes[0], cache[0], codes[1],
                                                                             cache[1], tail)},
    ]


def maintenance_disk_checks(mounts, paths, warning, critical):
    """One check per file system holding one of `paths` (space and inodes, the worse one judged)."""
    warning, critical = float(warning), float(critical)
    holder = {}
    for path in paths:
        for fs in sorted(mounts or [], key=lambda m: m["mount"]):
            if re.match(fs["mount"].rstrip("/") + "/", str(path) + "/"):
                holder[path] = fs  # the longest matching mount point sorts last
    groups = {}
    for path, fs in holder.items():
        groups.setdefault(fs["mount"], []).append((path, fs))
    checks = []
    for mount in sorted(groups):
        fs = groups[mount][0][1]
        on = [p for p, _ in groups[mount]]
        total, free = fs["size_total"], fs["size_available"]
        used_pct = round(100.0 * (total - free) / total, 1) if total > 0 else 0.0
        inode_pct = round(100.0 * fs["inode_used"] / fs["inode_total"], 1) if fs.get("inode_total", 0) > 0 else 0.0
        checks.append({
            "name": "disk:%s" % mount, "step": "disk", "component": "host",
            "status": _level(max(used_pct, inode_pct), warning, critical), "value": float(used_pct),
            "threshold": {"warning": warning, "critical": critical}, "inodes_pct": float(inode_pct), "paths": on,
            "message": "%s (%s): %s%% used, %s GiB free of %s GiB; inodes %s%% used" % (
                mount, ", ".join(on), used_pct, round(free / GIB, 1), round(total / GIB, 1), inode_pct)})
    return checks


def maintenance_log_checks(result, window, warning, critical):
    """Error lines per service in the log window (compose_logs), or why the logs could not be read."""
    result = result or {}
    if not result.get("available"):
        return [_unknown("log_review", "logs", "docker",
                         "the logs could not be read: %s" % result.get("reason", "unknown reason"))]
    checks = []
    for service, found in (result.get("logs") or {}).items():
        count = int(found["match_count"])
        matches = found.get("matches") or []
        last = ("; last: " + _truncate(matches[-1])) if count > 0 and matches else ""
        checks.append({
            "name": "log_review:%s" % service, "step": "logs", "component": service,
            "status": _level(count, int(warning), int(critical)), "value": count,
            "threshold": {"warning": int(warning), "critical": int(critical)},
            "lines_scanned": int(found["lines_scanned"]), "last_errors": matches,
            "message": "%s error line(s) in %s line(s) of %s over the last %s%s" % (
                count, found["lines_scanned"], service, window, last)})
    return checks


# --- weekly -----------------------------------------------------------------------------------------------------
def _apt_inst(result):
    lines = [line for line in (result or {}).get("stdout_lines") or [] if line.startswith("Inst ")]
    names = sorted({_INST.sub(r"\1", line) for line in lines})
    security = sorted({_INST.sub(r"\1", line) for line in lines if "-security" in line})
    return names, security


def maintenance_os_plan(pending_result, packages, exclude):
    """Pending updates of an apt simulation and what to upgrade: {pending, security, targets, held}."""
    pending, security = _apt_inst(pending_result)
    wanted = pending if packages == "all" else list(packages or [])
    return {"pending": pending, "security": security,
            "targets": sorted({p for p in wanted if p not in exclude}),
            "held": [p for i, p in enumerate(wanted) if p in exclude and p not in wanted[:i]]}


def maintenance_os_record(plan, after_result, upgrade_result, packages, security_warning, apply, not_acting, how):
    """The os_updates check (what is still pending) and the action (upgraded, or what would be)."""
    if after_result and "stdout_lines" in after_result:
        left, left_security = _apt_inst(after_result)
    else:
        left, left_security = plan["pending"], plan["security"]
    targets, held = plan["targets"], plan["held"]
    check = {
        "name": "os_updates", "step": "os_updates", "component": "host",
        "status": "warning" if len(left_security) >= int(security_warning) else "ok", "value": len(left),
        "threshold": {"security_warning": int(security_warning)}, "security_updates": len(left_security),
        "pending": left,
        "message": "%d OS package update(s) pending, %d of them from the security archive%s" % (
            len(left), len(left_security), (": " + _head(left)) if left else "")}
    what = "%d package(s)%s%s" % (len(targets), (": " + _head(targets)) if targets else "",
                                  ("; held back: " + ", ".join(held)) if held else "")
    changed = bool((upgrade_result or {}).get("changed"))
    if not apply:
        detail = "%s: would upgrade %s; %s" % (not_acting, what, how)
    elif not targets:
        detail = "nothing selected to upgrade (maintenance_os_update_packages: %s)%s" % (
            json.dumps(packages), (", held back: " + ", ".join(held)) if held else "")
    else:
        detail = ("upgraded " if changed else "already up to date: ") + what
    return {"check": check, "action": {"name": "OS package updates", "changed": changed, "detail": detail}}


def maintenance_prune_record(before, pruned, options, apply, not_acting, how):
    """The docker_reclaimable check and the prune action; or, when Docker could not be asked, an unknown check.

    options: {builder_cache, containers, networks} (the maintenance_prune_* switches).
    Returns {checks, actions}."""
    before, pruned = before or {}, pruned or {}
    if not before.get("can_talk_to_docker"):
        return {"checks": [_unknown("docker_reclaimable", "docker_prune", "docker",
                                    "the Docker daemon could not be asked: %s" % before.get("msg", "unknown error"))],
                "actions": []}
    builder, containers, networks = (bool(options.get(k)) for k in ("builder_cache", "containers", "networks"))
    dangling = before.get("images") or []
    dangling_bytes = sum(i.get("Size", 0) for i in dangling)
    cache_bytes = ((before.get("disk_usage") or {}).get("BuilderSize") or 0) if builder else 0
    stopped = (before.get("containers") or []) if containers else []
    reclaimable_mb = round((int(dangling_bytes) + int(cache_bytes)) / MIB, 1)
    would = "remove %d dangling image(s) (%s MiB)%s%s%s; never volumes" % (
        len(dangling), round(int(dangling_bytes) / MIB, 1),
        (", the build cache (%s MiB)" % round(int(cache_bytes) / MIB, 1)) if builder else "",
        (", %d stopped container(s) outside the stack" % len(stopped)) if containers else "",
        ", unused networks outside the stack" if networks else "")
    if not apply:
        detail = "%s: would %s; %s" % (not_acting, would, how)
    else:
        removed = pruned.get("images") or []
        # docker_prune lists the engine's ImagesDeleted entries ({"Deleted": id} / {"Untagged": ref}).
        deleted = {e.get("Deleted") if isinstance(e, dict) else e for e in removed}
        reclaimed_mb = round((pruned.get("images_space_reclaimed", 0) + pruned.get("builder_cache_space_reclaimed", 0)
                              + pruned.get("containers_space_reclaimed", 0)) / MIB, 1)
        detail = ("removed %d dangling image(s) (%d image id(s) with their unused parent layers)%s%s, "
                  "reclaimed %s MiB; volumes untouched") % (
                     len({i["Id"] for i in dangling} & deleted), len(removed),
                     (", %d container(s)" % len(pruned.get("containers") or [])) if containers else "",
                     (", %d network(s)" % len(pruned.get("networks") or [])) if networks else "", reclaimed_mb)
    return {"checks": [{"name": "docker_reclaimable", "step": "docker_prune", "component": "docker", "status": "ok",
                        "value": float(reclaimable_mb), "threshold": None,
                        "message": "before the prune: %d dangling image(s) and build cache, %s MiB reclaimable" % (
                            len(dangling), reclaimable_mb)}],
            "actions": [{"name": PRUNE_ACTION, "changed": bool(pruned.get("changed")), "detail": detail}]}


def maintenance_analyze_record(plan, analyzed, apply, database, not_acting, how):
    """The analyze check and action. A failed listing or ANALYZE (no connection, wrong password, timeout) is a
    critical check and an action that says it failed - never "ok, 0 tables"."""
    res = (analyzed if apply else plan) or {}
    failed = bool(res.get("failed")) or ("tables" not in res and not res.get("skipped"))
    tables = res.get("tables") or []
    error = res.get("msg") or "unknown error"
    if failed:
        message = ("ANALYZE failed: %s" if apply else "could not list the tables ANALYZE would refresh: %s") % error
        detail = ("ANALYZE failed: %s" % error) if apply else "%s: ANALYZE of database %s not planned: %s; %s" % (
            not_acting, database, error, how)
    elif apply:
        message = "analysed %d table(s) of %s in %s s" % (len(tables), database,
                                                          round(float(res.get("duration_ms", 0)) / 1000, 1))
        detail = res.get("msg", "")
    else:
        message = "%d table(s) of %s to analyse" % (len(tables), database)
        detail = "%s: would ANALYZE database %s (%d user tables); %s" % (not_acting, database, len(tables), how)
    return {"check": {"name": "analyze", "step": "analyze", "component": "postgres",
                      "status": "critical" if failed else "ok", "value": len(tables), "threshold": None,
                      "message": message},
            "action": {"name": ANALYZE_ACTION, "changed": bool(apply and (analyzed or {}).get("changed")),
                       "detail": detail}}


# --- monthly ----------------------------------------------------------------------------------------------------
_unique = _jinja.unique


def maintenance_listener_checks(tcp, udp, expected, loopback):
    """Listeners nobody expects (critical on a non-loopback address) and expected ones that are not there."""
    listening = [{**x, "protocol": "tcp"} for x in tcp or []] + [{**x, "protocol": "udp"} for x in udp or []]
    expected = list(expected or [])
    unexpected = []
    for item in _unique(listening):
        port = int(item["port"])
        same_port = [e for e in expected if e.get("port") == port and "protocol" in e
                     and e["protocol"] == item["protocol"]]
        if item["protocol"] == "tcp":
            same_port += [e for e in expected if e.get("port") == port and "protocol" not in e]
        if any("address" in e and e["address"] in (item["address"], "*") for e in same_port):
            continue
        unexpected.append({"protocol": item["protocol"], "address": item["address"], "port": port,
                           "process": item.get("name", ""), "pid": item.get("pid", 0), "user": item.get("user", ""),
                           "exposed": item["address"] not in loopback,
                           "expected_as": ", ".join(str(e.get("service", "")) for e in same_port)})
    exposed = [u for u in unexpected if u["exposed"]]
    describe = ["%s %s:%s%s" % (u["protocol"], u["address"], u["port"],
                                (" (%s)" % u["process"]) if u["process"] else "") for u in unexpected]
    ports = [int(x["port"]) for x in listening]
    missing = [e for e in expected if "optional" not in e and e.get("port") not in ports] + \
        [e for e in expected if "optional" in e and not e["optional"] and e.get("port") not in ports]
    return [
        {"name": "listeners", "step": "listeners", "component": "host",
         "status": "critical" if exposed else ("warning" if unexpected else "ok"), "value": len(unexpected),
         "threshold": 0, "listening": len(listening), "unexpected": unexpected,
         "message": "%d listener(s), %d not expected%s%s" % (
             len(listening), len(unexpected),
             (", %d of them on a non-loopback address" % len(exposed)) if exposed else "",
             (": " + "; ".join(describe)) if unexpected else "")},
        {"name": "listeners_expected", "step": "listeners", "component": "host",
         "status": "warning" if missing else "ok", "value": len(missing), "threshold": 0, "missing": missing,
         "message": ("expected but not listening: " + ", ".join("%s:%s" % (e.get("service", ""), e.get("port"))
                                                                for e in missing))
         if missing else "every required expected listener is there"},
    ]


def _created(text):
    return datetime.strptime(str(text)[:19], "%Y-%m-%dT%H:%M:%S")


def maintenance_container_checks(stack, container_info, image_info, allowed, age_warning, age_critical, now=None):
    """Containers that start as root (no USER, or USER root/0) and the age of the images the stack runs.

    stack: compose_status result; container_info: the looped docker_container_info result; image_info: the
    docker_image_info result; now: naive UTC datetime (default: now)."""
    stack = stack or {}
    if not stack.get("available"):
        return [_unknown("root_containers", "containers", "docker",
                         "the Docker daemon could not be asked: %s" % stack.get("reason", "unknown error"))]
    now = now or datetime.now(UTC).replace(tzinfo=None)
    containers = stack.get("containers") or []
    infos = [r for r in (container_info or {}).get("results") or [] if r.get("exists")]
    names = [r["item"]["name"] for r in infos]
    users = [((r.get("container") or {}).get("Config") or {}).get("User") or "" for r in infos]
    rows = list(zip(names, [r["item"]["service"] for r in infos], users, strict=True))
    root_names = [n for n, _, u in rows if _ROOT_USER.match(u)]
    not_allowed = [n for n, s, u in rows if _ROOT_USER.match(u) and s not in allowed]
    ages = []
    for image in (image_info or {}).get("images") or []:
        tags = image.get("RepoTags") or []
        ages.append({"image": tags[0] if tags else image["Id"][:19], "id": image["Id"], "created": image["Created"],
                     "age_days": round((now - _created(image["Created"])).total_seconds() / 86400, 1),
                     "services": _unique(c["service"] for c in containers if c.get("image_id") == image["Id"])})
    ages.sort(key=lambda a: a["age_days"], reverse=True)
    oldest = ages[0] if ages else {"image": "none", "age_days": 0.0}
    warning, critical = float(age_warning), float(age_critical)
    return [
        {"name": "root_containers", "step": "containers", "component": "docker",
         "status": "warning" if not_allowed else "ok", "value": root_names,
         "threshold": "none outside %s" % json.dumps(list(allowed)),
         "users": dict(zip(names, [u or "root (no USER)" for u in users], strict=True)),
         "message": "%d of %d container(s) start as root%s%s" % (
             len(root_names), len(names), (": " + ", ".join(root_names)) if root_names else "",
             ("; allowed: " + ", ".join(allowed)) if allowed else "")},
        {"name": "image_age", "step": "containers", "component": "docker",
         "status": _level(float(oldest["age_days"]), warning, critical), "value": float(oldest["age_days"]),
         "threshold": {"warning": warning, "critical": critical}, "images": ages,
         "message": "oldest image %s was built %s day(s) ago (%d image(s) in use by the stack)" % (
             oldest["image"], oldest["age_days"], len(ages))},
    ]


def maintenance_performance_checks(perf):
    """The performance review (postgres_health): slow queries, cache hit ratio, stale statistics, dead tuples and
    the tables never analysed; or one critical check when the database could not be reviewed."""
    perf = perf or {}
    if not perf.get("available"):
        return [{"name": "performance", "step": "performance", "component": "postgres", "status": "critical",
                 "value": None, "threshold": None,
                 "message": "the database could not be reviewed: %s" % perf.get("reason", "unknown error")}]
    where = {"step": "performance", "component": "postgres"}
    found = perf.get("checks") or {}
    slow = perf.get("slow_queries") or {}
    checks = []
    if "slow_queries" in found:
        checks.append({**found["slow_queries"], **where, "top_by_mean": slow.get("by_mean", []),
                       "top_by_total": slow.get("by_total", [])})
    checks += [{**value, **where} for key, value in found.items()
               if key in ("cache_hit_ratio", "stale_analyze", "dead_tuples")]
    stale = (perf.get("maintenance") or {}).get("stale_analyze") or []
    never = [t for t in stale if t.get("last_analyze", 0) is None and t.get("last_autoanalyze", 0) is None]
    tables = [t["table"] for t in never]
    checks.append({"name": "tables_never_analyzed", **where, "status": "warning" if never else "ok",
                   "value": len(never), "threshold": 0, "tables": tables,
                   "message": ("%d table(s) with changes were never analysed: %s" % (len(never), ", ".join(tables)))
                   if never else "every table with changes has been analysed at least once"})
    return checks


# --- the run ----------------------------------------------------------------------------------------------------
def maintenance_overall(checks, schedule, check_mode=False, health_severity=None):
    """{status, severity, summary} of the run. The smoke test's health check decides P0/P1 (outage, database
    down); any other warning or critical finding is P2; only unknown/skipped ones are P3."""
    statuses = [c["status"] for c in checks or []]
    status = "critical" if "critical" in statuses else (
        "warning" if ("warning" in statuses or "unknown" in statuses) else "ok")
    if health_severity in ("P0", "P1"):
        severity = health_severity
    else:
        severity = "P2" if ("critical" in statuses or "warning" in statuses) else (
            "P3" if "unknown" in statuses else None)
    findings = ["%s critical" % c["name"] for c in checks or [] if c["status"] == "critical"] + \
        ["%s warning" % c["name"] for c in checks or [] if c["status"] == "warning"]
    summary = "%s maintenance%s: %d check(s), %d ok, %d warning, %d critical, %d unknown%s%s" % (
        schedule, " (check mode)" if check_mode else "", len(statuses), statuses.count("ok"), statuses.count("warning"),
        statuses.count("critical"), statuses.count("unknown"), ("; " + "; ".join(findings[:6])) if findings else "",
        " ..." if len(findings) > 6 else "")
    return {"status": status, "severity": severity, "summary": summary}


class FilterModule:
    def filters(self):
        return {
            "maintenance_smoke_checks": maintenance_smoke_checks,
            "maintenance_disk_checks": maintenance_disk_checks,
            "maintenance_log_checks": maintenance_log_checks,
            "maintenance_os_plan": maintenance_os_plan,
            "maintenance_os_record": maintenance_os_record,
            "maintenance_prune_record": maintenance_prune_record,
            "maintenance_analyze_record": maintenance_analyze_record,
            "maintenance_listener_checks": maintenance_listener_checks,
            "maintenance_container_checks": maintenance_container_checks,
            "maintenance_performance_checks": maintenance_performance_checks,
            "maintenance_overall": maintenance_overall,
        }
