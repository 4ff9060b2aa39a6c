"""Issue 10, defect 2, the reproduction: `health-check.yml -e health_background_timeout=0` fails in the gather
(timeout must be positive) before the parts' options are validated. The parts carry the PostgreSQL and Redis
passwords; they were in clear in the job events (invocation.module_args). Both ways the gather runs: in-process
(the demo inventory's default) and as a module."""
from __future__ import annotations

import pytest

from tests.helpers.playbooks import assert_no_traceback, raw_artifacts, run


@pytest.mark.parametrize("in_process", [True, False], ids=["in_process", "module"])
def test_bad_background_timeout_fails_without_showing_passwords(stack_env, in_process):
    secrets = {name: stack_env[name] for name in ("POSTGRES_PASSWORD", "REDIS_PASSWORD")}
    extravars = {"health_background_timeout": 0}
    if not in_process:
        extravars["health_gather_in_process"] = False
    result = run("health-check", extravars=extravars)
    assert_no_traceback(result)
    text = raw_artifacts(result)
    assert result.rc != 0 or result.status != "successful", "the bad timeout was accepted"
    assert "timeout must be positive" in text, "the run did not fail where the issue says: " + result.stdout[-2000:]
    leaked = [name for name, value in secrets.items() if value and value in text]
    assert not leaked, "%s in clear in the run's artifacts" % ", ".join(leaked)
