"""daily-, weekly- and monthly-maintenance.yml against the reference stack, through the product's driver.

Weekly in --check (even with confirm=true) changes nothing: same containers, images and volumes, no Redis key
deleted, same row counts, no new ANALYZE. Run twice for real with confirm=true (OS upgrades restricted to
nothing: maintenance_os_update_packages=[]), the second run changes only what says it acts every run.
Over SSH it gives the same checks and statuses as over the local connection. Daily walks the real request
path through nginx and reports a missing backup as a finding. Monthly lists listeners and root containers.
"""
from __future__ import annotations

import socket
import subprocess
import time
from pathlib import Path

import docker
import psycopg
import pytest
import redis

from tests.helpers import faults
from tests.helpers.playbooks import assert_no_traceback, check_by_name, raw_artifacts, run

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
PROJECT = faults.PROJECT
ACTS = "(acts every run)"
# Safe for tests: confirm=true acts (prune, ANALYZE) but upgrades no OS package on this machine.
NO_OS_UPGRADES = {"maintenance_os_update_packages": []}


@pytest.fixture(autouse=True)
def healthy_stack(stack_env):
    for service in ("postgres", "redis", "backend", "nginx"):
        faults.wait_healthy(service)


# ---------- snapshots of the real state ----------

def docker_state() -> dict:
    client = docker.from_env(timeout=30)
    containers = client.containers.list(all=True, filters={"label": f"com.docker.compose.project={PROJECT}"})
    return {
        "containers": sorted((c.name, c.id) for c in containers),
        "images": sorted(i.id for i in client.images.list(all=True)),
        "volumes": sorted(v.name for v in client.volumes.list()),
    }


def redis_snapshot(stack_env) -> dict[str, int]:
    """Every key with its TTL (-1: none)."""
    client = redis.Redis(host=stack_env["BIND_ADDRESS"], port=int(stack_env["REDIS_PORT"]),
                         password=stack_env["REDIS_PASSWORD"], socket_timeout=10, decode_responses=True)
    try:
        keys = list(dict.fromkeys(client.scan_iter(count=1000)))
        pipe = client.pipeline(transaction=False)
        for key in keys:
            pipe.ttl(key)
        return dict(zip(keys, pipe.execute(), strict=True))
    finally:
        client.close()


def db_snapshot(pg_dsn) -> dict[str, tuple[int, object]]:
    """Row count and last manual ANALYZE of every user table of the marketplace database."""
    out = {}
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        tables = conn.execute("SELECT schemaname, relname, last_analyze FROM pg_stat_user_tables "
                              "WHERE schemaname = 'public' ORDER BY relname").fetchall()
        for schema, table, last_analyze in tables:
            count = conn.execute(f'SELECT count(*) FROM "{schema}"."{table}"').fetchone()[0]
            out[table] = (count, last_analyze)
    return out


def package_versions(names: list[str]) -> str:
    if not names:
        return ""
    proc = subprocess.run(["dpkg-query", "-W", "-f", "${Package} ${Version}\n", *names],
                          capture_output=True, text=True)
    return proc.stdout


def stack_ids() -> list[tuple]:
    """Name, id, state and start/finish times of every stack container: changes when one is recreated,
    stopped, killed or restarted."""
    client = docker.from_env(timeout=30)
    return sorted((c.name, c.id, c.status, c.attrs["State"].get("StartedAt"), c.attrs["State"].get("FinishedAt"))
                  for c in client.containers.list(all=True, filters={"label": f"com.docker.compose.project={PROJECT}"}))


def run_undisturbed(playbook: str, attempts: int = 5, **kwargs):
    """Run a playbook until a run sees the same stack containers before and after it.

    Other engineers' tests share this stack and recreate, kill or restart containers (deploy, rollback,
    incidents); a run during which that happened says nothing about this playbook, so it is repeated.
    """
    for _ in range(attempts):
        for service in ("postgres", "redis", "backend", "nginx"):
            faults.wait_healthy(service, timeout=180)
        before = stack_ids()
        result = run(playbook, **kwargs)
        if stack_ids() == before:
            return result
        time.sleep(5)
    raise AssertionError(f"the stack's containers were restarted by something else during each of {attempts} runs")


def changed_tasks(result) -> list[str]:
    return [ev["event_data"].get("task", "") for ev in result.events
            if ev.get("event") == "runner_on_ok" and (ev["event_data"].get("res") or {}).get("changed")]


def statuses(report: dict) -> dict[str, str]:
    return {c["name"]: c["status"] for c in report["checks"]}


# ---------- weekly ----------

def replaced_by_others(before: list[tuple[str, str]], after: list[tuple[str, str]], since: float) -> set[str]:
    """Stack containers that are gone but were replaced by a new container of the same name created after
    `since` (deploy/rollback tests of other engineers recreate the backend). The weekly playbook has no step
    that creates containers, so a replacement is always someone else's doing; a container it removed would
    leave no replacement."""
    client = docker.from_env(timeout=30)
    now_ids = dict(after)
    replaced = set()
    for name, cid in before:
        if now_ids.get(name) == cid or name not in now_ids:
            continue
        created = client.containers.get(now_ids[name]).attrs["Created"]  # 2026-01-31T02:00:00.123456789Z
        if created[:19] >= time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(since)):
            replaced.add(name)
    return replaced


def test_weekly_check_mode_changes_nothing(stack_env, pg_dsn):
    for _ in range(3):  # a run without anyone else recreating a container proves the most
        for service in ("postgres", "redis", "backend", "nginx"):
            faults.wait_healthy(service, timeout=180)
        before_docker, before_db = docker_state(), db_snapshot(pg_dsn)
        before_keys = redis_snapshot(stack_env)
        started, started_wall = time.monotonic(), time.time() - 1
        result = run("weekly-maintenance", check=True, extravars={"confirm": True})
        elapsed = time.monotonic() - started
        after_docker = docker_state()
        if after_docker["containers"] == before_docker["containers"]:
            break
    assert result.rc == 0, result.stdout[-3000:]
    assert_no_traceback(result)
    assert result.changed() == 0 and changed_tasks(result) == []

    # The same stack containers, same ids (nothing pruned or recreated by this run), apart from containers
    # other tests replaced meanwhile; no image or volume went (other tests may add some).
    replaced = replaced_by_others(before_docker["containers"], after_docker["containers"], started_wall)
    assert [c for c in after_docker["containers"] if c[0] not in replaced] == \
        [c for c in before_docker["containers"] if c[0] not in replaced]
    assert len(replaced) < len(before_docker["containers"])
    assert set(before_docker["images"]) <= set(after_docker["images"])
    assert set(before_docker["volumes"]) <= set(after_docker["volumes"])
    # No Redis key went, except keys that expired on their own during the run.
    after_keys = redis_snapshot(stack_env)
    gone = {k: ttl for k, ttl in before_keys.items() if k not in after_keys}
    assert all(0 <= ttl <= elapsed + 5 for ttl in gone.values()), f"keys deleted during --check: {list(gone)[:10]}"
    persistent = sorted(k for k, ttl in before_keys.items() if ttl == -1 or ttl > 86400)[:20]
    assert persistent and all(k in after_keys for k in persistent)
    # Same row counts and no new ANALYZE (pg_stat_user_tables.last_analyze unchanged).
    assert db_snapshot(pg_dsn) == before_db

    rep = result.report
    assert rep["check_mode"] is True and rep["confirmed"] is False
    assert {"os_updates", "docker_reclaimable", "analyze", "ssl_expiry"} <= set(statuses(rep))
    expiry = check_by_name(rep, "ssl_expiry")
    assert expiry["value"] > 0 and expiry["threshold"] == {"warning": 30, "critical": 7}
    actions = {a["name"]: a for a in rep["actions"]}
    assert set(actions) == {"OS package updates", f"Prune dangling images and build cache, never volumes {ACTS}",
                            f"ANALYZE the database {ACTS}"}
    for action in actions.values():
        assert action["changed"] is False
        assert action["detail"].startswith("check mode: would") and "confirm=true" in action["detail"]
    assert "never volumes" in actions[f"Prune dangling images and build cache, never volumes {ACTS}"]["detail"]
    # The pending OS updates were listed from the simulation, and none was installed.
    pending = check_by_name(rep, "os_updates")["pending"]
    assert isinstance(pending, list) and check_by_name(rep, "os_updates")["value"] == len(pending)


@pytest.fixture()
def prune_witnesses():
    """A stopped container labelled as the stack's (a compose one-off, which the stack's tools ignore) and a
    dangling image: the prune must keep the first and remove the second."""
    client = docker.from_env(timeout=60)
    name = f"em-maint-test-stopped-{int(time.time())}"
    container = client.containers.create("debian:bookworm-slim", ["true"], name=name, labels={
        "com.docker.compose.project": PROJECT, "com.docker.compose.oneoff": "True"})
    dangling = container.commit()  # no repository/tag: a dangling image, used by no container
    try:
        yield container.id, dangling.id
    finally:
        for remove in (lambda: client.containers.get(container.id).remove(force=True),
                       lambda: client.images.remove(dangling.id, force=True)):
            try:
                remove()
            except docker.errors.NotFound:
                pass


def test_weekly_twice_with_confirm_second_run_changes_only_declared_actions(stack_env, pg_dsn, prune_witnesses):
    stopped_id, dangling_id = prune_witnesses
    before_docker = docker_state()
    analyzed_before = {t: a for t, (_, a) in db_snapshot(pg_dsn).items()}
    first = run("weekly-maintenance", extravars={"confirm": True, **NO_OS_UPGRADES})
    assert first.rc == 0, first.stdout[-3000:]
    assert_no_traceback(first)
    pending = check_by_name(first.report, "os_updates")["pending"]
    versions = package_versions(pending[:50])
    # The first run may also refresh the apt lists (once a day); nothing else may change.
    assert all(ACTS in t or t.startswith("Refresh the apt package lists") for t in changed_tasks(first)), \
        changed_tasks(first)

    # The prune acted: the dangling image went, the stopped container of the stack stayed.
    client = docker.from_env(timeout=30)
    assert dangling_id not in {i.id for i in client.images.list(all=True)}
    assert client.containers.get(stopped_id).status == "created"

    second = run("weekly-maintenance", extravars={"confirm": True, **NO_OS_UPGRADES})
    assert second.rc == 0, second.stdout[-3000:]
    assert_no_traceback(second)
    changed = changed_tasks(second)
    assert changed, "ANALYZE acts on every confirmed run"
    assert all(ACTS in task for task in changed), f"tasks changed on the second run: {changed}"
    assert second.changed("demo") == len(changed)

    rep = second.report
    assert rep["confirmed"] is True and rep["check_mode"] is False
    actions = {a["name"]: a for a in rep["actions"]}
    analyze = actions[f"ANALYZE the database {ACTS}"]
    assert analyze["changed"] is True and analyze["detail"].startswith("analysed database")
    assert "volumes untouched" in actions[f"Prune dangling images and build cache, never volumes {ACTS}"]["detail"]
    assert actions["OS package updates"]["changed"] is False
    assert "nothing selected to upgrade" in actions["OS package updates"]["detail"]

    # ANALYZE really ran: every table has a newer last_analyze.
    analyzed_after = {t: a for t, (_, a) in db_snapshot(pg_dsn).items()}
    for table, when in analyzed_after.items():
        assert when is not None and (analyzed_before.get(table) is None or when > analyzed_before[table]), table
    # The stack is untouched: every container (by name; other tests may recreate one), the images they run
    # and every volume are still there; no OS package was upgraded.
    after_docker = docker_state()
    assert {n for n, _ in before_docker["containers"]} <= {n for n, _ in after_docker["containers"]}
    assert set(before_docker["volumes"]) <= set(after_docker["volumes"])
    in_use = {c.image.id for c in client.containers.list(all=True, filters={
        "label": f"com.docker.compose.project={PROJECT}"})}
    assert in_use <= set(after_docker["images"])
    assert package_versions(pending[:50]) == versions


@pytest.mark.parametrize("confirm", [True, False], ids=["confirmed", "described"])
def test_weekly_analyze_that_cannot_connect_is_a_failed_step(stack_env, pg_dsn, confirm):
    """An ANALYZE (or, unconfirmed, the listing of what it would analyse) that cannot log in - a wrong password
    for this run - is a critical check naming the failure, never "ok, 0 tables"; nothing is analysed."""
    wrong = "not-the-password-%d" % int(time.time())
    analyzed_before = {t: a for t, (_, a) in db_snapshot(pg_dsn).items()}
    result = run("weekly-maintenance", tags="analyze",
                 extravars={"confirm": confirm, "marketplace_db_password": wrong})
    assert result.rc == 0, result.stdout[-3000:]  # maintenance reports its findings; the run itself ends
    assert_no_traceback(result)
    rep = result.report
    analyze = check_by_name(rep, "analyze")
    assert analyze["status"] == "critical", analyze
    assert "password authentication failed" in analyze["message"] or "could not connect" in analyze["message"]
    assert ("ANALYZE failed" if confirm else "could not list the tables") in analyze["message"]
    assert "0 table(s)" not in analyze["message"] and not analyze["message"].startswith("analysed")
    action = next(a for a in rep["actions"] if a["name"] == f"ANALYZE the database {ACTS}")
    assert action["changed"] is False and not action["detail"].startswith("analysed")
    assert ("ANALYZE failed" in action["detail"]) if confirm else ("not planned" in action["detail"])
    assert rep["status"] == "critical" and rep["summary"].startswith("weekly maintenance: ")
    assert "analyze critical" in rep["summary"] and rep["schedule"] == "weekly"
    assert rep["steps"] == ["os_updates", "docker_prune", "analyze", "ssl"] and rep["confirmed"] is confirm
    assert {t: a for t, (_, a) in db_snapshot(pg_dsn).items()} == analyzed_before
    assert wrong not in raw_artifacts(result)


def test_weekly_over_ssh_gives_the_same_result_as_local(stack_env, ssh_target):
    # (weekly probes no application container, so other tests recreating the backend do not matter here)
    local = run("weekly-maintenance")
    over_ssh = run("weekly-maintenance", inventory=ROOT / "inventory" / "demo-ssh", envvars=ssh_target.env)
    for result in (local, over_ssh):
        assert result.rc == 0, result.stdout[-3000:]
        assert_no_traceback(result)
        assert result.changed() == 0  # without confirm=true it only describes
    # The connection really was SSH: the client recorded the private sshd's host key.
    host_key = (ssh_target.dir / "host_key.pub").read_text().split()[1]
    assert host_key in ssh_target.known_hosts.read_text()
    # Same checks with the same statuses, same actions (all described, none taken).
    assert statuses(over_ssh.report) == statuses(local.report)
    assert [(a["name"], a["changed"]) for a in over_ssh.report["actions"]] == \
        [(a["name"], a["changed"]) for a in local.report["actions"]]
    assert all(a["detail"].startswith("not confirmed: would") for a in over_ssh.report["actions"])
    assert check_by_name(over_ssh.report, "os_updates")["value"] == check_by_name(local.report, "os_updates")["value"]


def test_daily_reports_the_smoke_path_and_no_backup_as_a_finding(stack_env, tmp_path):
    empty = tmp_path / "no-backups-here"
    empty.mkdir()
    result = run_undisturbed("daily-maintenance", extravars={"marketplace_backup_dir": str(empty)})
    assert result.rc == 0, result.stdout[-3000:]
    assert_no_traceback(result)
    rep = result.report
    assert rep["playbook"] == "daily-maintenance" and rep["host"] == "demo"

    # The real request path through nginx.
    login = check_by_name(rep, "smoke_login")
    assert login["status"] == "ok" and login["value"] == 200 and "with a token" in login["message"]
    me = check_by_name(rep, "smoke_authenticated_request")
    assert me["status"] == "ok" and "demo@example.com" in me["message"]
    listing = check_by_name(rep, "smoke_listing_cache")
    assert listing["status"] == "ok" and listing["value"] == "HIT"
    # The health check ran as part of the smoke test.
    assert any(c.get("step") == "smoke" and c["name"] not in ("smoke_login", "smoke_authenticated_request",
                                                              "smoke_listing_cache") for c in rep["checks"])
    # Disk space and the 24 h log review per service.
    disks = [c for c in rep["checks"] if c["name"].startswith("disk:")]
    assert disks and all(0 <= c["value"] <= 100 for c in disks)
    reviewed = {c["name"].split(":", 1)[1] for c in rep["checks"] if c["name"].startswith("log_review:")}
    assert {"postgres", "redis", "backend", "nginx"} <= reviewed

    # No backup: a finding (critical check naming the directory), not a failed run.
    no_backup = [c for c in rep["checks"] if c.get("step") == "backups" and c["status"] == "critical"]
    assert no_backup, [c for c in rep["checks"] if c.get("step") == "backups"]
    assert any(str(empty) in c["message"] and "no backup" in c["message"] for c in no_backup)
    assert rep["status"] == "critical" and rep["severity"] in ("P0", "P1", "P2")
    # No secret reached any artifact of the run.
    text = raw_artifacts(result)
    for secret in ("demo-password", stack_env["POSTGRES_PASSWORD"], stack_env["REDIS_PASSWORD"],
                   stack_env["JWT_SECRET"]):
        assert secret not in text


def test_daily_validates_existing_backups(stack_env):
    """With the real backup directory: when backups exist there (db-backup.yml made them), they validate."""
    result = run("daily-maintenance", tags="backups")
    assert result.rc == 0, result.stdout[-3000:]
    assert_no_traceback(result)
    found = {c["name"]: c for c in result.report["checks"] if c.get("step") == "backups"}
    if found.get("backup_exists", {}).get("status") == "critical":
        pytest.skip("no backup in the real backup directory yet (db-backup.yml has not run)")
    assert found["backup_exists"]["status"] == "ok"
    assert found["backup_checksum"]["status"] == "ok" and "match the manifest" in found["backup_checksum"]["message"]
    assert "backup_fresh" in found


# ---------- monthly ----------

@pytest.fixture()
def stray_listener():
    """A listener nobody expects, on 127.0.0.1."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(1)
    yield sock.getsockname()[1]
    sock.close()


def test_monthly_audit_lists_listeners_and_root_containers(stack_env, pg_dsn, stray_listener):
    result = run_undisturbed("monthly-maintenance")
    assert result.rc == 0, result.stdout[-3000:]
    assert_no_traceback(result)
    rep = result.report

    listeners = check_by_name(rep, "listeners")
    unexpected_ports = {item["port"] for item in listeners["unexpected"]}
    assert stray_listener in unexpected_ports and listeners["status"] in ("warning", "critical")
    stack_ports = {int(stack_env[k]) for k in ("POSTGRES_PORT", "REDIS_PORT", "NGINX_HTTP_PORT", "NGINX_HTTPS_PORT")}
    assert not stack_ports & unexpected_ports
    stray = next(i for i in listeners["unexpected"] if i["port"] == stray_listener)
    assert stray["address"] == "127.0.0.1" and stray["exposed"] is False

    # Containers that start as root, compared with what the Docker engine says.
    client = docker.from_env(timeout=30)
    stack = client.containers.list(all=True, filters={"label": f"com.docker.compose.project={PROJECT}"})
    as_root = sorted(c.name for c in stack if (c.attrs["Config"].get("User") or "root").split(":")[0] in ("root", "0"))
    root = check_by_name(rep, "root_containers")
    assert sorted(root["value"]) == as_root
    assert f"{PROJECT}-backend-1" not in root["value"] and root["users"][f"{PROJECT}-backend-1"] == "nobody"
    assert root["status"] == ("warning" if as_root else "ok")
    age = check_by_name(rep, "image_age")
    assert age["value"] >= 0 and age["images"]

    # npm audit: the backend has no package-lock.json, so the step says it was skipped and why.
    audit = check_by_name(rep, "npm_audit")
    assert audit["skipped"] is True and "package-lock.json" in audit["message"]
    assert any(s["step"] == "npm_audit" for s in rep["skipped"])
    # Performance review.
    for name in ("slow_queries", "cache_hit_ratio", "tables_never_analyzed"):
        check_by_name(rep, name)
    assert "top_by_mean" in check_by_name(rep, "slow_queries")
    # Backup restore drill (the backup verification role): restored into a scratch database, row counts
    # compared, scratch database dropped - or, without any backup, a critical finding saying so.
    drill = {c["name"]: c for c in rep["checks"] if c.get("step") == "restore_drill"}
    if drill["backup_exists"]["status"] == "critical":
        assert drill["drill_restore"]["status"] == "critical"
    else:
        assert drill["drill"]["status"] == "ok" and drill["drill_scratch_dropped"]["status"] == "ok"
        assert rep["drill"]["restored"] is True and rep["drill"]["counts_match"] is True
        with psycopg.connect(pg_dsn, autocommit=True) as conn:
            left = conn.execute("SELECT datname FROM pg_database WHERE datname LIKE %s",
                                (stack_env["POSTGRES_DB"] + "_drill_%",)).fetchall()
        assert rep["drill"]["scratch_database"] not in {r[0] for r in left}
