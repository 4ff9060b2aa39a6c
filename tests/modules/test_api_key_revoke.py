"""api_key_revoke against the real reference database: by prefix, by id, by glob; check mode; bad input.

Only the seeded keys emk_demo_191..emk_demo_199 are touched, and every test puts them back (revoked_at NULL),
so other tests that use API keys keep working.
"""
from __future__ import annotations

import psycopg
import pytest

from tests.helpers.modules import assert_return_documented, run_module

OURS = [f"emk_demo_{n}" for n in range(191, 200)]


@pytest.fixture()
def db(pg_dsn):
    conn = psycopg.connect(pg_dsn, autocommit=True)
    conn.execute("UPDATE api_keys SET revoked_at = NULL WHERE key_prefix = ANY(%s)", (OURS,))
    yield conn
    conn.execute("UPDATE api_keys SET revoked_at = NULL WHERE key_prefix = ANY(%s)", (OURS,))
    conn.close()


def revoked(conn, prefixes):
    rows = conn.execute("SELECT key_prefix FROM api_keys WHERE key_prefix = ANY(%s) AND revoked_at IS NOT NULL",
                        (list(prefixes),)).fetchall()
    return sorted(r[0] for r in rows)


def key_id(conn, prefix):
    return conn.execute("SELECT id FROM api_keys WHERE key_prefix = %s", (prefix,)).fetchone()[0]


def test_revoke_by_prefix_and_id_then_idempotent(db, pg_params):
    id_193 = key_id(db, "emk_demo_193")
    args = dict(pg_params, keys=["emk_demo_191", "emk_demo_192", str(id_193), "emk_nope_0"])
    res = run_module("api_key_revoke", args)
    assert not res.get("failed"), res
    assert res["changed"] is True and res["selected"] == 3 and res["revoked"] == 3 and res["already_revoked"] == 0
    assert res["unmatched"] == ["emk_nope_0"]
    assert {k["key_prefix"] for k in res["keys"]} == {"emk_demo_191", "emk_demo_192", "emk_demo_193"}
    assert all(k["newly_revoked"] and k["revoked_at"] for k in res["keys"])
    assert revoked(db, OURS) == ["emk_demo_191", "emk_demo_192", "emk_demo_193"]
    assert_return_documented("api_key_revoke", res)
    assert pg_params["login_password"] not in res["_raw"]

    again = run_module("api_key_revoke", args)
    assert again["changed"] is False and again["revoked"] == 0 and again["already_revoked"] == 3


def test_check_mode_counts_and_changes_nothing(db, pg_params):
    res = run_module("api_key_revoke", dict(pg_params, keys=["emk_demo_19*"]), check_mode=True)
    assert not res.get("failed"), res
    # emk_demo_19 and emk_demo_190..199 match the glob
    assert res["changed"] is True and res["selected"] == 11 and res["revoked"] == 11
    assert res["revoked_at"] is None
    assert revoked(db, OURS) == []

    everything = run_module("api_key_revoke", dict(pg_params, all=True), check_mode=True)
    assert everything["selected"] == 200 and everything["revoked"] == everything["active_before"]
    assert everything["keys_truncated"] is True and len(everything["keys"]) == 100


def test_glob_with_max_keys_refuses(db, pg_params):
    res = run_module("api_key_revoke", dict(pg_params, keys=["emk_demo_19*"], max_keys=5))
    assert res["failed"] and "more than max_keys=5" in res["msg"]
    assert revoked(db, OURS) == []


def test_like_wildcards_in_a_prefix_are_literal(db, pg_params):
    # '_' and '%' are LIKE wildcards; a glob must match them literally
    res = run_module("api_key_revoke", dict(pg_params, keys=["emk%demo_191*"]), check_mode=True)
    assert res["selected"] == 0 and res["unmatched"] == ["emk%demo_191*"]


@pytest.mark.parametrize("keys, message", [
    (["*"], "would select every key"),
    (["**"], "would select every key"),
    (["a*"], "'a*' is too broad: a prefix glob needs at least 4 characters before the *"),
    (["emk*"], "'emk*' is too broad"),
    (["emk_*_1"], "only a trailing * is supported"),
    ([""], "is empty"),
    ([], "nothing chosen"),
])
def test_bad_selections_fail_before_connecting(keys, message):
    res = run_module("api_key_revoke", {"login_host": "127.0.0.1", "login_port": 1, "keys": keys})
    assert res["failed"] and message in res["msg"], res


def test_wrong_password_fails_without_leaking(pg_params):
    res = run_module("api_key_revoke", dict(pg_params, login_password="not-the-password-xyz", keys=["1"]))
    assert res["failed"] and "authentication_failed" in res["msg"]
    assert "not-the-password-xyz" not in res["_raw"]


def test_all_with_keys_is_refused():
    res = run_module("api_key_revoke", {"login_host": "127.0.0.1", "login_port": 1, "all": True, "keys": ["1"]})
    assert res["failed"] and "cannot be combined" in res["msg"]


def test_a_glob_that_matches_every_key_is_refused(db, pg_params):
    # issue 10: 'emk_*' is long enough but selects the whole table: say all=true instead; nothing is revoked
    active = db.execute("SELECT count(*) FROM api_keys WHERE revoked_at IS NULL").fetchone()[0]
    res = run_module("api_key_revoke", dict(pg_params, keys=["emk_*"]))
    assert res["failed"] and "matches every one of the" in res["msg"] and "all=true" in res["msg"], res
    assert db.execute("SELECT count(*) FROM api_keys WHERE revoked_at IS NULL").fetchone()[0] == active
