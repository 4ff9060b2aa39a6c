#!/usr/bin/python
# Equipment Marketplace runbook: write a playbook run's report (JSON + Markdown) on the controller.
from __future__ import annotations

DOCUMENTATION = r"""
---
module: marketplace_report
short_description: Write the JSON and Markdown report of a runbook playbook run
description:
  - Writes C({report_dir}/{playbook}/{host}-{UTC timestamp}.json), a Markdown summary beside it and
    C({host}-latest.json), in the report format every runbook playbook shares.
  - The overall status is the worst status of the checks (C(unknown) counts as C(warning)) unless
    I(status) is given.
  - Files are written to a temporary name and renamed, so a reader never sees half a report.
  - Always returns C(changed=false), since a report is output, not a change to the managed system.
  - Run it on the controller (C(delegate_to=localhost)). Reports are the run's output, so playbooks
    call it with C(check_mode=false) to leave a report of C(--check) runs too; in check mode the module
    itself writes nothing.
options:
  playbook:
    description: Playbook name without C(.yml).
    type: str
    required: true
  host:
    description: Inventory host the report is about.
    type: str
    required: true
  report_dir:
    description: Base directory of the reports (C(marketplace_report_dir)).
    type: path
    required: true
  started:
    description: ISO 8601 time the run started; defaults to now.
    type: str
  checks:
    description:
      - Check results, each with C(name), C(status) (ok, warning, critical, unknown), C(value),
        C(threshold) and C(message); other keys (such as C(component)) are kept.
    type: list
    elements: dict
    default: []
  actions:
    description: Actions taken, each with C(name), C(changed) and C(detail).
    type: list
    elements: dict
    default: []
  status:
    description: Overall status; by default the worst status of I(checks).
    type: str
    choices: [ok, warning, critical]
  severity:
    description: Incident severity by the runbook's definitions, or none.
    type: str
    choices: [P0, P1, P2, P3]
  summary:
    description: One line for the top of the Markdown summary.
    type: str
  extra:
    description: More top-level data for the JSON report (for example a timeline or a diagnosis).
    type: dict
    default: {}
  ran_in_check_mode:
    description: Whether the playbook ran with C(--check); recorded in the report.
    type: bool
    default: false
  redact:
    description:
      - Secret values that must never reach a report; every occurrence is replaced by C(********)
        before anything is written.
    type: list
    elements: str
    default: []
    no_log: true
author: Equipment Marketplace operations
"""

EXAMPLES = r"""
- name: Write the health-check report
  marketplace_report:
    playbook: health-check
    host: "{{ inventory_hostname }}"
    report_dir: "{{ marketplace_report_dir }}"
    started: "{{ health_started }}"
    checks: "{{ marketplace_checks }}"
    severity: "{{ health_severity | default(omit) }}"
    ran_in_check_mode: "{{ ansible_check_mode }}"
  delegate_to: localhost
  check_mode: false
"""

RETURN = r"""
report_path:
  description: Path of the JSON report.
  returned: always
  type: str
report_md_path:
  description: Path of the Markdown summary.
  returned: always
  type: str
latest_path:
  description: Path of C({host}-latest.json).
  returned: always
  type: str
report_host:
  description: The host the report is about.
  returned: always
  type: str
status:
  description: Overall status written (ok, warning, critical).
  returned: always
  type: str
severity:
  description: Severity written, or null.
  returned: always
  type: str
counts:
  description: Number of checks per status.
  returned: always
  type: dict
"""

import datetime
import json
import os
import tempfile

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.marketplace_common import json_safe, worst_status

VALID_STATUSES = ("ok", "warning", "critical", "unknown")


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


def _atomic_write(path, text):
    directory = os.path.dirname(path)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=directory)
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o640)
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


def main():
    module = AnsibleModule(argument_spec=build_argument_spec(), supports_check_mode=True)
    p = module.params
    checks = []
    for i, c in enumerate(p["checks"]):
        if not isinstance(c, dict) or not c.get("name"):
            module.fail_json(msg="checks[%d] has no name" % i)
        status = c.get("status", "unknown")
        if status not in VALID_STATUSES:
            module.fail_json(msg="checks[%d] (%s) has an invalid status %r" % (i, c["name"], status))
        item = {"name": c["name"], "status": status, "value": c.get("value"), "threshold": c.get("threshold"),
                "message": c.get("message", "")}
        item.update({k: v for k, v in c.items() if k not in item})
        checks.append(json_safe(item))
    actions = []
    for i, a in enumerate(p["actions"]):
        if not isinstance(a, dict) or not a.get("name"):
            module.fail_json(msg="actions[%d] has no name" % i)
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
    if module.check_mode:
        module.exit_json(**result)
    try:
        os.makedirs(base, exist_ok=True)
        text = json.dumps(report, indent=2, sort_keys=False) + "\n"
        _atomic_write(json_path, text)
        _atomic_write(md_path, render_markdown(report))
        _atomic_write(latest, text)
    except OSError as exc:
        module.fail_json(msg="cannot write the report under %s: %s" % (base, exc.strerror or exc), **result)
    # Writing the report is output on the controller, not a change to the managed system: changed stays
    # false so maintenance runs stay idempotent (changed=0 on a second run).
    module.exit_json(**result)


if __name__ == "__main__":
    main()
