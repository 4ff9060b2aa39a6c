#!/usr/bin/python
# Streamed, redacted reading of a compose project's logs: error counts per service and the last lines.
from __future__ import annotations

DOCUMENTATION = r"""
---
module: compose_logs
short_description: Count error lines in a compose project's logs and return the last ones, redacted
description:
  - Reads the logs of the containers of a Docker compose project (all services, or the chosen ones)
    through the Docker SDK for Python, selected by the compose labels, within a C(since)/C(until) window
    and/or the last C(tail) lines of each container.
  - The log is streamed line by line; only counters and the last few lines are kept, so memory stays
    bounded however large the log is. Containers are read in parallel.
  - Counts per service the lines that match any of the case-insensitive C(patterns) (errors by default),
    and how many lines each pattern matched, and returns the last C(match_lines) matching lines per
    service and, optionally, the last C(last_lines) lines.
  - Before anything is returned, secrets are redacted - the values of every project container's
    environment variables whose names look like SECRET, PASSWORD, PASSWD, PASSPHRASE, TOKEN, KEY,
    CREDENTIAL, PRIVATE or AUTH, the password part of any URL value (DATABASE_URL, REDIS_URL, ...),
    C(extra_secrets), and patterns - bearer and basic authorization values, JWTs,
    C(scheme://user:password@) URLs, C(password=...) or C(token=...) pairs and C(redact_patterns).
  - Read-only; check mode reads the same logs. When the daemon cannot be reached the result is
    C(available=false) with a reason, not a failure.
version_added: "1.0.0"
author: Equipment Marketplace operations
extends_documentation_fragment:
  - marketplace_docker
options:
  services:
    description:
      - Services whose logs are read (default all). An unknown service fails, listing the known ones.
    type: list
    elements: str
    default: []
  since:
    description:
      - Start of the window - a number of seconds ago (C(300)), a duration ago (C(90s), C(15m), C(24h),
        C(7d), C(1h30m)), a Unix time (a number of 1000000000 or more, as C(docker logs --since) reads it) or an
        ISO 8601 timestamp (C(2026-01-31T02:00:00Z); without a zone it is UTC). A time in the future (more than
        a minute ahead) is refused. Unset means from the beginning of the log.
    type: str
  until:
    description:
      - End of the window, in the same forms as C(since). Unset means now.
    type: str
  tail:
    description:
      - Only the last N lines of each container's log (within the window). Unset means all lines.
    type: int
  patterns:
    description:
      - Case-insensitive regular expressions; a line that matches any of them is counted and kept as a
        match. The default counts error lines (C(error) as a word ending, so C(TypeError) and C([error])
        count but C(errors_total) does not).
    type: list
    elements: str
    default: ['error\b', 'fatal', 'exception', 'panic']
  match_lines:
    description:
      - How many of the last matching lines to return per service.
    type: int
    default: 20
  last_lines:
    description:
      - How many of the last lines (matching or not) to return per service. C(0) returns none.
    type: int
    default: 0
  timestamps:
    description:
      - Prefix each returned line with the Docker timestamp of the log entry.
    type: bool
    default: true
  max_line_length:
    description:
      - Returned lines are cut to this many characters (after redaction, without leaking a cut secret).
    type: int
    default: 2000
  extra_secrets:
    description:
      - More literal values to redact (for example secrets that live outside the containers' environment).
    type: list
    elements: str
    default: []
  redact_patterns:
    description:
      - More regular expressions whose matches are redacted.
    type: list
    elements: str
    default: []
  errors_warning:
    description:
      - Matching lines per service at which its C(log_errors:SERVICE) check in RV(report_checks) warns. Unset
        reports the count without judging it (a healthy stack logs some errors).
    type: int
notes:
  - Literal values shorter than 4 characters are not redacted literally (they would shred the text);
    the patterns still apply.
  - Logs of stopped containers of the project are read too (they tell why a service died).
  - O(timeout) limits each Docker API call; a log stream, once open, is read to its end.
"""

EXAMPLES = r"""
- name: Errors of the last 15 minutes in every service
  compose_logs:
    project: equipment-marketplace
    since: 15m
  register: recent_logs
  changed_when: false
  check_mode: false

- name: Last 200 lines of the backend and nginx, with warnings counted too
  compose_logs:
    project: "{{ marketplace_compose_project }}"
    services: [backend, nginx]
    tail: 200
    last_lines: 50
    patterns: ['error\b', 'fatal', 'warn']

- name: An incident window
  compose_logs:
    project: equipment-marketplace
    since: "2026-01-31T02:00:00Z"
    until: "2026-01-31T02:30:00Z"
    match_lines: 100
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
project:
  description: The compose project that was read.
  returned: always
  type: str
  sample: equipment-marketplace
since:
  description: Start of the window as an ISO 8601 UTC timestamp (null when unset).
  returned: when available
  type: str
  sample: "2026-01-31T02:00:00+00:00"
until:
  description: End of the window as an ISO 8601 UTC timestamp (null when unset).
  returned: when available
  type: str
tail:
  description: The C(tail) that was applied per container (null for all lines).
  returned: when available
  type: int
patterns:
  description: The patterns that were counted.
  returned: when available
  type: list
  elements: str
logs:
  description:
    - Per service - C(containers) (names read), C(lines_scanned), C(match_count) (lines matching any
      pattern), C(pattern_counts) (lines per pattern), C(matches) (last C(match_lines) matching lines),
      C(last_lines) (last C(last_lines) lines), C(truncated_lines) (lines longer than C(max_line_length))
      and C(errors) (containers whose log could not be read).
    - When a service has several containers each line starts with the container name and C( | ).
  returned: when available
  type: dict
  sample:
    backend:
      containers: [equipment-marketplace-backend-1]
      lines_scanned: 1200
      match_count: 2
      pattern_counts: {"error\\b": 2, fatal: 0, exception: 0, panic: 0}
      matches: ['2026-01-31T02:00:01.000000000Z 2026-01-31T02:00:01.000Z ERROR injected fault 500']
      last_lines: []
      truncated_lines: 0
      errors: []
total_matches:
  description: Matching lines over all services.
  returned: when available
  type: int
total_lines:
  description: Lines scanned over all services.
  returned: when available
  type: int
redaction:
  description: C(secret_values) (distinct literal values redacted when seen) and C(replacements) (redactions made).
  returned: when available
  type: dict
  sample: {secret_values: 6, replacements: 1}
report_checks:
  description:
    - The checks in the form of the run report, one C(log_errors:SERVICE) per service (C(component) the service,
      C(value) the matching lines, judged against O(errors_warning); C(lines_scanned) and C(last_matches), the
      last matching lines cut to 300 characters; the message names the window and the last match).
    - When the daemon cannot be reached, one C(log_errors) check - C(unknown), C(component=docker) - saying why.
  returned: always
  type: list
  elements: dict
duration_seconds:
  description: Wall time of the read.
  returned: when available
  type: float
"""

from ansible.module_utils.marketplace_compose_logs import build_argument_spec, run
from ansible.module_utils.marketplace_module import MarketplaceModule


def main():
    run(MarketplaceModule(argument_spec=build_argument_spec(), supports_check_mode=True))


if __name__ == "__main__":
    main()
