# Shared PostgreSQL code for the Equipment Marketplace runbook modules: the connection argument spec (env
# fallbacks, password no_log), psycopg 3 connection with a short connect timeout, a READ ONLY transaction
# helper with `SET LOCAL statement_timeout`, and error messages that never carry a password or a bound value.
# Imported by modules as `from ansible.module_utils.marketplace_postgres import ...`.
from __future__ import annotations

import contextlib
import re
import time
import traceback

from ansible.module_utils.basic import env_fallback, missing_required_lib

PSYCOPG_IMPORT_ERROR = None
try:
    import psycopg
    from psycopg import sql
    from psycopg.conninfo import make_conninfo
    from psycopg.rows import dict_row
    HAS_PSYCOPG = True
except ImportError:  # pragma: no cover - depends on the target's Python environment
    psycopg = None
    sql = None
    make_conninfo = None
    dict_row = None
    HAS_PSYCOPG = False
    PSYCOPG_IMPORT_ERROR = traceback.format_exc()

MASK = "********"

# libpq ping answers (what pg_isready reports as exit codes 0..3).
PING_NAMES = {0: "accepting", 1: "rejecting", 2: "no_response", 3: "no_attempt"}


def postgres_common_argument_spec():
    """Connection options shared by every PostgreSQL module (documented in doc_fragments/marketplace_postgres.py)."""
    return dict(
        login_host=dict(type="str", default=None, aliases=["host"], fallback=(env_fallback, ["PGHOST"])),
        login_port=dict(type="int", default=5432, aliases=["port"], fallback=(env_fallback, ["PGPORT"])),
        login_user=dict(type="str", default="postgres", aliases=["user"], fallback=(env_fallback, ["PGUSER"])),
        login_password=dict(type="str", default=None, no_log=True, aliases=["password"],
                            fallback=(env_fallback, ["PGPASSWORD"])),
        login_db=dict(type="str", default="postgres", aliases=["db"],
                      fallback=(env_fallback, ["PGDATABASE"])),
        ssl_mode=dict(type="str", default="prefer",
                      choices=["disable", "allow", "prefer", "require", "verify-ca", "verify-full"]),
        ca_cert=dict(type="path", default=None, aliases=["ssl_rootcert"]),
        connect_timeout=dict(type="int", default=5),
        statement_timeout=dict(type="int", default=5000),
    )


def require_psycopg(module):
    """fail_json naming the missing library when psycopg 3 is not importable."""
    if not HAS_PSYCOPG:
        module.fail_json(msg=missing_required_lib("psycopg (psycopg 3, e.g. 'psycopg[binary]')"),
                         exception=PSYCOPG_IMPORT_ERROR)


def validate_common(module):
    """fail_json on impossible connection options (negative timeouts, bad port)."""
    p = module.params
    bad = [n for n in ("connect_timeout", "statement_timeout") if p.get(n) is not None and p[n] < 0]
    if bad:
        module.fail_json(msg="option(s) must not be negative: %s" % ", ".join(bad))
    if p.get("login_port") is not None and not 0 < p["login_port"] < 65536:
        module.fail_json(msg="login_port must be between 1 and 65535")


def secrets_of(params):
    """The values that must never appear in a message: the password."""
    return [params[k] for k in ("login_password",) if params.get(k)]


def scrub(text, secrets=()):
    """Replace every secret (password, bound value) in a text by a mask and fold it onto one line."""
    text = "" if text is None else str(text)
    for secret in sorted((str(s) for s in secrets if s not in (None, "")), key=len, reverse=True):
        text = text.replace(secret, MASK)
    # a password given in a conninfo or URL form, whatever it is
    text = re.sub(r"(password\s*=\s*)('(?:[^'\\]|\\.)*'|\S+)", r"\1" + MASK, text, flags=re.I)
    text = re.sub(r"(postgres(?:ql)?://[^:/@\s]*:)[^@\s]*@", r"\1" + MASK + "@", text)
    return " ".join(part.strip() for part in text.splitlines() if part.strip())


def error_message(exc, secrets=()):
    """A one-line description of a database error: class, SQLSTATE and the server's primary message.

    The statement text is never included; secrets and bound values passed in `secrets` are masked.
    """
    primary = None
    sqlstate = getattr(exc, "sqlstate", None)
    diag = getattr(exc, "diag", None)
    if diag is not None:
        try:
            primary = diag.message_primary
        except Exception:  # pragma: no cover - diag access on a broken result
            primary = None
    text = primary or str(exc) or exc.__class__.__name__
    prefix = exc.__class__.__name__
    if sqlstate:
        prefix += " (SQLSTATE %s)" % sqlstate
    return scrub("%s: %s" % (prefix, text), secrets)


def classify_connect_error(message):
    """A short machine-readable category for a connection failure message."""
    m = message.lower()
    if "password authentication failed" in m or "no password supplied" in m or "authentication failed" in m:
        return "authentication_failed"
    if "database" in m and "does not exist" in m:
        return "database_missing"
    if "role" in m and "does not exist" in m:
        return "role_missing"
    if "timeout expired" in m or "timed out" in m:
        return "timeout"
    if "connection refused" in m or "no such file or directory" in m or "could not translate host" in m:
        return "unreachable"
    if ("too many" in m and "connections" in m) or "remaining connection slots" in m:
        return "too_many_connections"
    if "starting up" in m or "shutting down" in m or "recovery" in m:
        return "not_accepting"
    if "pg_hba.conf" in m:
        return "rejected_by_hba"
    return "connection_failed"


def conninfo_kwargs(params, application_name):
    kwargs = dict(
        host=params.get("login_host"),
        port=params.get("login_port"),
        user=params.get("login_user"),
        password=params.get("login_password"),
        dbname=params.get("login_db"),
        connect_timeout=params.get("connect_timeout"),
        sslmode=params.get("ssl_mode"),
        sslrootcert=params.get("ca_cert"),
        application_name=application_name,
    )
    return {k: v for k, v in kwargs.items() if v not in (None, "")}


def ping(params):
    """libpq's PQpingParams (what pg_isready does): 'accepting', 'rejecting', 'no_response' or 'no_attempt'.

    It does not authenticate: 'accepting' is said even for a wrong password.
    """
    kwargs = conninfo_kwargs(params, "ansible-marketplace-ping")
    kwargs.pop("password", None)
    try:
        code = psycopg.pq.PGconn.ping(make_conninfo(**kwargs).encode())
    except Exception:  # pragma: no cover - malformed conninfo
        return "no_attempt"
    return PING_NAMES.get(int(code), "no_attempt")


class ConnectError(Exception):
    """A connection that could not be made; `reason` is safe to show, `category` is machine-readable."""

    def __init__(self, reason, category):
        super().__init__(reason)
        self.reason = reason
        self.category = category


def connect(params, application_name="ansible-marketplace", autocommit=True):
    """A psycopg 3 connection (autocommit by default) with the short connect timeout of the options.

    Raises ConnectError with a scrubbed, one-line reason on any failure.
    """
    try:
        return psycopg.connect(make_conninfo(**conninfo_kwargs(params, application_name)), autocommit=autocommit)
    except psycopg.Error as exc:
        reason = error_message(exc, secrets_of(params))
        raise ConnectError(reason, classify_connect_error(reason)) from None
    except Exception as exc:  # e.g. an invalid option value in the conninfo
        reason = scrub("%s: %s" % (exc.__class__.__name__, exc), secrets_of(params))
        raise ConnectError(reason, "connection_failed") from None


def set_local_timeouts(conn, statement_timeout_ms, lock_timeout_ms=None):
    """`SET LOCAL statement_timeout` (and lock_timeout) for the current transaction."""
    conn.execute(sql.SQL("SET LOCAL statement_timeout = {}").format(sql.Literal(int(statement_timeout_ms))))
    if lock_timeout_ms is not None:
        conn.execute(sql.SQL("SET LOCAL lock_timeout = {}").format(sql.Literal(int(lock_timeout_ms))))


@contextlib.contextmanager
def read_only_transaction(conn, statement_timeout_ms, lock_timeout_ms=None):
    """A READ ONLY transaction whose statements are limited by `SET LOCAL statement_timeout`.

    The connection must be in autocommit mode (as connect() makes it); the transaction is committed
    (nothing to commit: it is read-only) or rolled back on error.
    """
    with conn.transaction():
        conn.execute("SET TRANSACTION READ ONLY")
        set_local_timeouts(conn, statement_timeout_ms, lock_timeout_ms)
        yield conn


def set_session_timeouts(conn, statement_timeout_ms, lock_timeout_ms=None):
    """Session-level timeouts for a connection doing more than one transaction (admin modules)."""
    conn.execute("SELECT set_config('statement_timeout', %s, false)", (str(int(statement_timeout_ms)),))
    if lock_timeout_ms is not None:
        conn.execute("SELECT set_config('lock_timeout', %s, false)", (str(int(lock_timeout_ms)),))


def fetch_dicts(conn, query, args=None):
    """Run a query and return its rows as dicts."""
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(query, args)
        return cur.fetchall()


def truncate(text, length):
    """Query text cut to a sane length for results (None stays None)."""
    if text is None or not length or len(text) <= length:
        return text
    return text[: max(length - 3, 0)] + "..."


def elapsed_ms(started):
    return round((time.monotonic() - started) * 1000.0, 1)


def quote_qualified(name):
    """A psycopg.sql identifier from 'table' or 'schema.table' (split on the first unquoted dot).

    Double-quoted parts keep dots and case: '"My.Schema"."T"'. Raises ValueError on a malformed name.
    """
    return sql.Identifier(*[part for part in split_qualified(name) if part is not None])


_PART = r'(?:"(?:[^"]|"")+"|[^".\s]+)'
_QUALIFIED = re.compile(r"^\s*(%s)(?:\.(%s))?\s*$" % (_PART, _PART))


def split_qualified(name):
    """('schema', 'table') or (None, 'table') from a possibly quoted, possibly qualified name."""
    m = _QUALIFIED.match(name or "")
    if not m:
        raise ValueError("malformed table name")

    def unquote(part):
        if part.startswith('"'):
            return part[1:-1].replace('""', '"')
        return part.lower()

    first, second = m.group(1), m.group(2)
    if second is None:
        return (None, unquote(first))
    return (unquote(first), unquote(second))
