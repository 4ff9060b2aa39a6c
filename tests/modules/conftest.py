"""Fixtures for the PostgreSQL module tests: an admin connection, a scratch database and tagged sessions.

A test module sets its own tag with a module-scoped ``pg_tag`` fixture; its sessions carry that tag in their
application_name (see tests/helpers/pg_sessions.py), so its filters and finalisers touch nothing else.
"""
from __future__ import annotations

import uuid

import pytest

from tests.helpers.pg_sessions import admin_connection, open_sessions, scratch_database


@pytest.fixture(scope="module")
def pg_tag() -> str:
    return "em-test-" + uuid.uuid4().hex[:8]


@pytest.fixture(scope="module")
def admin_conn(pg_dsn, pg_tag):
    with admin_connection(pg_dsn, pg_tag) as conn:
        yield conn


@pytest.fixture(scope="module")
def scratch_db(admin_conn):
    with scratch_database(admin_conn) as name:
        yield name


@pytest.fixture()
def sessions(admin_conn, pg_tag):
    with open_sessions(admin_conn, pg_tag) as s:
        yield s
