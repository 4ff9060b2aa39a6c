"""The health_gather action plugin: on a local connection with the controller's own Python the parts run in the
task's worker process; otherwise (here: health_gather_in_process=false, an `environment:` keyword) the module runs
as a process. Both ways against the real stack, through ansible-playbook: the same result, the same masking, the
same errors."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent

PLAYBOOK = """\
- hosts: marketplace
  gather_facts: false
  tasks:
    - name: Gather in-process (the default on the demo inventory)
      health_gather: &parts
        http:
          probes: [{name: api_health, url: "{{ marketplace_base_url }}/api/health"}]
        postgres: {login_host: "{{ marketplace_db_host }}", login_port: "{{ marketplace_db_port }}",
                   login_user: "{{ marketplace_db_user }}", login_password: "{{ marketplace_db_password }}",
                   login_db: "{{ marketplace_db_name }}", sections: [connections]}
        redis: {login_host: "{{ marketplace_redis_host }}", login_port: "{{ marketplace_redis_port }}",
                login_password: "{{ marketplace_redis_password }}", sections: [memory], sample_seconds: 0}
        logs: {project: "{{ marketplace_compose_project }}", tail: 20,
               extra_secrets: ["{{ marketplace_db_password }}"]}
        compose: {project: "{{ marketplace_compose_project }}", stats: false}
        host: {sections: [memory, disk], paths: [/]}
      register: inproc
    - name: Gather as a module (switched off)
      health_gather: *parts
      vars:
        health_gather_in_process: false
      register: module
    - name: Gather as a module (an environment keyword)
      health_gather: *parts
      environment:
        EM_TEST: "1"
      register: with_env
    - name: A bad part option, in-process
      health_gather: &bad
        postgres: {login_host: 127.0.0.1, sections: [connections], no_such_option: 1}
        redis: {login_host: 127.0.0.1, db: not-a-number}
      register: bad_inproc
      ignore_errors: true
    - name: A bad part option, as a module
      health_gather: *bad
      vars:
        health_gather_in_process: false
      register: bad_module
      ignore_errors: true
    - name: An unknown option, in-process
      health_gather: &unknown
        host: {sections: [memory]}
        bogus: 1
      register: unknown_inproc
      ignore_errors: true
    - name: An unknown option, as a module
      health_gather: *unknown
      vars:
        health_gather_in_process: false
      register: unknown_module
      ignore_errors: true
    - name: Keep the results for the test
      ansible.builtin.copy:
        dest: "{{ out_file }}"
        content: "{{ {'inproc': inproc, 'module': module, 'with_env': with_env, 'bad_inproc': bad_inproc,
                      'bad_module': bad_module, 'unknown_inproc': unknown_inproc,
                      'unknown_module': unknown_module} | to_json }}"
        mode: "0600"
      delegate_to: localhost
"""


def _shape(value, depth=3):
    """The keys of a result, nested ``depth`` deep (values differ from one gather to the next)."""
    if isinstance(value, dict) and depth:
        return {k: _shape(v, depth - 1) for k, v in value.items()}
    return type(value).__name__


@pytest.fixture(scope="module")
def gathered(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("health-gather-action")
    (tmp / "play.yml").write_text(PLAYBOOK)
    out = tmp / "out.json"
    env = {**os.environ, "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"), "ANSIBLE_NOCOLOR": "1",
           "PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    cmd = [str(VENV_BIN / "ansible-playbook"), str(tmp / "play.yml"), "-i", str(ROOT / "inventory" / "demo"),
           "-e", f"out_file={out}", "-vvv"]
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    return json.loads(out.read_text()), proc.stdout


def test_local_runs_in_process_and_returns_what_the_module_returns(gathered, stack_env):
    results, _ = gathered
    inproc, module, with_env = results["inproc"], results["module"], results["with_env"]
    assert inproc["in_process"] is True
    assert module["in_process"] is False and with_env["in_process"] is False
    for result in (inproc, module, with_env):
        assert not result.get("failed"), result.get("msg")
        assert result["changed"] is False and result["failed_parts"] == []
        assert set(result["timings"]) == {"http", "postgres", "redis", "logs", "compose", "host"}
    assert inproc["http"]["probes"]["api_health"]["status"] == 200
    assert inproc["postgres"]["available"] is True and inproc["redis"]["available"] is True
    assert inproc["postgres"]["server"]["version"] == module["postgres"]["server"]["version"]
    assert sorted(inproc["compose"]["services"]) == sorted(module["compose"]["services"])
    # The same result, key for key and type for type, three levels deep (the values are two gathers apart).
    drop = ("in_process", "timings", "duration_seconds")
    strip = lambda r: {k: v for k, v in r.items() if k not in drop}  # noqa: E731
    assert _shape(strip(inproc)) == _shape(strip(module))
    # The failed results are alike too (no in_process: a failing module returns only its error).
    assert set(results["bad_inproc"]) == set(results["bad_module"])


def test_no_secret_in_the_output_either_way(gathered, stack_env):
    results, stdout = gathered
    text = stdout + json.dumps(results)
    assert stack_env["POSTGRES_PASSWORD"] not in text
    assert stack_env["REDIS_PASSWORD"] not in text
    # -vvv echoes each gather's arguments (AnsibleModule's invocation), the passwords masked both ways.
    # (JSON or YAML, as ansible.cfg's callback_result_format says)
    masked = re.compile(r'"?login_password"?: "?VALUE_SPECIFIED_IN_NO_LOG_PARAMETER"?')
    assert len(masked.findall(stdout)) >= 2 * 3, stdout[-3000:]
    # -vvv names why a task ran as a module.
    assert "health_gather runs as a module: health_gather_in_process is false" in stdout
    assert "health_gather runs as a module: the task sets an environment" in stdout


def test_bad_options_fail_the_same_way(gathered):
    results, stdout = gathered
    for case in ("bad", "unknown"):
        inproc, module = results[case + "_inproc"], results[case + "_module"]
        assert inproc["failed"] is True and module["failed"] is True
        assert inproc["msg"] == module["msg"], case
    assert results["bad_inproc"]["msg"].startswith("invalid options: postgres: no_such_option.")
    assert "redis: argument 'db' is of type str" in results["bad_inproc"]["msg"]
    assert results["unknown_inproc"]["msg"].startswith("Unsupported parameters for (health_gather) module: bogus")
    assert "Traceback" not in stdout
