"""Cause faults in the reference stack for real: stop/start/kill services, run SQL as the app user."""
from __future__ import annotations

import contextlib
import time

import docker

from devtools.stackenv import PROJECT, containers  # noqa: F401 - faults.containers/PROJECT for the tests
from tests.helpers import stackenv


def stop_service(service: str) -> None:
    stackenv.compose("stop", "-t", "5", service)


def start_service(service: str, wait: bool = True) -> None:
    stackenv.compose("start", service)
    if wait:
        wait_healthy(service)


def kill_service(service: str, signal: str = "SIGKILL") -> None:
    stackenv.compose("kill", "-s", signal, service)


def restart_service(service: str, wait: bool = True) -> None:
    stackenv.compose("restart", "-t", "10", service)
    if wait:
        wait_healthy(service)


def wait_healthy(service: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        cs = containers(service)
        if cs and all((c.attrs.get("State", {}).get("Health") or {}).get("Status") == "healthy"
                      for c in (docker.from_env().containers.get(c.id) for c in cs)):
            return
        time.sleep(1)
    raise AssertionError(f"service {service} not healthy after {timeout}s")


@contextlib.contextmanager
def service_stopped(service: str):
    """Stop a service for the duration of the block; start it again (and wait for health) after."""
    stop_service(service)
    try:
        yield
    finally:
        start_service(service)


def run_sql_as_app(sql: str, params=None, stack_env: dict | None = None):
    """Run one statement as the application role; returns fetched rows (or None)."""
    import psycopg

    e = stack_env or stackenv.read_env()
    with psycopg.connect(host=e["BIND_ADDRESS"], port=int(e["POSTGRES_PORT"]), dbname=e["POSTGRES_DB"],
                         user=e["APP_DB_USER"], password=e["APP_DB_PASSWORD"], connect_timeout=5,
                         autocommit=True) as conn:
        cur = conn.execute(sql, params)
        return cur.fetchall() if cur.description else None
