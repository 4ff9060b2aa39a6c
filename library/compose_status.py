#!/usr/bin/python
# State, health, restarts and resource use of the containers of a compose project, from the Docker SDK.
from __future__ import annotations

DOCUMENTATION = r"""
---
module: compose_status
short_description: State, health, restarts and CPU/memory of a compose project's containers
description:
  - Reads the containers of a Docker compose project through the Docker SDK for Python, selected by the
    compose labels C(com.docker.compose.project) and C(com.docker.compose.service) (never by parsing
    C(docker compose ps) output).
  - For each container it reports state, health, exit code, restart count, start time and uptime, image
    tag and id and replica number, plus one CPU% and memory usage/limit sample.
  - All containers are inspected in parallel threads and sampled together over one shared window. On the
    Docker host the sample reads the containers' cgroup counters directly (O(stats_window), 0.5 s by
    default, for the whole stack); elsewhere it takes the daemon's stats, in parallel threads (two rounds of
    the daemon's 1 s stats collector, 1-2 s, for the whole stack). See O(stats_method).
  - Lists the services that are expected but missing, exited, restarting or unhealthy, turns them into
    checks (C(ok), C(warning), C(critical)) and a summary status.
  - Read-only; check mode gathers the same facts. When the daemon cannot be reached the result is
    C(available=false) with a reason, not a failure.
version_added: "1.0.0"
author: Equipment Marketplace operations
requirements:
  - PyYAML (optional, to read the expected services from the project's compose file)
extends_documentation_fragment:
  - marketplace_docker
options:
  services:
    description:
      - Only report these services (default all). Each listed service is expected to run; a listed
        service that neither has a container nor is defined in the compose file fails with the list of
        known services.
    type: list
    elements: str
    default: []
  expected_services:
    description:
      - Services that must have a running container. Empty means the services of the project's compose
        file(s) (found through the C(com.docker.compose.project.config_files) label, without services that
        only run under a profile or are scaled to 0), or, when the file cannot be read on this host,
        the services that have containers.
    type: list
    elements: str
    default: []
  stats:
    description:
      - Take one CPU% and memory sample per running container. C(false) skips it (the module then
        answers in milliseconds).
    type: bool
    default: true
  stats_method:
    description:
      - How the CPU%/memory sample is taken.
      - C(cgroup) reads the container's cgroup counters on this host (cgroup v1 C(cpuacct.usage),
        C(memory.usage_in_bytes), C(memory.limit_in_bytes), C(memory.stat); cgroup v2 C(cpu.stat),
        C(memory.current), C(memory.max), C(memory.stat); C(pids.current)) at the start and the end of
        O(stats_window), the same window for all containers. The cgroup is found from
        C(/proc/<State.Pid>/cgroup) of the container's init process, mapped onto the cgroup mounts of
        C(/proc/self/mountinfo) (cgroupfs and systemd drivers, v1, v2 and hybrid); it must name the
        container's id, so a pid of another host or pid namespace is never read. A container whose cgroup
        cannot be read here gets a C(stats.error).
      - C(daemon) asks the Docker daemon (the stats API C(docker stats) uses; 1-2 s, works with a remote
        O(docker_host)).
      - C(auto) uses C(cgroup) for every container whose cgroup files are readable here and C(daemon) for
        the others (remote daemon, rootless daemon, no access to C(/proc) or C(/sys/fs/cgroup)); their
        daemon reads run while the cgroup window elapses. C(stats.cpu_method) says what each got.
    type: str
    choices: [auto, cgroup, daemon]
    default: auto
  stats_window:
    description:
      - Seconds between the two cgroup readings the CPU% is computed from (between 0.1 and 10), one window
        shared by all containers. The counters count nanoseconds, so the figure is exact for the window
        taken; the window only decides how much of a burst it averages. 0.5 s keeps the whole module near
        half a second (C(docker stats) needs 1-2 s and averages over about 1 s); a container throttled by a
        CPU limit (C(cpus)) can read up to one 100 ms CFS period's quota off when the host is busy (at most
        10 points for C(cpus=0.5) over 0.5 s, 5 over 1 s). Take 1-2 s to alert on sustained CPU. Ignored by
        the daemon method, whose window is the daemon's own.
    type: float
    default: 0.5
  fail_on_missing_project:
    description:
      - When the project has no containers at all, fail (C(true)) naming the projects that do exist,
        or (C(false)) return C(project_found=false) with status C(critical) and every expected service
        listed as missing.
    type: bool
    default: true
  restart_count_warning:
    description:
      - A container restarted this many times by its restart policy turns its service to C(warning).
        C(0) disables the check.
    type: int
    default: 1
  memory_percent_warning:
    description:
      - Memory usage (without page cache) in percent of the container's limit (of the host's memory when
        it has none) at which its check turns C(warning).
    type: float
    default: 90.0
  memory_percent_critical:
    description:
      - Memory usage in percent of the limit at which the check turns C(critical).
    type: float
    default: 95.0
  cpu_percent_warning:
    description:
      - CPU% (100 = one full core, as C(docker stats) shows it) at which a container's check turns
        C(warning). Unset means no CPU threshold.
    type: float
  cpu_percent_critical:
    description:
      - CPU% at which a container's check turns C(critical). Unset means no CPU threshold.
    type: float
  critical_services:
    description:
      - Services whose having no running healthy container is a runbook P1 (the application itself, its
        database and cache). In RV(report_checks) a C(critical) C(service:NAME) check of such a service carries
        C(severity=P1), of any other service C(severity=P2).
    type: list
    elements: str
    default: []
notes:
  - CPU% is on the scale of C(docker stats) - 100 = one full core - whatever the method. The cgroup method
    divides the CPU time the cgroup used in the window by the window's wall time (C(cpu_method=cgroup)).
  - The daemon method computes it like C(docker stats) from C(cpu_stats) against C(precpu_stats) of a
    non-streaming stats read (the daemon primes C(precpu_stats) with its previous 1 s sample;
    C(cpu_method=daemon_precpu)). When C(precpu_stats) comes back empty (older engines, first read on
    cgroup v1) a second read is taken and the two C(cpu_stats) are compared instead
    (C(cpu_method=second_read)), so the figure is never computed against zero.
  - Memory usage excludes the inactive page cache (C(total_inactive_file) on cgroup v1, C(inactive_file)
    on cgroup v2), like the Docker CLI. Without a memory limit (or with one above the host's memory) the
    limit is the host's memory (C(MemTotal)), as the daemon reports it.
  - One-off containers (C(docker compose run)) are ignored.
  - Keep O(timeout) above 2 seconds when the daemon method may be used; its stats sample takes up to 2 s.
"""

EXAMPLES = r"""
- name: State of the whole stack
  compose_status:
    project: equipment-marketplace
  register: stack_state
  changed_when: false
  check_mode: false

- name: CPU over a 2 s window (cgroup counters on the Docker host, the daemon's stats elsewhere)
  compose_status:
    project: equipment-marketplace
    stats_window: 2
    cpu_percent_warning: 80

- name: Backend and nginx only, without the CPU/memory sample
  compose_status:
    project: "{{ marketplace_compose_project }}"
    services: [backend, nginx]
    stats: false

- name: Do not fail when the project is not deployed yet
  compose_status:
    project: equipment-marketplace
    expected_services: [postgres, redis, backend, nginx, prometheus]
    fail_on_missing_project: false
    cpu_percent_warning: 80
    cpu_percent_critical: 150
"""

RETURN = r"""
available:
  description: Whether the Docker daemon answered.
  returned: always
  type: bool
  sample: true
reason:
  description: Why the daemon could not be used (only when C(available) is false).
  returned: when available is false
  type: str
  sample: "cannot talk to the Docker daemon at unix:///var/run/docker.sock: socket not found (is dockerd running?)"
project:
  description: The compose project that was read.
  returned: always
  type: str
  sample: equipment-marketplace
project_found:
  description: Whether the project has any container (false only with C(fail_on_missing_project=false)).
  returned: when available
  type: bool
status:
  description: Worst status of all checks (C(unknown) when the daemon is unavailable).
  returned: always
  type: str
  sample: ok
summary:
  description: One-line human summary.
  returned: always
  type: str
  sample: "5/5 expected services running; all healthy"
expected_services:
  description: The services that were expected to run.
  returned: when available
  type: list
  elements: str
expected_source:
  description: Where the expected services came from (C(option), C(services), C(compose_file) or C(containers)).
  returned: when available
  type: str
  sample: compose_file
missing:
  description: Expected services without any container.
  returned: when available
  type: list
  elements: str
exited:
  description: Services with a container in state exited or dead.
  returned: when available
  type: list
  elements: str
restarting:
  description: Services with a container the restart policy is restarting (a restart loop).
  returned: when available
  type: list
  elements: str
unhealthy:
  description: Services with a running container whose healthcheck reports unhealthy.
  returned: when available
  type: list
  elements: str
services:
  description:
    - Per service - C(status), C(message), C(expected), C(replicas), C(running), C(healthy) (running
      and healthy or without healthcheck), C(states) (count per state), C(containers) (names) and
      C(max_restart_count).
  returned: when available
  type: dict
containers:
  description:
    - One entry per container - C(name), C(id), C(service), C(replica), C(state), C(health)
      (healthy/unhealthy/starting/none), C(health_failing_streak), C(health_output) (last healthcheck output
      when not healthy, redacted), C(exit_code), C(oom_killed), C(error), C(restart_count),
      C(restart_policy), C(created), C(started_at), C(finished_at), C(uptime_seconds), C(image) (tag),
      C(image_id), C(stats).
    - C(stats) is null when not sampled, else C(cpu_percent), C(online_cpus), C(cpu_window_seconds) (the
      measured window), C(cpu_method) (C(cgroup), C(daemon_precpu) or C(second_read)), C(memory_usage),
      C(memory_limit) (bytes), C(memory_percent), C(memory_limited) (a limit is configured), C(pids),
      C(sampled_at), C(cgroup_version) (1 or 2, cgroup method only), C(fallback_reason) (why
      O(stats_method=auto) used the daemon for this container), or C(error).
  returned: when available
  type: list
  elements: dict
checks:
  description:
    - Report checks (C(name), C(component) (the service), C(status), C(value), C(threshold), C(message)),
      per service (C(service:NAME)) and per container (C(restarts:), C(memory:), C(cpu:) + container name).
  returned: when available
  type: list
  elements: dict
report_checks:
  description:
    - The checks in the form of the run report, judged - RV(checks) with the runbook C(severity) a critical
      C(service:NAME) check means (C(P1) for a service of O(critical_services), else C(P2)); every check
      carries the service as C(component).
    - When the daemon cannot be reached, one C(compose) check - C(critical), C(severity=P1), C(component=docker)
      - saying why.
  returned: always
  type: list
  elements: dict
stats_sampled:
  description: Whether CPU/memory samples were taken.
  returned: when available
  type: bool
stats_methods:
  description: How many containers were sampled by each C(cpu_method) (C(cgroup), C(daemon_precpu), C(second_read)).
  returned: when available
  type: dict
  sample: {"cgroup": 5}
stats_window_seconds:
  description: The shared window of the cgroup sample (O(stats_window)); null when no container was sampled that way.
  returned: when available
  type: float
  sample: 0.5
duration_seconds:
  description: Wall time of the gather.
  returned: when available
  type: float
"""

from ansible.module_utils.marketplace_compose_status import build_argument_spec, run
from ansible.module_utils.marketplace_module import MarketplaceModule


def main():
    run(MarketplaceModule(argument_spec=build_argument_spec(), supports_check_mode=True))


if __name__ == "__main__":
    main()
