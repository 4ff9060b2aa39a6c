# What this host's kernel says, read from /proc and the cgroup file systems: processes (/proc/<pid>/stat and
# the container a pid runs in), memory (/proc/meminfo), CPU (/proc/stat) and the cgroup counters of a container
# (cgroup v1 cpuacct.usage / memory.*, cgroup v2 cpu.stat usage_usec / memory.*, found from /proc/<pid>/cgroup
# and /proc/self/mountinfo). host_resources, compose_status and container_processes read through these.
# Nothing here is module-level state: mounts, readings and samplings are plain values passed from call to call,
# so other code can call these functions in-process (and from several threads).
from __future__ import annotations

import os
import re

PROC = "/proc"
# A container id in a /proc/<pid>/cgroup line (docker cgroupfs and systemd drivers, podman, CRI-O, containerd).
CONTAINER_IN_CGROUP = re.compile(r"(?:docker[-/]|/containers/|crio-|containerd-)([0-9a-f]{64})")


def read_text(path):
    with open(path, encoding="utf-8", errors="replace") as handle:
        return handle.read()


# ------------------------------------------------------------------------------------------- processes

def parse_pid_stat(raw):
    """A /proc/<pid>/stat text -> ``{"name", "state", "ticks" (utime + stime), "threads", "rss_pages"}``, or
    None when it is cut short. comm is in parentheses and may hold spaces or parentheses: split at the last ')'."""
    left, _, right = raw.rpartition(")")
    fields = right.split()
    if len(fields) < 22:
        return None
    try:
        return {"name": left.partition("(")[2], "state": fields[0], "ticks": int(fields[11]) + int(fields[12]),
                "threads": int(fields[17]), "rss_pages": int(fields[21])}
    except ValueError:
        return None


def pid_stat(pid, proc_root=PROC):
    """parse_pid_stat of a host pid, or None when the process went away (or never was)."""
    try:
        return parse_pid_stat(read_text(os.path.join(proc_root, str(pid), "stat")))
    except OSError:
        return None


def pid_ticks(pid, proc_root=PROC):
    """utime + stime of a host pid in clock ticks, or None."""
    stat = pid_stat(pid, proc_root)
    return stat["ticks"] if stat else None


def pid_container_id(pid, proc_root=PROC):
    """The short (12-character) id of the container a host pid runs in, from its cgroup; None if none."""
    try:
        match = CONTAINER_IN_CGROUP.search(read_text(os.path.join(proc_root, str(pid), "cgroup")))
    except OSError:
        return None
    return match.group(1)[:12] if match else None


def clock_ticks():
    """Clock ticks per second of /proc's CPU times."""
    try:
        return os.sysconf("SC_CLK_TCK")
    except (ValueError, OSError, AttributeError):
        return 100


# ------------------------------------------------------------------------------------------ memory, CPU

def read_meminfo(proc_root=PROC):
    """/proc/meminfo as ``{key: bytes}`` (kB values converted, counts such as HugePages_Total as they are)."""
    info = {}
    for line in read_text(os.path.join(proc_root, "meminfo")).splitlines():
        key, _, rest = line.partition(":")
        parts = rest.split()
        if parts:
            info[key.strip()] = int(parts[0]) * (1024 if len(parts) > 1 and parts[1] == "kB" else 1)
    return info


def host_memory_bytes(proc_root=PROC):
    """MemTotal of the host (what the daemon reports as the limit of a container without one), or None."""
    try:
        return read_meminfo(proc_root).get("MemTotal")
    except (OSError, ValueError):
        return None


def read_cpu_times(proc_root=PROC):
    """The aggregate `cpu` line of /proc/stat: user nice system idle iowait irq softirq steal."""
    for line in read_text(os.path.join(proc_root, "stat")).splitlines():
        if line.startswith("cpu "):
            values = [int(x) for x in line.split()[1:]]
            return (values + [0] * 8)[:8]
    return None


def usable_cpus():
    """The CPUs this process may run on (its affinity), else every CPU."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def online_cpus():
    """The online CPUs of the host (what the daemon reports as a container's online_cpus)."""
    try:
        return os.sysconf("SC_NPROCESSORS_ONLN")
    except (ValueError, OSError, AttributeError):
        return os.cpu_count()


# ---------------------------------------------------------------------------------------------- cgroups

class CgroupUnavailable(Exception):
    """The container's cgroup cannot be read from here (the reason is the message)."""


def _unescape_mount(text):
    """Mount points in /proc/*/mountinfo escape space, tab, newline and backslash as octal (\\040)."""
    out, i = [], 0
    while i < len(text):
        if text[i] == "\\" and i + 4 <= len(text) and text[i + 1:i + 4].isdigit():
            out.append(chr(int(text[i + 1:i + 4], 8)))
            i += 4
        else:
            out.append(text[i])
            i += 1
    return "".join(out)


def parse_mountinfo(text):
    """The cgroup mounts of a /proc/<pid>/mountinfo text: dicts with ``version`` (1 or 2), ``root`` (the
    cgroup directory mounted there), ``mountpoint`` and ``controllers`` (v1 super options, e.g.
    ``{"cpu", "cpuacct"}`` or ``{"name=systemd"}``; empty for v2)."""
    mounts = []
    for line in text.splitlines():
        head, sep, tail = line.partition(" - ")
        fields, tail_fields = head.split(), tail.split()
        if not sep or len(fields) < 5 or len(tail_fields) < 3:
            continue
        fstype = tail_fields[0]
        if fstype not in ("cgroup", "cgroup2"):
            continue
        options = set(tail_fields[2].split(","))
        mounts.append({
            "version": 2 if fstype == "cgroup2" else 1,
            "root": _unescape_mount(fields[3]),
            "mountpoint": _unescape_mount(fields[4]),
            "controllers": set() if fstype == "cgroup2" else options - {"rw", "ro"},
        })
    return mounts


def cgroup_mounts(proc_root=PROC):
    """parse_mountinfo of this process's /proc/self/mountinfo (OSError when it cannot be read)."""
    return parse_mountinfo(read_text(os.path.join(proc_root, "self", "mountinfo")))


def parse_proc_cgroup(text):
    """Lines of /proc/<pid>/cgroup (``hierarchy-id:controllers:path``) -> ``[(controllers, path)]``;
    the cgroup v2 line (``0::/path``) has an empty controller set."""
    out = []
    for line in text.splitlines():
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        hierarchy, controllers, path = parts
        controllers = set(c for c in controllers.split(",") if c)
        if hierarchy == "0" and not controllers:
            out.append((set(), path))
        elif controllers:
            out.append((controllers, path))
    return out


def container_cgroup_path(path, container_id):
    """The container's own cgroup within the path of its init process: up to the last path component that
    names the container (``/docker/<id>``, ``/system.slice/docker-<id>.scope``, ``<cgroup-parent>/<id>``).

    An init that moved itself into a child cgroup (systemd in a container: ``.../docker-<id>.scope/init.scope``)
    still gets the whole container. None when no component names the container: the pid is not the
    container's (pid reuse, another pid namespace, a remote daemon), so nothing may be read for it."""
    if not container_id or len(container_id) < 12:
        return None
    parts = path.split("/")
    for index in range(len(parts) - 1, -1, -1):
        if container_id in parts[index]:
            return "/".join(parts[:index + 1]) or "/"
    return None


def _mount_dir(mounts, version, controller, path):
    """Directory of cgroup ``path`` in a mounted hierarchy of ``version`` holding ``controller``."""
    for mount in mounts:
        if mount["version"] != version or (version == 1 and controller not in mount["controllers"]):
            continue
        root = mount["root"].rstrip("/")
        if root and path != root and not path.startswith(root + "/"):
            continue  # this mount shows another part of the hierarchy
        return mount["mountpoint"].rstrip("/") + path[len(root):]
    return None


def locate_cgroup(pid, container_id, mounts, proc_root="/proc"):
    """Where the counters of a running container are: a dict ``{"version", "cpu", "memory", "pids"}`` of
    directories (``pids`` may be None), from /proc/<State.Pid>/cgroup mapped onto the cgroup mounts.

    Works for the cgroupfs and systemd drivers, cgroup v1, v2 and hybrid (v1 controllers win there).
    Raises CgroupUnavailable with the reason."""
    if not pid:
        raise CgroupUnavailable("no init pid in the container's inspect data")
    try:
        with open(os.path.join(proc_root, str(int(pid)), "cgroup"), encoding="utf-8") as handle:
            lines = parse_proc_cgroup(handle.read())
    except (OSError, ValueError) as exc:
        raise CgroupUnavailable("cannot read %s/%s/cgroup: %s" % (proc_root, pid, exc.strerror or exc)) from None
    v2_path = next((path for controllers, path in lines if not controllers), None)

    def directory(controller):
        for controllers, path in lines:
            if controller in controllers:
                own = container_cgroup_path(path, container_id)
                if own is None:
                    raise CgroupUnavailable("pid %s is not in a cgroup of container %s (%s:%s)"
                                            % (pid, container_id[:12], controller, path))
                found = _mount_dir(mounts, 1, controller, own)
                if found:
                    return 1, found
        if v2_path is not None and any(m["version"] == 2 for m in mounts):
            own = container_cgroup_path(v2_path, container_id)
            if own is None:
                raise CgroupUnavailable("pid %s is not in a cgroup of container %s (%s)"
                                        % (pid, container_id[:12], v2_path))
            found = _mount_dir(mounts, 2, None, own)
            if found:
                return 2, found
        return None, None

    cpu_version, cpu_dir = directory("cpuacct")
    memory_version, memory_dir = directory("memory")
    if cpu_dir is None or memory_dir is None:
        raise CgroupUnavailable("no mounted cgroup hierarchy holds the %s of pid %s"
                                % ("CPU accounting" if cpu_dir is None else "memory", pid))
    try:
        pids_version, pids_dir = directory("pids")
    except CgroupUnavailable:
        pids_version, pids_dir = None, None
    return {"cpu": (cpu_version, cpu_dir), "memory": (memory_version, memory_dir),
            "pids": (pids_version, pids_dir), "version": cpu_version}


def _read(path):
    with open(path, encoding="ascii") as handle:
        return handle.read()


def _read_key_values(path):
    values = {}
    for line in _read(path).splitlines():
        key, _, value = line.partition(" ")
        try:
            values[key] = int(value)
        except ValueError:
            continue
    return values


def read_cgroup_cpu_ns(location):
    """Cumulative CPU time of the cgroup in nanoseconds (v1 cpuacct.usage, v2 cpu.stat usage_usec)."""
    version, directory = location["cpu"]
    if version == 1:
        return int(_read(os.path.join(directory, "cpuacct.usage")))
    usage = _read_key_values(os.path.join(directory, "cpu.stat")).get("usage_usec")
    if usage is None:
        raise ValueError("no usage_usec in %s/cpu.stat" % directory)
    return usage * 1000


def read_cgroup_memory(location, host_memory):
    """``{"usage", "limit", "stats"}`` shaped like the daemon's memory_stats: v1 memory.usage_in_bytes /
    memory.limit_in_bytes / memory.stat, v2 memory.current / memory.max / memory.stat. No limit (v1's huge
    value, v2's ``max``), or one above the host's memory, is the host's memory, as the daemon reports it."""
    version, directory = location["memory"]
    if version == 1:
        usage = int(_read(os.path.join(directory, "memory.usage_in_bytes")))
        raw_limit = _read(os.path.join(directory, "memory.limit_in_bytes")).strip()
    else:
        usage = int(_read(os.path.join(directory, "memory.current")))
        raw_limit = _read(os.path.join(directory, "memory.max")).strip()
    stats = _read_key_values(os.path.join(directory, "memory.stat"))
    limit = None if raw_limit == "max" else int(raw_limit)
    if host_memory and (limit is None or limit > host_memory):
        limit = host_memory
    return {"usage": usage, "limit": limit, "stats": stats}


def read_cgroup_pids(location):
    _version, directory = location["pids"]
    if directory is None:
        return None
    try:
        return int(_read(os.path.join(directory, "pids.current")))
    except (OSError, ValueError):
        return None
