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
  - Runs as the action plugin of the same name (C(action_plugins/marketplace_report.py), found through
    C(action_plugins) in ansible.cfg) in the controller's ansible process, with no module process and no
    use of the connection, so the report lands on the controller for any inventory.
  - This file keeps the documentation and the argument spec the action validates with; both write through
    C(module_utils/marketplace_report.py). Where the action plugin is not configured it runs as a module,
    where the task runs; so call it with C(delegate_to=localhost) (a no-op for the action).
  - Reports are the run's output, so playbooks call it with C(check_mode=false) to leave a report of
    C(--check) runs too; in check mode it writes nothing.
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

from ansible.module_utils.marketplace_module import MarketplaceModule
from ansible.module_utils.marketplace_report import ReportError, build_argument_spec, write_report


def main():
    # Where ansible.cfg configures action_plugins, the task runs action_plugins/marketplace_report.py instead
    # (in the controller's ansible process, no module process); both call the same write_report.
    module = MarketplaceModule(argument_spec=build_argument_spec(), supports_check_mode=True)
    try:
        result = write_report(module.params, check_mode=module.check_mode)
    except ReportError as exc:
        module.fail_json(msg=exc.msg, **exc.result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
