"""module_utils/marketplace_proc.py: the /proc and cgroup readers of host_resources, compose_status and
container_processes, on fake /proc trees and on this machine's own /proc (no Docker)."""
from __future__ import annotations

import importlib
import os

from devtools.modules import MODULE_UTILS  # noqa: F401 - registers module_utils/ under ansible.module_utils

proc = importlib.import_module("ansible.module_utils.marketplace_proc")

CID = "4ebfc13336f5919acfdf96665f27018c94a0b70890b94915a69d7209697dcfba"
STAT = "42 (a (b) c) S 1 42 42 0 -1 4194560 100 0 0 0 7 5 0 0 20 0 3 0 100 1000 250" + " 0" * 30 + "\n"


def test_pid_stat_splits_at_the_last_parenthesis():
    assert proc.parse_pid_stat(STAT) == {"name": "a (b) c", "state": "S", "ticks": 12, "threads": 3,
                                         "rss_pages": 250}
    assert proc.parse_pid_stat("42 (cut) S 1 2") is None
    assert proc.parse_pid_stat("") is None


def test_pid_readers_on_a_fake_proc(tmp_path):
    (tmp_path / "42").mkdir()
    (tmp_path / "42" / "stat").write_text(STAT)
    (tmp_path / "42" / "cgroup").write_text(f"0::/system.slice/docker-{CID}.scope\n")
    (tmp_path / "43").mkdir()
    (tmp_path / "43" / "cgroup").write_text("0::/user.slice/session-1.scope\n")
    assert proc.pid_ticks(42, str(tmp_path)) == 12
    assert proc.pid_ticks(43, str(tmp_path)) is None and proc.pid_ticks(44, str(tmp_path)) is None
    assert proc.pid_container_id(42, str(tmp_path)) == CID[:12]
    assert proc.pid_container_id(43, str(tmp_path)) is None and proc.pid_container_id(44, str(tmp_path)) is None


def test_meminfo_and_cpu_times_on_a_fake_proc(tmp_path):
    (tmp_path / "meminfo").write_text("MemTotal:  2048 kB\nMemFree: 1024 kB\nHugePages_Total:  4\n")
    (tmp_path / "stat").write_text("cpu  1 2 3 4 5\ncpu0 1 2 3 4 5\n")
    assert proc.read_meminfo(str(tmp_path)) == {"MemTotal": 2097152, "MemFree": 1048576, "HugePages_Total": 4}
    assert proc.host_memory_bytes(str(tmp_path)) == 2097152
    assert proc.host_memory_bytes(str(tmp_path / "none")) is None
    assert proc.read_cpu_times(str(tmp_path)) == [1, 2, 3, 4, 5, 0, 0, 0]


def test_this_machines_proc():
    own = proc.pid_stat(os.getpid())
    assert own and own["state"] in "RS" and own["threads"] >= 1
    assert proc.read_meminfo()["MemTotal"] > 0 and len(proc.read_cpu_times()) == 8
    assert proc.clock_ticks() > 0 and proc.usable_cpus() >= 1 and proc.online_cpus() >= 1
