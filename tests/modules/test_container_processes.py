"""container_processes: docker top through the SDK, CPU sampled from /proc, command lines redacted."""
from __future__ import annotations

import time
import uuid

import docker
import pytest

from tests.helpers.modules import assert_return_documented, run_module

STACK_PROJECT = "equipment-marketplace"


@pytest.fixture(scope="module")
def busy_project():
    """A fake compose project: one container spinning a CPU, with a secret on its command line and in its env."""
    client = docker.from_env(timeout=30)
    project = "emtest-procs-" + uuid.uuid4().hex[:8]
    secret = "s3cr3t-" + uuid.uuid4().hex
    container = client.containers.run(
        "debian:bookworm-slim", name=f"{project}-burner-1", detach=True, network_mode="none",
        command=["sh", "-c", f"while :; do :; done # {secret}"], environment=[f"API_TOKEN={secret}"],
        labels={"com.docker.compose.project": project, "com.docker.compose.service": "burner",
                "com.docker.compose.container-number": "1"})
    try:
        time.sleep(1)
        yield project, secret, container.name
    finally:
        container.remove(force=True)
        client.close()


def test_busiest_process_sampled_and_redacted(busy_project):
    project, secret, name = busy_project
    result = run_module("container_processes", {"project": project, "sample_seconds": 1})
    assert result["available"] and not result.get("failed")
    entry = result["containers"][0]
    assert entry["name"] == name and entry["cpu_method"] == "sampled"
    top = entry["processes"][0]
    assert top["cpu_pct"] > 10, top  # one spinning shell: up to one core, less on a loaded host
    assert result["busiest"]["container"] == name and result["busiest"]["pid"] == top["pid"]
    assert secret not in result["_raw"]
    assert "[REDACTED" in top["command"]
    assert_return_documented("container_processes", result)


def test_reference_backend_runs_node(stack_env):
    result = run_module("container_processes", {"project": STACK_PROJECT, "services": ["backend"], "sample_seconds": 0})
    commands = [p["command"] for c in result["containers"] for p in c["processes"]]
    assert any("node" in cmd and "server.js" in cmd for cmd in commands)
    assert all(c["cpu_method"] == "ps_lifetime" for c in result["containers"])


def test_unknown_container_is_reported_not_failed(busy_project):
    project, _, _ = busy_project
    result = run_module("container_processes", {"project": project, "containers": ["no-such-container"]})
    assert result["not_found"] == ["no-such-container"] and result["containers"] == []
    assert result["summary"] == "no running container matched"


def test_daemon_down_is_a_result_not_a_failure():
    result = run_module("container_processes", {"project": STACK_PROJECT, "docker_host": "unix:///nonexistent.sock"})
    assert result["available"] is False and not result.get("failed")
