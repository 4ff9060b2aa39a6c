"""The ansible-runner driver (`runbook` command and run_playbook) and the SSH path."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from runbook.cli import parse_extravars
from runbook.driver import DriverError, resolve_playbook
from tests.helpers.playbooks import assert_no_traceback, run
from tests.helpers.settle import settle

ROOT = Path(__file__).resolve().parents[2]
RUNBOOK = str(Path(sys.executable).parent / "runbook")


def test_runbook_cli_runs_the_health_check_and_prints_the_report(stack_env):
    settle(stack_env)  # earlier tests' faults (5xx in Prometheus' window, a busy host) would make it non-ok
    proc = subprocess.run([RUNBOOK, "run", "health-check", "-i", "inventory/demo"], cwd=ROOT,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Combine the sections' checks; overall status, severity and summary: ok" in proc.stdout  # per-task progress
    line = next(x for x in proc.stdout.splitlines() if "report [demo]:" in x)
    path = Path(line.split("report [demo]:")[1].split(" (")[0].strip())
    report = json.loads(path.read_text())
    assert report["playbook"] == "health-check" and report["host"] == "demo" and report["status"] == "ok"
    assert (path.parent / "demo-latest.json").exists() and path.with_suffix(".md").exists()
    assert "artifacts:" in proc.stdout


def test_run_playbook_returns_rc_stats_events_and_report(stack_env):
    settle(stack_env)
    result = run("health-check")
    assert result.rc == 0 and result.status == "successful"
    assert result.host_stats("demo")["failures"] == 0
    assert any(ev.get("event") == "playbook_on_stats" for ev in result.events)
    assert result.report["status"] == "ok"
    for key in ("playbook", "host", "started", "finished", "status", "severity", "checks", "actions"):
        assert key in result.report
    assert_no_traceback(result)


def test_check_mode_is_passed_through(stack_env):
    result = run("health-check", check=True)
    assert result.rc == 0
    assert result.report["check_mode"] is True


def test_unknown_playbook_is_a_clear_error():
    with pytest.raises(DriverError, match="unknown playbook 'no-such-playbook'"):
        resolve_playbook("no-such-playbook")
    proc = subprocess.run([RUNBOOK, "run", "no-such-playbook"], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 5 and "unknown playbook" in proc.stderr and "Traceback" not in proc.stderr


def test_extravars_parsing(tmp_path):
    varfile = tmp_path / "v.yml"
    varfile.write_text("services: [backend]\n")
    out = parse_extravars(["confirm=true", "tail=50", '{"pattern": "cache:*"}', f"@{varfile}"])
    assert out == {"confirm": True, "tail": "50", "pattern": "cache:*", "services": ["backend"]}
    with pytest.raises(DriverError):
        parse_extravars(["novalue"])


def test_failed_play_exits_non_zero_with_the_playbook_status(stack_env):
    # An unreachable front door is critical and fails the run (health_fail_on_critical defaults to true).
    result = run("health-check", extravars={"marketplace_base_url": "http://127.0.0.1:9",
                                            "marketplace_https_url": "https://127.0.0.1:9"})
    assert result.rc != 0 and result.status == "failed"
    assert result.report["status"] == "critical"
    assert_no_traceback(result)


def test_health_check_over_real_ssh(stack_env, ssh_target):
    settle(stack_env)
    result = run("health-check", inventory=ROOT / "inventory" / "demo-ssh", envvars=ssh_target.env)
    assert result.rc == 0, result.stdout[-3000:]
    assert result.report["host"] == "demo" and result.report["status"] == "ok"
    # The connection really was SSH: the client recorded the private sshd's host key.
    host_key = (ssh_target.dir / "host_key.pub").read_text().split()[1]
    assert host_key in ssh_target.known_hosts.read_text()
