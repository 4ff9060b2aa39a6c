"""container_env_check: names and lengths of required variables, never their values.

Reads the real backend (read-only) and throwaway containers of a fake compose project (created, never
started, from debian:bookworm-slim with no network) whose environment lacks or empties the variables.
"""
from __future__ import annotations

import uuid

import docker
import pytest

from tests.helpers.modules import assert_return_documented, run_module

STACK_PROJECT = "equipment-marketplace"


@pytest.fixture(scope="module")
def fake_project():
    client = docker.from_env(timeout=30)
    project = "emtest-envcheck-" + uuid.uuid4().hex[:8]
    secrets = {"DATABASE_URL": "postgresql://app:pw-" + uuid.uuid4().hex + "@127.0.0.1:5432/db",
               "SOME_TOKEN": "tok-" + uuid.uuid4().hex}
    made = []
    try:
        envs = ((1, [f"DATABASE_URL={secrets['DATABASE_URL']}", "JWT_SECRET=", f"SOME_TOKEN={secrets['SOME_TOKEN']}"]),
                (2, [f"DATABASE_URL={secrets['DATABASE_URL']}", "JWT_SECRET=x", "REDIS_URL=redis://r"]))
        for n, env in envs:
            made.append(client.containers.create(
                "debian:bookworm-slim", command=["true"], name=f"{project}-api-{n}", environment=env,
                network_mode="none", labels={"com.docker.compose.project": project,
                                             "com.docker.compose.service": "api",
                                             "com.docker.compose.container-number": str(n)}))
        yield project, secrets
    finally:
        for c in made:
            c.remove(force=True)
        client.close()


def test_reference_backend_has_everything_and_no_value_leaks(stack_env):
    result = run_module("container_env_check", {"project": STACK_PROJECT, "services": ["backend"]})
    assert result["available"] and not result.get("failed")
    assert result["missing"] == [] and result["empty"] == [] and result["status"] == "ok"
    backend = result["containers"][0]
    for name in ("DATABASE_URL", "REDIS_URL", "JWT_SECRET"):
        assert backend["variables"][name]["state"] == "set" and backend["variables"][name]["length"] > 0
    for key in ("JWT_SECRET", "APP_DB_PASSWORD", "REDIS_PASSWORD"):
        assert stack_env[key] not in result["_raw"]
    assert_return_documented("container_env_check", result)


def test_unset_and_empty_are_told_apart_per_container(fake_project):
    project, secrets = fake_project
    result = run_module("container_env_check",
                        {"project": project, "variables": ["DATABASE_URL", "REDIS_URL", "JWT_SECRET", "SOME_TOKEN"]})
    assert result["services"]["api"]["status"] == "critical"
    by_name = {c["name"]: c for c in result["containers"]}
    first, second = by_name[f"{project}-api-1"], by_name[f"{project}-api-2"]
    assert first["variables"]["JWT_SECRET"] == {"state": "empty", "length": 0}
    assert first["variables"]["REDIS_URL"] == {"state": "unset", "length": None}
    assert second["variables"]["JWT_SECRET"] == {"state": "set", "length": 1}
    assert second["missing"] == ["SOME_TOKEN"]
    assert result["missing"] == ["REDIS_URL", "SOME_TOKEN"] and result["empty"] == ["JWT_SECRET"]
    checks = {c["name"]: c for c in result["checks"]}
    assert checks["env:api:JWT_SECRET"]["status"] == "critical" and "empty" in checks["env:api:JWT_SECRET"]["value"]
    assert checks["env:api:DATABASE_URL"]["status"] == "ok"
    assert "JWT_SECRET empty" in result["summary"] and "REDIS_URL unset" in result["summary"]
    for value in secrets.values():
        assert value not in result["_raw"]
    assert_return_documented("container_env_check", result)


def test_listed_service_without_container_is_critical(fake_project):
    project, _ = fake_project
    result = run_module("container_env_check", {"project": project, "services": ["api", "worker"]})
    assert result["services"]["worker"] == {"containers": [], "missing": [], "empty": [], "status": "critical"}
    assert any(c["name"] == "env:worker" and c["status"] == "critical" for c in result["checks"])


def test_check_mode_reads_the_same(fake_project):
    project, _ = fake_project
    result = run_module("container_env_check", {"project": project}, check_mode=True)
    assert result["changed"] is False and result["empty"] == ["JWT_SECRET"]


def test_daemon_down_is_a_result_not_a_failure():
    result = run_module("container_env_check", {"project": STACK_PROJECT, "docker_host": "unix:///nonexistent.sock"})
    assert result["available"] is False and not result.get("failed")
    assert "nonexistent.sock" in result["reason"] and result["status"] == "unknown"


def test_bad_variable_names_fail_before_contacting_docker():
    result = run_module("container_env_check", {"project": STACK_PROJECT, "variables": ["A=B"],
                                                "docker_host": "unix:///nonexistent.sock"})
    assert result["failed"] and "invalid variable names" in result["msg"]
