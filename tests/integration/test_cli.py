"""The `runbook` CLI end to end: --json output, -e typing reaching the playbook, the operator's environment kept
out of the run and of every artifact ansible-runner writes."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
RUNBOOK = str(Path(sys.executable).parent / "runbook")
MARKERS = {"PGPASSWORD": "op-env-pg-5f1d2c", "REDIS_PASSWORD": "op-env-redis-8a7b6c",
           "AWS_SECRET_ACCESS_KEY": "op-env-aws-3e4f5a", "GITHUB_TOKEN": "op-env-token-9c8d7e",
           "DOCKER_HOST": "unix:///var/run/docker.sock"}


def _cli(*args, env=None):
    return subprocess.run([RUNBOOK, *args], cwd=ROOT, capture_output=True, text=True, timeout=600,
                          env={**os.environ, **(env or {})})


def _all_bytes(directory: Path) -> str:
    return "\n".join(p.read_text(errors="replace") for p in sorted(directory.rglob("*")) if p.is_file())


def test_run_json_prints_only_json_and_progress_goes_to_stderr(stack_env):
    proc = _cli("run", "cache-status", "--json")
    doc = json.loads(proc.stdout)  # the whole of stdout is one JSON document
    assert proc.returncode == doc["rc"] == 0, proc.stderr[-2000:]
    assert doc["playbook"] == "cache-status" and doc["reports"]["demo"]["playbook"] == "cache-status"
    assert Path(doc["report_paths"]["demo"]).is_file() and Path(doc["artifact_dir"]).is_dir()
    assert "[demo]" in proc.stderr  # per-task progress


def test_operator_environment_stays_out_of_the_run_and_its_artifacts(stack_env):
    """The issue's case: the breach playbook unconfirmed, with secrets in the operator's environment."""
    proc = _cli("run", "emergency-security-breach", "-e", "block_ips=203.0.113.9", "--json", env=MARKERS)
    doc = json.loads(proc.stdout)
    assert doc["rc"] == 0, proc.stderr[-3000:]
    run_dir = Path(doc["artifact_dir"]).parents[1]  # artifacts/<ident>/ : env/, artifacts/run/ (command, events)
    text = _all_bytes(run_dir) + proc.stdout + proc.stderr
    for path in doc["report_paths"].values():
        text += Path(path).read_text() + Path(path).with_suffix(".md").read_text()
    for name, value in MARKERS.items():
        if name != "DOCKER_HOST":
            assert value not in text, f"{name}'s value is in the run's output or artifacts"
    command = json.loads((Path(doc["artifact_dir"]) / "command").read_text())
    assert command["env"].get("DOCKER_HOST") == MARKERS["DOCKER_HOST"]  # configuration passes, secrets do not
    assert not any(k in command["env"] for k in ("PGPASSWORD", "REDIS_PASSWORD", "AWS_SECRET_ACCESS_KEY",
                                                  "GITHUB_TOKEN"))
    assert not (Path(doc["artifact_dir"]) / "fact_cache").exists()
    assert oct(run_dir.stat().st_mode & 0o777) == "0o700"


def test_key_value_reaches_the_playbook_as_a_string(stack_env):
    """version=1.10 stays 1.10 (it was planned as 1.1): the deploy plan names the version it was given."""
    proc = _cli("run", "deploy", "-e", "version=1.10", "--check", "--json")
    doc = json.loads(proc.stdout)
    report = doc["reports"]["demo"]
    text = json.dumps(report)
    assert "1.10" in text and "'1.1'" not in text and '"1.1"' not in text, text[:2000]
