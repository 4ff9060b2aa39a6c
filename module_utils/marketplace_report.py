# The run report every runbook playbook leaves (JSON + Markdown + <host>-latest.json): argument spec, checks and
# actions normalised, overall status, redaction, file names and atomic writes.
#
# Used in two places, so it imports its sibling RELATIVELY (``from .marketplace_common``), which resolves in both:
# - library/marketplace_report.py imports it as ``ansible.module_utils.marketplace_report`` (AnsiballZ packs it
#   with marketplace_common; it follows relative imports of module_utils);
# - action_plugins/marketplace_report.py, the action that really runs for the task in the controller's ansible
#   process, loads it as ``marketplace_module_utils.marketplace_report`` (module_utils/ seen as a package there:
#   on the controller ``ansible.module_utils`` is ansible-core's own package).
# Stdlib only besides marketplace_common.
from __future__ import annotations

import datetime
import json
import os
import tempfile

from .marketplace_common import json_safe, worst_status

VALID_STATUSES = ("ok", "warning", "critical", "unknown")


class ReportError(Exception):
    """Bad input, or the report could not be written. ``result`` holds what is known (paths, status) for the
    failed result."""

    def __init__(self, msg, result=None):
        super().__init__(msg)
        self.msg = msg
        self.result = result or {}


def build_argument_spec():
    return dict(
        playbook=dict(type="str", required=True),
        host=dict(type="str", required=True),
        report_dir=dict(type="path", required=True),
        started=dict(type="str"),
        checks=dict(type="list", elements="dict", default=[]),
        actions=dict(type="list", elements="dict", default=[]),
        status=dict(type="str", choices=["ok", "warning", "critical"]),
        severity=dict(type="str", choices=["P0", "P1", "P2", "P3"]),
        summary=dict(type="str"),
        extra=dict(type="dict", default={}),
        ran_in_check_mode=dict(type="bool", default=False),
        redact=dict(type="list", elements="str", default=[], no_log=True),
    )


def _utcnow():
    return datetime.datetime.now(datetime.UTC).replace(microsecond=0)


def _scrub(obj, secrets):
    if not secrets:
        return obj
    if isinstance(obj, str):
        for secret in secrets:
            obj = obj.replace(secret, "********")
        return obj
    if isinstance(obj, dict):
        return {k: _scrub(v, secrets) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_scrub(v, secrets) for v in obj]
    return obj


# Reports name hosts, findings and the evidence of incidents: the operator's only (issue 10, defect 9).
FILE_MODE = 0o600
DIR_MODE = 0o700


def _private_dirs(report_dir, base):
    """Create the report directory and the playbook's directory 0700 (whatever the umask). The playbook's
    directory is this writer's own and is brought to 0700 when it exists already; an existing report_dir is the
    operator's choice (it may be a shared directory) and keeps its mode."""
    for directory in (report_dir, base):
        if not os.path.isdir(directory):
            os.makedirs(directory, mode=DIR_MODE, exist_ok=True)
            os.chmod(directory, DIR_MODE)
    if os.stat(base).st_uid == os.getuid() and (os.stat(base).st_mode & 0o777) != DIR_MODE:
        os.chmod(base, DIR_MODE)


def _atomic_write(path, text):
    directory = os.path.dirname(path)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=directory)
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, FILE_MODE)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _cell(value):
    text = json.dumps(value) if isinstance(value, (dict, list)) else ("" if value is None else str(value))
    return text.replace("|", "\\|").replace("\n", " ")[:200]


def render_markdown(report):
    icon = {"ok": "OK", "warning": "WARNING", "critical": "CRITICAL", "unknown": "UNKNOWN"}
    lines = [
        "# %s on %s: %s" % (report["playbook"], report["host"], icon.get(report["status"], report["status"])),
        "",
        "- started: %s" % report["started"],
        "- finished: %s" % report["finished"],
        "- severity: %s" % (report["severity"] or "none"),
        "- check mode: %s" % ("yes" if report.get("check_mode") else "no"),
    ]
    if report.get("summary"):
        lines += ["", report["summary"]]
    lines += ["", "## Checks", ""]
    if report["checks"]:
        lines += ["| check | status | value | threshold | message |", "|---|---|---|---|---|"]
        for c in report["checks"]:
            cells = [_cell(c.get(k)) for k in ("name", "status", "value", "threshold", "message")]
            lines.append("| %s |" % " | ".join(cells))
    else:
        lines.append("No checks were recorded.")
    lines += ["", "## Actions", ""]
    if report["actions"]:
        for a in report["actions"]:
            lines.append("- %s: %s%s" % (a.get("name"), "changed" if a.get("changed") else "no change",
                                         (" - %s" % _cell(a.get("detail"))) if a.get("detail") else ""))
    else:
        lines.append("No actions were taken.")
    return "\n".join(lines) + "\n"


def write_report(p, check_mode=False):
    """Write the report for the validated parameters ``p`` (build_argument_spec) and return the result.

    In check mode nothing is written; the result names the files a real run would write. Raises ReportError.
    """
    checks = []
    for i, c in enumerate(p["checks"]):
        if not isinstance(c, dict) or not c.get("name"):
            raise ReportError("checks[%d] has no name" % i)
        status = c.get("status", "unknown")
        if status not in VALID_STATUSES:
            raise ReportError("checks[%d] (%s) has an invalid status %r" % (i, c["name"], status))
        item = {"name": c["name"], "status": status, "value": c.get("value"), "threshold": c.get("threshold"),
                "message": c.get("message", "")}
        item.update({k: v for k, v in c.items() if k not in item})
        checks.append(json_safe(item))
    actions = []
    for i, a in enumerate(p["actions"]):
        if not isinstance(a, dict) or not a.get("name"):
            raise ReportError("actions[%d] has no name" % i)
        item = {"name": a["name"], "changed": bool(a.get("changed", False)), "detail": a.get("detail")}
        item.update({k: v for k, v in a.items() if k not in item})
        actions.append(json_safe(item))
    status = p["status"] or worst_status(c["status"] for c in checks)
    if status == "unknown":
        status = "warning"
    finished = _utcnow()
    report = {
        "playbook": p["playbook"],
        "host": p["host"],
        "started": p["started"] or finished.isoformat(),
        "finished": finished.isoformat(),
        "status": status,
        "severity": p["severity"],
        "check_mode": p["ran_in_check_mode"],
        "summary": p["summary"],
        "checks": checks,
        "actions": actions,
    }
    for key, value in (p["extra"] or {}).items():
        if key not in report:
            report[key] = json_safe(value)
    secrets = [s for s in p["redact"] if s and len(s) >= 4]
    report = _scrub(report, secrets)
    counts = {s: sum(1 for c in checks if c["status"] == s) for s in VALID_STATUSES}

    base = os.path.join(p["report_dir"], p["playbook"])
    stamp = finished.strftime("%Y%m%dT%H%M%SZ")
    json_path = os.path.join(base, "%s-%s.json" % (p["host"], stamp))
    n = 1
    while os.path.exists(json_path):
        json_path = os.path.join(base, "%s-%s-%d.json" % (p["host"], stamp, n))
        n += 1
    md_path = json_path[:-5] + ".md"
    latest = os.path.join(base, "%s-latest.json" % p["host"])
    result = dict(changed=False, report_path=json_path, report_md_path=md_path, latest_path=latest,
                  report_host=p["host"], status=status, severity=p["severity"], counts=counts)
    if check_mode:
        return result
    try:
        _private_dirs(p["report_dir"], base)
        text = json.dumps(report, indent=2, sort_keys=False) + "\n"
        _atomic_write(json_path, text)
        _atomic_write(md_path, render_markdown(report))
        _atomic_write(latest, text)
    except OSError as exc:
        raise ReportError("cannot write the report under %s: %s" % (base, exc.strerror or exc), result) from exc
    # Writing the report is output on the controller, not a change to the managed system: changed stays
    # false so maintenance runs stay idempotent (changed=0 on a second run).
    return result
