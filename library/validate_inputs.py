#!/usr/bin/python
# Equipment Marketplace runbook: refuse bad public extra vars before a playbook does anything.
from __future__ import annotations

DOCUMENTATION = r"""
---
module: validate_inputs
short_description: Check a runbook playbook's public extra vars before anything runs
description:
  - The first task of every runbook playbook. Checks the extra vars the playbook takes (C(confirm), C(services),
    C(since), C(until), C(tail), C(pattern), C(scope), C(version), C(backup), C(restore_into), C(drop_replaced),
    C(terminate), C(pids), C(scale_backend), C(block_ips), C(revoke_api_keys), C(allow_all)) against the one
    spec in C(module_utils/marketplace_inputs.py), and fails naming every bad value, so nothing runs on bad input.
  - C(confirm) and the other booleans accept true/false, yes/no, on/off, 1/0 (any case); anything else, such as a
    typo, is refused rather than read as false.
  - Checks the syntax of each value only; the roles check what needs the target (a service that compose does not
    know, the live database, an address that contains the controller).
  - Runs as the action plugin of the same name (C(action_plugins/validate_inputs.py)), which reads the values from
    the play's variables when O(values) is not given. Run as a plain module it checks O(values) only.
  - Never changes anything; supports check mode.
options:
  playbook:
    description: Playbook name without C(.yml).
    type: str
    required: true
  values:
    description:
      - The extra vars to check, name to value. The action plugin fills it from the play's variables with the
        names the playbook takes.
    type: dict
author:
  - Equipment Marketplace operations team
"""

EXAMPLES = r"""
- name: Check the extra vars
  validate_inputs:
    playbook: deploy
  tags: [always]
"""

RETURN = r"""
inputs:
  description: The checked values, normalised (booleans as booleans, lists as lists), for the names given.
  returned: success
  type: dict
ansible_facts:
  description: Facts set for the rest of the play.
  returned: success
  type: dict
  contains:
    report_started:
      description: When the run started (this task is the first of every playbook), ISO 8601 UTC; the report role
        writes it as the report's start time.
      type: str
      sample: "2026-12-03T19:45:00Z"
"""

from datetime import UTC, datetime

from ansible.module_utils.marketplace_inputs import refusal, task_argument_spec, validate_inputs
from ansible.module_utils.marketplace_module import MarketplaceModule


def build_argument_spec():
    return task_argument_spec()


def main():
    module = MarketplaceModule(argument_spec=build_argument_spec(), supports_check_mode=True)
    normalised, errors = validate_inputs(module.params["playbook"], module.params["values"] or {})
    if errors:
        module.fail_json(msg=refusal(module.params["playbook"], errors), errors=errors, inputs={})
    started = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    module.exit_json(changed=False, inputs=normalised, ansible_facts={"report_started": started})


if __name__ == "__main__":
    main()
