"""The report role end to end: a read-only playbook through the driver writes its report through the
marketplace_report action plugin, on the controller (tests/unit/test_marketplace_report.py shows the pairing and
that the action equals the module input by input)."""
from __future__ import annotations

import json
import os
import stat
from datetime import datetime
from pathlib import Path

from tests.helpers.playbooks import assert_no_traceback, raw_artifacts, run

REPORT_TASK = "Write the run report on the controller"


def _time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).replace(microsecond=0)


def test_cache_status_report_is_written_by_the_action(stack_env, tmp_path):
    result = run("cache-status", extravars={"marketplace_report_dir": str(tmp_path), "cache_sample_seconds": 1})
    assert result.rc == 0, result.stdout[-3000:]
    assert_no_traceback(result)

    [event] = result.task_results(REPORT_TASK)
    res = event["res"]
    assert event["task_action"] == "marketplace_report" and event["host"] == "demo"
    assert res["changed"] is False and res["report_host"] == "demo" and res["status"] == result.report["status"]

    base = tmp_path / "cache-status"
    path = Path(res["report_path"])
    assert path.parent == base and path.name.startswith("demo-2") and path.suffix == ".json"
    assert Path(res["report_md_path"]) == path.with_suffix(".md")
    assert Path(res["latest_path"]) == base / "demo-latest.json"
    assert sorted(p.name for p in base.iterdir()) == sorted([path.name, path.stem + ".md", "demo-latest.json"])
    for f in base.iterdir():  # written by this (the controller's) user, 0600 in a 0700 directory
        st = f.stat()
        assert st.st_uid == os.getuid() and stat.S_IMODE(st.st_mode) == 0o600, f
    assert stat.S_IMODE(base.stat().st_mode) == 0o700

    report = json.loads(path.read_text())
    assert (base / "demo-latest.json").read_text() == path.read_text()
    assert report == result.report and report["playbook"] == "cache-status" and report["host"] == "demo"
    assert report["check_mode"] is False and report["checks"] and "redis" in report
    # The run's start is the fact the first task (validate_inputs) records; the report is written later.
    [first] = result.task_results("Check the extra vars (bad input stops here, before anything runs)")
    assert report["started"] == first["res"]["ansible_facts"]["report_started"]
    assert _time(report["started"]) <= _time(report["finished"])
    assert path.with_suffix(".md").read_text().startswith("# cache-status on demo: ")

    # The contract's secrets (marketplace_secrets: the Redis and PostgreSQL passwords here) are always redacted
    # (no_log): masked in the task result, absent everywhere.
    redact = res["invocation"]["module_args"]["redact"]
    assert len(redact) >= 2 and set(redact) == {"VALUE_SPECIFIED_IN_NO_LOG_PARAMETER"}
    assert stack_env["REDIS_PASSWORD"] not in raw_artifacts(result)
