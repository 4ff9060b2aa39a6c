"""emergency-restore.yml and db-restore.yml through the driver against the reference stack.

The destructive test really corrupts the application database (most of audit_events deleted, payments
dropped), restores it and checks the exact row counts of the manifest. Every test leaves the stack healthy:
the application database holds the backup's row counts, backend and nginx run, the maintenance file is
gone, and the databases the test made (restored, replaced, side by side) are dropped.
"""
from __future__ import annotations

import datetime
import shutil
import time
import urllib.error
import urllib.request

import pytest

from tests.helpers import backups as bk
from tests.helpers import faults, stackenv
from tests.helpers.playbooks import assert_no_traceback, check_by_name, raw_artifacts, run

pytestmark = pytest.mark.integration

UTC = datetime.UTC
KEPT = r"^equipment_marketplace_(replaced|restore)_[0-9]{8}_[0-9]{6}$"


@pytest.fixture(scope="module")
def backup(stack_env):
    """A fresh backup of the application database in a private directory: (dir, name, manifest)."""
    bk.wait_stack_healthy()
    path = bk.new_backup_dir("restore")
    result = run("db-backup", extravars={"marketplace_backup_dir": str(path), "confirm": True})
    assert result.rc == 0, result.stdout[-3000:]
    name = bk.backups_in(path)[0]
    yield path, name, bk.manifest(path, name)
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture()
def guarded(backup):
    """Waits for a healthy stack first; afterwards puts the app back whatever happened, repairs the application
    database if a test left it damaged (from the backup the test registered in ``safety``), and drops the
    databases the test left."""
    bk.wait_stack_healthy()
    kept_before = set(bk.databases(KEPT))
    safety: dict = {}
    yield backup, safety
    try:
        bk.ensure_app_running()
    finally:
        if safety:
            bk.ensure_live_db(safety["manifest"]["row_counts"], safety["dir"], safety["name"])
        for db in set(bk.databases(KEPT)) - kept_before:
            bk.drop_database(db)
        bk.wait_stack_healthy()


def _vars(path, **extra):
    return {"marketplace_backup_dir": str(path), **extra}


def _api_health(wait: float = 90) -> int:
    """/api/health through nginx; retried for a while (another engineer's deploy may be restarting the backend)."""
    env = stackenv.read_env()
    url = f"http://{env['BIND_ADDRESS']}:{env['NGINX_HTTP_PORT']}/api/health"
    deadline = time.monotonic() + wait
    while True:
        try:
            with urllib.request.urlopen(url, timeout=10) as resp:
                code = resp.status
        except urllib.error.HTTPError as exc:
            code = exc.code
        except OSError:
            code = -1
        if code == 200 or time.monotonic() > deadline:
            return code
        time.sleep(2)


ACTING_TASKS = ("Switch nginx to the maintenance page", "Stop the application containers",
                "Restore the backup into a new database and compare it with the manifest",
                "Swap the restored database in (terminate sessions, rename in one transaction)",
                "Start the application containers")


def _acted(result) -> list[str]:
    """Tasks of the run that stop, restore, swap or start something (other engineers' tests restart the
    backend at any time, so container start times cannot tell whether this run stopped it)."""
    return [ev["event_data"]["task"] for ev in result.events
            if ev.get("event") in ("runner_on_ok", "runner_on_failed") and ev["event_data"].get("task") in ACTING_TASKS]


def test_without_confirm_nothing_is_stopped_or_changed(guarded):
    (path, name, _manifest), _safety = guarded
    dbs = bk.databases(KEPT)
    for extra, check in (({}, False), ({"confirm": True}, True)):
        result = run("emergency-restore", extravars=_vars(path, **extra), check=check)
        assert result.rc == 0, result.stdout[-3000:]
        assert_no_traceback(result)
        action = next(a for a in result.report["actions"] if a["name"] == "restore")
        assert action["changed"] is False and action["detail"].startswith("not confirmed: would restore backup")
        plan = result.report["plan"]
        # the plan names the backup, the databases and the containers
        assert name in plan and "equipment_marketplace_restore_" in plan
        assert "rename equipment_marketplace to equipment_marketplace_replaced_" in plan
        assert "stop equipment-marketplace-backend-1" in plan and "maintenance" in plan
        assert result.report["check_mode"] is check
        assert _acted(result) == [] and result.changed() == 0
    assert bk.databases(KEPT) == dbs
    assert not bk.maintenance_file().exists()


def test_a_truncated_backup_is_refused_before_anything_is_touched(guarded):
    (path, name, _manifest), _safety = guarded
    newer = bk.copy_backup(path, name, path, datetime.datetime.now(UTC) + datetime.timedelta(minutes=2))
    dump = path / f"{newer}.dump"
    size = dump.stat().st_size
    with open(dump, "r+b") as f:
        f.truncate(size // 2)
    dbs = bk.databases(KEPT)
    try:
        result = run("emergency-restore", extravars=_vars(path, confirm=True, backup=newer))
        assert result.rc != 0
        assert_no_traceback(result)
        summary = result.report["summary"]
        assert f"backup {newer} fails verification: dump is truncated: {size // 2} bytes on disk, " \
               f"the manifest records {size}" in summary
        assert "nothing was stopped or changed" in summary
        assert check_by_name(result.report, "backup_checksum")["status"] == "critical"
        assert [a["name"] for a in result.report["actions"]] == []
        assert _acted(result) == [] and result.changed() == 0
        assert bk.databases(KEPT) == dbs and not bk.maintenance_file().exists()
        # without a name, the newest backup that verifies is chosen, and the truncated one is named as skipped
        result = run("emergency-restore", extravars=_vars(path))
        assert result.rc == 0
        assert result.report["backup"]["name"] == name
        skipped = check_by_name(result.report, "backup_skipped")
        assert skipped["status"] == "warning" and newer in skipped["message"] and "truncated" in skipped["message"]
    finally:
        for suffix in (".manifest.json", ".dump.sha256", ".dump"):
            (path / f"{newer}{suffix}").unlink(missing_ok=True)


@pytest.mark.destructive
def test_emergency_restore_brings_back_the_manifest_after_corruption(guarded, stack_env):
    (path, _old, _manifest), safety = guarded
    # a backup taken right now, so the restore brings back today's data
    fresh = run("db-backup", extravars=_vars(path, confirm=True))
    assert fresh.rc == 0, fresh.stdout[-3000:]
    name = fresh.report["backup"]["name"]
    manifest = bk.manifest(path, name)
    expected = manifest["row_counts"]
    safety.update(dir=path, name=name, manifest=manifest)
    # Corrupt: delete most rows of one table, drop another.
    faults.run_sql_as_app("DELETE FROM audit_events WHERE random() < 0.9")
    faults.run_sql_as_app("DROP TABLE payments")
    corrupted = bk.row_counts()
    assert corrupted["payments"] is None and corrupted["audit_events"] < expected["audit_events"]

    result = run("emergency-restore", extravars=_vars(path, confirm=True))
    if result.rc != 0 and "not healthy" in result.stdout:  # another engineer's test was restarting the stack
        bk.ensure_app_running()
        result = run("emergency-restore", extravars=_vars(path, confirm=True))
    assert result.rc == 0, result.stdout[-4000:]
    assert_no_traceback(result)
    report = result.report
    # exact row counts of the manifest in the live database
    assert bk.row_counts() == expected
    for table, count in expected.items():
        check = check_by_name(report, f"restore_rows_{table}")
        assert check["status"] == "ok" and check["value"] == count == check["threshold"]
    # the corruption was recorded before anything changed
    assert check_by_name(report, "current_rows_payments")["status"] == "warning"
    assert "does not exist" in check_by_name(report, "current_rows_payments")["message"]
    assert check_by_name(report, "current_rows_audit_events")["value"] == corrupted["audit_events"]
    # the app was stopped and is back; maintenance is off; health passes
    assert _acted(result) == list(ACTING_TASKS)
    names = [a["name"] for a in report["actions"]]
    assert names == ["maintenance_on", "stop_app", "restore", "swap", "start_app", "maintenance_off"]
    assert not bk.maintenance_file().exists()
    for check in ("nginx_health", "api_health", "api_health_https"):
        assert check_by_name(report, check)["status"] == "ok"
    assert _api_health() == 200
    # warnings are the corruption found before the restore; nothing is critical, no incident severity remains
    assert report["severity"] is None
    assert [c["name"] for c in report["checks"] if c["status"] == "critical"] == []
    assert {c["name"] for c in report["checks"] if c["status"] == "warning"} <= {
        "current_rows_payments", "current_rows_audit_events", "service:backend"}
    # the corrupted database is kept under its dated name, with its damage
    replaced = report["replaced_database"]
    assert replaced.startswith("equipment_marketplace_replaced_") and replaced in bk.databases(KEPT)
    kept = bk.row_counts(replaced)
    assert kept["payments"] is None and kept["audit_events"] == corrupted["audit_events"]
    assert stack_env["POSTGRES_PASSWORD"] not in raw_artifacts(result)

    # ... until removed explicitly (with confirm)
    refused = run("db-restore", extravars=_vars(path, confirm=True, drop_replaced="equipment_marketplace"))
    assert refused.rc != 0 and "refusing to drop it" in refused.stdout
    assert "equipment_marketplace" in bk.databases("^equipment_marketplace$")
    dry = run("db-restore", extravars=_vars(path, drop_replaced=replaced))
    assert dry.rc == 0 and replaced in bk.databases(KEPT)
    dropped = run("db-restore", extravars=_vars(path, confirm=True, drop_replaced=replaced))
    assert dropped.rc == 0, dropped.stdout[-3000:]
    assert replaced not in bk.databases(KEPT)


def test_db_restore_side_by_side_leaves_the_live_database_alone(guarded):
    (path, _name, manifest), _safety = guarded
    target = "equipment_marketplace_inspect_test"
    try:
        result = run("db-restore", extravars=_vars(path, confirm=True, restore_into=target))
        assert result.rc == 0, result.stdout[-3000:]
        assert bk.row_counts(target) == manifest["row_counts"]
        assert [a["name"] for a in result.report["actions"]] == ["restore"]
        assert _acted(result) == [] and not bk.maintenance_file().exists()
        # a second run into the same name refuses (the database exists) and changes nothing
        again = run("db-restore", extravars=_vars(path, confirm=True, restore_into=target))
        assert again.rc != 0 and "already exists" in again.report["summary"]
        assert bk.row_counts(target) == manifest["row_counts"]
    finally:
        bk.drop_database(target)


@pytest.mark.destructive
def test_a_swap_whose_admin_session_is_killed_reopens_the_live_database(guarded, stack_env):
    """emergency-restore's swap loses its admin session for real: the rename waits on a lock of the live database
    that the test holds (COMMENT in an open transaction, on the postgres database), and the test terminates the
    waiting session - after ALTER DATABASE ... ALLOW_CONNECTIONS false was committed. The live database must
    accept connections again (datallowconn, a real connect as the app user), keep its data, and the run must fail
    naming the step, with no traceback; the app comes back and the restored copy is dropped."""
    import threading

    import psycopg
    from psycopg import sql
    from psycopg.conninfo import make_conninfo

    (path, _name, _manifest), _safety = guarded
    before = bk.row_counts()
    kept = bk.databases(KEPT)
    blocker = bk.admin_conn()
    blocker.autocommit = False
    blocker.execute(sql.SQL("COMMENT ON DATABASE {} IS 'held by the swap-kill test'").format(sql.Identifier(bk.APP_DB)))
    box: dict = {}

    def kill_the_waiting_rename():
        try:
            with bk.admin_conn() as admin:
                deadline = time.monotonic() + 300
                while time.monotonic() < deadline:
                    row = admin.execute(
                        "SELECT pid FROM pg_stat_activity WHERE application_name = 'ansible-marketplace-restore' "
                        "AND wait_event_type = 'Lock' AND query LIKE 'ALTER DATABASE%%RENAME%%'").fetchone()
                    if row:
                        box["killed"] = admin.execute("SELECT pg_terminate_backend(%s, 5000)", row).fetchone()[0]
                        return
                    time.sleep(0.2)
        finally:
            blocker.rollback()

    thread = threading.Thread(target=kill_the_waiting_rename, daemon=True)
    thread.start()
    try:
        result = run("emergency-restore", extravars=_vars(path, confirm=True))
    finally:
        thread.join(60)
        blocker.close()
    assert box.get("killed") is True, result.stdout[-3000:]
    assert result.rc != 0
    assert_no_traceback(result)
    summary = result.report["summary"]
    assert "swap failed at step rename" in summary and "nothing was renamed" in summary, summary
    assert "accepts connections" in summary
    assert check_by_name(result.report, "database_swap")["status"] == "critical"
    assert check_by_name(result.report, "database_connections")["status"] == "ok"
    assert result.report["replaced_database"] is None
    # the real state: the live database accepts connections (as the app user too) and holds its data
    with bk.admin_conn() as admin:
        assert admin.execute("SELECT datallowconn FROM pg_database WHERE datname = %s",
                             (bk.APP_DB,)).fetchone()[0] is True
    app = make_conninfo(host=stack_env["BIND_ADDRESS"], port=stack_env["POSTGRES_PORT"], dbname=bk.APP_DB,
                        user=stack_env["APP_DB_USER"], password=stack_env["APP_DB_PASSWORD"], connect_timeout=5)
    with psycopg.connect(app) as conn:
        assert conn.execute("SELECT 1").fetchone()[0] == 1
    assert bk.row_counts() == before
    # the restored copy was dropped, the app is back
    assert bk.databases(KEPT) == kept
    assert not bk.maintenance_file().exists()
    assert _api_health() == 200
