# Decisions of the incident role, in Python so they are unit-tested (tests/unit/test_incident_filters.py). The
# tasks gather (modules), act (compose) and record; what the results mean is decided here:
# - incident_scope: the `services` extra var (a list or a comma-separated string) as a clean list of names.
# - incident_services_record / incident_logs_record: the checks, failed services, report sections and timeline entry
#   of the service status and error-line steps.
# - incident_probes: the front door requests sent at once (http_probe).
# - incident_classify_p0 / incident_classify_p1: the severity by the runbook, with its reasons. "Why is this P1?" is
#   answered here alone: P0 (complete outage, database unavailable, 5xx > 50 %), P1 (5xx 5-50 %, p95 > 5 s,
#   database connection issues), P2 (any other warning or critical finding).
# - incident_restart_plan: which failed services a confirmed P0 starts and which it restarts, in words.
# - incident_rollback_plan: after a confirmed P0 restart that did not bring health back, may the deploy role's
#   rollback run? Only when the application release can be the cause: a P0 in which a data service (postgres,
#   redis) failed is not rolled back, the run fails naming the data services instead.
# - incident_restart_record, incident_services_back, incident_recovery_record, incident_rollback_step,
#   incident_rollback_record, incident_scale_record: what the acting and verifying steps record.
# The timeline entries come without their time (the task adds it when it records them), except where one task
# records two (incident_recovery_record takes the time).
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


class IncidentInputError(ValueError):
    pass


# --- helpers with the semantics of the Jinja filters the tasks used ---------------------------------------------
def _map(value):
    return value if isinstance(value, Mapping) else {}


def _list(value):
    return list(value) if isinstance(value, (list, tuple)) else []


_int = _jinja.to_int


_float = _jinja.to_float


_bool = _jinja.to_bool


_s = _jinja.text


_truncate = _jinja.truncate


_unique = _jinja.unique


def _severity_status(severity, levels):
    return "critical" if severity in levels else ("warning" if severity else "ok")


def _names(value, what):
    if value is None:
        return []
    if isinstance(value, str):
        items = value.split(",")
    elif isinstance(value, (list, tuple)):
        items = list(value)
    else:
        raise IncidentInputError("%s must be a list of service names or a comma-separated string, not %r"
                                 % (what, value))
    out = []
    for item in items:
        if not isinstance(item, str):
            raise IncidentInputError("%s must hold service names (strings), not %r" % (what, item))
        name = item.strip()
        if name and name not in out:
            out.append(name)
    return out


def incident_scope(value, what="services"):
    """`services` -> a list of distinct, trimmed names; empty entries dropped; a non-name is refused."""
    from ansible.errors import AnsibleFilterError

    try:
        return _names(value, what)
    except IncidentInputError as exc:
        raise AnsibleFilterError(str(exc)) from None


# --- gathering steps ---------------------------------------------------------------------------------------------
def incident_failed_services(compose_services, scope=None):
    """Expected services whose containers are not all running and healthy: exited, missing, restarting, unhealthy,
    or "starting" again and again in a restart loop (between two crashes the container is briefly running).
    Narrowed to ``scope`` when one is given."""
    failed = [name for name, svc in _map(compose_services).items()
              if _map(svc).get("expected", True)
              and (_int(svc.get("replicas")) == 0 or _int(svc.get("healthy")) < _int(svc.get("replicas")))]
    scope = _list(scope)
    return [name for name in failed if name in scope] if scope else failed


def incident_services_record(compose, scope=None):
    """compose_status' result -> checks (a critical `docker` check when the daemon is unavailable), the failed
    services (within ``scope``), the report's services/containers and the timeline entry."""
    compose = _map(compose)
    if _bool(compose.get("available")):
        checks = _list(compose.get("checks"))
    else:
        checks = [{"name": "docker", "component": "docker", "status": "critical", "value": None, "threshold": None,
                   "message": compose.get("reason", "Docker daemon unavailable")}]
    return {
        "checks": checks,
        "failed": incident_failed_services(compose.get("services"), scope),
        "extra": {"services": compose.get("services", {}), "containers": compose.get("containers", [])},
        "timeline": {"step": "services", "result": compose.get("status", "unknown"),
                     "detail": compose.get("summary", "")},
    }


def incident_logs_record(logs, since):
    """compose_logs' result -> one `log_errors:<service>` check per service (warning from one error line on, with
    the last line), the report's error lines and the timeline entry."""
    logs = _map(logs)
    checks = []
    for svc, info in _map(logs.get("logs")).items():
        info = _map(info)
        n = _int(info.get("match_count", 0))
        matches = _list(info.get("matches"))
        last = (": " + _truncate(matches[-1], 200)) if n > 0 and matches else ""
        checks.append({"name": "log_errors:" + _s(svc), "component": svc, "status": "ok" if n == 0 else "warning",
                       "value": n, "threshold": 0,
                       "message": "%s error line(s) from %s in the last %s%s" % (n, svc, since, last)})
    available = logs.get("available", False)
    if available:
        detail = "%s error line(s) in the last %s" % (logs.get("total_matches", 0), since)
    else:
        detail = logs.get("reason", "logs unavailable")
    return {
        "checks": checks,
        "extra": {"error_lines": logs.get("logs", {})},
        "timeline": {"step": "logs", "result": "ok" if available else "unknown", "detail": detail},
    }


def incident_probes(count, url, parse_json=False):
    """``count`` GETs of ``url`` for http_probe, named request_01, request_02, ..."""
    probes = []
    for i in range(_int(count)):
        probe = {"name": "request_%02d" % (i + 1), "url": url}
        if parse_json:
            probe["parse_json"] = True
        probes.append(probe)
    return probes


def _codes(probe):
    """The status codes of an http_probe result, in request order."""
    probes = _map(_map(probe).get("probes"))
    return [_int(_map(probes[name]).get("status")) for name in sorted(probes)]


# --- classification ----------------------------------------------------------------------------------------------
def incident_classify_p0(compose, probe, db_liveness, checks, health=None, app_services=("backend", "nginx"),
                         outage_pct=50, base_url=""):
    """The P0 classification by the runbook: complete outage, database unavailable, or 5xx above half of the requests.

    ``compose`` is compose_status' result, ``probe`` the http_probe result of the front door requests,
    ``db_liveness`` postgres_health's liveness result, ``checks`` the incident's checks so far (a P2 when any is
    warning or critical), ``health`` the health role's result (its severity is kept when there is no P0 reason).
    Returns severity (P0, the health severity, P2 or None), p0_reasons, summary, the three checks to add
    (frontdoor_api, database_liveness, incident_severity), the report's classification and the timeline entry.
    """
    compose = _map(compose)
    db_liveness = _map(db_liveness)
    health = _map(health)
    codes = _codes(probe)
    bad = len([c for c in codes if c != 200])
    bad_pct = round(100.0 * bad / max(len(codes), 1), 1)
    outage_pct = float(outage_pct)
    codes_text = ", ".join(_s(c) for c in _unique(codes))
    db_ok = _bool(db_liveness.get("available", False))
    failed_all = [name for name, svc in _map(compose.get("services")).items()
                  if _map(svc).get("expected") and svc.get("healthy") == 0]
    essential = [*(app_services or []), "postgres"]
    essential_down = [name for name in failed_all if name in essential]

    reasons = []
    if bad_pct > outage_pct:
        reasons.append("front door: %s of %s /api/health requests failed (%s; -1 = no answer)"
                       % (bad, len(codes), codes_text))
    if not db_ok:
        reasons.append("database unavailable: %s" % (db_liveness.get("reason", "no answer"),))
    if essential_down:
        reasons.append("no running healthy container: " + ", ".join(essential_down))
    if not _bool(compose.get("available", False)):
        reasons.append("Docker daemon unavailable: %s" % (compose.get("reason", ""),))

    statuses = [_map(c).get("status") for c in _list(checks)]
    health_sev = health.get("severity")
    if reasons:
        severity = "P0"
        summary = "P0: " + "; ".join(reasons)
    else:
        severity = health_sev or ("P2" if ("critical" in statuses or "warning" in statuses) else None)
        if severity:
            text = health.get("summary") or "degraded"
            if text[:2] in ("P0", "P1", "P2", "P3") and text[2:4] == ": ":
                text = text[4:]
            summary = "%s: %s" % (severity, text)
        else:
            summary = "no outage found: all checks ok"

    liveness = _map(_map(db_liveness.get("checks")).get("liveness"))
    db_message = liveness["message"] if "message" in liveness else db_liveness.get("reason", "no answer")
    status = _severity_status(severity, ("P0",))
    return {
        "severity": severity,
        "p0_reasons": reasons,
        "summary": summary,
        "checks": [
            {"name": "frontdoor_api", "component": "nginx",
             "status": "ok" if bad == 0 else ("critical" if bad_pct > outage_pct else "warning"),
             "value": bad_pct, "threshold": outage_pct,
             "message": "%s of %s GET %s/api/health failed (%s%%; codes %s)" % (bad, len(codes), base_url, bad_pct,
                                                                                 codes_text)},
            {"name": "database_liveness", "component": "postgres", "status": "ok" if db_ok else "critical",
             "value": db_ok, "threshold": None, "message": db_message},
            {"name": "incident_severity", "component": "stack", "status": status, "value": severity,
             "threshold": "P0", "message": summary},
        ],
        "classification": {"severity": severity, "p0_reasons": reasons, "failed_services": failed_all,
                           "frontdoor": {"requests": len(codes), "failed": bad, "codes": codes},
                           "database_available": db_ok},
        "timeline": {"step": "classify", "result": status, "detail": summary},
    }


def incident_classify_p1(metrics, db, compose, checks, scale_service="backend", window="5m"):
    """The P1 classification by the runbook: P0 (5xx > 50 %, database unavailable, no healthy backend), P1 (5xx
    5-50 %, p95 over 5 s, database connection issues: connections or blocking warning/critical), P2 (any other
    warning or critical check), else none.

    The 5xx rate and p95 come from Prometheus over ``window`` when it answered (``metrics`` is app_metrics'
    result), else from the lifetime counters of the first /metrics target that answered. ``db`` is
    postgres_health's result, ``compose`` compose_status' result, ``checks`` the incident's checks so far.
    Returns severity, reasons, summary, the incident_severity check, the report's classification and the timeline
    entry.
    """
    metrics = _map(metrics)
    prom = metrics.get("prometheus")
    prom_ok = (isinstance(prom, Mapping) and _bool(prom.get("available", False))
               and ("request_rate" not in prom or prom["request_rate"] is not None))
    target = next((t for t in _list(metrics.get("targets")) if _map(t).get("available")), {})
    if prom_ok:
        source = "prometheus " + _s(window)
        error_rate, p95 = prom.get("error_rate_pct"), prom.get("latency_p95_seconds")
    else:
        source = "/metrics (lifetime)" if target else "none"
        error_rate, p95 = target.get("error_rate_pct"), target.get("latency_p95_seconds")
    db = _map(db)
    db_checks = _map(db.get("checks"))
    db_ok = _bool(db.get("available", True))
    backend = _map(_map(_map(compose).get("services")).get(scale_service))
    backend_down = backend.get("status", "ok") == "critical"

    p0 = []
    if error_rate is not None and _float(error_rate) > 50:
        p0.append("5xx error rate %s%% (over 50%%)" % (error_rate,))
    if not db_ok:
        p0.append("database unavailable: %s" % (db.get("reason", "no answer"),))
    if backend_down:
        p0.append("backend has no running healthy container")
    conn_issue = [c.get("message") for c in (_map(db_checks.get("connections")), _map(db_checks.get("blocking")))
                  if "status" in c and c["status"] in ("warning", "critical")]
    p1 = []
    if error_rate is not None and _float(error_rate) >= 5:
        p1.append("5xx error rate %s%% (5-50%%)" % (error_rate,))
    if p95 is not None and _float(p95) > 5:
        p1.append("p95 latency %s s (over 5 s)" % (p95,))
    p1 += ["database: %s" % (m,) for m in conn_issue]
    other = [_map(c).get("message") for c in _list(checks) if _map(c).get("status") in ("warning", "critical")]

    reasons = p0 or p1 or other
    severity = "P0" if p0 else ("P1" if p1 else ("P2" if other else None))
    if not _list(checks):
        summary = "not classified: the gathering steps did not run (--tags)"
    elif severity:
        summary = "%s: %s" % (severity, _truncate("; ".join(_s(r) for r in reasons), 600))
    else:
        summary = "no P1 condition found: all checks ok"
    status = _severity_status(severity, ("P0", "P1"))
    return {
        "severity": severity,
        "reasons": reasons,
        "summary": summary,
        "checks": [{"name": "incident_severity", "component": "stack", "status": status, "value": severity,
                    "threshold": "P1", "message": summary}],
        "classification": {"severity": severity, "reasons": reasons, "error_rate_pct": error_rate,
                           "latency_p95_seconds": p95, "rates_from": source},
        "timeline": {"step": "classify", "result": status, "detail": summary},
    }


# --- P0 restart, verification, rollback --------------------------------------------------------------------------
def _still_down(failed, verify_services):
    """Names among ``failed`` that the last status read does not show ok (all of them when there is no read)."""
    if not isinstance(verify_services, Mapping) or not verify_services:
        return list(failed)
    out = []
    for name in failed:
        info = verify_services.get(name)
        if not isinstance(info, Mapping) or info.get("status") != "ok":
            out.append(name)
    return out


def _state(name, verify_services):
    info = verify_services.get(name) if isinstance(verify_services, Mapping) else None
    if isinstance(info, Mapping):
        return "%s: %s" % (name, info.get("message") or info.get("status") or "unknown")
    return "%s: no status" % name


def incident_rollback_plan(failed_services, data_services, verify_services=None, rollback_enabled=True):
    """Whether the rollback may run after a restart that did not heal, and what to record either way.

    Returns ``rollback`` (bool), ``data_services_failed`` (the failed data services), ``still_down`` (failed
    services the last status read does not show ok), ``detail`` (the rollback action's detail when it does not
    run) and ``failure`` (the run's failure message when it does not run).
    """
    failed = _names(failed_services, "failed services")
    data = set(_names(data_services, "data services"))
    data_failed = [s for s in failed if s in data]
    still = _still_down(failed, verify_services)
    if not data_failed:
        return dict(rollback=bool(rollback_enabled), data_services_failed=[], still_down=still, detail=None,
                    failure=None)
    named = ", ".join(data_failed)
    detail = ("not run: the outage involves %s (data service%s); a rollback of the application release cannot bring "
              "%s back. Fix %s first (troubleshoot-startup.yml, emergency-recover.yml); run rollback.yml "
              "-e confirm=true only if the backend still fails once %s %s healthy"
              % (named, "s" if len(data_failed) > 1 else "", "them" if len(data_failed) > 1 else "it", named, named,
                 "are" if len(data_failed) > 1 else "is"))
    if still:
        failure = ("health did not come back after restarting %s: still not healthy: %s; the application was not "
                   "rolled back (the outage began with %s, which a rollback of the release cannot fix)"
                   % (", ".join(failed), "; ".join(_state(s, verify_services) for s in still), named))
    else:
        failure = ("health did not come back after restarting %s: the services run again but the API does not answer; "
                   "the application was not rolled back because the outage began with %s (run rollback.yml "
                   "-e confirm=true if the release is at fault)" % (", ".join(failed), named))
    return dict(rollback=False, data_services_failed=data_failed, still_down=still, detail=detail, failure=failure)


def incident_restart_plan(compose, failed_services, data_services, rollback_enabled=True, health_timeout=120,
                          project=""):
    """What a confirmed P0 does with the failed services: ``start`` the ones with no running container (compose up
    without recreating anything that runs: stopped or missing containers are started or created), ``restart`` the
    ones that run but are unhealthy. ``plan`` says it in words with what follows (wait for health; roll back, or
    stop and name the data services), ``rollback`` is incident_rollback_plan's answer before any verification."""
    failed = _names(failed_services, "failed services")
    running = [name for name, svc in _map(_map(compose).get("services")).items() if _int(_map(svc).get("running")) > 0]
    to_start = [name for name in failed if name not in running]
    to_restart = [name for name in failed if name in running]
    in_project = (" of compose project %s" % project) if project else ""
    steps = []
    if to_start:
        steps.append("start %s (compose up%s: stopped or missing containers are started or created, nothing that "
                     "runs is recreated)" % (", ".join(to_start), in_project))
    if to_restart:
        steps.append("restart %s (compose restart%s: the running containers are restarted)"
                     % (", ".join(to_restart), in_project))
    plan = incident_rollback_plan(failed, data_services, None, rollback_enabled)
    if plan["rollback"]:
        then = "roll back to the previous deploy"
    elif plan["data_services_failed"]:
        then = ("stop and name %s (no rollback: a rollback of the application cannot fix a data service)"
                % ", ".join(plan["data_services_failed"]))
    else:
        then = "stop (incident_rollback is false)"
    return {
        "start": to_start,
        "restart": to_restart,
        "rollback": plan,
        "plan": "%s, wait up to %s s for health and, if it does not come back, %s" % (" and ".join(steps),
                                                                                       health_timeout, then),
    }


def incident_restart_record(failed_services, compose, scope, confirmed, check_mode, plan, error=None):
    """The restart step's action and timeline entry: nothing to restart, the plan (not confirmed / check mode),
    what was started and restarted, or the error that stopped it."""
    available = _bool(_map(compose).get("available", False))
    if not available or not failed_services:
        if not available:
            detail = "the Docker daemon is not available, so nothing can be restarted; run emergency-recover.yml"
        else:
            among = (" among " + ", ".join(scope)) if scope else ""
            detail = "no failed service%s: nothing to restart" % among
        changed, result = False, "skipped"
    elif not _bool(confirmed):
        detail = "%s: would %s%s" % ("check mode" if check_mode else "not confirmed", _map(plan).get("plan"),
                                     "" if check_mode else "; rerun with -e confirm=true")
        changed, result = False, "not confirmed"
    elif error is not None:
        detail = "restart failed: " + _truncate(error, 400)
        changed, result = True, "failed"
    else:
        parts = []
        if _map(plan).get("start"):
            parts.append("started " + ", ".join(plan["start"]))
        if _map(plan).get("restart"):
            parts.append("restarted " + ", ".join(plan["restart"]))
        detail = "; ".join(parts)
        changed, result = True, "changed"
    return {"action": {"name": "restart", "changed": changed, "detail": detail},
            "timeline": {"step": "restart", "result": result, "detail": detail}}


def _all_ok(verify):
    verify = _map(verify)
    return _bool(verify.get("available", False)) and all(
        _map(svc).get("status") == "ok" for svc in _map(verify.get("services")).values())


def incident_services_back(verify):
    """compose_status' result of the restarted services -> whether every one of them is ok."""
    return _all_ok(verify)


def incident_recovery_record(verify, api, phase="restart", now=None):
    """Whether health came back (the services ok and GET /api/health 200): the `recovery` check, the timeline
    entries (at ``now``) and, after the rollback (``phase`` rollback), the run's failure when it did not."""
    api_status = _map(api).get("status", -1)
    recovered = _all_ok(verify) and _int(api_status, -1) == 200
    detail = "%s%s; GET /api/health answered %s" % ("health is back: " if recovered else "health did not come back: ",
                                                    _map(verify).get("summary", "no status"), api_status)
    result = "ok" if recovered else "critical"
    timeline = [{"time": now, "step": "verify", "result": result, "detail": detail}]
    if phase == "rollback":
        timeline.append({"time": now, "step": "rollback_verify", "result": result,
                         "detail": "health is back after the rollback" if recovered
                         else "health did not come back after the rollback"})
    return {
        "recovered": recovered,
        "check": {"name": "recovery", "component": "stack", "status": result, "value": recovered, "threshold": True,
                  "message": detail},
        "timeline": timeline,
        "failure": None if recovered or phase != "rollback"
        else "health did not come back after the restart nor after the rollback",
    }


def incident_rollback_step(decision, rollback_enabled, health_timeout):
    """Before the rollback: why it does not run (a data service failed: skipped; incident_rollback false:
    unavailable), with the action and the run's failure, or the timeline entry that starts it."""
    decision = _map(decision)
    if decision.get("data_services_failed"):
        detail = decision.get("detail")
        return {"run": False, "actions": [{"name": "rollback", "changed": False, "detail": detail}],
                "timeline": {"step": "rollback", "result": "skipped", "detail": detail},
                "failure": decision.get("failure")}
    if not _bool(rollback_enabled):
        detail = "unavailable: incident_rollback is false"
        return {"run": False, "actions": [{"name": "rollback", "changed": False, "detail": detail}],
                "timeline": {"step": "rollback", "result": "unavailable", "detail": detail},
                "failure": "health did not come back after the restart and no rollback ran (%s)" % detail}
    return {"run": True, "actions": [],
            "timeline": {"step": "rollback", "result": "started",
                         "detail": "health did not come back within %s s: rolling back to the previous deploy"
                         % health_timeout},
            "failure": None}


def incident_rollback_record(plan_error=None, deploy_failed=False, deploy_summary="", error=None):
    """After the deploy role's rollback: unavailable (its plan refused: no previous deploy, a bad version), failed
    (an error, or the deploy role's own verdict) or rolled back; ``ran`` says whether health is to be verified again,
    ``failure`` is the run's failure when the rollback did not run."""
    if error is not None:
        detail = "rollback failed: " + _truncate(error, 400)
        return {"ran": False, "action": {"name": "rollback", "changed": True, "detail": detail},
                "timeline": {"step": "rollback", "result": "failed", "detail": detail},
                "failure": "health did not come back after the restart and the rollback failed: " + detail}
    if plan_error:
        detail = "unavailable: %s" % (plan_error,)
        return {"ran": False, "action": {"name": "rollback", "changed": False, "detail": detail},
                "timeline": {"step": "rollback", "result": "unavailable", "detail": detail},
                "failure": "health did not come back after the restart and no rollback ran (%s)" % detail}
    failed = _bool(deploy_failed)
    detail = ("rollback failed: " if failed else "rolled back: ") + _truncate(deploy_summary or "", 400)
    return {"ran": True, "action": {"name": "rollback", "changed": True, "detail": detail},
            "timeline": {"step": "rollback", "result": "failed" if failed else "changed", "detail": detail},
            "failure": None}


# --- P1 scaling --------------------------------------------------------------------------------------------------
def incident_scale_plan(service, replicas_from, replicas_to, project="", check_mode=False):
    """The scaling in words (not confirmed / check mode)."""
    in_project = (" of compose project %s" % project) if project else ""
    return ("%s: would scale %s from %s to %s replica(s) (compose up of %s%s with %s replica(s), recreating no "
            "running one) and verify that %s healthy replica(s) serve through nginx%s"
            % ("check mode" if check_mode else "not confirmed", service, replicas_from, replicas_to, service,
               in_project, replicas_to, replicas_to, "" if check_mode else "; rerun with -e confirm=true"))


def incident_scale_record(status, probe, service, replicas_from, replicas_to, confirmed=True, check_mode=False,
                          project="", error=None):
    """The scale step's outcome. Not confirmed (or --check): the plan in words (an action that changed nothing).
    Failed (``error``, the message of the task that failed): a failed action and the run's failure. Else whether
    the scaling verified: ``replicas_to`` containers of ``service`` running healthy (compose_status' ``status``) and
    as many distinct replicas (the port each reports in /api/health) answering the requests sent through nginx
    (http_probe's ``probe``). Returns the actions, checks, report sections and timeline entry to add, ok and the
    run's failure (None when it verified or was not confirmed)."""
    if not _bool(confirmed):
        detail = incident_scale_plan(service, replicas_from, replicas_to, project, check_mode)
        return {"ok": None, "actions": [{"name": "scale", "changed": False, "detail": detail}], "checks": [],
                "extra": {}, "timeline": {"step": "scale", "result": "not confirmed", "detail": detail},
                "failure": None}
    if error is not None:
        detail = "scaling failed: " + _truncate(error, 400)
        return {"ok": False, "actions": [{"name": "scale", "changed": True, "detail": detail}], "checks": [],
                "extra": {}, "timeline": {"step": "scale", "result": "failed", "detail": detail}, "failure": detail}
    info = _map(_map(_map(status).get("services")).get(service))
    healthy = info.get("healthy", 0)
    replicas = info.get("replicas", 0)
    probes = _map(_map(probe).get("probes"))
    requests = [_map(probes[name]) for name in sorted(probes)]
    answers = [r for r in requests if r.get("status") == 200]
    ports = sorted(_unique(port for port in (r["json"].get("port") for r in answers
                                             if isinstance(r.get("json"), Mapping)) if port))
    to = _int(replicas_to)
    ok = _int(healthy) == to and _int(replicas) == to and len(ports) == to
    detail = ("%s of %s %s replica(s) healthy (%s container(s)); %s distinct replica(s) answered %s of %s GET "
              "/api/health through nginx (ports %s)" % (healthy, replicas_to, service, replicas, len(ports),
                                                        len(answers), len(requests), ", ".join(_s(p) for p in ports)))
    return {
        "ok": ok,
        "actions": [],
        "checks": [{"name": "scale_verify", "component": service, "status": "ok" if ok else "critical",
                    "value": {"healthy": _int(healthy), "ports_serving": ports}, "threshold": to, "message": detail}],
        "extra": {"scale": {"from": _int(replicas_from), "to": to, "healthy": _int(healthy), "ports_serving": ports,
                            "answers": len(answers), "failed_answers": len(requests) - len(answers)}},
        "timeline": {"step": "scale_verify", "result": "ok" if ok else "critical", "detail": detail},
        "failure": None if ok else detail,
    }


class FilterModule:
    def filters(self):
        return {
            "incident_scope": incident_scope,
            "incident_failed_services": incident_failed_services,
            "incident_services_record": incident_services_record,
            "incident_logs_record": incident_logs_record,
            "incident_probes": incident_probes,
            "incident_classify_p0": incident_classify_p0,
            "incident_classify_p1": incident_classify_p1,
            "incident_rollback_plan": incident_rollback_plan,
            "incident_restart_plan": incident_restart_plan,
            "incident_restart_record": incident_restart_record,
            "incident_services_back": incident_services_back,
            "incident_recovery_record": incident_recovery_record,
            "incident_rollback_step": incident_rollback_step,
            "incident_rollback_record": incident_rollback_record,
            "incident_scale_record": incident_scale_record,
        }
