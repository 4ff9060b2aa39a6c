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
  - A pattern needs a literal key prefix with at least one letter or digit before its first wildcard
    (V(cache:*), V(c*), V(session:abc)). Without one (empty, V(*), V(**), V(?*), V(*:*), V([a-z]*), V(:*)...)
    it can match the keys of every prefix (sessions, rate limits, config) and is refused unless
    O(allow_all=true); so is a literal key name without a letter or digit (V(\\*) is the key named V(*), an
    escaped wildcard). A malformed pattern (unbalanced V([), empty class V([]), trailing backslash) is always
    refused. Nothing is deleted then.
  - The keys matched are counted per key prefix (the text before the first V(:), or the whole name when it has
    none) in RV(prefixes).
  - O(state=flushdb) empties database O(db) with C(FLUSHDB ASYNC); O(state=flushall) empties every database with
    C(FLUSHALL ASYNC). The number of keys that went is read atomically with the flush (C(MULTI)).
  - O(allowed_prefixes) guards O(state=flushdb) of a database that should hold only some prefixes (the cache);
    the database is scanned first and, when it holds a key of any other prefix, the flush is refused, nothing is
    flushed, and RV(foreign_prefixes) says what else is there. O(count_prefixes) counts the keys per prefix of
    the database (O(state=flushdb)) or, in check mode, of every database (O(state=flushall), RV(db_prefixes)).
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
    description:
      - Allow a O(pattern) without a literal key prefix containing a letter or digit before its first wildcard
        (empty, V(*), V(**), V(?*), V(*:*), V([a-z]*)), and a literal key name without a letter or digit.
    type: bool
    default: false
  count_prefixes:
    description:
      - With O(state=flushdb), count the keys of O(db) per prefix (one C(SCAN) pass) and return RV(prefixes).
      - With O(state=flushall) in check mode, count them for every database (RV(db_prefixes)).
      - O(state=absent) always counts the matched keys per prefix.
    type: bool
    default: false
  allowed_prefixes:
    description:
      - O(state=flushdb) only. The key prefixes (text before the first V(:), for example V(cache)) that O(db) may
        hold. The database is scanned first; a key of any other prefix makes the module refuse (fail, nothing
        flushed; in check mode RV(refused) is true and nothing fails). Keys written by others between the scan
        and the flush are not guarded.
      - Unset (default), the database is flushed whatever it holds.
    type: list
    elements: str
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

- name: Empty the cache database (FLUSHDB ASYNC), refused if it holds anything but cache:* keys
  redis_keys:
    login_host: 127.0.0.1
    login_port: 56379
    login_password: "{{ marketplace_redis_password }}"
    db: 1
    state: flushdb
    allowed_prefixes: [cache]

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
prefixes:
  description:
    - Keys per prefix (text before the first V(:), or the whole name), largest first, at most 50 prefixes (see
      RV(prefixes_more)).
    - O(state=absent), the keys matched (in check mode, that would go); O(state=flushdb) with O(count_prefixes) or
      O(allowed_prefixes), every key of O(db) before the flush; O(state=flushall) with O(count_prefixes) in check
      mode, every key of every database.
  returned: when state is absent, flushdb with count_prefixes or allowed_prefixes, or flushall with count_prefixes
    in check mode
  type: dict
  sample: {cache: 2120, session: 500}
prefixes_more:
  description: Number of further prefixes not shown in RV(prefixes).
  returned: when prefixes is returned
  type: int
  sample: 0
foreign_prefixes:
  description: Keys per prefix of O(db) that O(allowed_prefixes) does not name (empty when the flush may run).
  returned: when state is flushdb and allowed_prefixes is set
  type: dict
  sample: {session: 500, ratelimit: 100}
refused:
  description: Whether the flush was refused (check mode, would be refused) because of RV(foreign_prefixes).
  returned: when state is flushdb and allowed_prefixes is set
  type: bool
  sample: false
db_prefixes:
  description: Keys per prefix of each database (check mode with O(state=flushall) and O(count_prefixes)).
  returned: when state is flushall, count_prefixes is set, in check mode
  type: dict
  sample: {db0: {session: 500, ratelimit: 100}, db1: {cache: 2120}}
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
    DistinctKeys,
    PrefixCounter,
    connect,
    decode_key,
    describe_error,
    format_prefixes,
    key_prefix,
    literal_key,
    parse_glob,
    pattern_refusal,
    redis_argument_spec,
    redis_client,
    require_redis_lib,
    validate_connection_params,
)

DEDUPE_LIMIT = 1000000
PREFIXES_SHOWN = 50


def build_argument_spec():
    spec = redis_argument_spec()
    spec.update(
        state=dict(type="str", choices=["absent", "flushdb", "flushall"], default="absent"),
        pattern=dict(type="str"),
        allow_all=dict(type="bool", default=False),
        scan_count=dict(type="int", default=1000),
        batch_size=dict(type="int", default=500),
        sample_size=dict(type="int", default=5),
        count_prefixes=dict(type="bool", default=False),
        allowed_prefixes=dict(type="list", elements="str"),
    )
    return spec


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
    if p["allowed_prefixes"] is not None:
        if p["state"] != "flushdb":
            module.fail_json(msg="allowed_prefixes guards state=flushdb only, not state=%s" % p["state"])
        cleaned = []
        for raw in p["allowed_prefixes"]:
            name = str(raw).strip()
            name = name[:-1] if name.endswith(":") else name
            if not name or any(ch in name for ch in "*?[]\\: \t"):
                module.fail_json(msg="allowed_prefixes: %r is not a key prefix (the text before the first ':' of "
                                     "a key, such as 'cache' or 'session'; no wildcards, spaces or ':'); nothing "
                                     "was flushed" % raw)
            cleaned.append(name)
        if not cleaned:
            module.fail_json(msg="allowed_prefixes is empty: name at least one key prefix (such as 'cache'); "
                                 "nothing was flushed")
        p["allowed_prefixes"] = sorted(set(cleaned))
    if p["state"] != "absent":
        if p["pattern"] not in (None, ""):
            module.fail_json(msg="pattern is only used with state=absent; state=%s empties %s"
                             % (p["state"], "database %s" % p["db"] if p["state"] == "flushdb" else
                                "every database"))
        return None
    if p["pattern"] is None:
        module.fail_json(msg="state=absent needs a pattern (a Redis glob such as 'cache:*')")
    refusal = pattern_refusal(p["pattern"], db=p["db"], allow_all=p["allow_all"])
    if refusal:
        module.fail_json(msg=refusal, pattern=p["pattern"], deleted=0)
    return parse_glob(p["pattern"])[0]


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
                prefixes={key_prefix(key): matched} if matched else {}, prefixes_more=0,
                scan_calls=0, batches=batches, duration_seconds=round(time.monotonic() - start, 3))


def delete_pattern(module, client, pattern):
    """SCAN + UNLINK. Each round trip carries the UNLINK of the pending batch and the next SCAN."""
    p = module.params
    count, batch_size, sample_size = p["scan_count"], p["batch_size"], p["sample_size"]
    check = module.check_mode
    stats = dict(deleted=0, matched=0, scan_calls=0, batches=0)
    samples, distinct = [], DistinctKeys(DEDUPE_LIMIT)
    prefixes = PrefixCounter()
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
                for key in filter(distinct.first, keys):
                    stats["matched"] += 1
                    prefixes.add(key)
                    if len(samples) < sample_size:
                        samples.append(key)
            else:
                stats["matched"] += len(keys)
                for key in keys:
                    prefixes.add(key)
                if len(samples) < sample_size:
                    samples.extend(keys[:sample_size - len(samples)])
                pending.extend(keys)
    except Exception as exc:  # report what was already done; fail_json, never a traceback
        module.fail_json(msg="%s after %d keys deleted in %d batches (%d SCAN calls)"
                         % (describe_error(exc, p, action="scan/unlink keys on"), stats["deleted"],
                            stats["batches"], stats["scan_calls"]),
                         changed=stats["deleted"] > 0, **stats)
    top, more = prefixes.top(PREFIXES_SHOWN)
    result = dict(stats, matched_exact=distinct.exact if check else False,
                  samples=[decode_key(k) for k in samples], prefixes=top, prefixes_more=more,
                  duration_seconds=round(time.monotonic() - start, 3))
    result["changed"] = (stats["matched"] if check else stats["deleted"]) > 0
    return result


def count_prefixes(client, count):
    """Keys per prefix of the client's database (one SCAN pass; distinct keys up to DEDUPE_LIMIT)."""
    prefixes = PrefixCounter()
    for key in filter(DistinctKeys(DEDUPE_LIMIT).first, client.scan_iter(count=count)):
        prefixes.add(key)
    return prefixes


def flush(module, client):
    p = module.params
    start = time.monotonic()
    if p["state"] == "flushdb":
        result = {}
        if p["count_prefixes"] or p["allowed_prefixes"]:
            counter = count_prefixes(client, p["scan_count"])
            result["prefixes"], result["prefixes_more"] = counter.top(PREFIXES_SHOWN)
            if p["allowed_prefixes"]:
                allowed = set(p["allowed_prefixes"])
                foreign = dict(sorted(((k, v) for k, v in counter.counts.items() if k not in allowed),
                                      key=lambda kv: (-kv[1], kv[0])))  # largest first, as prefixes
                if counter.overflow:
                    foreign["(further prefixes)"] = counter.overflow
                result["foreign_prefixes"] = foreign
                if foreign:
                    what = ("db %s holds keys outside the allowed prefixes (%s): %s"
                            % (p["db"], ", ".join(p["allowed_prefixes"]), format_prefixes(foreign)))
                    if module.check_mode:
                        # Check mode predicts: the real run refuses and flushes nothing.
                        return dict(result, changed=False, refused=True, dbsize=int(client.dbsize()),
                                    msg="would refuse to flush: %s" % what,
                                    duration_seconds=round(time.monotonic() - start, 3))
                    module.fail_json(msg="refused to flush: %s; nothing was flushed. Add them to "
                                         "allowed_prefixes to flush them too, or delete the allowed prefixes "
                                         "by pattern (state=absent)" % what,
                                     changed=False, refused=True, state=p["state"], db=p["db"], **result)
            result["refused"] = False
        if module.check_mode:
            size = int(client.dbsize())
        else:
            pipe = client.pipeline(transaction=True)
            pipe.dbsize()
            pipe.flushdb(asynchronous=True)
            size = int(pipe.execute()[0])
        return dict(result, changed=size > 0, dbsize=size, duration_seconds=round(time.monotonic() - start, 3))
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
    result = dict(changed=total > 0, dbsize=total, keyspace=keyspace)
    if p["count_prefixes"] and module.check_mode:
        # Per database (only in check mode: after FLUSHALL there is nothing left to count).
        result["db_prefixes"], merged = {}, PrefixCounter()
        for name in keyspace:
            db_client = redis_client(p, client_name="ansible-redis_keys", db=int(name[2:]))
            try:
                counter = count_prefixes(db_client, p["scan_count"])
            finally:
                db_client.close()
            result["db_prefixes"][name] = counter.top(PREFIXES_SHOWN)[0]
            for prefix, n in counter.counts.items():
                merged.counts[prefix] = merged.counts.get(prefix, 0) + n
            merged.overflow += counter.overflow
        result["prefixes"], result["prefixes_more"] = merged.top(PREFIXES_SHOWN)
    result["duration_seconds"] = round(time.monotonic() - start, 3)
    return result


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
            msg = "%s %d key(s) matching %r in db %s (by prefix: %s)" % (verb, n, p["pattern"], p["db"],
                                                                          format_prefixes(result["prefixes"]))
        else:
            try:
                result = flush(module, client)
            except Exception as exc:
                module.fail_json(msg="%s; nothing was flushed" % describe_error(exc, p, action="flush"), **base)
            where = "db %s" % p["db"] if p["state"] == "flushdb" else "all databases"
            msg = result.pop("msg", None) or "%s %d key(s) in %s (%s ASYNC)" % (
                "would flush" if module.check_mode else "flushed", result["dbsize"], where, p["state"].upper())
            if "prefixes" in result:
                msg += " (by prefix: %s)" % format_prefixes(result["prefixes"])
        base.update(result)
        module.exit_json(msg=msg, **base)
    finally:
        client.close()


if __name__ == "__main__":
    main()
