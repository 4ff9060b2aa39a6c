"""deploy.yml and rollback.yml against the reference stack, through the driver.

A good release (1.0.1) goes out and passes every gate; a deliberately bad one (BROKEN_HEALTH=1, its /api/health
always answers 503) is rolled back automatically and the run fails naming the gate; rollback.yml returns to the
previous recorded version; without confirm (and under --check) nothing changes. The tests recreate the backend,
so they are destructive; a finalizer always leaves the stack on the original BACKEND_VERSION (1.0.0) and healthy.
The deploy history goes to a file of this test module, so the tests neither read nor write the real one.
"""
from __future__ import annotations

import json
import os
import re
import stat
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import docker
import pytest

from tests.helpers import faults, stackenv
from tests.helpers.playbooks import assert_no_traceback, check_by_name, raw_artifacts, run

pytestmark = [pytest.mark.integration, pytest.mark.destructive]

GOOD = "1.0.1"
BAD = "1.0.2-broken"
SECRET_KEYS = ("POSTGRES_PASSWORD", "APP_DB_PASSWORD", "REDIS_PASSWORD", "JWT_SECRET")


# ------------------------------------------------------------------------------------------ helpers


def api_health(stack_env, timeout: float = 90) -> tuple[int, dict]:
    """/api/health through nginx; waits out a short outage (other tests restart the backend meanwhile)."""
    url = f"http://{stack_env['BIND_ADDRESS']}:{stack_env['NGINX_HTTP_PORT']}/api/health"
    deadline = time.monotonic() + timeout
    status, body = 0, {}
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=10) as resp:
                return resp.status, json.loads(resp.read())
        except urllib.error.HTTPError as err:
            status, body = err.code, {"raw": err.read().decode(errors="replace")[:200]}
        except OSError as err:
            status, body = 0, {"error": str(err)}
        time.sleep(1)
    return status, body


def backend_containers() -> list:
    return [c for c in faults.containers("backend") if c.status == "running"]


def app_container_ids() -> dict[str, list[str]]:
    return {svc: sorted(c.id for c in faults.containers(svc)) for svc in ("backend", "nginx")}


def env_version() -> str:
    return stackenv.read_env().get("BACKEND_VERSION", "")


def set_env_version(version: str) -> None:
    """Atomically put BACKEND_VERSION back (the finalizer's fallback; the playbooks do it themselves)."""
    path = stackenv.ENV_FILE
    text = path.read_text()
    text, n = re.subn(r"(?m)^BACKEND_VERSION=.*$", f"BACKEND_VERSION={version}", text)
    if not n:
        text += f"BACKEND_VERSION={version}\n"
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".stack.env.")
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)


def history(path: Path) -> list[dict]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def assert_no_secret(result, stack_env) -> None:
    text = raw_artifacts(result)
    for key in SECRET_KEYS:
        value = stack_env.get(key, "")
        assert len(value) < 8 or value not in text, f"{key} leaked into the run's output"


# ------------------------------------------------------------------------------------------ fixtures


def restore(orig: dict) -> None:
    """The original version selected, its image under its tag, the backend on it, backend and nginx healthy."""
    client = docker.from_env(timeout=60)
    if env_version() != orig["version"]:
        set_env_version(orig["version"])
    try:
        moved = client.images.get(orig["tag"]).id != orig["image_id"]
    except docker.errors.ImageNotFound:
        moved = True
    if moved:
        client.images.get(orig["image_id"]).tag(orig["repo"], orig["version"])
    running = backend_containers()
    if not running or any(c.image.id != orig["image_id"] for c in running):
        stackenv.compose("up", "-d", "backend", timeout=300)
    faults.wait_healthy("backend", timeout=180)
    faults.wait_healthy("nginx", timeout=120)


@pytest.fixture(scope="module")
def original(stack_env):
    """The stack as found (version, backend image id); put back that way, healthy, before each test and at the end."""
    faults.wait_healthy("backend", timeout=180)
    faults.wait_healthy("nginx", timeout=120)
    version = env_version() or "1.0.0"
    prefix = stack_env.get("STACK_IMAGE_PREFIX", "equipment-marketplace")
    client = docker.from_env(timeout=60)
    tag = f"{prefix}/backend:{version}"
    orig = {"version": version, "image_id": client.images.get(tag).id, "tag": tag, "repo": f"{prefix}/backend"}
    yield orig
    restore(orig)
    for extra in (GOOD, BAD):
        if extra != version:
            try:
                client.images.remove(f"{prefix}/backend:{extra}")
            except docker.errors.APIError:
                pass


@pytest.fixture(autouse=True)
def start_from_the_original(original):
    """Each test starts from the original version even when the one before failed halfway."""
    restore(original)


@pytest.fixture(scope="module")
def history_file(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("deploy-history") / "deploy-history.jsonl"


# The gate as the role documents it, polled every second and with a 2 s window of smoke traffic (the default
# 5 s window sends the same 20 requests, only slower): every gate still judges health, image, /api/health and
# the 5xx rate and p95 of real requests.
FAST_GATE = {"deploy_gate_interval": 1, "deploy_gate_metrics_window": 2}


@pytest.fixture()
def base_vars(history_file) -> dict:
    return {"marketplace_deploy_history_file": str(history_file), **FAST_GATE}


# ------------------------------------------------------------------------------------------ tests


def test_without_confirm_or_in_check_mode_nothing_changes(stack_env, original, base_vars, history_file):
    before_ids, before_version = app_container_ids(), env_version()

    result = run("deploy", extravars={**base_vars, "version": GOOD})
    assert result.rc == 0, result.stdout[-3000:]
    action = result.report["actions"][0]
    assert action["changed"] is False and action["detail"].startswith("not confirmed: would deploy")
    assert "rerun with -e confirm=true" in action["detail"] and "rerun with -e confirm=true" in result.stdout
    plan = result.report["deploy"]["plan"]
    assert plan[0].startswith(f"current: BACKEND_VERSION={original['version']}")
    assert plan[1] == f"target: BACKEND_VERSION={GOOD}"
    assert any("pre-deploy backup" in step for step in plan) and any("on a failed gate" in step for step in plan)
    assert result.report["deploy"]["outcome"] == "not_confirmed" and result.report["status"] == "ok"
    assert_no_traceback(result)

    checked = run("deploy", extravars={**base_vars, "version": GOOD, "confirm": True}, check=True)
    assert checked.rc == 0, checked.stdout[-3000:]
    assert checked.report["check_mode"] is True
    assert checked.report["actions"][0]["detail"].startswith("check mode: would deploy")

    rollback = run("rollback", extravars={**base_vars, "version": original["version"]})
    assert rollback.rc == 0 and rollback.report["actions"][0]["detail"].startswith("not confirmed: would rollback")

    assert app_container_ids() == before_ids and env_version() == before_version
    assert not history_file.exists()
    assert_no_secret(result, stack_env)


# First of the confirmed tests: the broken release's /api/health 503s (its health probes, the gate) leave
# Prometheus' 1-minute 5xx window while the tests after it run, instead of delaying the next module's settle().
def test_bad_version_is_rolled_back_automatically_and_the_run_fails(stack_env, original, base_vars, history_file):
    before = len(history(history_file))
    # No pre-deploy backup here: test_good_version_is_deployed_then_rolled_back asserts that step; this test is
    # about the gate and the automatic rollback, which never restores data.
    # A build arg the Dockerfile does not declare (docker ignores it; the build cache is unchanged) whose value is
    # recognisable: build-arg values may be tokens and stay out of stdout, events and the report.
    marker = f"build-arg-{uuid.uuid4().hex}"
    result = run("deploy", extravars={**base_vars, "version": BAD, "confirm": True, "deploy_backup": False,
                                      "deploy_build_args": {"BROKEN_HEALTH": "1", "EM_TEST_TOKEN": marker}})
    assert result.rc != 0 and result.status == "failed"
    assert_no_traceback(result)
    assert marker not in raw_artifacts(result), "a build-arg value is in the run's output, events or report"
    # The names are shown (the plan in the report), the values are not.
    assert any("EM_TEST_TOKEN (values not shown)" in step for step in result.report["deploy"]["plan"])
    report = result.report
    gate = report["deploy"]["failed_gate"]
    assert gate in ("service_health", "api_health"), report["summary"]
    assert check_by_name(report, f"gate:{gate}")["status"] == "critical"
    assert f"FAILED at gate {gate}" in report["summary"] and f"FAILED at gate {gate}" in result.stdout
    assert report["status"] == "critical" and report["deploy"]["outcome"] == "rolled_back"
    assert report["deploy"]["rolled_back"] is True
    for name in ("service_health", "image", "api_health"):
        assert check_by_name(report, f"rollback_gate:{name}")["status"] == "ok"

    # The previous images are back and healthy.
    running = backend_containers()
    assert running and all(c.image.id == original["image_id"] for c in running)
    status, body = api_health(stack_env)
    assert status == 200 and body["version"] == original["version"]
    assert env_version() == original["version"]

    # The history records the failed deploy and the automatic rollback.
    entries = history(history_file)[before:]
    assert [(e["action"], e["status"]) for e in entries] == [("deploy", "started"), ("deploy", "failed"),
                                                             ("rollback", "succeeded")]
    assert entries[1]["gate"] == gate and entries[1]["to_version"] == BAD
    assert entries[2]["trigger"] == "automatic" and entries[2]["to_version"] == original["version"]
    assert entries[2]["images"]["backend"]["image_id"] == original["image_id"]
    assert_no_secret(result, stack_env)


def test_good_version_is_deployed_then_rolled_back(stack_env, original, base_vars, history_file):
    # Deploy 1.0.1: the new image runs, /api/health reports it, every gate passes.
    result = run("deploy", extravars={**base_vars, "version": GOOD, "confirm": True})
    assert result.rc == 0, result.stdout[-4000:]
    assert_no_traceback(result)
    report = result.report
    assert report["status"] == "ok" and report["deploy"]["outcome"] == "succeeded", report["summary"]
    for gate in ("service_health", "image", "api_health", "error_rate_5xx", "latency_p95"):
        assert check_by_name(report, f"gate:{gate}")["status"] == "ok"
    assert any(a["name"] == "pre-deploy backup" and a["changed"] for a in report["actions"])
    # The pre-deploy dump and its companions (backup role, backup_dump) are private: 0600 files in a 0700 directory.
    paths = report["deploy"]["backup_paths"]
    assert paths.get("dump"), report["deploy"]
    for path in paths.values():
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600, (path, oct(os.stat(path).st_mode))
    backup_dir = os.path.dirname(paths["dump"])
    assert stat.S_IMODE(os.stat(backup_dir).st_mode) == 0o700, (backup_dir, oct(os.stat(backup_dir).st_mode))
    image = docker.from_env().images.get(f"{original['repo']}:{GOOD}")
    running = backend_containers()
    assert running and all(c.image.id == image.id for c in running)
    assert all(c.attrs["Config"]["Image"] == f"{original['repo']}:{GOOD}" for c in running)
    status, body = api_health(stack_env)
    assert status == 200 and body["version"] == GOOD
    assert env_version() == GOOD
    entries = history(history_file)
    started, done = entries[-2], entries[-1]
    assert started["action"] == "deploy" and started["status"] == "started" and done["status"] == "succeeded"
    assert started["from_version"] == original["version"] and started["to_version"] == GOOD
    assert started["operator_source"] == "controller"  # no awx_user_name: the controller's user, labelled so
    assert started["images"]["backend"] == {"image": original["tag"], "image_id": original["image_id"]}
    assert done["images"]["backend"]["image_id"] == image.id
    assert_no_secret(result, stack_env)

    # The same deploy again recreates nothing (idempotent). Other tests restart containers meanwhile, so the
    # proof is what compose itself reported (no up -d changed anything), not the container ids.
    again = run("deploy", extravars={**base_vars, "version": GOOD, "confirm": True, "deploy_backup": False})
    assert again.rc == 0, again.stdout[-3000:]
    assert not any(a["name"].startswith("up -d") and a["changed"] for a in again.report["actions"])
    assert not any(a["name"] == "select version" and a["changed"] for a in again.report["actions"])

    # rollback.yml returns to the previous recorded version (the re-deploy above does not count as one). Compose is
    # driven through community.docker.docker_compose_v2 only (the docker-compose v1 CLI path is gone).
    back = run("rollback", extravars={**base_vars, "confirm": True})
    assert back.rc == 0, back.stdout[-4000:]
    assert_no_traceback(back)
    assert back.report["deploy"]["from_version"] == GOOD and back.report["deploy"]["to_version"] == original["version"]
    assert back.report["deploy"]["compose"] == "community.docker.docker_compose_v2"
    assert check_by_name(back.report, "gate:api_health")["status"] == "ok"
    running = backend_containers()
    assert running and all(c.image.id == original["image_id"] for c in running)
    status, body = api_health(stack_env)
    assert status == 200 and body["version"] == original["version"]
    assert env_version() == original["version"]
    last = history(history_file)[-1]
    assert last["action"] == "rollback" and last["status"] == "succeeded" and last["to_version"] == original["version"]


def test_rollback_needs_a_recorded_version_or_a_name(stack_env, original, tmp_path):
    empty = {"marketplace_deploy_history_file": str(tmp_path / "none.jsonl"), **FAST_GATE}
    ids = app_container_ids()
    refused = run("rollback", extravars={**empty, "confirm": True})
    assert refused.rc != 0 and "no previous version recorded" in refused.report["summary"]
    assert "-e version=" in refused.report["summary"]
    assert app_container_ids() == ids and not (tmp_path / "none.jsonl").exists()
    assert_no_traceback(refused)

    # A named version that already runs: gated, nothing recreated (as compose reports it).
    named = run("rollback", extravars={**empty, "confirm": True, "version": original["version"],
                                       "awx_user_name": "awx-operator-7"})
    assert named.rc == 0, named.stdout[-3000:]
    # Under AWX the history names the user who launched the job, not the controller's (the runner's) account.
    assert [(e["operator"], e["operator_source"]) for e in history(tmp_path / "none.jsonl")] == \
        [("awx-operator-7", "awx")] * 2
    assert not any(a["name"].startswith("up -d") and a["changed"] for a in named.report["actions"])
    assert check_by_name(named.report, "gate:service_health")["status"] == "ok"
    assert named.report["deploy"]["to_version"] == original["version"]


def test_a_rollback_target_from_the_history_passes_the_version_check(stack_env, original, tmp_path):
    """A history line is data on the host: its from_version becomes a rollback target only if -e version could."""
    hist = tmp_path / "deploy-history.jsonl"
    hist.write_text(json.dumps({"action": "deploy", "status": "succeeded", "from_version": "1.0;id",
                                "to_version": original["version"], "images": {}}) + "\n")
    before_text, ids, version = hist.read_text(), app_container_ids(), env_version()
    refused = run("rollback", extravars={"marketplace_deploy_history_file": str(hist), "confirm": True, **FAST_GATE})
    assert refused.rc != 0, refused.stdout[-3000:]
    summary = refused.report["summary"]
    assert "the rollback target from the deploy history '1.0;id' is not a valid image tag" in summary, summary
    assert refused.report["deploy"]["outcome"] == "plan_error"
    # Nothing changed: no history line, no lock, the same containers and version.
    assert hist.read_text() == before_text
    assert app_container_ids() == ids and env_version() == version
    assert not (stackenv.STATE_DIR / "deploy.lock").exists()
    assert_no_traceback(refused)


# The role's own check (defence in depth behind the playbooks' validate_inputs, which checks `version`):
# deploy_version is set directly, so only the role stands between these values and docker build / the env file.
BAD_VERSIONS = ["1.0;id", "$(id)", "-x", "../x", "v" * 129]


def test_bad_versions_are_refused_by_the_role_and_nothing_is_built(stack_env, original, tmp_path):
    client = docker.from_env(timeout=60)
    images_before = sorted(i.id for i in client.images.list(name=original["repo"]))
    ids, version = app_container_ids(), env_version()
    hist = tmp_path / "history.jsonl"
    for bad in BAD_VERSIONS:
        result = run("deploy", extravars={"marketplace_deploy_history_file": str(hist), "deploy_version": bad,
                                          "confirm": True, **FAST_GATE})
        assert result.rc != 0, (bad, result.stdout[-2000:])
        summary = result.report["summary"]
        assert "is not a valid image tag" in summary and "nothing was changed" in summary, (bad, summary)
        assert result.report["deploy"]["outcome"] == "plan_error"
        assert_no_traceback(result)
    # Nothing built, switched or recreated; no history written.
    assert sorted(i.id for i in client.images.list(name=original["repo"])) == images_before
    running = backend_containers()
    assert running and all(c.image.id == original["image_id"] for c in running)
    assert app_container_ids() == ids and env_version() == version
    assert not hist.exists()
