#!/usr/bin/python
# Host resources from /proc and statvfs: memory, load, CPU over a window, disk space, top processes.
from __future__ import annotations

DOCUMENTATION = r"""
---
module: host_resources
short_description: Memory, load, CPU, disk space and the top processes of a Linux host, with thresholds
description:
  - Reads C(/proc/meminfo), C(/proc/loadavg), C(/proc/stat) and every C(/proc/<pid>/stat), and
    C(statvfs) of the given paths, on the host the module runs on (the Docker host).
  - Host CPU and per-process CPU are measured between two samples taken I(sample_seconds) apart (the
    lifetime counters in C(/proc) say nothing about now). Process CPU is in percent of one core
    (100 = one full core), like C(top) and C(docker stats).
  - Processes are reported by pid, name (C(comm)), user, CPU and resident memory, and the 12-character
    id of the Docker container they run in when their cgroup names one. Command lines are never read, so
    a secret passed as an argument cannot reach the result.
  - Each judged value becomes a check C({name, status, value, threshold, message}); C(status) is the
    worst of them.
  - Read-only; check mode gathers the same.
version_added: "1.0.0"
author: Equipment Marketplace operations
options:
  sections:
    description:
      - What to gather.
    type: list
    elements: str
    choices: [memory, load, cpu, disk, processes]
    default: [memory, load, cpu, disk, processes]
  paths:
    description:
      - Paths whose file system is measured. A path that does not exist is measured at its nearest
        existing parent (reported as C(measured_path)).
    type: list
    elements: path
    default: [/]
  sample_seconds:
    description:
      - Window between the two CPU samples (host CPU and per-process CPU).
    type: float
    default: 1.0
  exclude_self:
    description:
      - Leave the CPU time of this module's own process (all its threads) out of the host CPU figures; it is
        counted as idle. For callers that do other work while the CPU window runs (M(health_gather) gathers
        its other parts during the window), so that the check does not measure itself.
      - The CPU time excluded is returned as C(cpu.excluded_self_pct).
    type: bool
    default: false
  top:
    description:
      - How many processes to list by CPU and by memory.
    type: int
    default: 10
  memory_warning_pct:
    description: Used memory (total minus C(MemAvailable)) in percent of the total at which the check warns.
    type: float
    default: 85.0
  memory_critical_pct:
    description: Used memory percentage at which the check is critical.
    type: float
    default: 95.0
  disk_warning_pct:
    description: Used space (or inodes) of a file system in percent at which its check warns.
    type: float
    default: 80.0
  disk_critical_pct:
    description: Used space (or inodes) percentage at which the check is critical.
    type: float
    default: 90.0
  cpu_warning_pct:
    description: Busy CPU of the whole host over the window (100 = all cores busy) at which the check warns.
    type: float
    default: 80.0
  cpu_critical_pct:
    description: Busy CPU percentage at which the check is critical.
    type: float
    default: 95.0
  load_warning_per_cpu:
    description: 5-minute load average per CPU at which the load check warns.
    type: float
    default: 1.0
  load_critical_per_cpu:
    description: 5-minute load average per CPU at which the load check is critical.
    type: float
    default: 2.0
notes:
  - Linux only (it reads C(/proc)).
  - Inside a container the figures are those the container sees.
"""

EXAMPLES = r"""
- name: Host resources during an incident
  host_resources:
    paths: [/, /var/lib/docker, /var/backups/equipment-marketplace]
  register: host
  changed_when: false
  check_mode: false

- name: Only memory and the biggest processes, with the runbook's threshold
  host_resources:
    sections: [memory, processes]
    memory_warning_pct: "{{ marketplace_threshold_memory_pct }}"
    top: 5

- name: Disk space only
  host_resources:
    sections: [disk]
    paths: [/, /var/lib/docker]
    disk_warning_pct: 80
"""

RETURN = r"""
memory:
  description: C(total_bytes), C(available_bytes), C(used_bytes), C(used_pct), C(swap_total_bytes),
    C(swap_used_bytes), C(swap_used_pct) (null without swap).
  returned: when the memory section is gathered
  type: dict
  sample: {total_bytes: 16777216000, available_bytes: 8388608000, used_bytes: 8388608000, used_pct: 50.0}
load:
  description: C(load1), C(load5), C(load15), C(cpus) (CPUs this process may run on), C(per_cpu1),
    C(per_cpu5), C(per_cpu15), C(runnable) and C(threads).
  returned: when the load section is gathered
  type: dict
  sample: {load1: 0.5, load5: 0.4, load15: 0.3, cpus: 4, per_cpu5: 0.1}
cpu:
  description: Host CPU over the window in percent of all CPUs - C(busy_pct), C(user_pct), C(system_pct),
    C(iowait_pct), C(steal_pct) - and C(window_seconds), C(cpus); with O(exclude_self), C(excluded_self_pct) as
    well (this process's own share, counted as idle).
  returned: when the cpu section is gathered
  type: dict
disks:
  description: Per path - C(path), C(measured_path), C(total_bytes), C(used_bytes), C(free_bytes)
    (available to unprivileged users), C(used_pct), C(inodes_total), C(inodes_used_pct).
  returned: when the disk section is gathered
  type: list
  elements: dict
processes:
  description:
    - C(count), C(window_seconds), C(top_cpu) and C(top_memory), each a list of C({pid, name, user,
      state, cpu_pct, rss_bytes, mem_pct, threads, container_id}). C(cpu_pct) is over the window in
      percent of one core; C(container_id) is null for processes outside containers. The module's own
      process is left out.
  returned: when the processes section is gathered
  type: dict
uptime_seconds:
  description: Seconds since the host booted.
  returned: always
  type: float
checks:
  description: Checks C(host_memory), C(host_load), C(host_cpu), C(disk:<path>), C(inodes:<path>), each
    C({name, status, value, threshold, message}).
  returned: always
  type: list
  elements: dict
report_checks:
  description:
    - The checks in the form of the run report, each with C(component=host) - C(host_memory), C(host_load),
      C(host_cpu) as in RV(checks); when the disk section is gathered C(host_disk), the fullest file system (the
      runbook's Key Metric - its C(disk:) check renamed, with C(path) and C(mounts), the RV(disks) entries of the
      distinct file systems), then C(disk:<path>) and C(inodes:<path>) once per file system (paths on the same
      file system give one pair, the first path's).
  returned: always
  type: list
  elements: dict
status:
  description: Worst status of the checks.
  returned: always
  type: str
  sample: ok
summary:
  description: One line with the main figures.
  returned: always
  type: str
"""

from ansible.module_utils.marketplace_host_resources import build_argument_spec, run
from ansible.module_utils.marketplace_module import MarketplaceModule


def main():
    run(MarketplaceModule(argument_spec=build_argument_spec(), supports_check_mode=True))


if __name__ == "__main__":
    main()
