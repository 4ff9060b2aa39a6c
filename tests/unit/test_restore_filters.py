"""The restore role's decisions and wording (roles/restore/filter_plugins/restore_filters.py), from registered
module results: the preflight's checks and plan, the replacement's actions and failure, the application's return
and the status. No Docker, no database."""
from __future__ import annotations

import importlib.util
from pathlib import Path

_PATH = Path(__file__).resolve().parents[2] / "roles" / "restore" / "filter_plugins" / "restore_filters.py"
_spec = importlib.util.spec_from_file_location("restore_filters", _PATH)
rf = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(rf)

DB = "shop"
NAMES = {"database": DB, "new_db": "shop_restore_20261203_010000", "replaced_db": "shop_replaced_20261203_010000",
         "into": ""}
OPTIONS = {"maintenance": True, "maintenance_file": "/m/on", "app_services": ["backend"], "health_check": True}
SELECTED = {"name": "shop-20261203T000000Z", "created": "2026-12-03T00:00:00Z", "size_bytes": 42,
            "manifest": {"row_counts": {"users": 3, "orders": 5}}}
VERIFY = {"ok": True, "selected": SELECTED, "problem": None, "checks": [{"name": "backup_checksum"}]}
LIVE = {"exists": True, "size_bytes": 100, "sessions": 2, "databases": [],
        "tables": [{"table": "users", "actual": 3, "error": None}, {"table": "orders", "actual": 4, "error": None},
                   {"table": "public.x", "actual": None, "error": "relation does not exist"}]}
CONTAINERS = {"results": [{"item": "backend", "containers": [{"Names": ["/shop-backend-1"]}]}]}


def test_preflight_checks_the_live_rows_against_the_backup_and_makes_the_plan():
    pre = rf.restore_preflight(VERIFY, LIVE, CONTAINERS, False, NAMES, OPTIONS)
    assert [c["name"] for c in pre["checks"]] == ["backup_checksum", "current_rows_users", "current_rows_orders",
                                                  "current_rows_public_x"]
    users, orders, missing = pre["checks"][1:]
    assert users["status"] == "ok" and users["message"] == "shop.users: 3 rows, the backup has 3"
    assert orders["status"] == "warning" and orders["value"] == 4 and orders["threshold"] == 5
    assert missing["status"] == "warning" and missing["message"] == "shop.public.x: ERROR relation does not exist"
    assert pre["failed"] is False and pre["error"] is None and pre["selected"] is SELECTED
    assert pre["running_services"] == ["backend"] and pre["container_names"] == ["shop-backend-1"]
    assert pre["live_state"] == {"database": DB, "exists": True, "size_bytes": 100, "sessions": 2,
                                 "tables": LIVE["tables"]}
    assert pre["plan"] == (
        "restore backup shop-20261203T000000Z (2026-12-03T00:00:00Z, 42 bytes, verified) into new database "
        "shop_restore_20261203_010000; switch nginx to maintenance (/m/on); stop shop-backend-1; rename shop to "
        "shop_replaced_20261203_010000 (kept until dropped) and shop_restore_20261203_010000 to shop; start backend, "
        "maintenance off, health check")


def test_an_unusable_backup_fails_the_preflight_and_the_plan_says_so():
    verify = {"ok": False, "selected": SELECTED, "problem": "checksum mismatch", "checks": []}
    live = dict(LIVE, exists=False, databases=[{"name": "shop_replaced_20261101_000000"}])
    pre = rf.restore_preflight(verify, live, {"results": [{"item": "backend", "containers": []}]}, True, NAMES,
                               dict(OPTIONS, health_check=False))
    assert pre["failed"] is True and pre["error"] == "checksum mismatch; nothing was stopped or changed"
    assert pre["selected"] is None
    # no backup: the live counts have nothing to compare with
    assert all(c["threshold"] is None for c in pre["checks"] if c["name"].startswith("current_rows_"))
    assert {"current_database", "replaced_databases"} <= {c["name"] for c in pre["checks"]}
    assert pre["plan"] == ("restore no usable backup into new database shop_restore_20261203_010000; stop no running "
                           "containers of backend; rename shop_restore_20261203_010000 to shop (the live database is "
                           "missing); start backend, maintenance off")


def test_the_side_by_side_plan():
    plan = rf.restore_plan(SELECTED, dict(NAMES, into="shop_copy", new_db="shop_copy"), OPTIONS, [], False, True)
    assert plan.endswith("into new database shop_copy beside shop (no container is stopped, nothing is swapped)")


FACTS = {"selected": SELECTED, "live_exists": True, "maintenance_file": "/m/on", "container_names": ["shop-backend-1"]}
RESTORED = {"changed": True, "target": NAMES["new_db"], "timings": {"restore_s": 2.5}, "checks": [{"name": "r"}],
            "tables": [{"table": "users"}, {"table": "orders"}]}


def test_a_replacement_records_each_step_in_order():
    steps = {"maintenance_on": {"changed": True}, "stop": {"changed": True}, "restore": RESTORED,
             "swap": {"changed": True, "terminated": 3, "checks": [{"name": "database_swap"}]}}
    out = rf.restore_replacement(steps, None, NAMES, FACTS)
    assert [a["name"] for a in out["actions"]] == ["maintenance_on", "stop_app", "restore", "swap"]
    assert out["actions"][1]["detail"] == "stopped shop-backend-1"
    assert out["actions"][2]["detail"] == ("restored shop-20261203T000000Z into shop_restore_20261203_010000 in 2.5s; "
                                           "2 row counts match the manifest; ANALYZE done")
    assert out["actions"][3]["detail"] == ("renamed shop to shop_replaced_20261203_010000 (kept) and "
                                           "shop_restore_20261203_010000 to shop; terminated 3 session(s)")
    assert [c["name"] for c in out["checks"]] == ["r", "database_swap"]
    assert out["swapped"] is True and out["failed"] is False and out["tables"] == RESTORED["tables"]


def test_a_missing_live_database_is_restored_straight_under_its_name():
    steps = {"maintenance_on": {"skipped": True}, "stop": {"skipped": True}, "restore": RESTORED,
             "swap": {"skipped": True}}
    out = rf.restore_replacement(steps, None, NAMES, dict(FACTS, live_exists=False))
    assert [a["name"] for a in out["actions"]] == ["restore", "swap"]
    assert out["actions"][-1]["detail"] == "restored straight into shop (it did not exist)" and out["swapped"]


def test_a_failed_restore_leaves_the_live_database_untouched():
    failure = {"task": "Restore the backup", "result": {"failed": True, "msg": "row counts differ"}}
    steps = {"maintenance_on": {"changed": True}, "stop": {"changed": True}, "restore": failure["result"]}
    out = rf.restore_replacement(steps, failure, NAMES, FACTS)
    assert [a["name"] for a in out["actions"]] == ["maintenance_on", "stop_app"]
    assert out["failed"] is True and out["swapped"] is False and out["swap_unknown"] is False
    assert out["error"] == "Restore the backup: row counts differ; shop was not touched"
    assert out["checks"] == [{"name": "restore", "component": "postgres", "status": "critical", "value": None,
                              "threshold": None, "message": out["error"]}]
    assert out["tables"] == []


def test_a_failed_swap_reports_what_backup_restore_found():
    result = {"failed": True, "msg": "swap failed at step rename", "step": "rename", "swapped": False,
              "checks": [{"name": "database_swap", "status": "critical"}]}
    steps = {"restore": RESTORED, "swap": result}
    out = rf.restore_replacement(steps, {"task": "Swap", "result": result}, NAMES, FACTS)
    assert [a["name"] for a in out["actions"]] == ["restore"]
    assert out["error"] == "Swap: swap failed at step rename"
    assert [c["name"] for c in out["checks"]] == ["r", "database_swap"]
    assert out["swapped"] is False and out["swap_unknown"] is False
    unknown = rf.restore_replacement(steps, {"task": "Swap", "result": dict(result, swapped=None)}, NAMES, FACTS)
    assert unknown["swap_unknown"] is True and unknown["swapped"] is False


def test_the_application_back_and_healthy():
    facts = {"app_services": ["backend"], "maintenance_file": "/m/on", "error": None, "health_critical": False,
             "health_checks": [{"name": "api_health"}], "health_status": "ok"}
    out = rf.restore_app_back({"healthy": {"results": []}, "maintenance_off": {"changed": True}}, None, facts)
    assert out["actions"] == [{"name": "start_app", "changed": True, "detail": "started backend: healthy"},
                              {"name": "maintenance_off", "changed": True, "detail": "removed /m/on"}]
    assert out["checks"] == [{"name": "api_health"}] and out["health_critical"] is False and not out["app_failed"]
    critical = rf.restore_app_back({"healthy": {}, "maintenance_off": None}, None,
                                   dict(facts, health_status="critical"))
    assert critical["health_critical"] is True and critical["actions"] == []


def test_an_application_that_does_not_come_back_is_critical():
    facts = {"app_services": ["backend"], "maintenance_file": "/m/on", "error": "earlier", "health_critical": False,
             "health_checks": None, "health_status": None}
    out = rf.restore_app_back({"healthy": {"failed": True}}, {"task": "Wait", "msg": "timeout"}, facts)
    assert out["app_failed"] is True and out["health_critical"] is True
    assert out["error"] == "earlier; the application did not come back: Wait: timeout"
    assert out["checks"][0]["name"] == "app_restart" and out["checks"][0]["component"] == "backend"


def test_status_and_summary():
    assert rf.restore_status(False, None, False, True, "restored x", "p") == {"severity": None, "summary": "restored x"}
    assert rf.restore_status(False, None, False, True, None, "p")["summary"] == "nothing to do"
    assert rf.restore_status(True, "boom", False, True, None, "p") == {"severity": "P1",
                                                                      "summary": "restore FAILED: boom"}
    assert rf.restore_status(True, "boom", True, True, None, "p")["severity"] == "P0"
    assert rf.restore_status(False, None, False, False, None, "do it")["summary"] == (
        "not confirmed: nothing was stopped or changed; do it (rerun with -e confirm=true)")
