"""The `runbook` CLI without a stack: how -e is typed, exit code 5 for input it cannot use, --version, list.

Runs that reach ansible (and the stack) are in tests/integration/test_cli.py.
"""
from __future__ import annotations

import datetime
import json
import subprocess
import sys
from pathlib import Path

import pytest

from runbook.cli import EXIT_BAD_INPUT, UsageError, main, parse_extravars

ROOT = Path(__file__).resolve().parents[2]
RUNBOOK = str(Path(sys.executable).parent / "runbook")


def test_key_value_stays_a_string_as_in_ansible_playbook():
    out = parse_extravars(["version=1.10", "tail=050", "since=2026-12-01T02:00:00Z", "pids=1,2", "pattern=null",
                           "scale_backend=2.0"])
    assert out == {"version": "1.10", "tail": "050", "since": "2026-12-01T02:00:00Z", "pids": "1,2",
                   "pattern": "null", "scale_backend": "2.0"}


def test_declared_booleans_are_typed():
    out = parse_extravars(["confirm=true", "allow_all=no", "health_fail_on_critical=false", "confirm_x=true"])
    # confirm and allow_all: the public inputs; health_fail_on_critical: a bool of the health role's argument spec
    assert out == {"confirm": True, "allow_all": False, "health_fail_on_critical": False, "confirm_x": "true"}
    # a typo stays the string it was, so the playbook's input check names it instead of reading it as false
    assert parse_extravars(["confirm=ture"]) == {"confirm": "ture"}


def test_json_and_files_keep_their_types(tmp_path):
    yml = tmp_path / "v.yml"
    yml.write_text("services: [backend]\nscale_backend: 2\nsince: 2026-12-01T02:00:00Z\nday: 2026-12-01\n")
    js = tmp_path / "v.json"
    js.write_text('{"pids": [12, 13], "confirm": false}')
    out = parse_extravars(['{"tail": 5, "services": ["nginx"]}', f"@{yml}", f"@{js}"])
    assert out == {"tail": 5, "services": ["backend"], "scale_backend": 2, "since": "2026-12-01T02:00:00Z",
                   "day": "2026-12-01", "pids": [12, 13], "confirm": False}
    json.dumps(out)  # what ansible-runner must serialise (a datetime here was the old traceback)
    assert not any(isinstance(v, datetime.date) for v in out.values())


def test_several_pairs_in_one_argument():
    assert parse_extravars(["a=1 b='x y'"]) == {"a": "1", "b": "x y"}


@pytest.mark.parametrize("item", ["novalue", "=x", "1a=2", "{bad json", "[1, 2]", "@/no/such/file.yml", "a=1 b"])
def test_unusable_extra_vars_raise_usage_error(item):
    with pytest.raises(UsageError):
        parse_extravars([item])


def test_unusable_file(tmp_path):
    bad = tmp_path / "bad.yml"
    bad.write_text("a: [1,\n")
    lst = tmp_path / "list.yml"
    lst.write_text("- 1\n")
    for path in (bad, lst):
        with pytest.raises(UsageError):
            parse_extravars([f"@{path}"])


def _cli(*args):
    return subprocess.run([RUNBOOK, *args], cwd=ROOT, capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("args, words", [
    (["run", "deploy", "-e", "version=1.0;id"], "version '1.0;id' is not a valid image tag"),
    (["run", "cache-flush", "-e", "scope=ALL"], "scope must be one of cache_db, all"),
    (["run", "cache-flush", "-e", "confirm=ture"], "confirm must be true or false"),
    (["run", "view-logs", "-e", "since=99999999999"], "in the future"),
    (["run", "view-logs", "-e", "{bad"], "is not valid JSON"),
    (["run", "no-such-playbook"], "unknown playbook"),
    (["run"], "the following arguments are required"),
    (["bogus"], "invalid choice"),
])
def test_input_the_cli_cannot_use_exits_5_with_a_message_and_no_traceback(args, words):
    proc = _cli(*args)
    assert proc.returncode == EXIT_BAD_INPUT, proc.stdout + proc.stderr
    assert words in proc.stderr and "Traceback" not in proc.stderr + proc.stdout
    assert "PLAY" not in proc.stdout  # refused before ansible-playbook started


def test_main_returns_5_in_process():
    assert main(["run", "deploy", "-e", "version=$(id)"]) == EXIT_BAD_INPUT


def test_version():
    proc = _cli("--version")
    assert proc.returncode == 0
    assert proc.stdout.startswith("runbook 0.") and "ansible-core 2.19" in proc.stdout


def test_list_json_is_pure_json_with_description_and_state_change():
    proc = _cli("list", "--json")
    assert proc.returncode == 0
    rows = {r["name"]: r for r in json.loads(proc.stdout)}
    assert sorted(rows) == sorted(p.stem for p in (ROOT / "playbooks").glob("*.yml"))
    assert rows["health-check"]["changes_state"] is False and rows["health-check"]["description"]
    assert rows["cache-flush"]["changes_state"] is True
    assert rows["cache-flush"]["inputs"] == ["confirm", "scope", "include_prefixes"]
    text = _cli("list").stdout
    assert "cache-flush" in text and "changes state (confirm=true)" in text and "read-only" in text
