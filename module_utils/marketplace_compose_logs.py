# Streamed, redacted reading of a compose project's logs: error counts per service and the last lines.
# The code of library/compose_logs.py (which keeps the documentation and main()); also a part of health_gather.
from __future__ import annotations

import collections
import datetime
import re
import time

from ansible.module_utils.marketplace_common import json_safe, validate_non_negative
from ansible.module_utils.marketplace_docker import (
    DOCKER_ERRORS,
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
    unavailable_result,
    validate_common,
)

DEFAULT_PATTERNS = ["error\\b", "fatal", "exception", "panic"]
DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)\s*([smhdw])", re.IGNORECASE)
DURATION = re.compile(r"^\s*(?:\d+(?:\.\d+)?\s*[smhdw]\s*)+$", re.IGNORECASE)
UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
DOCKER_TS = re.compile(r"^(\d{4}-\d\d-\d\dT[0-9:.]+(?:Z|[+-]\d\d:\d\d)) ?")


def build_argument_spec():
    return docker_argument_spec(
        since=dict(type="str"),
        until=dict(type="str"),
        tail=dict(type="int"),
        patterns=dict(type="list", elements="str", default=list(DEFAULT_PATTERNS)),
        match_lines=dict(type="int", default=20),
        last_lines=dict(type="int", default=0),
        timestamps=dict(type="bool", default=True),
        max_line_length=dict(type="int", default=2000),
        extra_secrets=dict(type="list", elements="str", default=[], no_log=True),
        redact_patterns=dict(type="list", elements="str", default=[]),
        errors_warning=dict(type="int"),
    )


# A bare number this large is a Unix time, as `docker logs --since 1764554400` reads it (1e9 s is 2001-09-09);
# a smaller one is a number of seconds ago (300 = five minutes). Nobody means "31 years ago" by seconds.
UNIX_TIME_MIN = 1_000_000_000
# Latest time a window may name: 9999-12-31T23:59:59Z (datetime cannot go further).
LATEST = 253402300799.0
FORMS = "give seconds ago (300), a duration ago (15m, 24h, 1h30m, 7d), a Unix time (1764554400) or an ISO 8601 time " \
        "(2026-12-01T02:00:00Z)"


def parse_point(value, now):
    """since/until option -> epoch seconds (float). Raises ValueError with a readable message."""
    text = str(value).strip()
    if not text:
        raise ValueError("empty: " + FORMS)
    if re.fullmatch(r"\d+(?:\.\d+)?", text):
        number = float(text)
        if number >= UNIX_TIME_MIN:
            if number > LATEST:
                raise ValueError("the Unix time %s is after the year 9999" % text)
            return number
        return now - number
    if DURATION.match(text):
        seconds = sum(float(n) * UNIT_SECONDS[u.lower()] for n, u in DURATION_PART.findall(text))
        return now - seconds
    iso = text[:-1] + "+00:00" if text[-1:] in ("Z", "z") else text
    try:
        moment = datetime.datetime.fromisoformat(iso)
    except ValueError:
        raise ValueError("not a time: " + FORMS) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=datetime.UTC)
    return moment.timestamp()


def iso(epoch):
    if epoch is None:
        return None
    try:
        return datetime.datetime.fromtimestamp(epoch, datetime.UTC).isoformat()
    except (OverflowError, OSError, ValueError):
        return "%s (out of range)" % epoch


def iter_log_lines(chunks, cap):
    """Split a stream of byte chunks into lines; a line longer than ``cap`` bytes is cut there.

    Yields ``(raw_bytes, cut)``. Never holds more than one chunk plus ``cap`` bytes.
    """
    buf = b""
    skipping = False  # inside the rest of a line that was already cut
    for chunk in chunks:
        if not chunk:
            continue
        buf += chunk
        if b"\n" in buf:
            parts = buf.split(b"\n")
            buf = parts.pop()
            for part in parts:
                if skipping:
                    skipping = False
                    continue
                if len(part) > cap:
                    yield part[:cap], True
                else:
                    yield part, False
        if len(buf) > cap:
            if not skipping:
                yield buf[:cap], True
                skipping = True
            buf = b""
    if buf and not skipping:
        yield buf, False


def open_log_stream(client, info, since, until, tail):
    """A generator of byte chunks of the container's log (stdout and stderr), and a close function."""
    kwargs = dict(stdout=True, stderr=True, timestamps=True, follow=False, tail="all" if tail is None else tail)
    if since is not None:
        kwargs["since"] = since
    if until is not None:
        kwargs["until"] = until
    if (info.get("Config") or {}).get("Tty"):
        # The SDK streams a TTY container's log one byte per iteration; read it in blocks instead.
        params = {"stdout": 1, "stderr": 1, "timestamps": 1, "follow": 0, "tail": kwargs["tail"]}
        for key in ("since", "until"):
            if key in kwargs:
                params[key] = kwargs[key]
        res = client._get(client._url("/containers/{0}/logs", info["Id"]), params=params, stream=True)
        client._raise_for_status(res)
        return res.iter_content(chunk_size=65536), res.close
    stream = client.logs(info["Id"], stream=True, **kwargs)
    return stream, stream.close


def read_container(client, info, opts, matcher, pattern_list, cap):
    """Stream one container's log; keep counters and the last lines only (runs in a worker thread)."""
    counts = {p: 0 for p, _ in pattern_list}
    matches = collections.deque(maxlen=opts["match_lines"]) if opts["match_lines"] else None
    last = collections.deque(maxlen=opts["last_lines"]) if opts["last_lines"] else None
    scanned = matched = cut_lines = 0
    chunks, close = open_log_stream(client, info, opts["since"], opts["until"], opts["tail"])
    try:
        for raw, cut in iter_log_lines(chunks, cap):
            text = raw.decode("utf-8", errors="replace").rstrip("\r")
            scanned += 1
            cut_lines += cut
            m = DOCKER_TS.match(text)
            ts, message = (m.group(1), text[m.end():]) if m else ("", text)
            if matcher.search(message):
                matched += 1
                for pattern, regex in pattern_list:
                    if regex.search(message):
                        counts[pattern] += 1
                if matches is not None:
                    matches.append((ts, message, cut))
            if last is not None:
                last.append((ts, message, cut))
    finally:
        close()
    return dict(lines_scanned=scanned, match_count=matched, pattern_counts=counts,
                matches=list(matches or []), last_lines=list(last or []), truncated_lines=cut_lines)


def render(entries, limit, redactor, with_ts, name_prefix, keep):
    """Merge (ts, message, cut) entries of a service's containers, keep the last ``keep``, redact and cut."""
    entries = sorted(entries, key=lambda e: e[0])[-keep:] if keep else []
    out = []
    for ts, message, cut, cname in entries:
        line = message
        if name_prefix:
            line = "%s | %s" % (cname, line)
        if with_ts and ts:
            line = "%s %s" % (ts, line)
        text, truncated = redactor.redact_truncated(line, limit)
        if cut and not truncated:
            text += " [...truncated]"
        out.append(text)
    return out


def truncate(text, length, leeway=5, end="..."):
    """Jinja's ``truncate`` filter (its defaults): a text up to ``length + leeway`` stays whole, a longer one is
    cut at the last word boundary before ``length - len(end)`` and ends in ``end``."""
    if len(text) <= length + leeway:
        return text
    return text[:length - len(end)].rsplit(" ", 1)[0] + end


def log_errors_check(service, entry, warning, since):
    """The report check of one service's error lines in the window (warning at ``warning`` lines, if set)."""
    count = entry["match_count"]
    status = "warning" if warning is not None and count >= warning else "ok"
    matches = entry["matches"]
    window = "the last %s lines%s" % (entry["lines_scanned"], (" of %s" % since) if since else "")
    message = "%s: %d error line%s in %s%s%s" % (
        service, count, "" if count == 1 else "s", window,
        (" (warning at %s)" % warning) if status != "ok" else "",
        ("; last: " + truncate(matches[-1], 200)) if matches else "")
    return {"name": "log_errors:%s" % service, "status": status, "value": count,
            "threshold": {"warning": None if warning is None else float(warning), "critical": None},
            "message": message, "component": service, "lines_scanned": entry["lines_scanned"],
            "last_matches": [truncate(m, 300) for m in matches]}


def unavailable_checks(reason, warning):
    """The report check when the logs could not be read (the daemon did not answer, or the gather failed)."""
    return [{"name": "log_errors", "status": "unknown", "value": None, "component": "docker",
             "threshold": {"warning": warning, "critical": None},
             "message": "logs not read: %s" % (reason or "unknown error")}]


def failed_report_checks(params, msg):
    """health_gather: the report checks of a part that failed (``msg`` says why)."""
    return unavailable_checks(msg, params.get("errors_warning"))


def run(module):
    """The module's work for an AnsibleModule-like object (params, fail_json, exit_json, no_log_values);
    health_gather calls it in-process with its own."""
    check_docker_sdk(module)
    validate_common(module)
    params = module.params
    validate_non_negative(module, params, ["tail", "match_lines", "last_lines"])
    if params["max_line_length"] < 80:
        module.fail_json(msg="max_line_length must be at least 80")

    # Patterns and window are checked before the daemon is contacted.
    pattern_list = []
    for pattern in params["patterns"]:
        if not pattern:
            module.fail_json(msg="patterns must not contain an empty pattern")
        try:
            pattern_list.append((pattern, re.compile(pattern, re.IGNORECASE)))
        except re.error as exc:
            module.fail_json(msg="invalid regular expression in patterns: %r: %s" % (pattern, exc))
    if not pattern_list:
        module.fail_json(msg="patterns must not be empty")
    matcher = re.compile("|".join("(?:%s)" % p for p, _ in pattern_list), re.IGNORECASE)
    extra_patterns = []
    for pattern in params["redact_patterns"]:
        try:
            extra_patterns.append(re.compile(pattern))
        except re.error as exc:
            module.fail_json(msg="invalid regular expression in redact_patterns: %r: %s" % (pattern, exc))
    now = time.time()
    window = {}
    for key in ("since", "until"):
        if params[key] is None or str(params[key]).strip() == "":
            window[key] = None
            continue
        try:
            window[key] = parse_point(params[key], now)
        except ValueError as exc:
            module.fail_json(msg="invalid %s %r: %s" % (key, params[key], exc))
        if window[key] <= 0:
            module.fail_json(msg="invalid %s %r: before 1970 (%s)" % (key, params[key], FORMS))
        if window[key] > now + 60:
            module.fail_json(msg="invalid %s %r: %s is in the future" % (key, params[key], iso(window[key])))
    if window["since"] is not None and window["until"] is not None and window["since"] >= window["until"]:
        module.fail_json(msg="since (%s) must be before until (%s)" % (iso(window["since"]), iso(window["until"])))

    project = params["project"].strip()
    client, reason = connect(module)
    if client is None:
        module.exit_json(**unavailable_result(reason, project=project,
                                              report_checks=unavailable_checks(reason, params["errors_warning"])))
    try:
        result = gather(module, client, project, window, pattern_list, matcher, extra_patterns)
    except DOCKER_ERRORS as exc:
        reason = docker_error_reason(exc, params["docker_host"])
        module.exit_json(**unavailable_result(reason, project=project,
                                              report_checks=unavailable_checks(reason, params["errors_warning"])))
    finally:
        client.close()
    result["report_checks"] = [log_errors_check(name, entry, params["errors_warning"], params["since"])
                               for name, entry in sorted(result["logs"].items(), key=lambda item: item[0].lower())]
    module.exit_json(changed=False, **result)


def gather(module, client, project, window, pattern_list, matcher, extra_patterns):
    params = module.params
    started = time.monotonic()
    summaries = list_project_containers(client, project)
    if not summaries:
        projects = known_projects(client)
        module.fail_json(msg="compose project %r has no containers on this Docker host (projects found: %s)"
                         % (project, ", ".join(projects) or "none"), available=True, project=project)
    seen = {container_service(s) for s in summaries} - {None}
    file_services = None
    for s in summaries:
        file_services = compose_file_services(s.get("Labels"))
        if file_services is not None:
            break
    known = seen | set(file_services or [])
    requested = [s.strip() for s in params["services"]]
    unknown = [s for s in requested if s not in known]
    if unknown:
        module.fail_json(msg="unknown service(s) %s in compose project %r (known services: %s)"
                         % (", ".join(unknown), project, ", ".join(sorted(known))), available=True,
                         project=project)
    chosen = sorted(set(requested) if requested else seen)

    # Secrets of every container of the project (a backend may log the database's password).
    infos = parallel_map(lambda s: client.inspect_container(s["Id"]), summaries, max_workers=32)
    redactor = Redactor(extra_patterns=extra_patterns)
    for value in params["extra_secrets"]:
        redactor.add(value)
    readable = []
    for summary, info in zip(summaries, infos, strict=True):
        if isinstance(info, BaseException):
            continue  # removed meanwhile
        redactor.add_env((info.get("Config") or {}).get("Env"))
        if container_service(summary) in chosen:
            readable.append((summary, info))

    limit = params["max_line_length"]
    cap = 4 * (limit + redactor.longest + 16)
    opts = dict(since=window["since"], until=window["until"], tail=params["tail"],
                match_lines=params["match_lines"], last_lines=params["last_lines"])
    results = parallel_map(lambda item: read_container(client, item[1], opts, matcher, pattern_list, cap),
                           readable, max_workers=16)

    logs = {}
    for name in chosen:
        logs[name] = dict(containers=[], lines_scanned=0, match_count=0,
                          pattern_counts={p: 0 for p, _ in pattern_list}, matches=[], last_lines=[],
                          truncated_lines=0, errors=[])
    pending = collections.defaultdict(lambda: {"matches": [], "last_lines": []})
    for (summary, info), res in zip(readable, results, strict=True):
        name = container_service(summary)
        cname = container_name(info) or container_name(summary)
        entry = logs[name]
        entry["containers"].append(cname)
        if isinstance(res, DOCKER_ERRORS):
            entry["errors"].append("%s: %s" % (cname, docker_error_reason(res)))
            continue
        if isinstance(res, BaseException):
            raise res
        for key in ("lines_scanned", "match_count", "truncated_lines"):
            entry[key] += res[key]
        for pattern, count in res["pattern_counts"].items():
            entry["pattern_counts"][pattern] += count
        for key in ("matches", "last_lines"):
            pending[name][key].extend((*e, cname) for e in res[key])
    for name, entry in logs.items():
        entry["containers"].sort()
        several = len(entry["containers"]) > 1
        entry["matches"] = render(pending[name]["matches"], limit, redactor, params["timestamps"], several,
                                  params["match_lines"])
        entry["last_lines"] = render(pending[name]["last_lines"], limit, redactor, params["timestamps"], several,
                                     params["last_lines"])

    result = dict(available=True, project=project, since=iso(window["since"]), until=iso(window["until"]),
                  tail=params["tail"], patterns=[p for p, _ in pattern_list], logs=logs,
                  total_matches=sum(e["match_count"] for e in logs.values()),
                  total_lines=sum(e["lines_scanned"] for e in logs.values()),
                  redaction=dict(secret_values=redactor.secret_count, replacements=redactor.replacements),
                  duration_seconds=round(time.monotonic() - started, 3))
    # Last pass: no literal secret anywhere in the result, whatever field it might have reached.
    return redact_literal_obj(redactor, json_safe(result))


def redact_literal_obj(redactor, obj):
    if isinstance(obj, str):
        return redactor.redact_literal(obj)
    if isinstance(obj, dict):
        return {redact_literal_obj(redactor, k): redact_literal_obj(redactor, v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [redact_literal_obj(redactor, v) for v in obj]
    return obj
