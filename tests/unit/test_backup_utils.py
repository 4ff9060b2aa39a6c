"""module_utils/marketplace_backup: names, catalogue, leftovers (flock), retention, checksum verification."""
from __future__ import annotations

import datetime
import fcntl
import hashlib
import importlib
import json
import os

import pytest

from tests.helpers.modules import MODULE_UTILS  # noqa: F401 - registers module_utils/ under ansible.module_utils

mb = importlib.import_module("ansible.module_utils.marketplace_backup")

UTC = datetime.UTC


def _t(*args):
    return datetime.datetime(*args, tzinfo=UTC)


def _write_backup(d, name, data=b"PGDMP archive", manifest_extra=None):
    (d / f"{name}.dump").write_bytes(data)
    digest = hashlib.sha256(data).hexdigest()
    (d / f"{name}.dump.sha256").write_text(f"{digest}  {name}.dump\n")
    m = {"name": name, "sha256": digest, "size_bytes": len(data), **(manifest_extra or {})}
    (d / f"{name}.manifest.json").write_text(json.dumps(m))
    return m


def test_names_parse_and_normalize():
    assert mb.parse_name("equipment_marketplace-20250101T020000Z") == (
        "equipment_marketplace", _t(2025, 1, 1, 2, 0, 0), 0)
    assert mb.parse_name("db-x-20250101T020000Z-2")[0] == "db-x"
    assert mb.parse_name("db-20251301T020000Z") is None  # month 13
    assert mb.parse_name(".partial-db-20250101T020000Z") is None
    for given in ("db-20250101T020000Z", "db-20250101T020000Z.dump", "/var/backups/x/db-20250101T020000Z.manifest.json",
                  "db-20250101T020000Z.dump.sha256"):
        assert mb.normalize_name(given, "/var/backups/x") == "db-20250101T020000Z"
    for bad in ("", "../../etc/passwd", ".partial-db-20250101T020000Z.dump.abc", "db.dump", "db-2025.dump"):
        with pytest.raises(ValueError):
            mb.normalize_name(bad)


def test_a_backup_path_outside_the_backup_directory_is_refused():
    # a path names a backup only inside the backup directory: elsewhere (or with ..) it is refused, not
    # silently mapped to the backup directory's file of the same name
    for bad in ("/etc/passwd", "/tmp/elsewhere/db-20250101T020000Z.dump", "../x/db-20250101T020000Z",
                "/var/backups/x/../x/db-20250101T020000Z.dump", "sub/db-20250101T020000Z.dump"):
        with pytest.raises(ValueError, match=r"outside the backup directory|'\.\.' is not allowed|not a backup name"):
            mb.normalize_name(bad, "/var/backups/x")
    with pytest.raises(ValueError, match="outside the backup directory"):
        mb.normalize_name("/var/backups/x/db-20250101T020000Z.dump")  # no directory to compare with


def test_new_name_never_reuses_a_taken_second(tmp_path):
    when = _t(2025, 1, 1, 2, 0, 0)
    first = mb.new_name(str(tmp_path), "db", when)
    (tmp_path / f"{first}.dump").write_bytes(b"x")
    second = mb.new_name(str(tmp_path), "db", when)
    assert first == "db-20250101T020000Z" and second == "db-20250101T020000Z-1"


def test_scan_takes_only_committed_backups(tmp_path):
    _write_backup(tmp_path, "db-20250101T020000Z")
    _write_backup(tmp_path, "db-20250102T020000Z")
    _write_backup(tmp_path, "other-20250103T020000Z")
    (tmp_path / ".partial-db-20250104T020000Z.dump.ab12").write_bytes(b"half")
    (tmp_path / "db-20250105T020000Z.dump").write_bytes(b"renamed, manifest never written")
    (tmp_path / "README").write_text("not a backup")
    entries, leftovers = mb.scan(str(tmp_path), "db")
    assert [e["name"] for e in entries] == ["db-20250102T020000Z", "db-20250101T020000Z"]
    assert sorted(x["kind"] for x in leftovers) == ["no_manifest", "temp"]


def test_leftovers_held_by_a_running_backup_are_kept(tmp_path):
    busy = tmp_path / ".partial-db-20250104T020000Z.dump.ab12"
    stale = tmp_path / ".partial-db-20250103T020000Z.dump.cd34"
    busy.write_bytes(b"being written")
    stale.write_bytes(b"left by a killed run")
    fd = os.open(busy, os.O_RDWR)
    fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        _entries, leftovers = mb.scan(str(tmp_path))
        removed, kept = mb.clean_leftovers(leftovers)
    finally:
        os.close(fd)
    assert removed == [stale.name] and not stale.exists()
    assert kept == [{"file": busy.name, "reason": "in use by a running backup"}] and busy.exists()


def test_retention_keeps_last_daily_and_weekly():
    # two backups a day for 30 days, ending on Wednesday 2025-01-29
    end = _t(2025, 1, 29, 22, 0, 0)
    entries = []
    for day in range(30):
        for hour in (2, 14):
            t = (end - datetime.timedelta(days=day)).replace(hour=hour)
            entries.append({"name": "db-" + t.strftime(mb.STAMP_FORMAT), "time": t, "seq": 0})
    keep, drop = mb.retention(entries, keep_last=3, keep_daily=7, keep_weekly=4)
    kept = sorted(keep, reverse=True)
    assert len(kept) + len(drop) == 60
    # the 3 newest; the 14:00 backup of each of the 7 newest days; the newest of 4 ISO weeks
    assert kept[:3] == ["db-20250129T140000Z", "db-20250129T020000Z", "db-20250128T140000Z"]
    daily = {n for n, why in keep.items() if any(w.startswith("daily") for w in why)}
    assert daily == {"db-202501%02dT140000Z" % d for d in range(23, 30)}
    weekly = {n for n, why in keep.items() if any(w.startswith("weekly") for w in why)}
    assert weekly == {"db-20250129T140000Z", "db-20250126T140000Z", "db-20250119T140000Z", "db-20250112T140000Z"}
    assert set(keep) == {"db-20250129T020000Z", "db-20250128T140000Z"} | daily | weekly


def test_retention_never_drops_the_last_ones_when_backups_stopped():
    old = [{"name": "db-2024010%dT020000Z" % d, "time": _t(2024, 1, d, 2), "seq": 0} for d in range(1, 4)]
    keep, drop = mb.retention(old, keep_last=0, keep_daily=7, keep_weekly=0)
    assert drop == [] and len(keep) == 3


def test_verify_file_names_truncation_and_mismatch(tmp_path):
    m = _write_backup(tmp_path, "db-20250101T020000Z", data=b"x" * 1000)
    entry = mb.scan(str(tmp_path))[0][0]
    ok, reason, _ = mb.verify_file(entry, m)
    assert ok and "match" in reason
    with open(tmp_path / "db-20250101T020000Z.dump", "r+b") as f:
        f.truncate(400)
    ok, reason, _ = mb.verify_file(entry, m)
    assert not ok and reason.startswith("dump is truncated: 400 bytes on disk, the manifest records 1000")
    (tmp_path / "db-20250101T020000Z.dump").write_bytes(b"y" * 1000)
    ok, reason, _ = mb.verify_file(entry, m)
    assert not ok and reason.startswith("checksum mismatch")
    (tmp_path / "db-20250101T020000Z.dump").unlink()
    ok, reason, _ = mb.verify_file(entry, m)
    assert not ok and "missing" in reason


def test_remove_backup_skips_a_dump_a_restore_is_reading(tmp_path):
    _write_backup(tmp_path, "db-20250101T020000Z")
    dump = tmp_path / "db-20250101T020000Z.dump"
    fd = os.open(dump, os.O_RDONLY)
    fcntl.flock(fd, fcntl.LOCK_SH)
    try:
        assert mb.remove_backup(str(tmp_path), "db-20250101T020000Z") is not None
        assert dump.exists()
    finally:
        os.close(fd)
    assert mb.remove_backup(str(tmp_path), "db-20250101T020000Z") is None
    assert list(tmp_path.iterdir()) == []


def test_parse_toc():
    text = """;
; Archive created at 2025-01-01 02:00:00 UTC
;     dbname: equipment_marketplace
;     TOC Entries: 54
;     Dumped by pg_dump version: 15.20 (Debian 15.20-0+deb12u1)
;
226; 1259 16491 TABLE public api_keys marketplace
3420; 0 16491 TABLE DATA public api_keys marketplace
3421; 0 16507 TABLE DATA public audit_events marketplace
"""
    facts = mb.parse_toc(text)
    assert facts["entries"] == 3 and facts["tables"] == ["public.api_keys", "public.audit_events"]
    assert facts["header"]["dumped_by_pg_dump_version"].startswith("15.20")
