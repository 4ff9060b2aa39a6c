"""host_resources: /proc and statvfs of this host, thresholds, no command lines."""
from __future__ import annotations

import os
import subprocess
import sys
import threading
import time

from tests.helpers.modules import assert_return_documented, run_module


def test_every_section(tmp_path):
    result = run_module("host_resources",
                        {"paths": ["/", str(tmp_path / "not" / "there")], "sample_seconds": 0.5, "top": 3})
    assert not result.get("failed")
    mem = result["memory"]
    assert mem["total_bytes"] > 0 and 0 <= mem["used_pct"] <= 100
    assert result["load"]["cpus"] >= 1 and result["load"]["load1"] >= 0
    assert 0 <= result["cpu"]["busy_pct"] <= 100
    missing = result["disks"][1]
    assert missing["measured_path"] == str(tmp_path) and missing["used_pct"] is not None
    procs = result["processes"]
    assert len(procs["top_cpu"]) == 3 and len(procs["top_memory"]) == 3
    assert all(set(p) == {"pid", "name", "user", "state", "cpu_pct", "rss_bytes", "mem_pct", "threads", "container_id"}
               for p in procs["top_memory"])
    names = {c["name"] for c in result["checks"]}
    assert {"host_memory", "host_load", "host_cpu", "disk:/", "inodes:/"} <= names
    assert result["status"] in ("ok", "warning", "critical")
    assert_return_documented("host_resources", result)


def test_a_busy_process_shows_in_top_cpu_and_secrets_on_command_lines_do_not():
    secret = "cmdline-secret-4711"
    proc = subprocess.Popen([sys.executable, "-c", "while True: pass", secret])
    try:
        result = run_module("host_resources", {"sections": ["processes"], "sample_seconds": 1, "top": 5})
        pids = [p["pid"] for p in result["processes"]["top_cpu"]]
        assert proc.pid in pids
        assert secret not in result["_raw"]
        # run in-process here, so the module's own process is this one: it is left out
        assert os.getpid() not in pids + [p["pid"] for p in result["processes"]["top_memory"]]
    finally:
        proc.kill()


def test_thresholds_turn_checks_critical():
    result = run_module("host_resources", {"sections": ["memory", "disk"], "memory_warning_pct": 0,
                                           "memory_critical_pct": 0.001, "disk_warning_pct": 0,
                                           "disk_critical_pct": 0.001})
    statuses = {c["name"]: c["status"] for c in result["checks"]}
    assert statuses["host_memory"] == "critical" and statuses["disk:/"] == "critical"
    assert result["status"] == "critical"


def test_bad_section_fails():
    result = run_module("host_resources", {"sections": ["memory", "gpu"]})
    assert result["failed"] and "gpu" in result["msg"]


def test_check_mode_gathers():
    result = run_module("host_resources", {"sections": ["memory"]}, check_mode=True)
    assert result["changed"] is False and result["memory"]["total_bytes"] > 0


def _busy_for(seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        pass


def test_exclude_self_counts_this_process_cpu_as_idle():
    """A thread of this very process burns one core during the window: counted without exclude_self, as idle
    (and reported as excluded_self_pct) with it."""
    cpus = os.cpu_count() or 1
    figures = {}
    for exclude in (False, True):
        burner = threading.Thread(target=_busy_for, args=(1.2,))
        burner.start()
        result = run_module("host_resources", {"sections": ["cpu"], "sample_seconds": 1.0, "exclude_self": exclude})
        burner.join()
        figures[exclude] = result["cpu"]
    own_share = 100.0 / cpus  # one busy thread of this process
    assert "excluded_self_pct" not in figures[False]
    assert figures[True]["excluded_self_pct"] >= 0.6 * own_share, figures
    assert figures[True]["busy_pct"] <= figures[False]["busy_pct"] - 0.4 * own_share + 15, figures
