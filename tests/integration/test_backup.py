"""db-backup.yml and backup-verify.yml through the driver against the reference stack.

Every test writes into its own sub-directory of the stack's backup directory (mounted in the postgres
container), so it neither sees nor prunes other runs' backups.
"""
from __future__ import annotations

import base64
import datetime
import hashlib
import shutil
import stat
import subprocess
import threading
import time

import pytest

from tests.helpers import backups as bk
from tests.helpers.playbooks import assert_no_traceback, check_by_name, raw_artifacts, run

pytestmark = pytest.mark.integration

UTC = datetime.UTC


@pytest.fixture()
def backup_dir(stack_env):
    bk.wait_stack_healthy(("postgres",))
    path = bk.new_backup_dir("backup")
    yield path
    shutil.rmtree(path, ignore_errors=True)


def _vars(path, **extra):
    return {"marketplace_backup_dir": str(path), **extra}


def _backup(path, **extra):
    return run("db-backup", extravars=_vars(path, confirm=True, **extra))


def test_without_confirm_db_backup_describes_and_writes_nothing(backup_dir):
    result = run("db-backup", extravars=_vars(backup_dir))
    assert result.rc == 0, result.stdout[-3000:]
    assert list(backup_dir.iterdir()) == []
    action = next(a for a in result.report["actions"] if a["name"] == "backup_dump")
    assert action["changed"] is False
    assert action["detail"].startswith("not confirmed: would dump equipment_marketplace")
    assert "rerun with -e confirm=true" in action["detail"]
    assert "not confirmed" in result.report["summary"]
    # --check with confirm=true changes nothing either
    result = run("db-backup", extravars=_vars(backup_dir, confirm=True), check=True)
    assert result.rc == 0 and result.report["check_mode"] is True
    assert list(backup_dir.iterdir()) == []


def test_db_backup_leaves_a_dump_a_manifest_and_a_checksum_that_match(backup_dir, stack_env):
    parent, backup_dir = backup_dir, backup_dir / "fresh"  # a directory the backup creates
    result = _backup(backup_dir)
    assert result.rc == 0, result.stdout[-3000:]
    assert_no_traceback(result)
    names = bk.backups_in(backup_dir)
    assert len(names) == 1
    name = names[0]
    files = sorted(p.name for p in backup_dir.iterdir())
    assert files == sorted([f"{name}.dump", f"{name}.dump.sha256", f"{name}.manifest.json"])  # no temp file left
    # owner-only: the directory is created 0700, the dump, checksum and manifest 0600
    assert stat.S_IMODE(backup_dir.stat().st_mode) == 0o700
    assert {f: oct(stat.S_IMODE((backup_dir / f).stat().st_mode)) for f in files} == {f: oct(0o600) for f in files}
    assert all(c["name"] != "backup_dir_mode" for c in result.report["checks"])
    m = bk.manifest(backup_dir, name)
    dump = backup_dir / f"{name}.dump"
    digest = bk.sha256(dump)
    assert m["sha256"] == digest and m["size_bytes"] == dump.stat().st_size
    assert (backup_dir / f"{name}.dump.sha256").read_text() == f"{digest}  {name}.dump\n"
    # the operator's own tool agrees
    subprocess.run(["sha256sum", "--check", "--strict", f"{name}.dump.sha256"], cwd=backup_dir, check=True,
                   capture_output=True)
    assert m["database"] == "equipment_marketplace" and m["format"] == 1
    assert m["server_version"].startswith("15.") and m["pg_dump_version"].startswith("15.")
    assert m["database_size_bytes"] > 0 and m["created"] and m["finished"]
    assert set(m["row_counts"]) == set(bk.KEY_TABLES) and all(v > 0 for v in m["row_counts"].values())
    assert m["row_count_errors"] == {}
    assert m["verified"]["pg_restore_list"] is True
    assert {"public.orders", "public.payments", "public.audit_events"} <= set(m["toc"]["tables"])
    # pg_restore -l of the committed file, in the container, lists what the manifest says
    rc, out = bk.container_exec("postgres", ["pg_restore", "-l", f"/backups/{parent.name}/fresh/{name}.dump"])
    assert rc == 0 and "TABLE DATA public orders" in out
    report = result.report
    assert report["status"] == "ok" and report["severity"] is None
    for check in ("backup_dump", "backup_archive_list", "backup_row_counts", "backup_exists", "backup_checksum",
                  "backup_fresh", "backup_retention"):
        assert check_by_name(report, check)["status"] == "ok", check
    assert report["backup"]["manifest"]["sha256"] == digest
    assert stack_env["POSTGRES_PASSWORD"] not in raw_artifacts(result)


def _pg_dump_pids(tag: str) -> list[str]:
    rc, out = bk.container_exec("postgres", ["pgrep", "-f", f"pg_dump.*{tag}"])
    return out.split() if rc == 0 else []


def test_killing_pg_dump_halfway_leaves_nothing_taken_as_a_backup(backup_dir):
    first = _backup(backup_dir)
    assert first.rc == 0, first.stdout[-3000:]
    good = bk.backups_in(backup_dir)[0]
    killed = None
    for _attempt in range(3):  # the dump takes about a second: catch it writing, else try again
        box: dict = {}

        def take(box=box):
            box["result"] = _backup(backup_dir, backup_compress=9)

        thread = threading.Thread(target=take)
        thread.start()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and thread.is_alive():
            partial = [p for p in backup_dir.glob(".partial-*.dump.*") if p.stat().st_size > 0]
            if partial and _pg_dump_pids(backup_dir.name):
                rc, _out = bk.container_exec("postgres", ["pkill", "-KILL", "-f", f"pg_dump.*{backup_dir.name}"])
                if rc == 0:
                    killed = partial[0].name
                break
            time.sleep(0.02)
        thread.join(120)
        if killed:
            break
    assert killed, "could not catch pg_dump while it was writing"
    result = box["result"]
    assert result.rc != 0
    assert_no_traceback(result)
    failure = check_by_name(result.report, "backup")
    assert failure["status"] == "critical"
    assert "pg_dump of equipment_marketplace was killed (signal 9)" in failure["message"]
    assert "nothing was committed" in failure["message"]
    # nothing but the earlier backup: no new name, no temp file
    assert bk.backups_in(backup_dir) == [good]
    assert sorted(p.name for p in backup_dir.iterdir()) == sorted(
        [f"{good}.dump", f"{good}.dump.sha256", f"{good}.manifest.json"])
    # the latest-backup lookup and the verifier take the earlier backup
    verify = run("backup-verify", extravars=_vars(backup_dir))
    assert verify.rc == 0, verify.stdout[-3000:]
    assert verify.report["backup"]["name"] == good


def test_leftovers_of_a_killed_run_are_ignored_then_cleaned(backup_dir):
    first = _backup(backup_dir)
    assert first.rc == 0, first.stdout[-3000:]
    good = bk.backups_in(backup_dir)[0]
    # What a run killed with SIGKILL leaves (no cleanup possible): a temp dump, and a dump renamed into place
    # whose manifest never got written.
    later = (datetime.datetime.now(UTC) + datetime.timedelta(minutes=5)).strftime(bk.STAMP)
    temp = backup_dir / f".partial-equipment_marketplace-{later}.dump.1a2b3c4d"
    orphan = backup_dir / f"equipment_marketplace-{later}.dump"
    shutil.copyfile(backup_dir / f"{good}.dump", temp)
    with open(backup_dir / f"{good}.dump", "rb") as src:
        orphan.write_bytes(src.read(100_000))
    verify = run("backup-verify", extravars=_vars(backup_dir))
    assert verify.rc == 0, verify.stdout[-3000:]
    assert verify.report["backup"]["name"] == good  # neither leftover is taken as the newest backup
    again = _backup(backup_dir)
    assert again.rc == 0, again.stdout[-3000:]
    assert not temp.exists() and not orphan.exists()
    dump_action = next(a for a in again.report["actions"] if a["name"] == "backup_dump")
    assert "leftovers removed: 2" in dump_action["detail"]
    assert len(bk.backups_in(backup_dir)) == 2


def test_quick_verification_catches_a_stale_and_a_corrupt_backup(backup_dir):
    assert _backup(backup_dir).rc == 0
    good = bk.backups_in(backup_dir)[0]
    # stale: only a 3 days old backup
    stale_dir = bk.new_backup_dir("stale")
    try:
        bk.copy_backup(backup_dir, good, stale_dir, datetime.datetime.now(UTC) - datetime.timedelta(days=3))
        result = run("backup-verify", extravars=_vars(stale_dir))
        assert result.rc != 0
        fresh = check_by_name(result.report, "backup_fresh")
        assert fresh["status"] == "critical" and fresh["value"] > 70 and fresh["threshold"] == 26
    finally:
        shutil.rmtree(stale_dir, ignore_errors=True)
    # corrupt: one byte flipped in the middle of the dump
    dump = backup_dir / f"{good}.dump"
    data = bytearray(dump.read_bytes())
    data[len(data) // 2] ^= 0xFF
    dump.write_bytes(bytes(data))
    result = run("backup-verify", extravars=_vars(backup_dir))
    assert result.rc != 0
    checksum = check_by_name(result.report, "backup_checksum")
    assert checksum["status"] == "critical" and "checksum mismatch" in checksum["message"]


def test_restore_drill_report_shows_the_row_counts_compared(backup_dir):
    assert _backup(backup_dir).rc == 0
    name = bk.backups_in(backup_dir)[0]
    expected = bk.manifest(backup_dir, name)["row_counts"]
    before = set(bk.databases("_drill_"))
    result = run("backup-verify", extravars=_vars(backup_dir, backup_verify_mode="drill"))
    assert result.rc == 0, result.stdout[-3000:]
    assert_no_traceback(result)
    drill = result.report["drill"]
    assert drill["backup"] == name and drill["restored"] is True and drill["counts_match"] is True
    assert drill["analyzed"] is True and drill["dropped"] is True
    assert {t["table"]: (t["expected"], t["actual"]) for t in drill["tables"]} == {
        t: (n, n) for t, n in expected.items()}
    for table, count in expected.items():
        check = check_by_name(result.report, f"drill_rows_{table}")
        assert check["status"] == "ok" and check["value"] == count and check["threshold"] == count
    assert set(bk.databases("_drill_")) == before  # the scratch database is gone
    # the drill wrote its own report too (Markdown lists the comparison)
    drill_reports = sorted((bk.Path(result.report_paths["demo"]).parents[1] / "backup-drill").glob("demo-2*.md"))
    assert drill_reports and "drill_rows_orders" in drill_reports[-1].read_text()


def test_a_drill_against_a_wrong_manifest_fails_and_drops_its_scratch_database(backup_dir):
    assert _backup(backup_dir).rc == 0
    good = bk.backups_in(backup_dir)[0]

    def off_by_one(m):
        m["row_counts"]["orders"] += 1

    bk.copy_backup(backup_dir, good, backup_dir, datetime.datetime.now(UTC) + datetime.timedelta(minutes=1),
                   edit=off_by_one)
    before = set(bk.databases("_drill_"))
    result = run("backup-verify", extravars=_vars(backup_dir, backup_verify_mode="drill"))
    assert result.rc != 0
    check = check_by_name(result.report, "drill_rows_orders")
    assert check["status"] == "critical" and check["threshold"] == check["value"] + 1
    assert result.report["drill"]["counts_match"] is False
    assert set(bk.databases("_drill_")) == before


@pytest.fixture(scope="module")
def s3():
    server = bk.MotoServer().start()
    yield server
    server.stop()


def test_offsite_copy_is_uploaded_verified_and_pruned(backup_dir, s3, stack_env):
    client = s3.client()
    bucket, prefix = "em-backups", "marketplace/db/"
    client.create_bucket(Bucket=bucket)
    now = datetime.datetime.now(UTC)
    # Remote history: one backup a day for the last 20 days (and two on one of them).
    remote_old = []
    for days in [*range(1, 21), 1]:
        when = now - datetime.timedelta(days=days, hours=0 if remote_old else 1, minutes=len(remote_old))
        name = f"equipment_marketplace-{when.strftime(bk.STAMP)}"
        for suffix, body in ((".dump", b"x"), (".dump.sha256", b"y"), (".manifest.json", b"{}")):
            client.put_object(Bucket=bucket, Key=f"{prefix}{name}{suffix}", Body=body)
        remote_old.append((name, when))
    # An interrupted upload: a dump without a manifest (old enough to be removed).
    client.put_object(Bucket=bucket, Key=f"{prefix}equipment_marketplace-20200101T000000Z.dump", Body=b"partial")
    keys = {"marketplace_backup_s3_access_key": "AKIATESTBACKUPKEY",
            "marketplace_backup_s3_secret_key": "test-secret-backup-key-0123456789"}
    result = _backup(backup_dir, backup_offsite=True, backup_s3_endpoint_url=s3.endpoint, backup_s3_bucket=bucket,
                     backup_s3_prefix=prefix, backup_s3_addressing_style="path",
                     backup_s3_multipart_threshold=5 * 1024 * 1024, backup_s3_part_size=5 * 1024 * 1024,
                     backup_s3_keep_last=1, backup_s3_keep_daily=3, backup_s3_keep_weekly=2,
                     backup_s3_orphan_min_age=0, **keys)
    assert result.rc == 0, result.stdout[-3000:]
    assert_no_traceback(result)
    name = bk.backups_in(backup_dir)[0]
    m = bk.manifest(backup_dir, name)
    # uploaded with the manifest's checksum, in parts (the dump is larger than the 5 MiB threshold)
    head = client.head_object(Bucket=bucket, Key=f"{prefix}{name}.dump", ChecksumMode="ENABLED")
    assert head["ContentLength"] == m["size_bytes"] and head["Metadata"]["sha256"] == m["sha256"]
    body = client.get_object(Bucket=bucket, Key=f"{prefix}{name}.dump")["Body"].read()
    assert hashlib.sha256(body).hexdigest() == m["sha256"]
    part = 5 * 1024 * 1024
    local = (backup_dir / f"{name}.dump").read_bytes()
    composite = hashlib.sha256(b"".join(hashlib.sha256(local[i:i + part]).digest()
                                        for i in range(0, len(local), part))).digest()
    assert head["ChecksumSHA256"].split("-")[0] == base64.b64encode(composite).decode()
    verify = check_by_name(result.report, "offsite_verify")
    assert verify["status"] == "ok" and "multipart composite of 2 parts" in verify["message"]
    assert check_by_name(result.report, "offsite_upload")["status"] == "ok"
    # retention: the new one (last + today's daily + this week's weekly), the newest of the 2 previous days with
    # backups (daily 3) and the newest of the previous ISO week (weekly 2); everything else is gone
    listing = client.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", [])
    remote = sorted({o["Key"][len(prefix):].split(".")[0] for o in listing}, reverse=True)
    entries = [*remote_old, (name, datetime.datetime.strptime(name.rsplit("-", 1)[1], bk.STAMP).replace(tzinfo=UTC))]
    entries.sort(key=lambda e: e[1], reverse=True)
    keep, days, weeks = {entries[0][0]}, [], []
    for n, w in entries:
        if w.date() not in days:
            days.append(w.date())
            if len(days) <= 3:
                keep.add(n)
        if w.isocalendar()[:2] not in weeks:
            weeks.append(w.isocalendar()[:2])
            if len(weeks) <= 2:
                keep.add(n)
    assert remote == sorted(keep, reverse=True)
    assert "equipment_marketplace-20200101T000000Z" not in remote  # the interrupted upload is gone
    retention = check_by_name(result.report, "offsite_retention")
    assert retention["status"] == "ok" and f"deleted {len(remote_old) - (len(keep) - 1)}" in retention["message"]
    text = raw_artifacts(result)
    assert keys["marketplace_backup_s3_secret_key"] not in text
    assert stack_env["POSTGRES_PASSWORD"] not in text


def test_local_retention_keeps_last_daily_and_weekly(backup_dir):
    now = datetime.datetime.now(UTC)
    fakes = [bk.fake_backup(backup_dir, now - datetime.timedelta(days=d, hours=h))
             for d in range(1, 30) for h in (1, 5)]
    result = _backup(backup_dir, backup_keep_last=2, backup_keep_daily=4, backup_keep_weekly=3)
    assert result.rc == 0, result.stdout[-3000:]
    remaining = bk.backups_in(backup_dir)
    new = max(remaining)
    entries = sorted([(n, datetime.datetime.strptime(n.rsplit("-", 1)[1], bk.STAMP)) for n in [*fakes, new]],
                     key=lambda e: e[1], reverse=True)
    keep, days, weeks = {e[0] for e in entries[:2]}, [], []
    for n, w in entries:
        if w.date() not in days:
            days.append(w.date())
            if len(days) <= 4:
                keep.add(n)
        if w.isocalendar()[:2] not in weeks:
            weeks.append(w.isocalendar()[:2])
            if len(weeks) <= 3:
                keep.add(n)
    assert sorted(remaining) == sorted(keep)
    # a deleted backup is gone completely (no dump or checksum left behind without its manifest)
    leftovers = {p.name.split(".")[0] for p in backup_dir.iterdir()} - set(remaining)
    assert leftovers == set()
