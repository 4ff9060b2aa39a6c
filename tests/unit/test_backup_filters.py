"""The backup role's report wording and outcome (roles/backup/filter_plugins/backup_filters.py), from registered
module results: no Docker, no database."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

_PATH = Path(__file__).resolve().parents[2] / "roles" / "backup" / "filter_plugins" / "backup_filters.py"
_spec = importlib.util.spec_from_file_location("backup_filters", _PATH)
bf = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bf)

CHECK = {"name": "backup_dump", "component": "postgres", "status": "ok", "value": None, "threshold": None,
         "message": "dumped"}
DUMP = {"changed": True, "name": "db-20261203T010000Z", "tools": "in container postgres",
        "paths": {"dump": "/b/db-20261203T010000Z.dump"}, "manifest": {"size_bytes": 1234, "sha256": "ab" * 32},
        "leftovers_removed": ["x.tmp"], "checks": [CHECK], "msg": "would dump db to /b/db-....dump"}
PRUNE = {"changed": True, "checks": [{"name": "backup_retention", "message": "kept 2, removed 1"}],
         "leftovers_removed": []}
S3 = {"changed": True, "location": "s3://bucket/prefix/", "checks": [{"name": "offsite_upload", "message": "up"},
                                                                     {"name": "offsite_verify", "message": "ok"}]}


def test_a_confirmed_dump_names_path_size_checksum_and_leftovers():
    action = bf.backup_step(DUMP, "dump", True, "db")
    assert action == {"name": "backup_dump", "changed": True,
                      "detail": f"dumped db to /b/db-20261203T010000Z.dump (1234 bytes, sha256 {'ab' * 32}) "
                                "in container postgres; leftovers removed: 1"}


def test_an_unconfirmed_dump_says_what_it_would_do_and_how_to_confirm():
    action = bf.backup_step(DUMP, "dump", False, "db")
    assert action["changed"] is False
    assert action["detail"] == ("not confirmed: would dump db to /b/db-....dump, verify it with pg_restore -l and "
                                "commit it with a sha256 and a manifest; rerun with -e confirm=true")


def test_retention_and_offsite_wording():
    assert bf.backup_step(PRUNE, "retention", True)["detail"] == "kept 2, removed 1"
    pruned = bf.backup_step(dict(PRUNE, leftovers_removed=["a", "b"]), "retention", False)
    assert pruned["detail"] == "not confirmed: would apply the retention; kept 2, removed 1; leftovers removed: a, b"
    assert bf.backup_step(S3, "offsite", True)["detail"] == "up; ok"
    assert bf.backup_step(S3, "offsite", False)["detail"] == (
        "not confirmed: would upload the new backup to s3://bucket/prefix/ and verify it there; up; ok")


@pytest.mark.parametrize("result", [None, {}, {"skipped": True}, {"failed": True, "msg": "boom"}])
def test_a_step_that_did_not_finish_has_no_action(result):
    assert bf.backup_step(result, "dump", True) is None


def test_a_confirmed_backup_collects_every_step_in_order():
    out = bf.backup_outcome({"dump": DUMP, "retention": PRUNE, "offsite": S3}, True, "db")
    assert [a["name"] for a in out["actions"]] == ["backup_dump", "backup_retention", "backup_offsite"]
    assert [c["name"] for c in out["checks"]] == ["backup_dump", "backup_retention", "offsite_upload", "offsite_verify"]
    assert out["name"] == DUMP["name"] and out["paths"] == DUMP["paths"] and out["committed"] is True
    assert out["failed"] is False and out["error"] is None and out["severity"] is None
    assert out["summary"] == f"backup {DUMP['name']} taken, verified and committed"


def test_without_confirm_nothing_is_committed():
    out = bf.backup_outcome({"dump": DUMP, "retention": PRUNE, "offsite": None}, False, "db")
    assert out["committed"] is False and len(out["actions"]) == 2
    assert out["summary"] == "not confirmed: nothing was changed (rerun with -e confirm=true)"


def test_a_failure_is_a_critical_check_and_p2_after_what_finished():
    failed_prune = {"failed": True, "msg": "disk full", "checks": [{"name": "ignored"}]}
    out = bf.backup_outcome({"dump": DUMP, "retention": failed_prune, "offsite": None}, True, "db",
                            {"task": "Apply the retention to the local backups", "error": "disk full"})
    assert out["failed"] is True and out["error"] == "disk full" and out["severity"] == "P2"
    assert out["summary"] == "backup FAILED: disk full"
    assert [c["name"] for c in out["checks"]] == ["backup_dump", "backup"]
    assert out["checks"][-1] == {"name": "backup", "component": "postgres", "status": "critical", "value": None,
                                 "threshold": None, "message": "Apply the retention to the local backups: disk full"}
    # the dump had finished: the backup it committed is still named
    assert out["name"] == DUMP["name"] and out["committed"] is True


def test_a_failed_dump_leaves_no_backup():
    out = bf.backup_outcome({"dump": {"failed": True, "msg": "pg_dump killed"}}, True, "db",
                            {"task": None, "error": None})
    assert out["name"] is None and out["paths"] == {} and out["manifest"] == {} and out["committed"] is False
    assert out["error"] == "the backup failed" and out["checks"][-1]["message"] == "backup: the backup failed"
