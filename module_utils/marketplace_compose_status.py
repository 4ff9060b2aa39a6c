# State, health, restarts and resource use of the containers of a compose project, from the Docker SDK.
# The code of library/compose_status.py (which keeps the documentation and main()); also a part of health_gather.
from __future__ import annotations

import datetime
import time

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
from ansible.module_utils.marketplace_proc import (
    CgroupUnavailable,
    cgroup_mounts,
    host_memory_bytes,
    locate_cgroup,
    online_cpus,
    read_cgroup_cpu_ns,
    read_cgroup_memory,
    read_cgroup_pids,
)

ZERO_TIME = "0001-01-01T00:00:00Z"
NOT_RUNNING = ("exited", "dead", "created", "paused", "removing")
STATS_METHODS = ("auto", "cgroup", "daemon")
STATS_WINDOW_DEFAULT = 0.5
STATS_WINDOW_MIN = 0.1
STATS_WINDOW_MAX = 10.0


def build_argument_spec():
    return docker_argument_spec(
        expected_services=dict(type="list", elements="str", default=[]),
        stats=dict(type="bool", default=True),
        stats_method=dict(type="str", default="auto", choices=list(STATS_METHODS)),
        stats_window=dict(type="float", default=STATS_WINDOW_DEFAULT),
        fail_on_missing_project=dict(type="bool", default=True),
        restart_count_warning=dict(type="int", default=1),
        memory_percent_warning=dict(type="float", default=90.0),
        memory_percent_critical=dict(type="float", default=95.0),
        cpu_percent_warning=dict(type="float"),
        cpu_percent_critical=dict(type="float"),
        critical_services=dict(type="list", elements="str", default=[]),
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


# --------------------------------------------------------------------------------------------- cgroups
#
# The cgroup path reads the same kernel counters the daemon reads (cgroup v1 cpuacct.usage / memory.*, cgroup
# v2 cpu.stat usage_usec / memory.*), directly from /sys/fs/cgroup on the Docker host (the readers are in
# module_utils/marketplace_proc.py), over a window the caller chooses. Nothing here is module-level state:
# readings and samplings are plain values passed from call to call, so other code can call these functions
# in-process (and from several threads).


def _timed_cpu_read(location):
    """(cumulative CPU ns, monotonic ns at the middle of the read)."""
    before = time.monotonic_ns()
    usage = read_cgroup_cpu_ns(location)
    return usage, (before + time.monotonic_ns()) // 2


def start_cgroup_sampling(targets, window=STATS_WINDOW_DEFAULT, proc_root="/proc"):
    """First half of a cgroup sample: locate every target's cgroup and read its CPU counter once.

    ``targets`` are ``(container_id, pid)`` pairs (full id and State.Pid from inspect). Every file the
    sample needs is read once here, so a container whose cgroup is not fully readable is known now.
    Returns a sampling (a plain dict) for finish_cgroup_sampling, which reads again once ``window`` seconds
    have passed since the last first reading: one shared window for all targets. A caller can do other work
    in between. ``sampling["unavailable"]`` maps target index -> reason for the targets that cannot be read.
    """
    sampling = {"window": window, "readings": {}, "unavailable": {}, "deadline_ns": None,
                "host_memory": host_memory_bytes(proc_root), "online_cpus": online_cpus()}
    try:
        mounts = cgroup_mounts(proc_root)
    except OSError as exc:
        mounts, reason = [], "cannot read %s/self/mountinfo: %s" % (proc_root, exc.strerror or exc)
    else:
        reason = None if mounts else "no cgroup file system is mounted here"
    for index, (container_id, pid) in enumerate(targets):
        if reason:
            sampling["unavailable"][index] = reason
            continue
        try:
            location = locate_cgroup(pid, container_id, mounts, proc_root)
            read_cgroup_memory(location, sampling["host_memory"])  # proves the memory files are readable
            usage, at = _timed_cpu_read(location)
        except CgroupUnavailable as exc:
            sampling["unavailable"][index] = str(exc)
            continue
        except (OSError, ValueError) as exc:
            sampling["unavailable"][index] = "cannot read the cgroup of pid %s: %s" % (
                pid, getattr(exc, "strerror", None) or exc)
            continue
        sampling["readings"][index] = {"location": location, "usage_ns": usage, "at_ns": at}
    if sampling["readings"]:
        sampling["deadline_ns"] = time.monotonic_ns() + int(window * 1e9)
    return sampling


def finish_cgroup_sampling(sampling, memory_limited=None):
    """Second half: wait until the window has passed, read every cgroup again and return
    ``{index: stats}`` with the keys of sample_stats (``cpu_method`` ``cgroup``), or ``{"error": ...}`` for a
    container that stopped meanwhile. ``memory_limited`` maps index -> whether a memory limit is configured.
    CPU% is like `docker stats`: CPU time over wall time, 100 = one full core."""
    results = {}
    if not sampling["readings"]:
        return results
    remaining = sampling["deadline_ns"] - time.monotonic_ns()
    if remaining > 0:
        time.sleep(remaining / 1e9)
    second = {}
    for index, first in sampling["readings"].items():  # every CPU counter first, close together
        try:
            second[index] = _timed_cpu_read(first["location"])
        except (OSError, ValueError) as exc:
            second[index] = exc
    stamp = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    for index, first in sampling["readings"].items():
        cpu = second[index]
        try:
            if isinstance(cpu, Exception):
                raise cpu
            memory = read_cgroup_memory(first["location"], sampling["host_memory"])
        except (OSError, ValueError) as exc:
            results[index] = {"error": "cgroup of the container went away during the sample (stopped?): %s"
                              % (getattr(exc, "strerror", None) or exc)}
            continue
        usage_ns, at_ns = cpu
        wall_ns = at_ns - first["at_ns"]
        delta = usage_ns - first["usage_ns"]
        percent = delta / wall_ns * 100.0 if wall_ns > 0 and delta >= 0 else None
        mem_usage, mem_limit = memory_usage(memory)
        results[index] = {
            "cpu_percent": round(percent, 2) if percent is not None else None,
            "online_cpus": sampling["online_cpus"],
            "cpu_window_seconds": round(wall_ns / 1e9, 3),
            "cpu_method": "cgroup",
            "memory_usage": mem_usage,
            "memory_limit": mem_limit,
            "memory_percent": round(mem_usage * 100.0 / mem_limit, 2) if mem_usage is not None and mem_limit
            else None,
            "memory_limited": (memory_limited or {}).get(index),
            "pids": read_cgroup_pids(first["location"]),
            "sampled_at": stamp,
            "cgroup_version": first["location"]["version"],
        }
    return results


def _daemon_stats(client, container_id, memory_limited):
    try:
        return sample_stats(client, container_id, memory_limited)
    except DOCKER_ERRORS as exc:
        return {"error": docker_error_reason(exc)}


def sample_container_stats(client, targets, method="auto", window=STATS_WINDOW_DEFAULT, proc_root="/proc"):
    """One CPU%/memory sample per running container, all over one shared window.

    ``targets`` are ``(container_id, pid, memory_limited)`` (full id, State.Pid, HostConfig.Memory set).
    ``method``: ``cgroup`` reads the counters from /sys/fs/cgroup over ``window`` seconds (a container that
    cannot be read gets ``{"error": ...}``); ``daemon`` takes the daemon's stats (sample_stats, 1-2 s);
    ``auto`` uses the cgroup where it is readable and the daemon for the rest (its entries say why in
    ``fallback_reason``), those daemon reads running while the cgroup window elapses.
    Returns the stats dicts in the order of ``targets``.
    """
    results = [None] * len(targets)
    memory_limited = {i: t[2] for i, t in enumerate(targets)}
    if method == "daemon":
        daemon = list(range(len(targets)))
        sampling, reasons = None, {}
    else:
        sampling = start_cgroup_sampling([(t[0], t[1]) for t in targets], window, proc_root)
        reasons = sampling["unavailable"]
        if method == "cgroup":
            for index, reason in reasons.items():
                results[index] = {"error": "cgroup sample impossible: %s" % reason}
            daemon = []
        else:
            daemon = sorted(reasons)
    sampled = parallel_map(lambda i: _daemon_stats(client, targets[i][0], targets[i][2]), daemon, max_workers=32)
    for index, stats in zip(daemon, sampled, strict=True):
        if isinstance(stats, BaseException):
            raise stats
        if index in reasons and "error" not in stats:
            stats["fallback_reason"] = reasons[index]
        results[index] = stats
    if sampling is not None:
        for index, stats in finish_cgroup_sampling(sampling, memory_limited).items():
            results[index] = stats
    return results


# ----------------------------------------------------------------------------------------- containers


def describe_container(client, summary, want_stats, now):
    """Inspect one container and, when it runs, sample its stats through the daemon (runs in a worker thread).

    gather inspects first (inspect_entry) and samples all containers together (sample_container_stats)."""
    entry, info = inspect_entry(client, summary, now)
    if want_stats and entry["state"] == "running":
        entry["stats"] = _daemon_stats(client, summary["Id"], bool((info.get("HostConfig") or {}).get("Memory")))
    return entry


def inspect_entry(client, summary, now):
    """``(entry, inspect data)`` of one container, ``entry["stats"]`` None (runs in a worker thread)."""
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
    return entry, info


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


def report_checks(checks, critical_services):
    """``checks`` in the run report's form: a critical ``service:`` check gets the runbook severity (P1 for a
    critical service, P2 for the others); components are already the services."""
    out = []
    for chk in checks:
        kind, _, subject = chk["name"].partition(":")
        chk = dict(chk)
        if kind == "service" and chk["status"] == "critical":
            chk["severity"] = "P1" if subject in critical_services else "P2"
        out.append(chk)
    return out


def unavailable_checks(reason):
    """The report check when the compose state is unknown (the daemon did not answer, or the gather failed)."""
    return [dict(name="compose", status="critical", value=False, threshold=True, component="docker", severity="P1",
                 message="compose state unknown: %s" % (reason or "the Docker daemon did not answer"))]


def failed_report_checks(params, msg):
    """health_gather: the report checks of a part that failed (``msg`` says why)."""
    return unavailable_checks(msg)


def stats_options(params):
    """``(stats_method, stats_window)`` of a params dict (defaults for a dict without them), or ValueError."""
    method = params.get("stats_method") or "auto"
    window = params.get("stats_window")
    window = STATS_WINDOW_DEFAULT if window is None else float(window)
    if method not in STATS_METHODS:
        raise ValueError("stats_method must be one of %s, not %r" % (", ".join(STATS_METHODS), method))
    if not STATS_WINDOW_MIN <= window <= STATS_WINDOW_MAX:
        raise ValueError("stats_window must be between %s and %s seconds, not %s"
                         % (STATS_WINDOW_MIN, STATS_WINDOW_MAX, window))
    return method, window


def validate_stats_options(module):
    """fail_json for a stats_method or stats_window out of range (before anything is contacted)."""
    try:
        stats_options(module.params)
    except ValueError as exc:
        module.fail_json(msg=str(exc))


def gather(module, client):
    params = module.params
    validate_stats_options(module)  # callers in-process may come here without run()
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
                    report_checks=[dict(name="project:%s" % project, component=project,
                                        **check("critical", 0, None, msg))],
                    stats_sampled=False, stats_methods={}, stats_window_seconds=None,
                    duration_seconds=round(time.monotonic() - started, 3))

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
    described = parallel_map(lambda s: inspect_entry(client, s, now), selected, max_workers=32)
    containers, running = [], []
    for item in described:
        if isinstance(item, NotFound):  # removed between list and inspect
            continue
        if isinstance(item, BaseException):
            raise item
        entry, info = item
        containers.append(entry)
        if params["stats"] and entry["state"] == "running":
            running.append((entry, info))
    method, window = stats_options(params)
    if running:
        sampled = sample_container_stats(
            client, [(info.get("Id"), (info.get("State") or {}).get("Pid"),
                      bool((info.get("HostConfig") or {}).get("Memory"))) for _entry, info in running],
            method=method, window=window)
        for (entry, _info), stats in zip(running, sampled, strict=True):
            entry["stats"] = stats
    methods = {}
    for entry, _info in running:
        cpu_method = (entry["stats"] or {}).get("cpu_method")
        if cpu_method:
            methods[cpu_method] = methods.get(cpu_method, 0) + 1
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
                checks=checks, report_checks=report_checks(checks, params["critical_services"]),
                stats_sampled=bool(params["stats"]), stats_methods=methods,
                stats_window_seconds=window if methods.get("cgroup") else None,
                duration_seconds=round(time.monotonic() - started, 3))


def run(module):
    """The module's work for an AnsibleModule-like object (params, fail_json, exit_json, no_log_values);
    health_gather calls it in-process with its own."""
    check_docker_sdk(module)
    validate_common(module)
    validate_non_negative(module, module.params, ["restart_count_warning", "memory_percent_warning",
                                                  "memory_percent_critical", "cpu_percent_warning",
                                                  "cpu_percent_critical"])
    validate_stats_options(module)
    project = module.params["project"]
    client, reason = connect(module)
    if client is None:
        module.exit_json(**unavailable_result(reason, project=project, status="unknown", summary=reason,
                                              report_checks=unavailable_checks(reason)))
    try:
        result = gather(module, client)
    except DOCKER_ERRORS as exc:
        reason = docker_error_reason(exc, module.params["docker_host"])
        module.exit_json(**unavailable_result(reason, project=project, status="unknown", summary=reason,
                                              report_checks=unavailable_checks(reason)))
    finally:
        client.close()
    module.exit_json(changed=False, **json_safe(result))
