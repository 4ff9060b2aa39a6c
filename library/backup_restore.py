#!/usr/bin/python
# Equipment Marketplace runbook: restore a backup into a new database, swap databases, drop, inspect.
from __future__ import annotations

DOCUMENTATION = r"""
---
module: backup_restore
short_description: Restore a pg_dump -Fc backup into a new database, swap it in by renaming, drop or inspect databases
description:
  - O(action=restore) restores the backup O(name) of O(backup_dir) into the new database O(target) -
    C(CREATE DATABASE ... TEMPLATE template0) with the owner, encoding and locale of the manifest (what
    C(createdb -T template0) does), then C(pg_restore --exit-on-error) (optionally with O(jobs) in parallel).
    It then counts the rows of every table the manifest counted and compares them, and runs C(ANALYZE).
    Any failure drops the new database again (O(drop_on_failure)); no other database is touched. With
    O(drop_after=true) (a restore drill) the new database is dropped at the end as well. Before creating
    anything it checks the dump's checksum (O(verify_checksum)) and the free space of the server's data
    directory (O(min_free_factor) x the database size recorded in the manifest).
  - O(action=swap) puts O(target) in the place of O(database) - it copies the database-level grants and settings
    of O(database) to O(target), refuses new connections to O(database) (C(ALLOW_CONNECTIONS false)), terminates
    the sessions of both, then renames O(database) to O(replaced_name) and O(target) to O(database) in one
    transaction. The replaced database stays (connections allowed again, with a C(COMMENT) saying what it
    is) until it is dropped explicitly.
  - When a step of the swap fails (including a lost admin session), the module opens a FRESH connection, finds
    out whether the rename was committed, lets the previous live database accept connections again, reads
    C(datallowconn) back and fails naming the step (RV(step)) and that real state (RV(swapped),
    RV(live_allows_connections)).
  - Names this module creates, renames or drops (O(target), O(replaced_name), the swap's O(database)) must be
    lower case letters, digits and C(_), at most 63 characters; O(target) and O(replaced_name) must not be
    C(postgres), C(template0), C(template1), O(login_db) or a name in O(protect). A O(name) that is a path must
    be in O(backup_dir). Such input is refused before anything is read or changed.
  - O(action=drop) drops O(target) (C(WITH (FORCE))), refusing names in O(protect) and names that do not match
    O(allowed_pattern).
  - O(action=inspect) is read-only - whether O(database) exists, its size, sessions and the row counts of
    O(tables) with the error of each table that cannot be counted; plus the databases whose names match
    O(list_pattern).
  - Check mode changes nothing; restore, swap and drop describe what they would do.
  - C(pg_restore) runs inside the postgres container by default (see M(backup_dump)); the admin connection
    uses the O(login_user) credentials (a superuser, or a role with CREATEDB that owns the databases) and
    the maintenance database O(login_db).
version_added: "1.0.0"
author: Equipment Marketplace operations
requirements:
  - docker (Docker SDK for Python) >= 7.1 when O(tools=container)
extends_documentation_fragment:
  - marketplace_postgres
  - marketplace_backup
options:
  action:
    description: What to do.
    type: str
    required: true
    choices: [restore, swap, drop, inspect]
  backup_dir:
    description: Directory of the backups (O(action=restore)).
    type: path
  name:
    description: Backup to restore (a name, a file name or a path in O(backup_dir)).
    type: str
  target:
    description: The new database (O(action=restore), O(action=swap)) or the database to drop (O(action=drop)).
    type: str
  database:
    description: The live database (O(action=swap), O(action=inspect)).
    type: str
  replaced_name:
    description: New name of the live database after O(action=swap) (for example C(<database>_replaced_<stamp>)).
    type: str
  comment:
    description: C(COMMENT ON DATABASE) of the replaced database after a swap.
    type: str
  owner:
    description: Owner of the new database; default the owner recorded in the manifest.
    type: str
  jobs:
    description: C(pg_restore --jobs).
    type: int
    default: 1
  verify_checksum:
    description: Check the dump's SHA-256 and size against the manifest before restoring.
    type: bool
    default: true
  compare:
    description: Compare the row counts of the restored database with the manifest.
    type: bool
    default: true
  on_mismatch:
    description:
      - What a row count mismatch does. C(fail) - drop the new database (O(drop_on_failure)) and fail;
        C(report) - return C(counts_match=false) and the table list.
    type: str
    default: fail
    choices: [fail, report]
  analyze:
    description: Run C(ANALYZE) on the restored database.
    type: bool
    default: true
  drop_after:
    description: Drop the restored database at the end (a restore drill).
    type: bool
    default: false
  drop_on_failure:
    description: Drop the new database when the restore or the comparison fails.
    type: bool
    default: true
  min_free_factor:
    description:
      - Free space needed in the data directory, as a multiple of the manifest's database size; 0 disables the
        check. The check is skipped (with a warning) when the free space cannot be read.
    type: float
    default: 1.2
  check_prefix:
    description: Names of the returned checks - C(<prefix>) and C(<prefix>_rows_<table>) (for example C(drill)).
    type: str
    default: restore
  tables:
    description:
      - Tables to count for O(action=inspect); default the manifest's when O(name) is given, else the key tables.
    type: list
    elements: str
  list_pattern:
    description: For O(action=inspect), a regular expression; the databases whose names match are listed.
    type: str
  protect:
    description: Databases O(action=drop) refuses to drop and O(action=restore) and O(action=swap) refuse to create.
    type: list
    elements: str
    default: []
  allowed_pattern:
    description: For O(action=drop), a regular expression the name must match (fully).
    type: str
  terminate_timeout:
    description: Seconds O(action=swap) keeps terminating sessions before it gives up.
    type: int
    default: 30
  tool_timeout:
    description: Seconds C(pg_restore) may run.
    type: int
    default: 7200
  statement_timeout:
    description: Milliseconds each count or catalogue statement may take; 0 disables the limit.
    type: int
    default: 300000
"""

EXAMPLES = r"""
- name: Restore drill - restore into a scratch database, compare, analyze, drop
  backup_restore:
    action: restore
    backup_dir: /var/backups/equipment-marketplace
    name: equipment_marketplace-20250101T020000Z
    target: equipment_marketplace_drill_20250101_030000
    drop_after: true
    on_mismatch: report
    login_host: 127.0.0.1
    login_port: 55432
    login_password: "{{ marketplace_db_password }}"
  no_log: false

- name: Swap the restored database in, keeping the old one under a dated name
  backup_restore:
    action: swap
    database: equipment_marketplace
    target: equipment_marketplace_restore_20250101_030000
    replaced_name: equipment_marketplace_replaced_20250101_030000
    login_password: "{{ marketplace_db_password }}"
"""

RETURN = r"""
target:
  description: The database restored into, swapped in or dropped.
  returned: when O(target) is given
  type: str
backup:
  description: The backup restored (name, created, sha256, size_bytes).
  returned: O(action=restore)
  type: dict
tables:
  description: Per table - C(table), C(expected) (manifest), C(actual) (counted), C(match), C(error).
  returned: O(action=restore) and O(action=inspect)
  type: list
counts_match:
  description: Whether every counted table matches the manifest (null when not compared).
  returned: O(action=restore)
  type: bool
dropped:
  description: Whether the database was dropped (drill, failure cleanup, O(action=drop)).
  returned: O(action=restore) and O(action=drop)
  type: bool
timings:
  description: Seconds per phase (checksum, create, restore, count, analyze, drop, swap, total).
  returned: always
  type: dict
replaced_name:
  description: Name the live database has after the swap.
  returned: O(action=swap)
  type: str
terminated:
  description: Sessions terminated by the swap.
  returned: O(action=swap)
  type: int
copied:
  description: Database-level grants and settings copied to the new database by the swap.
  returned: O(action=swap)
  type: dict
step:
  description: The step of the swap that failed (copy_grants, disallow_connections, terminate_sessions, rename,
    allow_connections, comment); null when the swap succeeded.
  returned: O(action=swap)
  type: str
swapped:
  description: Whether the rename was committed (read on a fresh connection after a failure; null when unknown).
  returned: O(action=swap)
  type: bool
live_allows_connections:
  description: C(datallowconn) of O(database) after the swap or the failed swap (null when it could not be read).
  returned: O(action=swap)
  type: bool
replaced_allows_connections:
  description: C(datallowconn) of O(replaced_name) when the rename was committed (null otherwise).
  returned: O(action=swap)
  type: bool
exists:
  description: Whether O(database) exists (O(action=inspect)).
  returned: O(action=inspect)
  type: bool
size_bytes:
  description: Size of O(database) (O(action=inspect)).
  returned: O(action=inspect)
  type: int
sessions:
  description: Sessions connected to O(database) (O(action=inspect)).
  returned: O(action=inspect)
  type: int
databases:
  description: Databases matching O(list_pattern) with their size and comment (O(action=inspect)).
  returned: O(action=inspect)
  type: list
free_bytes:
  description: Free space of the server's data directory, when it could be read.
  returned: O(action=restore) and O(action=inspect)
  type: int
checks:
  description: Checks in the report shape.
  returned: always
  type: list
"""

import re
import time

from ansible.module_utils.marketplace_backup import (
    DEFAULT_COUNT_TABLES,
    ToolError,
    make_runner,
    normalize_name,
    paths,
    read_manifest,
    release,
    runner_argument_spec,
    tail,
    try_lock,
    verify_file,
)
from ansible.module_utils.marketplace_common import json_safe
from ansible.module_utils.marketplace_module import MarketplaceModule
from ansible.module_utils.marketplace_postgres import (
    ConnectError,
    connect,
    error_message,
    postgres_common_argument_spec,
    quote_qualified,
    require_psycopg,
    secrets_of,
    sql,
    validate_common,
)

LIST_GUCS = {"search_path", "temp_tablespaces", "session_preload_libraries", "local_preload_libraries"}
# Names of the databases this module creates, renames or drops: lower case, digits and _, at most 63 bytes
# (PostgreSQL would silently cut a longer name to 63 - possibly to the name of another database).
DB_NAME_RE = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
SYSTEM_DBS = ("postgres", "template0", "template1")


def build_argument_spec():
    spec = postgres_common_argument_spec()
    spec["statement_timeout"]["default"] = 300000
    spec.update(runner_argument_spec())
    spec["tool_timeout"]["default"] = 7200
    spec.update(
        action=dict(type="str", required=True, choices=["restore", "swap", "drop", "inspect"]),
        backup_dir=dict(type="path"),
        name=dict(type="str"),
        target=dict(type="str"),
        database=dict(type="str"),
        replaced_name=dict(type="str"),
        comment=dict(type="str"),
        owner=dict(type="str"),
        jobs=dict(type="int", default=1),
        verify_checksum=dict(type="bool", default=True),
        compare=dict(type="bool", default=True),
        on_mismatch=dict(type="str", default="fail", choices=["fail", "report"]),
        analyze=dict(type="bool", default=True),
        drop_after=dict(type="bool", default=False),
        drop_on_failure=dict(type="bool", default=True),
        min_free_factor=dict(type="float", default=1.2),
        tables=dict(type="list", elements="str"),
        list_pattern=dict(type="str"),
        protect=dict(type="list", elements="str", default=[]),
        allowed_pattern=dict(type="str"),
        terminate_timeout=dict(type="int", default=30),
        check_prefix=dict(type="str", default="restore"),
    )
    return spec


def _allows(value):
    return {True: "accepts", False: "REFUSES"}.get(value, "may refuse (unknown)")


def _check(name, status, value, threshold, message):
    return dict(name=name, component="postgres", status=status, value=value, threshold=threshold, message=message)


class Restorer:
    def __init__(self, module):
        self.module = module
        self.p = module.params
        self.pw = secrets_of(self.p)
        self.timings = {}
        self.started = time.monotonic()
        self._admin = None

    # -- plumbing -------------------------------------------------------------------------------------
    def fail(self, msg, **extra):
        self.timings["total_s"] = round(time.monotonic() - self.started, 3)
        self.module.fail_json(msg=msg, timings=self.timings, **json_safe(extra))

    def admin(self):
        if self._admin is None:
            try:
                self._admin = connect(self.p, "ansible-marketplace-restore")
            except ConnectError as exc:
                self.fail("cannot connect to the server (%s): %s" % (self.p["login_db"], exc.reason))
            if self.p["statement_timeout"]:
                self._admin.execute(sql.SQL("SET statement_timeout = {}").format(
                    sql.Literal(int(self.p["statement_timeout"]))))
        return self._admin

    def check_name(self, option, value, protected=False):
        """Refuse (before anything is read or changed) a database name this module must not create, rename or
        drop: not lower case / digits / _, longer than 63 bytes, or (``protected``) a system database, the admin
        connection's database or a name in O(protect)."""
        if not DB_NAME_RE.match(value or ""):
            self.fail("%s=%r is not a database name this module works on (lower case letters, digits and _, "
                      "starting with a letter or _, at most 63 characters); nothing was changed" % (option, value))
        if protected and value in {*SYSTEM_DBS, self.p["login_db"], *self.p["protect"]}:
            self.fail("%s=%s is a protected database (system database, the admin connection's database or "
                      "in protect); nothing was changed" % (option, value))

    def connect_db(self, dbname):
        return connect(dict(self.p, login_db=dbname), "ansible-marketplace-restore")

    def db_exists(self, name):
        return self.admin().execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone() is not None

    def phase(self, key, t0):
        self.timings[key] = round(time.monotonic() - t0, 3)

    def drop_db(self, name):
        self.admin().execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))

    def count_tables(self, dbname, tables):
        """[{table, actual, error}] counted in ``dbname`` (a missing table is an error entry, not a failure)."""
        out = []
        try:
            conn = self.connect_db(dbname)
        except ConnectError as exc:
            return [{"table": t, "actual": None, "error": exc.reason} for t in tables]
        with conn:
            if self.p["statement_timeout"]:
                conn.execute(sql.SQL("SET statement_timeout = {}").format(
                    sql.Literal(int(self.p["statement_timeout"]))))
            for table in tables:
                try:
                    ident = quote_qualified(table)
                    n = conn.execute(sql.SQL("SELECT count(*) FROM {}").format(ident)).fetchone()[0]
                    out.append({"table": table, "actual": n, "error": None})
                except ValueError:
                    out.append({"table": table, "actual": None, "error": "malformed table name"})
                except Exception as exc:
                    out.append({"table": table, "actual": None, "error": error_message(exc, self.pw)})
        return out

    def free_bytes(self, runner):
        try:
            datadir = self.admin().execute("SELECT current_setting('data_directory')").fetchone()[0]
        except Exception:
            return None
        try:
            return runner.free_bytes(datadir)
        except ToolError:
            return None

    # -- actions --------------------------------------------------------------------------------------
    def restore(self):
        p = self.p
        for opt in ("backup_dir", "name", "target"):
            if not p[opt]:
                self.fail("action=restore needs %s" % opt)
        self.check_name("target", p["target"], protected=True)
        try:
            name = normalize_name(p["name"], p["backup_dir"])
        except ValueError as exc:
            self.fail("nothing was restored: %s" % exc)
        files = paths(p["backup_dir"], name)
        try:
            manifest = read_manifest(files["manifest"])
        except FileNotFoundError:
            self.fail("backup %s not found in %s (no manifest); nothing was restored" % (name, p["backup_dir"]))
        except (OSError, ValueError) as exc:
            self.fail("backup %s has no readable manifest in %s: %s" % (name, p["backup_dir"], exc))
        backup = {k: manifest.get(k) for k in ("name", "created", "sha256", "size_bytes", "database",
                                               "database_size_bytes", "server_version")}
        entry = {"name": name, "paths": files}
        target = p["target"]
        checks = []
        if p["verify_checksum"]:
            t0 = time.monotonic()
            ok, reason, _facts = verify_file(entry, manifest)
            self.phase("checksum_s", t0)
            if not ok:
                self.fail("backup %s fails verification, nothing was restored: %s" % (name, reason), backup=backup)
        try:
            runner = make_runner(p)
            container_path = runner.path(files["dump"])
        except ToolError as exc:
            self.fail("cannot run pg_restore: %s" % exc)
        if self.db_exists(target):
            self.fail("database %s already exists; choose another target or drop it first" % target)
        needed = int((manifest.get("database_size_bytes") or 0) * (p["min_free_factor"] or 0))
        free = self.free_bytes(runner) if needed else None
        if needed and free is not None and free < needed:
            self.fail("not enough free space for the restore: %d bytes free in the data directory, %d needed "
                      "(%.1f x the %d bytes of the backed-up database)"
                      % (free, needed, p["min_free_factor"], manifest.get("database_size_bytes")), free_bytes=free)
        expected = manifest.get("row_counts") or {}
        plan = ("restore %s (%s bytes, sha256 %s...) into new database %s %s, compare %d row counts, %s%s"
                % (name, manifest.get("size_bytes"), (manifest.get("sha256") or "")[:12], target, runner.describe(),
                   len(expected), "ANALYZE" if p["analyze"] else "no ANALYZE",
                   ", then drop it" if p["drop_after"] else ""))
        if self.module.check_mode:
            self.module.exit_json(changed=True, msg="would " + plan, target=target, backup=backup, tables=[],
                                  counts_match=None, dropped=False, timings=self.timings, free_bytes=free,
                                  checks=[])
        owner = p["owner"] or manifest.get("owner") or p["login_user"]
        created = False
        lock_fd = try_lock(files["dump"], shared=True)
        try:
            t0 = time.monotonic()
            stmt = sql.SQL("CREATE DATABASE {} WITH TEMPLATE template0 OWNER {}").format(
                sql.Identifier(target), sql.Identifier(owner))
            if manifest.get("encoding"):
                stmt += sql.SQL(" ENCODING {}").format(sql.Literal(manifest["encoding"]))
            if manifest.get("lc_collate"):
                stmt += sql.SQL(" LC_COLLATE {}").format(sql.Literal(manifest["lc_collate"]))
            if manifest.get("lc_ctype"):
                stmt += sql.SQL(" LC_CTYPE {}").format(sql.Literal(manifest["lc_ctype"]))
            self.admin().execute(stmt)
            created = True
            self.phase("create_s", t0)

            t0 = time.monotonic()
            argv = [runner.tool("pg_restore"), "--exit-on-error", "--no-password", *runner.conn_args(),
                    "--dbname=%s" % target]
            if p["jobs"] and p["jobs"] > 1:
                argv.append("--jobs=%d" % p["jobs"])
            argv.append(container_path)
            rc, _out, err = runner.run(argv, appname="em-restore-%s" % target[-40:], timeout=p["tool_timeout"])
            self.phase("restore_s", t0)
            if rc != 0:
                raise RestoreFailed("pg_restore of %s into %s failed (exit %s): %s"
                                    % (name, target, rc, tail(err.decode(errors="replace")) or "no error output"))

            t0 = time.monotonic()
            tables = []
            if p["compare"] and expected:
                for row in self.count_tables(target, list(expected)):
                    exp = expected.get(row["table"])
                    row["expected"] = exp
                    row["match"] = row["error"] is None and exp is not None and row["actual"] == exp
                    tables.append(row)
            self.phase("count_s", t0)
            counts_match = all(r["match"] for r in tables) if tables else None
            for r in tables:
                checks.append(_check("%s_rows_%s" % (p["check_prefix"], r["table"].replace(".", "_")),
                                     "ok" if r["match"] else "critical",
                                     r["actual"], r["expected"],
                                     "%s: %s rows restored, manifest %s%s" % (
                                         r["table"], r["actual"], r["expected"],
                                         "" if r["match"] else (" - " + (r["error"] or "MISMATCH")))))
            if counts_match is False and p["on_mismatch"] == "fail":
                bad = ["%s (restored %s, manifest %s%s)" % (r["table"], r["actual"], r["expected"],
                                                           ", " + r["error"] if r["error"] else "")
                       for r in tables if not r["match"]]
                raise RestoreFailed("row counts of %s differ from the manifest of %s: %s"
                                    % (target, name, "; ".join(bad)), tables=tables)

            if p["analyze"]:
                t0 = time.monotonic()
                with self.connect_db(target) as conn:
                    conn.execute("ANALYZE")
                self.phase("analyze_s", t0)
            dropped = False
            if p["drop_after"]:
                t0 = time.monotonic()
                self.drop_db(target)
                dropped = True
                self.phase("drop_s", t0)
        except RestoreFailed as exc:
            dropped = self._cleanup(target, created)
            self.fail(str(exc) + ("; the new database %s was dropped" % target if dropped else
                                  ("; the new database %s was left for inspection" % target if created else "")),
                      target=target, backup=backup, tables=exc.tables, counts_match=False if exc.tables else None,
                      dropped=dropped, checks=checks)
        except ConnectError as exc:
            dropped = self._cleanup(target, created)
            self.fail("restore of %s into %s failed: %s" % (name, target, exc.reason), target=target, dropped=dropped)
        except ToolError as exc:
            dropped = self._cleanup(target, created)
            self.fail("restore of %s into %s failed: %s" % (name, target, exc), target=target, dropped=dropped)
        except Exception as exc:
            dropped = self._cleanup(target, created)
            self.fail("restore of %s into %s failed: %s" % (name, target, error_message(exc, self.pw)),
                      target=target, dropped=dropped)
        finally:
            release(lock_fd)
        self.timings["total_s"] = round(time.monotonic() - self.started, 3)
        checks.insert(0, _check(p["check_prefix"], "ok", self.timings.get("restore_s"), None,
                                "restored %s into %s in %.1fs%s" % (name, target, self.timings.get("restore_s", 0),
                                                                    " (dropped after)" if dropped else "")))
        self.module.exit_json(changed=True, target=target, backup=backup, tables=tables, counts_match=counts_match,
                              dropped=dropped, timings=self.timings, free_bytes=free, checks=json_safe(checks),
                              msg=plan)

    def _cleanup(self, target, created):
        if not created or not self.p["drop_on_failure"]:
            return False
        try:
            self.drop_db(target)
            return True
        except Exception:
            return False

    def swap(self):
        p = self.p
        for opt in ("database", "target", "replaced_name"):
            if not p[opt]:
                self.fail("action=swap needs %s" % opt)
        live, new, replaced = p["database"], p["target"], p["replaced_name"]
        self.check_name("database", live)
        self.check_name("target", new, protected=True)
        self.check_name("replaced_name", replaced, protected=True)
        if len({live, new, replaced}) != 3:
            self.fail("database, target and replaced_name must be three different names")
        if p["login_db"] in (live, new, replaced):
            self.fail("cannot swap: the admin connection's database (login_db=%s) must not be one of the swapped "
                      "databases" % p["login_db"])
        for name, must in ((live, True), (new, True), (replaced, False)):
            if self.db_exists(name) != must:
                self.fail("cannot swap: database %s %s" % (name, "does not exist" if must else "already exists"))
        conn = self.admin()
        oids = dict(conn.execute("SELECT datname, oid FROM pg_database WHERE datname IN (%s, %s)",
                                 (live, new)).fetchall())
        copied = self._copy_plan(live)
        sessions = conn.execute("SELECT count(*) FROM pg_stat_activity WHERE datname IN (%s, %s)",
                                (live, new)).fetchone()[0]
        plan = ("rename %s to %s and %s to %s (terminating %d session(s); copying %d grant(s) and %d setting(s))"
                % (live, replaced, new, live, sessions, len(copied["grants"]), len(copied["settings"])))
        if self.module.check_mode:
            self.module.exit_json(changed=True, msg="would " + plan, target=new, replaced_name=replaced,
                                  terminated=0, copied=copied, timings=self.timings, checks=[])
        t0 = time.monotonic()
        ident = sql.Identifier
        terminated = 0
        disallowed = False
        try:
            self._at("copy_grants")
            self._apply_copy(new, copied)
            self._at("disallow_connections")
            disallowed = True  # from here on (even if the statement's answer is lost) live may refuse connections
            conn.execute(sql.SQL("ALTER DATABASE {} WITH ALLOW_CONNECTIONS false").format(ident(live)))
            deadline = time.monotonic() + p["terminate_timeout"]
            while True:
                self._at("terminate_sessions")
                rows = conn.execute(
                    "SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity "
                    "WHERE datname IN (%s, %s) AND pid <> pg_backend_pid()", (live, new)).fetchall()
                terminated += sum(1 for r in rows if r[0])
                try:
                    self._at("rename")
                    with conn.transaction():
                        conn.execute(sql.SQL("ALTER DATABASE {} RENAME TO {}").format(ident(live), ident(replaced)))
                        conn.execute(sql.SQL("ALTER DATABASE {} RENAME TO {}").format(ident(new), ident(live)))
                    break
                except Exception as exc:
                    if getattr(exc, "sqlstate", None) != "55006" or time.monotonic() > deadline:
                        raise
                    time.sleep(0.2)
            self._at("allow_connections")
            conn.execute(sql.SQL("ALTER DATABASE {} WITH ALLOW_CONNECTIONS true").format(ident(replaced)))
            if p["comment"]:
                self._at("comment")
                conn.execute(sql.SQL("COMMENT ON DATABASE {} IS {}").format(ident(replaced), sql.Literal(p["comment"])))
        except Exception as exc:
            self._swap_failed(exc, oids, disallowed, terminated, copied)
        self.phase("swap_s", t0)
        self.timings["total_s"] = round(time.monotonic() - self.started, 3)
        checks = [_check("database_swap", "ok", terminated, None,
                         "%s is now the restored database; the previous one is kept as %s" % (live, replaced))]
        self.module.exit_json(changed=True, msg=plan, target=new, replaced_name=replaced, terminated=terminated,
                              copied=copied, timings=self.timings, checks=checks, step=None, swapped=True,
                              live_allows_connections=True, replaced_allows_connections=True)

    def _at(self, step):
        """Marks the step of the swap being done (named by a failure; tests kill the admin session here)."""
        self.swap_step = step

    def _swap_failed(self, exc, oids, disallowed, terminated, copied):
        """A step of the swap failed (the admin session may be gone): on a FRESH connection find out whether the
        rename was committed, let both databases accept connections again, read ``datallowconn`` back, and fail
        with the real state."""
        p = self.p
        live, new, replaced = p["database"], p["target"], p["replaced_name"]
        step = getattr(self, "swap_step", None)
        error = error_message(exc, self.pw)
        try:
            if self._admin is not None:
                self._admin.close()
        except Exception:  # noqa: S110 - the session is being replaced anyway
            pass
        self._admin = None
        state = self._recover_connections(oids, disallowed)
        swapped = state["swapped"]
        if state["error"]:
            text = ("COULD NOT check or repair the databases on a fresh connection (%s): %s may still refuse "
                    "connections - run ALTER DATABASE %s WITH ALLOW_CONNECTIONS true as soon as the server answers"
                    % (state["error"], live if not swapped else replaced, live if not swapped else replaced))
        elif swapped:
            text = ("the rename was committed: %s is the restored database (%s connections) and the previous one is "
                    "kept as %s (%s connections; datallowconn checked on a fresh connection)"
                    % (live, _allows(state["live_allows_connections"]), replaced,
                       _allows(state["replaced_allows_connections"])))
        else:
            text = ("nothing was renamed: %s is still the previous database and %s connections (datallowconn "
                    "checked on a fresh connection); the restored database is still %s"
                    % (live, _allows(state["live_allows_connections"]), new))
        status = "ok" if state["live_allows_connections"] else "critical"
        checks = [
            _check("database_swap", "critical", step, None, "swap failed at step %s: %s" % (step, error)),
            _check("database_connections", status, state["live_allows_connections"], True,
                   "%s %s connections after the failed swap" % (live, _allows(state["live_allows_connections"]))),
        ]
        self.fail("swap failed at step %s (%s); %s" % (step, error, text), step=step, swapped=swapped,
                  live_allows_connections=state["live_allows_connections"],
                  replaced_allows_connections=state["replaced_allows_connections"], target=new,
                  replaced_name=replaced, terminated=terminated, copied=copied, checks=checks)

    def _recover_connections(self, oids, disallowed, attempts=5):
        p = self.p
        live, new, replaced = p["database"], p["target"], p["replaced_name"]
        state = {"swapped": None, "live_allows_connections": None, "replaced_allows_connections": None,
                 "error": None}
        ident = sql.Identifier
        for attempt in range(attempts):
            try:
                with connect(self.p, "ansible-marketplace-restore-recover") as conn:
                    if self.p["statement_timeout"]:
                        conn.execute(sql.SQL("SET statement_timeout = {}").format(
                            sql.Literal(int(self.p["statement_timeout"]))))
                    names = dict(conn.execute("SELECT oid, datname FROM pg_database WHERE oid IN (%s, %s)",
                                              (oids.get(live), oids.get(new))).fetchall())
                    swapped = names.get(oids.get(live)) == replaced and names.get(oids.get(new)) == live
                    # the database that was live before the swap, under whatever name it has now
                    previous = replaced if swapped else live
                    if disallowed or swapped:
                        conn.execute(sql.SQL("ALTER DATABASE {} WITH ALLOW_CONNECTIONS true").format(ident(previous)))
                    if swapped and p["comment"]:
                        conn.execute(sql.SQL("COMMENT ON DATABASE {} IS {}").format(
                            ident(replaced), sql.Literal(p["comment"])))
                    allow = dict(conn.execute("SELECT datname, datallowconn FROM pg_database WHERE datname IN (%s, %s)",
                                              (live, replaced)).fetchall())
                state.update(swapped=swapped, live_allows_connections=allow.get(live),
                             replaced_allows_connections=allow.get(replaced) if swapped else None, error=None)
                return state
            except ConnectError as exc:
                state["error"] = exc.reason
            except Exception as exc:
                state["error"] = error_message(exc, self.pw)
            if attempt + 1 < attempts:
                time.sleep(1)
        return state

    def _copy_plan(self, live):
        conn = self.admin()
        grants = conn.execute(
            "SELECT CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE pg_get_userbyid(a.grantee) END, a.privilege_type, "
            "a.is_grantable, d.datacl IS NULL FROM pg_database d LEFT JOIN LATERAL aclexplode(d.datacl) a ON true "
            "WHERE d.datname = %s", (live,)).fetchall()
        default_acl = bool(grants) and grants[0][3]
        settings = [r[0] for r in conn.execute(
            "SELECT unnest(s.setconfig) FROM pg_db_role_setting s JOIN pg_database d ON d.oid = s.setdatabase "
            "WHERE d.datname = %s AND s.setrole = 0", (live,)).fetchall()]
        return {"default_acl": default_acl,
                "grants": [] if default_acl else [{"grantee": g, "privilege": pr, "grantable": gr}
                                                  for g, pr, gr, _ in grants if g],
                "settings": settings}

    def _apply_copy(self, new, copied):
        conn = self.admin()
        ident = sql.Identifier
        if not copied["default_acl"]:
            conn.execute(sql.SQL("REVOKE ALL ON DATABASE {} FROM PUBLIC").format(ident(new)))
            for g in copied["grants"]:
                grantee = sql.SQL("PUBLIC") if g["grantee"] == "PUBLIC" else ident(g["grantee"])
                stmt = sql.SQL("GRANT {} ON DATABASE {} TO {}").format(sql.SQL(g["privilege"]), ident(new), grantee)
                if g["grantable"]:
                    stmt += sql.SQL(" WITH GRANT OPTION")
                conn.execute(stmt)
        for setting in copied["settings"]:
            key, _, value = setting.partition("=")
            if key in LIST_GUCS:
                values = sql.SQL(", ").join(sql.Literal(v.strip()) for v in value.split(",") if v.strip())
            else:
                values = sql.Literal(value)
            conn.execute(sql.SQL("ALTER DATABASE {} SET {} TO {}").format(ident(new), ident(key), values))

    def drop(self):
        p = self.p
        target = p["target"]
        if not target:
            self.fail("action=drop needs target")
        if target in set(p["protect"]) | {p["login_db"], *SYSTEM_DBS}:
            self.fail("refusing to drop %s: it is protected" % target)
        self.check_name("target", target, protected=True)
        if p["allowed_pattern"] and not re.fullmatch(p["allowed_pattern"], target):
            self.fail("refusing to drop %s: the name does not match %s" % (target, p["allowed_pattern"]))
        if not self.db_exists(target):
            self.module.exit_json(changed=False, target=target, dropped=False, timings=self.timings, checks=[],
                                  msg="database %s does not exist" % target)
        if self.module.check_mode:
            self.module.exit_json(changed=True, target=target, dropped=False, timings=self.timings, checks=[],
                                  msg="would drop database %s" % target)
        t0 = time.monotonic()
        try:
            self.drop_db(target)
        except Exception as exc:
            self.fail("cannot drop %s: %s" % (target, error_message(exc, self.pw)))
        self.phase("drop_s", t0)
        self.module.exit_json(changed=True, target=target, dropped=True, timings=self.timings, checks=[],
                              msg="dropped database %s" % target)

    def inspect(self):
        p = self.p
        result = dict(changed=False, exists=None, size_bytes=None, sessions=None, tables=[], databases=[],
                      free_bytes=None, timings=self.timings, checks=[])
        tables = p["tables"]
        if tables is None and p["name"] and p["backup_dir"]:
            try:
                manifest = read_manifest(paths(p["backup_dir"], normalize_name(p["name"], p["backup_dir"]))["manifest"])
                tables = list((manifest.get("row_counts") or {}).keys())
            except (OSError, ValueError):
                tables = None
        if tables is None:
            tables = list(DEFAULT_COUNT_TABLES)
        conn = self.admin()
        if p["database"]:
            row = conn.execute("SELECT pg_database_size(oid), (SELECT count(*) FROM pg_stat_activity a "
                               "WHERE a.datname = d.datname) FROM pg_database d WHERE datname = %s",
                               (p["database"],)).fetchone()
            result["exists"] = row is not None
            if row:
                result["size_bytes"], result["sessions"] = row
                result["tables"] = self.count_tables(p["database"], tables)
        if p["list_pattern"]:
            try:
                pattern = re.compile(p["list_pattern"])
            except re.error as exc:
                self.fail("list_pattern is not a valid regular expression: %s" % exc)
            rows = conn.execute("SELECT datname, pg_database_size(oid), shobj_description(oid, 'pg_database') "
                                "FROM pg_database ORDER BY datname").fetchall()
            result["databases"] = [{"name": n, "size_bytes": s, "comment": c} for n, s, c in rows if pattern.search(n)]
        if p["tools"] == "local" or p.get("container") or p.get("compose_project"):
            try:
                result["free_bytes"] = self.free_bytes(make_runner(p))
            except ToolError:
                result["free_bytes"] = None
        self.module.exit_json(**json_safe(result))


class RestoreFailed(Exception):
    def __init__(self, msg, tables=None):
        super().__init__(msg)
        self.tables = tables


def main():
    module = MarketplaceModule(argument_spec=build_argument_spec(), supports_check_mode=True)
    validate_common(module)
    require_psycopg(module)
    p = module.params
    if p["jobs"] is not None and p["jobs"] < 1:
        module.fail_json(msg="jobs must be at least 1")
    restorer = Restorer(module)
    try:
        getattr(restorer, p["action"])()
    except Exception as exc:  # e.g. the admin session lost before anything was changed: a message, no traceback
        restorer.fail("action=%s failed: %s" % (p["action"], error_message(exc, restorer.pw)))


if __name__ == "__main__":
    main()
