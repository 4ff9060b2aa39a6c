# Filters of the recover role: what the gathered results mean (the state of the daemon and the services, how the
# daemon would be started, the checks and the status). The task files gather, act and report.
from __future__ import annotations

import importlib.util
from pathlib import Path

from ansible import constants as C

# module_utils/<name>.py on the controller, through its one loader module_utils/marketplace_controller.py: beside
# this plugin in the repository, else in a module_utils path ansible is configured with.
_spec = importlib.util.spec_from_file_location("marketplace_controller", next((
    p for d in (Path(__file__).resolve().parents[3] / "module_utils", *(C.DEFAULT_MODULE_UTILS_PATH or ()))
    if (p := Path(d, "marketplace_controller.py")).is_file()), "(not found)/marketplace_controller.py"))
_spec.loader.exec_module(_loader := importlib.util.module_from_spec(_spec))
_module_utils = _loader.module_utils
_jinja = _module_utils("marketplace_jinja")


# jinja2's truncate leeway (Ansible's default): the role's texts were cut with it.
# compose_status' lists of the services that are not up.
DOWN_KEYS = ("missing", "exited", "restarting", "unhealthy")


_truncate = _jinja.truncate


_unique = _jinja.unique


def recover_assess(docker, compose, expected_services):
    """The state of the daemon and the services from docker_host_info's and compose_status' results.

    The services that are down are the missing, exited, restarting and unhealthy ones; every expected service
    when the daemon does not answer.
    """
    docker = docker or {}
    compose = compose or {}
    up = bool(docker.get("can_talk_to_docker"))
    state = {"daemon_up": up,
             "daemon_error": None if up else _truncate(docker.get("msg") or "no answer", 300)}
    for key in DOWN_KEYS:
        state[key] = list(compose.get(key) or [])
    state["down"] = _unique(x for key in DOWN_KEYS for x in state[key]) if up else list(expected_services or [])
    return state


def recover_assess_result(state):
    """One line for the timeline: daemon down, the services down, or all services up."""
    if not state.get("daemon_up"):
        return "daemon down"
    return "down: " + ", ".join(state["down"]) if state.get("down") else "all services up"


def recover_daemon_start(configured, marker_stat, dockerd_command, host, marker):
    """How the daemon would be started ({method, reason}), decided with what was found ON THE TARGET.

    auto: systemd when the marker directory exists there (systemd runs that host), else the command when one is
    set, else the host's service manager. Any other value is the configured method.
    """
    if configured != "auto":
        return {"method": configured, "reason": "set by recover_docker_start_method"}
    systemd = bool(((marker_stat or {}).get("stat") or {}).get("isdir"))
    if systemd:
        return {"method": "systemd", "reason": "systemd runs %s (%s exists there)" % (host, marker)}
    method = "command" if dockerd_command else "service"
    return {"method": method, "reason": "no systemd on %s (no %s there): %s" % (
        host, marker, "recover_dockerd_command" if dockerd_command else "its service manager")}


def recover_outcome(before, after, expected_services, project):
    """The checks (docker_daemon, compose_services), status, severity and summary from the state before and,
    when the recovery ran, after it."""
    final = after or before
    came_back = [s for s in before["down"] if s not in final["down"]] if final["daemon_up"] else []
    healthy = final["daemon_up"] and not final["down"]
    if final["daemon_up"]:
        daemon_msg = "Docker daemon answers" if before["daemon_up"] else "Docker daemon was down and was started"
    else:
        daemon_msg = "Docker daemon is down: %s" % (final.get("daemon_error") or "no answer")
    checks = [
        {"name": "docker_daemon", "component": "docker", "status": "ok" if final["daemon_up"] else "critical",
         "value": {"before": before["daemon_up"], "after": final["daemon_up"]}, "threshold": "answers",
         "message": daemon_msg},
        {"name": "compose_services", "component": ",".join(final["down"]) if final["down"] else "compose",
         "status": "ok" if healthy else "critical",
         "value": {"down_before": before["down"], "down_after": final["down"], "came_back": came_back},
         "threshold": "all of %s running and healthy" % ", ".join(expected_services),
         "message": ("every service is running and healthy"
                     + (" (came back: %s)" % ", ".join(came_back) if came_back else ""))
         if healthy else "down: " + ", ".join(final["down"])},
    ]
    statuses = [c["status"] for c in checks]
    bad = [c["message"] for c in checks if c["status"] != "ok"]
    return {
        "checks": checks,
        "status": "critical" if "critical" in statuses else (
            "warning" if "warning" in statuses or "unknown" in statuses else "ok"),
        "severity": "P0" if "critical" in statuses else ("P2" if "warning" in statuses else None),
        "summary": "; ".join(bad) or "Docker daemon and every service of %s are up and healthy" % project,
    }


class FilterModule:
    def filters(self):
        return {
            "recover_assess": recover_assess,
            "recover_assess_result": recover_assess_result,
            "recover_daemon_start": recover_daemon_start,
            "recover_outcome": recover_outcome,
        }
