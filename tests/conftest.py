"""Session-wide fixtures: the reference stack (brought up once, or reused when healthy) and clients."""
from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.helpers import stackenv  # noqa: E402


def _stack_healthy() -> bool:
    if not stackenv.ENV_FILE.exists() or not stackenv.fault_endpoints_on():
        return False  # absent, or brought up without the harness (fault endpoints off): `up` switches them on
    try:
        stackenv.stack("wait", timeout=30)
        return True
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired):
        return False


class LiveEnv(Mapping):
    """The stack's env file, read again whenever it changes (a test may rotate JWT_SECRET)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._stamp = None
        self._data: dict[str, str] = {}

    def _current(self) -> dict[str, str]:
        stat = self.path.stat()
        stamp = (stat.st_mtime_ns, stat.st_size)
        if stamp != self._stamp:
            self._data, self._stamp = stackenv.read_env(self.path), stamp
        return self._data

    def __getitem__(self, key: str) -> str:
        return self._current()[key]

    def __iter__(self):
        return iter(self._current())

    def __len__(self) -> int:
        return len(self._current())


@pytest.fixture(scope="session")
def stack_env() -> Mapping[str, str]:
    """The reference stack's env (ports, secrets); starts the stack when it is not healthy."""
    if os.environ.get("EM_SKIP_STACK_UP") != "1" and not _stack_healthy():
        stackenv.stack("up")
    return LiveEnv(stackenv.ENV_FILE)


@pytest.fixture(scope="session")
def pg_params(stack_env) -> dict:
    """Connection options of the superuser, as the modules take them."""
    return {
        "login_host": stack_env["BIND_ADDRESS"],
        "login_port": int(stack_env["POSTGRES_PORT"]),
        "login_user": stack_env["POSTGRES_SUPERUSER"],
        "login_password": stack_env["POSTGRES_PASSWORD"],
        "login_db": stack_env["POSTGRES_DB"],
    }


@pytest.fixture(scope="session")
def pg_dsn(stack_env) -> str:
    e = stack_env
    return (f"host={e['BIND_ADDRESS']} port={e['POSTGRES_PORT']} dbname={e['POSTGRES_DB']} "
            f"user={e['POSTGRES_SUPERUSER']} password={e['POSTGRES_PASSWORD']} connect_timeout=5")


@pytest.fixture(scope="session")
def app_dsn(stack_env) -> str:
    e = stack_env
    return (f"host={e['BIND_ADDRESS']} port={e['POSTGRES_PORT']} dbname={e['POSTGRES_DB']} "
            f"user={e['APP_DB_USER']} password={e['APP_DB_PASSWORD']} connect_timeout=5")


@pytest.fixture(scope="session")
def redis_params(stack_env) -> dict:
    return {
        "login_host": stack_env["BIND_ADDRESS"],
        "login_port": int(stack_env["REDIS_PORT"]),
        "login_password": stack_env["REDIS_PASSWORD"],
    }


@pytest.fixture()
def redis_client(stack_env):
    import redis

    client = redis.Redis(host=stack_env["BIND_ADDRESS"], port=int(stack_env["REDIS_PORT"]),
                         password=stack_env["REDIS_PASSWORD"], socket_timeout=10, decode_responses=True)
    yield client
    client.close()


@pytest.fixture(scope="session")
def ssh_target():
    """A private sshd on 127.0.0.1; use inventory/demo-ssh with ``envvars=ssh_target.env``."""
    from tests.helpers.sshd import PrivateSshd

    sshd = PrivateSshd().start()
    yield sshd
    sshd.stop()


@pytest.fixture(scope="session")
def local_host():
    import testinfra

    return testinfra.get_host("local://")


@pytest.fixture(scope="session")
def container_host(stack_env):
    """testinfra host of a stack container: container_host('postgres')."""
    import testinfra

    project = stack_env.get("COMPOSE_PROJECT_NAME", "equipment-marketplace")
    return lambda service, index=1: testinfra.get_host(f"docker://{project}-{service}-{index}")


def pytest_configure(config):
    config.addinivalue_line("markers", "late: runs after the other tests, before those marked last (the secret sweep)")


def pytest_collection_modifyitems(config, items):
    """Tests marked `late` (the secret sweep) run after the others; tests marked `last` (they may stop the Docker
    daemon the suite runs on) run after all of them."""
    items.sort(key=lambda item: 2 if item.get_closest_marker("last") else 1 if item.get_closest_marker("late") else 0)


# --- Session-end secret sweep ----------------------------------------------------------------------------------
# Every file that this session's runs left under artifacts/ and reports/ is searched for the stack's secret values
# (the env file's PASSWORD/SECRET/TOKEN/_KEY entries). A value found fails the session (exit status 1) and is
# named by its key and file, never shown. EM_SKIP_SECRET_SWEEP=1 turns it off.
SWEPT_DIRS = ("artifacts", "reports")
SECRET_ENV_KEY = ("PASSWORD", "SECRET", "TOKEN")


def _stack_secrets() -> dict[str, str]:
    try:
        env = stackenv.read_env(stackenv.ENV_FILE)
    except OSError:
        return {}
    return {k: v for k, v in env.items()
            if (any(word in k for word in SECRET_ENV_KEY) or k.endswith("_KEY")) and len(v) >= 6}


def session_secret_findings(since: float, root: Path = ROOT, secrets: dict[str, str] | None = None) -> list[str]:
    """'KEY in FILE (n times)' for each stack secret value in a file under artifacts/ or reports/ changed since."""
    secrets = _stack_secrets() if secrets is None else secrets
    needles = {k: v.encode() for k, v in secrets.items()}
    found = []
    for name in SWEPT_DIRS:
        base = root / name
        if not base.is_dir():
            continue
        for path in base.rglob("*"):
            try:
                if not path.is_file() or path.stat().st_mtime < since:
                    continue
                data = path.read_bytes()
            except OSError:
                continue
            for key, needle in needles.items():
                count = data.count(needle)
                if count:
                    found.append("%s in %s (%d times)" % (key, path.relative_to(root), count))
    return sorted(found)


def pytest_sessionstart(session):
    session.config._em_session_started = time.time() - 1


def pytest_sessionfinish(session, exitstatus):
    if os.environ.get("EM_SKIP_SECRET_SWEEP") == "1":
        return
    since = getattr(session.config, "_em_session_started", None)
    if since is None:
        return
    findings = session_secret_findings(since)
    if findings:
        sys.stderr.write("\nSECRET SWEEP FAILED: stack secret values in this session's artifacts/reports "
                         "(values not shown):\n  " + "\n  ".join(findings[:200]) + "\n")
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
