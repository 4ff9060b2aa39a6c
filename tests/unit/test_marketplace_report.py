"""The run report: `marketplace_report` runs as an action plugin in the controller's process, identical to the module.

ansible-core pairs a task with the action plugin of its name (action_plugins/marketplace_report.py, through
`action_plugins` in ansible.cfg); library/marketplace_report.py stays the documentation and the argument spec, and
both write through module_utils/marketplace_report.py. These tests show the pairing with ansible's own
TaskExecutor code, and compare the action with the module (run in-process, as AnsiballZ would run it) input by
input: same files, same results, same errors, same masking. tests/integration/test_report.py runs it end to end.
"""
from __future__ import annotations

import datetime
import importlib.util
import json
import os
import stat
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml

from tests.helpers.modules import ANSIBLE_CFG, ROOT, assert_return_documented, run_module

ACTION_FILE = ROOT / "action_plugins" / "marketplace_report.py"
FILTER_FILE = ROOT / "roles" / "checks" / "filter_plugins" / "marketplace_checks.py"
REPORT_TASKS = ROOT / "roles" / "report" / "tasks" / "main.yml"
PYTHON = str(ROOT / ".venv" / "bin" / "python") if (ROOT / ".venv").exists() else sys.executable
SECRET = "s3cr3t-report-value"
FROZEN = datetime.datetime(2026, 1, 2, 3, 4, 5, tzinfo=datetime.UTC)

# Which handler ansible-core's TaskExecutor picks for the report role's task, in a fresh process with our
# ansible.cfg (TaskExecutor._get_action_handler_with_module_context, called with the attributes it reads).
RESOLVE = r"""
import json, sys
from types import SimpleNamespace
import yaml
from ansible.plugins.loader import init_plugin_loader
init_plugin_loader()
from ansible import plugins
from ansible._internal._templating._engine import TemplateEngine
from ansible.executor.task_executor import TaskExecutor
from ansible.parsing.dataloader import DataLoader
from ansible.playbook.play_context import PlayContext
from ansible.playbook.task import Task

task = Task.load(yaml.safe_load(open(sys.argv[1]))[0], loader=DataLoader())
executor = SimpleNamespace(_task=task, _shared_loader_obj=plugins.loader, _play_context=PlayContext(),
                           _loader=DataLoader(),
                           _connection=SimpleNamespace(supports_persistence=False, force_persistence=False))
handler, _ = TaskExecutor._get_action_handler_with_module_context(executor, TemplateEngine())
module = plugins.loader.module_loader.find_plugin_with_context(task.action)
print(json.dumps({"action": task.action, "handler": handler._load_name,
                  "handler_file": sys.modules[type(handler).__module__].__file__,
                  "module_file": module.plugin_resolved_path, "module_action_plugin": module.action_plugin}))
"""


def _resolve(env: dict[str, str] | None = None) -> dict:
    proc = subprocess.run([PYTHON, "-c", RESOLVE, str(REPORT_TASKS)], cwd=ROOT, capture_output=True, text=True,
                          timeout=120, env={**os.environ, "ANSIBLE_CONFIG": str(ANSIBLE_CFG), **(env or {})})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_the_report_task_runs_the_action_plugin(tmp_path):
    task = yaml.safe_load(REPORT_TASKS.read_text())[0]
    # delegate_to: localhost stays as a safety net for where the action plugin is not configured (module fallback)
    assert "marketplace_report" in task and task["delegate_to"] == "localhost" and task["check_mode"] is False
    resolved = _resolve()
    assert resolved["action"] == "marketplace_report"
    assert resolved["handler"] == "marketplace_report"
    assert Path(resolved["handler_file"]).resolve() == ACTION_FILE
    # The module is still found (ansible-doc, argument spec) and redirects to no other action.
    assert Path(resolved["module_file"]).resolve() == ROOT / "library" / "marketplace_report.py"
    assert resolved["module_action_plugin"] is None
    # Control: without our action_plugins path the same task would run the module through `normal`.
    assert _resolve({"ANSIBLE_ACTION_PLUGINS": str(tmp_path)})["handler"] == "normal"


def _load(path: Path, name: str):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture()
def frozen_clock(monkeypatch):
    """Both copies of module_utils/marketplace_report (the module's ansible.module_utils one, the action's
    marketplace_module_utils one) write the same time, so their files can be compared byte for byte."""
    action = _load(ACTION_FILE, "marketplace_report_action_for_test")
    mods = [action._module_utils("marketplace_report")]
    import ansible.module_utils.marketplace_report as module_side

    mods.append(module_side)
    for mod in mods:
        monkeypatch.setattr(mod, "_utcnow", lambda: FROZEN)
    return action


def _run_action(action_module, args: dict, check_mode: bool = False) -> dict:
    task = SimpleNamespace(args=args, check_mode=check_mode, async_val=0, action="marketplace_report")
    connection = SimpleNamespace(_shell=SimpleNamespace(tmpdir=None))
    plugin = action_module.ActionModule(task, connection, SimpleNamespace(), None, None, None)
    plugin._load_name = "marketplace_report"  # as ansible's plugin loader names it (validate_argument_spec's messages)
    return json.loads(json.dumps(plugin.run(task_vars={})))


def _tree(base: Path) -> dict[str, tuple]:
    out = {}
    for p in sorted(base.rglob("*")):
        st = p.stat()
        out[str(p.relative_to(base))] = (stat.S_IMODE(st.st_mode), st.st_uid,
                                         p.read_text() if p.is_file() else None)
    return out


def _cases(out: Path) -> dict[str, tuple[dict, bool]]:
    full = {
        "playbook": "cmp-full", "host": "demo", "report_dir": str(out), "started": "2026-01-02T03:00:00Z",
        "checks": [{"name": "a", "status": "ok", "value": 1, "threshold": {"warning": 2},
                    "message": "m " + SECRET, "component": "x"},
                   {"name": "b", "status": "unknown", "value": 1.5},
                   {"name": "c|pipe", "status": "warning", "value": (1, 2), "message": "line1\nline2"}],
        "actions": [{"name": "act", "changed": 1, "detail": "did " + SECRET, "extra_key": 3}, {"name": "act2"}],
        "severity": "P2", "summary": "summary with %s and ab" % SECRET,
        "extra": {"timeline": [1, 2], "diagnosis": {"x": SECRET}, "playbook": "ignored",
                  "when": datetime.datetime(2026, 1, 2, 3, 4, 5)},
        "redact": [SECRET, "ab"], "ran_in_check_mode": "yes",
    }
    base = {"playbook": "x", "host": "h", "report_dir": str(out)}
    return {
        "full": (full, False),
        "minimal": ({"playbook": "cmp-min", "host": "demo", "report_dir": str(out / "rel" / ".." / "min"),
                     "started": 12345}, False),
        "check_mode": ({**base, "playbook": "cmp-check", "status": "critical"}, True),
        "secret_in_host": ({**base, "host": "h-" + SECRET, "redact": [SECRET]}, False),
        "missing_host": ({"playbook": "x", "report_dir": str(out)}, False),
        "bad_choice": ({**base, "status": "bad", "redact": [SECRET]}, False),
        "url_password_refused": ({**base, "status": "bad", "summary": "db postgresql://app:%s@db/x" % SECRET}, False),
        "unsupported": ({**base, "bogus": 1}, False),
        "check_without_name": ({**base, "checks": [{"status": "ok"}]}, False),
        "check_bad_status": ({**base, "checks": [{"name": "n", "status": "fine"}]}, False),
        "action_not_a_dict": ({**base, "actions": ["just a string"]}, False),
        "unwritable": ({**base, "report_dir": "/proc/nope", "summary": SECRET, "redact": [SECRET]}, False),
    }


def test_the_action_writes_and_returns_what_the_module_does(tmp_path, frozen_clock):
    """Input by input, the action and the module leave the same files and return the same result."""
    results = {}
    for side in ("module", "action"):
        out = tmp_path / side
        out.mkdir()
        for name, (args, check_mode) in _cases(out).items():
            if side == "module":
                # ansible passes the module its name (_update_module_args); errors quote it
                result = run_module("marketplace_report", {**args, "_ansible_module_name": "marketplace_report"},
                                    check_mode=check_mode)
                result.pop("_raw")
            else:
                result = _run_action(frozen_clock, args, check_mode=check_mode)
            results[side, name] = json.loads(json.dumps(result).replace(str(out), "OUT"))
    for name in _cases(tmp_path):
        assert results["action", name] == results["module", name], name
    assert _tree(tmp_path / "action") == _tree(tmp_path / "module")

    action = {name: results["action", name] for name in _cases(tmp_path)}
    full = action["full"]
    assert not full.get("failed") and full["changed"] is False and full["status"] == "warning"
    assert full["counts"] == {"ok": 1, "warning": 1, "critical": 0, "unknown": 1}
    assert_return_documented("marketplace_report", full)
    report = json.loads((tmp_path / "action" / "cmp-full" / "demo-20260102T030405Z.json").read_text())
    assert (tmp_path / "action" / "cmp-full" / "demo-latest.json").read_text() == json.dumps(report, indent=2) + "\n"
    assert report["finished"] == "2026-01-02T03:04:05+00:00" and report["check_mode"] is True
    assert report["when"] == "2026-01-02T03:04:05" and report["timeline"] == [1, 2]  # extra, at the top level
    assert report["diagnosis"] == {"x": "********"} and report["summary"] == "summary with ******** and ab"
    assert report["checks"][2]["value"] == [1, 2] and report["playbook"] == "cmp-full"
    # Redacted in every result and file content (a file NAME keeps the host it is given, as it always did).
    assert SECRET not in json.dumps(action) and SECRET not in json.dumps(list(_tree(tmp_path / "action").values()))
    assert full["invocation"]["module_args"]["redact"] == ["VALUE_SPECIFIED_IN_NO_LOG_PARAMETER"] * 2
    assert action["check_mode"]["report_path"] == "OUT/cmp-check/h-20260102T030405Z.json"
    assert action["check_mode"]["status"] == "critical" and not (tmp_path / "action" / "cmp-check").exists()
    assert action["missing_host"]["msg"] == "missing required arguments: host"
    assert action["bad_choice"]["msg"] == "value of status must be one of: ok, warning, critical, got: bad"
    assert action["unsupported"]["msg"].startswith("Unsupported parameters for (marketplace_report) module: bogus.")
    assert action["check_without_name"]["msg"] == "checks[0] has no name"
    assert action["check_bad_status"]["msg"] == "checks[0] (n) has an invalid status 'fine'"
    assert "unable to convert to dict" in action["action_not_a_dict"]["msg"]
    assert action["unwritable"]["msg"] == "cannot write the report under /proc/nope/x: No such file or directory"
    assert action["unwritable"]["report_path"] == "/proc/nope/x/h-20260102T030405Z.json"
    assert all(action[n]["failed"] for n in ("missing_host", "bad_choice", "unsupported", "check_without_name",
                                             "check_bad_status", "action_not_a_dict", "unwritable"))


@pytest.mark.parametrize("side", ["module", "action"])
def test_reports_are_private(tmp_path, side):
    """Issue 10, defect 9: report files are 0600 in 0700 directories, whatever the umask: a new report_dir and
    playbook directory are created 0700, an existing playbook directory (0755 from an older run) is tightened,
    and an existing report_dir of the operator's keeps its mode."""
    fresh = tmp_path / "fresh" / "reports"
    fresh.parent.mkdir()
    shared = tmp_path / "shared"
    (shared / "old-run").mkdir(parents=True)
    shared.chmod(0o755)
    (shared / "old-run").chmod(0o755)
    old_umask = os.umask(0o022)
    try:
        for report_dir, playbook in ((fresh, "new-run"), (shared, "old-run")):
            args = {"playbook": playbook, "host": "demo", "report_dir": str(report_dir)}
            if side == "module":
                result = run_module("marketplace_report", args)
            else:
                result = _run_action(_load(ACTION_FILE, "marketplace_report_action_modes"), args)
            assert not result.get("failed"), result
    finally:
        os.umask(old_umask)
    for report_dir, playbook in ((fresh, "new-run"), (shared, "old-run")):
        files = sorted((report_dir / playbook).iterdir())
        assert len(files) == 3
        assert {f.name: stat.S_IMODE(f.stat().st_mode) for f in files} == {f.name: 0o600 for f in files}
        assert stat.S_IMODE((report_dir / playbook).stat().st_mode) == 0o700
    assert stat.S_IMODE(fresh.stat().st_mode) == 0o700
    assert stat.S_IMODE(shared.stat().st_mode) == 0o755
