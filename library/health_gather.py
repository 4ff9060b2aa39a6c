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
  - A part whose option is omitted (or null) is not run. Each part's options are validated against that module's
    own argument spec, and the part started, as soon as its module is imported; a bad option fails the whole
    task, naming the part (the read-only parts already started are abandoned).
  - The parts with a sampling window start first (C(host), then C(compose)), so that the other parts' imports
    and probes run inside those windows. The C(host) part runs with
    C(exclude_self=true) (see M(host_resources)). This process's own CPU time during the window is counted as
    idle, so the check does not measure itself while the other parts run inside the window.
  - A part that fails (the module would have failed) returns C(failed=true) and C(msg) under its name; the
    other parts are unaffected and this module does not fail. A part still running after I(timeout) seconds is
    reported the same way.
  - Each part's module returns its checks judged, in the form of the run report (C(report_checks)). A failed
    part of M(postgres_health), M(redis_health), M(compose_logs), M(compose_status) or M(host_resources) carries
    C(report_checks) as well, from that module, that say what could not be measured and why (for example
    C(postgres_liveness) critical with the runbook severity P0).
  - Options that a part's module rejects in its own checks, after its argument spec (a bad
    regular expression), make that part fail the same way.
  - Secrets in the parts' options (the modules' C(no_log) options such as passwords, and passwords written in URLs)
    are masked in the result as they are for the modules themselves, also when an option is refused before the
    parts are validated (a bad O(timeout), an unknown option).
  - Read-only, like the modules it runs; check mode gathers the same.
  - Each part is its module's code in the project's C(module_utils/) (C(marketplace_<module>.py)), the code the
    module itself runs.
  - "On a local connection whose C(ansible_python_interpreter) is the controller's own Python (the demo
    inventory), the action plugin of the same name (C(action_plugins/health_gather.py)) runs this code in the
    task's worker process on the controller instead of starting a module process: the same argument specs,
    results, masking and errors, without building the AnsiballZ payload or starting a second Python (about
    half a second). Any other connection, C(become), C(async), an C(environment) keyword, another interpreter
    or the variable C(health_gather_in_process=false) runs it as a module. C(in_process) in the result says
    which way it ran."
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
  - Each part's result is its module's result without C(changed) and C(invocation); a failed part's is
    C(failed), C(msg) and, for the parts named above, C(report_checks).
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
in_process:
  description: Whether the parts ran in the controller's worker process (local connection, the controller's
    Python; see the description) rather than in a module process.
  returned: success
  type: bool
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

from ansible.module_utils.marketplace_health_gather import build_argument_spec, gather
from ansible.module_utils.marketplace_module import MarketplaceModule


def main():
    module = MarketplaceModule(argument_spec=build_argument_spec(), supports_check_mode=True)
    module.exit_json(changed=False, in_process=False, **gather(module))


if __name__ == "__main__":
    main()
