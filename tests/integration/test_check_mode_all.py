"""Every playbook in playbooks/ runs in --check against the reference stack and passes.

The list is read from playbooks/ when the tests are collected, so a playbook added later is picked up without
touching this file. A playbook that cannot run without an input gets it from CHECK_EXTRAVARS below (add an entry
there with a harmless value, and say why). Under --check nothing may change: destructive steps only describe
themselves, even where confirm=true is passed (that is asserted for the playbooks that take confirm).

health_fail_on_critical=false goes to every run: this test asks whether each playbook's probes run under
--check, not whether the shared stack is healthy at that moment (health-check's own tests judge that).
"""
from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers import faults
from tests.helpers.playbooks import assert_no_traceback, run

ROOT = Path(__file__).resolve().parents[2]
PLAYBOOKS = sorted(p.stem for p in (ROOT / "playbooks").glob("*.yml"))

COMMON_EXTRAVARS = {"health_fail_on_critical": False}
# Inputs some playbooks need (documented defaults; values that do nothing harmful even if they were acted on).
CHECK_EXTRAVARS = {
    # A pattern is required; this one matches no real key.
    "cache-clear": {"pattern": "cache:check-mode-test-nothing:*"},
    # Under --check confirm=true must still change nothing: the confirm gate's promise.
    "cache-flush": {"confirm": True},
}
# Filled in at run time from the stack's env: deploy and rollback get the running backend version (a fresh stack
# has no deploy history for rollback to find its previous version in); under --check both only print the plan.
RUNTIME_EXTRAVARS = {
    "deploy": lambda env: {"version": env.get("BACKEND_VERSION", "1.0.0")},
    "rollback": lambda env: {"version": env.get("BACKEND_VERSION", "1.0.0")},
}


def test_playbooks_are_found():
    assert "health-check" in PLAYBOOKS and len(PLAYBOOKS) >= 6


@pytest.mark.parametrize("playbook", PLAYBOOKS)
def test_playbook_passes_in_check_mode(stack_env, playbook):
    for service in ("postgres", "redis", "backend", "nginx"):
        faults.wait_healthy(service, timeout=180)
    extravars = {**COMMON_EXTRAVARS, **CHECK_EXTRAVARS.get(playbook, {})}
    if playbook in RUNTIME_EXTRAVARS:
        extravars.update(RUNTIME_EXTRAVARS[playbook](stack_env))
    result = run(playbook, extravars=extravars, check=True, timeout=900)
    if result.rc != 0:  # the stack is shared: another run may have been stopping something; once more
        for service in ("postgres", "redis", "backend", "nginx"):
            faults.wait_healthy(service, timeout=180)
        result = run(playbook, extravars=extravars, check=True, timeout=900)
    assert_no_traceback(result)
    assert result.rc == 0, f"{playbook} --check failed:\n{result.stdout[-4000:]}"
    for host, report in result.reports.items():
        assert report["check_mode"] is True, f"{playbook} on {host}: report does not record check mode"
        assert not any(a.get("changed") for a in report.get("actions", [])), \
            f"{playbook} on {host} reports a changed action under --check: {report['actions']}"
