"""The reference stack, live: fault endpoints on only under the harness, /api/health without internal error
text, and PostgreSQL's first initialisation run for real with no password in any argv it starts."""
from __future__ import annotations

import json
import secrets
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import docker
import pytest

from tests.helpers import faults, settle, stackenv

ROOT = Path(__file__).resolve().parents[2]


def get(url: str, timeout: float = 5.0) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode()


def test_fault_endpoints_are_on_under_the_harness(stack_env):
    """The suite's stack runs with ENABLE_FAULT_ENDPOINTS=1 (the compose default is 0: tests/unit)."""
    assert stack_env["ENABLE_FAULT_ENDPOINTS"] == "1"
    backend = faults.containers("backend", all_states=False)[0]
    assert "ENABLE_FAULT_ENDPOINTS=1" in backend.attrs["Config"]["Env"]
    assert get(settle.base_url(stack_env) + "/api/fault/503")[0] == 503


def _leaky_words(stack_env) -> list[str]:
    """Text of a connection error that must not reach a public answer."""
    return ["ECONNREFUSED", "connect", "not connected", "Error", "timed out", "timeout", "socket",
            stack_env["REDIS_PORT"], stack_env["POSTGRES_PORT"], stack_env["APP_DB_USER"]]


@pytest.mark.destructive
def test_api_health_names_the_failed_dependency_without_its_error_text(stack_env):
    url = settle.base_url(stack_env) + "/api/health"
    since = int(time.time()) - 1
    with faults.service_stopped("redis"):
        deadline = time.monotonic() + 30
        code, body = get(url)
        while code != 503 and time.monotonic() < deadline:
            time.sleep(0.5)
            code, body = get(url)
        assert code == 503, body
        answer = json.loads(body)
        assert answer["checks"]["redis"] == {"status": "down"}
        assert answer["checks"]["database"] == {"status": "ok"}
        assert all(set(check) == {"status"} for check in answer["checks"].values()), answer
        assert [w for w in _leaky_words(stack_env) if w in body] == [], body
    # The detail is in the backend's log, for the operator.
    logs = stackenv.compose("logs", "--no-color", "--since", str(since), "backend").stdout
    assert any("health check failed" in line and "redis" in line and "detail" in line for line in logs.splitlines())
    settle.wait_stack_healthy(stack_env, services=("redis", "backend"))


SHIM = """#!/bin/bash
# Record the argv of every command the entrypoint starts through runuser/setpriv, then run the real one.
printf '%s\\0' "$(basename "$0")" "$@" >> /argvlog/argv
printf '\\n' >> /argvlog/argv
exec "{real}" "$@"
"""


def test_postgres_first_init_puts_no_password_in_any_argv(tmp_path):
    """Run the stack's postgres entrypoint (the checkout's) on an empty data directory in a throwaway container
    (no network), with runuser and setpriv (which start initdb, pg_ctl, psql and the server) recording their
    argv; then log in as the application role with its password, which the init set."""
    shim, log = tmp_path / "shim", tmp_path / "argvlog"
    shim.mkdir()
    log.mkdir()
    for name, real in (("runuser", "/usr/sbin/runuser"), ("setpriv", "/usr/bin/setpriv")):
        (shim / name).write_text(SHIM.format(real=real))
        (shim / name).chmod(0o755)
    su_pw, app_pw = secrets.token_hex(16), secrets.token_hex(16)
    env = stackenv.read_env()
    image = f"{env.get('STACK_IMAGE_PREFIX', 'equipment-marketplace')}/postgres:local"
    name = f"em-init-argv-{secrets.token_hex(4)}"
    client = docker.from_env(timeout=60)
    container = client.containers.create(
        image, name=name, network_mode="none", entrypoint=["bash", "/em/entrypoint.sh"],
        environment={"POSTGRES_PASSWORD": su_pw, "APP_DB_PASSWORD": app_pw, "BIND_ADDRESS": "127.0.0.1",
                     "POSTGRES_PORT": "55999", "SEED_USERS": "20", "SEED_LISTINGS": "20", "SEED_ORDERS": "50",
                     "PATH": "/shim:/usr/lib/postgresql/15/bin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"},
        volumes={str(shim): {"bind": "/shim", "mode": "ro"}, str(log): {"bind": "/argvlog", "mode": "rw"},
                 str(ROOT / "stack" / "postgres"): {"bind": "/em", "mode": "ro"}})
    try:
        container.start()
        deadline = time.monotonic() + 120
        while "cluster ready" not in (out := container.logs().decode(errors="replace")):
            container.reload()
            assert container.status == "running", out[-2000:]
            assert time.monotonic() < deadline, out[-2000:]
            time.sleep(0.5)
        # The application role logs in over TCP with the password given in the environment (PGPASSWORD is
        # handed to docker exec from this process's environment, not on its command line).
        login = None
        while time.monotonic() < deadline:
            login = subprocess.run(
                ["docker", "exec", "-e", "PGPASSWORD", name, "psql", "-X", "-At", "-h", "127.0.0.1", "-p", "55999",
                 "-U", "marketplace", "-d", "equipment_marketplace", "-c", "SELECT current_user, count(*) FROM users"],
                capture_output=True, text=True, env={"PATH": "/usr/bin:/bin", "PGPASSWORD": app_pw}, timeout=30)
            if login.returncode == 0:
                break
            time.sleep(0.5)
        assert login is not None and login.returncode == 0, login.stderr
        assert login.stdout.strip() == "marketplace|20"
    finally:
        container.remove(force=True, v=True)
    commands = [[a.decode() for a in line.split(b"\0") if a]
                for line in (log / "argv").read_bytes().split(b"\0\n") if line.strip()]
    started = {c[c.index("--") + 1] for c in commands if "--" in c}
    assert {"initdb", "pg_ctl", "psql", "postgres"} <= started, commands
    leaks = [c for c in commands if any(pw in arg for arg in c for pw in (su_pw, app_pw))]
    assert leaks == [], "a password was on a command line"
