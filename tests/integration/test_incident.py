"""incident-p0 and incident-p1 through the driver against the real stack, each fault caused for real.

Service-affecting tests are marked destructive and restore the stack (backend healthy, one replica, the
original environment) in finally blocks, whatever happens.
"""
from __future__ import annotations

import contextlib
import socket
import subprocess
import threading
import time
from pathlib import Path

import docker
import psycopg
import pytest
import requests

from tests.helpers import faults, stackenv
from tests.helpers.playbooks import assert_no_traceback, check_by_name, raw_artifacts, run

pytestmark = pytest.mark.integration


def backend_containers(all_states=True):
    return faults.containers("backend", all_states=all_states)


def backend_states():
    client = docker.from_env(timeout=30)
    try:
        return sorted(client.containers.get(c.id).attrs["State"]["Status"] for c in backend_containers())
    finally:
        client.close()


def compose_retry(*args: str, attempts: int = 3) -> None:
    """stackenv.compose, retried: other tests drive the same compose project at the same time."""
    for attempt in range(attempts):
        proc = stackenv.compose(*args, check=False)
        if proc.returncode == 0:
            return
        time.sleep(3 * (attempt + 1))
    raise AssertionError(f"docker compose {' '.join(args)} failed: {proc.stderr[-2000:]}")


def restore_backend_single_replica():
    """One healthy backend with the compose file's own configuration."""
    if len(backend_containers()) != 1:
        compose_retry("up", "-d", "--scale", "backend=1", "--no-recreate", "backend")
    compose_retry("up", "-d", "--no-deps", "backend")  # recreates only when the config differs
    faults.wait_healthy("backend", timeout=180)
    faults.wait_healthy("nginx", timeout=120)


def api_ports(base_url, requests_count=24):
    ports, codes = set(), []
    for _ in range(requests_count):
        r = requests.get(f"{base_url}/api/health", timeout=5)
        codes.append(r.status_code)
        if r.status_code == 200:
            ports.add(r.json()["port"])
    return ports, codes


def backend_fingerprint():
    """(id, StartedAt) of each backend container: changes when anything starts or recreates it."""
    client = docker.from_env(timeout=30)
    try:
        return sorted((c.id, client.containers.get(c.id).attrs["State"]["StartedAt"]) for c in backend_containers())
    finally:
        client.close()


def backend_has_jwt() -> bool:
    client = docker.from_env(timeout=30)
    try:
        env = client.containers.get(backend_containers()[0].id).attrs["Config"]["Env"]
        return any(item.startswith("JWT_SECRET=") for item in env)
    finally:
        client.close()


def until_undisturbed(scenario, attempts=3):
    """Run a destructive scenario until one run was not disturbed by another run on the shared stack (a new
    pytest session's stack fixture brings a stopped service back; deploy tests recreate the backend). The
    scenario returns None when it saw such a disturbance before asserting anything."""
    for _ in range(attempts):
        if scenario() is not None:
            return
    pytest.fail(f"the backend was started or recreated by another run during all {attempts} attempts")


def timeline_steps(report):
    return [(t["step"], t["result"]) for t in report["timeline"]]


@pytest.fixture()
def stack_ready(stack_env):
    for svc in ("postgres", "redis", "backend", "nginx"):
        faults.wait_healthy(svc, timeout=180)
    return stack_env


@pytest.mark.destructive
def test_p0_backend_stopped_classified_then_restarted_with_confirm(stack_ready):
    base = f"http://{stack_ready['BIND_ADDRESS']}:{stack_ready['NGINX_HTTP_PORT']}"

    def scenario():
        faults.wait_healthy("backend")
        faults.stop_service("backend")
        stopped = backend_fingerprint()
        # Without confirm: the outage is classified, nothing changes.
        result = run("incident-p0", extravars={"services": ["backend"]})
        if backend_fingerprint() != stopped:
            return None
        assert result.rc == 0, result.stdout[-3000:]
        assert_no_traceback(result)
        report = result.report
        assert report["severity"] == "P0" and report["status"] == "critical"
        assert check_by_name(report, "incident_severity")["value"] == "P0"
        assert any("backend" in r for r in report["classification"]["p0_reasons"])
        assert check_by_name(report, "frontdoor_api")["status"] == "critical"
        restart = next(a for a in report["actions"] if a["name"] == "restart")
        assert restart["changed"] is False
        assert restart["detail"].startswith("not confirmed: would start backend")
        assert "confirm=true" in restart["detail"]
        assert result.changed("demo") == 0
        assert backend_states() == ["exited"]
        assert requests.get(f"{base}/api/health", timeout=5).status_code >= 500
        steps = [s for s, _ in timeline_steps(report)]
        assert steps[:2] == ["start", "services"] and "classify" in steps and steps[-1] == "restart"

        # --check with confirm=true still changes nothing.
        checked = run("incident-p0", extravars={"services": ["backend"], "confirm": True, "incident_run_health": False},
                      check=True)
        assert checked.rc == 0 and checked.report["check_mode"] is True
        if backend_fingerprint() != stopped:
            return None
        restart = next(a for a in checked.report["actions"] if a["name"] == "restart")
        assert restart["detail"].startswith("check mode: would")
        assert backend_states() == ["exited"]

        # With confirm: restarted, health back, timeline with times and results (health polled every second).
        result = run("incident-p0", extravars={"services": ["backend"], "confirm": True, "incident_health_interval": 1})
        assert result.rc == 0, result.stdout[-3000:]
        assert_no_traceback(result)
        report = result.report
        assert report["severity"] == "P0"  # what the incident was
        restart = next(a for a in report["actions"] if a["name"] == "restart")
        assert restart["changed"] is True and restart["detail"] == "started backend"
        assert check_by_name(report, "recovery")["status"] == "ok"
        steps = timeline_steps(report)
        assert ("restart", "changed") in steps and ("verify", "ok") in steps
        assert [s for s, _ in steps].index("restart") < [s for s, _ in steps].index("verify")
        assert all(t["time"].endswith("Z") and t["detail"] is not None for t in report["timeline"])
        assert backend_states() == ["running"]
        assert requests.get(f"{base}/api/health", timeout=5).status_code == 200
        assert not any(a["name"] == "rollback" for a in report["actions"])
        return result

    try:
        until_undisturbed(scenario)
    finally:
        if backend_states() != ["running"]:
            faults.start_service("backend")
        faults.wait_healthy("backend")


OVERRIDE_WITHOUT_JWT = "services:\n  backend:\n    environment:\n      JWT_SECRET: !reset null\n"


def recreate_backend_without_jwt(tmp_path: Path) -> None:
    override = tmp_path / "no-jwt.override.yml"
    override.write_text(OVERRIDE_WITHOUT_JWT)
    cmd = ["docker", "compose", "--project-directory", str(stackenv.STACK_DIR), "-f", str(stackenv.COMPOSE_FILE),
           "-f", str(override), "--env-file", str(stackenv.ENV_FILE), "up", "-d", "--no-deps", "backend"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stderr[-2000:]


@pytest.mark.destructive
def test_p0_restart_that_does_not_heal_fails_and_records_the_rollback_step(stack_ready, tmp_path):
    """A backend that crashes at every start (JWT_SECRET removed): restart, no health, rollback tried and recorded."""

    def scenario():
        faults.wait_healthy("backend")
        recreate_backend_without_jwt(tmp_path)
        created = [c.id for c in backend_containers()]
        # The rollback runs the deploy role (deploy_action=rollback); a version it refuses keeps it from touching
        # the shared stack and shows the step recorded as unavailable with the deploy role's reason. (Set through the
        # role's variable: the playbook's input check refuses such a public `version` before anything runs.)
        # (It never turns healthy, so a short wait proves the same: 4 s, polled every 2 s.)
        result = run("incident-p0", extravars={"services": ["backend"], "confirm": True, "incident_run_health": False,
                                               "incident_health_timeout": 4, "incident_health_interval": 2,
                                               "deploy_version": "@@no-such-version"})
        if [c.id for c in backend_containers()] != created or backend_has_jwt():
            return None
        assert result.rc != 0 and result.status == "failed"
        assert_no_traceback(result)
        report = result.report
        assert report["severity"] == "P0"
        restart = next(a for a in report["actions"] if a["name"] == "restart")
        assert restart["changed"] is True and "backend" in restart["detail"]
        assert check_by_name(report, "recovery")["status"] == "critical"
        rollback = next(a for a in report["actions"] if a["name"] == "rollback")
        assert rollback["changed"] is False and rollback["detail"].startswith("unavailable:")
        assert "version" in rollback["detail"]  # the deploy role's own reason
        steps = timeline_steps(report)
        assert ("rollback", "started") in steps and ("rollback", "unavailable") in steps
        assert "health did not come back" in result.stdout
        return result

    try:
        until_undisturbed(scenario)
    finally:
        restore_backend_single_replica()


def test_p1_reports_a_long_running_query(stack_ready, pg_dsn, app_dsn):
    conn = psycopg.connect(app_dsn, autocommit=True, application_name="em-test-sleeper")
    pid = conn.info.backend_pid
    errors = []

    def sleeper():
        try:
            conn.execute("SELECT pg_sleep(600)")
        except psycopg.Error as exc:  # cancelled in teardown
            errors.append(exc)

    thread = threading.Thread(target=sleeper, daemon=True)
    thread.start()
    try:
        with psycopg.connect(pg_dsn, autocommit=True) as admin:
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                row = admin.execute("SELECT state, now() - query_start > interval '3 seconds' FROM pg_stat_activity "
                                    "WHERE pid = %s", (pid,)).fetchone()
                if row and row[0] == "active" and row[1]:
                    break
                time.sleep(0.5)
        result = run("incident-p1", extravars={"incident_long_query_seconds": 3})
        assert result.rc == 0, result.stdout[-3000:]
        assert_no_traceback(result)
        report = result.report
        longs = report["database"]["long_queries"]
        mine = [q for q in longs if q["pid"] == pid]
        assert mine and "pg_sleep(600)" in mine[0]["query"] and mine[0]["duration_seconds"] >= 3
        assert check_by_name(report, "long_queries")["status"] in ("warning", "critical")
        assert pid in [q["pid"] for q in report["database"]["active_queries"]]
        assert report["redis"]["latency"]["samples"] > 0
        assert report["metrics"]["targets"][0]["available"] is True
        steps = [s for s, _ in timeline_steps(report)]
        assert {"services", "metrics", "database", "redis", "classify"} <= set(steps)
        assert report["severity"] in ("P1", "P2")
        raw = raw_artifacts(result)
        for key in ("POSTGRES_PASSWORD", "APP_DB_PASSWORD", "REDIS_PASSWORD", "JWT_SECRET"):
            assert stack_ready[key] not in raw, f"{key} leaked"
    finally:
        with psycopg.connect(pg_dsn, autocommit=True) as admin:
            admin.execute("SELECT pg_cancel_backend(%s)", (pid,))
        thread.join(10)
        conn.close()
    assert errors and "cancel" in str(errors[0]).lower()


def test_p1_scale_is_described_without_confirm_and_in_check_mode(stack_ready):
    result = run("incident-p1", tags="scale", extravars={"scale_backend": 2})
    assert result.rc == 0
    action = next(a for a in result.report["actions"] if a["name"] == "scale")
    assert action["changed"] is False and action["detail"].startswith("not confirmed: would scale backend from 1 to 2")
    # The action in words (compose is driven by community.docker.docker_compose_v2, no CLI line to print).
    assert "compose up of backend" in action["detail"] and "with 2 replica(s)" in action["detail"]
    checked = run("incident-p1", tags="scale", extravars={"scale_backend": 2, "confirm": True}, check=True)
    assert checked.rc == 0
    assert next(a for a in checked.report["actions"] if a["name"] == "scale")["detail"].startswith("check mode: would")
    assert len(backend_containers()) == 1


def test_p1_rejects_a_replica_count_the_port_range_cannot_hold(stack_ready):
    result = run("incident-p1", tags="scale", extravars={"scale_backend": 9, "confirm": True})
    assert result.rc != 0
    assert "scale_backend must be a whole number from 1 to 4" in result.stdout
    assert len(backend_containers()) == 1


@pytest.mark.destructive
def test_p1_scales_to_two_healthy_backends_serving_through_nginx(stack_ready):
    base = f"http://{stack_ready['BIND_ADDRESS']}:{stack_ready['NGINX_HTTP_PORT']}"
    try:
        # (the replicas' health polled every second instead of 3 s: a poll variable, not the 120 s timeout)
        result = run("incident-p1", tags="scale", extravars={"scale_backend": 2, "confirm": True,
                                                             "incident_scale_interval": 1})
        assert result.rc == 0, result.stdout[-3000:]
        assert_no_traceback(result)
        report = result.report
        action = next(a for a in report["actions"] if a["name"] == "scale")
        assert action["changed"] is True and "to 2 replica(s)" in action["detail"]
        verify = check_by_name(report, "scale_verify")
        assert verify["status"] == "ok" and len(verify["value"]["ports_serving"]) == 2
        # The real state, independently of the playbook (other runs may restart the backend meanwhile: wait).
        faults.wait_healthy("backend", timeout=90)
        client = docker.from_env(timeout=30)
        try:
            states = [client.containers.get(c.id).attrs["State"] for c in backend_containers()]
        finally:
            client.close()
        assert len(states) == 2 and all(s["Health"]["Status"] == "healthy" for s in states)
        ports, codes = api_ports(base)
        assert set(codes) == {200} and len(ports) == 2
    finally:
        restore_backend_single_replica()
    assert len(backend_containers()) == 1


def all_fingerprints():
    """(service, id, StartedAt, image) of every container of the stack: changes when anything starts or recreates."""
    client = docker.from_env(timeout=30)
    try:
        out = []
        for svc in ("backend", "nginx", "postgres", "redis", "prometheus"):
            for c in faults.containers(svc):
                attrs = client.containers.get(c.id).attrs
                out.append((svc, c.id, attrs["State"]["StartedAt"], attrs["Image"]))
        return sorted(out)
    finally:
        client.close()


def test_p0_unknown_service_is_refused_before_anything_runs(stack_ready):
    """services=[bakcend]: a clear error naming it and the project's real services (read from the target's compose
    labels), non-zero rc, nothing read for the incident and nothing restarted - also when only the restart step runs
    (it used to say "no failed service among bakcend: nothing to restart" and succeed)."""
    before = all_fingerprints()
    for tags in (None, "restart"):
        result = run("incident-p0", tags=tags, extravars={"services": "bakcend", "confirm": True,
                                                          "incident_run_health": False})
        assert result.rc != 0 and result.status == "failed", result.stdout[-3000:]
        assert_no_traceback(result)
        assert "unknown service(s) bakcend" in result.stdout
        assert "known services: backend, nginx, postgres, prometheus, redis" in result.stdout
        assert "stopped before reading or changing anything" in result.stdout
        assert "nothing to restart" not in result.stdout
        ran = {ev["event_data"].get("task") for ev in result.events if ev.get("event") == "runner_on_ok"}
        assert not any(t and t.startswith(("Start the stopped", "Restart the running", "Count the error lines"))
                       for t in ran), ran
    assert all_fingerprints() == before


@contextlib.contextmanager
def port_held(host: str, port: int):
    """Listen on host:port so that a service binding it (host networking) cannot start."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # the stopped server's connections in TIME_WAIT
    try:
        sock.bind((host, port))
        sock.listen(64)
        yield sock
    finally:
        sock.close()


@pytest.mark.destructive
def test_p0_redis_down_is_restarted_but_the_application_is_not_rolled_back(stack_ready):
    """Redis stopped and unable to come back (its port is taken): the P0 restart tries redis, health does not come
    back, and the run fails naming redis - without running the deploy role's rollback (the backend image stays)."""
    env = stack_ready
    client = docker.from_env(timeout=30)
    try:
        images_before = sorted(client.containers.get(c.id).attrs["Image"] for c in backend_containers())
    finally:
        client.close()
    faults.stop_service("redis")
    try:
        with port_held(env["BIND_ADDRESS"], int(env["REDIS_PORT"])):
            result = run("incident-p0", extravars={"confirm": True, "incident_run_health": False,
                                                   "incident_health_timeout": 2, "incident_health_interval": 1})
        assert result.rc != 0 and result.status == "failed", result.stdout[-3000:]
        assert_no_traceback(result)
        report = result.report
        assert report["severity"] == "P0"
        restart = next(a for a in report["actions"] if a["name"] == "restart")
        assert restart["changed"] is True and "redis" in restart["detail"]
        assert check_by_name(report, "recovery")["status"] == "critical"
        rollback = next(a for a in report["actions"] if a["name"] == "rollback")
        assert rollback["changed"] is False
        assert rollback["detail"].startswith("not run: the outage involves redis"), rollback["detail"]
        steps = timeline_steps(report)
        assert ("rollback", "skipped") in steps and ("rollback", "started") not in steps
        assert "health did not come back after restarting" in result.stdout and "not rolled back" in result.stdout
        roles_run = {ev["event_data"].get("role") for ev in result.events if ev.get("event") == "runner_on_ok"}
        assert "deploy" not in roles_run
        client = docker.from_env(timeout=30)
        try:
            assert sorted(client.containers.get(c.id).attrs["Image"] for c in backend_containers()) == images_before
        finally:
            client.close()
    finally:
        stackenv.compose("restart", "-t", "5", "redis", check=False)
        for svc in ("redis", "backend", "nginx"):
            faults.wait_healthy(svc, timeout=180)


def test_p1_scale_backend_refused_by_the_role_itself(stack_ready):
    """The role's own check (defence in depth behind the playbook's input check): set through the role variable."""
    for value in (0, -1, "2.0", True):
        result = run("incident-p1", tags="scale", extravars={"incident_scale_backend": value, "confirm": True})
        assert result.rc != 0, value
        assert "scale_backend must be a whole number from 1 to 4" in result.stdout, value
        assert_no_traceback(result)
    assert len(backend_containers()) == 1
