"""view-logs.yml: logs fetched to the controller per service, a summary per service, and no secret anywhere.

To prove the redaction, the test makes the backend log secret values itself: a login attempt whose e-mail is a
secret makes the backend write `failed login for "<secret>"`.
"""
from __future__ import annotations

import json
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
