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


def assert_private(directory: Path, archive: Path | None = None) -> None:
    """Evidence is for the operator only: every directory of the bundle (and the evidence directory) 0700,
    every file 0600, the archive and its .sha256 as well."""
    modes = {str(p): oct(p.stat().st_mode & 0o777) for p in [directory.parent, directory, *directory.rglob("*")]}
    if archive is not None:
        modes.update({str(p): oct(p.stat().st_mode & 0o777) for p in (archive, Path(str(archive) + ".sha256"))})
    wrong = {path: mode for path, mode in modes.items()
             if mode != ("0o700" if Path(path).is_dir() else "0o600")}
    assert not wrong, f"not private (want 0700 directories, 0600 files): {wrong}"


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
        # (through community.docker.docker_compose_v2, described in words; scaling keeps the replicas another suite
        # may have started)
        assert re.search(r"recreate backend \((\d+) replica\(s\)\) in compose project \S+ \(up without its "
                         r"dependencies(, scaled to \1 replicas)?\)", actions["rotate JWT secret"]["detail"])
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
    # issue 10, defect 3: without AWX the operator is the controller's account, and said to be
    assert re.search(r"^- run by: controller user \S+ \(the account that ran ansible-playbook on the controller, "
                     r"not an account of demo\)$", incident, re.M), incident[:800]
    # issue 10, defect 9: the bundle is private: 0700 directories, 0600 files, archive and checksum included
    assert_private(directory, archive)
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


# ---------- issue 10 ----------

CANARY_PGPASSWORD = "pgpass-HSEC-canary-7f3e91"
SSH_CONNECTION = "198.51.100.9 50022 192.0.2.2 22"   # where Ansible's connection to the target comes from


def test_dry_run_reads_ssh_connection_on_the_target_without_the_environment(breach):
    """Defect 2: no `setup` with env facts (PGPASSWORD of the operator in facts, events, the fact cache).

    The target's SSH_CONNECTION is still read (printenv on the target): its source address stays protected.
    """
    # (the driver passes only an allowlist of the operator's environment on: envvars reach the run for sure)
    result = run("emergency-security-breach", extravars={"block_ips": [TEST_IP]},
                 envvars={"PGPASSWORD": CANARY_PGPASSWORD, "SSH_CONNECTION": SSH_CONNECTION})
    assert result.rc == 0, result.stdout[-3000:]
    inputs = check_by_name(result.report, "breach_inputs")
    assert inputs["status"] == "ok" and "198.51.100.9" in inputs["message"], inputs
    events = "\n".join(json.dumps(ev) for ev in result.events)
    assert CANARY_PGPASSWORD not in events and CANARY_PGPASSWORD not in result.stdout
    assert '"ansible_env"' not in events and '"env": {' not in events
    assert CANARY_PGPASSWORD not in json.dumps(result.report)
    assert CANARY_PGPASSWORD not in raw_artifacts(result), "the operator's PGPASSWORD is in the run's artifacts"
    assert TEST_IP not in nft_blocked()
    assert_no_traceback(result)


@pytest.mark.destructive
def test_bad_role_inputs_are_refused_and_nothing_changes(breach, pg_dsn):
    """Every unsafe entry is refused before anything changes, even with confirm=true and a valid address and API key
    riding along; one run for the whole matrix. The role's own variables (security_block_ips,
    security_revoke_api_keys) are used: the playbook's central check of block_ips/revoke_api_keys would otherwise
    stop the run before the role's own (defence in depth) refusals can be seen."""
    before = secrets_now()
    evidence_dir = Path(stackenv.ROOT) / "reports" / "emergency-security-breach" / "evidence"
    bundles_before = set(evidence_dir.glob("*")) if evidence_dir.exists() else set()
    bad_ips = {
        "0.0.0.0/0": "would block every IPv4 address",
        "::/0": "would block every IPv6 address",
        "999.1.1.1": "is not a valid IPv4/IPv6 address",
        "127.0.0.1": "is a loopback address",
        "::ffff:127.0.0.1": "is a loopback address",
        "fe80::1%eth0": "carries a zone id (%eth0)",
        "2001:db8::/16": "is broader than /32",
        "127.0.0.0/8": "is a loopback address",
        "198.51.100.0/24": "contains 198.51.100.9 (the address the Ansible connection to demo comes from)",
        "evil.example.com": "is not a valid IPv4/IPv6 address or CIDR network (hostnames are not accepted)",
        "": "is empty",
    }
    own = own_global_ipv4()
    if own:
        bad_ips[own] = "is an address of the target demo"
    bad_keys = {"a*": "'a*' is too broad", "**": "'**' would select every key"}
    result = run("emergency-security-breach", extravars={
        "confirm": True, "security_block_ips": [TEST_IP, *bad_ips], "security_revoke_api_keys": [KEY, *bad_keys]},
        envvars={"SSH_CONNECTION": SSH_CONNECTION})
    assert result.rc != 0, result.stdout[-3000:]
    assert "Nothing was changed" in result.stdout and "'999.1.1.1' is not a valid IPv4/IPv6 address" in result.stdout
    rep = result.report
    assert rep["status"] == "critical"
    inputs = check_by_name(rep, "breach_inputs")
    assert inputs["status"] == "critical" and inputs["value"]["key_errors"]
    refused = {r["entry"]: r["reason"] for r in inputs["value"]["refused_ips"]}
    assert set(refused) == set(bad_ips), refused
    for entry, reason in bad_ips.items():
        assert reason in refused[entry], (entry, refused[entry])
        assert f"'{entry}' {reason}" in rep["summary"]
    for message in bad_keys.values():
        assert message in rep["summary"]
    assert "Nothing was changed" in rep["summary"]
    assert [t["step"] for t in rep["timeline"]] == ["validate"]
    assert not any(a["changed"] for a in rep["actions"])
    # nothing changed, checked on the real state
    assert not table_exists() or TEST_IP not in nft_blocked()
    assert not key_revoked(pg_dsn, KEY)
    assert secrets_now()["JWT_SECRET"] == before["JWT_SECRET"]
    assert (set(evidence_dir.glob("*")) if evidence_dir.exists() else set()) == bundles_before
    assert_no_traceback(result)


# A second namespace behind this host stands for a container: traffic from TEST_IP to it is FORWARDED, as traffic
# to a Docker-published port is after DNAT (the source address is kept). 198.18.0.0/15 is the benchmark range.
NETNS_ATTACKER, NETNS_CONTAINER = "hsec-attacker", "hsec-container"
HOST_SIDE, CONTAINER_IP = "198.51.100.1", "198.18.7.10"


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, text=True)


def _connects(address: str, port: int) -> bool:
    """Whether TEST_IP (the attacker namespace) completes a TCP connection to address:port within 2 s."""
    code = f"import socket; socket.create_connection(({address!r}, {port}), timeout=2).close()"
    return subprocess.run(["ip", "netns", "exec", NETNS_ATTACKER, "python3", "-c", code],
                          capture_output=True).returncode == 0


@pytest.fixture()
def attacker_net():
    """TEST_IP in its own namespace routed through this host, a listener on the host (input hook) and one in a
    'container' namespace behind the host (forward hook). Everything is removed afterwards."""
    if subprocess.run(["ip", "netns", "add", NETNS_ATTACKER], capture_output=True).returncode != 0:
        pytest.skip("cannot create network namespaces here")
    servers = []
    try:
        _ip("netns", "add", NETNS_CONTAINER)
        for ns, dev, host_ip, ns_ip in ((NETNS_ATTACKER, "hsec-a", HOST_SIDE, TEST_IP),
                                        (NETNS_CONTAINER, "hsec-c", "198.18.7.1", CONTAINER_IP)):
            _ip("link", "add", f"{dev}0", "type", "veth", "peer", "name", f"{dev}1", "netns", ns)
            _ip("addr", "add", f"{host_ip}/24", "dev", f"{dev}0")
            _ip("link", "set", f"{dev}0", "up")
            _ip("-n", ns, "addr", "add", f"{ns_ip}/24", "dev", f"{dev}1")
            _ip("-n", ns, "link", "set", f"{dev}1", "up")
            _ip("-n", ns, "link", "set", "lo", "up")
            _ip("-n", ns, "route", "add", "default", "via", host_ip)
        if Path("/proc/sys/net/ipv4/ip_forward").read_text().strip() != "1":
            pytest.skip("IPv4 forwarding is off on this machine (Docker's published ports need it)")
        listen = ("import socket,sys; s=socket.socket(); s.bind((sys.argv[1], 0)); s.listen(16)\n"
                  "print(s.getsockname()[1], flush=True)\nwhile True: s.accept()[0].close()")
        ports = {}
        for name, prefix in (("host", []), ("container", ["ip", "netns", "exec", NETNS_CONTAINER])):
            address = HOST_SIDE if name == "host" else CONTAINER_IP
            proc = subprocess.Popen([*prefix, "python3", "-c", listen, address], stdout=subprocess.PIPE, text=True)
            servers.append(proc)
            ports[name] = (address, int(proc.stdout.readline()))
        yield ports
    finally:
        for proc in servers:
            proc.kill()
            proc.wait()
        for dev in ("hsec-a0", "hsec-c0"):
            subprocess.run(["ip", "link", "del", dev], capture_output=True)
        for ns in (NETNS_ATTACKER, NETNS_CONTAINER):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)


@pytest.fixture()
def iptables_clean():
    """Remove the iptables rules the iptables test adds (and iptables-nft's tables when it created them)."""
    tables_before = subprocess.run(["nft", "list", "tables"], capture_output=True, text=True).stdout
    yield
    for chain in ("INPUT", "FORWARD", "DOCKER-USER"):
        while subprocess.run(["iptables", "-D", chain, "-s", f"{TEST_IP}/32", "-m", "comment", "--comment", TABLE,
                              "-j", "DROP"], capture_output=True).returncode == 0:
            pass
    for family in ("ip", "ip6"):
        if f"table {family} filter" not in tables_before:
            subprocess.run(["nft", "delete", "table", family, "filter"], capture_output=True)


@pytest.mark.destructive
def test_iptables_block_drops_input_and_forwarded_traffic(breach, attacker_net, iptables_clean):
    """Defect 7 with security_firewall_backend=iptables: INPUT and FORWARD (DOCKER-USER where Docker has it)."""
    host, container = attacker_net["host"], attacker_net["container"]
    assert _connects(*host) and _connects(*container)
    result = run("emergency-security-breach", tags="security_block_ips",
                 extravars={"confirm": True, "block_ips": [TEST_IP], "security_firewall_backend": "iptables"})
    assert result.rc == 0, result.stdout[-3000:]
    check = check_by_name(result.report, "breach_block_ips")
    assert check["status"] == "ok", check
    coverage = check["value"]["coverage"]
    assert coverage["firewall"] == "iptables" and coverage["chains"] == ["INPUT", "FORWARD"]
    assert coverage["docker_published_ports"] is True and "no DOCKER-USER chain" in check["message"]
    assert not _connects(*host) and not _connects(*container)
    assert_no_traceback(result)


@pytest.mark.destructive
def test_nftables_block_drops_input_and_forwarded_traffic(breach, attacker_net):
    """Defect 7: the block must stop traffic forwarded to containers (Docker-published ports), not only traffic
    to the host; the report says which table, chains/hooks and addresses do it."""
    host, container = attacker_net["host"], attacker_net["container"]
    assert _connects(*host) and _connects(*container), "the test network does not pass traffic before the block"
    result = run("emergency-security-breach", tags="security_block_ips",
                 extravars={"confirm": True, "block_ips": [TEST_IP]})
    assert result.rc == 0, result.stdout[-3000:]
    check = check_by_name(result.report, "breach_block_ips")
    assert check["status"] == "ok", check
    coverage = check["value"]["coverage"]
    assert check["value"]["firewall"] == "nftables" and coverage["table"] == f"inet {TABLE}"
    assert coverage["hooks"] == ["forward", "input"] and coverage["docker_published_ports"] is True
    assert TEST_IP in coverage["addresses"]
    assert {c["chain"]: c["drops_from"] for c in coverage["chains"]} == {
        "forward": ["@blocked_v4", "@blocked_v6"], "input": ["@blocked_v4", "@blocked_v6"]}
    assert "traffic forwarded to containers (Docker-published ports included" in check["message"]
    # for real: TEST_IP reaches neither this host nor the 'container' behind it; other sources are untouched
    assert not _connects(*host), "TEST_IP still reaches the host (input hook)"
    assert not _connects(*container), "TEST_IP still reaches the forwarded 'container' (forward hook)"
    ruleset = subprocess.run(["nft", "list", "table", "inet", TABLE], capture_output=True, text=True).stdout
    assert re.search(r"hook forward priority (filter - 10|-10);.*?ip saddr @blocked_v4 counter packets [1-9]", ruleset,
                     re.S), ruleset
    assert_no_traceback(result)


@pytest.fixture()
def two_replicas(breach):
    """Two backend replicas (each on its own port) for the test; one again afterwards."""
    stackenv.compose("up", "-d", "--no-deps", "--scale", "backend=2", "backend")
    faults.wait_healthy("backend")
    yield breach
    stackenv.compose("up", "-d", "--no-deps", "--scale", "backend=1", "backend")
    faults.wait_healthy("backend")


def backend_ports() -> dict[str, int]:
    return {c.name: int(c.exec_run(["cat", "/tmp/backend.port"]).output.decode().strip())
            for c in faults.containers("backend", all_states=False)}


def hs256(claims: dict, secret: str) -> str:
    import base64
    import hmac

    def b64(raw: bytes) -> str:
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()
    head = b64(json.dumps({"alg": "HS256", "typ": "JWT"}, separators=(",", ":")).encode())
    body = b64(json.dumps(claims, separators=(",", ":")).encode())
    return f"{head}.{body}." + b64(hmac.new(secret.encode(), f"{head}.{body}".encode(), hashlib.sha256).digest())


@pytest.mark.destructive
def test_one_secret_for_every_host_and_every_replica_verified(two_replicas, tmp_path):
    """Defect 6: two inventory names of the stack (as two hosts behind one load balancer) get ONE new secret
    (before: one per host, so one host's backends rejected the other's tokens), and every backend replica is
    asked directly, not only whichever one nginx picks. Tokens signed with the secret (no login account) make a
    per-host secret visible. Also: the operator from AWX (defect 3) and a private evidence bundle (defect 9)."""
    inv = tmp_path / "aliases"
    inv.mkdir()
    (inv / "group_vars").symlink_to(Path(stackenv.ROOT) / "inventory" / "demo" / "group_vars")
    hosts = "".join(f"        {name}:\n          ansible_host: 127.0.0.1\n          ansible_connection: local\n"
                    f"          ansible_python_interpreter: \"{{{{ ansible_playbook_python }}}}\"\n"
                    for name in ("demo-a", "demo-b"))
    (inv / "hosts.yml").write_text(f"---\nall:\n  children:\n    marketplace:\n      hosts:\n{hosts}")
    before = secrets_now()
    result = run("emergency-security-breach", inventory=inv,
                 tags="security_rotate_jwt,security_evidence,security_incident_record",
                 extravars={"confirm": True, "marketplace_project_root": str(stackenv.ROOT),
                            "security_verify_login_email": "", "awx_user_name": "alice-awx"})
    assert result.rc == 0, result.stdout[-4000:]
    assert set(result.reports) == {"demo-a", "demo-b"}
    secret = secrets_now()["JWT_SECRET"]
    assert secret != before["JWT_SECRET"]
    ports = backend_ports()
    assert len(ports) == 2 and len(set(ports.values())) == 2, ports
    for host, rep in result.reports.items():
        rotation = check_by_name(rep, "breach_jwt_rotation")
        assert rotation["status"] == "ok", (host, rotation)
        value = rotation["value"]
        assert value["verify_mode"] == "signed_token" and value["replicas"] == 2
        assert value["old_token_after_rotation"] == 401 and value["new_token"] == 200
        judged = sorted((b["container"], b["port"], b["old_token"], b["new_token"], b["status"])
                        for b in value["backends"])
        assert judged == sorted((name, port, 401, 200, "ok") for name, port in ports.items()), value["backends"]
        directory = Path(rep["incident"]["evidence_bundle"]["directory"])
        incident = (directory / "incident.md").read_text()
        assert "- run by: alice-awx (AWX user)\n" in incident
        assert "every backend replica asked directly: each of the 2 backend replica(s)" in incident
        assert_private(directory, Path(rep["incident"]["evidence_bundle"]["archive"]))
        assert_no_secrets(incident, {"JWT_SECRET": secret, "OLD": before["JWT_SECRET"]}, str(directory))
    # independently: each replica accepts a token signed with the secret in the env file and refuses the old one
    now = int(time.time())
    claims = {"sub": "0", "email": "hsec-check", "role": "none", "iat": now, "exp": now + 300}
    for name, port in ports.items():
        new, old = hs256(claims, secret), hs256(claims, before["JWT_SECRET"])
        assert http("GET", "/api/me", port, headers={"Authorization": f"Bearer {new}"})[0] == 200, name
        assert http("GET", "/api/me", port, headers={"Authorization": f"Bearer {old}"})[0] == 401, name
    assert_no_secrets(raw_artifacts(result), {"JWT_SECRET": secret, "OLD": before["JWT_SECRET"]}, "the artifacts")
    assert_no_traceback(result)
