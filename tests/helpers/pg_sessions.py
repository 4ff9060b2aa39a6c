"""PostgreSQL sessions that tests open on purpose (lock holders, long queries, idle transactions).

Each test module has its own tag; every session it opens carries ``application_name = <tag>-<suffix>`` so that
module filters and the finaliser only ever touch the test's own backends. Lock scenarios run in a scratch
database made for the module and dropped after, so nothing in the application database is locked or changed.
"""
from __future__ import annotations

import contextlib
import threading
import time
import uuid

import psycopg
from psycopg import sql
from psycopg.conninfo import make_conninfo


def poll(fn, timeout: float = 10.0, interval: float = 0.05, what: str = "condition"):
    """Call fn until it returns something truthy; fail after timeout seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = fn()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


@contextlib.contextmanager
def admin_connection(dsn: str, tag: str):
    """An autocommit superuser connection for setting up and inspecting (application_name <tag>-admin)."""
    conn = psycopg.connect(dsn, autocommit=True, application_name=tag + "-admin")
    try:
        yield conn
    finally:
        conn.close()


@contextlib.contextmanager
def scratch_database(admin_conn):
    """A database made from template1 (so without the pg_stat_statements extension), dropped WITH (FORCE) after."""
    name = "em_pgtest_" + uuid.uuid4().hex[:10]
    admin_conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield name
    finally:
        admin_conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def scratch_dsn_with_lock_table(dsn: str, database: str, *statements: str) -> str:
    """The scratch database's DSN, with a ``locks`` table of ten rows (and any further setup statements)."""
    scratch = make_conninfo(dsn, dbname=database)
    with psycopg.connect(scratch, autocommit=True) as conn:
        conn.execute("CREATE TABLE locks (id int PRIMARY KEY, v int NOT NULL)")
        conn.execute("INSERT INTO locks SELECT g, 0 FROM generate_series(1, 10) g")
        for statement in statements:
            conn.execute(statement)
    return scratch


class Sessions:
    """Sessions opened by a test; each is closed and, if still there, terminated at the end."""

    def __init__(self, admin, tag: str):
        self.admin = admin
        self.tag = tag
        self.conns = []
        self.threads = []

    def open(self, dsn: str, suffix: str, autocommit: bool = True):
        conn = psycopg.connect(dsn, autocommit=autocommit, application_name=f"{self.tag}-{suffix}")
        self.conns.append(conn)
        return conn

    def background(self, conn, query, params=None) -> dict:
        """Run a statement in a thread; the returned dict gets 'done' and 'error' when it ends."""
        state = {"done": False, "error": None}

        def target():
            try:
                conn.execute(query, params)
            except Exception as exc:  # cancelled / terminated on purpose
                state["error"] = exc
            finally:
                state["done"] = True

        thread = threading.Thread(target=target, daemon=True)
        thread.start()
        self.threads.append(thread)
        state["thread"] = thread
        return state

    def close(self) -> None:
        self.admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                           "WHERE application_name LIKE %s AND pid <> pg_backend_pid()", (self.tag + "-s-%",))
        for thread in self.threads:
            thread.join(timeout=10)
        for conn in self.conns:
            with contextlib.suppress(Exception):
                conn.close()


@contextlib.contextmanager
def open_sessions(admin_conn, tag: str):
    s = Sessions(admin_conn, tag)
    try:
        yield s
    finally:
        s.close()
