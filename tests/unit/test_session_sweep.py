"""The session-end secret sweep of tests/conftest.py: finds the stack's secret values in the files this session
changed under artifacts/ and reports/, names key and file (never the value), and leaves older files alone."""
from __future__ import annotations

import os
import time

from tests.conftest import session_secret_findings

SECRETS = {"POSTGRES_PASSWORD": "pg-Secret-123456", "REDIS_PASSWORD": "redis-Secret-987654"}


def test_finds_secret_values_in_this_sessions_files_only(tmp_path):
    old = tmp_path / "artifacts" / "old-run" / "command"
    old.parent.mkdir(parents=True)
    old.write_text("env PGPASSWORD=pg-Secret-123456")
    os.utime(old, (time.time() - 3600, time.time() - 3600))
    since = time.time() - 1
    new = tmp_path / "artifacts" / "new-run" / "job_events" / "1.json"
    new.parent.mkdir(parents=True)
    new.write_text('{"res": {"password": "pg-Secret-123456", "again": "pg-Secret-123456"}}')
    (tmp_path / "reports" / "health-check").mkdir(parents=True)
    (tmp_path / "reports" / "health-check" / "demo-latest.json").write_text('{"msg": "redis-Secret-987654"}')
    (tmp_path / "reports" / "clean.json").write_text('{"msg": "VALUE_SPECIFIED_IN_NO_LOG_PARAMETER"}')

    found = session_secret_findings(since, root=tmp_path, secrets=SECRETS)
    assert found == ["POSTGRES_PASSWORD in artifacts/new-run/job_events/1.json (2 times)",
                     "REDIS_PASSWORD in reports/health-check/demo-latest.json (1 times)"]
    assert not any(value in line for line in found for value in SECRETS.values())
    assert session_secret_findings(since, root=tmp_path, secrets={}) == []
