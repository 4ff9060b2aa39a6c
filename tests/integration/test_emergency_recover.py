"""emergency-recover: services down, and the Docker daemon itself down (runs last)."""
from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import docker
import pytest

from tests.helpers import faults
from tests.helpers.playbooks import assert_no_traceback, check_by_name, run
from tests.helpers.sshd import PrivateSshd

ROOT = Path(__file__).resolve().parents[2]


def container_ids() -> dict[str, str]:
    client = docker.from_env()
    cs = client.containers.list(all=True, filters={"label": "com.docker.compose.project=equipment-marketplace"})
    return {c.name: c.id for c in cs}


def test_without_confirm_it_describes_and_changes_nothing(stack_env):
    faults.wait_healthy("nginx")
    faults.stop_service("prometheus")
    try:
        before = container_ids()
        result = run("emergency-recover")
        # The system is still down (nothing was done), so the run fails after describing the plan.
        assert result.rc != 0, result.stdout[-2000:]
        assert "not confirmed: would run docker compose" in result.stdout
        action = result.report["actions"][0]
        assert action["changed"] is False
        assert "not confirmed: would run docker compose" in action["detail"] and "prometheus" in action["detail"]
        assert "rerun with -e confirm=true" in action["detail"]
        # prometheus is still stopped; nothing was recreated
        assert faults.containers("prometheus")[0].status == "exited"
        assert container_ids() == before
        services = check_by_name(result.report, "compose_services")
        assert services["status"] == "critical" and "prometheus" in services["message"]
        # No systemd on this host: the demo inventory's marketplace_dockerd_command would start the daemon.
        assert result.report["state"]["daemon_start"]["method"] == "command"
        assert_no_traceback(result)
    finally:
        faults.start_service("prometheus")


# sshd (the target) in a mount namespace of its own: there systemd "runs the host" (/run/systemd/system exists)
# and the Docker socket is not a socket (the daemon does not answer); the controller, in the original namespace,
# has neither. A check made on the controller would choose the demo's dockerd command line.
SYSTEMD_TARGET = [
    "unshare", "--mount", "--propagation", "private", "sh", "-ec",
    "mount -t tmpfs tmpfs /run/systemd; mkdir /run/systemd/system; mount --bind /dev/null /run/docker.sock;"
    ' exec "$0" "$@"',
]


@pytest.fixture()
def systemd_target():
    if os.path.isdir("/run/systemd/system"):
        pytest.skip("systemd runs this controller: the target's answer would not differ from the controller's")
    sshd = PrivateSshd(prefix=SYSTEMD_TARGET).start()
    yield sshd
    sshd.stop()


def test_the_daemon_start_method_is_decided_on_the_target(stack_env, systemd_target):
    before = container_ids()
    result = run("emergency-recover", inventory=ROOT / "inventory" / "demo-ssh", envvars=systemd_target.env)
    assert result.rc != 0, result.stdout[-2000:]  # the daemon is down as the target sees it, nothing was done
    state = result.report["state"]
    assert state["before"]["daemon_up"] is False
    detail = result.report["actions"][0]["detail"]
    assert "would start the Docker daemon (systemd)" in detail and "dockerd" not in detail, detail
    assert state["daemon_start"]["method"] == "systemd", state["daemon_start"]
    assert "/run/systemd/system exists there" in state["daemon_start"]["reason"]
    assert result.report["actions"][0]["changed"] is False
    # Nothing changed on the real stack (the controller's daemon kept running every container).
    assert container_ids() == before
    assert_no_traceback(result)


# The role's waits polled every second (defaults 2 s for the daemon, 3 s for the services' health); the timeouts
# they judge (recover_docker_timeout, recover_health_timeout) stay the role's.
FAST_POLLS = {"recover_docker_interval": 1, "recover_health_interval": 1}


@pytest.mark.destructive
def test_stopped_services_are_brought_back(stack_env):
    faults.wait_healthy("nginx")
    faults.stop_service("nginx")
    faults.stop_service("prometheus")
    try:
        result = run("emergency-recover", extravars={"confirm": True, **FAST_POLLS})
        assert result.rc == 0, result.stdout[-3000:]
        rep = result.report
        services = check_by_name(rep, "compose_services")
        assert services["status"] == "ok"
        assert set(services["value"]["came_back"]) == {"nginx", "prometheus"}
        assert check_by_name(rep, "api_health")["status"] == "ok"
        assert [t["step"] for t in rep["timeline"]][:2] == ["assess (before)", "compose up -d"]
        assert any(a["name"] == "compose up -d" and a["changed"] for a in rep["actions"])
        assert_no_traceback(result)
    finally:
        for svc in ("nginx", "prometheus"):
            if faults.containers(svc)[0].status != "running":
                faults.start_service(svc)
    faults.wait_healthy("nginx")


def _dockerd_pids() -> list[int]:
    out = subprocess.run(["pidof", "dockerd"], capture_output=True, text=True).stdout.split()
    return [int(p) for p in out]


@pytest.mark.destructive
@pytest.mark.last
@pytest.mark.skipif(os.environ.get("EM_TEST_STOP_DOCKERD", "1") == "0", reason="EM_TEST_STOP_DOCKERD=0")
def test_docker_daemon_down_is_recovered(stack_env):
    """Stops the Docker daemon the suite runs on, then lets the playbook bring everything back."""
    faults.wait_healthy("backend")
    pids = _dockerd_pids()
    assert pids, "no dockerd running"
    for pid in pids:
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 60
    while _dockerd_pids() and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not _dockerd_pids(), "dockerd did not stop"
    try:
        result = run("emergency-recover", extravars={"confirm": True, **FAST_POLLS})
        assert result.rc == 0, result.stdout[-4000:]
        rep = result.report
        daemon = check_by_name(rep, "docker_daemon")
        assert daemon["status"] == "ok" and daemon["value"] == {"before": False, "after": True}
        assert "was down and was started" in daemon["message"]
        assert check_by_name(rep, "compose_services")["status"] == "ok"
        assert check_by_name(rep, "api_health")["status"] == "ok"
        assert any(a["name"] == "start Docker daemon" and a["changed"] for a in rep["actions"])
        assert_no_traceback(result)
    finally:
        if not _dockerd_pids():  # the playbook failed: bring the engine back for whatever runs next
            subprocess.run(["bash", "scripts/ensure-docker.sh"], check=False)
    for svc in ("postgres", "redis", "backend", "nginx", "prometheus"):
        faults.wait_healthy(svc, timeout=180)
