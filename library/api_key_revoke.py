#!/usr/bin/python
# Equipment Marketplace runbook (security breach): revoke API keys in the application database.
from __future__ import annotations

DOCUMENTATION = r"""
---
module: api_key_revoke
short_description: Revoke Equipment Marketplace API keys (all, or by id / key prefix) by setting revoked_at
description:
  - Sets C(revoked_at = now()) on the chosen rows of the application's API key table (O(table), with the columns
    C(id), C(user_id), C(key_prefix) and C(revoked_at)). The backend refuses a key whose C(revoked_at) is set.
  - O(all=true) chooses every key; otherwise each entry of O(keys) is a key id (digits), a key prefix matched
    exactly against C(key_prefix), or a prefix glob ending in C(*) (C(emk_live_*)).
  - Keys already revoked keep their original C(revoked_at); they are counted under RV(already_revoked).
  - Selection and update run in one transaction with C(SET LOCAL statement_timeout); the chosen rows are
    locked (C(FOR UPDATE)) so a concurrent change cannot slip between counting and revoking.
  - Entries that match no key are listed in RV(unmatched); they do not fail the module.
  - In check mode the selection runs in a READ ONLY transaction and nothing is revoked; RV(revoked) is what
    would be revoked and RV(changed) says whether anything would change.
  - Full keys are never taken or returned (the table stores only their hash); results carry ids and prefixes.
  - A connection failure fails with a clear message that carries no password.
version_added: "1.0.0"
author:
  - Equipment Marketplace operations team
extends_documentation_fragment:
  - marketplace_postgres
options:
  all:
    description:
      - Revoke every key that is not revoked yet. Cannot be combined with O(keys).
    type: bool
    default: false
  keys:
    description:
      - Keys to revoke, each a key id (digits only), a key prefix (exact match on C(key_prefix)) or a prefix
        glob ending in C(*). C(*) anywhere else, an entry that is only C(*), and a glob with fewer than
        O(min_glob_prefix) characters before its C(*) are refused.
      - A glob selection that matches every key of the table (more than one) is refused too, revoking nothing;
        say O(all=true) for that.
    type: list
    elements: str
    default: []
  min_glob_prefix:
    description:
      - Fewest characters a prefix glob must have before its C(*) (C(a*) would revoke nearly every key).
    type: int
    default: 4
  table:
    description:
      - The API key table in O(login_db), as C(table) or C(schema.table) (quoted with C(psycopg.sql)).
      - O(login_user) needs C(UPDATE) on it.
    type: str
    default: api_keys
  max_keys:
    description:
      - Refuse (revoking nothing) when the selection matches more keys than this. 0 means no limit.
      - Guards against a glob that matches far more than intended; O(all=true) ignores it.
    type: int
    default: 0
  list_limit:
    description:
      - How many of the chosen keys RV(keys) lists (the counts are always complete).
    type: int
    default: 100
"""

EXAMPLES = r"""
- name: Revoke two leaked keys by prefix and one by id
  api_key_revoke:
    login_host: "{{ marketplace_db_host }}"
    login_port: "{{ marketplace_db_port }}"
    login_user: "{{ marketplace_db_user }}"
    login_password: "{{ marketplace_db_password }}"
    login_db: "{{ marketplace_db_name }}"
    keys: [emk_live_3f9a, emk_live_77c0, "42"]
  register: revoked

- name: Revoke every API key (a breach of unknown extent)
  api_key_revoke:
    login_host: "{{ marketplace_db_host }}"
    login_port: "{{ marketplace_db_port }}"
    login_user: "{{ marketplace_db_user }}"
    login_password: "{{ marketplace_db_password }}"
    login_db: "{{ marketplace_db_name }}"
    all: true
"""

RETURN = r"""
selected:
  description: Keys the selection matched (revoked before or now).
  returned: success
  type: int
  sample: 3
revoked:
  description: Keys revoked by this run (in check mode, that would be revoked).
  returned: success
  type: int
  sample: 2
already_revoked:
  description: Matched keys that were revoked before this run (left as they were).
  returned: success
  type: int
  sample: 1
active_before:
  description: Keys of the whole table that were not revoked before this run.
  returned: success
  type: int
  sample: 200
unmatched:
  description: Entries of O(keys) that matched no key.
  returned: success
  type: list
  elements: str
  sample: [emk_live_0000]
keys:
  description:
    - Up to O(list_limit) chosen keys, each C(id), C(user_id), C(key_prefix), C(revoked_at) (after the run;
      ISO 8601 or null in check mode) and C(newly_revoked).
  returned: success
  type: list
  elements: dict
  sample: [{id: 5, user_id: 156, key_prefix: emk_demo_5, revoked_at: "2026-01-31T02:00:00+00:00", newly_revoked: true}]
keys_truncated:
  description: Whether RV(keys) was cut to O(list_limit).
  returned: success
  type: bool
  sample: false
revoked_at:
  description: The C(now()) of the revoking transaction (null in check mode or when nothing was revoked).
  returned: success
  type: str
  sample: "2026-01-31T02:00:00.123456+00:00"
duration_ms:
  description: Wall time of the module's database work.
  returned: always
  type: float
  sample: 12.5
"""

import re
import time

from ansible.module_utils.marketplace_common import json_safe, validate_non_negative
from ansible.module_utils.marketplace_module import MarketplaceModule
from ansible.module_utils.marketplace_postgres import (
    ConnectError,
    connect,
    elapsed_ms,
    error_message,
    fetch_dicts,
    postgres_common_argument_spec,
    quote_qualified,
    require_psycopg,
    secrets_of,
    set_local_timeouts,
    sql,
)

APPLICATION_NAME = "ansible-marketplace-api-key-revoke"
PRINTABLE = re.compile(r"^[\x21-\x7e]+$")


def build_argument_spec():
    spec = postgres_common_argument_spec()
    spec.update(
        all=dict(type="bool", default=False),
        keys=dict(type="list", elements="str", default=[], no_log=False),
        table=dict(type="str", default="api_keys"),
        max_keys=dict(type="int", default=0),
        min_glob_prefix=dict(type="int", default=4),
        list_limit=dict(type="int", default=100),
    )
    return spec


def parse_entries(entries, min_glob_prefix=4):
    """(ids, exact prefixes, glob prefixes, errors) from the keys option."""
    ids, exact, globs, errors = [], [], [], []
    for raw in entries:
        entry = (raw or "").strip()
        if not entry:
            errors.append("an entry of keys is empty")
        elif entry.strip("*") == "":
            errors.append("'%s' would select every key: use all=true" % entry)
        elif "*" in entry[:-1]:
            errors.append("'%s': only a trailing * is supported" % entry)
        elif not PRINTABLE.match(entry):
            errors.append("'%s' is not a key id or key prefix" % entry)
        elif entry.isdigit():
            ids.append(int(entry))
        elif entry.endswith("*") and len(entry) - 1 < min_glob_prefix:
            errors.append("'%s' is too broad: a prefix glob needs at least %d characters before the * (min_glob_prefix)"
                          % (entry, min_glob_prefix))
        elif entry.endswith("*"):
            globs.append(entry[:-1])
        else:
            exact.append(entry)
    return ids, exact, globs, errors


def like_escape(text):
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def entry_matches(entry, row):
    entry = entry.strip()
    if entry.isdigit():
        return int(row["id"]) == int(entry)
    if entry.endswith("*"):
        return (row["key_prefix"] or "").startswith(entry[:-1])
    return row["key_prefix"] == entry


def main():
    module = MarketplaceModule(argument_spec=build_argument_spec(), supports_check_mode=True)
    require_psycopg(module)
    p = module.params
    validate_non_negative(module, p, ["connect_timeout", "statement_timeout", "max_keys", "list_limit",
                                      "min_glob_prefix"])
    ids, exact, globs, errors = parse_entries(p["keys"], p["min_glob_prefix"])
    if p["all"] and p["keys"]:
        errors.insert(0, "all=true cannot be combined with keys")
    if errors:
        module.fail_json(msg="invalid keys: " + "; ".join(errors))
    if not p["all"] and not (ids or exact or globs):
        module.fail_json(msg="nothing chosen: give keys (ids or key prefixes) or all=true")
    try:
        table = quote_qualified(p["table"])
    except ValueError:
        module.fail_json(msg="table %r is not a valid table name" % p["table"])

    started = time.monotonic()
    try:
        conn = connect(p, APPLICATION_NAME)
    except ConnectError as exc:
        module.fail_json(msg="could not connect to PostgreSQL (%s): %s" % (exc.category, exc.reason),
                         duration_ms=elapsed_ms(started))

    if p["all"]:
        where = sql.SQL("TRUE")
        args = {}
    else:
        where = sql.SQL("(id = ANY(%(ids)s::bigint[]) OR key_prefix = ANY(%(exact)s::text[])"
                        " OR key_prefix LIKE ANY(%(globs)s::text[]))")
        args = {"ids": ids, "exact": exact, "globs": [like_escape(g) + "%" for g in globs]}
    select = sql.SQL("SELECT id, user_id, key_prefix, revoked_at FROM {} WHERE {} ORDER BY id{}").format(
        table, where, sql.SQL("" if module.check_mode else " FOR UPDATE"))
    result = dict(changed=False)
    try:
        with conn.transaction():
            if module.check_mode:
                conn.execute("SET TRANSACTION READ ONLY")
            set_local_timeouts(conn, p["statement_timeout"])
            active_before = fetch_dicts(conn, sql.SQL("SELECT count(*) AS n FROM {} WHERE revoked_at IS NULL")
                                        .format(table))[0]["n"]
            rows = fetch_dicts(conn, select, args)
            to_revoke = [r["id"] for r in rows if r["revoked_at"] is None]
            if not p["all"] and globs:
                total = fetch_dicts(conn, sql.SQL("SELECT count(*) AS n FROM {}").format(table))[0]["n"]
                if total > 1 and len(rows) >= total:
                    module.fail_json(msg="the selection matches every one of the %d keys: nothing was revoked; "
                                     "say all=true to revoke every key" % total,
                                     selected=len(rows), duration_ms=elapsed_ms(started))
            if not p["all"] and p["max_keys"] and len(rows) > p["max_keys"]:
                module.fail_json(msg="the selection matches %d keys, more than max_keys=%d: nothing was revoked"
                                 % (len(rows), p["max_keys"]), selected=len(rows), duration_ms=elapsed_ms(started))
            revoked_at = None
            if to_revoke and not module.check_mode:
                updated = fetch_dicts(conn, sql.SQL(
                    "UPDATE {} SET revoked_at = now() WHERE id = ANY(%(ids)s::bigint[]) AND revoked_at IS NULL"
                    " RETURNING id, revoked_at").format(table), {"ids": to_revoke})
                stamps = {u["id"]: u["revoked_at"] for u in updated}
                for r in rows:
                    if r["id"] in stamps:
                        r["revoked_at"] = stamps[r["id"]]
                revoked_at = next(iter(stamps.values()), None)
                to_revoke = [u["id"] for u in updated]
    except Exception as exc:  # psycopg errors: one line, no statement, no bound values, no password
        module.fail_json(msg="revoking API keys failed: %s" % error_message(exc, secrets_of(p)),
                         duration_ms=elapsed_ms(started))
    finally:
        conn.close()

    newly = set(to_revoke)
    unmatched = [] if p["all"] else [e for e in p["keys"] if not any(entry_matches(e, r) for r in rows)]
    keys = [{"id": r["id"], "user_id": r["user_id"], "key_prefix": r["key_prefix"],
             "revoked_at": r["revoked_at"], "newly_revoked": r["id"] in newly} for r in rows]
    result.update(
        changed=bool(newly),
        selected=len(rows),
        revoked=len(newly),
        already_revoked=len(rows) - len(newly),
        active_before=active_before,
        unmatched=unmatched,
        keys=json_safe(keys[: p["list_limit"]]),
        keys_truncated=len(keys) > p["list_limit"],
        revoked_at=json_safe(revoked_at),
        duration_ms=elapsed_ms(started),
    )
    module.exit_json(**result)


if __name__ == "__main__":
    main()
