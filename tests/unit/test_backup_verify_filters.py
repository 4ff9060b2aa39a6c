"""The backup_verify role's drill outcome (roles/backup_verify/filter_plugins/backup_verify_filters.py), from
registered backup_restore results: no Docker, no database."""
from __future__ import annotations

import importlib.util
from pathlib import Path

_PATH = Path(__file__).resolve().parents[2] / "roles" / "backup_verify" / "filter_plugins" / "backup_verify_filters.py"
_spec = importlib.util.spec_from_file_location("backup_verify_filters", _PATH)
bvf = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bvf)

BACKUP = {"name": "db-20261203T010000Z", "created": "2026-12-03T01:00:00Z"}
SCRATCH = "db_drill_20261203_020000"
TABLES = [{"table": "users", "expected": 3, "actual": 3, "match": True, "error": None},
          {"table": "orders", "expected": 5, "actual": 5, "match": True, "error": None}]
RESTORE = {"changed": False, "tables": TABLES, "counts_match": True, "dropped": True, "timings": {"restore_s": 1.5},
           "checks": [{"name": "drill_rows_users"}, {"name": "drill_rows_orders"}], "msg": "would restore"}


def test_selected_backup_view():
    selected = {"name": "b", "created": "c", "age_hours": 1.0, "size_bytes": 9, "manifest": {"sha256": "x"},
                "paths": {"dump": "/b/b.dump"}, "other": 1}
    assert bvf.backup_verify_selected(selected) == {"name": "b", "created": "c", "age_hours": 1.0, "size_bytes": 9,
                                                    "sha256": "x", "path": "/b/b.dump"}
    assert bvf.backup_verify_selected(None) == {}
    assert bvf.backup_verify_selected(dict(selected, manifest=None))["sha256"] is None


def test_a_passed_drill_adds_the_scratch_check_and_one_action():
    out = bvf.backup_verify_drill_outcome(RESTORE, None, BACKUP, SCRATCH, False, True)
    assert out["ok"] is True and out["problem"] is None
    assert [c["name"] for c in out["checks"]] == ["drill_rows_users", "drill_rows_orders", "drill_scratch_dropped"]
    assert out["checks"][-1] == {"name": "drill_scratch_dropped", "component": "postgres", "status": "ok",
                                 "value": True, "threshold": True, "message": f"scratch database {SCRATCH} dropped"}
    assert out["actions"] == [{"name": "restore_drill", "changed": False, "detail":
                               f"restored {BACKUP['name']} into {SCRATCH} in 1.5s, compared 2 row counts (all match), "
                               "ANALYZE, dropped it"}]
    assert out["drill"] == {"backup": BACKUP["name"], "backup_created": BACKUP["created"], "scratch_database": SCRATCH,
                            "check_mode": False, "restored": True, "counts_match": True, "tables": TABLES,
                            "analyzed": True, "dropped": True, "timings": {"restore_s": 1.5}, "error": None}
    line = bvf.backup_verify_drill_line(out["drill"], True, None)
    assert line == f"restore drill of {BACKUP['name']}: users 3 3, orders 5 5 (table restored manifest)"


def test_a_mismatch_names_the_tables_and_a_kept_scratch_database_warns():
    tables = [TABLES[0], dict(TABLES[1], actual=4, match=False)]
    out = bvf.backup_verify_drill_outcome(dict(RESTORE, tables=tables, counts_match=False, dropped=False), None,
                                          BACKUP, SCRATCH, False, True)
    assert out["ok"] is False
    assert out["problem"] == "row counts of the restored backup differ from its manifest: orders"
    assert out["checks"][-1]["status"] == "warning" and out["checks"][-1]["message"].endswith(" NOT dropped")
    assert "(MISMATCH)" in out["actions"][0]["detail"]


def test_check_mode_only_describes():
    out = bvf.backup_verify_drill_outcome(dict(RESTORE, counts_match=None), None, BACKUP, SCRATCH, True, True)
    assert out["ok"] is True and out["actions"][0]["detail"] == "would restore"
    assert out["drill"]["restored"] is False and out["drill"]["analyzed"] is False
    assert [c["name"] for c in out["checks"]] == ["drill_rows_users", "drill_rows_orders"]


def test_a_failed_restore_is_a_critical_check_with_what_the_module_reported():
    failure = {"failed": True, "msg": "pg_restore failed", "tables": None, "dropped": True}
    out = bvf.backup_verify_drill_outcome({"failed": True}, failure, BACKUP, SCRATCH, False, True)
    assert out["ok"] is False and out["problem"] == f"restore drill of {BACKUP['name']} failed: pg_restore failed"
    assert out["actions"] == []
    assert out["checks"] == [{"name": "drill_restore", "component": "postgres", "status": "critical", "value": None,
                              "threshold": None,
                              "message": f"restore drill of {BACKUP['name']} into {SCRATCH} failed: pg_restore failed"}]
    assert out["drill"]["tables"] == [] and out["drill"]["dropped"] is True and out["drill"]["timings"] == {}
    assert out["drill"]["error"] == "pg_restore failed" and out["drill"]["counts_match"] is None
    assert bvf.backup_verify_drill_line(out["drill"], False, out["problem"]).startswith("RESTORE DRILL FAILED: ")


def test_a_drill_that_could_not_start_says_why():
    out = bvf.backup_verify_drill_outcome({"skipped": True}, None, {}, SCRATCH, False, False, "no backup found")
    assert out["ok"] is False and out["problem"] == "no backup found" and out["actions"] == []
    assert out["checks"][0]["message"] == "restore drill not run: no backup found"
    assert out["drill"]["backup"] is None and "backup_created" not in out["drill"]
    assert out["drill"]["error"] == "no backup found"
