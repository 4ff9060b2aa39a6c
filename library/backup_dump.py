#!/usr/bin/python
# Equipment Marketplace runbook: take a verified PostgreSQL backup (pg_dump -Fc, checksum, manifest).
from __future__ import annotations

DOCUMENTATION = r"""
---
module: backup_dump
short_description: Take a verified pg_dump -Fc backup with a SHA-256 checksum and a manifest
description:
  - Dumps O(database) with C(pg_dump -Fc) into O(backup_dir) under a temporary name
    (C(.partial-<name>.dump.<random>)), fsyncs it, computes its SHA-256, checks it with C(pg_restore -l),
    then commits it by renaming the dump, a C(.dump.sha256) file (C(sha256sum -c) format) and a
    C(.manifest.json) into place, manifest last. Only a name with a manifest is ever taken as a backup, so a
    killed or failed dump never looks like one; its temp file is removed at once or, when the module itself
    was killed, by the next run.
  - The manifest records the time, database, database size, server and pg_dump versions, encoding and
    locale, owner, the archive size and checksum, the archive's table of contents and the exact row counts of
    O(count_tables). The counts are taken in the same snapshot the dump reads (C(pg_export_snapshot) +
    C(pg_dump --snapshot)), so they match the archive even while the application writes.
  - With O(tools=container) (the default) C(pg_dump) and C(pg_restore) run inside the postgres container of
    the compose project (the server's own binaries, so the versions always match; peer authentication on the
    local socket, so no password is passed to any process); the container must mount the backup directory
    (the module maps the host path through the container's mounts). With O(tools=local) the host's binaries
    connect over TCP with the password in E(PGPASSWORD).
  - The snapshot and the row counts use a psycopg connection to O(database) with the O(login_user) credentials
    (a superuser or the owner of every table).
  - A concurrent run's temp files are protected by a C(flock) on them; leftovers nobody holds are removed
    before the dump (O(clean_leftovers)).
  - If the module is interrupted (SIGTERM, SIGINT, SIGHUP) it terminates its C(pg_dump) server backend
    (found by its C(application_name)) and removes its temp files.
  - In check mode nothing is written; the result describes the backup that would be taken.
version_added: "1.0.0"
author: Equipment Marketplace operations
requirements:
  - docker (Docker SDK for Python) >= 7.1 when O(tools=container)
extends_documentation_fragment:
  - marketplace_postgres
  - marketplace_backup
options:
  database:
    description: Database to back up.
    type: str
    required: true
  backup_dir:
    description: Directory of the backups on the host the module runs on. Created (mode 0750) when missing.
    type: path
    required: true
  count_tables:
    description:
      - Tables whose exact row counts go into the manifest (C(table) or C(schema.table)). A missing table is
        recorded with its error and does not stop the backup.
    type: list
    elements: str
    default: [users, equipment_listings, orders, payments, api_keys, audit_events]
  compress:
    description: C(pg_dump --compress) level 0-9; default pg_dump's own.
    type: int
  lock_wait_timeout:
    description: Seconds pg_dump waits for its table locks before it gives up (C(--lock-wait-timeout)).
    type: int
    default: 60
  label:
    description: Free text recorded in the manifest (for example C(pre-deploy 1.4.0)).
    type: str
  file_mode:
    description:
      - Mode of the committed files. They are created with it (owner-only C(0600) by default, as a dump holds every
        row, API key hashes included); a missing O(backup_dir) is created C(0700). An existing O(backup_dir)
        that group or others can enter is reported as a C(backup_dir_mode) warning, not changed.
    type: str
    default: "0600"
  clean_leftovers:
    description: Remove temp files and manifest-less backup files of earlier runs that no running backup holds.
    type: bool
    default: true
  login_db:
    description: Ignored (the connection goes to O(database)); accepted for a shared connection dict.
    type: str
    default: postgres
    aliases: [db]
  statement_timeout:
    description: Milliseconds each row count may take; 0 disables the limit.
    type: int
    default: 300000
"""

EXAMPLES = r"""
- name: Back up the marketplace database
  backup_dump:
    database: equipment_marketplace
    backup_dir: /var/backups/equipment-marketplace
    login_host: 127.0.0.1
    login_port: 55432
    login_password: "{{ marketplace_db_password }}"
  no_log: false
  register: backup
"""

RETURN = r"""
name:
  description: Name of the backup (C(<database>-<YYYYmmddTHHMMSSZ>)).
  returned: always
  type: str
paths:
  description: Paths of the C(dump), C(sha256) and C(manifest) files (where they are or would be).
  returned: always
  type: dict
manifest:
  description: The manifest written (in check mode, the facts known beforehand).
  returned: always
  type: dict
checks:
  description: Checks in the report shape (C(backup_dump), C(backup_archive_list), C(backup_row_counts)).
  returned: always
  type: list
leftovers_removed:
  description: Temp and manifest-less files of earlier runs that were removed (would be, in check mode).
  returned: always
  type: list
leftovers_kept:
  description: Leftovers left alone, with the reason (in use by a running backup).
  returned: always
  type: list
timings:
  description: Seconds spent in each phase (snapshot, dump, fsync, checksum, list, commit, total).
  returned: always
  type: dict
tools:
  description: Where the tools ran.
  returned: always
  type: str
"""

import os
import secrets
import signal
import time

from ansible.module_utils.marketplace_backup import (
    DEFAULT_COUNT_TABLES,
    DUMP_SUFFIX,
    MANIFEST_FORMAT,
    TEMP_PREFIX,
    ToolError,
    clean_leftovers,
    fsync_dir,
    list_archive,
    make_runner,
    new_name,
    paths,
    release,
    runner_argument_spec,
    scan,
    sha256_file,
    tail,
    utcnow,
    write_temp,
)
from ansible.module_utils.marketplace_common import json_safe
from ansible.module_utils.marketplace_module import MarketplaceModule
from ansible.module_utils.marketplace_postgres import (
    ConnectError,
    connect,
    error_message,
    postgres_common_argument_spec,
    psycopg,
    quote_qualified,
    require_psycopg,
    secrets_of,
    sql,
    validate_common,
)


class Interrupted(Exception):
    pass


def _on_signal(signum, _frame):
    raise Interrupted("interrupted by signal %d" % signum)


def build_argument_spec():
    spec = postgres_common_argument_spec()
    spec["statement_timeout"]["default"] = 300000
    spec.update(runner_argument_spec())
    spec.update(
        database=dict(type="str", required=True),
        backup_dir=dict(type="path", required=True),
        count_tables=dict(type="list", elements="str", default=list(DEFAULT_COUNT_TABLES)),
        compress=dict(type="int"),
        lock_wait_timeout=dict(type="int", default=60),
        label=dict(type="str"),
        file_mode=dict(type="str", default="0600"),
        clean_leftovers=dict(type="bool", default=True),
    )
    return spec


def database_facts(conn):
    row = conn.execute(
        "SELECT current_setting('server_version'), current_setting('server_version_num')::int, "
        "pg_database_size(d.oid), pg_encoding_to_char(d.encoding), d.datcollate, d.datctype, "
        "pg_get_userbyid(d.datdba) FROM pg_database d WHERE d.datname = current_database()").fetchone()
    keys = ("server_version", "server_version_num", "database_size_bytes", "encoding", "lc_collate", "lc_ctype",
            "owner")
    return dict(zip(keys, row, strict=True))


def count_rows(conn, tables, statement_timeout):
    """Exact counts inside the current transaction; a failing table is recorded, not fatal."""
    counts, errors = {}, {}
    for table in tables:
        try:
            ident = quote_qualified(table)
        except ValueError:
            counts[table] = None
            errors[table] = "malformed table name"
            continue
        try:
            with conn.transaction():  # a savepoint: an error here keeps the snapshot transaction usable
                if statement_timeout:
                    conn.execute(sql.SQL("SET LOCAL statement_timeout = {}").format(
                        sql.Literal(int(statement_timeout))))
                counts[table] = conn.execute(sql.SQL("SELECT count(*) FROM {}").format(ident)).fetchone()[0]
        except Exception as exc:
            counts[table] = None
            errors[table] = error_message(exc)
    return counts, errors


def terminate_by_appname(params, appname):
    try:
        with connect(dict(params, login_db="postgres", connect_timeout=3), "ansible-marketplace-backup-cleanup") as c:
            c.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = %s",
                      (appname,))
    except Exception:  # noqa: S110 - best effort while failing anyway
        pass


def main():
    module = MarketplaceModule(argument_spec=build_argument_spec(), supports_check_mode=True)
    p = module.params
    validate_common(module)
    require_psycopg(module)
    if p["compress"] is not None and not 0 <= p["compress"] <= 9:
        module.fail_json(msg="compress must be between 0 and 9")
    try:
        file_mode = int(p["file_mode"], 8)
    except ValueError:
        file_mode = -1
    if not 0 <= file_mode <= 0o777 or not file_mode & 0o600 == 0o600:
        module.fail_json(msg="file_mode must be an octal mode such as 0600 that lets the owner read and write")
    started_mono = time.monotonic()
    timings = {}
    directory = p["backup_dir"]
    params = dict(p, login_db=p["database"])
    pw = secrets_of(params)

    try:
        runner = make_runner(p)
    except ToolError as exc:
        module.fail_json(msg="cannot run the PostgreSQL tools: %s" % exc)
    tools_desc = runner.describe()

    try:
        conn = connect(params, "ansible-marketplace-backup")
    except ConnectError as exc:
        module.fail_json(msg="cannot connect to database %s: %s" % (p["database"], exc.reason))
    try:
        facts = database_facts(conn)
    except Exception as exc:
        module.fail_json(msg="cannot read the facts of database %s: %s" % (p["database"], error_message(exc, pw)))

    if not os.path.isdir(directory) and not module.check_mode:
        try:
            os.makedirs(directory, mode=0o700, exist_ok=True)
        except OSError as exc:
            module.fail_json(msg="cannot create the backup directory %s: %s" % (directory, exc.strerror or exc))
    name = new_name(directory if os.path.isdir(directory) else "/nonexistent", p["database"])
    final = paths(directory, name)
    base_manifest = dict(format=MANIFEST_FORMAT, name=name, file=name + DUMP_SUFFIX, database=p["database"],
                         label=p["label"], tools=runner.kind, **facts)
    _entries, leftovers = scan(directory)

    if module.check_mode:
        removed, kept = clean_leftovers(leftovers, check_mode=True) if p["clean_leftovers"] else ([], [])
        try:
            if runner.kind == "container":
                runner.path(final["dump"])  # the mount check, so --check says when it would fail
        except ToolError as exc:
            module.fail_json(msg=str(exc))
        conn.close()
        module.exit_json(changed=True, name=name, paths=final, manifest=json_safe(base_manifest), checks=[],
                         leftovers_removed=removed, leftovers_kept=kept, timings={}, tools=tools_desc,
                         msg="would dump %s (%d bytes) to %s %s" % (p["database"], facts["database_size_bytes"],
                                                                  final["dump"], tools_desc))

    removed, kept = clean_leftovers(leftovers) if p["clean_leftovers"] else ([], [])
    tmp_dump = os.path.join(directory, "%s%s%s.%s" % (TEMP_PREFIX, name, DUMP_SUFFIX, secrets.token_hex(4)))
    temps = [tmp_dump]
    lock_fd = None
    appname = "em-backup-%s" % secrets.token_hex(6)
    old_handlers = {s: signal.signal(s, _on_signal) for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)}
    dump_started = False
    try:
        lock_fd = os.open(tmp_dump, os.O_CREAT | os.O_EXCL | os.O_RDWR, 0o600)  # pg_dump writes into this file
        import fcntl

        fcntl.flock(lock_fd, fcntl.LOCK_EX)
        container_path = runner.path(tmp_dump)

        # The snapshot both the row counts and pg_dump read.
        t0 = time.monotonic()
        conn.autocommit = False
        conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
        conn.read_only = True
        snapshot, snap_time = conn.execute("SELECT pg_export_snapshot(), now()").fetchone()
        counts, count_errors = count_rows(conn, p["count_tables"], p["statement_timeout"])
        timings["snapshot_s"] = round(time.monotonic() - t0, 3)

        argv = [runner.tool("pg_dump"), "--format=custom", "--no-password", *runner.conn_args(),
                "--snapshot=%s" % snapshot, "--lock-wait-timeout=%d" % (p["lock_wait_timeout"] * 1000),
                "--file=%s" % container_path]
        if p["compress"] is not None:
            argv.append("--compress=%d" % p["compress"])
        if runner.kind == "local":
            argv.append("--dbname=%s" % p["database"])
        else:
            argv.append(p["database"])
        t0 = time.monotonic()
        started = utcnow()
        dump_started = True
        rc, _out, err = runner.run(argv, appname=appname, timeout=p["tool_timeout"])
        dump_started = False
        timings["dump_s"] = round(time.monotonic() - t0, 3)
        conn.rollback()
        if rc != 0:
            how = "was killed (signal %d)" % (rc - 128) if rc > 128 else "failed (exit %s)" % rc
            module.fail_json(msg="pg_dump of %s %s; nothing was committed, the partial file was removed: %s"
                             % (p["database"], how, tail(err.decode(errors="replace")) or "no error output"),
                             name=name, tools=tools_desc)

        t0 = time.monotonic()
        os.fsync(lock_fd)
        timings["fsync_s"] = round(time.monotonic() - t0, 3)
        t0 = time.monotonic()
        with os.fdopen(os.dup(lock_fd), "rb") as handle:
            digest, size = sha256_file(None, fileobj=handle)
        timings["checksum_s"] = round(time.monotonic() - t0, 3)
        if size == 0:
            module.fail_json(msg="pg_dump of %s wrote nothing to %s (is the backup directory mounted into the "
                             "container at %s?)" % (p["database"], tmp_dump, container_path), name=name)

        t0 = time.monotonic()
        ok, toc = list_archive(runner, tmp_dump, timeout=p["tool_timeout"])
        timings["list_s"] = round(time.monotonic() - t0, 3)
        if not ok:
            module.fail_json(msg="the new dump of %s does not pass verification, nothing was committed: %s"
                             % (p["database"], toc), name=name)

        finished = utcnow()
        manifest = dict(base_manifest)
        manifest.update(
            created=snap_time, started=started.isoformat(), finished=finished.isoformat(),
            duration_s=timings["dump_s"], size_bytes=size, sha256=digest,
            pg_dump_version=toc["header"].get("dumped_by_pg_dump_version"),
            compression=toc["header"].get("compression"),
            row_counts=counts, row_count_errors=count_errors,
            toc={"entries": toc["entries"], "tables": toc["tables"]},
            verified={"pg_restore_list": True, "at": finished.isoformat()},
            snapshot=snapshot, host=os.uname().nodename,
        )
        manifest = json_safe(manifest)

        t0 = time.monotonic()
        import json

        tmp_sum = write_temp(directory, name, ".sha256", "%s  %s\n" % (digest, name + DUMP_SUFFIX), file_mode)
        temps.append(tmp_sum)
        tmp_manifest = write_temp(directory, name, ".manifest", json.dumps(manifest, indent=2) + "\n", file_mode)
        temps.append(tmp_manifest)
        if file_mode != 0o600:  # created 0600; another mode only when the operator asked for one
            os.fchmod(lock_fd, file_mode)
        # Commit: dump, checksum, then the manifest (the marker that makes it a backup).
        os.rename(tmp_dump, final["dump"])
        temps.remove(tmp_dump)
        os.rename(tmp_sum, final["sha256"])
        temps.remove(tmp_sum)
        os.rename(tmp_manifest, final["manifest"])
        temps.remove(tmp_manifest)
        fsync_dir(directory)
        timings["commit_s"] = round(time.monotonic() - t0, 3)
    except Interrupted as exc:
        if dump_started:
            terminate_by_appname(params, appname)
        module.fail_json(msg="backup of %s %s; nothing was committed, the partial file was removed"
                         % (p["database"], exc), name=name)
    except ToolError as exc:
        module.fail_json(msg="backup of %s failed, nothing was committed: %s" % (p["database"], exc), name=name)
    except Exception as exc:
        if dump_started:
            terminate_by_appname(params, appname)
        module.fail_json(msg="backup of %s failed, nothing was committed: %s"
                         % (p["database"], error_message(exc, pw)), name=name)
    finally:
        for path in temps:
            try:
                os.unlink(path)
            except OSError:
                pass
        release(lock_fd)
        for s, h in old_handlers.items():
            signal.signal(s, h)
        try:
            conn.close()
        except Exception:  # noqa: S110
            pass

    timings["total_s"] = round(time.monotonic() - started_mono, 3)
    missing = {t: e for t, e in count_errors.items()}
    checks = [
        dict(name="backup_dump", component="postgres", status="ok", value=size, threshold=None,
             message="%s: %d bytes in %.1fs, sha256 %s" % (name, size, timings["dump_s"], digest)),
        dict(name="backup_archive_list", component="postgres", status="ok", value=toc["entries"], threshold=None,
             message="pg_restore -l lists %d entries (%d tables with data)" % (toc["entries"], len(toc["tables"]))),
        dict(name="backup_row_counts", component="postgres", status="warning" if missing else "ok",
             value=counts, threshold=None,
             message=("row counts recorded for %d tables" % len(counts)) if not missing else
             "row counts recorded; not counted: %s" % "; ".join("%s (%s)" % kv for kv in missing.items())),
    ]
    try:
        dir_mode = os.stat(directory).st_mode & 0o777
    except OSError:
        dir_mode = None
    if dir_mode is not None and dir_mode & 0o077:
        checks.append(dict(name="backup_dir_mode", component="postgres", status="warning", value="%04o" % dir_mode,
                           threshold="0700", message="the backup directory %s is %04o: group or others can enter it "
                           "(chmod 0700 it; the backups themselves are %s)" % (directory, dir_mode, p["file_mode"])))
    module.exit_json(changed=True, name=name, paths=final, manifest=manifest, checks=checks,
                     leftovers_removed=removed, leftovers_kept=kept, timings=timings, tools=tools_desc)


if __name__ == "__main__":
    main()
