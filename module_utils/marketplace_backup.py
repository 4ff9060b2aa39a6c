# Shared code of the Equipment Marketplace backup modules (backup_dump, backup_catalog, backup_restore,
# backup_s3): backup names and the on-disk layout, manifests, SHA-256, advisory file locks, retention
# (keep last / daily / weekly) and the runner that executes PostgreSQL client tools either inside the
# postgres container (Docker SDK exec, peer authentication on the local socket) or on the host.
# Imported by modules as `from ansible.module_utils.marketplace_backup import ...`.
#
# Layout of a backup directory (one backup = three files; the manifest is written last and is the
# commit marker: nothing without a manifest is ever taken as a backup):
#   <db>-<YYYYmmddTHHMMSSZ>[-<n>].dump             pg_dump -Fc archive
#   <db>-<YYYYmmddTHHMMSSZ>[-<n>].dump.sha256      "<hex>  <file>" (sha256sum -c format)
#   <db>-<YYYYmmddTHHMMSSZ>[-<n>].manifest.json    time, database, sizes, versions, row counts, checksum
#   .partial-<name>.<suffix>.<random>              work in progress; never looked at, removed when stale
from __future__ import annotations

import datetime
import errno
import fcntl
import hashlib
import json
import os
import re
import shlex
import subprocess
import tempfile
import time

from ansible.module_utils.basic import env_fallback

DUMP_SUFFIX = ".dump"
SUM_SUFFIX = ".dump.sha256"
MANIFEST_SUFFIX = ".manifest.json"
TEMP_PREFIX = ".partial-"
MANIFEST_FORMAT = 1
STAMP_FORMAT = "%Y%m%dT%H%M%SZ"
NAME_RE = re.compile(r"^(?P<db>[A-Za-z0-9_][A-Za-z0-9_.\-]*?)-(?P<stamp>\d{8}T\d{6}Z)(?:-(?P<seq>\d{1,4}))?$")
HASH_CHUNK = 4 * 1024 * 1024

DEFAULT_COUNT_TABLES = ["users", "equipment_listings", "orders", "payments", "api_keys", "audit_events"]


# --------------------------------------------------------------------------------------------------------
# Names


def utcnow():
    return datetime.datetime.now(datetime.UTC).replace(microsecond=0)


def parse_name(name):
    """``(db, datetime, seq)`` of a backup name (without suffix), or None when it is not one."""
    m = NAME_RE.match(name or "")
    if not m:
        return None
    try:
        stamp = datetime.datetime.strptime(m.group("stamp"), STAMP_FORMAT).replace(tzinfo=datetime.UTC)
    except ValueError:
        return None
    return m.group("db"), stamp, int(m.group("seq") or 0)


def normalize_name(value, directory=None):
    """A backup name from what an operator typed: a name, a file name or a path of a backup file.

    Raises ValueError for anything that is not a backup name (temp names, ``..``) and, when ``directory`` is
    given, for a path whose directory is not ``directory`` (a backup is only ever taken from the backup
    directory, never from where a path points).
    """
    text = (value or "").strip()
    if ".." in text.split("/") or "\0" in text:
        raise ValueError("%r is not a backup name: '..' is not allowed in a backup name or path" % text)
    if "/" in text:
        where = os.path.dirname(text)
        if directory is None or os.path.realpath(where) != os.path.realpath(directory):
            raise ValueError("%r is a path outside the backup directory%s: give the backup's name "
                             "(<database>-<YYYYmmddTHHMMSSZ>)" % (text, " %s" % directory if directory else ""))
    base = os.path.basename(text)
    for suffix in (MANIFEST_SUFFIX, SUM_SUFFIX, DUMP_SUFFIX):
        if base.endswith(suffix):
            base = base[: -len(suffix)]
            break
    if not base or base.startswith(".") or parse_name(base) is None:
        raise ValueError("%r is not a backup name (expected <database>-<YYYYmmddTHHMMSSZ>, e.g. "
                         "equipment_marketplace-20250101T020000Z)" % text)
    return base


def new_name(directory, database, when=None):
    """A fresh backup name in ``directory`` for ``database`` (a -<n> suffix when the second is taken)."""
    when = when or utcnow()
    base = "%s-%s" % (database, when.strftime(STAMP_FORMAT))
    name, seq = base, 0
    while any(os.path.lexists(os.path.join(directory, name + s)) for s in (DUMP_SUFFIX, MANIFEST_SUFFIX, SUM_SUFFIX)):
        seq += 1
        name = "%s-%d" % (base, seq)
    return name


def paths(directory, name):
    return {
        "dump": os.path.join(directory, name + DUMP_SUFFIX),
        "sha256": os.path.join(directory, name + SUM_SUFFIX),
        "manifest": os.path.join(directory, name + MANIFEST_SUFFIX),
    }


def sort_key(entry):
    return (entry["time"], entry["seq"], entry["name"])


# --------------------------------------------------------------------------------------------------------
# Files


def sha256_file(path, fileobj=None):
    """Hex SHA-256 and size of a file (or of an already open binary file object, read from the start)."""
    digest = hashlib.sha256()
    size = 0
    handle = fileobj if fileobj is not None else open(path, "rb")
    try:
        handle.seek(0)
        while True:
            chunk = handle.read(HASH_CHUNK)
            if not chunk:
                break
            digest.update(chunk)
            size += len(chunk)
    finally:
        if fileobj is None:
            handle.close()
    return digest.hexdigest(), size


def fsync_dir(directory):
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_temp(directory, name, suffix, data, mode=0o600):
    """Write ``data`` (str) to a fsynced temp file in ``directory``; return its path (rename it to commit).

    The file is created 0600 (mkstemp); it is changed to ``mode`` only when another mode is asked for.
    """
    fd, tmp = tempfile.mkstemp(prefix="%s%s%s." % (TEMP_PREFIX, name, suffix), dir=directory)
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        if mode != 0o600:
            os.chmod(tmp, mode)
    except BaseException:
        _unlink_quiet(tmp)
        raise
    return tmp


def _unlink_quiet(path):
    try:
        os.unlink(path)
    except OSError:
        pass


def try_lock(path, shared=False):
    """An open fd holding a non-blocking flock on ``path``, or None when another process holds it."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return None
    try:
        fcntl.flock(fd, (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | fcntl.LOCK_NB)
        return fd
    except OSError as exc:
        os.close(fd)
        if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
            return None
        raise


def release(fd):
    if fd is not None:
        try:
            os.close(fd)
        except OSError:
            pass


def read_manifest(path):
    with open(path) as handle:
        data = json.load(handle)
    if not isinstance(data, dict):
        raise ValueError("manifest is not a JSON object")
    return data


def read_sum_file(path):
    """The hex digest of a ``sha256sum`` line, or None."""
    try:
        with open(path) as handle:
            first = handle.read(4096).split()
    except OSError:
        return None
    if first and re.fullmatch(r"[0-9a-f]{64}", first[0]):
        return first[0]
    return None


# --------------------------------------------------------------------------------------------------------
# Catalogue


def scan(directory, database=None):
    """Backups and leftovers in ``directory``.

    Returns ``(entries, leftovers)``. An entry is a committed backup: a parseable name with a manifest
    (the commit marker) - whether its dump is present and sound is for the verifier to say. Leftovers are
    temp files of unfinished runs and backup files without a manifest; they are never entries.
    """
    entries, leftovers = [], []
    try:
        names = os.listdir(directory)
    except FileNotFoundError:
        return [], []
    present = set(names)
    for fname in names:
        full = os.path.join(directory, fname)
        if fname.startswith(TEMP_PREFIX):
            leftovers.append({"file": fname, "path": full, "kind": "temp"})
            continue
        if fname.startswith("."):
            continue
        for suffix, kind in ((MANIFEST_SUFFIX, "manifest"), (SUM_SUFFIX, "sha256"), (DUMP_SUFFIX, "dump")):  # noqa: B007
            if fname.endswith(suffix):
                stem = fname[: -len(suffix)]
                break
        else:
            continue
        parsed = parse_name(stem)
        if parsed is None:
            continue
        if database and parsed[0] != database:
            continue
        if kind == "manifest":
            dump = stem + DUMP_SUFFIX
            entries.append({
                "name": stem, "database": parsed[0], "time": parsed[1], "seq": parsed[2],
                "created": parsed[1].strftime("%Y-%m-%dT%H:%M:%SZ"),
                "dump_present": dump in present,
                "size_bytes": _size(os.path.join(directory, dump)) if dump in present else None,
                "paths": paths(directory, stem),
            })
        elif stem + MANIFEST_SUFFIX not in present:
            leftovers.append({"file": fname, "path": full, "kind": "no_manifest"})
    entries.sort(key=sort_key, reverse=True)
    leftovers.sort(key=lambda x: x["file"])
    return entries, leftovers


def _size(path):
    try:
        return os.stat(path).st_size
    except OSError:
        return None


def public_entry(entry):
    """An entry without the datetime (JSON-safe)."""
    return {k: v for k, v in entry.items() if k not in ("time", "seq")}


def clean_leftovers(leftovers, min_age_s=0.0, check_mode=False):
    """Remove leftovers that no running backup holds (flock) and that are at least ``min_age_s`` old.

    Returns ``(removed, kept)`` lists of file names (``kept`` with the reason).
    """
    removed, kept = [], []
    now = time.time()
    for item in leftovers:
        path = item["path"]
        try:
            age = now - os.stat(path).st_mtime
        except OSError:
            continue
        if age < min_age_s:
            kept.append({"file": item["file"], "reason": "younger than %ds" % min_age_s})
            continue
        fd = try_lock(path)
        if fd is None:
            kept.append({"file": item["file"], "reason": "in use by a running backup"})
            continue
        try:
            if not check_mode:
                os.unlink(path)
            removed.append(item["file"])
        except OSError as exc:
            kept.append({"file": item["file"], "reason": "cannot remove: %s" % (exc.strerror or exc)})
        finally:
            release(fd)
    return removed, kept


# --------------------------------------------------------------------------------------------------------
# Retention


def retention(entries, keep_last=1, keep_daily=7, keep_weekly=4):
    """Which entries to keep (GFS, restic-style) and why.

    ``entries`` need ``name`` and ``time`` (aware UTC datetime). Keeps the ``keep_last`` newest; for the
    ``keep_daily`` most recent UTC days that have backups, the newest backup of each day; for the
    ``keep_weekly`` most recent ISO weeks that have backups, the newest of each week. Days and weeks
    without backups do not count, so stopping backups never deletes the last ones.
    Returns ``(keep, drop)``: ``keep`` maps name -> list of reasons, ``drop`` is a list of names.
    """
    ordered = sorted(entries, key=lambda e: (e["time"], e.get("seq", 0), e["name"]), reverse=True)
    keep = {}
    for entry in ordered[: max(keep_last, 0)]:
        keep.setdefault(entry["name"], []).append("last")
    for label, limit, bucket in (("daily", keep_daily, lambda t: t.date().isoformat()),
                                 ("weekly", keep_weekly, lambda t: "%d-W%02d" % t.isocalendar()[:2])):
        seen = []
        for entry in ordered:
            key = bucket(entry["time"])
            if key in seen:
                continue
            seen.append(key)
            if len(seen) > limit:
                break
            keep.setdefault(entry["name"], []).append("%s %s" % (label, key))
    drop = [e["name"] for e in ordered if e["name"] not in keep]
    return keep, drop


def remove_backup(directory, name, check_mode=False):
    """Delete one backup: manifest first (it stops being a backup), then checksum, then dump.

    Skips (returns a reason) when a restore holds a lock on the dump.
    """
    p = paths(directory, name)
    fd = None
    if os.path.exists(p["dump"]):
        fd = try_lock(p["dump"])
        if fd is None:
            return "in use (a restore or drill is reading it)"
    try:
        if not check_mode:
            for key in ("manifest", "sha256", "dump"):
                _unlink_quiet(p[key])
    finally:
        release(fd)
    return None


# --------------------------------------------------------------------------------------------------------
# Running the PostgreSQL client tools


class ToolError(Exception):
    """A tool could not be run at all (container missing, daemon down, binary missing)."""


def tail(text, lines=8, limit=1500):
    text = (text or "").strip()
    out = "\n".join(text.splitlines()[-lines:])
    return out[-limit:]


class LocalRunner:
    """Client tools on this host, connecting over TCP with the password in PGPASSWORD."""

    kind = "local"

    def __init__(self, params, bin_dir=None):
        self.params = params
        self.bin_dir = bin_dir

    def conn_args(self):
        p = self.params
        args = []
        if p.get("login_host"):
            args += ["-h", p["login_host"]]
        if p.get("login_port"):
            args += ["-p", str(p["login_port"])]
        if p.get("login_user"):
            args += ["-U", p["login_user"]]
        return args

    def tool(self, name):
        return os.path.join(self.bin_dir, name) if self.bin_dir else name

    def path(self, host_path):
        return host_path

    def run(self, argv, appname=None, timeout=None):
        env = dict(os.environ)
        if self.params.get("login_password"):
            env["PGPASSWORD"] = self.params["login_password"]
        if self.params.get("ssl_mode"):
            env["PGSSLMODE"] = self.params["ssl_mode"]
        if appname:
            env["PGAPPNAME"] = appname
        argv = [self.tool(argv[0]), *argv[1:]]
        try:
            proc = subprocess.run(argv, env=env, capture_output=True, timeout=timeout, check=False)
        except FileNotFoundError as exc:
            raise ToolError("%s is not installed on this host (set pg_bin_dir, or run the tools in the "
                            "postgres container)" % argv[0]) from exc
        except subprocess.TimeoutExpired:
            return 124, b"", ("%s did not finish within %ss" % (argv[0], timeout)).encode()
        return proc.returncode, proc.stdout, proc.stderr

    def free_bytes(self, path):
        try:
            st = os.statvfs(path)
        except OSError:
            return None
        return st.f_bavail * st.f_frsize

    def describe(self):
        return "on this host (%s)" % " ".join(shlex.quote(a) for a in self.conn_args())


class ContainerRunner:
    """Client tools inside the postgres container: the server's own binaries (same version), connecting
    over the local socket with peer authentication (no password on any command line or environment)."""

    kind = "container"

    def __init__(self, params, docker_host, container=None, project=None, service="postgres",
                 exec_user="root", db_user="postgres", socket_dir=None, container_dir=None, api_timeout=30):
        try:
            import docker  # noqa: F401 - the import is the check
        except ImportError as exc:
            raise ToolError("the Docker SDK for Python (docker >= 7.1) is needed to run the PostgreSQL tools "
                            "in the container") from exc
        import docker as docker_sdk

        self.params = params
        self.exec_user = exec_user
        self.db_user = db_user
        self.socket_dir = socket_dir
        self.container_dir = container_dir
        self._docker_host = docker_host
        try:
            self.api = docker_sdk.APIClient(base_url=docker_host, version="auto", timeout=api_timeout)
            self.container = self._find(container, project, service)
        except ToolError:
            raise
        except Exception as exc:
            raise ToolError("cannot talk to the Docker daemon at %s: %s" % (docker_host, _short(exc))) from exc
        self.container_id = self.container["Id"]
        self.container_name = (self.container.get("Names") or ["?"])[0].lstrip("/")
        self._mounts = None

    def _find(self, container, project, service):
        if container:
            found = self.api.containers(all=True, filters={"name": container})
            found = [c for c in found if container in [n.lstrip("/") for n in c.get("Names", [])]
                     or c.get("Id", "").startswith(container)]
            what = "container %s" % container
        else:
            labels = ["com.docker.compose.project=%s" % project, "com.docker.compose.service=%s" % service]
            found = self.api.containers(all=True, filters={"label": labels})
            what = "service %s of compose project %s" % (service, project)
        running = [c for c in found if c.get("State") == "running"]
        if not running:
            state = ", ".join(sorted({c.get("State", "?") for c in found})) or "no container"
            raise ToolError("the postgres %s is not running (%s)" % (what, state))
        return running[0]

    def port(self):
        return self.params.get("container_port") or self.params.get("login_port")

    def conn_args(self):
        args = []
        if self.socket_dir:
            args += ["-h", self.socket_dir]
        if self.port():
            args += ["-p", str(self.port())]
        args += ["-U", self.db_user]
        return args

    def mounts(self):
        if self._mounts is None:
            info = self.api.inspect_container(self.container_id)
            self._mounts = [(m.get("Source"), m.get("Destination")) for m in info.get("Mounts", [])
                            if m.get("Source") and m.get("Destination")]
        return self._mounts

    def path(self, host_path):
        """Where ``host_path`` (a file in the backup directory) is inside the container."""
        directory = os.path.dirname(host_path)
        if self.container_dir:
            return os.path.join(self.container_dir, os.path.basename(host_path))
        real = os.path.realpath(directory)
        best = None
        for source, dest in self.mounts():
            src = os.path.realpath(source)
            if real == src or real.startswith(src.rstrip("/") + "/"):
                if best is None or len(src) > len(best[0]):
                    best = (src, dest)
        if best is None:
            raise ToolError("the postgres container %s does not mount %s (mounts: %s); mount the backup "
                            "directory into it, set container_dir, or run the tools on the host (tools=local)"
                            % (self.container_name, directory,
                               ", ".join("%s:%s" % m for m in self.mounts()) or "none"))
        rel = os.path.relpath(real, best[0])
        cdir = best[1] if rel == "." else os.path.join(best[1], rel)
        return os.path.join(cdir, os.path.basename(host_path))

    def tool(self, name):
        return name

    def run(self, argv, appname=None, timeout=None):
        env = ["PGAPPNAME=%s" % appname] if appname else []
        if self.port():
            env.append("PGPORT=%s" % self.port())
        try:
            import docker as docker_sdk

            # A long dump sends nothing on the exec stream until it ends: the socket timeout must cover it.
            api = docker_sdk.APIClient(base_url=self._docker_host, version="auto",
                                       timeout=(timeout or 3600) + 30)
            exec_id = api.exec_create(self.container_id, list(argv), stdout=True, stderr=True,
                                      user=self.exec_user, environment=env)["Id"]
            out, err = api.exec_start(exec_id, demux=True)
            rc = api.exec_inspect(exec_id).get("ExitCode")
            api.close()
        except Exception as exc:
            if "timed out" in str(exc).lower():
                return 124, b"", ("%s did not finish within %ss" % (argv[0], timeout)).encode()
            raise ToolError("cannot run %s in the container %s: %s"
                            % (argv[0], self.container_name, _short(exc))) from exc
        if rc is None:
            rc = -1
        return rc, out or b"", err or b""

    def free_bytes(self, path):
        rc, out, _err = self.run(["df", "-Pk", path], timeout=30)
        if rc != 0:
            return None
        lines = out.decode(errors="replace").strip().splitlines()
        try:
            return int(lines[-1].split()[3]) * 1024
        except (IndexError, ValueError):
            return None

    def describe(self):
        return "in container %s as %s (peer auth, %s)" % (self.container_name, self.db_user,
                                                          " ".join(self.conn_args()))


def _short(exc):
    text = str(exc) or exc.__class__.__name__
    return " ".join(text.split())[:300]


def runner_argument_spec():
    """Options of the modules that run pg_dump / pg_restore (documented in doc_fragments/marketplace_backup.py)."""
    return dict(
        tools=dict(type="str", default="container", choices=["container", "local"]),
        docker_host=dict(type="str", default="unix:///var/run/docker.sock", fallback=(env_fallback, ["DOCKER_HOST"])),
        compose_project=dict(type="str", default="equipment-marketplace"),
        postgres_service=dict(type="str", default="postgres"),
        container=dict(type="str"),
        container_dir=dict(type="str"),
        container_db_user=dict(type="str", default="postgres"),
        container_exec_user=dict(type="str", default="root"),
        container_socket_dir=dict(type="str"),
        container_port=dict(type="int"),
        pg_bin_dir=dict(type="path"),
        tool_timeout=dict(type="int", default=3600),
    )


def make_runner(params):
    if params["tools"] == "local":
        return LocalRunner(params, bin_dir=params.get("pg_bin_dir"))
    return ContainerRunner(params, params["docker_host"], container=params.get("container"),
                           project=params.get("compose_project"), service=params.get("postgres_service"),
                           exec_user=params.get("container_exec_user"), db_user=params.get("container_db_user"),
                           socket_dir=params.get("container_socket_dir"),
                           container_dir=params.get("container_dir"))


def parse_toc(text):
    """Facts from ``pg_restore -l`` output: header fields, entry count, tables with data."""
    header = {}
    entries = 0
    table_data = []
    for line in text.splitlines():
        if line.startswith(";"):
            m = re.match(r";\s+([A-Za-z][A-Za-z_ ]+?):\s*(.*)$", line)
            if m:
                header[m.group(1).strip().lower().replace(" ", "_")] = m.group(2).strip()
            continue
        if not line.strip():
            continue
        entries += 1
        m = re.match(r"^\d+;\s*\d+\s+\d+\s+TABLE DATA\s+(\S+)\s+(\S+)\s", line)
        if m:
            table_data.append("%s.%s" % (m.group(1), m.group(2)))
    return {"header": header, "entries": entries, "tables": sorted(table_data)}


def list_archive(runner, host_path, timeout=600):
    """Run ``pg_restore -l`` on a backup: ``(ok, facts_or_reason)``."""
    rc, out, err = runner.run([runner.tool("pg_restore"), "-l", runner.path(host_path)], timeout=timeout)
    if rc != 0:
        return False, "pg_restore -l failed (exit %s): %s" % (rc, tail(err.decode(errors="replace")) or "no output")
    facts = parse_toc(out.decode(errors="replace"))
    if facts["entries"] == 0:
        return False, "pg_restore -l lists no entries"
    return True, facts


def verify_file(entry, manifest=None):
    """Checksum verification of one catalogue entry against its manifest: ``(ok, reason, facts)``."""
    p = entry["paths"]
    if manifest is None:
        try:
            manifest = read_manifest(p["manifest"])
        except (OSError, ValueError) as exc:
            return False, "manifest unreadable: %s" % _short(exc), {}
    expected = manifest.get("sha256")
    expected_size = manifest.get("size_bytes")
    if not expected:
        return False, "manifest has no sha256", {}
    if not os.path.exists(p["dump"]):
        return False, "dump file %s is missing" % os.path.basename(p["dump"]), {}
    fd = try_lock(p["dump"], shared=True)
    try:
        digest, size = sha256_file(p["dump"])
    except OSError as exc:
        return False, "cannot read the dump: %s" % (exc.strerror or exc), {}
    finally:
        release(fd)
    facts = {"sha256": digest, "size_bytes": size, "expected_sha256": expected, "expected_size_bytes": expected_size}
    side = read_sum_file(p["sha256"])
    if expected_size is not None and size != expected_size:
        kind = "truncated" if size < expected_size else "longer than recorded"
        return False, ("dump is %s: %d bytes on disk, the manifest records %d (sha256 %s..., expected %s...)"
                       % (kind, size, expected_size, digest[:12], expected[:12])), facts
    if digest != expected:
        return False, "checksum mismatch: sha256 %s..., the manifest records %s..." % (
            digest[:12], expected[:12]), facts
    if side is not None and side != expected:
        return False, "the .sha256 file (%s...) disagrees with the manifest (%s...)" % (side[:12], expected[:12]), facts
    return True, "sha256 and size (%d bytes) match the manifest" % size, facts
