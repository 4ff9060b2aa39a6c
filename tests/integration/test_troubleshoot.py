"""troubleshoot-* playbooks through the driver against the real stack, each fault caused for real."""
from __future__ import annotations

import subprocess
import threading
import time
from pathlib import Path

import docker
import psycopg
import pytest

from tests.helpers import faults, stackenv
from tests.helpers.playbooks import assert_no_traceback, check_by_name, raw_artifacts, run

pytestmark = pytest.mark.integration

ROW_SQL = "UPDATE equipment_listings SET title = title WHERE id = 1"


@pytest.fixture()
def stack_ready(stack_env):
    for svc in ("postgres", "redis", "backend", "nginx"):
        faults.wait_healthy(svc, timeout=180)
    return stack_env


def alive(pg_dsn, pid):
    with psycopg.connect(pg_dsn, autocommit=True) as admin:
        return admin.execute("SELECT count(*) FROM pg_stat_activity WHERE pid = %s", (pid,)).fetchone()[0] == 1


def wait_for(predicate, timeout=20, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what}")


class LockScene:
    """A session holding a row lock (idle in transaction), two sessions waiting for it, one unrelated idle session."""

    def __init__(self, app_dsn: str, pg_dsn: str) -> None:
        self.pg_dsn = pg_dsn
        self.blocker = psycopg.connect(app_dsn, application_name="em-test-blocker")
        self.blocker.execute(ROW_SQL)  # opens the transaction and keeps the lock
        self.idle = psycopg.connect(app_dsn, autocommit=True, application_name="em-test-idle")
        self.idle.execute("SELECT 1")
        self.waiters = [psycopg.connect(app_dsn, autocommit=True, application_name=f"em-test-waiter{i}")
                        for i in (1, 2)]
        self.done: dict[int, object] = {}
        self.threads = []
        for conn in self.waiters:
            t = threading.Thread(target=self._wait, args=(conn,), daemon=True)
            t.start()
            self.threads.append(t)
            time.sleep(0.3)  # a queue: waiter 1 first, then waiter 2 behind it
        wait_for(self._both_waiting, what="both waiters to wait on the lock")

    @property
    def blocker_pid(self) -> int:
        return self.blocker.info.backend_pid

    @property
    def waiter_pids(self) -> list[int]:
        return sorted(c.info.backend_pid for c in self.waiters)

    def _wait(self, conn) -> None:
        try:
            conn.execute(ROW_SQL)
            self.done[conn.info.backend_pid] = "updated"
        except psycopg.Error as exc:
            self.done[conn.info.backend_pid] = exc

    def _both_waiting(self) -> bool:
        with psycopg.connect(self.pg_dsn, autocommit=True) as admin:
            n = admin.execute("SELECT count(*) FROM pg_stat_activity WHERE pid = ANY(%s) AND wait_event_type = 'Lock'",
                              (self.waiter_pids,)).fetchone()[0]
        return n == 2

    def close(self) -> None:
        with psycopg.connect(self.pg_dsn, autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                          "WHERE application_name LIKE 'em-test-%%' AND pid <> pg_backend_pid()")
        for t in self.threads:
            t.join(10)
        for c in [self.blocker, self.idle, *self.waiters]:
            try:
                c.close()
            except psycopg.Error:
                pass


def test_db_connections_names_the_blocker_and_frees_its_waiters(stack_ready, app_dsn, pg_dsn):
    scene = LockScene(app_dsn, pg_dsn)
    try:
        blocker, waiters, idle_pid = scene.blocker_pid, scene.waiter_pids, scene.idle.info.backend_pid

        result = run("troubleshoot-db-connections", extravars={"terminate": "blockers"})
        assert result.rc == 0, result.stdout[-3000:]
        assert_no_traceback(result)
        report = result.report
        assert blocker in report["database"]["blockers"]
        assert set(waiters) <= set(report["database"]["waiters"])
        line = next(x for x in report["diagnosis"]["blockers"] if x.startswith(f"pid {blocker} "))
        assert all(str(w) in line for w in waiters) and "idle in transaction" in line
        assert f"pid {blocker}" in report["summary"]
        assert check_by_name(report, "pg_isready")["status"] == "ok"
        assert check_by_name(report, "query")["status"] == "ok"
        assert report["severity"] == "P1"
        action = next(a for a in report["actions"] if a["name"] == "terminate")
        assert action["changed"] is False and action["detail"].startswith("not confirmed: would terminate")
        assert str(blocker) in action["detail"] and "confirm=true" in action["detail"]
        assert alive(pg_dsn, blocker) and not scene.done

        checked = run("troubleshoot-db-connections", extravars={"terminate": "blockers", "confirm": True}, check=True)
        assert checked.rc == 0 and alive(pg_dsn, blocker) and not scene.done

        result = run("troubleshoot-db-connections", extravars={"terminate": "blockers", "confirm": True})
        assert result.rc == 0, result.stdout[-3000:]
        assert_no_traceback(result)
        report = result.report
        term = report["terminate"]
        assert blocker in term["terminated"] and not set(waiters) & set(term["terminated"])
        assert set(waiters) <= set(term["waiters_freed"]) and not set(waiters) & set(term["still_waiting"])
        assert check_by_name(report, "waiters_freed")["status"] == "ok"
        action = next(a for a in report["actions"] if a["name"] == "terminate")
        assert action["changed"] is True and "waiters freed" in action["detail"]
        # The real state: blocker gone, both waiters got their lock and are still connected, the idle session untouched.
        wait_for(lambda: len(scene.done) == 2, what="the waiters to finish their UPDATE")
        assert all(v == "updated" for v in scene.done.values()), scene.done
        assert not alive(pg_dsn, blocker)
        assert all(alive(pg_dsn, w) for w in waiters)
        assert alive(pg_dsn, idle_pid) and scene.idle.execute("SELECT 1").fetchone() == (1,)
        raw = raw_artifacts(result)
        for key in ("POSTGRES_PASSWORD", "APP_DB_PASSWORD", "REDIS_PASSWORD"):
            assert stack_ready[key] not in raw, f"{key} leaked"
    finally:
        scene.close()


def test_db_connections_terminate_pids_touches_only_those(stack_ready, app_dsn, pg_dsn):
    victim = psycopg.connect(app_dsn, application_name="em-test-victim")
    victim.execute("SELECT 1")  # idle in transaction
    bystander = psycopg.connect(app_dsn, autocommit=True, application_name="em-test-bystander")
    bystander.execute("SELECT 1")
    try:
        pid = victim.info.backend_pid
        # (the role's own check: set through its variable, as the playbook's input check refuses the public one first)
        bad = run("troubleshoot-db-connections", tags="terminate", extravars={"troubleshoot_terminate": "pids",
                                                                               "confirm": True})
        assert bad.rc != 0 and "terminate must be blockers, long_running or pids" in bad.stdout
        result = run("troubleshoot-db-connections", extravars={"terminate": "pids", "pids": [pid], "confirm": True})
        assert result.rc == 0, result.stdout[-3000:]
        assert result.report["terminate"]["terminated"] == [pid]
        assert not alive(pg_dsn, pid) and alive(pg_dsn, bystander.info.backend_pid)
    finally:
        for c in (victim, bystander):
            try:
                c.close()
            except psycopg.Error:
                pass


OVERRIDE_WITHOUT_JWT = "services:\n  backend:\n    environment:\n      JWT_SECRET: !reset null\n"


def compose_with(override: Path | None, *args: str, attempts: int = 3) -> None:
    """docker compose with the stack's file (plus an override); retried, since other tests drive the same project."""
    files = ["-f", str(stackenv.COMPOSE_FILE)] + (["-f", str(override)] if override else [])
    cmd = ["docker", "compose", "--project-directory", str(stackenv.STACK_DIR), *files,
           "--env-file", str(stackenv.ENV_FILE), *args]
    for attempt in range(attempts):
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=180)
        if proc.returncode == 0:
            return
        time.sleep(3 * (attempt + 1))
    raise AssertionError(f"{' '.join(cmd)} failed: {proc.stderr[-2000:]}")


def backend_env_names() -> set[str]:
    client = docker.from_env(timeout=30)
    try:
        c = client.containers.get(faults.containers("backend")[0].id)
        return {item.partition("=")[0] for item in c.attrs["Config"]["Env"]}
    finally:
        client.close()


def backend_logs() -> str:
    return faults.containers("backend")[0].logs(tail=20).decode(errors="replace")


def backend_id() -> str | None:
    found = faults.containers("backend")
    return found[0].id if found else None


@pytest.mark.destructive
def test_startup_names_the_missing_jwt_secret_and_leaks_no_secret(stack_ready, tmp_path):
    override = tmp_path / "no-jwt.override.yml"
    override.write_text(OVERRIDE_WITHOUT_JWT)

    def scenario():
        compose_with(override, "up", "-d", "--no-deps", "backend")
        created = backend_id()
        assert "JWT_SECRET" not in backend_env_names()
        wait_for(lambda: "missing required environment variable" in backend_logs(), timeout=60,
                 what="the backend to refuse to start")
        result = run("troubleshoot-startup")
        if backend_id() != created:  # recreated by another run on the shared stack meanwhile
            return None
        assert result.rc == 0, result.stdout[-3000:]
        assert_no_traceback(result)
        report = result.report
        diagnosis = report["diagnosis"]
        assert diagnosis["kind"] == "environment" and "backend" in diagnosis["failed_services"]
        assert report["summary"].startswith("most likely cause: backend cannot start")
        assert "JWT_SECRET unset" in report["summary"]
        assert check_by_name(report, "env:backend:JWT_SECRET")["status"] == "critical"
        assert check_by_name(report, "env:backend:DATABASE_URL")["value"] == "set"
        assert report["environment"]["missing"] == ["JWT_SECRET"]
        assert check_by_name(report, "postgres_connectivity")["status"] == "ok"
        assert check_by_name(report, "redis_connectivity")["status"] == "ok"
        assert any(c["name"].startswith("disk:") for c in report["checks"])
        assert any("missing required environment variable" in m for m in report["startup_logs"]["backend"]["matches"])
        assert report["severity"] == "P0"
        # No secret of the stack's env file anywhere in what the run left (stdout, events, report, artifacts).
        raw = raw_artifacts(result)
        env = stackenv.read_env()
        for key in ("POSTGRES_PASSWORD", "APP_DB_PASSWORD", "REDIS_PASSWORD", "JWT_SECRET"):
            assert env[key] not in raw, f"{key} leaked"
        return result

    try:
        for _attempt in range(3):
            if scenario() is not None:
                break
        else:
            pytest.fail("the backend was recreated by another run during every attempt")
    finally:
        compose_with(None, "up", "-d", "--no-deps", "backend")
        faults.wait_healthy("backend", timeout=180)
    assert "JWT_SECRET" in backend_env_names()


def test_memory_reports_container_limits_host_memory_and_the_node_heap(stack_ready):
    result = run("troubleshoot-memory")
    assert result.rc == 0, result.stdout[-3000:]
    assert_no_traceback(result)
    report = result.report
    heap = next(h for h in report["node_heap"] if "backend" in h["container"])
    assert heap["ok"] and heap["exec_process"]["heapUsed"] > 0 and heap["heap_size_limit"] > 0
    assert heap["server"]["heap_used_bytes"] > 0 and heap["server"]["port"] >= 53000
    assert check_by_name(report, f"node_heap:{heap['container']}")["status"] in ("ok", "warning", "critical")
    assert check_by_name(report, "host_memory")["value"] > 0
    assert any(c["name"] == "memory:equipment-marketplace-backend-1" for c in report["checks"])
    assert report["diagnosis"]["top_containers"] and report["diagnosis"]["top_processes"]
    assert report["summary"]


BURN_STOP = "/tmp/em-test-burn.stop"
# Spins one core for at most 25 s; ends at once when BURN_STOP appears (looked for every 100k turns, a few ms).
BURN = ("const fs = require('fs'); const stop = 'STOP'; const end = Date.now() + 25000; let n = 0;"
        " while (Date.now() < end && (++n % 100000 !== 0 || !fs.existsSync(stop))) {}"
        " try { fs.unlinkSync(stop); } catch (e) {}").replace("STOP", BURN_STOP)


def test_cpu_names_the_busiest_container_and_its_top_process(stack_ready):
    backend = faults.containers("backend")[0]
    # Spin one core inside the backend while the playbook looks (stopped when the test is done, so the core is
    # not burnt for the rest of the 25 s under the tests that follow).
    backend.exec_run(["rm", "-f", BURN_STOP])
    backend.exec_run(["node", "-e", BURN], detach=True)
    try:
        time.sleep(2)
        result = run("troubleshoot-cpu")
    finally:
        backend.exec_run(["touch", BURN_STOP])
    assert result.rc == 0, result.stdout[-3000:]
    assert_no_traceback(result)
    report = result.report
    busiest = report["busiest_container"]
    assert busiest["name"] == backend.name, report["diagnosis"]
    top = busiest["processes"][0]
    assert "node -e" in top["command"] and top["cpu_pct"] > 20
    assert check_by_name(report, "host_load")["value"] >= 0 and check_by_name(report, "host_cpu")["value"] is not None
    assert f"busiest container {backend.name}" in report["summary"]


def test_db_connections_terminate_bad_input_is_refused_by_the_role(stack_ready, app_dsn, pg_dsn):
    """The role's own check (set through its variables, past the playbook's input check): terminate=bogus, pids 0,
    -1, abc, and pids without terminate=pids are refused with a clear message before any backend is chosen; a
    session that would match stays alive. (pids=0 used to reach postgres_admin, which refused it there.)"""
    session = psycopg.connect(app_dsn, autocommit=True, application_name="em-test-bystander")
    session.execute("SELECT 1")
    try:
        pid = session.info.backend_pid
        cases = [
            {"troubleshoot_terminate": "bogus"},
            {"troubleshoot_terminate": "pids", "troubleshoot_pids": [0]},
            {"troubleshoot_terminate": "pids", "troubleshoot_pids": -1},
            {"troubleshoot_terminate": "pids", "troubleshoot_pids": f"{pid},abc"},
            {"troubleshoot_pids": [pid]},
        ]
        for extra in cases:
            result = run("troubleshoot-db-connections", tags="terminate", extravars={**extra, "confirm": True})
            assert result.rc != 0, extra
            assert "terminate must be blockers, long_running or pids" in result.stdout, (extra, result.stdout[-2000:])
            assert "nothing was terminated" in result.stdout, extra
            assert_no_traceback(result)
            assert not [ev for ev in result.events if ev.get("event") in ("runner_on_ok", "runner_on_failed")
                        and "postgres_admin" in (ev["event_data"].get("task_action") or "")], extra
        assert alive(pg_dsn, pid)
    finally:
        session.close()
