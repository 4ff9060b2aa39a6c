"""The secret sweep (issue 10, defect 2): no secret value in anything a run leaves behind.

A recognisable secret goes into every documented environment fallback of a no_log module option (found in
module_utils/ and library/: PGPASSWORD, REDIS_PASSWORD, AWS_*...), set in the operator's environment as the issue's
reproduction does, and into every inventory secret that the demo inventory does not read from the stack
(S3 keys, the smoke user's password: a sweep inventory next to the demo one overrides them); the stack's own random
secrets (PostgreSQL, app role, Redis, JWT) are the values the inventory already carries. Then every playbook of
playbooks/ runs twice through the product's driver: once with bad input (refused by the input check, or failing in a
module that was handed the passwords), once normally without confirm (describes, changes nothing; --check for the
heavy ones). Every byte they leave is searched for every secret value: the runs' whole artifact directories
(stdout, job_events, command, env/, fact_cache), and the report directory of the sweep, which also receives the
fetched logs and the evidence bundles. The expected count is 0.

Runs late (marker `late`): it runs ~50 playbooks, a few at a time.
"""
from __future__ import annotations

import ast
import concurrent.futures
import gzip
import os
import re
import shutil
import time
import uuid
from pathlib import Path

import pytest

from tests.helpers.playbooks import run
from tests.helpers.settle import wait_stack_healthy

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "inventory" / "demo"
TAG = uuid.uuid4().hex[:12]
WORKERS = 4

# Stack env keys whose values are secrets (POSTGRES_PASSWORD, APP_DB_PASSWORD, REDIS_PASSWORD, JWT_SECRET, ...).
SECRET_ENV_KEY = re.compile(r"PASSWORD|SECRET|TOKEN|_KEY$")
# Inventory variables that hold secrets.
SECRET_VAR = re.compile(r"password|secret|token|_key$")

# playbook -> bad extra vars. Public inputs are refused by the validation pre-task; the playbooks without public
# inputs get an impossible port or timeout that a module refuses after it was handed the passwords.
BAD = {
    "health-check": {"health_background_timeout": 0},
    "view-logs": {"since": "99999999999"},
    "db-status": {"marketplace_db_port": 0},
    "db-backup": {"confirm": "maybe"},
    "db-restore": {"backup": "../../etc/passwd"},
    "emergency-restore": {"restore_into": "postgres"},
    "backup-verify": {"backup": "../../etc/passwd"},
    "cache-status": {"marketplace_redis_port": 0},
    "cache-clear": {"pattern": "*"},
    "cache-flush": {"scope": "ALL"},
    "deploy": {"version": "1.0;id"},
    "rollback": {"version": "$(id)"},
    "incident-p0": {"services": "no-such-service"},
    "incident-p1": {"scale_backend": 0},
    "troubleshoot-db-connections": {"terminate": "bogus"},
    "troubleshoot-startup": {"marketplace_db_port": 0},
    "troubleshoot-memory": {"marketplace_redis_port": 0, "troubleshoot_sample_seconds": -1},
    "troubleshoot-cpu": {"marketplace_db_port": 0, "troubleshoot_sample_seconds": -1},
    "ssl-renew": {"confirm": "maybe"},
    # ssl-check takes no public input (an unknown extra var such as confirm is not its business): a contract value
    # of the wrong type, refused by the contract role's argument spec.
    "ssl-check": {"marketplace_tls_port": "none"},
    "emergency-security-breach": {"block_ips": "::ffff:127.0.0.1"},
}
DEFAULT_BAD = {"confirm": "maybe", "marketplace_db_port": 0, "marketplace_redis_port": 0}
# playbook -> extra vars of the normal run (no confirm: describe only).
NORMAL = {
    "emergency-security-breach": {"block_ips": "203.0.113.9", "revoke_api_keys": "all"},  # the example
    "view-logs": {"since": "10m", "tail": 50},
    "cache-clear": {"pattern": "cache:secret-sweep:*"},
}
# Normal runs that would do heavy work even unconfirmed: --check (describes, changes nothing).
CHECK = {"backup-verify"}


def env_fallback_secrets() -> dict[str, str]:
    """NAME -> recognisable value for every env fallback of a no_log option in module_utils/ and library/."""
    names = set()
    for path in sorted((ROOT / "module_utils").glob("*.py")) + sorted((ROOT / "library").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if not (isinstance(node, ast.Call) and getattr(node.func, "id", None) == "dict"):
                continue
            kw = {k.arg: k.value for k in node.keywords}
            if not (isinstance(kw.get("no_log"), ast.Constant) and kw["no_log"].value is True):
                continue
            fallback = kw.get("fallback")
            if isinstance(fallback, ast.Tuple) and len(fallback.elts) == 2 and isinstance(fallback.elts[1], ast.List):
                names.update(e.value for e in fallback.elts[1].elts if isinstance(e, ast.Constant))
    return {name: "Sweep-%s-%s" % (name, TAG) for name in sorted(names)}


def inventory_secret_overrides() -> dict[str, str]:
    """Inventory secrets that the demo inventory does not take from the stack env -> recognisable values."""
    out = {}
    for path in sorted((DEMO / "group_vars").rglob("*.yml")):
        for line in path.read_text().splitlines():
            match = re.match(r"^([a-z0-9_]+):\s*(.*)$", line)
            if match and SECRET_VAR.search(match.group(1)) and "lookup(" not in match.group(2):
                out[match.group(1)] = "Sweep-%s-%s" % (match.group(1), TAG)
    return out


def find_secrets(secrets: dict[str, str], paths) -> list[str]:
    """'NAME in FILE (n times)' for every secret value found in the files under paths (values never shown)."""
    found = []
    for base in paths:
        base = Path(base)
        files = [base] if base.is_file() else sorted(p for p in base.rglob("*") if p.is_file())
        for f in files:
            try:
                data = f.read_bytes()
                if f.name.endswith((".gz", ".tgz")):  # the evidence archive: search its content, not its deflate
                    data += gzip.decompress(data)
            except (OSError, EOFError):
                continue
            for name, value in secrets.items():
                count = data.count(value.encode())
                if count:
                    found.append("%s in %s (%d times)" % (name, f, count))
    return found


@pytest.fixture()
def sweep_inventory(tmp_path):
    """inventory/.sweep-<tag>: the demo inventory (same hosts, same group_vars) plus overrides of its secrets and
    a report directory of the sweep's own. Two levels under the project root, as the demo inventory is (its
    marketplace_project_root is inventory_dir/../..)."""
    inv = ROOT / "inventory" / (".sweep-" + TAG)
    (inv / "group_vars" / "all").mkdir(parents=True)
    try:
        shutil.copy(DEMO / "hosts.yml", inv / "hosts.yml")
        for path in (DEMO / "group_vars" / "all").iterdir():
            shutil.copy(path, inv / "group_vars" / "all" / path.name)
        overrides = inventory_secret_overrides()
        reports = tmp_path / "reports"
        lines = ["---", "marketplace_report_dir: %s" % reports]
        lines += ["%s: %s" % (k, v) for k, v in overrides.items()]
        (inv / "group_vars" / "all" / "zz_sweep.yml").write_text("\n".join(lines) + "\n")
        yield inv, overrides, reports
    finally:
        shutil.rmtree(inv, ignore_errors=True)


@pytest.mark.late
def test_no_secret_in_any_artifact_of_any_playbook(stack_env, sweep_inventory, monkeypatch):
    inv, inventory_secrets, reports = sweep_inventory
    env_secrets = env_fallback_secrets()
    assert {"PGPASSWORD", "REDIS_PASSWORD", "AWS_SECRET_ACCESS_KEY"} <= set(env_secrets), env_secrets
    for name, value in env_secrets.items():
        monkeypatch.setenv(name, value)  # the operator's environment, as in the issue
    secrets = {"env " + k: v for k, v in env_secrets.items()}
    secrets.update({"inventory " + k: v for k, v in inventory_secrets.items()})
    secrets.update({"stack " + k: v for k, v in stack_env.items() if SECRET_ENV_KEY.search(k) and len(v) >= 6})
    assert any(k.startswith("stack POSTGRES_PASSWORD") for k in secrets)

    playbooks = sorted(p.stem for p in (ROOT / "playbooks").glob("*.yml"))
    if os.environ.get("EM_SWEEP_PLAYBOOKS"):  # a quicker look at a few (e.g. EM_SWEEP_PLAYBOOKS=health-check)
        playbooks = [pb for pb in playbooks if pb in os.environ["EM_SWEEP_PLAYBOOKS"].split(",")]
    version = stack_env["BACKEND_VERSION"]
    normal = dict(NORMAL, deploy={"version": version}, rollback={"version": version})
    jobs = []
    for pb in playbooks:
        jobs.append((pb, "bad", dict(BAD.get(pb, DEFAULT_BAD)), False, None))
        jobs.append((pb, "normal", dict(normal.get(pb, {})), pb in CHECK, None))
    if "emergency-security-breach" in playbooks:
        # The evidence bundle is written only when confirmed: confirmed, but only the evidence step (--tags), so
        # nothing is blocked, revoked or rotated; the bundle lands in the sweep's report dir.
        jobs.append(("emergency-security-breach", "evidence", {"confirm": True, "block_ips": "203.0.113.9"}, False,
                     "security_evidence"))
    wait_stack_healthy(stack_env)
    started = time.monotonic()

    def one(job):
        pb, _kind, extravars, check, tags = job
        return job, run(pb, inventory=str(inv), extravars=extravars, check=check, tags=tags, timeout=600)

    with concurrent.futures.ThreadPoolExecutor(max_workers=WORKERS) as pool:
        results = list(pool.map(one, jobs))
    elapsed = time.monotonic() - started

    problems, summary = [], []
    for (pb, kind, extravars, check, _tags), result in results:
        summary.append("%-28s %-6s%s rc=%d %s %.1fs" % (pb, kind, " --check" if check else "", result.rc,
                                                       result.status, result.duration_s))
        if not result.events:
            problems.append("%s %s: did not run (rc %d)" % (pb, kind, result.rc))
        if kind == "bad" and result.rc == 0:
            problems.append("%s bad: the bad input %s was accepted (rc 0)" % (pb, sorted(extravars)))
        problems += ["%s %s: %s" % (pb, kind, hit) for hit in find_secrets(secrets, [result.artifact_dir])]
    problems += ["reports: %s" % hit for hit in find_secrets(secrets, [reports])]
    # The sweep's report directory did receive what it is meant to check: a report of every normal run that
    # succeeded, the breach playbook's evidence bundle and view-logs' fetched logs when those ran.
    written = sorted(str(p.relative_to(reports)) for p in reports.rglob("*") if p.is_dir()) if reports.is_dir() else []
    print("sweep report dir: %d files in %s" % (sum(1 for p in reports.rglob("*") if p.is_file()) if written else 0,
                                                ", ".join(written)))
    for (pb, kind, _extravars, _check, _tags), result in results:
        if kind == "normal" and result.rc == 0 and not (reports / pb).is_dir():
            problems.append("%s normal: no report under the sweep's report dir (not checked)" % pb)
    if "emergency-security-breach" in playbooks and not list(reports.glob("emergency-security-breach/evidence/*")):
        problems.append("emergency-security-breach evidence: no evidence bundle written (not checked)")
    print("\n".join(summary))
    print("secret sweep: %d runs of %d playbooks in %.0f s, %d secret values, %d findings"
          % (len(results), len(playbooks), elapsed, len(secrets), len(problems)))
    assert not problems, "secret values found (names only):\n" + "\n".join(problems)
    wait_stack_healthy(stack_env)
