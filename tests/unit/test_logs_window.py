"""compose_logs' window (since/until): the forms it takes (ISO 8601 with Z, Unix time, seconds and durations ago)
and the clear refusals (a time in the future, out of datetime's range), all before the daemon is contacted."""
from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest

from tests.helpers.modules import load_utils, run_module

mod = load_utils("marketplace_compose_logs")


def test_the_forms_of_a_point_in_time():
    now = 1_764_770_000.0  # 2025-12-03
    assert mod.parse_point("2026-12-01T02:00:00Z", now) == datetime(2026, 12, 1, 2, tzinfo=UTC).timestamp()
    assert mod.parse_point("1764554400", now) == 1764554400.0  # a Unix time, as `docker logs --since` reads it
    assert mod.parse_point("1764554400.5", now) == 1764554400.5
    assert mod.parse_point("300", now) == now - 300  # seconds ago, as before
    assert mod.parse_point("10m", now) == now - 600
    assert mod.parse_point("99999999999", now) == 99999999999.0  # year 5138: the module refuses it as the future
    for bad in ("999999999999999999", "1e5", "soon", "-5", ""):
        with pytest.raises(ValueError):
            mod.parse_point(bad, now)
    with pytest.raises(ValueError, match="after the year 9999"):
        mod.parse_point("999999999999999999", now)


def test_iso_never_raises():
    assert mod.iso(None) is None
    assert mod.iso(0).startswith("1970-01-01")
    assert "out of range" in mod.iso(1e30)


@pytest.mark.parametrize(("args", "words"), [
    ({"since": "99999999999"}, ["invalid since '99999999999'", "5138-", "in the future"]),
    ({"until": "99999999999"}, ["invalid until '99999999999'", "in the future"]),
    ({"since": "999999999999999999"}, ["invalid since", "after the year 9999"]),
    ({"since": "9999-12-31T23:59:59Z"}, ["invalid since", "in the future"]),
    ({"since": "yesterday"}, ["invalid since 'yesterday'", "ISO 8601", "Unix time"]),
])
def test_a_bad_window_is_refused_before_the_daemon_is_asked(args, words):
    # The project does not exist: the refusal comes before any Docker call.
    result = run_module("compose_logs", {"project": "em-no-such-project-window", **args})
    assert result["failed"] is True, result
    for word in words:
        assert word in result["msg"], (word, result["msg"])
    assert "Traceback" not in result["_raw"]


def test_an_iso_time_with_z_is_read():
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 3600))
    assert mod.parse_point(stamp, time.time()) == datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ").replace(
        tzinfo=UTC).timestamp()
