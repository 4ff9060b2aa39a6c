"""The recover role's decisions (roles/recover/filter_plugins/recover_filters.py): the state from docker_host_info
and compose_status results, how the daemon would be started, and the run's checks - no Docker."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

_PATH = Path(__file__).resolve().parents[2] / "roles" / "recover" / "filter_plugins" / "recover_filters.py"
_spec = importlib.util.spec_from_file_location("recover_filters_unit", _PATH)
rf = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(rf)

EXPECTED = ["postgres", "redis", "backend", "nginx", "prometheus"]
UP = {"can_talk_to_docker": True}
DOWN = {"can_talk_to_docker": False, "msg": "Error connecting: " + "x" * 400}


def test_the_state_lists_what_is_down_once():
    compose = {"missing": ["nginx"], "exited": ["prometheus", "nginx"], "restarting": [], "unhealthy": ["backend"]}
    state = rf.recover_assess(UP, compose, EXPECTED)
    assert state == {"daemon_up": True, "daemon_error": None, "missing": ["nginx"], "exited": ["prometheus", "nginx"],
                     "restarting": [], "unhealthy": ["backend"], "down": ["nginx", "prometheus", "backend"]}
    assert rf.recover_assess_result(state) == "down: nginx, prometheus, backend"
    assert rf.recover_assess_result(rf.recover_assess(UP, {"skipped": True}, EXPECTED)) == "all services up"


def test_a_silent_daemon_means_every_service_is_down():
    state = rf.recover_assess(DOWN, {"skipped": True}, EXPECTED)
    assert state["daemon_up"] is False and state["down"] == EXPECTED and state["missing"] == []
    # Cut as jinja2's truncate cut it (at a word boundary): a long error without spaces leaves its first words.
    assert state["daemon_error"] == "Error connecting:..."
    cut = rf.recover_assess({"msg": "a " * 200}, None, [])["daemon_error"]
    assert cut.endswith(" a...") and len(cut) <= 300
    assert rf.recover_assess_result(state) == "daemon down"
    assert rf.recover_assess({}, None, EXPECTED)["daemon_error"] == "no answer"


@pytest.mark.parametrize(("configured", "isdir", "command", "method", "reason"), [
    ("auto", True, ["dockerd"], "systemd", "systemd runs demo (/run/systemd/system exists there)"),
    ("auto", False, ["dockerd"], "command",
     "no systemd on demo (no /run/systemd/system there): recover_dockerd_command"),
    ("auto", False, [], "service", "no systemd on demo (no /run/systemd/system there): its service manager"),
    ("service", True, ["dockerd"], "service", "set by recover_docker_start_method"),
])
def test_the_daemon_start_is_decided_with_what_the_target_has(configured, isdir, command, method, reason):
    stat = {"stat": {"exists": isdir, "isdir": isdir}}
    assert rf.recover_daemon_start(configured, stat, command, "demo", "/run/systemd/system") == \
        {"method": method, "reason": reason}
    # The stat is skipped when a method is configured: a skipped result is no systemd.
    assert rf.recover_daemon_start("auto", {"skipped": True}, [], "demo", "/m")["method"] == "service"


def test_services_that_came_back_make_an_ok_run():
    before = rf.recover_assess(UP, {"exited": ["nginx", "prometheus"]}, EXPECTED)
    after = rf.recover_assess(UP, {}, EXPECTED)
    out = rf.recover_outcome(before, after, EXPECTED, "em")
    assert (out["status"], out["severity"]) == ("ok", None)
    assert out["summary"] == "Docker daemon and every service of em are up and healthy"
    daemon, services = out["checks"]
    assert daemon["message"] == "Docker daemon answers" and daemon["value"] == {"before": True, "after": True}
    assert services["value"]["came_back"] == ["nginx", "prometheus"] and services["component"] == "compose"
    assert services["message"] == "every service is running and healthy (came back: nginx, prometheus)"


def test_a_started_daemon_and_what_is_still_down():
    before = rf.recover_assess(DOWN, None, EXPECTED)
    after = rf.recover_assess(UP, {"unhealthy": ["backend"]}, EXPECTED)
    out = rf.recover_outcome(before, after, EXPECTED, "em")
    daemon, services = out["checks"]
    assert daemon["status"] == "ok" and daemon["message"] == "Docker daemon was down and was started"
    assert services["status"] == "critical" and services["component"] == "backend"
    assert services["message"] == "down: backend" and services["threshold"].startswith("all of postgres, redis")
    assert (out["status"], out["severity"], out["summary"]) == ("critical", "P0", "down: backend")


def test_without_recovery_the_state_before_is_judged():
    before = rf.recover_assess(DOWN, None, ["backend"])
    out = rf.recover_outcome(before, None, ["backend"], "em")
    assert [c["status"] for c in out["checks"]] == ["critical", "critical"]
    assert out["checks"][1]["value"]["came_back"] == []
    assert out["summary"].startswith("Docker daemon is down: Error connecting") and out["summary"].endswith(
        "; down: backend")
