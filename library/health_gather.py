#!/usr/bin/python
# One process for the whole health check: the gathers of http_probe, postgres_health, redis_health,
# compose_logs, compose_status and host_resources run side by side in threads.
from __future__ import annotations

DOCUMENTATION = r"""
---
module: health_gather
short_description: Run several of the health modules' gathers at once, in one process
description:
  - Runs the gathers of M(http_probe), M(postgres_health), M(redis_health), M(compose_logs), M(compose_status)
    and M(host_resources) in threads of one process, each with the options it takes as a module, and returns
    each result under its part's name exactly as the module returns it. A health check then pays for one
    Python start-up instead of six, and the slow parts (the Docker daemon's container stats, the host CPU
    window) overlap with the quick ones.
  - A part whose option is omitted (or null) is not run. Every part's options are validated against that
    module's own argument spec before anything runs; a bad option fails the whole task, naming the part.
  - The C(host) part starts when every other part except C(compose) is done, so the probes' own work does not
    count as host CPU load; its CPU window overlaps with the container stats sample.
  - A part that fails (the module would have failed) returns C(failed=true) and C(msg) under its name; the
    other parts are unaffected and this module does not fail. A part still running after I(timeout) seconds is
    reported the same way.
  - Options that a part's module rejects in its own checks, after its argument spec (an unknown section, a bad
    regular expression), make that part fail the same way.
  - Secrets in the parts' options (the modules' C(no_log) options such as passwords) are masked in the result
    as they are for the modules themselves.
  - Read-only, like the modules it runs; check mode gathers the same.
  - The modules' code is imported from the project's C(library/) directory, which C(ansible.cfg) puts on the
    C(module_utils) path as well (C(module_utils = module_utils:library)).
version_added: "1.0.0"
author: Equipment Marketplace operations
options:
  http:
    description: Options of M(http_probe) (C(probes) and the rest); the result is http_probe's.
    type: dict
  postgres:
    description: Options of M(postgres_health); the result is postgres_health's.
    type: dict
  redis:
    description: Options of M(redis_health); the result is redis_health's.
    type: dict
  logs:
    description: Options of M(compose_logs); the result is compose_logs'.
    type: dict
  compose:
    description: Options of M(compose_status); the result is compose_status'.
    type: dict
  host:
    description: Options of M(host_resources); the result is host_resources'.
    type: dict
  timeout:
    description: Seconds a part may run; a part still running then is reported as failed.
    type: float
    default: 60
notes:
  - Each part's result is its module's result without C(changed) and C(invocation).
seealso:
  - module: http_probe
  - module: postgres_health
  - module: redis_health
  - module: compose_logs
  - module: compose_status
  - module: host_resources
"""

EXAMPLES = r"""
- name: PostgreSQL, Redis and the front door in one task
  health_gather:
    http:
      probes:
        - {name: api_health, url: "http://127.0.0.1:58080/api/health"}
    postgres:
      login_host: 127.0.0.1
      login_port: 55432
      login_user: postgres
      login_password: "{{ marketplace_db_password }}"
      sections: [connections]
    redis:
      login_host: 127.0.0.1
      login_port: 56379
      login_password: "{{ marketplace_redis_password }}"
      sections: [memory]
      sample_seconds: 0
  register: gathered

- name: Show the PostgreSQL connections check
  ansible.builtin.debug:
    var: gathered.postgres.checks.connections
"""

RETURN = r"""
http:
  description: M(http_probe)'s result, or C(failed) and C(msg) when that part failed.
  returned: when the http part ran
  type: dict
postgres:
  description: M(postgres_health)'s result, or C(failed) and C(msg) when that part failed.
  returned: when the postgres part ran
  type: dict
redis:
  description: M(redis_health)'s result, or C(failed) and C(msg) when that part failed.
  returned: when the redis part ran
  type: dict
logs:
  description: M(compose_logs)' result, or C(failed) and C(msg) when that part failed.
  returned: when the logs part ran
  type: dict
compose:
  description: M(compose_status)' result, or C(failed) and C(msg) when that part failed.
  returned: when the compose part ran
  type: dict
host:
  description: M(host_resources)' result, or C(failed) and C(msg) when that part failed.
  returned: when the host part ran
  type: dict
timings:
  description: Per part that ran, when it started (seconds since the epoch) and how long it took.
  returned: always
  type: dict
  sample: {postgres: {started: 1795046400.12, seconds: 0.031}}
failed_parts:
  description: Names of the parts that failed or timed out.
  returned: always
  type: list
  elements: str
duration_seconds:
  description: Wall time of all the parts together.
  returned: always
  type: float
"""

import threading
import time
import traceback

# The health modules themselves come first: library/ is on the module_utils path too (see ansible.cfg).
from ansible.module_utils import compose_logs, compose_status, host_resources, http_probe, postgres_health, redis_health
from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.common.arg_spec import ArgumentSpecValidator

PARTS = {
    "http": http_probe,
    "postgres": postgres_health,
    "redis": redis_health,
    "logs": compose_logs,
    "compose": compose_status,
    "host": host_resources,
}
# The host part measures CPU: it waits for these, so their work is not counted as the host's load.
QUICK_PARTS = ("http", "postgres", "redis", "logs")


class PartDone(Exception):
    """Raised by PartModule.exit_json / fail_json: ends a part with its result."""

    def __init__(self, result):
        super().__init__(result.get("msg", "done"))
        self.result = result


class PartModule:
    """What the health modules' run(module) needs of an AnsibleModule, for one part run in a thread."""

    def __init__(self, params, check_mode, no_log_values):
        self.params = params
        self.check_mode = check_mode
        self.no_log_values = no_log_values  # shared with the real module: masked in the final result

    def exit_json(self, **result):
        result.pop("changed", None)
        raise PartDone(result)

    def fail_json(self, msg, **result):
        raise PartDone(dict(result, failed=True, msg=msg))


def build_argument_spec():
    spec = {name: dict(type="dict") for name in PARTS}
    spec["timeout"] = dict(type="float", default=60.0)
    return spec


def validate_parts(module):
    """Each part's options against its module's argument spec; returns {part: validated params}."""
    validated, problems = {}, []
    for name, mod in PARTS.items():
        options = module.params[name]
        if options is None:
            continue
        result = ArgumentSpecValidator(mod.build_argument_spec()).validate(options)
        module.no_log_values.update(result._no_log_values)
        if result.error_messages:
            problems.append("%s: %s" % (name, "; ".join(result.error_messages)))
            continue
        validated[name] = result.validated_parameters
    if problems:
        module.fail_json(msg="invalid options: " + " | ".join(problems))
    if not validated:
        module.fail_json(msg="no part to run: give at least one of %s" % ", ".join(PARTS))
    if module.params["timeout"] <= 0:
        module.fail_json(msg="timeout must be positive")
    return validated


def run_part(name, params, check_mode, no_log_values, box):
    box["started"] = time.time()
    began = time.monotonic()
    try:
        PARTS[name].run(PartModule(params, check_mode, no_log_values))
        box["result"] = dict(failed=True, msg="%s ended without a result" % name)
    except PartDone as done:
        box["result"] = done.result
    except Exception as exc:  # a bug in a part must not take the others down: report it with its origin
        frame = traceback.extract_tb(exc.__traceback__)[-1]
        box["result"] = dict(failed=True, msg="%s: unexpected %s: %s (%s:%d)" % (
            name, type(exc).__name__, exc, frame.filename.rsplit("/", 1)[-1], frame.lineno))
    box["seconds"] = round(time.monotonic() - began, 3)


def gather(module, validated):
    timeout = module.params["timeout"]
    started = time.monotonic()
    boxes = {name: {} for name in validated}
    threads = {}

    def start(name):
        thread = threading.Thread(target=run_part, name="part-" + name, daemon=True,
                                  args=(name, validated[name], module.check_mode, module.no_log_values,
                                        boxes[name]))
        thread.start()
        threads[name] = thread

    for name in validated:
        if name != "host":
            start(name)
    if "host" in validated:
        for name in QUICK_PARTS:
            if name in threads:
                threads[name].join(max(0.0, timeout - (time.monotonic() - started)))
        start("host")
    for thread in threads.values():
        thread.join(max(0.0, timeout - (time.monotonic() - started)))

    result, timings, failed = {}, {}, []
    for name in PARTS:
        if name not in validated:
            continue
        box = boxes[name]
        part = box.get("result")
        if part is None or threads[name].is_alive():
            part = dict(failed=True, msg="%s did not finish within %g s" % (name, timeout))
        if part.get("failed"):
            failed.append(name)
        result[name] = part
        timings[name] = dict(started=round(box.get("started", 0.0), 3), seconds=box.get("seconds"))
    return dict(result, timings=timings, failed_parts=failed,
                duration_seconds=round(time.monotonic() - started, 3))


def main():
    module = AnsibleModule(argument_spec=build_argument_spec(), supports_check_mode=True)
    validated = validate_parts(module)
    module.exit_json(changed=False, **gather(module, validated))


if __name__ == "__main__":
    main()
