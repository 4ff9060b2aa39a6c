#!/usr/bin/python
# The processes inside compose containers (docker top through the SDK), with CPU over a window, redacted.
from __future__ import annotations

DOCUMENTATION = r"""
---
module: container_processes
short_description: List the top processes inside a compose project's containers (docker top), redacted
description:
  - Runs C(docker top) through the Docker SDK for Python for the running containers of a Docker compose
    project (selected by the compose labels; all services, the chosen I(services), or the named
    I(containers)) and returns their processes sorted by CPU, then memory.
  - When the daemon is local (a C(unix://) socket) and the host's C(/proc) shows the processes, CPU is
    measured between two samples of C(/proc/<pid>/stat) taken I(sample_seconds) apart (C(cpu_method)
    C(sampled)); otherwise it is the lifetime average C(ps) reports (C(ps_lifetime)). 100 = one core.
  - Command lines are redacted before they are returned - the values of the container's secret-looking
    environment variables, passwords in URLs, tokens and C(password=...) pairs - and cut to
    I(command_max_length).
  - Read-only; check mode gathers the same. When the daemon cannot be reached the result is
    C(available=false) with a reason, not a failure.
version_added: "1.0.0"
author: Equipment Marketplace operations
extends_documentation_fragment:
  - marketplace_docker
options:
  services:
    description:
      - Only containers of these services (default all services).
    type: list
    elements: str
    default: []
  containers:
    description:
      - Only these containers (names or ids) of the project. Names that are not containers of the project
        are reported under C(not_found).
    type: list
    elements: str
    default: []
  top:
    description:
      - How many processes to return per container (C(0) for all).
    type: int
    default: 10
  sample_seconds:
    description:
      - Window of the CPU measurement from C(/proc) (C(0) uses the lifetime average of C(ps)).
    type: float
    default: 1.0
  command_max_length:
    description:
      - Command lines are cut to this many characters (after redaction).
    type: int
    default: 300
notes:
  - C(docker top) runs C(ps) on the Docker host; user names are those of the host's user database.
"""

EXAMPLES = r"""
- name: Top processes inside the busiest container
  container_processes:
    project: equipment-marketplace
    containers: [equipment-marketplace-backend-1]
    top: 10
  register: procs
  changed_when: false
  check_mode: false

- name: Every process of the database containers, lifetime CPU only
  container_processes:
    project: "{{ marketplace_compose_project }}"
    services: [postgres]
    top: 0
    sample_seconds: 0
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
project:
  description: The compose project that was read.
  returned: always
  type: str
containers:
  description:
    - Per running container - C(name), C(id) (12 characters), C(service), C(process_count),
      C(cpu_pct) (sum over its processes), C(rss_bytes) (sum), C(cpu_method) (C(sampled),
      C(ps_lifetime), or C(mixed) when some processes could not be sampled), C(exited_during_sample)
      (short-lived processes that ended within the window and are left out) and C(processes), each
      C({pid, user, cpu_pct, rss_bytes, elapsed, command}), busiest first. C(error) instead when
      C(docker top) failed for it.
  returned: when available
  type: list
  elements: dict
busiest:
  description: The process with the highest CPU over all listed containers, with its C(container), or null.
  returned: when available
  type: dict
not_found:
  description: Entries of I(containers) that are not running containers of the project.
  returned: when available
  type: list
  elements: str
summary:
  description: One line naming the busiest process.
  returned: always
  type: str
"""

import os
import time

from ansible.module_utils.marketplace_common import json_safe, validate_non_negative
from ansible.module_utils.marketplace_docker import (
    DOCKER_ERRORS,
    Redactor,
    check_docker_sdk,
    connect,
    container_name,
    container_service,
    docker_argument_spec,
    docker_error_reason,
    list_project_containers,
    unavailable_result,
    validate_common,
)
from ansible.module_utils.marketplace_module import MarketplaceModule
from ansible.module_utils.marketplace_proc import PROC, clock_ticks, pid_ticks

PS_ARGS = "-eo pid,user,pcpu,rss,etime,args"


def build_argument_spec():
    return docker_argument_spec(
        containers=dict(type="list", elements="str", default=[]),
        top=dict(type="int", default=10),
        sample_seconds=dict(type="float", default=1.0),
        command_max_length=dict(type="int", default=300),
    )


def _float(text):
    try:
        return float(text)
    except (TypeError, ValueError):
        return None


def _int(text):
    try:
        return int(text)
    except (TypeError, ValueError):
        return None


def read_top(client, summary):
    """docker top of one container -> rows of dicts (command not yet redacted)."""
    top = client.top(summary["Id"], ps_args=PS_ARGS)
    titles = [t.upper() for t in top.get("Titles") or []]
    rows = []
    for values in top.get("Processes") or []:
        rec = dict(zip(titles, values, strict=False))
        rows.append({"pid": _int(rec.get("PID")), "user": rec.get("USER"),
                     "ps_cpu": _float(rec.get("%CPU")), "rss_bytes": (_int(rec.get("RSS")) or 0) * 1024,
                     "elapsed": rec.get("ELAPSED"), "command": rec.get("COMMAND") or rec.get("CMD") or ""})
    return rows


def gather(module, client):
    params = module.params
    project = params["project"]
    summaries = [s for s in list_project_containers(client, project) if s.get("State") == "running"]
    if params["services"]:
        summaries = [s for s in summaries if container_service(s) in params["services"]]
    not_found = []
    if params["containers"]:
        chosen = []
        for want in params["containers"]:
            match = [s for s in summaries if container_name(s) == want.lstrip("/") or s["Id"].startswith(want)]
            if match:
                chosen.extend(m for m in match if m not in chosen)
            else:
                not_found.append(want)
        summaries = chosen

    local = str(params["docker_host"]).startswith("unix://") and os.path.isdir(PROC)
    entries = []
    for s in summaries:
        entry = {"name": container_name(s), "id": s["Id"][:12], "service": container_service(s)}
        try:
            entry["rows"] = read_top(client, s)
            env = (client.inspect_container(s["Id"]).get("Config") or {}).get("Env")
            redactor = Redactor()
            redactor.add_env(env)
            entry["redactor"] = redactor
        except DOCKER_ERRORS as exc:
            entry["error"] = docker_error_reason(exc)
        entries.append(entry)

    window = params["sample_seconds"]
    sampled = local and window > 0
    before = {}
    if sampled:
        for e in entries:
            for r in e.get("rows", []):
                before[r["pid"]] = pid_ticks(r["pid"]) if r["pid"] else None
        started = time.monotonic()
        time.sleep(window)
        window = time.monotonic() - started
        hz = clock_ticks()

    out, busiest = [], None
    for e in entries:
        if "error" in e:
            out.append({k: e[k] for k in ("name", "id", "service", "error")})
            continue
        method = "sampled" if sampled else "ps_lifetime"
        procs, gone = [], 0
        for r in e["rows"]:
            cpu = r["ps_cpu"]
            if sampled:
                after = pid_ticks(r["pid"]) if r["pid"] else None
                if after is not None and before.get(r["pid"]) is not None:
                    cpu = round(100.0 * (after - before[r["pid"]]) / hz / window, 1)
                elif r["pid"] and not os.path.exists(os.path.join(PROC, str(r["pid"]))):
                    gone += 1  # exited during the window (a healthcheck, a cron job): not running now
                    continue
                else:
                    method = "mixed"
            command, _ = e["redactor"].redact_truncated(r["command"], params["command_max_length"])
            procs.append({"pid": r["pid"], "user": r["user"], "cpu_pct": cpu, "rss_bytes": r["rss_bytes"],
                          "elapsed": r["elapsed"], "command": command})
        procs.sort(key=lambda p: (p["cpu_pct"] or 0, p["rss_bytes"]), reverse=True)
        total_cpu = round(sum(p["cpu_pct"] or 0 for p in procs), 1)
        total_rss = sum(p["rss_bytes"] for p in procs)
        if procs and (busiest is None or (procs[0]["cpu_pct"] or 0) > (busiest["cpu_pct"] or 0)):
            busiest = dict(procs[0], container=e["name"])
        shown = procs[: params["top"]] if params["top"] else procs
        out.append({"name": e["name"], "id": e["id"], "service": e["service"], "process_count": len(procs),
                    "exited_during_sample": gone, "cpu_pct": total_cpu, "rss_bytes": total_rss,
                    "cpu_method": method, "processes": shown})

    if busiest:
        summary = "busiest process: pid %s in %s at %s%% CPU: %s" % (
            busiest["pid"], busiest["container"], busiest["cpu_pct"], busiest["command"][:120])
    elif not out:
        summary = "no running container matched"
    else:
        summary = "no process found"
    return dict(available=True, project=project, containers=out, busiest=busiest, not_found=not_found,
                summary=summary)


def main():
    module = MarketplaceModule(argument_spec=build_argument_spec(), supports_check_mode=True)
    check_docker_sdk(module)
    validate_common(module)
    validate_non_negative(module, module.params, ["top", "sample_seconds", "command_max_length"])
    project = module.params["project"]
    client, reason = connect(module)
    if client is None:
        module.exit_json(**unavailable_result(reason, project=project, summary=reason))
    try:
        result = gather(module, client)
    except DOCKER_ERRORS as exc:
        reason = docker_error_reason(exc, module.params["docker_host"])
        module.exit_json(**unavailable_result(reason, project=project, summary=reason))
    finally:
        client.close()
    module.exit_json(changed=False, **json_safe(result))


if __name__ == "__main__":
    main()
