#!/usr/bin/python
# State, health, restarts and resource use of the containers of a compose project, from the Docker SDK.
from __future__ import annotations

DOCUMENTATION = r"""
---
module: compose_status
short_description: State, health, restarts and CPU/memory of a compose project's containers
description:
  - Reads the containers of a Docker compose project through the Docker SDK for Python, selected by the
    compose labels C(com.docker.compose.project) and C(com.docker.compose.service) (never by parsing
    C(docker compose ps) output).
  - For each container it reports state, health, exit code, restart count, start time and uptime, image
    tag and id and replica number, plus one CPU% and memory usage/limit sample.
  - All containers are inspected and sampled in parallel threads, so a whole stack costs what one
    container costs (two rounds of the daemon's 1 s stats collector, about 2 s), not that once per container.
  - Lists the services that are expected but missing, exited, restarting or unhealthy, turns them into
    checks (C(ok), C(warning), C(critical)) and a summary status.
  - Read-only; check mode gathers the same facts. When the daemon cannot be reached the result is
    C(available=false) with a reason, not a failure.
version_added: "1.0.0"
author: Equipment Marketplace operations
requirements:
  - PyYAML (optional, to read the expected services from the project's compose file)
extends_documentation_fragment:
  - marketplace_docker
options:
  services:
    description:
      - Only report these services (default all). Each listed service is expected to run; a listed
        service that neither has a container nor is defined in the compose file fails with the list of
        known services.
    type: list
    elements: str
    default: []
  expected_services:
    description:
      - Services that must have a running container. Empty means the services of the project's compose
        file(s) (found through the C(com.docker.compose.project.config_files) label, without services that
        only run under a profile or are scaled to 0), or, when the file cannot be read on this host,
        the services that have containers.
    type: list
    elements: str
    default: []
  stats:
    description:
      - Take one CPU% and memory sample per running container. C(false) skips it (the module then
        answers in milliseconds).
    type: bool
    default: true
  fail_on_missing_project:
    description:
      - When the project has no containers at all, fail (C(true)) naming the projects that do exist,
        or (C(false)) return C(project_found=false) with status C(critical) and every expected service
        listed as missing.
    type: bool
    default: true
  restart_count_warning:
    description:
      - A container restarted this many times by its restart policy turns its service to C(warning).
        C(0) disables the check.
    type: int
    default: 1
  memory_percent_warning:
    description:
      - Memory usage (without page cache) in percent of the container's limit (of the host's memory when
        it has none) at which its check turns C(warning).
    type: float
    default: 90.0
  memory_percent_critical:
    description:
      - Memory usage in percent of the limit at which the check turns C(critical).
    type: float
    default: 95.0
  cpu_percent_warning:
    description:
      - CPU% (100 = one full core, as C(docker stats) shows it) at which a container's check turns
        C(warning). Unset means no CPU threshold.
    type: float
  cpu_percent_critical:
    description:
      - CPU% at which a container's check turns C(critical). Unset means no CPU threshold.
    type: float
notes:
  - CPU% is computed like C(docker stats) from C(cpu_stats) against C(precpu_stats) of a non-streaming
    stats read (the daemon primes C(precpu_stats) with its previous 1 s sample). When C(precpu_stats)
    comes back empty (older engines, first read on cgroup v1) a second read is taken and the two
    C(cpu_stats) are compared instead, so the figure is never computed against zero.
  - Memory usage excludes the inactive page cache (C(total_inactive_file) on cgroup v1, C(inactive_file)
    on cgroup v2), like the Docker CLI.
  - One-off containers (C(docker compose run)) are ignored.
  - Keep O(timeout) above 2 seconds; a stats sample takes up to 2 s.
"""

EXAMPLES = r"""
- name: State of the whole stack
  compose_status:
    project: equipment-marketplace
  register: stack_state
  changed_when: false
  check_mode: false

- name: Backend and nginx only, without the CPU/memory sample
  compose_status:
    project: "{{ marketplace_compose_project }}"
    services: [backend, nginx]
    stats: false

- name: Do not fail when the project is not deployed yet
  compose_status:
    project: equipment-marketplace
    expected_services: [postgres, redis, backend, nginx, prometheus]
    fail_on_missing_project: false
    cpu_percent_warning: 80
    cpu_percent_critical: 150
"""

RETURN = r"""
available:
  description: Whether the Docker daemon answered.
  returned: always
  type: bool
  sample: true
reason:
  description: Why the daemon could not be used (only when C(available) is false).
  returned: when available is false
  type: str
  sample: "cannot talk to the Docker daemon at unix:///var/run/docker.sock: socket not found (is dockerd running?)"
project:
  description: The compose project that was read.
  returned: always
  type: str
  sample: equipment-marketplace
project_found:
  description: Whether the project has any container (false only with C(fail_on_missing_project=false)).
  returned: when available
  type: bool
status:
  description: Worst status of all checks (C(unknown) when the daemon is unavailable).
  returned: always
  type: str
  sample: ok
summary:
  description: One-line human summary.
  returned: always
  type: str
  sample: "5/5 expected services running; all healthy"
expected_services:
  description: The services that were expected to run.
  returned: when available
  type: list
  elements: str
expected_source:
  description: Where the expected services came from (C(option), C(services), C(compose_file) or C(containers)).
  returned: when available
  type: str
  sample: compose_file
missing:
  description: Expected services without any container.
  returned: when available
  type: list
  elements: str
exited:
  description: Services with a container in state exited or dead.
  returned: when available
  type: list
  elements: str
restarting:
  description: Services with a container the restart policy is restarting (a restart loop).
  returned: when available
  type: list
  elements: str
unhealthy:
  description: Services with a running container whose healthcheck reports unhealthy.
  returned: when available
  type: list
  elements: str
services:
  description:
    - Per service - C(status), C(message), C(expected), C(replicas), C(running), C(healthy) (running
      and healthy or without healthcheck), C(states) (count per state), C(containers) (names) and
      C(max_restart_count).
  returned: when available
  type: dict
containers:
  description:
    - One entry per container - C(name), C(id), C(service), C(replica), C(state), C(health)
      (healthy/unhealthy/starting/none), C(health_failing_streak), C(health_output) (last healthcheck output
      when not healthy, redacted), C(exit_code), C(oom_killed), C(error), C(restart_count),
      C(restart_policy), C(created), C(started_at), C(finished_at), C(uptime_seconds), C(image) (tag),
      C(image_id), C(stats).
    - C(stats) is null when not sampled, else C(cpu_percent), C(online_cpus), C(cpu_window_seconds),
      C(cpu_method) (C(daemon_precpu) or C(second_read)), C(memory_usage), C(memory_limit) (bytes),
      C(memory_percent), C(memory_limited) (a limit is configured), C(pids), C(sampled_at), or C(error).
  returned: when available
  type: list
  elements: dict
checks:
  description:
    - Report checks (C(name), C(component) (the service), C(status), C(value), C(threshold), C(message)),
      per service (C(service:NAME)) and per container (C(restarts:), C(memory:), C(cpu:) + container name).
  returned: when available
  type: list
  elements: dict
stats_sampled:
  description: Whether CPU/memory samples were taken.
  returned: when available
  type: bool
duration_seconds:
  description: Wall time of the gather.
  returned: when available
  type: float
"""

import datetime
import time

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.marketplace_common import (
    check,
    json_safe,
    threshold_check,
    validate_non_negative,
    worst_status,
)
from ansible.module_utils.marketplace_docker import (
    DOCKER_ERRORS,
    NotFound,
    Redactor,
    check_docker_sdk,
    compose_file_services,
    connect,
    container_name,
    container_service,
    docker_argument_spec,
    docker_error_reason,
    known_projects,
    list_project_containers,
    parallel_map,
    replica_number,
    unavailable_result,
    validate_common,
)

ZERO_TIME = "0001-01-01T00:00:00Z"
NOT_RUNNING = ("exited", "dead", "created", "paused", "removing")


def build_argument_spec():
    return docker_argument_spec(
        expected_services=dict(type="list", elements="str", default=[]),
        stats=dict(type="bool", default=True),
        fail_on_missing_project=dict(type="bool", default=True),
        restart_count_warning=dict(type="int", default=1),
        memory_percent_warning=dict(type="float", default=90.0),
        memory_percent_critical=dict(type="float", default=95.0),
        cpu_percent_warning=dict(type="float"),
        cpu_percent_critical=dict(type="float"),
    )


# ---------------------------------------------------------------------------------------------- stats


def parse_time(value):
    """Docker timestamp (RFC 3339, nanoseconds) -> aware datetime, None for the zero time."""
    if not value or value.startswith("0001-01-01"):
        return None
    try:
        return datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def cpu_sample_valid(cpu):
    cpu = cpu or {}
    return bool(cpu.get("system_cpu_usage")) and bool((cpu.get("cpu_usage") or {}).get("total_usage"))


def cpu_percent(cur, pre):
    """CPU% between two cpu_stats samples, as `docker stats` computes it (100 = one core)."""
    if not cpu_sample_valid(cur) or not cpu_sample_valid(pre):
        return None
    cpu_delta = cur["cpu_usage"]["total_usage"] - pre["cpu_usage"]["total_usage"]
    system_delta = cur["system_cpu_usage"] - pre["system_cpu_usage"]
    online = cur.get("online_cpus") or len(cur["cpu_usage"].get("percpu_usage") or []) or 1
    if system_delta <= 0 or cpu_delta < 0:
        return None
    return cpu_delta / system_delta * online * 100.0


def memory_usage(mem):
    """(usage without inactive page cache, limit) from memory_stats, like the Docker CLI."""
    mem = mem or {}
    usage = mem.get("usage")
    if usage is None:
        return None, mem.get("limit")
    detail = mem.get("stats") or {}
    for key in ("total_inactive_file", "inactive_file"):  # cgroup v1, then v2
        cache = detail.get(key)
        if cache is not None and cache < usage:
            return usage - cache, mem.get("limit")
    return usage, mem.get("limit")


def sample_stats(client, container_id, memory_limited):
    """One CPU% / memory sample of a running container (see the module notes for the CPU method)."""
    first = client.stats(container_id, stream=False)
    cur, pre = first.get("cpu_stats") or {}, first.get("precpu_stats") or {}
    read, preread = parse_time(first.get("read")), parse_time(first.get("preread"))
    method = "daemon_precpu"
    if cpu_sample_valid(cur) and not cpu_sample_valid(pre):
        # precpu is empty: take a second read and compare the two cpu_stats ourselves.
        kwargs = {"one_shot": True} if _api_at_least(client, "1.41") else {}
        second = client.stats(container_id, stream=False, **kwargs)
        pre, cur = cur, second.get("cpu_stats") or {}
        preread, read = read, parse_time(second.get("read"))
        method = "second_read"
    usage, limit = memory_usage(first.get("memory_stats"))
    percent = cpu_percent(cur, pre)
    online = cur.get("online_cpus") or len((cur.get("cpu_usage") or {}).get("percpu_usage") or []) or None
    window = (read - preread).total_seconds() if read and preread else None
    return {
        "cpu_percent": round(percent, 2) if percent is not None else None,
        "online_cpus": online,
        "cpu_window_seconds": round(window, 3) if window is not None else None,
        "cpu_method": method,
        "memory_usage": usage,
        "memory_limit": limit,
        "memory_percent": round(usage * 100.0 / limit, 2) if usage is not None and limit else None,
        "memory_limited": memory_limited,
        "pids": (first.get("pids_stats") or {}).get("current"),
        "sampled_at": first.get("read"),
    }


def _api_at_least(client, version):
    def parts(v):
        return tuple(int(x) for x in str(v).split("."))
    try:
        return parts(client.api_version) >= parts(version)
    except (ValueError, AttributeError):
        return False


# ----------------------------------------------------------------------------------------- containers


def describe_container(client, summary, want_stats, now):
    """Inspect one container and, when it runs, sample its stats (runs in a worker thread)."""
    info = client.inspect_container(summary["Id"])
    state = info.get("State") or {}
    config = info.get("Config") or {}
    host_config = info.get("HostConfig") or {}
    labels = config.get("Labels") or summary.get("Labels") or {}
    status = state.get("Status") or summary.get("State") or "unknown"
    health = state.get("Health") or {}
    health_status = health.get("Status") or "none"
    started = parse_time(state.get("StartedAt"))
    running = status == "running"
    entry = {
        "name": container_name(info) or container_name(summary),
        "id": info.get("Id", summary["Id"])[:12],
        "service": container_service(summary),
        "replica": replica_number(labels),
        "state": status,
        "health": health_status,
        "health_failing_streak": health.get("FailingStreak", 0) if health else None,
        "health_output": None,
        "exit_code": state.get("ExitCode"),
        "oom_killed": bool(state.get("OOMKilled")),
        "error": state.get("Error") or None,
        "restart_count": info.get("RestartCount", 0),
        "restart_policy": (host_config.get("RestartPolicy") or {}).get("Name") or "no",
        "created": info.get("Created"),
        "started_at": state.get("StartedAt") if started else None,
        "finished_at": state.get("FinishedAt") if parse_time(state.get("FinishedAt")) else None,
        "uptime_seconds": round((now - started).total_seconds(), 1) if running and started else None,
        "image": config.get("Image") or summary.get("Image"),
        "image_id": info.get("Image") or summary.get("ImageID"),
        "stats": None,
    }
    if health and health_status != "healthy":
        logs = health.get("Log") or []
        if logs:
            redactor = Redactor()
            redactor.add_env(config.get("Env"))
            entry["health_output"] = redactor.redact((logs[-1].get("Output") or "").strip()[:500]) or None
    if want_stats and running:
        try:
            entry["stats"] = sample_stats(client, summary["Id"], bool(host_config.get("Memory")))
        except DOCKER_ERRORS as exc:
            entry["stats"] = {"error": docker_error_reason(exc)}
    return entry


# ---------------------------------------------------------------------------------------------- logic


def service_check(name, containers, expected, restart_warning):
    """Status of one service from its containers."""
    states = {}
    for c in containers:
        states[c["state"]] = states.get(c["state"], 0) + 1
    running = [c for c in containers if c["state"] == "running"]
    good = [c for c in running if c["health"] in ("healthy", "none")]
    starting = [c for c in running if c["health"] == "starting"]
    max_restarts = max([c["restart_count"] or 0 for c in containers] or [0])
    info = {
        "expected": expected,
        "replicas": len(containers),
        "running": len(running),
        "healthy": len(good),
        "states": states,
        "containers": [c["name"] for c in containers],
        "max_restart_count": max_restarts,
    }
    state_text = ", ".join("%d %s" % (v, k) for k, v in sorted(states.items()))
    if not containers:
        status, message = ("critical" if expected else "ok"), "service %s has no container" % name
    elif not good:
        if starting:
            status, message = "warning", "service %s: healthcheck still starting (%s)" % (name, state_text)
        else:
            problems = [c["health"] for c in running if c["health"] == "unhealthy"]
            status = "critical"
            message = "service %s has no running healthy container (%s%s)" % (
                name, state_text, "; unhealthy" if problems else "")
            exit_codes = sorted({c["exit_code"] for c in containers if c["state"] != "running"
                                 and c["exit_code"] is not None})
            if exit_codes:
                message += "; exit code(s) %s" % ", ".join(map(str, exit_codes))
    elif len(good) < len(containers):
        status, message = "warning", "service %s: %d of %d containers running and healthy (%s)" % (
            name, len(good), len(containers), state_text)
    else:
        status, message = "ok", "service %s: %d running and healthy" % (name, len(good))
    if restart_warning and max_restarts >= restart_warning:
        message += "; restarted %d time(s)" % max_restarts
        if status == "ok":
            status = "warning"
    info["status"] = status
    info["message"] = message
    return info


def container_checks(c, params):
    checks = []
    if params["restart_count_warning"]:
        chk = threshold_check(c["restart_count"] or 0, warning=params["restart_count_warning"],
                              label="restart count of %s" % c["name"])
        checks.append(dict(name="restarts:%s" % c["name"], component=c["service"], **chk))
    stats = c.get("stats")
    if stats and "error" not in stats:
        chk = threshold_check(stats["memory_percent"], warning=params["memory_percent_warning"],
                              critical=params["memory_percent_critical"], unit="%",
                              label="memory of %s" % c["name"])
        checks.append(dict(name="memory:%s" % c["name"], component=c["service"], **chk))
        chk = threshold_check(stats["cpu_percent"], warning=params["cpu_percent_warning"],
                              critical=params["cpu_percent_critical"], unit="%", label="CPU of %s" % c["name"])
        checks.append(dict(name="cpu:%s" % c["name"], component=c["service"], **chk))
    elif stats:
        checks.append(dict(name="stats:%s" % c["name"], component=c["service"],
                           **check("unknown", None, None, "no stats for %s: %s" % (c["name"], stats["error"]))))
    return checks


def gather(module, client):
    params = module.params
    project = params["project"].strip()
    started = time.monotonic()
    summaries = list_project_containers(client, project)

    option_expected = [s.strip() for s in params["expected_services"] if s.strip()]
    requested = [s.strip() for s in params["services"]]
    if not summaries:
        projects = known_projects(client)
        msg = "compose project %r has no containers on this Docker host (projects found: %s)" % (
            project, ", ".join(projects) or "none")
        if params["fail_on_missing_project"]:
            module.fail_json(msg=msg, available=True, project=project, known_projects=projects)
        expected = sorted(set(requested or option_expected))
        return dict(available=True, project=project, project_found=False, status="critical", summary=msg,
                    expected_services=expected, expected_source="services" if requested else "option",
                    missing=expected, exited=[], restarting=[], unhealthy=[], services={}, containers=[],
                    checks=[dict(name="project:%s" % project, component=project,
                                **check("critical", 0, None, msg))],
                    stats_sampled=False, duration_seconds=round(time.monotonic() - started, 3))

    seen = sorted({container_service(s) for s in summaries} - {None})
    file_services = None
    for s in summaries:
        file_services = compose_file_services(s.get("Labels"))
        if file_services is not None:
            break
    known = set(seen) | set(file_services or []) | set(option_expected)
    unknown = [s for s in requested if s not in known]
    if unknown:
        module.fail_json(msg="unknown service(s) %s in compose project %r (known services: %s)"
                         % (", ".join(unknown), project, ", ".join(sorted(known))),
                         available=True, project=project)

    if requested:
        expected, source = set(requested), "services"
    elif option_expected:
        expected, source = set(option_expected), "option"
    elif file_services is not None:
        expected, source = set(file_services), "compose_file"
    else:
        expected, source = set(seen), "containers"

    selected = [s for s in summaries if not requested or container_service(s) in requested]
    now = datetime.datetime.now(datetime.UTC)
    described = parallel_map(lambda s: describe_container(client, s, params["stats"], now), selected,
                             max_workers=32)
    containers = []
    for entry in described:
        if isinstance(entry, NotFound):  # removed between list and inspect
            continue
        if isinstance(entry, BaseException):
            raise entry
        containers.append(entry)
    containers.sort(key=lambda c: (c["service"] or "", c["replica"] or 0, c["name"]))

    scope = set(requested) if requested else (expected | {c["service"] for c in containers})
    services = {}
    checks = []
    for name in sorted(scope):
        own = [c for c in containers if c["service"] == name]
        info = service_check(name, own, name in expected, params["restart_count_warning"])
        services[name] = info
        checks.append(dict(name="service:%s" % name, component=name, **check(
            info["status"], {"running": info["running"], "replicas": info["replicas"], "healthy": info["healthy"]},
            {"expected": name in expected}, info["message"])))
    for c in containers:
        checks.extend(container_checks(c, params))

    def services_where(pred):
        return sorted({c["service"] for c in containers if pred(c)})

    missing = sorted(n for n in expected if n in scope and not services.get(n, {}).get("replicas"))
    exited = services_where(lambda c: c["state"] in ("exited", "dead"))
    restarting = services_where(lambda c: c["state"] == "restarting")
    # a stopped container keeps its last health status: only running ones count as unhealthy
    unhealthy = services_where(lambda c: c["health"] == "unhealthy" and c["state"] == "running")
    status = worst_status(chk["status"] for chk in checks)

    expected_in_scope = sorted(n for n in expected if n in scope)
    up = [n for n in expected_in_scope if services[n]["healthy"]]
    parts = ["%d/%d expected services running" % (len(up), len(expected_in_scope))]
    for label, names in (("missing", missing), ("exited", exited), ("restarting", restarting),
                         ("unhealthy", unhealthy)):
        if names:
            parts.append("%s: %s" % (label, ", ".join(names)))
    listed = set(missing) | set(exited) | set(restarting) | set(unhealthy)
    other = ["%s (%s)" % (n, services[n]["status"]) for n in sorted(services)
             if services[n]["status"] != "ok" and n not in listed]
    if other:
        parts.append("not ok: %s" % ", ".join(other))
    parts.append("all healthy" if status == "ok" else "status %s" % status)

    return dict(available=True, project=project, project_found=True, status=status, summary="; ".join(parts),
                expected_services=sorted(expected), expected_source=source, missing=missing, exited=exited,
                restarting=restarting, unhealthy=unhealthy, services=services, containers=containers,
                checks=checks, stats_sampled=bool(params["stats"]),
                duration_seconds=round(time.monotonic() - started, 3))


def run(module):
    """The module's work for an AnsibleModule-like object (params, fail_json, exit_json, no_log_values);
    health_gather calls it in-process with its own."""
    check_docker_sdk(module)
    validate_common(module)
    validate_non_negative(module, module.params, ["restart_count_warning", "memory_percent_warning",
                                                  "memory_percent_critical", "cpu_percent_warning",
                                                  "cpu_percent_critical"])
    project = module.params["project"]
    client, reason = connect(module)
    if client is None:
        module.exit_json(**unavailable_result(reason, project=project, status="unknown", summary=reason))
    try:
        result = gather(module, client)
    except DOCKER_ERRORS as exc:
        reason = docker_error_reason(exc, module.params["docker_host"])
        module.exit_json(**unavailable_result(reason, project=project, status="unknown", summary=reason))
    finally:
        client.close()
    module.exit_json(changed=False, **json_safe(result))


def main():
    run(AnsibleModule(argument_spec=build_argument_spec(), supports_check_mode=True))


if __name__ == "__main__":
    main()
