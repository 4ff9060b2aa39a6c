#!/usr/bin/python
# Equipment Marketplace runbook: probe several HTTP endpoints at once, with their status and latency in ms.
from __future__ import annotations

DOCUMENTATION = r"""
---
module: http_probe
short_description: Probe HTTP endpoints concurrently and report status code and latency in milliseconds
description:
  - Sends one request to each of O(probes) in parallel threads and returns, per probe, the HTTP status code,
    the latency in milliseconds (request sent to last byte read) and, when asked, the body (and its JSON).
  - It exists because C(ansible.builtin.uri) reports its elapsed time in whole seconds and probes one URL per
    task; the runbook's health check needs C(/health), C(/api/health), Prometheus queries and C(/metrics)
    samples in one short step.
  - An endpoint that does not answer, answers with an unexpected status or times out is a result, not a
    failure (RV(probes[].ok=false) with a RV(probes[].reason)); the playbook decides the severity. Only bad
    options fail the module.
  - User names and passwords in URLs are sent as HTTP basic authentication and never appear in the result.
  - Read-only (C(GET)/C(HEAD) only); check mode probes the same way.
version_added: "1.0.0"
author: Equipment Marketplace operations
options:
  probes:
    description: The requests to send.
    type: list
    elements: dict
    required: true
    suboptions:
      name:
        description: Key of this probe in RV(probes).
        type: str
        required: true
      url:
        description: C(http://) or C(https://) URL.
        type: str
        required: true
      method:
        description: HTTP method.
        type: str
        choices: [GET, HEAD]
        default: GET
      params:
        description: Query parameters, URL-encoded and appended to O(probes[].url).
        type: dict
        default: {}
      headers:
        description: Extra request headers.
        type: dict
        default: {}
      expect_status:
        description: Status codes that count as RV(probes[].ok).
        type: list
        elements: int
        default: [200]
      return_content:
        description: Return the body (cut to O(max_content_bytes)) as RV(probes[].content).
        type: bool
        default: false
      parse_json:
        description: Parse a JSON body into RV(probes[].json) (null when it is not JSON).
        type: bool
        default: false
  timeout:
    description: Seconds each request may take, connection included.
    type: float
    default: 5.0
  validate_certs:
    description: Verify TLS certificates and host names.
    type: bool
    default: true
  delay:
    description:
      - Seconds to wait before sending the requests (to space two samples of a counter, for example).
    type: float
    default: 0.0
  max_content_bytes:
    description: Longest body read per probe; a longer one is cut and flagged RV(probes[].truncated).
    type: int
    default: 4194304
notes:
  - Latency includes connection set-up (and the TLS handshake), as C(curl -w %{time_total}) does.
  - Requests go straight to the host of the URL; proxy environment variables are not used (a health probe
    must measure the endpoint, not a proxy).
  - Redirects are not followed; a 301/302 is reported as such.
"""

EXAMPLES = r"""
- name: Probe the front door
  http_probe:
    probes:
      - {name: nginx_health, url: "http://127.0.0.1:58080/health"}
      - {name: api_health, url: "http://127.0.0.1:58080/api/health", parse_json: true, expect_status: [200]}
    timeout: 5
  register: probe

- name: Ask Prometheus for the 5xx rate, and take a sample of the backend's metrics at the same time
  http_probe:
    probes:
      - name: rate_5xx
        url: "http://127.0.0.1:59090/api/v1/query"
        params: {query: 'sum(rate(http_requests_total{status=~"5.."}[1m]))'}
        parse_json: true
      - {name: metrics, url: "http://127.0.0.1:58080/metrics", return_content: true}
"""

RETURN = r"""
probes:
  description:
    - Per probe name - C(url) (credentials removed), C(method), C(status) (HTTP status code, -1 when there was
      no answer), C(ok) (status in O(probes[].expect_status)), C(latency_ms), C(reason) (why it is not ok, or
      null), C(content_type), C(bytes), and with O(probes[].return_content) C(content) and C(truncated), with
      O(probes[].parse_json) C(json).
  returned: always
  type: dict
  sample:
    api_health: {url: "http://127.0.0.1:58080/api/health", method: GET, status: 200, ok: true, latency_ms: 4.2,
                 reason: null, content_type: application/json, bytes: 120, json: {status: ok}}
failed_probes:
  description: Names of the probes that are not ok.
  returned: always
  type: list
  elements: str
duration_ms:
  description: Wall time of all probes together (after O(delay)), in milliseconds.
  returned: always
  type: float
probed_at:
  description: UTC time the requests were sent (ISO 8601).
  returned: always
  type: str
"""

from ansible.module_utils.marketplace_http_probe import build_argument_spec, run
from ansible.module_utils.marketplace_module import MarketplaceModule


def main():
    run(MarketplaceModule(argument_spec=build_argument_spec(), supports_check_mode=True))


if __name__ == "__main__":
    main()
