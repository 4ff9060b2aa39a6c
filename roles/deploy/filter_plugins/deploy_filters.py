# Filters of the deploy role. The version check is module_utils/marketplace_inputs.validate_version, the one the
# playbooks' validate_inputs pre_task applies to the public `version`: the role applies it again to the version it
# acts on, whether it came from `version`, from deploy_version or from the deploy history (a rollback target).
from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path

from ansible import constants as C
from ansible.errors import AnsibleFilterError

# module_utils/<name>.py on the controller, through its one loader module_utils/marketplace_controller.py: beside
# this plugin in the repository, else in a module_utils path ansible is configured with.
_spec = importlib.util.spec_from_file_location("marketplace_controller", next((
    p for d in (Path(__file__).resolve().parents[3] / "module_utils", *(C.DEFAULT_MODULE_UTILS_PATH or ()))
    if (p := Path(d, "marketplace_controller.py")).is_file()), "(not found)/marketplace_controller.py"))
_spec.loader.exec_module(_loader := importlib.util.module_from_spec(_spec))
_module_utils = _loader.module_utils
_jinja = _module_utils("marketplace_jinja")


def deploy_version_error(value, name="version"):
    """'' when ``value`` is a valid release version (image tag), else the one-line reason it is refused."""
    inputs = _module_utils("marketplace_inputs")
    try:
        inputs.validate_version(value, name)
    except inputs.InputError as exc:
        return str(exc)
    return ""


# Values shorter than this are not masked: "1" (BROKEN_HEALTH=1) would mask every digit of a message.
MASK_MIN_LENGTH = 4


def deploy_redact(text, values):
    """``text`` with every value of ``values`` (build-arg values) of MASK_MIN_LENGTH characters or more masked."""
    text = "" if text is None else str(text)
    for value in sorted((str(v) for v in values or [] if v is not None), key=len, reverse=True):
        if len(value) >= MASK_MIN_LENGTH:
            text = text.replace(value, "********")
    return text


# --- The deploy role's decisions (issue 11: the Jinja macros of vars/main.yml and the long task expressions) ----
# Each function takes plain data (the registered results, the role's options) and returns plain data; the task
# files gather, act and report. The texts are the ones the role printed before, word for word.

# jinja2's truncate with Ansible's defaults (leeway 5): the role's texts were cut with it.
# How the role drives compose (the plan and the report name it).
COMPOSE_MODULE = "community.docker.docker_compose_v2"


_truncate = _jinja.truncate


def _or(value, fallback):
    """Jinja's ``default(fallback, true)``: the fallback for an empty or false value."""
    return value if value else fallback


def deploy_images(containers):
    """{service: {image, image_id}} of the first container of each service (the images the services run)."""
    out = {}
    for c in containers or []:
        if c.get("service") not in out:
            out[c.get("service")] = {"image": c.get("image"), "image_id": c.get("image_id")}
    return out


def deploy_seen(containers, services, gate_images=None):
    """The containers of ``services`` judged against the gate's target ``gate_images`` ({service: {image_id}}).

    missing: services without a running container; broken: exited, dead, restarting or unhealthy containers;
    starting: health still starting; wrong_image: containers of a gated service on another image id.
    ready: none of those; settled: ready, or definitely wrong (broken or wrong image) - a wait ends there.
    """
    gate_images = gate_images or {}
    app = [c for c in containers or [] if c.get("service") in services]
    running = {c.get("service") for c in app if c.get("state") == "running"}
    missing = [s for s in services if s not in running]
    broken, names = [], set()
    for c in [c for c in app if c.get("state") in ("exited", "dead", "restarting")] + \
            [c for c in app if c.get("health") == "unhealthy"]:
        if c.get("name") not in names:
            names.add(c.get("name"))
            broken.append(c)
    starting = [c for c in app if c.get("health") == "starting"]
    wanted = [i.get("image_id") for i in gate_images.values()]
    wrong = [c for c in app if c.get("service") in gate_images and c.get("image_id") not in wanted]
    ready = not (missing or broken or starting or wrong)
    return {"app": app, "missing": missing, "broken": broken, "starting": starting, "wrong_image": wrong,
            "ready": ready, "settled": ready or bool(broken) or bool(wrong), "images": deploy_images(containers)}


def deploy_env_value(text, name):
    """The value the env file ``text`` gives ``name`` (the last assignment, quotes trimmed); '' when unset."""
    values = re.findall(r"(?m)^" + re.escape(str(name)) + r"=(.*)$", text or "")
    return values[-1].strip(" \"'") if values else ""


def deploy_history(text):
    """The deploy history (JSON lines) as a list of objects; lines that are not objects are skipped."""
    out = []
    for number, line in enumerate((text or "").splitlines(), 1):
        line = line.strip()
        if not line.startswith("{"):
            continue
        try:
            entry = json.loads(line)
        except ValueError as exc:
            raise AnsibleFilterError("deploy history line %d is not JSON: %s" % (number, exc)) from None
        if isinstance(entry, dict):
            out.append(entry)
    return out


def deploy_recorded_ids(entries, release_images, version):
    """{service: image id} recorded for ``version``: the last entry (of ``entries``, each with ``images``) whose
    image of a release service is <repository>:<version> with an id."""
    out = {}
    for entry in entries or []:
        images = entry.get("images") or {}
        for svc, repo in (release_images or {}).items():
            i = images.get(svc) if isinstance(images, dict) else None
            if i and i.get("image") == "%s:%s" % (repo, version) and i.get("image_id"):
                out[svc] = i["image_id"]
    return out


def _tags(release_images, version):
    return ", ".join("%s:%s" % (repo, version) for repo in release_images.values())


def _running_version(image):
    return re.sub(r"^[^:]*:?", "", image.split("/")[-1], count=1) if image else ""


def deploy_plan(o):
    """The plan of a deploy or rollback, from what was read (``o``: the role's options and the gathered data).

    Returns current_images, running_version, current_version, target_version, replicas, target_recorded,
    history, plan (the steps as printed), plan_short, describe (the not-confirmed / check-mode sentence) and
    target_problem ('' or why the target cannot be acted on).
    """
    services, release = list(o["services"]), dict(o["release_images"])
    var, action = o["version_env_var"], o["action"]
    history = deploy_history(o.get("history_text"))
    containers = o.get("containers") or []
    current_images = deploy_images(containers)
    primary = next(iter(release), None)
    running_version = _running_version((current_images.get(primary) or {}).get("image") or "")
    current = o.get("env_version") or running_version
    previous = [e.get("from_version") for e in history
                if e.get("action") == "deploy" and e.get("status") == "succeeded" and e.get("to_version") == current
                and e.get("from_version") != current]
    target = o["version"] if o["version"] else (previous[-1] or "" if previous else "")
    replicas = {s: len([c for c in containers if c.get("service") == s and c.get("state") == "running"])
                for s in services}
    recorded = deploy_recorded_ids([*history, {"images": current_images}], release, target)

    tags = _tags(release, target)
    if action == "rollback":
        get_image = "use the recorded image%s %s %s" % (
            "s" if len(release) > 1 else "", tags,
            "(" + ", ".join(_truncate(i, 19, True, "") for i in recorded.values()) + ")" if recorded else
            "(no recorded image id: the tag as it is" + (", pulled when missing" if o["image_source"] == "pull" else "")
            + ")")
    elif o["image_source"] == "build":
        get_image = "build %s from %s with APP_VERSION=%s" % (
            tags, ", ".join(str(v) for v in (o.get("build_contexts") or {}).values()), target)
        if o.get("build_args"):
            get_image += " and the build args %s (values not shown)" % ", ".join(o["build_args"])
    elif o["image_source"] == "pull":
        get_image = "pull " + tags
    else:
        get_image = "use the local image " + tags
    images_now = ", ".join("%s=%s" % (s, current_images[s]["image"]) for s in services if s in current_images)
    scaled = ", ".join("%s=%s" % (s, n) for s, n in replicas.items() if n > 1)
    metrics = ("5xx rate < %s %% and p95 < %s s over %s s of smoke traffic" % (
        o["gate_error_rate_pct"], o["gate_p95_latency_s"], o["gate_metrics_window"])
        if o["gate_metrics"] else "no metrics gate")
    plan = [
        "current: %s=%s (%s)" % (var, _or(current, "unset"), _or(images_now, "no containers")),
        "target: %s=%s" % (var, target),
        "1. pre-deploy backup of %s: %s" % (
            o["db_name"], "role backup into %s" % o["backup_dir"] if o["backup"] else "skipped (deploy_backup=false)"),
        "2. record the current images in the deploy history %s" % o["history_file"],
        "3. " + get_image,
        "4. set %s=%s in %s, then up -d %s one by one (%s)%s" % (
            var, target, o["env_file"], ", then ".join(services), COMPOSE_MODULE,
            ", keeping the current replicas: " + scaled if scaled else ""),
        "5. gate within %s s: %s running and healthy on the new image; %s answers 200%s; %s" % (
            o["gate_timeout"], ", ".join(services), o["health_url"],
            " with version " + target if o["gate_check_version"] else "", metrics),
        "6. on a failed gate: " + (
            "set %s=%s and the recorded images back, up -d again, gate again; the run fails naming the gate"
            % (var, _or(current, "?")) if o["auto_rollback"] else
            "no automatic rollback (deploy_auto_rollback=false); the run fails naming the gate"),
    ]
    check_mode = o.get("check_mode")
    describe = "%s: would %s %s %s -> %s on %s (%srecord images, %s, up -d %s, health gate, automatic rollback on " \
        "failure); %s" % (
            "check mode" if check_mode else "not confirmed", action, var, _or(current, "unset"), target, o["host"],
            "backup, " if o["backup"] else "", _truncate(re.sub(r"^3\. ", "", plan[4]), 120),
            " then ".join(services),
            "rerun without --check and with -e confirm=true" if check_mode else "rerun with -e confirm=true")
    if not target:
        problem = ("no previous version recorded: %s has no successful deploy to the current version %s; name the "
                   "version to return to with -e version=<tag>" % (o["history_file"], _or(current, "?")))
    else:
        problem = deploy_version_error(target, "the " + ("version" if o["version"] else
                                                           "rollback target from the deploy history"))
        if problem:
            problem = "%s (%s); nothing was changed; name the version to return to with -e version=<tag>" % (
                problem, o["history_file"])
    return {
        "history": history, "current_images": current_images, "running_version": running_version,
        "current_version": current, "target_version": target, "replicas": replicas, "target_recorded": recorded,
        "plan": plan, "plan_short": "%s %s %s -> %s on %s" % (action, var, _or(current, "unset"), target, o["host"]),
        "describe": describe, "target_problem": problem,
    }


def deploy_failed_builds(results):
    """The build results that failed (failed_when: false clears ``failed``; a failed build returns no ``image``)."""
    return [r for r in results or [] if not r.get("skipped") and "image" not in r]


def deploy_release_images(images, release_images, version, fresh, source, built=None, repinned=None):
    """The images the gate expects ({service: {image, image_id}}) among docker_image_info's ``images``, whether
    the step changed anything (an image built anew or a recorded image re-tagged: the ``results`` of those loops)
    and the action's detail (what was found, and how it got there)."""
    found = {}
    for svc, repo in (release_images or {}).items():
        tag = "%s:%s" % (repo, version)
        img = next((i for i in images or [] if tag in (i.get("RepoTags") or [])), None)
        if img:
            found[svc] = {"image": tag, "image_id": img.get("Id")}
    changed = any(r.get("changed") for r in (built or []) + (repinned or []))
    if fresh and source == "build":
        how = "built (%s)" % ("new image" if changed else "unchanged, from cache")
    elif source == "pull":
        how = "pulled"
    else:
        how = "recorded image re-tagged" if changed else "present"
    detail = ", ".join("%s = %s" % (i["image"], (i["image_id"] or "")[:19]) for i in found.values())
    return {"found": found, "changed": changed, "detail": "%s (%s)" % (detail, how)}


def _container_problem(c):
    text = "%s (%s) %s" % (c.get("service"), c.get("name"), c.get("state"))
    if c.get("health") not in ("none", None):
        text += ", %s" % c.get("health")
    if c.get("exit_code") not in (0, None):
        text += ", exit code %s" % c.get("exit_code")
    if c.get("restart_count") not in (0, None):
        text += ", %s restarts" % c.get("restart_count")
    if c.get("health_output"):
        text += ": " + _truncate(str(c["health_output"]).strip(), 160)
    return text


def deploy_gate(g):
    """The health gate's checks in order, from what was read (``g``), and the first failure ({} when none).

    The stages run in order and a stage runs only when the one before passed, so only the stages reached
    are judged: service_health and image (the containers), api_health (the uri result ``api``), the Key
    Metrics (metrics_window's ``metrics``, when ``metrics_enabled``). ``stage`` stops the judging early:
    'service' judges the containers only (may the API be probed?), 'api' up to the API (may metrics run?).
    """
    prefix = g["prefix"]
    seen = deploy_seen(g.get("containers"), g["services"], g.get("gate_images"))
    gate_images = g.get("gate_images") or {}
    problems = [_container_problem(c) for c in seen["broken"]]
    problems += ["%s: no running container" % s for s in seen["missing"]]
    problems += ["%s (%s) still starting" % (c.get("service"), c.get("name")) for c in seen["starting"]]
    describe = "; ".join(problems)
    reason = g.get("docker_reason") or ""
    wanted = ", ".join(str(i.get("image")) for i in gate_images.values())
    wrong = seen["wrong_image"]
    checks = [
        {"name": prefix + ":service_health", "component": "compose", "status": "critical" if describe else "ok",
         "value": ["%s: %s" % (c.get("name"), c.get("health")) for c in seen["app"]],
         "threshold": "running and healthy within %s s" % g["timeout"],
         "message": describe + (" (%s)" % reason if reason else "") if describe
         else ", ".join(g["services"]) + " running and healthy"},
        {"name": prefix + ":image", "component": "compose", "status": "critical" if wrong else "ok",
         "value": {k: v for k, v in seen["images"].items() if k in gate_images},
         "threshold": gate_images,
         "message": "%s run %s, not %s" % (", ".join(c.get("name") for c in wrong),
                                           ", ".join(str(c.get("image")) for c in wrong), wanted) if wrong
         else "containers run " + wanted},
    ]

    def verdict(failed):
        return {"checks": checks, "failure": {"phase": prefix, "gate": failed["name"].split(":")[-1],
                                              "message": failed["message"]} if failed else {}}

    for check in checks:
        if check["status"] != "ok":
            return verdict(check)
    if g.get("stage") == "service":
        return verdict(None)

    api = g.get("api") or {}
    code = int(api.get("status", -1))
    body = api.get("json") if isinstance(api.get("json"), dict) else {}
    version_seen = str(body.get("version", ""))
    failing = [k for k, v in (body.get("checks") or {}).items()
               if not (isinstance(v, dict) and v.get("status") == "ok")]
    ok = code == 200 and (not g["check_version"] or version_seen == g["version"])
    if code > 0:
        answer = str(code) + (" with version " + version_seen if version_seen else "") \
            + (" (failing: %s)" % ", ".join(failing) if failing else "")
    else:
        answer = "nothing (%s)" % _truncate(api.get("msg") or "no answer", 160)
    checks.append({
        "name": prefix + ":api_health", "component": "backend", "status": "ok" if ok else "critical",
        "value": {"status": code, "version": version_seen},
        "threshold": "200%s within %s s" % (" with version " + g["version"] if g["check_version"] else "",
                                            g["api_timeout"]),
        "message": "%s answered %s%s" % (g["health_url"], answer, "" if ok else " after %s s" % g["api_timeout"])})
    if not ok:
        return verdict(checks[-1])
    if g.get("stage") == "api" or not g.get("metrics_enabled"):
        return verdict(None)

    failing_statuses = ["warning", "critical"] + (["unknown"] if g.get("unknown_fails") else [])
    measured = [dict(c, name=prefix + ":" + c["name"], component="backend")
                for c in (g.get("metrics") or {}).get("checks") or []]
    checks.extend(measured)
    return verdict(next((c for c in measured if c.get("status") in failing_statuses), None))


def deploy_outcome(r):
    """outcome, severity and summary of the run for the report, from the role's facts (``r``)."""
    failure = r.get("failure") or {}
    revert = r.get("revert_failure") or {}
    gate = failure.get("gate")
    if r.get("plan_error"):
        outcome = "plan_error"
    elif not r.get("confirmed"):
        outcome = "not_confirmed"
    elif not r.get("failed"):
        outcome = "succeeded"
    elif r.get("revert_status") == "succeeded":
        outcome = "rolled_back"
    elif r.get("revert_status") == "failed":
        outcome = "rollback_failed"
    else:
        outcome = "failed"
    if outcome in ("plan_error", "not_confirmed", "succeeded"):
        severity = None
    elif outcome == "rolled_back":
        severity = "P2"
    elif outcome == "rollback_failed":
        severity = "P0" if revert.get("gate") in ("service_health", "api_health", "image") else "P1"
    else:
        severity = "P1" if r.get("switch_started") else None

    action, var, target, current = r["action"], r["version_env_var"], r.get("target_version"), r.get("current_version")
    if outcome == "plan_error":
        summary = "%s not started: %s" % (action, r["plan_error"])
    elif outcome == "not_confirmed":
        summary = r.get("describe") or ""
    elif outcome == "succeeded":
        summary = "%s of %s=%s succeeded (%s -> %s; %s); every gate passed" % (
            action, var, target, _or(current, "unset"), target,
            ", ".join(str(i.get("image")) for i in (r.get("gate_images") or {}).values()))
    else:
        summary = "%s of %s=%s FAILED%s: %s" % (action.upper(), var, target, " at gate %s" % gate if gate else "",
                                               r.get("error"))
        if outcome == "rolled_back":
            summary += "; rolled back automatically to %s, which passes the health gate" % current
        elif outcome == "rollback_failed":
            summary += "; the AUTOMATIC ROLLBACK to %s ALSO FAILED%s: %s" % (
                current, " at gate %s" % revert["gate"] if revert.get("gate") else "", revert.get("message"))
        elif r.get("switch_started"):
            summary += "; no automatic rollback (deploy_auto_rollback=false)"
        else:
            summary += "; nothing was switched"
    return {"outcome": outcome, "severity": severity, "gate": gate,
            "failed": bool(r.get("plan_error")) or bool(r.get("failed")),
            "summary": re.sub(r"\s+", " ", summary).strip()}


class FilterModule:
    def filters(self):
        return {
            "deploy_version_error": deploy_version_error,
            "deploy_redact": deploy_redact,
            "deploy_images": deploy_images,
            "deploy_seen": deploy_seen,
            "deploy_env_value": deploy_env_value,
            "deploy_recorded_ids": deploy_recorded_ids,
            "deploy_plan": deploy_plan,
            "deploy_failed_builds": deploy_failed_builds,
            "deploy_release_images": deploy_release_images,
            "deploy_gate": deploy_gate,
            "deploy_outcome": deploy_outcome,
        }
