"""Issue 10's bad-input matrix, end to end through the playbooks against the reference stack.

Each case runs the public playbook with the bad value (WITH confirm=true wherever the playbook acts, so a gap
would really change something), and asserts: a clear message naming the input, a non-zero rc where the run must
stop, no traceback anywhere (stdout, events, report), and nothing changed on the real state (containers, databases,
Redis canaries, backups, deploy history, the stack's env file, certificates, nft rules), compared before and after
each batch. Cases refused by the first task of the playbook (validate_inputs) take ~2 s; they run in a few threads.
"""
from __future__ import annotations

import hashlib
import json
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import docker
import psycopg
import pytest
import redis

from tests.helpers.playbooks import TRACEBACK, run

pytestmark = pytest.mark.integration

DESTRUCTIVE = ["db-backup", "db-restore", "emergency-restore", "cache-clear", "cache-flush", "deploy", "rollback",
               "incident-p0", "incident-p1", "troubleshoot-db-connections", "ssl-renew", "daily-maintenance",
               "weekly-maintenance", "monthly-maintenance", "emergency-recover", "emergency-security-breach"]
BACKUP_DIR = Path("/var/backups/equipment-marketplace")
CANARIES = {0: ["cache:matrix:canary", "session:matrix:canary"], 1: ["cache:matrix:canary"]}


def _primary_address() -> str | None:
    """This machine's own non-loopback address (the controller's), if it has one."""
    try:
        out = subprocess.run(["ip", "-4", "-o", "addr", "show", "scope", "global"], capture_output=True, text=True,
                             timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    for line in out.splitlines():
        parts = line.split()
        if "inet" in parts:
            return parts[parts.index("inet") + 1]
    return None


def _files_digest(paths) -> dict[str, str]:
    out = {}
    for base in paths:
        base = Path(base)
        if base.is_dir():
            files = sorted(p for p in base.rglob("*") if p.is_file())
        else:
            files = [base] if base.exists() else []
        for f in files:
            st = f.stat()
            out[str(f)] = f"{st.st_size}:{st.st_mtime_ns}:{oct(st.st_mode)}"
    return out


class State:
    """The real state a bad input must not change."""

    def __init__(self, stack_env):
        self.env = stack_env
        self.docker = docker.from_env()

    def _redis(self, db: int):
        e = self.env
        return redis.Redis(host=e["BIND_ADDRESS"], port=int(e["REDIS_PORT"]), password=e["REDIS_PASSWORD"], db=db,
                           socket_timeout=5)

    def plant_canaries(self):
        for db, keys in CANARIES.items():
            client = self._redis(db)
            for key in keys:
                client.set(key, "matrix")

    def snapshot(self) -> dict:
        e = self.env
        label = f"com.docker.compose.project={e['COMPOSE_PROJECT_NAME']}"
        containers = sorted(
            (c.name, c.id, c.attrs["State"]["StartedAt"], c.attrs["Image"], c.status)
            for c in self.docker.containers.list(all=True, filters={"label": label}))
        dsn = (f"host={e['BIND_ADDRESS']} port={e['POSTGRES_PORT']} dbname=postgres user={e['POSTGRES_SUPERUSER']} "
               f"password={e['POSTGRES_PASSWORD']} connect_timeout=5")
        with psycopg.connect(dsn) as conn:
            dbs = conn.execute("SELECT datname, datallowconn FROM pg_database ORDER BY 1").fetchall()
            terminated = conn.execute("SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend' "
                                      "AND application_name = 'em-matrix-canary'").fetchone()[0]
        live = f"{dsn.replace('dbname=postgres', 'dbname=' + e['POSTGRES_DB'])}"
        with psycopg.connect(live) as conn:
            orders = conn.execute("SELECT count(*) FROM orders").fetchone()[0]
            keys = conn.execute("SELECT count(*), count(*) FILTER (WHERE revoked_at IS NULL) FROM api_keys").fetchone()
        canaries = {db: [bool(self._redis(db).exists(k)) for k in ks] for db, ks in CANARIES.items()}
        nft = subprocess.run(["nft", "list", "ruleset"], capture_output=True, text=True, timeout=10).stdout
        state_dir = Path(e.get("EM_STATE_DIR", "/var/lib/equipment-marketplace"))
        return {
            "containers": containers, "databases": dbs, "canary_sessions": terminated, "orders": orders,
            "api_keys": keys, "redis_canaries": canaries, "nft": hashlib.sha256(nft.encode()).hexdigest(),
            "files": _files_digest([BACKUP_DIR, state_dir / "stack.env", state_dir / "nginx" / "ssl",
                                    state_dir / "deploy-history.jsonl"]),
        }


@pytest.fixture(scope="module")
def state(stack_env):
    st = State(stack_env)
    st.plant_canaries()
    return st


@pytest.fixture(scope="module")
def canary_session(stack_env):
    """A client session of the app user that troubleshoot-db-connections must not end on bad input."""
    e = stack_env
    conn = psycopg.connect(f"host={e['BIND_ADDRESS']} port={e['POSTGRES_PORT']} dbname={e['POSTGRES_DB']} "
                           f"user={e['APP_DB_USER']} password={e['APP_DB_PASSWORD']} "
                           f"application_name=em-matrix-canary connect_timeout=5", autocommit=True)
    yield conn
    conn.close()


def _check(result, case) -> list[str]:
    """What is wrong with one case's run (empty when it behaved)."""
    _, _, words, must_fail = case
    problems = []
    text = result.stdout + "\n" + "\n".join(json.dumps(ev.get("event_data", {}).get("res", {})) for ev in result.events)
    for path in result.report_paths.values():
        text += Path(path).read_text()
    if TRACEBACK.search(text):
        problems.append("traceback")
    if must_fail and result.rc == 0:
        problems.append("rc 0")
    if not must_fail and result.rc != 0:
        problems.append(f"rc {result.rc}")
    if words and words not in text:
        problems.append(f"no message containing {words!r}: ...{result.stdout[-1500:]}")
    return problems


def _run_batch(cases, workers=3):
    def one(case):
        playbook, extravars, _, _ = case
        return case, run(playbook, extravars=extravars)

    with ThreadPoolExecutor(max_workers=workers) as pool:
        results = list(pool.map(one, cases))
    failures = {}
    for case, result in results:
        problems = _check(result, case)
        if problems:
            failures[f"{case[0]} {case[1]}"] = problems
    return failures


def _case_id(case):
    return f"{case[0]}:{json.dumps(case[1], sort_keys=True)[:60]}"


LONG = "x" * 129
# (playbook, extra vars, words the run must print, must the run fail)
EARLY_REFUSALS = [
    # confirm typos on every destructive playbook
    *[(pb, {"confirm": "ture"}, "confirm must be true or false", True) for pb in DESTRUCTIVE],
    # block_ips
    *[("emergency-security-breach", {"confirm": True, "block_ips": v}, w, True) for v, w in [
        ("::ffff:127.0.0.1", "IPv4-mapped"), ("fe80::1%eth0", "zone id"), ("2001:db8::/16", "wider than /32"),
        ("127.0.0.0/8", "loopback"), ("attacker.example.com", "not an IP address"),
        ("203.0.113.9,,198.51.100.1", "empty entry")]],
    # revoke_api_keys
    *[("emergency-security-breach", {"confirm": True, "revoke_api_keys": v}, w, True) for v, w in [
        ("all,x", "cannot be combined"), ("a*", "too broad"), ("**", "selects every key")]],
    # cache patterns and scope
    *[("cache-clear", {"confirm": True, "pattern": v}, "no literal key prefix", True)
      for v in ["*:*", "[a-z]*", "?*", "**", "\\*"]],
    *[("cache-flush", {"confirm": True, "scope": v}, "scope must be one of cache_db, all", True)
      for v in ["ALL", "bogus"]],
    ("cache-flush", {"confirm": True, "include_prefixes": "session:*"}, "include_prefixes entry", True),
    # backup names that are paths
    *[(pb, {"confirm": True, "backup": v}, "is not a backup name", True)
      for pb in ("db-restore", "emergency-restore") for v in ["../../etc/passwd", "/etc/passwd"]],
    # restore_into / drop_replaced
    *[("db-restore", {"confirm": True, key: v}, w, True) for key in ("restore_into", "drop_replaced")
      for v, w in [("postgres", "system database"), ("template1", "system database"), ("Upper", "lower case"),
                   ("x" * 64, "at most 63")]],
    # version
    *[(pb, {"confirm": True, "version": v}, "not a valid image tag", True) for pb in ("deploy", "rollback")
      for v in ["1.0;id", "$(id)", "-x", "../x", LONG]],
    # scale_backend
    *[("incident-p1", {"confirm": True, "scale_backend": v}, "scale_backend must be", True)
      for v in ["0", "-1", "2.0", "true", 0, -1, 2.0, True]],
    # pids / terminate
    *[("troubleshoot-db-connections", {"confirm": True, "terminate": "pids", "pids": v}, "pids entry must be", True)
      for v in ["0", "-1", "abc", [0], [-1], ["abc"]]],
    ("troubleshoot-db-connections", {"confirm": True, "terminate": "bogus"}, "terminate must be one of", True),
    # view-logs
    *[("view-logs", {"tail": v}, "tail must be", True) for v in ["-5", "abc", -5]],
    ("view-logs", {"since": "99999999999"}, "in the future", True),
    ("view-logs", {"pattern": "("}, "not a valid regular expression", True),
]


def test_bad_values_are_refused_before_anything_runs(state, canary_session, stack_env):
    before = state.snapshot()
    failures = _run_batch(EARLY_REFUSALS)
    after = state.snapshot()
    assert not failures, json.dumps(failures, indent=1)[:6000]
    assert after == before


# Values whose syntax is fine but which the roles must refuse on the target (they need its state).
ROLE_REFUSALS = [
    ("db-restore", {"confirm": True, "backup": "no-such-backup-20990101T000000Z.dump"}, "no-such-backup", True),
    ("db-restore", {"confirm": True, "restore_into": "equipment_marketplace"}, "live database", True),
    ("db-restore", {"confirm": True, "drop_replaced": "equipment_marketplace"}, "equipment_marketplace", True),
    ("view-logs", {"services": "backnd"}, "backnd", True),
    ("incident-p0", {"confirm": True, "services": "backnd"}, "backnd", True),
]


def test_values_only_the_target_can_judge_are_refused_with_nothing_changed(state, canary_session, stack_env):
    cases = list(ROLE_REFUSALS)
    own = _primary_address()
    if own:  # a network that contains the controller (this machine) itself
        cases.append(("emergency-security-breach", {"confirm": True, "block_ips": own.split("/")[0] + "/24"},
                      "controller", True))
    before = state.snapshot()
    failures = _run_batch(cases, workers=2)
    after = state.snapshot()
    assert not failures, json.dumps(failures, indent=1)[:6000]
    assert after == before


# confirm spelled as false: every destructive playbook describes, changes nothing, exits 0. Each word is used on a
# share of the playbooks (the parser's reading of each word on every playbook is tests/unit/test_inputs.py's).
FALSE_WORDS = ["false", "no", "0", "off"]
NEEDS = {"cache-clear": {"pattern": "cache:matrix:*"}, "deploy": {"version": "1.0.0"}, "rollback": {"version": "1.0.0"},
         "incident-p1": {"scale_backend": "2"},
         "troubleshoot-db-connections": {"terminate": "blockers"},
         "emergency-security-breach": {"block_ips": "203.0.113.9"}}


def test_confirm_spelled_false_describes_and_changes_nothing(state, canary_session, stack_env):
    cases = []
    for i, pb in enumerate(DESTRUCTIVE):
        # daily and monthly maintenance take confirm but have no step behind the gate: nothing to describe
        words = None if pb in ("daily-maintenance", "monthly-maintenance") else "confirm=true"
        cases.append((pb, {"confirm": FALSE_WORDS[i % len(FALSE_WORDS)], **NEEDS.get(pb, {})}, words, None))
    before = state.snapshot()
    results = []
    with ThreadPoolExecutor(max_workers=2) as pool:
        results = list(pool.map(lambda c: (c, run(c[0], extravars=c[1])), cases))
    after = state.snapshot()
    problems = {}
    for case, result in results:
        # (a describe step may run its module in check mode, which reports "would change": the real state decides)
        found = _check(result, case)
        if found:
            problems[_case_id(case)] = found
    assert not problems, json.dumps(problems, indent=1)[:6000]
    assert after == before


def test_an_iso_time_works(stack_env):
    """The issue's traceback: since=2026-12-01T02:00:00Z now reads logs (rc 0) through the driver and the CLI."""
    result = run("view-logs", extravars={"since": "2026-12-01T02:00:00Z", "tail": "5", "services": "backend"})
    assert result.rc == 0 and not _check(result, ("view-logs", {}, None, False))
