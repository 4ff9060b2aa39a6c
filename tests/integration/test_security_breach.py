"""emergency-security-breach against the reference stack, each step for real.

Unsafe block_ips entries are refused before anything changes; without confirm nothing changes; with confirm a
TEST-NET address is blocked in nftables, the API key is revoked, the JWT secret is rotated (the old token gets 401
through nginx, a new login works), the evidence bundle verifies, and no secret appears in anything the run left.

The test address is 198.51.100.77 (TEST-NET-2): this machine talks to infrastructure inside 203.0.113.0/24, so
the tests stay out of that network. Teardown removes the block and un-revokes only the keys the tests revoked.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import tarfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import psycopg
import pytest

from tests.helpers import faults, stackenv
from tests.helpers.playbooks import assert_no_traceback, check_by_name, raw_artifacts, run

TEST_IP = "198.51.100.77"
TABLE = "marketplace_breach"
KEY = "emk_demo_5"
OTHER_KEY = "emk_demo_6"
DEMO_PASSWORD = "demo-password"


# ---------- helpers ----------

def http(method: str, path: str, port: int, body: dict | None = None, headers: dict | None = None):
    """(status, parsed JSON or text) of a request through nginx.

    Other suites restart the backend of the shared stack; a 502/503/504 from nginx means "no backend right now",
    not an answer, so it is retried for up to a minute.
    """
    data = json.dumps(body).encode() if body is not None else None
    deadline = time.monotonic() + 60
    while True:
        req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=data, method=method,
                                     headers={"Content-Type": "application/json", **(headers or {})})
        try:
            with urllib.request.urlopen(req, timeout=10) as resp:
                status, raw = resp.status, resp.read()
        except urllib.error.HTTPError as err:
            status, raw = err.code, err.read()
        if status not in (502, 503, 504) or time.monotonic() > deadline:
            break
        time.sleep(1)
    try:
        return status, json.loads(raw)
    except ValueError:
        return status, raw.decode(errors="replace")


def login(port: int) -> str:
    status, body = http("POST", "/api/auth/login", port, {"email": "demo@example.com", "password": DEMO_PASSWORD})
    assert status == 200, body
    return body["token"]


def me(port: int, token: str | None = None, api_key: str | None = None) -> tuple[int, object]:
    headers = {"Authorization": f"Bearer {token}"} if token else {"X-API-Key": api_key}
    return http("GET", "/api/me", port, headers=headers)


def nft_blocked() -> list[str]:
    """Elements of the breach table's IPv4 set ([] when the table does not exist)."""
    proc = subprocess.run(["nft", "-j", "list", "set", "inet", TABLE, "blocked_v4"], capture_output=True, text=True)
    if proc.returncode != 0:
        return []
    for obj in json.loads(proc.stdout)["nftables"]:
        if "set" in obj:
            return [e if isinstance(e, str) else "%s/%s" % (e["prefix"]["addr"], e["prefix"]["len"])
                    for e in obj["set"].get("elem", [])]
    return []


def table_exists() -> bool:
    return subprocess.run(["nft", "list", "table", "inet", TABLE], capture_output=True).returncode == 0


def key_revoked(pg_dsn: str, prefix: str) -> bool:
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        row = conn.execute("SELECT revoked_at IS NOT NULL FROM api_keys WHERE key_prefix = %s", (prefix,)).fetchone()
    return row[0]


def secrets_now() -> dict[str, str]:
    env = stackenv.read_env()
    return {k: env[k] for k in ("JWT_SECRET", "POSTGRES_PASSWORD", "REDIS_PASSWORD", "APP_DB_PASSWORD")}


def own_global_ipv4() -> str | None:
    proc = subprocess.run(["ip", "-j", "-4", "addr", "show", "scope", "global"], capture_output=True, text=True)
    for link in json.loads(proc.stdout or "[]"):
        for info in link.get("addr_info", []):
            return info["local"]
    return None


def assert_no_secrets(text: str, secrets: dict[str, str], where: str) -> None:
    for name, value in secrets.items():
        assert value and value not in text, f"{name} leaked into {where}"


# ---------- fixtures ----------

@pytest.fixture()
def breach(stack_env, pg_dsn):
    """Healthy stack before; afterwards no block of TEST_IP, test keys un-revoked, backend healthy."""
    faults.wait_healthy("backend")
    faults.wait_healthy("nginx")
    had_table = table_exists()
    port = int(stack_env["NGINX_HTTP_PORT"])
    yield port
    if not had_table and table_exists():
        subprocess.run(["nft", "delete", "table", "inet", TABLE], check=False)
    elif TEST_IP in nft_blocked():
        subprocess.run(["nft", "delete", "element", "inet", TABLE, "blocked_v4", "{ %s }" % TEST_IP], check=False)
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        conn.execute("UPDATE api_keys SET revoked_at = NULL WHERE key_prefix = ANY(%s)", ([KEY, OTHER_KEY],))
    faults.wait_healthy("backend")


# ---------- tests ----------

UNSAFE = [
    ("0.0.0.0/0", "would block every IPv4 address"),
    ("999.1.1.1", "is not a valid IPv4/IPv6 address"),
    ("127.0.0.1", "is a loopback address"),
    ("::/0", "would block every IPv6 address"),
    ("own-address", "is an address of the target demo"),
]


@pytest.mark.destructive
@pytest.mark.parametrize("entry, reason", UNSAFE, ids=[u[0] for u in UNSAFE])
def test_unsafe_entries_are_refused_before_anything_changes(breach, pg_dsn, entry, reason):
    if entry == "own-address":
        entry = own_global_ipv4()
        if not entry:
            pytest.skip("this machine has no global IPv4 address")
    before = secrets_now()
    # A valid address and an API key ride along: the refusal must stop them too, even with confirm=true.
    result = run("emergency-security-breach",
                 extravars={"confirm": True, "block_ips": [TEST_IP, entry], "revoke_api_keys": [KEY]})
    assert result.rc != 0, result.stdout[-3000:]
    message = f"'{entry}' {reason}"
    assert message in result.stdout, result.stdout[-3000:]
    assert "Nothing was changed" in result.stdout
    rep = result.report
    assert rep["status"] == "critical" and message in rep["summary"]
    inputs = check_by_name(rep, "breach_inputs")
    assert inputs["status"] == "critical"
    assert [r["entry"] for r in inputs["value"]["refused_ips"]] == [entry]
    assert not any(a["changed"] for a in rep["actions"])
    assert [t["step"] for t in rep["timeline"]] == ["validate"]
    # nothing changed: no block, same secret, key still valid
    assert TEST_IP not in nft_blocked()
    assert secrets_now()["JWT_SECRET"] == before["JWT_SECRET"]
    assert not key_revoked(pg_dsn, KEY)
    assert_no_traceback(result)


def test_without_confirm_or_in_check_mode_nothing_changes(breach, pg_dsn):
    port = breach
    before = secrets_now()
    token = login(port)
    evidence_dir = Path(stackenv.ROOT) / "reports" / "emergency-security-breach" / "evidence"
    bundles_before = set(evidence_dir.glob("*")) if evidence_dir.exists() else set()
    inputs = {"block_ips": [TEST_IP], "revoke_api_keys": [KEY]}
    for kwargs, prefix in (({"extravars": inputs}, "not confirmed: would "),
                           ({"extravars": {**inputs, "confirm": True}, "check": True}, "check mode: would ")):
        result = run("emergency-security-breach", **kwargs)
        assert result.rc == 0, result.stdout[-3000:]
        rep = result.report
        assert rep["status"] == "warning"
        assert check_by_name(rep, "breach_containment")["value"] == "dry run"
        actions = {a["name"]: a for a in rep["actions"]}
        assert set(actions) == {"block addresses", "revoke API keys", "collect evidence", "rotate JWT secret",
                                "write incident record"}
        for action in actions.values():
            assert action["changed"] is False and action["detail"].startswith(prefix), action
            assert ("rerun with -e confirm=true" in action["detail"]) is (prefix.startswith("not confirmed"))
        assert f"add {TEST_IP} to the sets of table inet {TABLE}" in actions["block addresses"]["detail"]
        assert "revoke 1 API key(s) (matching emk_demo_5; 0 already revoked)" in actions["revoke API keys"]["detail"]
        assert "write it as JWT_SECRET in" in actions["rotate JWT secret"]["detail"]
        # (--scale keeps the replicas another suite may have started)
        assert re.search(r"up -d --no-deps (--scale backend=\d+ )?backend", actions["rotate JWT secret"]["detail"])
        assert result.changed() == 0
        # nothing changed
        assert TEST_IP not in nft_blocked()
        assert secrets_now()["JWT_SECRET"] == before["JWT_SECRET"]
        assert not key_revoked(pg_dsn, KEY)
        assert me(port, token=token)[0] == 200
        assert_no_secrets(raw_artifacts(result), before, "the artifacts of a dry run")
        assert_no_traceback(result)
    assert (set(evidence_dir.glob("*")) if evidence_dir.exists() else set()) == bundles_before


@pytest.mark.destructive
def test_breach_is_contained(breach, pg_dsn):
    port = breach
    before = secrets_now()
    old_token = login(port)
    assert me(port, token=old_token)[0] == 200
    assert me(port, api_key=KEY)[0] == 200 and me(port, api_key=OTHER_KEY)[0] == 200
    # The attacker's traffic, as the backend sees it through nginx (X-Forwarded-For from loopback is trusted).
    # The failed logins carry secrets as the e-mail: the evidence must redact them.
    attacker = {"X-Forwarded-For": TEST_IP}
    for _ in range(3):
        assert http("GET", "/api/me", port, headers={**attacker, "Authorization": "Bearer forged.token.x"})[0] == 401
    for bait in (before["JWT_SECRET"], before["POSTGRES_PASSWORD"]):
        assert http("POST", "/api/auth/login", port, {"email": bait, "password": "x"}, headers=attacker)[0] == 401

    result = run("emergency-security-breach",
                 extravars={"confirm": True, "block_ips": [TEST_IP], "revoke_api_keys": [KEY]})
    assert result.rc == 0, result.stdout[-4000:]
    rep = result.report
    assert rep["status"] == "ok", rep["summary"]
    for name in ("breach_inputs", "breach_block_ips", "breach_api_keys", "breach_evidence", "breach_jwt_rotation"):
        assert check_by_name(rep, name)["status"] == "ok", check_by_name(rep, name)
    assert [t["step"] for t in rep["timeline"]] == ["validate", "block", "revoke", "evidence", "rotate_jwt", "record"]
    assert all(a["changed"] for a in rep["actions"]), rep["actions"]

    # 1. blocked in nftables
    ruleset = subprocess.run(["nft", "list", "ruleset"], capture_output=True, text=True, check=True).stdout
    assert f"table inet {TABLE}" in ruleset and TEST_IP in ruleset
    assert TEST_IP in nft_blocked()
    assert "ip saddr @blocked_v4 counter packets" in ruleset

    # 2. JWT rotated: old token refused through nginx, a new login works
    after = secrets_now()
    assert after["JWT_SECRET"] != before["JWT_SECRET"] and len(after["JWT_SECRET"]) == 64
    assert oct(os.stat(stackenv.ENV_FILE).st_mode & 0o777) == "0o600"
    status, body = me(port, token=old_token)
    assert status == 401 and body == {"error": "invalid token"}
    new_token = login(port)
    status, body = me(port, token=new_token)
    assert status == 200 and body["user"]["email"] == "demo@example.com"
    rotation = rep["incident"]["jwt_rotation"]
    assert rotation["old_token_before_rotation"] == 200 and rotation["old_token_after_rotation"] == 401
    assert rotation["new_login"] == 200 and rotation["new_token"] == 200

    # 3. the revoked key is refused by the backend, the others still work
    assert key_revoked(pg_dsn, KEY)
    assert me(port, api_key=KEY) == (401, {"error": "api key revoked"})
    assert me(port, api_key=OTHER_KEY)[0] == 200
    assert rep["incident"]["api_keys"]["revoked"] == 1

    # 4./5. evidence bundle: checksums verify, attacker lines present, secrets redacted, incident record
    bundle = rep["incident"]["evidence_bundle"]
    directory = Path(bundle["directory"])
    sums = (directory / "SHA256SUMS").read_text().splitlines()
    assert len(sums) == len(bundle["files"]) - 1 >= 6
    for line in sums:
        digest, name = line.split("  ", 1)
        assert hashlib.sha256((directory / name).read_bytes()).hexdigest() == digest, name
    archive = Path(bundle["archive"])
    assert hashlib.sha256(archive.read_bytes()).hexdigest() == bundle["archive_sha256"]
    assert Path(str(archive) + ".sha256").read_text().split()[0] == bundle["archive_sha256"]
    with tarfile.open(archive) as tar:
        assert f"{directory.name}/incident.md" in tar.getnames()
    attacker_lines = (directory / "logs" / "backend-blocked-addresses.log").read_text()
    assert f"unauthorized: invalid or expired token from {TEST_IP}" in attacker_lines
    auth_lines = (directory / "logs" / "backend-auth-failures.log").read_text()
    # both baits (the old JWT secret, the database password) are there, redacted
    # (count only this test's attacker lines: other tests may have left failed logins from 127.0.0.1)
    baits = [ln for ln in auth_lines.splitlines() if 'failed login for "[REDACTED' in ln and f'" from {TEST_IP}' in ln]
    assert len(baits) == 2, auth_lines
    assert '"GET /api/me HTTP/1.1" 401' in (directory / "logs" / "nginx-auth-failures.log").read_text()
    incident = (directory / "incident.md").read_text()
    assert TEST_IP in incident and "revoked now: 1" in incident and "JWT_SECRET" in incident
    assert "| rotate_jwt |" in incident
    everything = {**before, **{"NEW_JWT_SECRET": after["JWT_SECRET"], "DEMO_PASSWORD": DEMO_PASSWORD}}
    for path in directory.rglob("*"):
        if path.is_file():
            assert_no_secrets(path.read_text(errors="replace"), everything, str(path))
    assert_no_secrets(raw_artifacts(result), everything, "the run's artifacts")
    assert old_token not in raw_artifacts(result)
    assert_no_traceback(result)

    # Idempotent: blocking again adds nothing.
    again = run("emergency-security-breach", tags="security_block_ips",
                extravars={"confirm": True, "block_ips": [TEST_IP]})
    assert again.rc == 0, again.stdout[-3000:]
    block = next(a for a in again.report["actions"] if a["name"] == "block addresses")
    assert block["changed"] is False and "already blocked" in block["detail"]
    assert again.changed() == 0
    assert nft_blocked().count(TEST_IP) == 1
