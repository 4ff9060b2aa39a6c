"""The reference stack is real: data in PostgreSQL and Redis, nginx in front, faults behave, loopback only."""
from __future__ import annotations

import re
import ssl
import subprocess
import time
import urllib.error
import urllib.request
import uuid

import docker
import psycopg
import pytest

from tests.helpers import faults

SERVICES = ["postgres", "redis", "backend", "nginx", "prometheus"]


def http_get(url: str, timeout: float = 5.0) -> tuple[int, str]:
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    try:
        with urllib.request.urlopen(url, timeout=timeout, context=ctx) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode()


def poll_status(url: str, want: int, timeout: float = 30.0) -> tuple[int, str]:
    deadline = time.monotonic() + timeout
    status, body = 0, ""
    while time.monotonic() < deadline:
        try:
            status, body = http_get(url)
        except OSError:
            status, body = 0, ""
        if status == want:
            return status, body
        time.sleep(0.5)
    return status, body


@pytest.fixture(scope="module")
def urls(stack_env):
    e = stack_env
    return {"http": f"http://{e['BIND_ADDRESS']}:{e['NGINX_HTTP_PORT']}",
            "https": f"https://{e['BIND_ADDRESS']}:{e['NGINX_HTTPS_PORT']}",
            "prometheus": f"http://{e['BIND_ADDRESS']}:{e['PROMETHEUS_PORT']}"}


def test_postgres_holds_the_seeded_marketplace(app_dsn, pg_dsn):
    with psycopg.connect(pg_dsn) as conn:
        preload = conn.execute("SHOW shared_preload_libraries").fetchone()[0]
    with psycopg.connect(app_dsn) as conn:
        counts = dict(conn.execute(
            "SELECT 'orders', count(*) FROM orders UNION ALL SELECT 'users', count(*) FROM users "
            "UNION ALL SELECT 'equipment_listings', count(*) FROM equipment_listings "
            "UNION ALL SELECT 'payments', count(*) FROM payments UNION ALL SELECT 'api_keys', count(*) FROM api_keys"
        ).fetchall())
    assert counts["orders"] >= 100_000
    assert counts["users"] >= 10_000 and counts["equipment_listings"] >= 10_000
    assert counts["payments"] > 0 and counts["api_keys"] > 0
    assert "pg_stat_statements" in preload


def test_postgres_refuses_a_wrong_password(stack_env):
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        psycopg.connect(host=stack_env["BIND_ADDRESS"], port=int(stack_env["POSTGRES_PORT"]),
                        dbname=stack_env["POSTGRES_DB"], user=stack_env["APP_DB_USER"], password="wrong",
                        connect_timeout=5)


def test_redis_holds_app_shaped_keys(redis_client, stack_env):
    import redis

    # The response cache has its own database (REDIS_CACHE_DB, default 1); sessions & co stay in db 0.
    cache_client = redis.Redis(host=stack_env["BIND_ADDRESS"], port=int(stack_env["REDIS_PORT"]),
                               password=stack_env["REDIS_PASSWORD"], db=int(stack_env.get("REDIS_CACHE_DB", "1")),
                               socket_timeout=10, decode_responses=True)
    try:
        cache = list(cache_client.scan_iter(match="cache:*", count=1000))
        assert len(cache) >= 100
        assert cache_client.ttl(cache[0]) > 0 and redis_client.ttl(cache[0]) == -2  # not in db 0
    finally:
        cache_client.close()
    sessions = list(redis_client.scan_iter(match="session:*", count=1000))
    assert len(sessions) >= 100
    cfg = redis_client.config_get("maxmemory*")
    assert int(cfg["maxmemory"]) > 0 and cfg["maxmemory-policy"] == stack_env["REDIS_MAXMEMORY_POLICY"]


def test_redis_requires_its_password(stack_env):
    import redis

    with pytest.raises(redis.exceptions.AuthenticationError):
        redis.Redis(host=stack_env["BIND_ADDRESS"], port=int(stack_env["REDIS_PORT"]), socket_timeout=5).ping()


@pytest.mark.parametrize("scheme", ["http", "https"])
def test_api_health_through_nginx(urls, scheme):
    status, body = http_get(urls[scheme] + "/api/health")
    assert status == 200, body
    assert '"database":{"status":"ok"}' in body and '"redis":{"status":"ok"}' in body


def test_nginx_serves_spa_health_and_metrics(urls):
    assert http_get(urls["http"] + "/health")[0] == 200
    status, body = http_get(urls["http"] + "/some/client/route")
    assert status == 200 and "Equipment Marketplace" in body
    status, body = http_get(urls["http"] + "/metrics")
    assert status == 200 and "http_requests_total" in body and "http_request_duration_seconds_bucket" in body


def test_backend_endpoints_login_cache_and_auth(urls):
    import json

    assert http_get(urls["http"] + "/api/me")[0] == 401
    req = urllib.request.Request(urls["http"] + "/api/auth/login", method="POST",
                                 data=json.dumps({"email": "demo@example.com", "password": "demo-password"}).encode(),
                                 headers={"content-type": "application/json"})
    with urllib.request.urlopen(req, timeout=5) as resp:
        token = json.loads(resp.read())["token"]
    req = urllib.request.Request(urls["http"] + "/api/me", headers={"authorization": f"Bearer {token}"})
    with urllib.request.urlopen(req, timeout=5) as resp:
        assert json.loads(resp.read())["user"]["email"] == "demo@example.com"
    page = f"/api/listings?page={900 + int(time.time()) % 90}"
    with urllib.request.urlopen(urls["http"] + page, timeout=5) as first:
        assert first.headers["X-Cache"] == "MISS"
    with urllib.request.urlopen(urls["http"] + page, timeout=5) as second:
        assert second.headers["X-Cache"] == "HIT"


def test_prometheus_scrapes_the_backend(urls):
    import json

    deadline = time.monotonic() + 30
    while True:
        status, body = http_get(urls["prometheus"] + '/api/v1/query?query=up%7Bjob%3D%22backend%22%7D')
        result = json.loads(body)["data"]["result"] if status == 200 else []
        if any(r["value"][1] == "1" for r in result) or time.monotonic() > deadline:
            break
        time.sleep(1)
    assert any(r["value"][1] == "1" for r in result), body


def test_every_container_uses_host_networking_and_no_bridge_exists(stack_env):
    client = docker.from_env()
    project = stack_env["COMPOSE_PROJECT_NAME"]
    cs = client.containers.list(all=True, filters={"label": f"com.docker.compose.project={project}"})
    assert {c.labels["com.docker.compose.service"] for c in cs} >= set(SERVICES)
    for c in cs:
        assert c.attrs["HostConfig"]["NetworkMode"] == "host", c.name
        assert set(c.attrs["NetworkSettings"]["Networks"]) == {"host"}, c.name
    bridges = [n.name for n in client.networks.list() if n.attrs.get("Driver") == "bridge"]
    assert bridges == [], f"bridge networks exist: {bridges}"


def test_nothing_the_stack_starts_listens_beyond_loopback(stack_env):
    client = docker.from_env()
    pids: set[str] = set()
    project = stack_env["COMPOSE_PROJECT_NAME"]
    for c in client.containers.list(filters={"label": f"com.docker.compose.project={project}"}):
        top = c.top(ps_args="-eo pid")
        pids.update(row[0] for row in top["Processes"])
    out = subprocess.run(["ss", "-H", "-lntup"], capture_output=True, text=True, check=True).stdout
    owned = []
    for line in out.splitlines():
        found = set(re.findall(r"pid=(\d+)", line))
        if found & pids:
            local = line.split()[4]
            owned.append(local)
    assert owned, "found no listener of the stack's processes"
    for local in owned:
        addr = local.rsplit(":", 1)[0].strip("[]")
        assert addr in ("127.0.0.1", "::1"), f"a stack process listens on {local}"


def test_processes_inside_containers(container_host):
    pg = container_host("postgres")
    assert any(p.user == "postgres" for p in pg.process.filter(comm="postgres"))
    assert container_host("redis").process.get(comm="redis-server").user == "redis"
    # The server and any `node /app/healthcheck.js` the health check runs (every 2 s) beside it.
    nodes = container_host("backend").process.filter(comm="node")
    assert nodes and all(p.user == "nobody" for p in nodes), [(p.pid, p.user) for p in nodes]


def test_listeners_seen_by_testinfra(local_host, stack_env):
    e = stack_env
    for port in ("POSTGRES_PORT", "REDIS_PORT", "NGINX_HTTP_PORT", "NGINX_HTTPS_PORT", "PROMETHEUS_PORT"):
        assert local_host.socket(f"tcp://127.0.0.1:{e[port]}").is_listening, port
        assert not local_host.socket(f"tcp://0.0.0.0:{e[port]}").is_listening, port


@pytest.mark.destructive
def test_api_health_is_503_while_redis_is_stopped(urls):
    with faults.service_stopped("redis"):
        status, body = poll_status(urls["http"] + "/api/health", 503, timeout=30)
        assert status == 503, body
        assert '"redis":{"status":"down"}' in body and '"database":{"status":"ok"}' in body
    status, body = poll_status(urls["http"] + "/api/health", 200, timeout=60)
    assert status == 200, body


@pytest.mark.destructive
def test_data_survives_a_postgres_restart(stack_env):
    marker = f"restart-test-{uuid.uuid4()}"
    faults.run_sql_as_app("INSERT INTO audit_events (action, detail) VALUES ('test.marker', %s)", (marker,),
                          stack_env=stack_env)
    from tests.helpers import stackenv

    stackenv.compose("restart", "postgres")
    faults.wait_healthy("postgres")
    rows = faults.run_sql_as_app("SELECT count(*) FROM audit_events WHERE detail = %s", (marker,), stack_env=stack_env)
    assert rows[0][0] == 1
    faults.run_sql_as_app("DELETE FROM audit_events WHERE detail = %s", (marker,), stack_env=stack_env)
    assert faults.run_sql_as_app("SELECT count(*) FROM orders", stack_env=stack_env)[0][0] >= 100_000
