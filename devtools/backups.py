"""Backups and the reference stack's PostgreSQL as the backup tests and bench/bench_backup.py see them: private
backup directories (under the directory the postgres container mounts), committed backups, the superuser
connection, scratch databases."""
from __future__ import annotations

import os
import uuid
from pathlib import Path

import psycopg

from devtools import stackenv

BACKUP_ROOT = Path(os.environ.get("MARKETPLACE_BACKUP_DIR", "/var/backups/equipment-marketplace"))
APP_DB = "equipment_marketplace"


def new_backup_dir(tag: str) -> Path:
    """A private sub-directory of the stack's backup directory (mounted in the postgres container)."""
    path = BACKUP_ROOT / f"test-{tag}-{uuid.uuid4().hex[:8]}"
    path.mkdir(parents=True, mode=0o700)
    return path


def backups_in(path: Path) -> list[str]:
    """Committed backups (names with a manifest), newest first."""
    return sorted((p.name[: -len(".manifest.json")] for p in path.glob("*.manifest.json")), reverse=True)


def admin_conn(dbname: str = "postgres", env: dict | None = None):
    e = env or stackenv.read_env()
    return psycopg.connect(host=e["BIND_ADDRESS"], port=int(e["POSTGRES_PORT"]), dbname=dbname,
                           user=e["POSTGRES_SUPERUSER"], password=e["POSTGRES_PASSWORD"], connect_timeout=5,
                           autocommit=True)


def databases(pattern: str = "") -> list[str]:
    with admin_conn() as conn:
        return [r[0] for r in conn.execute("SELECT datname FROM pg_database WHERE datname ~ %s ORDER BY 1",
                                           (pattern,)).fetchall()]


def drop_database(name: str) -> None:
    if name == APP_DB:
        raise ValueError("refusing to drop the application database")
    with admin_conn() as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def postgres_container():
    return stackenv.containers("postgres", all_states=False)[0]
