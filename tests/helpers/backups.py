"""Helpers of the backup / restore tests: private backup directories, the postgres container, row counts,
copies of backups (renamed, truncated, with an edited manifest), a local S3 server (moto) and a safety net
that puts the application database back when a test left it damaged."""
from __future__ import annotations

import contextlib
import datetime
import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

import docker
import psycopg

from devtools.backups import (  # noqa: F401 - shared with bench/bench_backup.py
    APP_DB,
    BACKUP_ROOT,
    admin_conn,
    backups_in,
    databases,
    drop_database,
    new_backup_dir,
    postgres_container,
)
from tests.helpers import faults, stackenv
from tests.helpers.net import free_port, wait_listening

KEY_TABLES = ["users", "equipment_listings", "orders", "payments", "api_keys", "audit_events"]
STAMP = "%Y%m%dT%H%M%SZ"


def manifest(path: Path, name: str) -> dict:
    return json.loads((path / f"{name}.manifest.json").read_text())


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def copy_backup(src_dir: Path, name: str, dst_dir: Path, when: datetime.datetime, edit=None) -> str:
    """Copy a backup under the name of another time (manifest rewritten); ``edit(manifest)`` may change it."""
    db = name.rsplit("-", 1)[0]
    new = f"{db}-{when.strftime(STAMP)}"
    shutil.copyfile(src_dir / f"{name}.dump", dst_dir / f"{new}.dump")
    m = manifest(src_dir, name)
    m.update(name=new, file=f"{new}.dump")
    if edit:
        edit(m)
    (dst_dir / f"{new}.dump.sha256").write_text(f"{m['sha256']}  {new}.dump\n")
    (dst_dir / f"{new}.manifest.json").write_text(json.dumps(m, indent=2) + "\n")
    return new


def fake_backup(dst_dir: Path, when: datetime.datetime, db: str = APP_DB) -> str:
    """A small fake backup (retention tests only look at names and manifests)."""
    name = f"{db}-{when.strftime(STAMP)}"
    data = f"fake dump {name}\n".encode()
    (dst_dir / f"{name}.dump").write_bytes(data)
    digest = hashlib.sha256(data).hexdigest()
    (dst_dir / f"{name}.dump.sha256").write_text(f"{digest}  {name}.dump\n")
    (dst_dir / f"{name}.manifest.json").write_text(json.dumps(
        {"format": 1, "name": name, "file": f"{name}.dump", "database": db, "size_bytes": len(data),
         "sha256": digest, "row_counts": {}}) + "\n")
    return name


def row_counts(dbname: str = APP_DB, tables=KEY_TABLES) -> dict:
    """Exact counts; a missing table counts as None."""
    out = {}
    with admin_conn(dbname) as conn:
        for t in tables:
            try:
                with conn.transaction():
                    out[t] = conn.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0]
            except psycopg.errors.UndefinedTable:
                out[t] = None
    return out


def container_exec(service: str, argv: list[str]) -> tuple[int, str]:
    c = faults.containers(service, all_states=False)[0]
    rc, out = c.exec_run(argv, user="root")
    return rc, out.decode(errors="replace")


def started_at(service: str) -> list[str]:
    """StartedAt of the service's containers (changes when a container is stopped and started)."""
    client = docker.from_env()
    return sorted(client.containers.get(c.id).attrs["State"]["StartedAt"] for c in faults.containers(service))


def wait_stack_healthy(services=("postgres", "backend", "nginx"), timeout: float = 240) -> None:
    for service in services:
        faults.wait_healthy(service, timeout=timeout)


class MotoServer:
    """moto's S3 server mode on 127.0.0.1 and a free port."""

    def __init__(self) -> None:
        self.port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen | None = None
        self.log = Path(f"/tmp/moto-{self.port}.log")

    def start(self) -> MotoServer:
        exe = Path(sys.executable).parent / "moto_server"
        self.proc = subprocess.Popen([str(exe), "-H", "127.0.0.1", "-p", str(self.port)],
                                     stdout=open(self.log, "w"), stderr=subprocess.STDOUT)
        wait_listening(self.port, self.proc, "moto_server", self.log, timeout=30)
        return self

    def client(self, access_key="AKIATESTBACKUPKEY", secret_key="test-secret-backup-key-0123456789"):  # noqa: S107
        import boto3
        from botocore.config import Config

        return boto3.client("s3", endpoint_url=self.endpoint, region_name="us-east-1", aws_access_key_id=access_key,
                            aws_secret_access_key=secret_key, config=Config(s3={"addressing_style": "path"}))

    def stop(self) -> None:
        if self.proc:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        with contextlib.suppress(OSError):
            self.log.unlink()


def maintenance_file(env: dict | None = None) -> Path:
    e = env or stackenv.read_env()
    return Path(e.get("EM_STATE_DIR", "/var/lib/equipment-marketplace")) / "nginx" / "maintenance" / "on"


def ensure_app_running() -> None:
    """Safety net: maintenance off, backend and nginx started and healthy."""
    with contextlib.suppress(FileNotFoundError):
        maintenance_file().unlink()
    for service in ("backend", "nginx"):
        if not faults.containers(service, all_states=False):
            faults.start_service(service, wait=False)
    wait_stack_healthy()


def ensure_live_db(expected: dict, backup_dir: Path, name: str) -> None:
    """Safety net: when the application database is damaged the way the restore test damages it (a key table
    missing or with far fewer rows than the backup), restore ``name`` into a new database and swap it in,
    keeping nothing. Other changes (another engineer's test adding rows) are left alone."""
    try:
        now = row_counts()
        if all(now.get(t) is not None and now[t] >= 0.95 * n for t, n in expected.items()):
            return
    except psycopg.Error:
        pass
    from tests.helpers.modules import run_module

    e = stackenv.read_env()
    conn = dict(login_host=e["BIND_ADDRESS"], login_port=int(e["POSTGRES_PORT"]), login_user=e["POSTGRES_SUPERUSER"],
                login_password=e["POSTGRES_PASSWORD"])
    stamp = datetime.datetime.now(datetime.UTC).strftime("%Y%m%d_%H%M%S")
    new, old = f"{APP_DB}_restore_{stamp}", f"{APP_DB}_replaced_{stamp}"
    r = run_module("backup_restore", dict(conn, action="restore", backup_dir=str(backup_dir), name=name, target=new,
                                          jobs=2))
    assert not r.get("failed"), r.get("msg")
    r = run_module("backup_restore", dict(conn, action="swap", database=APP_DB, target=new, replaced_name=old))
    assert not r.get("failed"), r.get("msg")
    drop_database(old)
