#!/usr/bin/python
# Pattern delete (SCAN + UNLINK), FLUSHDB ASYNC and FLUSHALL ASYNC for the Equipment Marketplace runbook.
from __future__ import annotations

DOCUMENTATION = r"""
---
module: redis_keys
short_description: Delete Redis keys by glob pattern without blocking the server, or flush a database
description:
  - O(state=absent) deletes the keys of database O(db) that match the glob O(pattern). It walks the keyspace with
    C(SCAN cursor MATCH pattern COUNT scan_count) and removes what it finds with C(UNLINK) in batches of
    O(batch_size) keys, sent through a non-transactional pipeline together with the next C(SCAN). Each command
    is short, so other clients are never stalled the way C(KEYS) + C(DEL) stalls them, and the memory of large
    values is freed in the background.
  - The number deleted is the sum of what C(UNLINK) answered, so a key that C(SCAN) returns twice (it may, while
    the keyspace is resized) is counted once, and keys that expired or were removed by someone else meanwhile
    are not counted.
  - A pattern without glob characters is a single key and is unlinked directly, without a scan.
  - A pattern that matches every key (empty, V(*), V(**), V(?*)...) is refused unless O(allow_all=true); a
    malformed pattern (unbalanced V([), empty class V([]), trailing backslash) is refused. Nothing is deleted
    then.
  - O(state=flushdb) empties database O(db) with C(FLUSHDB ASYNC); O(state=flushall) empties every database with
    C(FLUSHALL ASYNC). The number of keys that went is read atomically with the flush (C(MULTI)).
  - In check mode nothing is deleted. O(state=absent) scans and counts the matching keys (distinct) and returns
    a few samples; the flush states report the number of keys that would go.
version_added: "1.0.0"
author:
  - Equipment Marketplace operations team
extends_documentation_fragment:
  - marketplace_redis
options:
  state:
    description:
      - V(absent) deletes the keys matching O(pattern) in O(db).
      - V(flushdb) empties O(db) (C(FLUSHDB ASYNC)).
      - V(flushall) empties every database of the server (C(FLUSHALL ASYNC)); O(db) is ignored.
    type: str
    choices: [absent, flushdb, flushall]
    default: absent
  pattern:
    description:
      - Redis glob of the keys to delete with O(state=absent) (V(*), V(?), V([abc]), V([^a]), V([a-z]); V(\\)
        escapes). Required with O(state=absent).
      - C(DEL "cache:*") deletes nothing, because C(DEL) takes key names, not patterns; this module expands the
        pattern.
    type: str
  allow_all:
    description: Allow a O(pattern) that matches every key of the database (empty, V(*), V(**), V(?*)).
    type: bool
    default: false
  scan_count:
    description: C(COUNT) hint of each C(SCAN) call (buckets visited per call; larger is faster, each call longer).
    type: int
    default: 1000
  batch_size:
    description: Keys per C(UNLINK) command.
    type: int
    default: 500
  sample_size:
    description: Number of matching key names returned as samples (V(0) for none).
    type: int
    default: 5
notes:
  - Supports check mode.
  - Key names appear in RV(samples); set O(sample_size=0) when key names are sensitive (for example session ids).
  - Redis Cluster is not supported (C(SCAN) walks one node); run the module against each primary.
  - Keys written while the scan runs may or may not be deleted; keys present for the whole run that match are.
seealso:
  - module: redis_health
"""

EXAMPLES = r"""
- name: Count what cache-clear would delete (check mode)
  redis_keys:
    login_host: 127.0.0.1
    login_port: 56379
    login_password: "{{ marketplace_redis_password }}"
    db: 0
    pattern: "cache:*"
  check_mode: true
  register: would_delete

- name: Delete the cached product pages
  redis_keys:
    login_host: 127.0.0.1
    login_port: 56379
    pattern: "cache:product:*"
  environment:
    REDIS_PASSWORD: "{{ marketplace_redis_password }}"
  register: cleared

- name: Empty the cache database (FLUSHDB ASYNC)
  redis_keys:
    login_host: 127.0.0.1
    login_port: 56379
    login_password: "{{ marketplace_redis_password }}"
    db: 1
    state: flushdb

- name: Delete every key of db 3 through the pattern path (explicitly allowed)
  redis_keys:
    login_host: 127.0.0.1
    login_port: 56379
    login_password: "{{ marketplace_redis_password }}"
    db: 3
    pattern: "*"
    allow_all: true
"""

RETURN = r"""
state:
  description: The state requested.
  returned: always
  type: str
  sample: absent
db:
  description: The database worked on (V(null) for O(state=flushall)).
  returned: always
  type: int
  sample: 0
pattern:
  description: The pattern used.
  returned: when state is absent
  type: str
  sample: "cache:*"
deleted:
  description: Keys deleted, the sum of the C(UNLINK) replies (V(0) in check mode).
  returned: when state is absent
  type: int
  sample: 100000
matched:
  description:
    - Check mode, distinct keys matching the pattern (what would be deleted). Exact unless RV(matched_exact) is
      false (more than 1,000,000 matches are counted without deduplication).
    - Not in check mode, the number of key names C(SCAN) returned (a key can be returned twice while the keyspace
      is resized; RV(deleted) is the exact count).
  returned: when state is absent
  type: int
  sample: 100000
matched_exact:
  description: Whether RV(matched) counts distinct keys.
  returned: when state is absent
  type: bool
  sample: true
samples:
  description: Up to O(sample_size) matching key names (undecodable bytes escaped).
  returned: when state is absent
  type: list
  elements: str
  sample: ["cache:product:17", "cache:product:42"]
scan_calls:
  description: Number of C(SCAN) calls made (V(0) for a literal key).
  returned: when state is absent
  type: int
  sample: 121
batches:
  description: Number of C(UNLINK) commands sent (V(0) in check mode).
  returned: when state is absent
  type: int
  sample: 200
duration_seconds:
  description: Wall time of the scan/delete or of the flush, in seconds.
  returned: always
  type: float
  sample: 1.84
dbsize:
  description: Keys that went with the flush (in check mode, that would go) - in O(db) for V(flushdb), in all
    databases for V(flushall).
  returned: when state is flushdb or flushall
  type: int
  sample: 2722
keyspace:
  description: Keys per database before a V(flushall) (or that would go in check mode).
  returned: when state is flushall
  type: dict
  sample: {db0: 2722, db1: 10}
"""

import time

from ansible.module_utils.marketplace_common import validate_non_negative
from ansible.module_utils.marketplace_module import MarketplaceModule
from ansible.module_utils.marketplace_redis import (
    connect,
    decode_key,
    describe_error,
    redis_argument_spec,
    require_redis_lib,
    validate_connection_params,
)

DEDUPE_LIMIT = 1000000
GLOB_CHARS = "*?["


def build_argument_spec():
    spec = redis_argument_spec()
    spec.update(
        state=dict(type="str", choices=["absent", "flushdb", "flushall"], default="absent"),
        pattern=dict(type="str"),
        allow_all=dict(type="bool", default=False),
        scan_count=dict(type="int", default=1000),
        batch_size=dict(type="int", default=500),
        sample_size=dict(type="int", default=5),
    )
    return spec


def parse_glob(pattern):
    """Tokenise a Redis glob. Returns (tokens, error). Tokens: ('*',), ('?',), ('[', ...), ('lit', ch).

    Redis itself tolerates an unterminated '[' (it matches up to the end of the pattern) and treats '[]' as
    a class that matches nothing; both are almost always typos, so they are errors here.
    """
    tokens = []
    i, n = 0, len(pattern)
    while i < n:
        ch = pattern[i]
        if ch == "\\":
            if i + 1 >= n:
                return None, "trailing backslash (escape a literal backslash as \\\\)"
            tokens.append(("lit", pattern[i + 1]))
            i += 2
        elif ch == "*":
            tokens.append(("*",))
            i += 1
        elif ch == "?":
            tokens.append(("?",))
            i += 1
        elif ch == "[":
            j = i + 1
            if j < n and pattern[j] == "^":
                j += 1
            start = j
            while j < n and pattern[j] != "]":
                j += 2 if pattern[j] == "\\" and j + 1 < n else 1
            if j >= n:
                return None, "unbalanced '[' at position %d (escape a literal bracket as \\[)" % i
            if j == start:
                return None, "empty character class '%s' at position %d" % (pattern[i:j + 1], i)
            tokens.append(("[", pattern[i:j + 1]))
            i = j + 1
        else:
            tokens.append(("lit", ch))
            i += 1
    return tokens, None


def matches_everything(tokens):
    """True for patterns that match every key, or every non-empty key: only '*' and at most one '?'."""
    if not tokens:
        return True
    if any(t[0] not in ("*", "?") for t in tokens):
        return False
    questions = sum(1 for t in tokens if t[0] == "?")
    stars = sum(1 for t in tokens if t[0] == "*")
    return questions == 0 or (questions == 1 and stars > 0)


def literal_key(tokens):
    """The key name when the pattern has no glob token, else None."""
    if all(t[0] == "lit" for t in tokens):
        return "".join(t[1] for t in tokens)
    return None


def validate(module):
    p = module.params
    validate_connection_params(module)
    validate_non_negative(module, p, ["sample_size"])
    problems = []
    for name in ("scan_count", "batch_size"):
        if p[name] < 1:
            problems.append("%s must be at least 1" % name)
    if p["batch_size"] > 100000:
        problems.append("batch_size must not exceed 100000")
    if p["sample_size"] > 1000:
        problems.append("sample_size must not exceed 1000")
    if problems:
        module.fail_json(msg="; ".join(problems))
    if p["state"] != "absent":
        if p["pattern"] not in (None, ""):
            module.fail_json(msg="pattern is only used with state=absent; state=%s empties %s"
                             % (p["state"], "database %s" % p["db"] if p["state"] == "flushdb" else
                                "every database"))
        return None
    if p["pattern"] is None:
        module.fail_json(msg="state=absent needs a pattern (a Redis glob such as 'cache:*')")
    tokens, error = parse_glob(p["pattern"])
    if error:
        module.fail_json(msg="malformed pattern %r: %s; nothing was deleted" % (p["pattern"], error))
    if matches_everything(tokens) and not p["allow_all"]:
        module.fail_json(msg="pattern %r matches every key of database %s; nothing was deleted. Set "
                             "allow_all: true to delete them all (or use state=flushdb)" % (p["pattern"], p["db"]))
    return tokens


def delete_literal(module, client, key):
    p = module.params
    start = time.monotonic()
    if module.check_mode:
        matched = int(client.exists(key))
        deleted, batches = 0, 0
    else:
        deleted = int(client.unlink(key))
        matched, batches = deleted, 1
    return dict(changed=(matched if module.check_mode else deleted) > 0, deleted=deleted, matched=matched,
                matched_exact=True, samples=[decode_key(key)][:p["sample_size"]] if matched else [],
                scan_calls=0, batches=batches, duration_seconds=round(time.monotonic() - start, 3))


def delete_pattern(module, client, pattern):
    """SCAN + UNLINK. Each round trip carries the UNLINK of the pending batch and the next SCAN."""
    p = module.params
    count, batch_size, sample_size = p["scan_count"], p["batch_size"], p["sample_size"]
    check = module.check_mode
    stats = dict(deleted=0, matched=0, scan_calls=0, batches=0)
    samples, seen, exact = [], set(), True
    pending = []
    start = time.monotonic()
    cursor, first = 0, True
    try:
        while first or cursor != 0 or pending:
            pipe = client.pipeline(transaction=False)
            sent = 0
            # Send every full batch (and, once the scan is over, the remainder) with this round trip.
            while pending and (len(pending) >= batch_size or (cursor == 0 and not first)):
                pipe.unlink(*pending[:batch_size])
                del pending[:batch_size]
                sent += 1
            scanning = first or cursor != 0
            if scanning:
                pipe.scan(cursor, match=pattern, count=count)
            replies = pipe.execute(raise_on_error=False)
            # Count every UNLINK that succeeded before raising the first error, so a partial run is exact.
            errors = [r for r in replies if isinstance(r, Exception)]
            stats["batches"] += sum(1 for r in replies[:sent] if not isinstance(r, Exception))
            stats["deleted"] += sum(int(r) for r in replies[:sent] if not isinstance(r, Exception))
            if errors:
                raise errors[0]
            if not scanning:
                continue
            first = False
            stats["scan_calls"] += 1
            cursor, keys = replies[-1]
            cursor = int(cursor)
            if check:
                for key in keys:
                    if exact:
                        if key in seen:
                            continue
                        seen.add(key)
                        if len(seen) > DEDUPE_LIMIT:
                            exact, seen = False, set()
                    stats["matched"] += 1
                    if len(samples) < sample_size:
                        samples.append(key)
            else:
                stats["matched"] += len(keys)
                if len(samples) < sample_size:
                    samples.extend(keys[:sample_size - len(samples)])
                pending.extend(keys)
    except Exception as exc:  # report what was already done; fail_json, never a traceback
        module.fail_json(msg="%s after %d keys deleted in %d batches (%d SCAN calls)"
                         % (describe_error(exc, p, action="scan/unlink keys on"), stats["deleted"],
                            stats["batches"], stats["scan_calls"]),
                         changed=stats["deleted"] > 0, **stats)
    result = dict(stats, matched_exact=exact if check else False,
                  samples=[decode_key(k) for k in samples],
                  duration_seconds=round(time.monotonic() - start, 3))
    result["changed"] = (stats["matched"] if check else stats["deleted"]) > 0
    return result


def flush(module, client):
    p = module.params
    start = time.monotonic()
    if p["state"] == "flushdb":
        if module.check_mode:
            size = int(client.dbsize())
        else:
            pipe = client.pipeline(transaction=True)
            pipe.dbsize()
            pipe.flushdb(asynchronous=True)
            size = int(pipe.execute()[0])
        return dict(changed=size > 0, dbsize=size, duration_seconds=round(time.monotonic() - start, 3))
    if module.check_mode:
        info = client.info("keyspace")
    else:
        pipe = client.pipeline(transaction=True)
        pipe.info("keyspace")
        pipe.flushall(asynchronous=True)
        info = pipe.execute()[0]
    keyspace = {name: int(v.get("keys", 0)) for name, v in sorted(info.items(), key=lambda kv: int(kv[0][2:]))
                if name.startswith("db") and isinstance(v, dict)}
    total = sum(keyspace.values())
    return dict(changed=total > 0, dbsize=total, keyspace=keyspace,
                duration_seconds=round(time.monotonic() - start, 3))


def main():
    module = MarketplaceModule(argument_spec=build_argument_spec(), supports_check_mode=True)
    tokens = validate(module)
    require_redis_lib(module)
    p = module.params

    client, error = connect(p, client_name="ansible-redis_keys")
    if error is not None:
        module.fail_json(msg="%s; nothing was changed" % error[1], state=p["state"])
    try:
        base = dict(state=p["state"], db=None if p["state"] == "flushall" else p["db"])
        if p["state"] == "absent":
            key = literal_key(tokens)
            base["pattern"] = p["pattern"]
            try:
                if key is not None and key != "":
                    result = delete_literal(module, client, key)
                else:
                    result = delete_pattern(module, client, p["pattern"] or "*")
            except Exception as exc:
                module.fail_json(msg=describe_error(exc, p, action="delete keys on"), **base)
            verb = "would delete" if module.check_mode else "deleted"
            n = result["matched"] if module.check_mode else result["deleted"]
            msg = "%s %d key(s) matching %r in db %s" % (verb, n, p["pattern"], p["db"])
        else:
            try:
                result = flush(module, client)
            except Exception as exc:
                module.fail_json(msg="%s; nothing was flushed" % describe_error(exc, p, action="flush"), **base)
            where = "db %s" % p["db"] if p["state"] == "flushdb" else "all databases"
            msg = "%s %d key(s) in %s (%s ASYNC)" % ("would flush" if module.check_mode else "flushed",
                                                    result["dbsize"], where, p["state"].upper())
        base.update(result)
        module.exit_json(msg=msg, **base)
    finally:
        client.close()


if __name__ == "__main__":
    main()
