"""The maintenance role's decisions (roles/maintenance/filter_plugins/maintenance_filters.py): each step's module
results turned into report checks and actions, and the run's status, severity and summary. No Docker, no service."""
from __future__ import annotations

import importlib.util
from datetime import datetime
from pathlib import Path

import pytest

_PATH = Path(__file__).resolve().parents[2] / "roles" / "maintenance" / "filter_plugins" / "maintenance_filters.py"
_spec = importlib.util.spec_from_file_location("maintenance_filters", _PATH)
mf = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(mf)

GIB = 1073741824
NOT_ACTING, HOW = "not confirmed", "rerun with -e confirm=true"


# --- smoke ------------------------------------------------------------------------------------------------------
def _reads(*pairs):
    return {"results": [{"status": code, "x_cache": cache} for code, cache in pairs]}


def test_smoke_request_path_ok():
    login = {"status": 200, "json": {"token": "t0k"}}
    me = {"status": 200, "json": {"user": {"email": "demo@example.com"}}}
    checks = mf.maintenance_smoke_checks(login, me, _reads((200, "MISS"), (200, "HIT")), "demo@example.com", "/api/l")
    assert [c["status"] for c in checks] == ["ok", "ok", "ok"]
    assert checks[0]["message"] == "POST /api/auth/login as demo@example.com through nginx answered 200 with a token"
    assert checks[1]["message"] == "GET /api/me with the token answered 200 for demo@example.com"
    assert checks[2]["message"] == "GET /api/l twice through nginx: 200 (MISS), then 200 (HIT)"
    assert checks[2]["value"] == "HIT" and checks[0]["value"] == 200


def test_smoke_without_an_answer_or_a_token():
    login = {"msg": "Status code was -1 and not [200]: Request failed: <urlopen error [Errno 111]>"}
    me = {"skipped": True, "changed": False}
    checks = mf.maintenance_smoke_checks(login, me, _reads((-1, "none"), (-1, "none")), "u@x", "/api/l")
    assert [c["status"] for c in checks] == ["critical", "critical", "critical"]
    assert "answered nothing (Status code was -1" in checks[0]["message"] and checks[0]["value"] == -1
    assert checks[1]["message"] == "GET /api/me not tried: the login gave no token"
    assert checks[2]["message"].endswith("; the listing endpoint failed")


def test_smoke_second_read_not_from_the_cache_warns():
    login = {"status": 401, "json": {"error": "bad"}}
    checks = mf.maintenance_smoke_checks(login, {"status": 401}, _reads((200, "MISS"), (200, "MISS")), "u@x", "/l")
    assert checks[0]["status"] == "critical" and checks[0]["message"].endswith("answered 401 without a token")
    assert checks[1]["message"] == "GET /api/me with the token answered 401 (not the smoke user)"
    assert checks[2]["status"] == "warning" and "not served from the cache" in checks[2]["message"]


# --- disk -------------------------------------------------------------------------------------------------------
def _fs(mount, total, free, inodes=(10, 100)):
    return {"mount": mount, "size_total": total, "size_available": free, "inode_used": inodes[0],
            "inode_total": inodes[1]}


def test_disk_each_file_system_once_on_the_longest_mount():
    mounts = [_fs("/var/lib/docker", 100 * GIB, 50 * GIB), _fs("/", 100 * GIB, 15 * GIB, (95, 100))]
    checks = mf.maintenance_disk_checks(mounts, ["/", "/var/lib/docker", "/var/backups/x", "/var/lib/dockerx"], 80, 90)
    assert [c["name"] for c in checks] == ["disk:/", "disk:/var/lib/docker"]
    root, docker = checks
    assert root["paths"] == ["/", "/var/backups/x", "/var/lib/dockerx"] and docker["paths"] == ["/var/lib/docker"]
    assert root["value"] == 85.0 and root["inodes_pct"] == 95.0 and root["status"] == "critical"  # inodes decide
    assert docker["status"] == "ok" and docker["threshold"] == {"warning": 80.0, "critical": 90.0}
    assert docker["message"] == ("/var/lib/docker (/var/lib/docker): 50.0% used, 50.0 GiB free of 100.0 GiB; "
                                 "inodes 10.0% used")


def test_disk_warning_and_empty_file_systems():
    checks = mf.maintenance_disk_checks([_fs("/", 0, 0, (0, 0)), _fs("/data", 10 * GIB, 1.5 * GIB)],
                                        ["/", "/data/x"], "80", "90")
    assert {c["name"]: c["status"] for c in checks} == {"disk:/": "ok", "disk:/data": "warning"}
    assert checks[0]["value"] == 0.0 and checks[0]["inodes_pct"] == 0.0


# --- logs -------------------------------------------------------------------------------------------------------
def test_log_checks_per_service_and_unavailable():
    long = "E" * 400
    result = {"available": True, "logs": {
        "backend": {"match_count": 3, "lines_scanned": 500, "matches": ["a", long]},
        "nginx": {"match_count": 0, "lines_scanned": 10, "matches": []},
        "postgres": {"match_count": 1200, "lines_scanned": 5000, "matches": ["x"]}}}
    checks = mf.maintenance_log_checks(result, "24h", 1, 1000)
    assert [(c["name"], c["status"]) for c in checks] == [
        ("log_review:backend", "warning"), ("log_review:nginx", "ok"), ("log_review:postgres", "critical")]
    assert checks[0]["message"] == \
        "3 error line(s) in 500 line(s) of backend over the last 24h; last: " + "E" * 197 + "..."
    assert checks[1]["message"] == "0 error line(s) in 10 line(s) of nginx over the last 24h"
    assert checks[0]["threshold"] == {"warning": 1, "critical": 1000} and checks[0]["last_errors"] == ["a", long]
    down = mf.maintenance_log_checks({"available": False, "reason": "no docker"}, "24h", 1, 1000)
    assert down == [{"name": "log_review", "step": "logs", "component": "docker", "status": "unknown", "value": None,
                     "threshold": None, "message": "the logs could not be read: no docker"}]


# --- OS updates -------------------------------------------------------------------------------------------------
SIM = {"stdout_lines": [
    "Reading package lists...",
    "Inst libssl3 [3.0.1] (3.0.2 Debian-Security:12/stable-security [amd64])",
    "Inst curl [7.1] (7.2 Debian:12/stable [amd64])",
    "Inst containerd.io [1.6] (1.7 Docker:stable [amd64])",
    "Conf curl (7.2 Debian:12/stable [amd64])"]}


def test_os_plan_all_but_the_excluded():
    plan = mf.maintenance_os_plan(SIM, "all", ["containerd.io", "docker-ce"])
    assert plan == {"pending": ["containerd.io", "curl", "libssl3"], "security": ["libssl3"],
                    "targets": ["curl", "libssl3"], "held": ["containerd.io"]}
    assert mf.maintenance_os_plan(SIM, ["curl", "docker-ce"], ["docker-ce"])["targets"] == ["curl"]
    assert mf.maintenance_os_plan({}, "all", [])["pending"] == []


def test_os_record_described_upgraded_and_nothing_selected():
    plan = mf.maintenance_os_plan(SIM, "all", ["containerd.io"])
    rec = mf.maintenance_os_record(plan, {}, {"skipped": True}, "all", 1, False, NOT_ACTING, HOW)
    assert rec["check"]["status"] == "warning" and rec["check"]["value"] == 3 and rec["check"]["security_updates"] == 1
    assert rec["check"]["message"] == ("3 OS package update(s) pending, 1 of them from the security archive: "
                                       "containerd.io, curl, libssl3")
    assert rec["action"] == {"name": "OS package updates", "changed": False, "detail":
                             "not confirmed: would upgrade 2 package(s): curl, libssl3; held back: containerd.io; "
                             "rerun with -e confirm=true"}
    after = {"stdout_lines": ["Inst containerd.io [1.6] (1.7 Docker:stable [amd64])"]}
    rec = mf.maintenance_os_record(plan, after, {"changed": True}, "all", 1, True, NOT_ACTING, HOW)
    assert rec["check"]["status"] == "ok" and rec["check"]["pending"] == ["containerd.io"]
    assert rec["action"]["changed"] is True and rec["action"]["detail"].startswith("upgraded 2 package(s): curl")
    none = mf.maintenance_os_plan(SIM, [], ["containerd.io"])
    rec = mf.maintenance_os_record(none, {"skipped": True}, {"skipped": True}, [], 1, True, NOT_ACTING, HOW)
    assert rec["action"]["detail"] == "nothing selected to upgrade (maintenance_os_update_packages: [])"


# --- docker prune -----------------------------------------------------------------------------------------------
BEFORE = {"can_talk_to_docker": True,
          "images": [{"Id": "sha256:a", "Size": 2 * 1048576}, {"Id": "sha256:b", "Size": 0}],
          "disk_usage": {"BuilderSize": 1048576}, "containers": [{"Id": "c1"}]}
OPTIONS = {"builder_cache": True, "containers": False, "networks": False}


def test_prune_described_and_done():
    rec = mf.maintenance_prune_record(BEFORE, {"skipped": True}, OPTIONS, False, "check mode", "rerun without --check")
    assert rec["checks"][0]["value"] == 3.0 and rec["checks"][0]["message"] == \
        "before the prune: 2 dangling image(s) and build cache, 3.0 MiB reclaimable"
    assert rec["actions"][0] == {"name": mf.PRUNE_ACTION, "changed": False, "detail":
                                 "check mode: would remove 2 dangling image(s) (2.0 MiB), the build cache (1.0 MiB); "
                                 "never volumes; rerun without --check"}
    pruned = {"changed": True, "images": [{"Deleted": "sha256:a"}, {"Deleted": "sha256:parent"}],
              "images_space_reclaimed": 2 * 1048576, "builder_cache_space_reclaimed": 1048576,
              "containers": ["x"], "networks": []}
    opts = {**OPTIONS, "containers": True, "networks": True}
    rec = mf.maintenance_prune_record(BEFORE, pruned, opts, True, NOT_ACTING, HOW)
    assert rec["actions"][0]["changed"] is True
    assert rec["actions"][0]["detail"] == (
        "removed 1 dangling image(s) (2 image id(s) with their unused parent layers), "
        "1 container(s), 0 network(s), reclaimed 3.0 MiB; volumes untouched")


def test_prune_without_docker_is_unknown_and_acts_not():
    rec = mf.maintenance_prune_record({"can_talk_to_docker": False, "msg": "socket gone"}, {}, OPTIONS, True, "", "")
    assert rec["actions"] == [] and rec["checks"][0]["status"] == "unknown"
    assert rec["checks"][0]["message"] == "the Docker daemon could not be asked: socket gone"


# --- ANALYZE ----------------------------------------------------------------------------------------------------
def test_analyze_planned_and_done():
    plan = {"changed": False, "tables": ["public.a", "public.b"]}
    rec = mf.maintenance_analyze_record(plan, {"skipped": True}, False, "shop", NOT_ACTING, HOW)
    assert rec["check"]["status"] == "ok" and rec["check"]["message"] == "2 table(s) of shop to analyse"
    assert rec["action"] == {"name": mf.ANALYZE_ACTION, "changed": False,
                             "detail": "not confirmed: would ANALYZE database shop (2 user tables); " + HOW}
    done = {"changed": True, "tables": ["public.a"], "duration_ms": 1530,
            "msg": "analysed database shop (1 user tables)"}
    rec = mf.maintenance_analyze_record({"skipped": True}, done, True, "shop", NOT_ACTING, HOW)
    assert rec["check"]["message"] == "analysed 1 table(s) of shop in 1.5 s" and rec["check"]["status"] == "ok"
    assert rec["action"] == {"name": mf.ANALYZE_ACTION, "changed": True, "detail": done["msg"]}


@pytest.mark.parametrize("apply", [True, False])
def test_a_failed_analyze_is_critical_never_ok(apply):
    """The issue-12 bug: failed_when: false erased `failed`, and a refused connection read as 'ok, 0 tables'."""
    failed = {"failed": True, "msg": "could not connect to PostgreSQL (auth): password authentication failed"}
    plan, done = ({}, failed) if apply else (failed, {})
    rec = mf.maintenance_analyze_record(plan, done, apply, "shop", NOT_ACTING, HOW)
    assert rec["check"]["status"] == "critical" and "password authentication failed" in rec["check"]["message"]
    assert "0 table" not in rec["check"]["message"] and rec["action"]["changed"] is False
    assert "failed" in rec["action"]["detail"] or "not planned" in rec["action"]["detail"]
    # A result with failed erased (failed_when: false) but no tables is not taken as a success either.
    erased = {"failed": False, "msg": "could not connect", "failed_when_result": False}
    rec = mf.maintenance_analyze_record(erased if not apply else {}, erased if apply else {}, apply, "shop", "", "")
    assert rec["check"]["status"] == "critical"


# --- listeners --------------------------------------------------------------------------------------------------
def test_listeners_unexpected_exposed_and_missing():
    tcp = [{"address": "127.0.0.1", "port": 5432, "name": "postgres", "pid": 10, "user": "pg"},
           {"address": "10.0.0.5", "port": 8080, "name": "python3", "pid": 11, "user": "root"},
           {"address": "127.0.0.1", "port": 41000, "name": "", "pid": 12, "user": "me"},
           {"address": "127.0.0.1", "port": 5432, "name": "postgres", "pid": 10, "user": "pg"}]
    udp = [{"address": "127.0.0.1", "port": 5432, "name": "x"}]
    expected = [{"service": "postgres", "address": "127.0.0.1", "port": 5432},
                {"service": "redis", "address": "*", "port": 6379, "protocol": "tcp"},
                {"service": "metrics", "address": "*", "port": 9100, "optional": True},
                {"service": "api", "address": "*", "port": 9200, "optional": False}]
    listeners, missing = mf.maintenance_listener_checks(tcp, udp, expected, ["127.0.0.1", "::1"])
    assert listeners["listening"] == 5 and listeners["value"] == 3 and listeners["status"] == "critical"
    assert [(u["protocol"], u["port"], u["exposed"]) for u in listeners["unexpected"]] == [
        ("tcp", 8080, True), ("tcp", 41000, False), ("udp", 5432, False)]
    assert listeners["message"] == ("5 listener(s), 3 not expected, 1 of them on a non-loopback address: "
                                    "tcp 10.0.0.5:8080 (python3); tcp 127.0.0.1:41000; udp 127.0.0.1:5432 (x)")
    assert missing["status"] == "warning" and missing["message"] == "expected but not listening: redis:6379, api:9200"
    ok, none_missing = mf.maintenance_listener_checks(tcp[:1], [], expected[:1], ["127.0.0.1"])
    assert ok["status"] == "ok" and none_missing["message"] == "every required expected listener is there"


# --- containers -------------------------------------------------------------------------------------------------
def test_containers_root_users_and_image_age():
    stack = {"available": True, "containers": [
        {"id": "1", "name": "p-backend-1", "service": "backend", "image_id": "sha256:b"},
        {"id": "2", "name": "p-redis-1", "service": "redis", "image_id": "sha256:r"},
        {"id": "3", "name": "p-nginx-1", "service": "nginx", "image_id": "sha256:r"}]}
    info = {"results": [
        {"exists": True, "item": stack["containers"][0], "container": {"Config": {"User": "nobody"}}},
        {"exists": True, "item": stack["containers"][1], "container": {"Config": {"User": ""}}},
        {"exists": True, "item": stack["containers"][2], "container": {"Config": {"User": "0:0"}}},
        {"exists": False, "item": {"name": "gone", "service": "x"}}]}
    images = {"images": [{"Id": "sha256:b" + "0" * 20, "RepoTags": [], "Created": "2026-01-01T00:00:00.123Z"},
                         {"Id": "sha256:r", "RepoTags": ["redis:7"], "Created": "2025-06-01T00:00:00Z"}]}
    images["images"][0]["Id"] = "sha256:b"
    root, age = mf.maintenance_container_checks(stack, info, images, ["redis"], 90, 180, now=datetime(2026, 1, 11))
    assert root["value"] == ["p-redis-1", "p-nginx-1"] and root["status"] == "warning"  # nginx is not allowed
    assert root["users"] == {"p-backend-1": "nobody", "p-redis-1": "root (no USER)", "p-nginx-1": "0:0"}
    assert root["threshold"] == 'none outside ["redis"]'
    assert root["message"] == "2 of 3 container(s) start as root: p-redis-1, p-nginx-1; allowed: redis"
    assert age["status"] == "critical" and age["value"] == 224.0
    assert [(i["image"], i["services"]) for i in age["images"]] == [("redis:7", ["redis", "nginx"]),
                                                                    ("sha256:b", ["backend"])]
    assert age["message"] == "oldest image redis:7 was built 224.0 day(s) ago (2 image(s) in use by the stack)"
    down = mf.maintenance_container_checks({"available": False, "reason": "no socket"}, {}, {}, [], 90, 180)
    assert len(down) == 1 and down[0]["status"] == "unknown" and "no socket" in down[0]["message"]


# --- performance ------------------------------------------------------------------------------------------------
def test_performance_checks_and_unreviewable_database():
    perf = {"available": True,
            "checks": {"slow_queries": {"name": "slow_queries", "status": "ok", "value": 12.0},
                       "connections": {"name": "connections", "status": "ok"},
                       "cache_hit_ratio": {"name": "cache_hit_ratio", "status": "warning", "value": 97.0}},
            "slow_queries": {"by_mean": [{"q": 1}], "by_total": []},
            "maintenance": {"stale_analyze": [{"table": "public.a", "last_analyze": None, "last_autoanalyze": None},
                                              {"table": "public.b", "last_analyze": "2026-01-01",
                                               "last_autoanalyze": None}]}}
    checks = mf.maintenance_performance_checks(perf)
    assert [c["name"] for c in checks] == ["slow_queries", "cache_hit_ratio", "tables_never_analyzed"]
    assert checks[0]["top_by_mean"] == [{"q": 1}] and checks[0]["step"] == "performance"
    assert checks[2]["status"] == "warning" and checks[2]["tables"] == ["public.a"]
    assert checks[2]["message"] == "1 table(s) with changes were never analysed: public.a"
    down = mf.maintenance_performance_checks({"available": False, "reason": "refused"})
    assert down[0]["status"] == "critical" and down[0]["message"] == "the database could not be reviewed: refused"


# --- the run ----------------------------------------------------------------------------------------------------
def test_overall_status_severity_and_summary():
    checks = [{"name": "a", "status": "ok"}, {"name": "b", "status": "warning"}, {"name": "c", "status": "critical"},
              {"name": "d", "status": "unknown"}]
    out = mf.maintenance_overall(checks, "weekly", True)
    assert out == {"status": "critical", "severity": "P2", "summary":
                   "weekly maintenance (check mode): 4 check(s), 1 ok, 1 warning, 1 critical, 1 unknown; "
                   "c critical; b warning"}
    assert mf.maintenance_overall(checks, "daily", False, "P1")["severity"] == "P1"
    assert mf.maintenance_overall([{"name": "d", "status": "unknown"}], "daily")["severity"] == "P3"
    assert mf.maintenance_overall([], "daily") == {"status": "ok", "severity": None,
                                                   "summary": "daily maintenance: 0 check(s), 0 ok, 0 warning, "
                                                              "0 critical, 0 unknown"}
    many = [{"name": "w%d" % i, "status": "warning"} for i in range(8)]
    assert mf.maintenance_overall(many, "daily")["summary"].endswith("w5 warning ...")
