"""view-logs.yml: logs fetched to the controller per service, a summary per service, and no secret anywhere.

To prove the redaction, the test makes the backend log secret values itself: a login attempt whose e-mail is a
secret makes the backend write `failed login for "<secret>"`.
"""
from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from pathlib import Path

from tests.helpers import faults
from tests.helpers.playbooks import assert_no_traceback, check_by_name, raw_artifacts, run

SECRET_KEYS = ("POSTGRES_PASSWORD", "APP_DB_PASSWORD", "REDIS_PASSWORD", "JWT_SECRET")


def login_attempt(stack_env, email: str) -> int:
    url = f"http://{stack_env['BIND_ADDRESS']}:{stack_env['NGINX_HTTP_PORT']}/api/auth/login"
    body = json.dumps({"email": email, "password": "wrong"}).encode()
    req = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status
    except urllib.error.HTTPError as err:
        return err.code


def secrets_of(stack_env) -> dict[str, str]:
    return {k: stack_env[k] for k in SECRET_KEYS if len(stack_env.get(k, "")) >= 8}


def test_view_logs_redacts_secrets_the_backend_logged(stack_env):
    faults.wait_healthy("backend")
    secrets = secrets_of(stack_env)
    assert len(secrets) == len(SECRET_KEYS)
    for value in secrets.values():
        assert login_attempt(stack_env, value) == 401
    result = run("view-logs", extravars={"services": ["backend"], "since": "5m", "pattern": "failed login"})
    assert_no_traceback(result)
    assert result.rc == 0, result.stdout[-3000:]
    check = check_by_name(result.report, "logs:backend")
    assert check["value"] >= len(secrets)
    log_file = Path(check["file"])
    content = log_file.read_text()
    assert content.count("failed login for") >= len(secrets)
    assert oct(log_file.stat().st_mode & 0o777) == "0o600"
    everything = raw_artifacts(result) + content
    for key, value in secrets.items():
        assert value not in everything, f"{key} leaked"
    assert "backend: " in result.stdout and "matching" in result.stdout


def test_view_logs_all_services_one_file_each_with_a_summary(stack_env):
    result = run("view-logs")
    assert_no_traceback(result)
    assert result.rc == 0
    report = result.report
    services = ["backend", "nginx", "postgres", "prometheus", "redis"]
    log_dir = Path(report["log_dir"])
    for service in services:
        check = check_by_name(report, f"logs:{service}")
        assert check["lines_scanned"] > 0 or service == "prometheus"
        assert (log_dir / f"{service}.log").is_file()
        assert f"{service}: " in result.stdout  # the printed summary line
    assert len(report["files"]) == len(services)
    everything = raw_artifacts(result) + "".join((log_dir / f"{s}.log").read_text() for s in services)
    for key, value in secrets_of(stack_env).items():
        assert value not in everything, f"{key} leaked"


def test_view_logs_tail_and_window(stack_env):
    result = run("view-logs", extravars={"services": "nginx,postgres", "tail": 5})
    assert result.rc == 0
    for service in ("nginx", "postgres"):
        check = check_by_name(result.report, f"logs:{service}")
        containers = max(1, len(faults.containers(service)))
        assert check["lines_scanned"] <= 5 * containers and check["lines_written"] <= 5 * containers
    assert {c["name"] for c in result.report["checks"]} == {"logs:nginx", "logs:postgres"}
    # A window in the future of its own start: since after until is refused with a clear message.
    bad = run("view-logs", extravars={"services": ["nginx"], "since": "1m", "until": "2h"})
    assert bad.rc != 0 and "since" in bad.stdout
    assert_no_traceback(bad)


def test_view_logs_unknown_service_is_a_clear_error(stack_env):
    result = run("view-logs", extravars={"services": ["no-such-service"]})
    assert result.rc != 0
    assert "unknown service(s) no-such-service" in result.stdout and "known services" in result.stdout
    assert result.report["status"] == "critical"
    assert_no_traceback(result)


def test_view_logs_in_check_mode(stack_env):
    result = run("view-logs", extravars={"services": ["redis"], "tail": 20}, check=True)
    assert result.rc == 0 and result.report["check_mode"] is True
    assert Path(check_by_name(result.report, "logs:redis")["file"]).is_file()


def test_view_logs_window_forms_work(stack_env):
    """An ISO 8601 time with Z and a Unix time are windows, not errors (the ISO time used to be a traceback through
    the CLI; a Unix time was read as that many seconds ago)."""
    iso = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 600))
    result = run("view-logs", extravars={"services": ["nginx"], "since": iso})
    assert result.rc == 0, result.stdout[-3000:]
    assert_no_traceback(result)
    assert f"window since {iso[:-1]}+00:00" in next(a for a in result.report["actions"])["detail"]
    unix = str(int(time.time()) - 600)
    result = run("view-logs", extravars={"services": ["nginx"], "since": unix})
    assert result.rc == 0, result.stdout[-3000:]
    shown = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(int(unix)))
    assert f"window since {shown}+00:00" in next(a for a in result.report["actions"])["detail"]


def test_view_logs_bad_input_is_refused_by_the_role_and_module(stack_env, tmp_path):
    """The role's and compose_logs' own refusals (set through the role's variables, past the playbook's input check):
    a clear message, rc != 0, no traceback, and no log file written. A negative or non-numeric tail used to be read
    as 0, i.e. every line."""
    cases = [
        ({"logs_tail": -5}, "tail must be a whole number of lines"),
        ({"logs_tail": "abc"}, "tail must be a whole number of lines"),
        ({"logs_since": "99999999999"}, "invalid since '99999999999': 5138-"),
        ({"logs_until": "99999999999"}, "invalid until '99999999999'"),
        ({"logs_pattern": "("}, "invalid regular expression in patterns: '('"),
        ({"logs_services": ["ngnix"]}, "unknown service(s) ngnix"),
    ]
    for i, (extra, text) in enumerate(cases):
        dest = tmp_path / f"case{i}"
        result = run("view-logs", extravars={"logs_services": ["nginx"], **extra, "logs_dest_dir": str(dest)})
        assert result.rc != 0, (extra, result.stdout[-2000:])
        assert text in result.stdout, (extra, result.stdout[-2000:])
        assert_no_traceback(result)
        assert not dest.exists(), extra


def test_view_logs_files_are_0600_in_0700_directories(stack_env, tmp_path):
    """Fetched logs: 0600 files in 0700 directories, also the directories the run creates on the way and a
    destination that already existed with wider modes."""
    base = tmp_path / "fresh" / "reports"
    result = run("view-logs", extravars={"services": ["nginx"], "tail": 5, "marketplace_report_dir": str(base)})
    assert result.rc == 0, result.stdout[-3000:]
    log_dir = Path(result.report["log_dir"])
    assert log_dir.parent == base / "view-logs"
    for d in (log_dir, log_dir.parent):
        assert oct(d.stat().st_mode & 0o777) == "0o700", d
    assert [oct(f.stat().st_mode & 0o777) for f in log_dir.iterdir()] == ["0o600"]
    old = tmp_path / "existing"
    old.mkdir(mode=0o755)
    (old / "nginx.log").write_text("old\n")
    (old / "nginx.log").chmod(0o644)
    result = run("view-logs", extravars={"services": ["nginx"], "tail": 5, "logs_dest_dir": str(old)})
    assert result.rc == 0, result.stdout[-3000:]
    assert oct(old.stat().st_mode & 0o777) == "0o700"
    assert oct((old / "nginx.log").stat().st_mode & 0o777) == "0o600"
    assert (old / "nginx.log").read_text() != "old\n"
