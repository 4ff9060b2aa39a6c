#!/usr/bin/python
# Whether the environment variables a compose service needs are set in its containers - never their values.
from __future__ import annotations

DOCUMENTATION = r"""
---
module: container_env_check
short_description: Whether required environment variables are set, empty or unset in a compose service's containers
description:
  - Reads C(Config.Env) of the containers of a Docker compose project (selected by the compose labels,
    running or not, so a container that exits at startup is read too) through the Docker SDK for Python
    and reports, for every variable in I(variables), whether it is C(set), C(empty) or C(unset), and the
    length of a set value.
  - Values never leave the module. The environment is reduced to names and lengths inside the module, so
    nothing secret is registered, printed or written to an event or a report, whatever the variable holds.
  - An unset or empty required variable is a C(critical) check of its service.
  - Read-only; check mode reads the same. When the daemon cannot be reached the result is
    C(available=false) with a reason, not a failure.
version_added: "1.0.0"
author: Equipment Marketplace operations
extends_documentation_fragment:
  - marketplace_docker
options:
  services:
    description:
      - Services whose containers are checked (default every service of the project). A listed service
        without any container is reported with a C(critical) check.
    type: list
    elements: str
    default: []
  variables:
    description:
      - Names of the variables that must be set to a non-empty value.
    type: list
    elements: str
    default: [DATABASE_URL, REDIS_URL, JWT_SECRET]
  include_oneoff:
    description:
      - Also check one-off containers (C(docker compose run)).
    type: bool
    default: false
notes:
  - The length of a value is reported (as the runbook's "set/unset/length" check does); the value
    itself, or any part of it, never is.
  - C(Config.Env) is the environment the container was created with; variables an entrypoint exports
    later are not seen.
"""

EXAMPLES = r"""
- name: Does the backend have what it needs to start?
  container_env_check:
    project: equipment-marketplace
    services: [backend]
  register: backend_env
  changed_when: false
  check_mode: false

- name: More variables, every service
  container_env_check:
    project: "{{ marketplace_compose_project }}"
    variables: [DATABASE_URL, REDIS_URL, JWT_SECRET, S3_BUCKET, SMTP_HOST]

- name: Stop when a variable is missing
  ansible.builtin.fail:
    msg: "missing: {{ backend_env.missing | join(', ') }}"
  when: backend_env.missing | length > 0
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
  sample: equipment-marketplace
required:
  description: The variables that were checked.
  returned: always
  type: list
  elements: str
containers:
  description:
    - One entry per container - C(name), C(service), C(state), C(exit_code), C(env_count) (number of
      variables in its environment), C(variables) (per required name C({state, length}) with C(state)
      one of C(set), C(empty), C(unset) and C(length) null unless set), C(missing) (unset names) and
      C(empty) (names set to an empty value).
  returned: when available
  type: list
  elements: dict
  sample:
    - name: equipment-marketplace-backend-1
      service: backend
      state: restarting
      exit_code: 78
      env_count: 9
      variables:
        DATABASE_URL: {state: set, length: 92}
        JWT_SECRET: {state: unset, length: null}
      missing: [JWT_SECRET]
      empty: []
services:
  description:
    - Per service - C(containers) (names), C(missing) and C(empty) (names unset or empty in any of its
      containers) and C(status).
  returned: when available
  type: dict
  sample:
    backend: {containers: [equipment-marketplace-backend-1], missing: [JWT_SECRET], empty: [], status: critical}
missing:
  description: Required names unset in at least one checked container.
  returned: when available
  type: list
  elements: str
empty:
  description: Required names set to an empty value in at least one checked container.
  returned: when available
  type: list
  elements: str
checks:
  description:
    - Report checks C(env:<service>:<NAME>) (C(ok) when set in every container of the service, else
      C(critical)), and C(env:<service>) (critical) for a listed service without containers.
  returned: when available
  type: list
  elements: dict
status:
  description: Worst status of the checks (C(unknown) when the daemon is unavailable).
  returned: always
  type: str
  sample: critical
summary:
  description: "One line, for example C(backend: JWT_SECRET unset)."
  returned: always
  type: str
"""

from ansible.module_utils.marketplace_common import json_safe, worst_status
from ansible.module_utils.marketplace_docker import (
    DOCKER_ERRORS,
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

DEFAULT_REQUIRED = ["DATABASE_URL", "REDIS_URL", "JWT_SECRET"]


def build_argument_spec():
    return docker_argument_spec(
        variables=dict(type="list", elements="str", default=list(DEFAULT_REQUIRED)),
        include_oneoff=dict(type="bool", default=False),
    )


def env_presence(env_list, required):
    """Reduce ``Config.Env`` (``["NAME=value", ...]``) to ``{name: {state, length}}`` for the required names.

    The values are dropped here; nothing but names and lengths is returned.
    """
    lengths = {}
    for item in env_list or []:
        name, sep, value = str(item).partition("=")
        if sep:
            lengths[name] = len(value)
        else:  # "NAME" without "=" is passed through from the caller's environment when unset there
            lengths.setdefault(name, None)
    out = {}
    for name in required:
        if name not in lengths or lengths[name] is None:
            out[name] = {"state": "unset", "length": None}
        elif lengths[name] == 0:
            out[name] = {"state": "empty", "length": 0}
        else:
            out[name] = {"state": "set", "length": lengths[name]}
    return out, len(lengths)


def describe(client, summary, required):
    info = client.inspect_container(summary["Id"])
    state = info.get("State") or {}
    status = state.get("Status") or summary.get("State")
    if state.get("Restarting"):
        status = "restarting"
    variables, count = env_presence((info.get("Config") or {}).get("Env"), required)
    return {
        "name": container_name(info),
        "service": container_service(summary),
        "state": status,
        "exit_code": state.get("ExitCode"),
        "env_count": count,
        "variables": variables,
        "missing": [n for n in required if variables[n]["state"] == "unset"],
        "empty": [n for n in required if variables[n]["state"] == "empty"],
    }


def gather(module, client):
    params = module.params
    project = params["project"]
    required = []
    for name in params["variables"]:
        if name not in required:
            required.append(name)
    wanted = list(params["services"] or [])
    summaries = list_project_containers(client, project, include_oneoff=params["include_oneoff"])
    if wanted:
        summaries = [s for s in summaries if container_service(s) in wanted]
    containers = sorted((describe(client, s, required) for s in summaries),
                        key=lambda c: (c["service"] or "", c["name"]))
    services = {}
    for svc in wanted or sorted({c["service"] for c in containers}):
        mine = [c for c in containers if c["service"] == svc]
        missing = sorted({n for c in mine for n in c["missing"]}, key=required.index)
        empty = sorted({n for c in mine for n in c["empty"]}, key=required.index)
        services[svc] = {"containers": [c["name"] for c in mine], "missing": missing, "empty": empty,
                         "status": "critical" if (missing or empty or not mine) else "ok"}
    checks = []
    for svc in services:
        mine = [c for c in containers if c["service"] == svc]
        if not mine:
            checks.append({"name": "env:%s" % svc, "component": svc, "status": "critical", "value": None,
                           "threshold": "set", "message": "service %s has no container to read the environment of"
                           % svc})
            continue
        for name in required:
            states = sorted({c["variables"][name]["state"] for c in mine})
            if states == ["set"]:
                lengths = sorted({c["variables"][name]["length"] for c in mine})
                status, value = "ok", "set"
                message = "%s is set in %s (%s characters)" % (name, svc, "/".join(map(str, lengths)))
            else:
                status, value = "critical", "/".join(s for s in states if s != "set")
                message = "%s is %s in %s (%s)" % (
                    name, value, svc, ", ".join("%s: %s" % (c["name"], c["variables"][name]["state"]) for c in mine))
            checks.append({"name": "env:%s:%s" % (svc, name), "component": svc, "status": status,
                           "value": value, "threshold": "set", "message": message})
    missing = sorted({n for c in containers for n in c["missing"]}, key=required.index)
    empty = sorted({n for c in containers for n in c["empty"]}, key=required.index)
    problems = ["%s: %s" % (svc, ", ".join(["%s unset" % n for n in info["missing"]]
                                           + ["%s empty" % n for n in info["empty"]]
                                           or ["no container"]))
                for svc, info in services.items() if info["status"] != "ok"]
    summary = "; ".join(problems) if problems else "all of %s set in %s" % (
        ", ".join(required), ", ".join(services) or "no container")
    return dict(available=True, project=project, required=required, containers=containers, services=services,
                missing=missing, empty=empty, checks=checks,
                status=worst_status(c["status"] for c in checks), summary=summary)


def main():
    module = MarketplaceModule(argument_spec=build_argument_spec(), supports_check_mode=True)
    check_docker_sdk(module)
    validate_common(module)
    bad = [n for n in module.params["variables"] if not n or "=" in n or not n.strip()]
    if bad:
        module.fail_json(msg="variables holds invalid variable names (empty or containing '=')")
    project = module.params["project"]
    client, reason = connect(module)
    if client is None:
        module.exit_json(**unavailable_result(reason, project=project, required=module.params["variables"],
                                              status="unknown", summary=reason))
    try:
        result = gather(module, client)
    except DOCKER_ERRORS as exc:
        reason = docker_error_reason(exc, module.params["docker_host"])
        module.exit_json(**unavailable_result(reason, project=project, required=module.params["variables"],
                                              status="unknown", summary=reason))
    finally:
        client.close()
    module.exit_json(changed=False, **json_safe(result))


if __name__ == "__main__":
    main()
