"""compose_status against the real reference stack and a throwaway compose project of our own.

The throwaway project (debian:bookworm-slim, network_mode host, no bridge network) has a healthy
`sleeper`, a `crasher` in a restart loop (exit 3, restart: always), a `sick` service whose healthcheck
fails, a `burner` limited to half a CPU and 64 MiB that spins and an `idler` without healthcheck (only during
their tests; a profile keeps them out of the expected services). Stopping and removing services happens
only there: the reference stack is only read.
"""
from __future__ import annotations

import subprocess
import time
import uuid

import docker
import pytest

from tests.helpers.modules import assert_return_documented, load_utils, run_module

DAEMON_METHODS = ("daemon_precpu", "second_read")

STACK_PROJECT = "equipment-marketplace"
STACK_SERVICES = {"postgres", "redis", "backend", "nginx", "prometheus"}

COMPOSE_FILE = """
x-common: &common
  image: debian:bookworm-slim
  network_mode: host
  pull_policy: never
  stop_grace_period: 1s
services:
  sleeper:
    <<: *common
    command: ["sleep", "infinity"]
    healthcheck: {test: ["CMD", "true"], interval: 1s, timeout: 2s, retries: 1}
  crasher:
    <<: *common
    command: ["sh", "-c", "echo crashing; exit 3"]
    restart: always
  sick:
    <<: *common
    command: ["sleep", "infinity"]
    healthcheck: {test: ["CMD", "false"], interval: 1s, timeout: 2s, retries: 1}
  burner:
    <<: *common
    profiles: [burn]
    command: ["sh", "-c", "while :; do :; done"]
    cpus: 0.5
    mem_limit: 64m
  idler:
    <<: *common
    profiles: [burn]
    command: ["sleep", "infinity"]
"""


def _compose(project, workdir, *args, check=True):
    return subprocess.run(["docker", "compose", "-p", project, "-f", str(workdir / "compose.yml"),
                           "--profile", "burn", *args],
                          check=check, capture_output=True, text=True, timeout=120)


def _wait(predicate, timeout=30, interval=0.3, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture(scope="module")
def sdk():
    client = docker.APIClient(version="auto", timeout=30)
    yield client
    client.close()


@pytest.fixture(scope="module")
def throwaway(tmp_path_factory, sdk):
    """A compose project of our own, torn down (`docker compose down`) whatever happens."""
    project = "emtest-status-" + uuid.uuid4().hex[:8]
    workdir = tmp_path_factory.mktemp("compose_status")
    (workdir / "compose.yml").write_text(COMPOSE_FILE)
    try:
        _compose(project, workdir, "up", "-d", "sleeper", "crasher", "sick")

        def container(service):
            found = sdk.containers(all=True, filters={"label": [f"com.docker.compose.project={project}",
                                                                f"com.docker.compose.service={service}"]})
            return sdk.inspect_container(found[0]["Id"]) if found else None

        _wait(lambda: container("sleeper")["State"].get("Health", {}).get("Status") == "healthy",
              what="sleeper healthy")
        _wait(lambda: container("sick")["State"].get("Health", {}).get("Status") == "unhealthy",
              what="sick unhealthy")
        _wait(lambda: container("crasher")["RestartCount"] >= 2, what="crasher restarted twice")
        yield {"project": project, "dir": workdir, "container": container}
    finally:
        _compose(project, workdir, "down", "--timeout", "1", "--remove-orphans", check=False)


# --------------------------------------------------------------------------------------- real stack


def test_whole_stack_every_container_described_and_sampled(stack_env):
    result = run_module("compose_status", {"project": STACK_PROJECT})
    assert not result.get("failed"), result.get("msg")
    assert result["available"] is True and result["project_found"] is True
    assert set(result["expected_services"]) == STACK_SERVICES
    assert result["expected_source"] == "compose_file"
    assert set(result["services"]) == STACK_SERVICES
    for c in result["containers"]:
        assert c["service"] in STACK_SERVICES
        assert c["name"].startswith(STACK_PROJECT + "-")
        assert c["replica"] >= 1
        assert c["image"].startswith(stack_env.get("STACK_IMAGE_PREFIX", "equipment-marketplace"))
        assert c["image_id"].startswith("sha256:")
        if c["state"] == "running":
            assert c["uptime_seconds"] >= 0 and c["started_at"]
            stats = c["stats"]
            assert stats["memory_usage"] > 0 and stats["memory_limit"] >= stats["memory_usage"]
            assert stats["cpu_percent"] is not None and stats["cpu_percent"] >= 0
            assert 0.5 <= stats["cpu_window_seconds"] <= 3
            # the module runs on the Docker host as root: auto reads the cgroups (cgroup v1, cgroupfs here)
            assert stats["cpu_method"] == "cgroup", stats
            assert stats["pids"] >= 1
    running = sum(1 for c in result["containers"] if c["state"] == "running")
    assert result["stats_methods"] == {"cgroup": running}
    assert result["stats_window_seconds"] == 0.5
    names = {chk["name"] for chk in result["checks"]}
    assert {f"service:{s}" for s in STACK_SERVICES} <= names
    assert result["status"] in ("ok", "warning", "critical")
    assert_return_documented("compose_status", result)


def test_default_sample_is_one_shared_cgroup_window():
    """All containers are read at the start and at the end of one window: the module costs the window
    (0.5 s) plus milliseconds, and every container's measured window is that window."""
    started = time.monotonic()
    result = run_module("compose_status", {"project": STACK_PROJECT})
    elapsed = time.monotonic() - started
    running = [c for c in result["containers"] if c["state"] == "running"]
    assert len(running) >= 4
    windows = [c["stats"]["cpu_window_seconds"] for c in running]
    assert all(0.5 <= w < 0.65 for w in windows), windows
    assert len({c["stats"]["sampled_at"] for c in running}) == 1
    assert elapsed < 1.5, f"{elapsed:.2f}s for a 0.5 s window"

    result = run_module("compose_status", {"project": STACK_PROJECT, "stats_window": 1.5,
                                           "services": ["redis"]})
    [redis] = result["containers"]
    assert 1.5 <= redis["stats"]["cpu_window_seconds"] < 1.65
    assert result["stats_window_seconds"] == 1.5


def test_stats_are_sampled_in_parallel():
    """A non-streaming stats read waits for two rounds of the daemon's 1 s stats collector (1-2 s); read one
    after another, five containers would take 5-9 s. In parallel the whole module stays near 2 s."""
    started = time.monotonic()
    result = run_module("compose_status", {"project": STACK_PROJECT, "stats_method": "daemon"})
    elapsed = time.monotonic() - started
    running = [c for c in result["containers"] if c["state"] == "running"]
    assert len(running) >= 4
    assert elapsed < 4.5, f"{len(running)} containers took {elapsed:.1f}s: not parallel"
    stamps = sorted(c["stats"]["sampled_at"] for c in running)
    from datetime import datetime
    spread = (datetime.fromisoformat(stamps[-1].replace("Z", "+00:00"))
              - datetime.fromisoformat(stamps[0].replace("Z", "+00:00"))).total_seconds()
    assert spread < 1.5, f"samples spread over {spread:.2f}s"
    assert all(c["stats"]["cpu_method"] in DAEMON_METHODS for c in running)
    assert result["stats_window_seconds"] is None
    assert sum(result["stats_methods"].values()) == len(running)


def test_service_filter_and_check_mode_and_no_stats():
    started = time.monotonic()
    result = run_module("compose_status", {"project": STACK_PROJECT, "services": ["backend", "nginx"],
                                           "stats": False}, check_mode=True)
    assert time.monotonic() - started < 1.5
    assert not result.get("failed"), result.get("msg")
    assert set(result["services"]) == {"backend", "nginx"}
    assert {c["service"] for c in result["containers"]} == {"backend", "nginx"}
    assert all(c["stats"] is None for c in result["containers"])
    assert result["stats_sampled"] is False
    assert result["expected_source"] == "services"
    assert result["changed"] is False


def test_unknown_service_fails_listing_known_services():
    result = run_module("compose_status", {"project": STACK_PROJECT, "services": ["backend", "bakend"]})
    assert result["failed"] is True
    assert "bakend" in result["msg"]
    for name in STACK_SERVICES:
        assert name in result["msg"]


def test_missing_project_fails_or_reports_per_option():
    result = run_module("compose_status", {"project": "no-such-project-x"})
    assert result["failed"] is True
    assert "no-such-project-x" in result["msg"] and STACK_PROJECT in result["msg"]

    result = run_module("compose_status", {"project": "no-such-project-x", "fail_on_missing_project": False,
                                           "expected_services": ["web", "db"]})
    assert not result.get("failed")
    assert result["project_found"] is False
    assert result["status"] == "critical"
    assert result["missing"] == ["db", "web"]
    assert_return_documented("compose_status", result)


@pytest.mark.parametrize("host", ["unix:///nonexistent/docker.sock", "tcp://127.0.0.1:1"])
def test_daemon_down_is_a_result_not_a_traceback(host):
    result = run_module("compose_status", {"project": STACK_PROJECT, "docker_host": host, "timeout": 3})
    assert not result.get("failed"), result
    assert result["available"] is False
    assert "cannot talk to the Docker daemon" in result["reason"]
    assert "Traceback" not in result["_raw"]
    assert_return_documented("compose_status", result)


def test_env_fallbacks(monkeypatch):
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")
    monkeypatch.setenv("COMPOSE_PROJECT_NAME", STACK_PROJECT)
    result = run_module("compose_status", {"stats": False})
    assert result["available"] is False and "/nonexistent/docker.sock" in result["reason"]
    monkeypatch.delenv("DOCKER_HOST")
    result = run_module("compose_status", {"stats": False})
    assert result["available"] is True and result["project"] == STACK_PROJECT


def test_bad_input_fails_cleanly():
    for args, text in [({"restart_count_warning": -1}, "negative"),
                       ({"memory_percent_warning": -5.0}, "negative"),
                       ({"timeout": 0}, "timeout"),
                       ({"stats_window": 0.05}, "stats_window"),
                       ({"stats_window": 11}, "stats_window"),
                       ({"stats_method": "magic"}, "stats_method"),
                       ({"services": [""]}, "empty")]:
        result = run_module("compose_status", {"project": STACK_PROJECT, **args})
        assert result["failed"] is True and text in result["msg"], (args, result["msg"])


# ------------------------------------------------------------------------------- throwaway project


def test_restart_loop_shows_restart_count(throwaway):
    result = run_module("compose_status", {"project": throwaway["project"], "services": ["crasher"],
                                           "stats": False})
    [crasher] = result["containers"]
    assert crasher["restart_count"] >= 2
    assert crasher["restart_policy"] == "always"
    assert crasher["exit_code"] == 3
    assert crasher["state"] in ("restarting", "exited", "running")
    assert result["services"]["crasher"]["max_restart_count"] >= 2
    assert "restarted" in result["services"]["crasher"]["message"]
    assert result["status"] in ("warning", "critical")
    restarts = next(c for c in result["checks"] if c["name"] == "restarts:" + crasher["name"])
    assert restarts["status"] == "warning" and restarts["value"] >= 2
    # Most of a restart loop is spent in the back-off: the service shows as restarting.
    _wait(lambda: "crasher" in run_module("compose_status", {"project": throwaway["project"],
                                                             "services": ["crasher"], "stats": False})["restarting"],
          timeout=15, what="crasher reported as restarting")


def test_unhealthy_service_is_listed(throwaway):
    result = run_module("compose_status", {"project": throwaway["project"], "stats": False})
    assert "sick" in result["unhealthy"]
    assert result["services"]["sick"]["status"] == "critical"
    [sick] = [c for c in result["containers"] if c["service"] == "sick"]
    assert sick["health"] == "unhealthy" and sick["health_failing_streak"] >= 1
    assert result["services"]["sleeper"]["status"] == "ok"
    assert result["status"] == "critical"
    assert_return_documented("compose_status", result)


def test_cpu_and_memory_sample_of_a_limited_busy_container(throwaway):
    _compose(throwaway["project"], throwaway["dir"], "up", "-d", "burner")
    try:
        _check_burner(throwaway)
    finally:
        _compose(throwaway["project"], throwaway["dir"], "rm", "-s", "-f", "burner")


def _check_burner(throwaway):
    time.sleep(1.0)  # let it spin for a full sampling interval
    result = run_module("compose_status", {"project": throwaway["project"], "services": ["burner", "sleeper"],
                                           "cpu_percent_warning": 2.0, "cpu_percent_critical": 200.0})
    by_service = {c["service"]: c for c in result["containers"]}
    burner = by_service["burner"]["stats"]
    # cpus: 0.5 caps it at 50 % of one core (less when the machine is busy with other tests)
    assert 2.0 <= burner["cpu_percent"] <= 56.0, burner
    assert burner["memory_limit"] == 64 * 1024 * 1024 and burner["memory_limited"] is True
    assert 0 < burner["memory_percent"] < 100
    # Idle, but its 1 s healthcheck (`docker exec true`) is charged to its cgroup: a few percent on a busy host.
    assert by_service["sleeper"]["stats"]["cpu_percent"] < min(10.0, burner["cpu_percent"] + 5.0)
    assert by_service["sleeper"]["stats"]["memory_limited"] is False
    cpu_check = next(c for c in result["checks"] if c["name"] == "cpu:" + by_service["burner"]["name"])
    assert cpu_check["status"] == "warning"


def test_cpu_percent_equals_docker_stats_for_the_same_sample(throwaway, sdk):
    """Subscribed in the same daemon interval, `docker stats` and the module see the same two samples:
    their CPU% must agree (that checks the formula, the precpu handling and the per-core scale)."""
    mod = load_utils("marketplace_compose_status")
    _compose(throwaway["project"], throwaway["dir"], "up", "-d", "burner")
    try:
        burner = throwaway["container"]("burner")
        pairs = []
        for _ in range(4):
            cli = subprocess.Popen(["docker", "stats", "--no-stream", "--format", "{{.CPUPerc}}", burner["Name"][1:]],
                                   stdout=subprocess.PIPE, text=True)
            time.sleep(0.05)
            ours = mod.sample_stats(sdk, burner["Id"], True)
            theirs = float(cli.communicate(timeout=30)[0].strip().rstrip("%"))
            pairs.append((ours["cpu_percent"], theirs))
            if abs(ours["cpu_percent"] - theirs) <= 0.05 and theirs > 1.0:
                break
        assert any(abs(a - b) <= 0.05 and b > 1.0 for a, b in pairs), pairs
    finally:
        _compose(throwaway["project"], throwaway["dir"], "rm", "-s", "-f", "burner")


def _docker_stats_cli(names):
    """`docker stats --no-stream` started in the background: name -> CPU% once communicate() is called."""
    return subprocess.Popen(["docker", "stats", "--no-stream", "--format", "{{.Name}} {{.CPUPerc}}", *names],
                            stdout=subprocess.PIPE, text=True)


def test_cgroup_sample_agrees_with_docker_stats(throwaway, sdk):
    """The cgroup CPU% of the limited busy burner is docker stats' figure for an overlapping window, an idle
    container reads 0, and memory usage/limit and pids are what the daemon reports for the same counters."""
    mod = load_utils("marketplace_compose_status")
    _compose(throwaway["project"], throwaway["dir"], "up", "-d", "burner", "idler")
    try:
        burner, idler = throwaway["container"]("burner"), throwaway["container"]("idler")
        names = [burner["Name"][1:], idler["Name"][1:]]
        targets = [(c["Id"], c["State"]["Pid"], bool(c["HostConfig"]["Memory"])) for c in (burner, idler)]
        time.sleep(1.0)  # let it spin
        pairs = []
        for _ in range(3):
            # docker stats' CPU% covers the daemon's last ~1 s collector interval before it answers (after 1-2 s);
            # a 1 s cgroup window started 0.3 s after it overlaps most of that.
            cli = _docker_stats_cli(names)
            time.sleep(0.3)
            ours_burner, ours_idler = mod.sample_container_stats(sdk, targets, method="cgroup", window=1.0)
            theirs = dict(line.rsplit(" ", 1) for line in cli.communicate(timeout=30)[0].strip().splitlines())
            theirs = {name: float(value.rstrip("%")) for name, value in theirs.items()}
            pairs.append((ours_burner["cpu_percent"], theirs[names[0]], ours_idler["cpu_percent"], theirs[names[1]]))
            if abs(ours_burner["cpu_percent"] - theirs[names[0]]) <= 3.0 and theirs[names[0]] > 10.0:
                break
        assert any(abs(a - b) <= 3.0 and b > 10.0 for a, b, _c, _d in pairs), pairs
        assert ours_burner["cpu_method"] == "cgroup" and ours_burner["cgroup_version"] in (1, 2)
        assert ours_burner["cpu_percent"] <= 55.0  # cpus: 0.5
        assert 1.0 <= ours_burner["cpu_window_seconds"] < 1.15
        # idle (sleep, no healthcheck execs): nothing at all, by both measures
        assert all(c < 0.5 and d < 0.5 for _a, _b, c, d in pairs), pairs

        # memory and pids: the same kernel counters the daemon reads, a moment apart
        daemon = {c["Id"]: sdk.stats(c["Id"], stream=False, one_shot=True) for c in (burner, idler)}
        for container, ours in ((burner, ours_burner), (idler, ours_idler)):
            raw = daemon[container["Id"]]
            usage, limit = mod.memory_usage(raw["memory_stats"])
            assert ours["memory_limit"] == limit, (ours, raw["memory_stats"])
            assert abs(ours["memory_usage"] - usage) <= max(256 * 1024, 0.02 * usage), (ours, usage)
            assert ours["pids"] == raw["pids_stats"]["current"]
        assert ours_burner["memory_limit"] == 64 * 1024 * 1024 and ours_burner["memory_limited"] is True
        assert ours_idler["memory_limited"] is False and ours_idler["memory_limit"] > 64 * 1024 * 1024
    finally:
        _compose(throwaway["project"], throwaway["dir"], "rm", "-s", "-f", "burner", "idler")


def test_auto_falls_back_to_the_daemon_when_the_cgroup_is_not_readable(throwaway, sdk, tmp_path):
    """auto: cgroup where readable, the daemon for the rest (saying why); cgroup: an error instead."""
    mod = load_utils("marketplace_compose_status")
    sleeper, sick = throwaway["container"]("sleeper"), throwaway["container"]("sick")
    targets = [(sleeper["Id"], sleeper["State"]["Pid"], False)]
    started = time.monotonic()
    [stats] = mod.sample_container_stats(sdk, targets, method="auto", window=0.2, proc_root=str(tmp_path / "noproc"))
    assert stats["cpu_method"] in DAEMON_METHODS and stats["cpu_percent"] is not None
    assert "mountinfo" in stats["fallback_reason"]
    assert time.monotonic() - started < 3.5
    [stats] = mod.sample_container_stats(sdk, targets, method="cgroup", window=0.2, proc_root=str(tmp_path / "noproc"))
    assert "mountinfo" in stats["error"] and "cpu_percent" not in stats
    # a pid that is not the container's (pid reuse, another pid namespace, a remote daemon) is never read
    mixed = [(sleeper["Id"], sleeper["State"]["Pid"], False), (sick["Id"], sleeper["State"]["Pid"], False)]
    ours, other = mod.sample_container_stats(sdk, mixed, method="auto", window=0.2)
    assert ours["cpu_method"] == "cgroup" and "fallback_reason" not in ours
    assert other["cpu_method"] in DAEMON_METHODS
    assert "not in a cgroup of container " + sick["Id"][:12] in other["fallback_reason"]
    # the daemon method through the module
    result = run_module("compose_status", {"project": throwaway["project"], "services": ["sleeper"],
                                           "stats_method": "daemon"})
    [entry] = result["containers"]
    assert entry["stats"]["cpu_method"] in DAEMON_METHODS and "cgroup_version" not in entry["stats"]
    assert_return_documented("compose_status", result)


def test_stopped_then_removed_service_is_reported_exited_then_missing(throwaway):
    project, workdir = throwaway["project"], throwaway["dir"]
    try:
        _compose(project, workdir, "stop", "sleeper")
        result = run_module("compose_status", {"project": project, "stats": False})
        assert "sleeper" in result["exited"]
        assert result["services"]["sleeper"]["status"] == "critical"
        assert result["services"]["sleeper"]["states"] == {"exited": 1}
        assert result["status"] == "critical"
        assert "exited: " in result["summary"] and "sleeper" in result["summary"]

        _compose(project, workdir, "rm", "-f", "sleeper")
        result = run_module("compose_status", {"project": project, "stats": False})
        assert result["expected_source"] == "compose_file"
        assert "sleeper" in result["missing"]
        assert result["services"]["sleeper"]["replicas"] == 0
        assert result["services"]["sleeper"]["status"] == "critical"
        # named explicitly, a removed service is missing, not unknown
        result = run_module("compose_status", {"project": project, "services": ["sleeper"], "stats": False})
        assert not result.get("failed") and result["missing"] == ["sleeper"]
    finally:
        _compose(project, workdir, "up", "-d", "sleeper")


def test_cpu_percent_falls_back_to_a_second_read_when_precpu_is_empty():
    """Pure check of the CPU computation (what cgroup v1 gives on a first read with an empty precpu)."""
    mod = load_utils("marketplace_compose_status")

    def cpu(total, system):
        return {"cpu_usage": {"total_usage": total, "percpu_usage": [0, 0]}, "system_cpu_usage": system,
                "online_cpus": 2}

    class FakeClient:
        api_version = "1.41"

        def __init__(self):
            self.calls = []

        def stats(self, cid, stream=True, one_shot=None):
            self.calls.append(one_shot)
            if len(self.calls) == 1:
                return {"read": "2026-01-01T00:00:01Z", "preread": "0001-01-01T00:00:00Z",
                        "cpu_stats": cpu(1_000_000_000, 100_000_000_000), "precpu_stats": {"cpu_usage": {}},
                        "memory_stats": {"usage": 300, "limit": 1000, "stats": {"total_inactive_file": 100}}}
            # 0.5 s of CPU over 1 s of wall time on 2 CPUs (system delta 2e9 ns)
            return {"read": "2026-01-01T00:00:02Z", "cpu_stats": cpu(1_500_000_000, 102_000_000_000)}

    fake = FakeClient()
    stats = mod.sample_stats(fake, "abc", memory_limited=True)
    assert fake.calls == [None, True]
    assert stats["cpu_method"] == "second_read"
    assert stats["cpu_percent"] == pytest.approx(50.0)
    assert stats["cpu_window_seconds"] == pytest.approx(1.0)
    assert stats["memory_usage"] == 200 and stats["memory_percent"] == pytest.approx(20.0)
    assert mod.cpu_percent(cpu(5, 10), {"cpu_usage": {"total_usage": 0}}) is None
