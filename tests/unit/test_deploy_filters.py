"""The deploy role's decisions (roles/deploy/filter_plugins/deploy_filters.py): the plan, the containers judged
against the release images, the health gate and the run's outcome, from registered results - no Docker."""
from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
from ansible.errors import AnsibleFilterError

_PATH = Path(__file__).resolve().parents[2] / "roles" / "deploy" / "filter_plugins" / "deploy_filters.py"
_spec = importlib.util.spec_from_file_location("deploy_filters_unit", _PATH)
df = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(df)

A = "sha256:" + "a" * 64
B = "sha256:" + "b" * 64
N = "sha256:" + "c" * 64


def box(service, name, image, image_id, state="running", health="healthy", **extra):
    return {"service": service, "name": name, "image": image, "image_id": image_id, "state": state,
            "health": health, **extra}


RUNNING = [box("backend", "be-1", "em/backend:1.0.0", A), box("backend", "be-2", "em/backend:1.0.0", A),
           box("nginx", "ng-1", "nginx:1.25", N), box("postgres", "pg-1", "postgres:15", "sha256:p")]


def plan_input(**over):
    o = {"action": "deploy", "version": "1.0.1", "host": "demo", "check_mode": False,
         "services": ["backend", "nginx"], "release_images": {"backend": "em/backend"},
         "version_env_var": "BACKEND_VERSION", "env_file": "/srv/stack.env", "env_version": "1.0.0",
         "containers": RUNNING, "history_file": "/var/lib/em/deploy-history.jsonl", "history_text": "",
         "image_source": "build", "build_contexts": {"backend": "/srv/backend"}, "build_args": [],
         "backup": True, "db_name": "em", "backup_dir": "/var/backups/em", "gate_timeout": 150,
         "health_url": "http://127.0.0.1/api/health", "gate_check_version": True, "gate_metrics": True,
         "gate_error_rate_pct": 1.0, "gate_p95_latency_s": 2.0, "gate_metrics_window": 5, "auto_rollback": True}
    o.update(over)
    return o


def history(*entries):
    return "\n".join(json.dumps(e) for e in entries) + "\n"


# --- reading ---------------------------------------------------------------------------------------------------
def test_images_are_the_first_container_of_each_service():
    assert df.deploy_images(RUNNING)["backend"] == {"image": "em/backend:1.0.0", "image_id": A}
    assert set(df.deploy_images(RUNNING)) == {"backend", "nginx", "postgres"}
    assert df.deploy_images(None) == {}


def test_the_env_file_gives_the_last_assignment_without_quotes():
    text = "POSTGRES_PASSWORD=secret\nBACKEND_VERSION=1.0.0\n# BACKEND_VERSION=0.9\nBACKEND_VERSION=\"1.0.1\"\n"
    assert df.deploy_env_value(text, "BACKEND_VERSION") == "1.0.1"
    assert df.deploy_env_value("OTHER=1\n", "BACKEND_VERSION") == ""
    assert df.deploy_env_value("A.B=1\nAxB=2\n", "A.B") == "1"  # the name is literal, not a pattern


def test_the_history_keeps_objects_and_refuses_a_broken_line():
    assert df.deploy_history('{"a": 1}\n\n  [1, 2]\nnot json\n{"b": 2}\n') == [{"a": 1}, {"b": 2}]
    with pytest.raises(AnsibleFilterError, match="line 2 is not JSON"):
        df.deploy_history('{"a": 1}\n{"a": \n')


def test_recorded_ids_take_the_last_entry_with_the_version():
    entries = [{"images": {"backend": {"image": "em/backend:1.0.0", "image_id": B}}},
               {"images": {"backend": {"image": "em/backend:1.0.0", "image_id": A}}},
               {"images": {"backend": {"image": "em/backend:1.0.0", "image_id": ""}}},
               {"images": {"backend": {"image": "em/backend:0.9", "image_id": N}}}, {}]
    assert df.deploy_recorded_ids(entries, {"backend": "em/backend"}, "1.0.0") == {"backend": A}
    assert df.deploy_recorded_ids(entries, {"backend": "em/backend"}, "2.0") == {}


# --- containers against the release images ---------------------------------------------------------------------
def test_seen_ready_when_every_service_runs_healthy_on_the_release_image():
    seen = df.deploy_seen(RUNNING, ["backend", "nginx"], {"backend": {"image": "em/backend:1.0.0", "image_id": A}})
    assert seen["ready"] and seen["settled"] and not (seen["missing"] or seen["broken"] or seen["wrong_image"])
    assert [c["name"] for c in seen["app"]] == ["be-1", "be-2", "ng-1"]


def test_seen_waits_for_missing_and_starting_but_settles_on_broken_or_wrong_image():
    starting = [box("backend", "be-1", "em/backend:1.0.1", A, health="starting")]
    seen = df.deploy_seen(starting, ["backend", "nginx"], {})
    assert seen["missing"] == ["nginx"] and seen["starting"] and not seen["ready"] and not seen["settled"]
    broken = [box("backend", "be-1", "x", A, state="restarting", health="unhealthy"), box("nginx", "ng-1", "n", N)]
    seen = df.deploy_seen(broken, ["backend", "nginx"], {})
    assert [c["name"] for c in seen["broken"]] == ["be-1"] and seen["settled"] and not seen["ready"]
    wrong = df.deploy_seen(RUNNING, ["backend", "nginx"], {"backend": {"image": "em/backend:1.0.1", "image_id": B}})
    assert [c["name"] for c in wrong["wrong_image"]] == ["be-1", "be-2"] and wrong["settled"]


# --- the plan --------------------------------------------------------------------------------------------------
def test_a_deploy_plan_names_every_step():
    p = df.deploy_plan(plan_input(build_args=["BROKEN_HEALTH", "TOKEN"]))
    assert p["current_version"] == "1.0.0" and p["target_version"] == "1.0.1" and p["target_problem"] == ""
    assert p["replicas"] == {"backend": 2, "nginx": 1}
    assert p["plan"] == [
        "current: BACKEND_VERSION=1.0.0 (backend=em/backend:1.0.0, nginx=nginx:1.25)",
        "target: BACKEND_VERSION=1.0.1",
        "1. pre-deploy backup of em: role backup into /var/backups/em",
        "2. record the current images in the deploy history /var/lib/em/deploy-history.jsonl",
        "3. build em/backend:1.0.1 from /srv/backend with APP_VERSION=1.0.1 and the build args BROKEN_HEALTH, TOKEN"
        " (values not shown)",
        "4. set BACKEND_VERSION=1.0.1 in /srv/stack.env, then up -d backend, then nginx one by one"
        " (community.docker.docker_compose_v2), keeping the current replicas: backend=2",
        "5. gate within 150 s: backend, nginx running and healthy on the new image; http://127.0.0.1/api/health"
        " answers 200 with version 1.0.1; 5xx rate < 1.0 % and p95 < 2.0 s over 5 s of smoke traffic",
        "6. on a failed gate: set BACKEND_VERSION=1.0.0 and the recorded images back, up -d again, gate again;"
        " the run fails naming the gate",
    ]
    assert p["describe"] == (
        "not confirmed: would deploy BACKEND_VERSION 1.0.0 -> 1.0.1 on demo (backup, record images, build"
        " em/backend:1.0.1 from /srv/backend with APP_VERSION=1.0.1 and the build args BROKEN_HEALTH, TOKEN (values"
        " not shown), up -d backend then nginx, health gate, automatic rollback on failure); rerun with -e"
        " confirm=true")
    assert p["plan_short"] == "deploy BACKEND_VERSION 1.0.0 -> 1.0.1 on demo"


def test_check_mode_and_the_other_image_sources_are_described():
    p = df.deploy_plan(plan_input(check_mode=True, image_source="pull", backup=False, auto_rollback=False,
                                  gate_metrics=False, gate_check_version=False, containers=[], env_version=""))
    assert p["describe"].startswith("check mode: would deploy BACKEND_VERSION unset -> 1.0.1 on demo (record images,")
    assert p["describe"].endswith("; rerun without --check and with -e confirm=true")
    assert p["plan"][0] == "current: BACKEND_VERSION=unset (no containers)"
    assert p["plan"][2] == "1. pre-deploy backup of em: skipped (deploy_backup=false)"
    assert p["plan"][4] == "3. pull em/backend:1.0.1"
    assert p["plan"][6].endswith("answers 200; no metrics gate")
    assert p["plan"][7] == "6. on a failed gate: no automatic rollback (deploy_auto_rollback=false); the run fails" \
        " naming the gate"
    assert df.deploy_plan(plan_input(image_source="local"))["plan"][4] == "3. use the local image em/backend:1.0.1"


def test_a_rollback_returns_to_the_version_before_the_last_deploy_of_the_current_one():
    text = history(
        {"action": "deploy", "status": "succeeded", "from_version": "0.9", "to_version": "1.0.1"},
        {"action": "deploy", "status": "succeeded", "from_version": "1.0.0", "to_version": "1.0.1",
         "images": {"backend": {"image": "em/backend:1.0.0", "image_id": A}}},
        {"action": "deploy", "status": "succeeded", "from_version": "1.0.1", "to_version": "1.0.1"},
        {"action": "deploy", "status": "failed", "from_version": "0.8", "to_version": "1.0.1"})
    p = df.deploy_plan(plan_input(action="rollback", version="", env_version="1.0.1", history_text=text))
    assert p["target_version"] == "1.0.0" and p["target_recorded"] == {"backend": A}
    assert p["plan"][4] == "3. use the recorded image em/backend:1.0.0 (sha256:aaaaaaaaaaaa)"
    none = df.deploy_plan(plan_input(action="rollback", version="2.0", image_source="pull"))
    assert none["plan"][4] == "3. use the recorded image em/backend:2.0 (no recorded image id: the tag as it is," \
        " pulled when missing)"


def test_a_rollback_without_a_recorded_version_or_with_a_bad_one_is_refused():
    p = df.deploy_plan(plan_input(action="rollback", version=""))
    assert p["target_version"] == "" and p["target_problem"].startswith(
        "no previous version recorded: /var/lib/em/deploy-history.jsonl has no successful deploy to the current"
        " version 1.0.0; name the version to return to with -e version=<tag>")
    text = history({"action": "deploy", "status": "succeeded", "from_version": "1.0;id", "to_version": "1.0.0"})
    bad = df.deploy_plan(plan_input(action="rollback", version="", history_text=text))
    assert bad["target_problem"].startswith("the rollback target from the deploy history '1.0;id' is not a valid image"
                                            " tag")
    assert bad["target_problem"].endswith("(/var/lib/em/deploy-history.jsonl); nothing was changed; name the version"
                                          " to return to with -e version=<tag>")


def test_a_long_image_step_is_cut_in_the_sentence():
    p = df.deploy_plan(plan_input(build_args=["ARG_%02d" % i for i in range(20)]))
    assert "(values not shown)" in p["plan"][4] and "..." in p["describe"]
    assert "(values not shown)" not in p["describe"]


# --- images ----------------------------------------------------------------------------------------------------
def test_failed_builds_are_the_results_without_an_image():
    results = [{"skipped": True}, {"image": {"Id": A}, "item": {"value": "em/backend"}},
               {"msg": "boom", "item": {"value": "em/worker"}}]
    assert df.deploy_failed_builds(results) == [results[2]]
    assert df.deploy_failed_builds(None) == []


def test_release_images_found_by_tag_and_how_they_got_there():
    images = [{"Id": N, "RepoTags": ["nginx:1.25"]}, {"Id": B, "RepoTags": ["em/backend:1.0.1", "em/backend:x"]}]
    release = {"backend": "em/backend", "worker": "em/worker"}
    out = df.deploy_release_images(images, release, "1.0.1", True, "pull")
    assert out["found"] == {"backend": {"image": "em/backend:1.0.1", "image_id": B}} and out["changed"] is False
    assert out["detail"] == "em/backend:1.0.1 = sha256:bbbbbbbbbbbb (pulled)"
    built = [{"changed": False}, {"skipped": True}]
    assert df.deploy_release_images(images, release, "1.0.1", True, "build", built)["detail"].endswith(
        "(built (unchanged, from cache))")
    built = [{"changed": True}]
    assert df.deploy_release_images(images, release, "1.0.1", True, "build", built)["detail"].endswith(
        "(built (new image))")
    again = df.deploy_release_images(images, release, "1.0.1", False, "build", [{"skipped": True}], [{"changed": True}])
    assert again["changed"] is True and again["detail"].endswith("(recorded image re-tagged)")
    assert df.deploy_release_images([], release, "1.0.1", False, "local")["detail"] == " (present)"


# --- the gate --------------------------------------------------------------------------------------------------
def gate_input(**over):
    g = {"prefix": "gate", "services": ["backend", "nginx"],
         "containers": [box("backend", "be-1", "em/backend:1.0.1", B), box("nginx", "ng-1", "nginx:1.25", N)],
         "docker_reason": "", "gate_images": {"backend": {"image": "em/backend:1.0.1", "image_id": B}},
         "timeout": 150, "api": {"status": 200, "json": {"version": "1.0.1", "checks": {"db": {"status": "ok"}}}},
         "health_url": "http://x/api/health", "check_version": True, "version": "1.0.1", "api_timeout": 30,
         "metrics_enabled": True, "unknown_fails": False,
         "metrics": {"checks": [{"name": "error_rate_5xx", "status": "ok", "message": "0 %"},
                                {"name": "latency_p95", "status": "unknown", "message": "no samples"}]}}
    g.update(over)
    return g


def test_a_passing_gate_records_every_stage():
    v = df.deploy_gate(gate_input())
    assert v["failure"] == {}
    assert [(c["name"], c["status"], c["component"]) for c in v["checks"]] == [
        ("gate:service_health", "ok", "compose"), ("gate:image", "ok", "compose"), ("gate:api_health", "ok", "backend"),
        ("gate:error_rate_5xx", "ok", "backend"), ("gate:latency_p95", "unknown", "backend")]
    assert v["checks"][0]["message"] == "backend, nginx running and healthy"
    assert v["checks"][2]["message"] == "http://x/api/health answered 200 with version 1.0.1"
    assert v["checks"][2]["value"] == {"status": 200, "version": "1.0.1"}


def test_broken_services_stop_the_gate_before_the_api():
    c = [box("backend", "be-1", "em/backend:1.0.1", B, state="exited", health="unhealthy", exit_code=1,
             restart_count=2, health_output="  connection refused  ")]
    v = df.deploy_gate(gate_input(containers=c, docker_reason="partial"))
    assert [x["name"] for x in v["checks"]] == ["gate:service_health", "gate:image"]
    assert v["failure"] == {"phase": "gate", "gate": "service_health", "message": v["checks"][0]["message"]}
    assert v["checks"][0]["message"] == "backend (be-1) exited, unhealthy, exit code 1, 2 restarts: connection" \
        " refused; backend: no running container; nginx: no running container (partial)"
    assert df.deploy_gate(gate_input(containers=c, stage="service"))["failure"]["gate"] == "service_health"


def test_a_wrong_image_fails_the_image_gate():
    c = [box("backend", "be-1", "em/backend:1.0.0", A), box("nginx", "ng-1", "nginx:1.25", N)]
    v = df.deploy_gate(gate_input(containers=c, prefix="rollback_gate"))
    assert v["failure"]["gate"] == "image" and v["failure"]["phase"] == "rollback_gate"
    assert v["checks"][1]["message"] == "be-1 run em/backend:1.0.0, not em/backend:1.0.1"


def test_the_api_gate_wants_200_and_the_version():
    v = df.deploy_gate(gate_input(api={"status": 503, "json": {"version": "1.0.1", "checks": {"db": {"status": "x"}}}}))
    assert v["failure"]["gate"] == "api_health" and len(v["checks"]) == 3
    assert v["checks"][2]["message"] == "http://x/api/health answered 503 with version 1.0.1 (failing: db) after 30 s"
    old = df.deploy_gate(gate_input(api={"status": 200, "json": {"version": "1.0.0"}}))
    assert old["failure"]["gate"] == "api_health"
    assert df.deploy_gate(gate_input(api={"status": 200, "json": {"version": "1.0.0"}}, check_version=False))[
        "failure"] == {}
    down = df.deploy_gate(gate_input(api={"status": -1, "msg": "Connection refused"}))
    assert down["checks"][2]["message"] == "http://x/api/health answered nothing (Connection refused) after 30 s"
    assert df.deploy_gate(gate_input(stage="api"))["checks"][-1]["name"] == "gate:api_health"


def test_the_metrics_gate_fails_on_warnings_and_on_unknown_when_asked():
    assert df.deploy_gate(gate_input(unknown_fails=True))["failure"]["gate"] == "latency_p95"
    bad = {"checks": [{"name": "error_rate_5xx", "status": "warning", "message": "6 %"}]}
    assert df.deploy_gate(gate_input(metrics=bad))["failure"] == {"phase": "gate", "gate": "error_rate_5xx",
                                                                   "message": "6 %"}
    assert len(df.deploy_gate(gate_input(metrics_enabled=False, metrics=bad))["checks"]) == 3


# --- the outcome -----------------------------------------------------------------------------------------------
def outcome(**over):
    r = {"action": "deploy", "version_env_var": "BACKEND_VERSION", "plan_error": "", "confirmed": True,
         "failed": False, "failure": {}, "error": "", "switch_started": True, "revert_status": "",
         "revert_failure": {}, "current_version": "1.0.0", "target_version": "1.0.1",
         "gate_images": {"backend": {"image": "em/backend:1.0.1", "image_id": B}}, "describe": "not confirmed: ..."}
    r.update(over)
    return df.deploy_outcome(r)


FAILURE = {"phase": "gate", "gate": "api_health", "message": "503"}


@pytest.mark.parametrize(("over", "want"), [
    ({}, ("succeeded", None, "deploy of BACKEND_VERSION=1.0.1 succeeded (1.0.0 -> 1.0.1; em/backend:1.0.1); every"
                             " gate passed")),
    ({"plan_error": "bad input:  x"}, ("plan_error", None, "deploy not started: bad input: x")),
    ({"confirmed": False}, ("not_confirmed", None, "not confirmed: ...")),
    ({"failed": True, "failure": FAILURE, "error": "503", "revert_status": "succeeded"},
     ("rolled_back", "P2", "DEPLOY of BACKEND_VERSION=1.0.1 FAILED at gate api_health: 503; rolled back"
                           " automatically to 1.0.0, which passes the health gate")),
    ({"failed": True, "failure": FAILURE, "error": "503", "revert_status": "failed",
      "revert_failure": {"gate": "service_health", "message": "down"}},
     ("rollback_failed", "P0", "DEPLOY of BACKEND_VERSION=1.0.1 FAILED at gate api_health: 503; the AUTOMATIC"
                               " ROLLBACK to 1.0.0 ALSO FAILED at gate service_health: down")),
    ({"failed": True, "failure": FAILURE, "error": "503", "revert_status": "failed",
      "revert_failure": {"gate": None, "message": "x: y"}},
     ("rollback_failed", "P1", "DEPLOY of BACKEND_VERSION=1.0.1 FAILED at gate api_health: 503; the AUTOMATIC"
                               " ROLLBACK to 1.0.0 ALSO FAILED: x: y")),
    ({"failed": True, "failure": FAILURE, "error": "503"},
     ("failed", "P1", "DEPLOY of BACKEND_VERSION=1.0.1 FAILED at gate api_health: 503; no automatic rollback"
                      " (deploy_auto_rollback=false)")),
    ({"failed": True, "failure": {"gate": None}, "error": "Step 1: boom", "switch_started": False},
     ("failed", None, "DEPLOY of BACKEND_VERSION=1.0.1 FAILED: Step 1: boom; nothing was switched")),
])
def test_outcome_severity_and_summary(over, want):
    r = outcome(**over)
    assert (r["outcome"], r["severity"], r["summary"]) == want
    assert r["failed"] is (want[0] not in ("succeeded", "not_confirmed"))
