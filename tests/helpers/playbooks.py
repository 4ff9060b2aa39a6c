"""Run playbooks in tests through the product's own driver (runbook.driver.run_playbook)."""
from __future__ import annotations

import json
import re

from runbook.driver import RunResult, run_playbook

TRACEBACK = re.compile(
    r"Traceback \(most recent call last\)|MODULE FAILURE|An exception occurred during task execution")


def run(playbook: str, **kwargs) -> RunResult:
    """Run a playbook; always returns (rc, status, stats, events, report) via RunResult."""
    kwargs.setdefault("keep_artifacts", 200)
    return run_playbook(playbook, **kwargs)


def raw_artifacts(result: RunResult) -> str:
    """Everything the run left: stdout, every event (JSON) and the report(s), as one string."""
    parts = [result.stdout]
    parts += [json.dumps(ev) for ev in result.events]
    for path in result.report_paths.values():
        parts.append(open(path).read())
        md = path[:-5] + ".md"
        try:
            parts.append(open(md).read())
        except OSError:
            pass
    for f in sorted(result.artifact_dir.rglob("*")):
        if f.is_file() and f.stat().st_size < 5_000_000:
            parts.append(f.read_text(errors="replace"))
    return "\n".join(parts)


def assert_no_traceback(result: RunResult) -> None:
    text = result.stdout + "\n".join(json.dumps(ev.get("event_data", {}).get("res", {})) for ev in result.events)
    match = TRACEBACK.search(text)
    assert not match, f"traceback in the run's output: ...{text[max(0, match.start() - 500):match.end() + 1500]}"


def check_by_name(report: dict, name: str) -> dict:
    for c in report["checks"]:
        if c["name"] == name:
            return c
    raise AssertionError(f"no check named {name!r} in report: {[c['name'] for c in report['checks']]}")
