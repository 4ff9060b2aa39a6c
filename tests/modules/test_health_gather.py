"""health_gather against the real reference stack: every part at once, each as its own module returns it."""
from __future__ import annotations

import pytest

from tests.helpers.modules import assert_return_documented, run_module
from tests.helpers.stackenv import read_env

PROJECT = read_env().get("COMPOSE_PROJECT_NAME", "equipment-marketplace")


@pytest.fixture()
def parts(stack_env, pg_params, redis_params) -> dict:
    base = f"http://{stack_env['BIND_ADDRESS']}:{stack_env['NGINX_HTTP_PORT']}"
    return {
        "http": {"probes": [{"name": "api_health", "url": base + "/api/health", "parse_json": True}]},
        "postgres": {**pg_params, "sections": ["connections"]},
        "redis": {**redis_params, "sections": ["memory"], "sample_seconds": 0},
        "logs": {"project": PROJECT, "tail": 50, "since": "15m"},
        "compose": {"project": PROJECT},
        "host": {"sections": ["memory", "cpu", "disk"], "paths": ["/"], "sample_seconds": 0.5},
    }


def test_every_part_returns_what_its_module_returns(parts, stack_env):
    result = run_module("health_gather", parts)
    assert not result.get("failed"), result.get("msg")
    assert result["changed"] is False and result["failed_parts"] == []
    assert set(result["timings"]) == set(parts)
    assert result["http"]["probes"]["api_health"]["status"] == 200
    assert result["postgres"]["available"] is True and result["postgres"]["checks"]["connections"]["value"] > 0
    assert result["redis"]["available"] is True and result["redis"]["memory"]["used_bytes"] > 0
    assert set(result["logs"]["logs"]) >= {"backend", "nginx", "postgres", "redis"}
    assert result["compose"]["status"] in ("ok", "warning") and result["compose"]["containers"]
    assert all(c["stats"] for c in result["compose"]["containers"] if c["state"] == "running")
    assert result["host"]["cpu"]["window_seconds"] == pytest.approx(0.5, abs=0.2)
    # The same keys as the modules run on their own (the judges read them unchanged).
    for part, module in (("postgres", "postgres_health"), ("redis", "redis_health"), ("host", "host_resources"),
                         ("compose", "compose_status"), ("http", "http_probe"), ("logs", "compose_logs")):
        alone = run_module(module, parts[part])
        assert not alone.get("failed"), alone.get("msg")
        assert set(result[part]) == set(alone) - {"changed", "invocation", "_raw"}, part
    # No password anywhere in the output, the echoed arguments included.
    assert stack_env["POSTGRES_PASSWORD"] not in result["_raw"]
    assert stack_env["REDIS_PASSWORD"] not in result["_raw"]
    assert_return_documented("health_gather", result)


def test_host_window_starts_first_and_the_others_run_inside_it_without_counting(parts):
    result = run_module("health_gather", {**parts, "host": {**parts["host"], "sample_seconds": 1.0}})
    timings = result["timings"]
    others = [p for p in parts if p != "host"]
    assert all(timings["host"]["started"] <= timings[p]["started"] for p in others), timings
    # Every other part (the client-library imports included) ran inside the host's CPU window ...
    host_end = timings["host"]["started"] + timings["host"]["seconds"]
    assert all(timings[p]["started"] + timings[p]["seconds"] <= host_end + 0.3 for p in others), timings
    assert result["duration_seconds"] < timings["host"]["seconds"] + 0.5
    # ... and this process's own CPU time in it is excluded from the host's busy share and reported.
    cpu = result["host"]["cpu"]
    assert cpu["excluded_self_pct"] > 0 and cpu["busy_pct"] >= 0


def test_only_the_parts_given_run(parts):
    result = run_module("health_gather", {"postgres": parts["postgres"], "redis": parts["redis"]})
    assert set(result["timings"]) == {"postgres", "redis"}
    assert "compose" not in result and "host" not in result and "http" not in result


def test_a_failing_part_does_not_stop_the_others(parts, redis_params):
    bad_redis = {**redis_params, "login_password": "wrong-password-for-the-test", "sections": ["memory"]}
    bad_logs = {"project": PROJECT, "patterns": ["(unclosed"]}  # rejected by compose_logs itself
    result = run_module("health_gather", {"postgres": parts["postgres"], "redis": bad_redis, "logs": bad_logs})
    assert not result.get("failed")
    assert result["postgres"]["available"] is True
    assert result["redis"]["available"] is False and "auth" in result["redis"]["reason"].lower()
    assert result["logs"]["failed"] is True and "invalid regular expression" in result["logs"]["msg"]
    assert result["failed_parts"] == ["logs"]
    assert "wrong-password-for-the-test" not in result["_raw"]


def test_a_part_past_the_timeout_is_reported_as_failed(parts):
    slow_host = {**parts["host"], "sample_seconds": 3}
    result = run_module("health_gather", {"redis": parts["redis"], "host": slow_host, "timeout": 1})
    assert result["failed_parts"] == ["host"]
    assert result["host"]["failed"] is True and "did not finish within 1 s" in result["host"]["msg"]
    assert result["redis"]["available"] is True
    assert result["duration_seconds"] < 2.5


@pytest.mark.parametrize(("args", "message"), [
    ({}, "no part to run"),
    ({"postgres": {"login_port": "not-a-port"}}, "invalid options: postgres:"),
    ({"redis": {"no_such_option": 1}}, "invalid options: redis:"),
    ({"host": {"sections": ["cpu"]}, "timeout": 0}, "timeout must be positive"),
])
def test_bad_options_fail_clearly_before_anything_runs(args, message):
    result = run_module("health_gather", args)
    assert result["failed"] is True and message in result["msg"], result["msg"]
    assert "timings" not in result
