"""compose_logs against the real reference stack (read only) and a throwaway compose project of our own.

The throwaway project (debian:bookworm-slim, network_mode host, no bridge network) carries the stack's
real secrets in its containers' environment and prints them into its log, so the redaction is tested on
the values that matter; the assertion is on the module's raw JSON output.
"""
from __future__ import annotations

import os
import re
import subprocess
import time
import tracemalloc
import uuid
from datetime import UTC, datetime, timedelta

import docker
import pytest
import requests

from tests.helpers.modules import assert_return_documented, load_utils, run_module

STACK_PROJECT = "equipment-marketplace"
SECRET_NAMES = ("POSTGRES_PASSWORD", "APP_DB_PASSWORD", "REDIS_PASSWORD", "JWT_SECRET")
BULK_LINES = 30000
PAD = "x" * 1940  # with the timestamp and "INFO ", the secret after it straddles the 2000-character cut
FILLER = " ".join(["filler"] * 19)

COMPOSE_FILE = r"""
x-common: &common
  image: debian:bookworm-slim
  network_mode: host
  pull_policy: never
  stop_grace_period: 1s
services:
  talker:
    <<: *common
    environment:
      SECRET_TOKEN: ${EMT_JWT}
      DB_PASSWORD: ${EMT_APP_PW}
      DATABASE_URL: postgresql://app:${EMT_APP_PW}@127.0.0.1:5432/app
      REDIS_URL: redis://:${EMT_REDIS_PW}@127.0.0.1:6379/0
      ADMIN_PASSWD: ${EMT_PG_PW}
      PAD: ${EMT_PAD}
    command:
      - sh
      - -c
      - |
        echo "INFO boot with token $$SECRET_TOKEN"
        echo "ERROR cannot connect to $$DATABASE_URL"
        echo "ERROR auth failed, password was $$DB_PASSWORD" >&2
        echo "FATAL redis at $$REDIS_URL refused"
        echo "WARN admin $$ADMIN_PASSWD"
        echo "INFO header Authorization: Bearer abcDEF123.ghi-jkl_mno"
        echo "INFO session eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjMifQ.c2lnbmF0dXJlc2lnbmF0dXJl"
        echo "INFO proxy http://bob:hunter2xyz@proxy.local:3128/"
        echo "INFO errors_total 5"
        echo "TypeError: x is undefined"
        echo "java.lang.NullPointerException at Foo"
        echo "INFO $$PAD $$SECRET_TOKEN end"
        echo "INFO done"
        exec sleep infinity
  pair:
    <<: *common
    deploy: {replicas: 2}
    command: ["sh", "-c", "echo 'ERROR from a replica'; echo 'INFO ok'; exec sleep infinity"]
  tty:
    <<: *common
    tty: true
    command: ["sh", "-c", "echo 'ERROR on a tty'; echo 'INFO second'; exec sleep infinity"]
  bulk:
    <<: *common
    command:
      - sh
      - -c
      - |
        seq 1 __BULK__ | awk '{
          if ($$1 % 100 == 0) t = "ERROR"; else t = "INFO"
          printf "%s line %d %s\n", t, $$1, "__FILLER__" }'
        echo "INFO done"
        exec sleep infinity
""".replace("__BULK__", str(BULK_LINES)).replace("__FILLER__", FILLER)

# talker lines matching the default patterns: 2 ERROR, FATAL, TypeError, NullPointerException
TALKER_MATCHES = 5
TALKER_LINES = 13


def _compose(project, workdir, *args, env=None, check=True):
    return subprocess.run(["docker", "compose", "-p", project, "-f", str(workdir / "compose.yml"), *args],
                          check=check, capture_output=True, text=True, timeout=120, env=env)


@pytest.fixture(scope="module")
def secrets(stack_env):
    return {name: stack_env[name] for name in SECRET_NAMES}


@pytest.fixture(scope="module")
def throwaway(tmp_path_factory, secrets):
    project = "emtest-logs-" + uuid.uuid4().hex[:8]
    workdir = tmp_path_factory.mktemp("compose_logs")
    (workdir / "compose.yml").write_text(COMPOSE_FILE)
    # The secrets reach compose through its environment only: no file holds them.
    env = {**os.environ, "EMT_JWT": secrets["JWT_SECRET"], "EMT_APP_PW": secrets["APP_DB_PASSWORD"],
           "EMT_REDIS_PW": secrets["REDIS_PASSWORD"], "EMT_PG_PW": secrets["POSTGRES_PASSWORD"], "EMT_PAD": PAD}
    client = docker.APIClient(version="auto", timeout=30)
    try:
        started = datetime.now(UTC)
        _compose(project, workdir, "up", "-d", env=env)
        deadline = time.monotonic() + 45
        for service in ("talker", "pair", "tty", "bulk"):
            for c in client.containers(filters={"label": [f"com.docker.compose.project={project}",
                                                          f"com.docker.compose.service={service}"]}):
                # stdout and stderr are copied separately: "done" is among the last lines, not always last
                while b"done" not in client.logs(c["Id"], tail=5) and service in ("talker", "bulk"):
                    assert time.monotonic() < deadline, f"{service} did not finish its output"
                    time.sleep(0.2)
        time.sleep(0.5)  # the replicas and the tty service print two short lines
        yield {"project": project, "dir": workdir, "started": started}
    finally:
        client.close()
        _compose(project, workdir, "down", "--timeout", "1", "--remove-orphans", env=env, check=False)


def _assert_no_secret(raw, secrets):
    for name, value in secrets.items():
        assert value not in raw, f"{name} leaked"
        # not even a cut-off piece of it
        for i in range(0, len(value) - 12, 6):
            assert value[i:i + 12] not in raw, f"part of {name} leaked"


# -------------------------------------------------------------------------------- throwaway project


def test_error_lines_counted_per_service(throwaway):
    result = run_module("compose_logs", {"project": throwaway["project"], "match_lines": 50})
    assert not result.get("failed"), result.get("msg")
    logs = result["logs"]
    assert set(logs) == {"talker", "pair", "tty", "bulk"}
    assert logs["talker"]["lines_scanned"] == TALKER_LINES
    assert logs["talker"]["match_count"] == TALKER_MATCHES
    assert logs["talker"]["pattern_counts"] == {"error\\b": 3, "fatal": 1, "exception": 1, "panic": 0}
    assert not any("errors_total" in line for line in logs["talker"]["matches"])
    assert logs["bulk"]["match_count"] == BULK_LINES // 100
    assert logs["bulk"]["lines_scanned"] == BULK_LINES + 1
    assert len(logs["bulk"]["matches"]) == 50
    assert logs["bulk"]["matches"][-1].endswith("ERROR line %d %s" % (BULK_LINES, FILLER))
    assert logs["tty"]["match_count"] == 1 and logs["tty"]["lines_scanned"] == 2
    # two replicas: both read, each line says which one
    assert len(logs["pair"]["containers"]) == 2 and logs["pair"]["match_count"] == 2
    assert {line.split(" ")[1] for line in logs["pair"]["matches"]} == set(logs["pair"]["containers"])
    assert result["total_matches"] == sum(e["match_count"] for e in logs.values())
    # default: lines keep the Docker timestamp
    assert datetime.fromisoformat(logs["tty"]["matches"][0].split(" ")[0].replace("Z", "+00:00"))
    assert_return_documented("compose_logs", result)


def test_no_secret_value_anywhere_in_the_raw_output(throwaway, secrets):
    result = run_module("compose_logs", {"project": throwaway["project"], "services": ["talker"],
                                         "last_lines": 100, "match_lines": 100, "patterns": ["."]})
    raw = result["_raw"]
    _assert_no_secret(raw, secrets)
    lines = result["logs"]["talker"]["last_lines"]
    assert len(lines) == TALKER_LINES
    text = "\n".join(lines)
    assert "boot with token [REDACTED:SECRET_TOKEN]" in text
    assert "postgresql://app:[REDACTED:" in text  # DATABASE_URL's password (also DB_PASSWORD's value)
    assert "password was [REDACTED:" in text
    assert "redis://:[REDACTED:" in text
    assert "admin [REDACTED:ADMIN_PASSWD]" in text
    assert "Bearer [REDACTED]" in text and "abcDEF123" not in raw
    assert "[REDACTED:JWT]" in text and "c2lnbmF0dXJl" not in raw
    assert "http://bob:[REDACTED]@proxy.local" in text and "hunter2xyz" not in raw
    # the padded line: the secret straddles the 2000-character cut and is replaced whole
    long_line = next(line for line in lines if PAD[:50] in line)
    assert long_line.endswith("[...truncated]") and len(long_line) < 2100
    assert "[REDACTED:SECRET_TOKEN]" in long_line
    assert result["redaction"]["replacements"] >= 9
    assert result["redaction"]["secret_values"] >= 4


def test_window_tail_and_timestamps(throwaway):
    project = throwaway["project"]
    result = run_module("compose_logs", {"project": project, "services": ["talker"], "tail": 2, "last_lines": 5,
                                         "timestamps": False})
    assert result["logs"]["talker"]["lines_scanned"] == 2
    assert len(result["logs"]["talker"]["last_lines"]) == 2
    assert not any(re.match(r"\d{4}-\d\d-\d\dT", line) for line in result["logs"]["talker"]["last_lines"])
    assert result["tail"] == 2

    before = (throwaway["started"] - timedelta(seconds=5)).isoformat()
    result = run_module("compose_logs", {"project": project, "services": ["talker"], "until": before})
    assert result["logs"]["talker"]["lines_scanned"] == 0
    result = run_module("compose_logs", {"project": project, "services": ["talker"], "since": before})
    assert result["logs"]["talker"]["lines_scanned"] == TALKER_LINES
    assert result["since"].startswith(before[:19])

    for since in ("3600", "1h30m", "2d"):
        result = run_module("compose_logs", {"project": project, "services": ["talker"], "since": since})
        assert result["logs"]["talker"]["lines_scanned"] == TALKER_LINES, since
    later = (datetime.now(UTC) + timedelta(seconds=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    time.sleep(1.2)
    result = run_module("compose_logs", {"project": project, "services": ["talker"], "since": later})
    assert result["logs"]["talker"]["lines_scanned"] == 0


def test_log_is_streamed_with_bounded_memory(throwaway):
    """Reading a 4.5 MB log allocates little more than reading a two-line one."""
    def peak_of(service):
        tracemalloc.start()
        try:
            result = run_module("compose_logs", {"project": throwaway["project"], "services": [service],
                                                 "match_lines": 5, "last_lines": 5})
            return result, tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()

    peak_of("tty")  # first import of everything
    _, baseline = peak_of("tty")
    result, peak = peak_of("bulk")
    log_bytes = BULK_LINES * 150
    assert result["logs"]["bulk"]["lines_scanned"] == BULK_LINES + 1
    assert peak - baseline < log_bytes / 10, f"peak {peak} (baseline {baseline}) for a {log_bytes}-byte log"


def test_bad_input_fails_cleanly(throwaway):
    project = throwaway["project"]
    cases = [
        ({"patterns": ["ERROR(", "ok"]}, "invalid regular expression in patterns"),
        ({"redact_patterns": ["[a-"]}, "invalid regular expression in redact_patterns"),
        ({"services": ["talker", "talkr"]}, "unknown service(s) talkr"),
        ({"since": "yesterday"}, "invalid since"),
        ({"until": "15 parsecs"}, "invalid until"),
        ({"since": "1h", "until": "2h"}, "must be before until"),
        ({"since": "2999-01-01T00:00:00Z"}, "in the future"),
        ({"tail": -1}, "negative"),
        ({"max_line_length": 10}, "max_line_length"),
        ({"patterns": []}, "patterns"),
    ]
    for args, text in cases:
        result = run_module("compose_logs", {"project": project, **args})
        assert result["failed"] is True and text in result["msg"], (args, result.get("msg"))
    result = run_module("compose_logs", {"project": project, "services": ["talkr"]})
    for name in ("talker", "pair", "tty", "bulk"):
        assert name in result["msg"]
    result = run_module("compose_logs", {"project": "no-such-project-x"})
    assert result["failed"] is True and "no-such-project-x" in result["msg"]


@pytest.mark.parametrize("host", ["unix:///nonexistent/docker.sock", "tcp://127.0.0.1:1"])
def test_daemon_down_is_a_result_not_a_traceback(host):
    result = run_module("compose_logs", {"project": STACK_PROJECT, "docker_host": host, "timeout": 3})
    assert not result.get("failed"), result
    assert result["available"] is False and "cannot talk to the Docker daemon" in result["reason"]
    assert "Traceback" not in result["_raw"]
    assert_return_documented("compose_logs", result)


# --------------------------------------------------------------------------------------- real stack


def _request(url, data=None):
    if data is None:
        return requests.get(url, timeout=10).status_code
    return requests.post(url, data=data, headers={"Content-Type": "application/json"}, timeout=10).status_code


def test_backend_errors_and_warnings_counted_on_the_real_stack(stack_env):
    base = "http://%s:%s" % (stack_env["BIND_ADDRESS"], stack_env["NGINX_HTTP_PORT"])
    since = (datetime.now(UTC) - timedelta(seconds=1)).isoformat()
    assert _request(base + "/api/fault/500") == 500
    assert _request(base + "/api/fault/500") == 500
    assert _request(base + "/api/auth/login", data=b'{"email": "nobody@example.com", "password": "wrong"}') == 401
    time.sleep(0.5)
    result = run_module("compose_logs", {"project": STACK_PROJECT, "services": ["backend"], "since": since},
                        check_mode=True)
    backend = result["logs"]["backend"]
    assert backend["pattern_counts"]["error\\b"] >= 2, backend  # "ERROR injected fault 500" (and its access line)
    assert sum("injected fault 500" in line for line in backend["matches"]) >= 2
    result = run_module("compose_logs", {"project": STACK_PROJECT, "services": ["backend"], "since": since,
                                         "patterns": ["\\bwarn\\b"]})
    assert result["logs"]["backend"]["match_count"] >= 1
    assert any("failed login" in line for line in result["logs"]["backend"]["matches"])


def test_real_stack_output_carries_no_secret(secrets):
    result = run_module("compose_logs", {"project": STACK_PROJECT, "since": "30m", "last_lines": 200,
                                         "match_lines": 200})
    assert not result.get("failed"), result.get("msg")
    assert set(result["logs"]) >= {"postgres", "redis", "backend", "nginx", "prometheus"}
    assert result["redaction"]["secret_values"] >= 4  # every secret of the stack's containers is known
    _assert_no_secret(result["_raw"], secrets)


# ---------------------------------------------------------------------------------------- pure parts


def test_line_splitter_joins_chunks_and_cuts_long_lines():
    mod = load_utils("marketplace_compose_logs")
    chunks = [b"one\ntw", b"o\nthr", b"ee", b"\n", b"A" * 50, b"B" * 50, b"C\nfour", b"\nlast"]
    assert list(mod.iter_log_lines(chunks, cap=40)) == [
        (b"one", False), (b"two", False), (b"three", False), (b"A" * 40, True), (b"four", False),
        (b"last", False)]
    assert list(mod.iter_log_lines([b"x" * 100 + b"\nok\n"], cap=40)) == [(b"x" * 40, True), (b"ok", False)]


def test_redactor_env_urls_patterns_and_truncation():
    from ansible.module_utils.marketplace_docker import Redactor, env_secrets

    env = ["PATH=/usr/bin", "API_KEY=k3y-value-1", "DATABASE_URL=postgres://u:p%40ss-word@db/x", "DEBUG=1",
           "ENABLE_AUTH=1", "PWD=/app"]
    assert {n for n, _ in env_secrets(env)} == {"API_KEY", "DATABASE_URL", "ENABLE_AUTH"}
    r = Redactor()
    r.add_env(env)
    assert r.redact("key k3y-value-1 and p@ss-word") == "key [REDACTED:API_KEY] and [REDACTED:DATABASE_URL]"
    assert r.skipped_short == 1  # ENABLE_AUTH=1 is not replaced literally
    assert r.redact("in /usr/bin at /app") == "in /usr/bin at /app"
    assert r.redact('{"password": "s3cr3t!"}') == '{"password": "[REDACTED]"}'
    assert r.redact("token=abc123 next") == "token=[REDACTED] next"
    secret = "k3y-value-1"
    text = "y" * 95 + secret + " rest"
    cut, truncated = r.redact_truncated(text, 100)
    assert truncated and secret[:5] not in cut and "[REDACTED:API_KEY]" in cut
    cut, _ = r.redact_truncated("z" * 80 + " https://me:longpassword@host", 100)
    assert "longpa" not in cut and "[REDACTED]" in cut


def test_since_until_parsing():
    mod = load_utils("marketplace_compose_logs")
    now = 1_000_000.0
    assert mod.parse_point("300", now) == now - 300
    assert mod.parse_point("15m", now) == now - 900
    assert mod.parse_point("1h30m", now) == now - 5400
    assert mod.parse_point("2026-01-31T02:00:00Z", now) == datetime(2026, 1, 31, 2, tzinfo=UTC).timestamp()
    assert mod.parse_point("2026-01-31 02:00", now) == datetime(2026, 1, 31, 2, tzinfo=UTC).timestamp()
    assert mod.parse_point("2026-01-31T04:00:00+02:00", now) == datetime(2026, 1, 31, 2,
                                                                         tzinfo=UTC).timestamp()
    for bad in ("", "soon", "15 min", "-5", "1y"):
        with pytest.raises(ValueError):
            mod.parse_point(bad, now)
