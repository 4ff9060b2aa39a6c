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

import base64
import concurrent.futures
import datetime
import http.client
import json
import socket
import ssl
import time
from urllib.parse import unquote, urlencode, urlsplit, urlunsplit

from ansible.module_utils.marketplace_module import MarketplaceModule


def build_argument_spec():
    return dict(
        probes=dict(type="list", elements="dict", required=True, options=dict(
            name=dict(type="str", required=True),
            url=dict(type="str", required=True),
            method=dict(type="str", choices=["GET", "HEAD"], default="GET"),
            params=dict(type="dict", default={}),
            headers=dict(type="dict", default={}),
            expect_status=dict(type="list", elements="int", default=[200]),
            return_content=dict(type="bool", default=False),
            parse_json=dict(type="bool", default=False),
        )),
        timeout=dict(type="float", default=5.0),
        validate_certs=dict(type="bool", default=True),
        delay=dict(type="float", default=0.0),
        max_content_bytes=dict(type="int", default=4 * 1024 * 1024),
    )


def safe_url(url):
    """The URL without user:password@."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    return urlunsplit((parts.scheme, parts.netloc.rsplit("@", 1)[1], parts.path, parts.query, parts.fragment))


def full_url(probe):
    url = probe["url"]
    if probe["params"]:
        url += ("&" if urlsplit(url).query else "?") + urlencode({k: str(v) for k, v in probe["params"].items()})
    return url


def describe(exc):
    if isinstance(exc, (socket.timeout, TimeoutError)):
        return "timed out"
    if isinstance(exc, ssl.SSLCertVerificationError):
        return "TLS certificate not trusted: %s" % (exc.verify_message or exc.reason)
    if isinstance(exc, ssl.SSLError):
        return "TLS error: %s" % (exc.reason or exc)
    if isinstance(exc, socket.gaierror):
        return "name resolution failed: %s" % (exc.strerror or exc)
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror.lower()
    if isinstance(exc, http.client.HTTPException):
        return "bad HTTP answer: %s" % (exc.__class__.__name__)
    return str(exc) or exc.__class__.__name__


def tls_context(validate):
    if validate:
        return ssl.create_default_context()
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def run_probe(probe, params, contexts):
    url = full_url(probe)
    parts = urlsplit(url)
    result = dict(url=safe_url(url), method=probe["method"], status=-1, ok=False, latency_ms=None, reason=None,
                  content_type=None, bytes=0)
    host = parts.hostname or ""
    path = (parts.path or "/") + ("?" + parts.query if parts.query else "")
    headers = {"User-Agent": "marketplace-http-probe/1.0", "Accept": "*/*", "Connection": "close"}
    if parts.username is not None:
        credentials = "%s:%s" % (unquote(parts.username), unquote(parts.password or ""))
        headers["Authorization"] = "Basic " + base64.b64encode(credentials.encode("utf-8")).decode("ascii")
    headers.update({str(k): str(v) for k, v in (probe["headers"] or {}).items()})
    limit = params["max_content_bytes"]
    body, truncated = b"", False
    started = time.monotonic()
    conn = None
    try:
        if parts.scheme == "https":
            conn = http.client.HTTPSConnection(host, parts.port or 443, timeout=params["timeout"],
                                               context=contexts["https"])
        else:
            conn = http.client.HTTPConnection(host, parts.port or 80, timeout=params["timeout"])
        conn.request(probe["method"], path, headers=headers)
        response = conn.getresponse()
        result["status"] = response.status
        result["content_type"] = response.getheader("Content-Type")
        data = response.read(limit + 1) if probe["method"] != "HEAD" else b""
        body, truncated = data[:limit], len(data) > limit
    except (OSError, http.client.HTTPException, ValueError) as exc:
        result["reason"] = describe(exc)
    finally:
        result["latency_ms"] = round((time.monotonic() - started) * 1000.0, 2)
        if conn is not None:
            conn.close()
    result["bytes"] = len(body)
    result["ok"] = result["status"] in probe["expect_status"]
    if not result["ok"] and result["reason"] is None:
        result["reason"] = "answered %s, expected %s" % (result["status"], "/".join(map(str, probe["expect_status"])))
    text = body.decode("utf-8", errors="replace")
    if probe["return_content"]:
        result["content"] = text
        result["truncated"] = truncated
    if probe["parse_json"]:
        try:
            result["json"] = json.loads(text) if text and not truncated else None
        except ValueError:
            result["json"] = None
    return result


def run(module):
    """The module's work for an AnsibleModule-like object (params, fail_json, exit_json, no_log_values);
    health_gather calls it in-process with its own."""
    params = module.params
    if params["timeout"] <= 0:
        module.fail_json(msg="timeout must be positive")
    if params["delay"] < 0 or params["delay"] > 3600:
        module.fail_json(msg="delay must be between 0 and 3600 seconds")
    if params["max_content_bytes"] < 1:
        module.fail_json(msg="max_content_bytes must be positive")
    names = [p["name"] for p in params["probes"]]
    if not names:
        module.fail_json(msg="probes must not be empty")
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        module.fail_json(msg="duplicate probe name(s): %s" % ", ".join(duplicates))
    for probe in params["probes"]:
        parts = urlsplit(probe["url"])
        if parts.password:
            # Masked wherever it would appear in the result, the echoed arguments included.
            module.no_log_values.add(parts.password)
            module.no_log_values.add(unquote(parts.password))
        scheme = parts.scheme
        if scheme not in ("http", "https"):
            module.fail_json(msg="probe %s: URL scheme must be http or https, not %r" % (probe["name"], scheme))
    if params["delay"]:
        time.sleep(params["delay"])
    contexts = {}
    if any(urlsplit(p["url"]).scheme == "https" for p in params["probes"]):
        contexts["https"] = tls_context(params["validate_certs"])  # built once: loading CAs takes time
    probed_at = datetime.datetime.now(datetime.UTC).isoformat()
    started = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(max_workers=min(16, len(names))) as pool:
        outcomes = list(pool.map(lambda p: run_probe(p, params, contexts), params["probes"]))
    results = dict(zip(names, outcomes, strict=True))
    module.exit_json(changed=False, probes=results, failed_probes=[n for n in names if not results[n]["ok"]],
                     duration_ms=round((time.monotonic() - started) * 1000.0, 2), probed_at=probed_at)


def main():
    run(MarketplaceModule(argument_spec=build_argument_spec(), supports_check_mode=True))


if __name__ == "__main__":
    main()
