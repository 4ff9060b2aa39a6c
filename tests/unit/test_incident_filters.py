"""The incident role's decisions (roles/incident/filter_plugins/incident_filters.py): which P0 may be rolled back
after a restart that did not heal, and how the `services` extra var is read."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
from ansible.errors import AnsibleFilterError

_PATH = Path(__file__).resolve().parents[2] / "roles" / "incident" / "filter_plugins" / "incident_filters.py"
_spec = importlib.util.spec_from_file_location("incident_filters", _PATH)
inf = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(inf)

DATA = ["postgres", "redis"]


def test_an_application_outage_may_be_rolled_back():
    plan = inf.incident_rollback_plan(["backend"], DATA, {"backend": {"status": "critical", "message": "exited (1)"}})
    assert plan["rollback"] is True and plan["data_services_failed"] == [] and plan["failure"] is None
    assert plan["still_down"] == ["backend"]
    assert inf.incident_rollback_plan(["backend", "nginx"], DATA)["rollback"] is True
    # incident_rollback=false: no rollback, and nothing here claims a data service
    plan = inf.incident_rollback_plan(["backend"], DATA, None, False)
    assert plan["rollback"] is False and plan["detail"] is None


@pytest.mark.parametrize("failed", [["redis"], ["postgres"], ["backend", "redis"], ["backend", "nginx", "postgres"]])
def test_a_data_service_outage_is_not_rolled_back_and_names_the_service(failed):
    verify = {name: {"status": "critical", "message": "%s exited (1)" % name} for name in failed}
    plan = inf.incident_rollback_plan(failed, DATA, verify)
    data = [s for s in failed if s in DATA]
    assert plan["rollback"] is False and plan["data_services_failed"] == data
    assert plan["detail"].startswith("not run: the outage involves " + ", ".join(data))
    assert "health did not come back" in plan["failure"] and "not rolled back" in plan["failure"]
    for name in data:
        assert "%s exited (1)" % name in plan["failure"]


def test_data_service_back_but_api_not_still_no_rollback():
    plan = inf.incident_rollback_plan(["redis"], DATA, {"redis": {"status": "ok", "message": "running"}})
    assert plan["rollback"] is False and plan["still_down"] == []
    assert "the API does not answer" in plan["failure"] and "began with redis" in plan["failure"]


def test_no_status_read_counts_every_failed_service_as_down():
    plan = inf.incident_rollback_plan(["redis", "backend"], DATA, None)
    assert plan["still_down"] == ["redis", "backend"] and "redis: no status" in plan["failure"]


@pytest.mark.parametrize(("value", "expected"), [
    (None, []), ([], []), ("", []), ("backend", ["backend"]), ("backend, nginx,,", ["backend", "nginx"]),
    (["redis", " redis ", ""], ["redis"]), (("nginx",), ["nginx"]),
])
def test_services_are_read_as_a_clean_list(value, expected):
    assert inf.incident_scope(value) == expected


@pytest.mark.parametrize("value", [5, {"backend": 1}, ["backend", 3], True])
def test_services_that_are_not_names_are_refused(value):
    with pytest.raises(AnsibleFilterError, match="services must"):
        inf.incident_scope(value)


# --- the gathering steps' records --------------------------------------------------------------------------------
def _svc(replicas, healthy, running=None, expected=True, status="ok"):
    return {"replicas": replicas, "healthy": healthy, "running": replicas if running is None else running,
            "expected": expected, "status": status}


COMPOSE = {"available": True, "status": "critical", "summary": "1/4 services down", "checks": [{"name": "service:x"}],
           "services": {"backend": _svc(0, 0, status="critical"), "nginx": _svc(1, 0, running=1, status="critical"),
                        "postgres": _svc(1, 1), "prometheus": _svc(0, 0, expected=False)},
           "containers": [{"name": "c1"}]}


def test_failed_services_are_the_expected_ones_not_all_running_healthy():
    assert inf.incident_failed_services(COMPOSE["services"]) == ["backend", "nginx"]
    assert inf.incident_failed_services(COMPOSE["services"], ["nginx", "postgres"]) == ["nginx"]
    assert inf.incident_failed_services(None) == []


def test_services_record_and_the_docker_check_when_the_daemon_is_gone():
    rec = inf.incident_services_record(COMPOSE, [])
    assert rec["checks"] == COMPOSE["checks"] and rec["failed"] == ["backend", "nginx"]
    assert rec["extra"] == {"services": COMPOSE["services"], "containers": [{"name": "c1"}]}
    assert rec["timeline"] == {"step": "services", "result": "critical", "detail": "1/4 services down"}
    rec = inf.incident_services_record({"available": False, "reason": "no socket"})
    assert rec["checks"][0]["name"] == "docker" and rec["checks"][0]["status"] == "critical"
    assert rec["checks"][0]["message"] == "no socket" and rec["failed"] == []
    assert rec["timeline"]["result"] == "unknown"


def test_logs_record_warns_per_service_with_the_last_line():
    logs = {"available": True, "total_matches": 3,
            "logs": {"backend": {"match_count": 3, "matches": ["a", "ERROR " + "x " * 150]},
                     "nginx": {"match_count": 0, "matches": []}}}
    rec = inf.incident_logs_record(logs, "15m")
    backend, nginx = rec["checks"]
    assert backend["name"] == "log_errors:backend" and backend["status"] == "warning" and backend["value"] == 3
    assert backend["message"].startswith("3 error line(s) from backend in the last 15m: ERROR ")
    assert backend["message"].endswith("...") and len(backend["message"]) < 260
    assert nginx == {"name": "log_errors:nginx", "component": "nginx", "status": "ok", "value": 0, "threshold": 0,
                     "message": "0 error line(s) from nginx in the last 15m"}
    assert rec["timeline"] == {"step": "logs", "result": "ok", "detail": "3 error line(s) in the last 15m"}
    assert inf.incident_logs_record({"available": False, "reason": "no docker"}, "15m")["timeline"] == \
        {"step": "logs", "result": "unknown", "detail": "no docker"}


@pytest.mark.parametrize("text", ["short", "x" * 205, "x" * 206, "word " * 60, "ERROR " + "y" * 300])
def test_truncate_is_jinja_truncate(text):
    """The filters cut messages as the Jinja templates they replace did (`| truncate(200)`)."""
    import jinja2

    env = jinja2.Environment(autoescape=False)  # noqa: S701 - renders a test string
    assert inf._truncate(text, 200) == env.from_string("{{ t | truncate(200) }}").render(t=text)


def test_probes():
    assert inf.incident_probes(2, "http://x/api/health") == [
        {"name": "request_01", "url": "http://x/api/health"}, {"name": "request_02", "url": "http://x/api/health"}]
    assert inf.incident_probes("1", "u", True) == [{"name": "request_01", "url": "u", "parse_json": True}]


# --- P0 classification -------------------------------------------------------------------------------------------
def _probe(*codes):
    return {"probes": {"request_%02d" % (i + 1): {"status": c} for i, c in enumerate(codes)}}


DB_OK = {"available": True, "checks": {"liveness": {"message": "SELECT 1 in 2 ms"}}}
HEALTHY = {"available": True, "services": {"backend": _svc(1, 1), "nginx": _svc(1, 1), "postgres": _svc(1, 1)}}


def test_p0_when_the_front_door_fails_for_more_than_half():
    v = inf.incident_classify_p0(HEALTHY, _probe(502, 502, 502, -1, 200, 200), DB_OK, [], None, ["backend", "nginx"],
                                 50, "http://x")
    assert v["severity"] == "P0"
    assert v["p0_reasons"] == ["front door: 4 of 6 /api/health requests failed (502, -1, 200; -1 = no answer)"]
    assert v["summary"] == "P0: " + v["p0_reasons"][0]
    front, db, sev = v["checks"]
    assert front == {"name": "frontdoor_api", "component": "nginx", "status": "critical", "value": 66.7,
                     "threshold": 50.0,
                     "message": "4 of 6 GET http://x/api/health failed (66.7%; codes 502, -1, 200)"}
    assert db["status"] == "ok" and db["value"] is True and db["message"] == "SELECT 1 in 2 ms"
    assert sev["status"] == "critical" and sev["value"] == "P0" and sev["threshold"] == "P0"
    assert v["classification"]["frontdoor"] == {"requests": 6, "failed": 4, "codes": [502, 502, 502, -1, 200, 200]}
    assert v["timeline"] == {"step": "classify", "result": "critical", "detail": v["summary"]}


def test_p0_when_the_database_or_an_essential_service_or_docker_is_down():
    compose = {"available": True, "services": {"backend": _svc(0, 0), "redis": _svc(0, 0), "prometheus": _svc(0, 0)}}
    v = inf.incident_classify_p0(compose, _probe(200, 200), {"available": False, "reason": "refused"}, [])
    assert v["p0_reasons"] == ["database unavailable: refused", "no running healthy container: backend"]
    assert v["classification"]["failed_services"] == ["backend", "redis", "prometheus"]
    assert v["checks"][1]["message"] == "refused" and v["checks"][1]["status"] == "critical"
    v = inf.incident_classify_p0({"available": False, "reason": "no socket"}, _probe(200), DB_OK, [])
    assert v["p0_reasons"] == ["Docker daemon unavailable: no socket"]


def test_below_p0_the_health_severity_or_p2_or_nothing():
    some_warning = [{"status": "warning", "message": "disk 85%"}]
    v = inf.incident_classify_p0(HEALTHY, _probe(200, 500), DB_OK, some_warning,
                                 {"severity": "P1", "summary": "P1: p95 6 s"})
    assert v["severity"] == "P1" and v["summary"] == "P1: p95 6 s" and v["checks"][0]["status"] == "warning"
    assert v["checks"][2]["status"] == "warning" and v["timeline"]["result"] == "warning"
    v = inf.incident_classify_p0(HEALTHY, _probe(200), DB_OK, some_warning, {})
    assert v["severity"] == "P2" and v["summary"] == "P2: degraded"
    v = inf.incident_classify_p0(HEALTHY, _probe(200), DB_OK, [{"status": "ok"}])
    assert v["severity"] is None and v["summary"] == "no outage found: all checks ok"
    assert v["checks"][0]["status"] == "ok" and v["checks"][0]["value"] == 0.0


# --- P1 classification: why is this P1? --------------------------------------------------------------------------
PROM = {"available": True, "request_rate": 2.0, "error_rate_pct": 0.0, "latency_p95_seconds": 0.1}
TARGET = {"available": True, "error_rate_pct": 0.0, "latency_p95_seconds": 0.1}
OK_CHECKS = [{"status": "ok", "message": "fine"}]


def _p1(prom=None, target=None, db=None, compose=None, checks=OK_CHECKS):
    metrics = {"prometheus": prom, "targets": [{"available": False}, target] if target else []}
    return inf.incident_classify_p1(metrics, db or {"available": True, "checks": {}}, compose or HEALTHY, checks)


@pytest.mark.parametrize(("prom", "reason"), [
    ({"error_rate_pct": 7.5}, "5xx error rate 7.5% (5-50%)"),
    ({"error_rate_pct": 5}, "5xx error rate 5% (5-50%)"),
    ({"latency_p95_seconds": 5.5}, "p95 latency 5.5 s (over 5 s)"),
])
def test_p1_by_error_rate_or_latency_from_prometheus(prom, reason):
    v = _p1(prom={**PROM, **prom}, target={**TARGET, "error_rate_pct": 0.0})
    assert v["severity"] == "P1" and v["reasons"] == [reason] and v["summary"] == "P1: " + reason
    assert v["classification"]["rates_from"] == "prometheus 5m"
    assert v["checks"][0]["status"] == "critical" and v["checks"][0]["threshold"] == "P1"


def test_p1_rates_from_the_lifetime_counters_when_prometheus_has_no_rate():
    v = _p1(prom={**PROM, "request_rate": None}, target={**TARGET, "error_rate_pct": 12.0})
    assert v["severity"] == "P1" and v["classification"]["rates_from"] == "/metrics (lifetime)"
    assert v["classification"]["error_rate_pct"] == 12.0
    v = _p1()
    assert v["classification"]["rates_from"] == "none" and v["severity"] is None
    assert v["summary"] == "no P1 condition found: all checks ok" and v["checks"][0]["status"] == "ok"


def test_p1_by_database_connection_issues():
    db = {"available": True, "checks": {"connections": {"status": "warning", "message": "85% of connections"},
                                        "blocking": {"status": "critical", "message": "2 blocked"},
                                        "long_queries": {"status": "critical", "message": "slow"}}}
    v = _p1(db=db)
    assert v["reasons"] == ["database: 85% of connections", "database: 2 blocked"]


def test_p0_conditions_win_over_p1():
    compose = {"available": True, "services": {"backend": {"status": "critical"}}}
    v = _p1(prom={**PROM, "error_rate_pct": 60.0}, db={"available": False, "reason": "refused"}, compose=compose)
    assert v["severity"] == "P0" and v["reasons"] == [
        "5xx error rate 60.0% (over 50%)", "database unavailable: refused", "backend has no running healthy container"]


def test_p2_from_other_findings_and_nothing_gathered():
    v = _p1(checks=[{"status": "warning", "message": "disk 85%"}, {"status": "ok", "message": "x"}])
    assert v["severity"] == "P2" and v["summary"] == "P2: disk 85%" and v["checks"][0]["status"] == "warning"
    v = _p1(checks=[])
    assert v["summary"] == "not classified: the gathering steps did not run (--tags)"
    long = _p1(checks=[{"status": "warning", "message": "word " * 200}])
    assert long["summary"].endswith("...") and len(long["summary"]) <= 610


# --- P0 restart, verification, rollback --------------------------------------------------------------------------
def test_restart_plan_starts_what_does_not_run_and_restarts_what_runs():
    plan = inf.incident_restart_plan(COMPOSE, ["backend", "nginx"], DATA, True, 120, "em")
    assert plan["start"] == ["backend"] and plan["restart"] == ["nginx"]
    assert plan["plan"].startswith("start backend (compose up of compose project em: ")
    assert " and restart nginx (compose restart of compose project em: " in plan["plan"]
    assert plan["plan"].endswith("wait up to 120 s for health and, if it does not come back, roll back to the "
                                 "previous deploy")
    assert "stop and name redis" in inf.incident_restart_plan({}, ["redis"], DATA)["plan"]
    assert inf.incident_restart_plan({}, ["backend"], DATA, False)["plan"].endswith("stop (incident_rollback is false)")


def test_restart_record_for_each_outcome():
    plan = inf.incident_restart_plan(COMPOSE, ["backend", "nginx"], DATA)
    rec = inf.incident_restart_record(["backend", "nginx"], COMPOSE, [], False, False, plan)
    assert rec["action"]["changed"] is False and rec["timeline"]["result"] == "not confirmed"
    assert rec["action"]["detail"].startswith("not confirmed: would start backend")
    assert rec["action"]["detail"].endswith("; rerun with -e confirm=true")
    rec = inf.incident_restart_record(["backend", "nginx"], COMPOSE, [], False, True, plan)
    assert rec["action"]["detail"].startswith("check mode: would start backend")
    assert "rerun" not in rec["action"]["detail"]
    rec = inf.incident_restart_record(["backend", "nginx"], COMPOSE, [], True, False, plan)
    assert rec["action"] == {"name": "restart", "changed": True, "detail": "started backend; restarted nginx"}
    rec = inf.incident_restart_record(["backend"], COMPOSE, [], True, False, plan, "boom")
    assert rec["action"]["detail"] == "restart failed: boom" and rec["timeline"]["result"] == "failed"
    rec = inf.incident_restart_record([], COMPOSE, ["redis"], True, False, plan)
    assert rec["action"]["detail"] == "no failed service among redis: nothing to restart"
    assert rec["timeline"]["result"] == "skipped"
    rec = inf.incident_restart_record(["backend"], {"available": False}, [], True, False, plan)
    assert rec["action"]["detail"].startswith("the Docker daemon is not available")


def test_recovery_record():
    verify = {"available": True, "summary": "1/1 ok", "services": {"backend": {"status": "ok"}}}
    assert inf.incident_services_back(verify) is True
    assert inf.incident_services_back({"available": True, "services": {"b": {"status": "critical"}}}) is False
    assert inf.incident_services_back({}) is False
    rec = inf.incident_recovery_record(verify, {"status": 200}, "restart", "T")
    assert rec["recovered"] is True and rec["failure"] is None
    assert rec["check"]["message"] == "health is back: 1/1 ok; GET /api/health answered 200"
    assert rec["timeline"] == [{"time": "T", "step": "verify", "result": "ok", "detail": rec["check"]["message"]}]
    rec = inf.incident_recovery_record(verify, {"status": -1}, "rollback", "T")
    assert rec["recovered"] is False and rec["check"]["status"] == "critical"
    assert [t["step"] for t in rec["timeline"]] == ["verify", "rollback_verify"]
    assert rec["failure"] == "health did not come back after the restart nor after the rollback"
    assert inf.incident_recovery_record(verify, {"status": 502}, "restart")["failure"] is None


def test_rollback_step_and_record():
    data = inf.incident_rollback_plan(["redis"], DATA, {"redis": {"status": "critical", "message": "exited"}})
    step = inf.incident_rollback_step(data, True, 120)
    assert step["run"] is False and step["timeline"]["result"] == "skipped" and "redis: exited" in step["failure"]
    step = inf.incident_rollback_step(inf.incident_rollback_plan(["backend"], DATA, None, False), False, 120)
    assert step["run"] is False and step["actions"][0]["detail"] == "unavailable: incident_rollback is false"
    step = inf.incident_rollback_step(inf.incident_rollback_plan(["backend"], DATA), True, 120)
    assert step["run"] is True and step["actions"] == [] and step["failure"] is None
    assert step["timeline"] == {"step": "rollback", "result": "started",
                                "detail": "health did not come back within 120 s: rolling back to the previous deploy"}
    rec = inf.incident_rollback_record("no previous deploy")
    assert rec["ran"] is False and rec["action"] == {"name": "rollback", "changed": False,
                                                     "detail": "unavailable: no previous deploy"}
    assert rec["failure"] == "health did not come back after the restart and no rollback ran " \
                             "(unavailable: no previous deploy)"
    rec = inf.incident_rollback_record("", False, "back on 1.0.0")
    assert rec["ran"] is True and rec["action"]["detail"] == "rolled back: back on 1.0.0" and rec["failure"] is None
    rec = inf.incident_rollback_record("", True, "gate failed")
    assert rec["ran"] is True and rec["timeline"]["result"] == "failed"
    rec = inf.incident_rollback_record("", False, "", "role not found")
    assert rec["ran"] is False and rec["action"]["changed"] is True
    assert rec["failure"] == "health did not come back after the restart and the rollback failed: " \
                             "rollback failed: role not found"


# --- P1 scaling --------------------------------------------------------------------------------------------------
def _answers(*ports):
    return {"probes": {"request_%02d" % (i + 1): ({"status": 200, "json": {"port": p}} if p else {"status": 502})
                       for i, p in enumerate(ports)}}


def test_scale_record_plan_failure_and_verification():
    rec = inf.incident_scale_record({}, {}, "backend", 1, 2, False, False, "em")
    assert rec["actions"][0]["detail"].startswith("not confirmed: would scale backend from 1 to 2 replica(s) "
                                                  "(compose up of backend of compose project em with 2 replica(s)")
    assert rec["failure"] is None and rec["checks"] == [] and rec["timeline"]["result"] == "not confirmed"
    assert inf.incident_scale_record({}, {}, "backend", 1, 2, False, True)["actions"][0]["detail"].startswith(
        "check mode: would scale")
    rec = inf.incident_scale_record({}, {}, "backend", 1, 2, True, False, "em", "port in use")
    assert rec["failure"] == "scaling failed: port in use" and rec["actions"][0]["changed"] is True
    status = {"services": {"backend": {"replicas": 2, "healthy": 2}}}
    rec = inf.incident_scale_record(status, _answers(4001, 4002, 4001, None), "backend", 1, 2)
    assert rec["ok"] is True and rec["failure"] is None and rec["actions"] == []
    assert rec["checks"][0]["value"] == {"healthy": 2, "ports_serving": [4001, 4002]}
    assert rec["extra"]["scale"] == {"from": 1, "to": 2, "healthy": 2, "ports_serving": [4001, 4002], "answers": 3,
                                     "failed_answers": 1}
    assert rec["timeline"]["detail"] == ("2 of 2 backend replica(s) healthy (2 container(s)); 2 distinct replica(s) "
                                         "answered 3 of 4 GET /api/health through nginx (ports 4001, 4002)")
    rec = inf.incident_scale_record(status, _answers(4001, 4001), "backend", 1, 2)
    assert rec["ok"] is False and rec["failure"] == rec["timeline"]["detail"]
