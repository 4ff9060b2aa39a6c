"""Where the reference stack lives and how to reach it: read from stack/.env (the one env file)."""
from __future__ import annotations

import os
import subprocess
from pathlib import Path

import docker

ROOT = Path(__file__).resolve().parents[1]
STACK_DIR = ROOT / "stack"
STATE_DIR = Path(os.environ.get("EM_STATE_DIR", "/var/lib/equipment-marketplace"))
ENV_FILE = STATE_DIR / "stack.env"
COMPOSE_FILE = STACK_DIR / "docker-compose.production.yml"
STACK_SH = STACK_DIR / "bin" / "stack.sh"
PROJECT = "equipment-marketplace"


def read_env(path: Path = ENV_FILE) -> dict[str, str]:
    env: dict[str, str] = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.partition("=")
        env[key.strip()] = value.strip()
    return env


def compose(*args: str, check: bool = True, timeout: int = 180, capture: bool = True) -> subprocess.CompletedProcess:
    """Run `docker compose` against the reference stack."""
    cmd = ["docker", "compose", "--project-directory", str(STACK_DIR), "-f", str(COMPOSE_FILE),
           "--env-file", str(ENV_FILE), *args]
    return subprocess.run(cmd, check=check, timeout=timeout, capture_output=capture, text=True)


# The harness runs the stack with the backend's fault endpoints (/api/fault/<status>) on: `stack.sh up` and
# `reset` write ENABLE_FAULT_ENDPOINTS=1 into the env file only when this is set (the default is off).
HARNESS_ENV = {"EM_STACK_FAULT_ENDPOINTS": "1"}


def stack(*args: str, timeout: int = 900) -> subprocess.CompletedProcess:
    """Run stack/bin/stack.sh (up, wait, reset, ...) in harness mode (fault endpoints on)."""
    return subprocess.run(["bash", str(STACK_SH), *args], check=True, timeout=timeout,
                          capture_output=True, text=True, env={**os.environ, **HARNESS_ENV})


def fault_endpoints_on(path: Path = ENV_FILE) -> bool:
    """Whether the stack was last brought up by the harness (ENABLE_FAULT_ENDPOINTS=1 in the env file)."""
    return path.exists() and read_env(path).get("ENABLE_FAULT_ENDPOINTS") == "1"


def containers(service: str, all_states: bool = True):
    """The containers of a service of the reference stack (running ones only with all_states=False)."""
    client = docker.from_env(timeout=30)
    return client.containers.list(all=all_states, filters={
        "label": [f"com.docker.compose.project={PROJECT}", f"com.docker.compose.service={service}"]})
