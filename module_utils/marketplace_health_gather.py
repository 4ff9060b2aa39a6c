# One process for the whole health check (library/health_gather.py keeps the documentation and main(); its action
# plugin runs this code in the task's worker process): the gathers of http_probe, postgres_health, redis_health,
# compose_logs, compose_status and host_resources run side by side in threads.
from __future__ import annotations

import threading
import time
import traceback

# Each part is the code of a health module, in module_utils/marketplace_<module>.py. host_resources needs nothing
# beyond the standard library; the other parts' code (the Docker SDK, psycopg, redis-py: about half a second of
# imports) is imported once the host's CPU window is running.
from ansible.module_utils import marketplace_host_resources
from ansible.module_utils.common.arg_spec import ArgumentSpecValidator
from ansible.module_utils.marketplace_common import early_no_log_values  # noqa: F401 (the action uses it)

PART_MODULES = {
    "http": "http_probe",
    "postgres": "postgres_health",
    "redis": "redis_health",
    "logs": "compose_logs",
    "compose": "compose_status",
    "host": "host_resources",
}


def part_module(name):
    """The code of a part (module_utils/marketplace_<module>.py). Literal imports, one per part, so that AnsiballZ
    packs them (it follows import statements) and so that each library is imported only when its part is about to
    start."""
    if name == "host":
        return marketplace_host_resources
    if name == "compose":
        from ansible.module_utils import marketplace_compose_status
        return marketplace_compose_status
    if name == "http":
        from ansible.module_utils import marketplace_http_probe
        return marketplace_http_probe
    if name == "postgres":
        from ansible.module_utils import marketplace_postgres_health
        return marketplace_postgres_health
    if name == "redis":
        from ansible.module_utils import marketplace_redis_health
        return marketplace_redis_health
    from ansible.module_utils import marketplace_compose_logs
    return marketplace_compose_logs


# The order the parts start in: the ones with a sampling window first, so that the imports and probes of the
# others run inside those windows.
START_ORDER = ("host", "compose", "http", "postgres", "redis", "logs")


class PartDone(Exception):
    """Raised by PartModule.exit_json / fail_json: ends a part with its result."""

    def __init__(self, result):
        super().__init__(result.get("msg", "done"))
        self.result = result


class PartModule:
    """What the health modules' run(module) needs of an AnsibleModule, for one part run in a thread; also what
    gather() needs of its module when the action plugin runs it in-process (action_plugins/health_gather.py)."""

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
    spec = {name: dict(type="dict") for name in PART_MODULES}
    spec["timeout"] = dict(type="float", default=60.0)
    return spec


def validate_part(module, name):
    """One part's options against its module's argument spec: the validated parameters, or an error string."""
    result = ArgumentSpecValidator(part_module(name).build_argument_spec()).validate(module.params[name])
    module.no_log_values.update(result._no_log_values)
    if result.error_messages:
        return None, "%s: %s" % (name, "; ".join(result.error_messages))
    params = result.validated_parameters
    if name == "host":
        params["exclude_self"] = True  # the other parts run during its CPU window
    return params, None


def run_part(name, params, check_mode, no_log_values, box):
    box["started"] = time.time()
    began = time.monotonic()
    try:
        part_module(name).run(PartModule(params, check_mode, no_log_values))
        box["result"] = dict(failed=True, msg="%s ended without a result" % name)
    except PartDone as done:
        box["result"] = done.result
    except Exception as exc:  # a bug in a part must not take the others down: report it with its origin
        frame = traceback.extract_tb(exc.__traceback__)[-1]
        box["result"] = dict(failed=True, msg="%s: unexpected %s: %s (%s:%d)" % (
            name, type(exc).__name__, exc, frame.filename.rsplit("/", 1)[-1], frame.lineno))
    box["seconds"] = round(time.monotonic() - began, 3)


def gather(module):
    """Validate and start the parts one after the other (START_ORDER), each as soon as its module is imported."""
    timeout = module.params["timeout"]
    if timeout <= 0:
        module.fail_json(msg="timeout must be positive")
    wanted = [name for name in PART_MODULES if module.params[name] is not None]
    if not wanted:
        module.fail_json(msg="no part to run: give at least one of %s" % ", ".join(PART_MODULES))
    started = time.monotonic()
    boxes, threads, problems = {}, {}, []

    def start(name, params):
        boxes[name] = {}
        thread = threading.Thread(target=run_part, name="part-" + name, daemon=True,
                                  args=(name, params, module.check_mode, module.no_log_values, boxes[name]))
        thread.start()
        threads[name] = thread

    validated = {}
    for name in START_ORDER:
        if name not in wanted:
            continue
        params, problem = validate_part(module, name)
        if problem:
            problems.append(problem)
        elif not problems:
            validated[name] = params
            start(name, params)  # read-only: abandoned with the process if a later part's options are bad
    if problems:
        module.fail_json(msg="invalid options: " + " | ".join(problems))
    for thread in threads.values():
        thread.join(max(0.0, timeout - (time.monotonic() - started)))

    result, timings, failed = {}, {}, []
    for name in wanted:
        box = boxes[name]
        part = box.get("result")
        if part is None or threads[name].is_alive():
            part = dict(failed=True, msg="%s did not finish within %g s" % (name, timeout))
        if part.get("failed"):
            failed.append(name)
            judge = getattr(part_module(name), "failed_report_checks", None)
            if judge is not None:  # what the report lists for a part that could not measure
                part = dict(part, report_checks=judge(validated[name], part.get("msg") or "no answer"))
        result[name] = part
        timings[name] = dict(started=round(box.get("started", 0.0), 3), seconds=box.get("seconds"))
    return dict(result, timings=timings, failed_parts=failed,
                duration_seconds=round(time.monotonic() - started, 3))
