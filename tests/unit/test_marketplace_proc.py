"""module_utils/marketplace_proc.py: the /proc and cgroup readers of host_resources, compose_status and
container_processes, on fake /proc trees and on this machine's own /proc (no Docker)."""
from __future__ import annotations

import importlib
import os

import pytest

from devtools.modules import MODULE_UTILS  # noqa: F401 - registers module_utils/ under ansible.module_utils

proc = importlib.import_module("ansible.module_utils.marketplace_proc")
# compose_status' cgroup sampling reads through these readers
compose_status = importlib.import_module("ansible.module_utils.marketplace_compose_status")

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


# --------------------------------------------------------------------------- cgroup trees (fakes)

CID = "4ebfc13336f5919acfdf96665f27018c94a0b70890b94915a69d7209697dcfba"
OTHER = "e97e95696c04a6b9efd384d797d51edc263ef9239024544dcd150fb76ead1913"


def _fake_host(tmp_path, mountinfo, proc_cgroup, files, meminfo_kb=1024 * 1024):
    """A /proc (self/mountinfo, 42/cgroup, meminfo) and cgroup files under tmp_path ({MNT} = tmp_path)."""
    root = tmp_path / "proc"
    (root / "self").mkdir(parents=True)
    (root / "42").mkdir()
    (root / "self" / "mountinfo").write_text(mountinfo.replace("{MNT}", str(tmp_path)))
    (root / "42" / "cgroup").write_text(proc_cgroup)
    (root / "meminfo").write_text(f"MemTotal:       {meminfo_kb} kB\nMemFree:  1 kB\n")
    for rel, text in files.items():
        path = tmp_path / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return str(root)


V1_MOUNTINFO = """31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / {MNT}/cg/cpu,cpuacct rw,relatime - cgroup cgroup rw,cpu,cpuacct
35 31 0:32 / {MNT}/cg/memory rw,relatime - cgroup cgroup rw,memory
39 31 0:36 / {MNT}/cg/pids rw,relatime - cgroup cgroup rw,pids
40 31 0:37 / {MNT}/cg/systemd rw,relatime - cgroup cgroup rw,name=systemd
41 31 0:38 / {MNT}/cg/unified rw,relatime - cgroup2 cgroup2 rw
"""
V1_CGROUP = f"""9:name=systemd:/docker/{CID}
8:pids:/docker/{CID}
4:memory:/docker/{CID}
1:cpu,cpuacct:/docker/{CID}
0::/docker/{CID}
"""


def test_locate_and_sample_cgroup_v1_cgroupfs(tmp_path):
    proc_root = _fake_host(tmp_path, V1_MOUNTINFO, V1_CGROUP, {
        f"cg/cpu,cpuacct/docker/{CID}/cpuacct.usage": "1000000000\n",
        f"cg/memory/docker/{CID}/memory.usage_in_bytes": "300000\n",
        f"cg/memory/docker/{CID}/memory.limit_in_bytes": "9223372036854771712\n",
        f"cg/memory/docker/{CID}/memory.stat": "cache 5\ninactive_file 7\ntotal_inactive_file 100000\n",
        f"cg/pids/docker/{CID}/pids.current": "3\n",
    })
    mounts = proc.parse_mountinfo((tmp_path / "proc" / "self" / "mountinfo").read_text())
    assert {"cpu", "cpuacct"} in [m["controllers"] for m in mounts]
    loc = proc.locate_cgroup(42, CID, mounts, proc_root)
    assert loc["version"] == 1
    assert loc["cpu"] == (1, f"{tmp_path}/cg/cpu,cpuacct/docker/{CID}")
    assert loc["memory"] == (1, f"{tmp_path}/cg/memory/docker/{CID}")
    with pytest.raises(proc.CgroupUnavailable, match="not in a cgroup of container e97e95696c04"):
        proc.locate_cgroup(42, OTHER, mounts, proc_root)

    sampling = compose_status.start_cgroup_sampling([(CID, 42), (OTHER, 42), (CID, 43)], window=0.1,
                                                    proc_root=proc_root)
    assert sorted(sampling["unavailable"]) == [1, 2] and "cannot read" in sampling["unavailable"][2]
    # 0.05 s of CPU during the window
    (tmp_path / f"cg/cpu,cpuacct/docker/{CID}/cpuacct.usage").write_text("1050000000\n")
    [(index, stats)] = compose_status.finish_cgroup_sampling(sampling, {0: False}).items()
    assert index == 0 and stats["cpu_method"] == "cgroup" and stats["cgroup_version"] == 1
    assert 0.1 <= stats["cpu_window_seconds"] < 0.2
    assert stats["cpu_percent"] == pytest.approx(0.05 / stats["cpu_window_seconds"] * 100, abs=1.0)
    assert stats["memory_usage"] == 200000  # usage - total_inactive_file
    assert stats["memory_limit"] == 1024 * 1024 * 1024  # unlimited -> the host's MemTotal
    assert stats["pids"] == 3 and stats["memory_limited"] is False


def test_locate_and_sample_cgroup_v2_systemd(tmp_path):
    """cgroup v2, systemd driver, an init that moved into a child cgroup, a mount of a sub-tree."""
    scope = f"system.slice/docker-{CID}.scope"
    proc_root = _fake_host(tmp_path, "30 23 0:27 /system.slice {MNT}/cg2 rw - cgroup2 cgroup2 rw,nsdelegate\n",
                      f"0::/{scope}/init.scope\n", {
                          f"cg2/docker-{CID}.scope/cpu.stat": "usage_usec 2000000\nuser_usec 1\n",
                          f"cg2/docker-{CID}.scope/memory.current": "5000\n",
                          f"cg2/docker-{CID}.scope/memory.max": "max\n",
                          f"cg2/docker-{CID}.scope/memory.stat": "anon 1\ninactive_file 1000\n",
                      })
    mounts = proc.parse_mountinfo((tmp_path / "proc" / "self" / "mountinfo").read_text())
    loc = proc.locate_cgroup(42, CID, mounts, proc_root)
    assert loc["version"] == 2 and loc["cpu"] == (2, f"{tmp_path}/cg2/docker-{CID}.scope")
    assert loc["pids"] == (2, f"{tmp_path}/cg2/docker-{CID}.scope")
    assert proc.read_cgroup_cpu_ns(loc) == 2_000_000_000
    assert proc.read_cgroup_memory(loc, 10**9) == {"usage": 5000, "limit": 10**9,
                                                   "stats": {"anon": 1, "inactive_file": 1000}}
    assert proc.read_cgroup_pids(loc) is None  # no pids.current: optional
    (tmp_path / f"cg2/docker-{CID}.scope/memory.max").write_text("4096\n")
    assert proc.read_cgroup_memory(loc, 10**9)["limit"] == 4096
    # a container cgroup outside the mounted sub-tree cannot be mapped
    (tmp_path / "proc" / "42" / "cgroup").write_text(f"0::/docker/{CID}\n")
    with pytest.raises(proc.CgroupUnavailable, match="no mounted cgroup hierarchy"):
        proc.locate_cgroup(42, CID, mounts, proc_root)


def test_container_cgroup_path_and_mountinfo_escapes():
    assert proc.container_cgroup_path(f"/docker/{CID}", CID) == f"/docker/{CID}"
    assert proc.container_cgroup_path(f"/kubepods/pod1/{CID}/sub", CID) == f"/kubepods/pod1/{CID}"
    assert proc.container_cgroup_path("/user.slice/session-1.scope", CID) is None
    assert proc.container_cgroup_path(f"/docker/{CID}", "") is None
    [mount] = proc.parse_mountinfo("1 2 0:3 / /a\\040b\\134c rw shared:1 - cgroup cg rw,memory\n")
    assert mount["mountpoint"] == "/a b\\c" and mount["controllers"] == {"memory"} and mount["version"] == 1
