"""http_probe against the reference stack's nginx and a local server that misbehaves on purpose."""
from __future__ import annotations

from tests.helpers.modules import assert_return_documented, run_module


def test_probes_the_front_door_with_status_latency_and_json(stack_env):
    base = f"http://{stack_env['BIND_ADDRESS']}:{stack_env['NGINX_HTTP_PORT']}"
    https = f"https://{stack_env['BIND_ADDRESS']}:{stack_env['NGINX_HTTPS_PORT']}"
    result = run_module("http_probe", {"probes": [
        {"name": "health", "url": base + "/health"},
        {"name": "api", "url": base + "/api/health", "parse_json": True},
        {"name": "tls", "url": https + "/health", "return_content": True},
    ], "validate_certs": False})
    assert not result.get("failed") and result["changed"] is False
    probes = result["probes"]
    assert probes["health"]["status"] == 200 and probes["health"]["ok"] is True
    assert 0 < probes["health"]["latency_ms"] < 5000
    assert probes["api"]["json"]["checks"]["database"]["status"] == "ok"
    assert '"component":"nginx"' in probes["tls"]["content"]
    assert result["failed_probes"] == []
    assert_return_documented("http_probe", result)


def test_self_signed_certificate_is_refused_when_validating(stack_env):
    https = f"https://{stack_env['BIND_ADDRESS']}:{stack_env['NGINX_HTTPS_PORT']}"
    result = run_module("http_probe", {"probes": [{"name": "tls", "url": https + "/health"}]})
    probe = result["probes"]["tls"]
    assert probe["ok"] is False and probe["status"] == -1 and "certificate" in probe["reason"]
    assert result["failed_probes"] == ["tls"]
