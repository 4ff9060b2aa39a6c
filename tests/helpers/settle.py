"""Wait for the shared reference stack to settle before a test judges it healthy.

Earlier tests stop services, burn CPU, roll a broken release out and back, or inject 5xx answers on purpose.
Prometheus keeps those 5xx answers in its 1-minute window for up to a minute after the fault is gone, so a
test that expects an overall "ok" from the health check waits for the stack to be healthy, the window to be
clean and the host to be quiet first (each wait is bounded; a stack that never settles fails the assertion
that follows, with the report's findings).
"""
from __future__ import annotations

import json
import os
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping

from tests.helpers import faults

SERVICES = ("postgres", "redis", "backend", "nginx", "prometheus")


def base_url(stack_env: Mapping[str, str]) -> str:
    return f"http://{stack_env['BIND_ADDRESS']}:{stack_env['NGINX_HTTP_PORT']}"


def http_get(url: str, timeout: float = 5.0) -> int:
    """The HTTP status of a GET (the error's status for 4xx/5xx, -1 when nothing answered)."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            resp.read()
            return resp.status
    except urllib.error.HTTPError as err:
        return err.code
    except OSError:
        return -1


def wait_stack_healthy(stack_env: Mapping[str, str] | None = None, services=SERVICES, timeout: float = 180) -> None:
    """Every service's containers healthy and, given the env, the front door answering (not in maintenance)."""
    for service in services:
        faults.wait_healthy(service, timeout=timeout)
    if stack_env:
        deadline = time.monotonic() + 120
        while http_get(base_url(stack_env) + "/api/health") != 200 and time.monotonic() < deadline:
            time.sleep(2)


def _cpu_times() -> tuple[int, int]:
    """(busy, total) jiffies of all CPUs from /proc/stat (idle and iowait are not busy)."""
    with open("/proc/stat") as fh:
        fields = [int(x) for x in fh.readline().split()[1:]]
    total = sum(fields[:8])  # user nice system idle iowait irq softirq steal (guest is inside user)
    return total - fields[3] - fields[4], total


def cpu_busy_pct(seconds: float = 2.0) -> float:
    """Share of the machine's CPU time that was busy over the next `seconds`."""
    busy0, total0 = _cpu_times()
    time.sleep(seconds)
    busy1, total1 = _cpu_times()
    return 100.0 * (busy1 - busy0) / max(1, total1 - total0)


def wait_quiet(max_wait: float = 180.0) -> None:
    """Give other tests' CPU burners a chance to finish before judging host CPU (best effort).

    Quiet is the 1-minute load below the CPU count, or, sooner: the CPUs at most 40 % busy over 2 s (one spinning
    core alone is 50 % of this 2-core machine) with the 5-minute load below 1.5 per CPU (the health check warns at
    2.0, host_load). The load average trails a finished burst by minutes; the CPU sample sees that it is over."""
    deadline = time.monotonic() + max_wait
    cpus = os.cpu_count() or 1
    while time.monotonic() < deadline:
        with open("/proc/loadavg") as fh:
            load1, load5 = (float(x) for x in fh.read().split()[:2])
        if load1 < cpus or (load5 < 1.5 * cpus and cpu_busy_pct(2.0) <= 40.0):
            return
        time.sleep(1)


def prometheus_error_rate(stack_env: Mapping[str, str]) -> float:
    """The backend's 5xx percentage over Prometheus' last minute, as the health check computes it (0 if unknown)."""
    url = (f"http://{stack_env['BIND_ADDRESS']}:{stack_env['PROMETHEUS_PORT']}/api/v1/query?" + urllib.parse.urlencode(
        {"query": '100 * (sum(increase(http_requests_total{status=~"5..",route!~"/metrics"}[1m])) or vector(0))'
                  ' / sum(increase(http_requests_total{route!~"/metrics"}[1m]))'}))
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            return float(json.load(resp)["data"]["result"][0]["value"][1])
    except (OSError, ValueError, KeyError, IndexError):
        return 0.0


def wait_no_recent_5xx(stack_env: Mapping[str, str], max_wait: float = 90.0) -> None:
    """Injected faults (or 503s while a dependency was down) leave Prometheus' 1-minute window within ~75 s."""
    deadline = time.monotonic() + max_wait
    while prometheus_error_rate(stack_env) >= 0.5 and time.monotonic() < deadline:
        time.sleep(3)


def settle(stack_env: Mapping[str, str]) -> None:
    """All three: healthy services and front door, a clean 5xx window, a quiet host."""
    wait_stack_healthy(stack_env)
    wait_no_recent_5xx(stack_env)
    wait_quiet()
