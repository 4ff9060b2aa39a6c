"""http_probe against the reference stack's nginx and a local server that misbehaves on purpose."""
from __future__ import annotations

import http.server
import socket
import threading
import time

import pytest

from tests.helpers.modules import run_module


class _Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path.startswith("/slow"):
            time.sleep(2)
        if self.path.startswith("/auth"):
            ok = self.headers.get("Authorization", "").startswith("Basic ")
            self.send_response(200 if ok else 401)
            self.end_headers()
            self.wfile.write(b"{}")
            return
        body = b"x" * 100
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def local_server():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]






def test_unreachable_timeout_and_unexpected_status_are_results(local_server):
    port = _closed_port()
    started = time.monotonic()
    result = run_module("http_probe", {"probes": [
        {"name": "refused", "url": f"http://127.0.0.1:{port}/"},
        {"name": "slow", "url": local_server + "/slow"},
        {"name": "fast", "url": local_server + "/", "expect_status": [204]},
    ], "timeout": 0.5})
    assert time.monotonic() - started < 1.8  # probes run in parallel
    probes = result["probes"]
    assert probes["refused"]["reason"] == "connection refused" and probes["refused"]["status"] == -1
    assert probes["slow"]["reason"] == "timed out"
    assert probes["fast"]["status"] == 200 and probes["fast"]["ok"] is False
    assert "expected 204" in probes["fast"]["reason"]
    assert sorted(result["failed_probes"]) == ["fast", "refused", "slow"]


def test_credentials_are_sent_but_never_returned(local_server):
    url = local_server.replace("http://", "http://probe-user:s3cr3t-value@") + "/auth"
    result = run_module("http_probe", {"probes": [{"name": "auth", "url": url}]})
    assert result["probes"]["auth"]["status"] == 200
    assert "s3cr3t-value" not in result["_raw"].replace('"login_password"', "")
    assert result["probes"]["auth"]["url"].startswith("http://127.0.0.1:")


def test_truncation_delay_and_bad_options(local_server):
    started = time.monotonic()
    result = run_module("http_probe", {"probes": [{"name": "x", "url": local_server + "/", "return_content": True}],
                                       "max_content_bytes": 10, "delay": 0.3})
    assert time.monotonic() - started >= 0.3
    assert result["probes"]["x"]["truncated"] is True and len(result["probes"]["x"]["content"]) == 10
    bad = run_module("http_probe", {"probes": [{"name": "x", "url": "ftp://127.0.0.1/"}]})
    assert bad["failed"] and "scheme" in bad["msg"]
    dup = run_module("http_probe", {"probes": [{"name": "x", "url": local_server}, {"name": "x", "url": local_server}]})
    assert dup["failed"] and "duplicate" in dup["msg"]
    check = run_module("http_probe", {"probes": [{"name": "x", "url": local_server + "/"}]}, check_mode=True)
    assert check["probes"]["x"]["ok"] is True
