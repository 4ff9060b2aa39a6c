# Equipment Marketplace runbook: probe several HTTP endpoints at once, with their status and latency in ms.
# The code of library/http_probe.py (which keeps the documentation and main()); also a part of health_gather.
from __future__ import annotations

import base64
import concurrent.futures
import datetime
import http.client
import json
import socket
import ssl
import time
from urllib.parse import unquote, urlencode, urlsplit, urlunsplit


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
