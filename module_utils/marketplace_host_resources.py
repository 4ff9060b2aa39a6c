# Host resources from /proc and statvfs: memory, load, CPU over a window, disk space, top processes.
# The code of library/host_resources.py (which keeps the documentation and main()); also a part of health_gather.
from __future__ import annotations

import os
import pwd
import time

from ansible.module_utils.marketplace_common import (
    json_safe,
    threshold_check,
    validate_non_negative,
    worst_status,
)
from ansible.module_utils.marketplace_proc import (
    PROC,
    clock_ticks,
    pid_container_id,
    pid_stat,
    read_cpu_times,
    read_meminfo,
    read_text,
    usable_cpus,
)

SECTIONS = ["memory", "load", "cpu", "disk", "processes"]


def build_argument_spec():
    return dict(
        sections=dict(type="list", elements="str", default=list(SECTIONS), choices=list(SECTIONS)),
        paths=dict(type="list", elements="path", default=["/"]),
        sample_seconds=dict(type="float", default=1.0),
        exclude_self=dict(type="bool", default=False),
        top=dict(type="int", default=10),
        memory_warning_pct=dict(type="float", default=85.0),
        memory_critical_pct=dict(type="float", default=95.0),
        disk_warning_pct=dict(type="float", default=80.0),
        disk_critical_pct=dict(type="float", default=90.0),
        cpu_warning_pct=dict(type="float", default=80.0),
        cpu_critical_pct=dict(type="float", default=95.0),
        load_warning_per_cpu=dict(type="float", default=1.0),
        load_critical_per_cpu=dict(type="float", default=2.0),
    )


def _pct(part, whole):
    return round(100.0 * part / whole, 2) if whole else None


def named_check(name, component, **kwargs):
    result = threshold_check(**kwargs)
    result.update(name=name, component=component)
    return result


# ------------------------------------------------------------------------------------------------ memory

def memory_section(info):
    total = info.get("MemTotal", 0)
    available = info.get("MemAvailable")
    if available is None:  # kernels before 3.14
        available = info.get("MemFree", 0) + info.get("Buffers", 0) + info.get("Cached", 0)
    swap_total = info.get("SwapTotal", 0)
    swap_used = swap_total - info.get("SwapFree", 0)
    return {
        "total_bytes": total,
        "available_bytes": available,
        "used_bytes": total - available,
        "used_pct": _pct(total - available, total),
        "swap_total_bytes": swap_total,
        "swap_used_bytes": swap_used,
        "swap_used_pct": _pct(swap_used, swap_total),
    }


def _gib(value):
    return "%.1f GiB" % (value / 1024.0 ** 3)


# ------------------------------------------------------------------------------------------- load / cpu

def load_section():
    fields = read_text(os.path.join(PROC, "loadavg")).split()
    load1, load5, load15 = (float(x) for x in fields[:3])
    runnable, _, threads = fields[3].partition("/")
    cpus = usable_cpus()
    return {"load1": load1, "load5": load5, "load15": load15, "cpus": cpus,
            "per_cpu1": round(load1 / cpus, 2), "per_cpu5": round(load5 / cpus, 2),
            "per_cpu15": round(load15 / cpus, 2), "runnable": int(runnable), "threads": int(threads or 0)}


def own_cpu_ticks():
    """(user, system) CPU time of this process, all threads, in /proc/stat's clock ticks."""
    times = os.times()
    hz = clock_ticks()
    return times.user * hz, times.system * hz


def cpu_section(before, after, window, own_before=None, own_after=None):
    if before is None or after is None:
        return None
    delta = [b - a for a, b in zip(before, after, strict=False)]
    total = sum(delta)
    if total <= 0:
        return None
    user, nice, system, idle, iowait, irq, softirq, steal = delta
    excluded = None
    if own_before is not None and own_after is not None:
        # Our own time moves from user/system to idle (never below zero: the tick counts are sampled).
        own_user = min(max(own_after[0] - own_before[0], 0.0), user)
        own_system = min(max(own_after[1] - own_before[1], 0.0), system)
        user, system, idle = user - own_user, system - own_system, idle + own_user + own_system
        excluded = _pct(own_user + own_system, total)
    section = {"busy_pct": _pct(total - idle - iowait, total), "user_pct": _pct(user + nice, total),
               "system_pct": _pct(system + irq + softirq, total), "iowait_pct": _pct(iowait, total),
               "steal_pct": _pct(steal, total), "window_seconds": round(window, 3), "cpus": usable_cpus()}
    if excluded is not None:
        section["excluded_self_pct"] = excluded
    return section


# ---------------------------------------------------------------------------------------------- disks

def nearest_existing(path):
    path = os.path.abspath(path)
    while not os.path.exists(path):
        parent = os.path.dirname(path)
        if parent == path:
            break
        path = parent
    return path


def disk_entry(path):
    measured = nearest_existing(path)
    st = os.statvfs(measured)
    total = st.f_blocks * st.f_frsize
    free_root = st.f_bfree * st.f_frsize
    avail = st.f_bavail * st.f_frsize
    used = total - free_root
    # Like df: used / (used + available to users).
    used_pct = _pct(used, used + avail)
    inodes_used_pct = _pct(st.f_files - st.f_ffree, st.f_files) if st.f_files else None
    return {"path": path, "measured_path": measured, "total_bytes": total, "used_bytes": used,
            "free_bytes": avail, "used_pct": used_pct, "inodes_total": st.f_files,
            "inodes_used_pct": inodes_used_pct}


# ------------------------------------------------------------------------------------------ processes

_USERS = {}


def _user(uid):
    if uid not in _USERS:
        try:
            _USERS[uid] = pwd.getpwuid(uid).pw_name
        except KeyError:
            _USERS[uid] = str(uid)
    return _USERS[uid]


def read_process(pid):
    """pid -> dict from /proc/<pid>/stat (+ uid, container id); None when the process went away."""
    stat = pid_stat(pid)
    try:
        uid = os.stat(os.path.join(PROC, pid)).st_uid
    except OSError:
        return None
    if stat is None:
        return None
    return dict(pid=int(pid), **stat, uid=uid, container_id=pid_container_id(pid))


def snapshot():
    out = {}
    for entry in os.listdir(PROC):
        if entry.isdigit():
            proc = read_process(entry)
            if proc:
                out[proc["pid"]] = proc
    return out


def processes_section(before, after, window, mem_total, top):
    hz = clock_ticks()
    page = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096
    rows = []
    own = os.getpid()
    for pid, proc in after.items():
        if pid == own:
            continue
        prev = before.get(pid)
        delta = proc["ticks"] - prev["ticks"] if prev else proc["ticks"]
        cpu = round(100.0 * delta / hz / window, 1) if window > 0 else None
        rss = proc["rss_pages"] * page
        rows.append({"pid": pid, "name": proc["name"], "user": _user(proc["uid"]), "state": proc["state"],
                     "cpu_pct": cpu, "rss_bytes": rss, "mem_pct": _pct(rss, mem_total),
                     "threads": proc["threads"], "container_id": proc["container_id"]})
    by_cpu = sorted(rows, key=lambda r: (r["cpu_pct"] or 0, r["rss_bytes"]), reverse=True)[:top]
    by_mem = sorted(rows, key=lambda r: r["rss_bytes"], reverse=True)[:top]
    return {"count": len(rows), "window_seconds": round(window, 3), "top_cpu": by_cpu, "top_memory": by_mem}


# ------------------------------------------------------------------------------------------------ main

def gather(params):
    sections = params["sections"]
    result, checks = {}, []
    want_cpu = "cpu" in sections
    want_procs = "processes" in sections
    meminfo = read_meminfo() if ("memory" in sections or want_procs) else {}

    exclude_self = want_cpu and params["exclude_self"]
    own_before = own_cpu_ticks() if exclude_self else None
    cpu_before = read_cpu_times() if want_cpu else None
    procs_before = snapshot() if want_procs else None
    started = time.monotonic()
    if want_cpu or want_procs:
        time.sleep(params["sample_seconds"])
    window = time.monotonic() - started
    cpu_after = read_cpu_times() if want_cpu else None
    own_after = own_cpu_ticks() if exclude_self else None
    procs_after = snapshot() if want_procs else None

    if "memory" in sections:
        mem = memory_section(meminfo)
        result["memory"] = mem
        checks.append(named_check("host_memory", "host", value=mem["used_pct"],
                                  warning=params["memory_warning_pct"], critical=params["memory_critical_pct"],
                                  unit="%", label="host memory used"))
        checks[-1]["message"] += " (%s available of %s)" % (_gib(mem["available_bytes"]), _gib(mem["total_bytes"]))
    if "load" in sections:
        load = load_section()
        result["load"] = load
        checks.append(named_check("host_load", "host", value=load["per_cpu5"],
                                  warning=params["load_warning_per_cpu"], critical=params["load_critical_per_cpu"],
                                  label="5-minute load per CPU"))
        checks[-1]["message"] += " (load %.2f %.2f %.2f on %d CPUs)" % (load["load1"], load["load5"],
                                                                      load["load15"], load["cpus"])
    if want_cpu:
        cpu = cpu_section(cpu_before, cpu_after, window, own_before, own_after)
        result["cpu"] = cpu
        checks.append(named_check("host_cpu", "host", value=cpu["busy_pct"] if cpu else None,
                                  warning=params["cpu_warning_pct"], critical=params["cpu_critical_pct"],
                                  unit="%", label="host CPU busy"))
        if cpu:
            checks[-1]["message"] += " (iowait %s%%, steal %s%% over %.1f s)" % (
                cpu["iowait_pct"], cpu["steal_pct"], cpu["window_seconds"])
    if "disk" in sections:
        disks = []
        for path in params["paths"]:
            entry = disk_entry(path)
            disks.append(entry)
            where = entry["path"] if entry["path"] == entry["measured_path"] else "%s (measured at %s)" % (
                entry["path"], entry["measured_path"])
            checks.append(named_check("disk:%s" % entry["path"], "host", value=entry["used_pct"],
                                      warning=params["disk_warning_pct"], critical=params["disk_critical_pct"],
                                      unit="%", label="disk used on %s" % where))
            checks[-1]["message"] += " (%s free of %s)" % (_gib(entry["free_bytes"]), _gib(entry["total_bytes"]))
            if entry["inodes_used_pct"] is not None:
                checks.append(named_check("inodes:%s" % entry["path"], "host", value=entry["inodes_used_pct"],
                                          warning=params["disk_warning_pct"], critical=params["disk_critical_pct"],
                                          unit="%", label="inodes used on %s" % where))
        result["disks"] = disks
    if want_procs:
        result["processes"] = processes_section(procs_before, procs_after, window, meminfo.get("MemTotal", 0),
                                                params["top"])
    try:
        result["uptime_seconds"] = float(read_text(os.path.join(PROC, "uptime")).split()[0])
    except (OSError, ValueError, IndexError):
        result["uptime_seconds"] = None
    result["checks"] = checks
    result["report_checks"] = report_checks(checks, result.get("disks", []))
    result["status"] = worst_status(c["status"] for c in checks)
    parts = []
    if "memory" in result:
        parts.append("memory %s%% used" % result["memory"]["used_pct"])
    if "load" in result:
        parts.append("load %.2f/%d CPUs" % (result["load"]["load5"], result["load"]["cpus"]))
    if result.get("cpu"):
        parts.append("CPU %s%% busy" % result["cpu"]["busy_pct"])
    for entry in result.get("disks", []):
        parts.append("%s %s%% full" % (entry["path"], entry["used_pct"]))
    if result.get("processes", {}).get("top_memory"):
        biggest = result["processes"]["top_memory"][0]
        parts.append("largest process %s (pid %d, %s)" % (biggest["name"], biggest["pid"],
                                                          _gib(biggest["rss_bytes"])))
    result["summary"] = "; ".join(parts) or "nothing gathered"
    return result


def _file_system_key(entry):
    return (entry["total_bytes"], entry["used_bytes"], entry["free_bytes"], entry["inodes_total"])


def report_checks(checks, disks):
    """The report's host checks: memory, load and CPU; ``host_disk`` (the fullest file system, with its path and
    the distinct file systems as ``mounts``); each file system's disk:/inodes: checks once."""
    seen, distinct = set(), []
    for entry in disks:
        key = _file_system_key(entry)
        if key not in seen:
            seen.add(key)
            distinct.append(entry["path"])
    out = [dict(c) for c in checks if c["name"] in ("host_cpu", "host_memory", "host_load")]
    disk_checks = [c for c in checks if c["name"].startswith("disk:")]
    if disk_checks:
        # the fullest; the first of equals (a stable sort), an unmeasured value last
        fullest = sorted(disk_checks, key=lambda c: -c["value"] if c["value"] is not None else float("inf"))[0]
        out.append(dict(fullest, name="host_disk", path=fullest["name"][len("disk:"):],
                        mounts=[dict(e) for e in disks if e["path"] in distinct]))
    kept = {"%s:%s" % (kind, path) for kind in ("disk", "inodes") for path in distinct}
    out.extend(dict(c) for c in checks if c["name"] in kept)
    return out


def failed_report_checks(params, msg):
    """health_gather: the report checks of a part that failed (``msg`` says why), the Key Metrics unmeasured."""
    return [dict(name=name, status="unknown", value=None, threshold=None, component="host",
                 message="%s not measured: %s" % (name, msg))
            for name in ("host_cpu", "host_memory", "host_disk", "host_load")]


def run(module):
    """The module's work for an AnsibleModule-like object (params, fail_json, exit_json, no_log_values);
    health_gather calls it in-process with its own."""
    params = module.params
    validate_non_negative(module, params, ["sample_seconds", "top", "memory_warning_pct", "memory_critical_pct",
                                           "disk_warning_pct", "disk_critical_pct", "cpu_warning_pct",
                                           "cpu_critical_pct", "load_warning_per_cpu", "load_critical_per_cpu"])
    if not os.path.isdir(PROC) or not os.path.exists(os.path.join(PROC, "meminfo")):
        module.fail_json(msg="host_resources needs a Linux /proc file system")
    if "disk" in params["sections"] and not params["paths"]:
        module.fail_json(msg="paths must name at least one path when the disk section is gathered")
    try:
        result = gather(params)
    except OSError as exc:
        module.fail_json(msg="cannot read host resources: %s" % exc)
    module.exit_json(changed=False, **json_safe(result))
