# Shared Redis code for the Equipment Marketplace runbook modules (redis_health, redis_keys):
# the common argument spec, one client factory (tests and other modules build clients the same way),
# connection-error classification and messages that never carry the password.
# Imported by modules as `from ansible.module_utils.marketplace_redis import ...`.
from __future__ import annotations

import contextlib
import traceback

from ansible.module_utils.basic import env_fallback, missing_required_lib

try:
    import redis
    from redis.backoff import NoBackoff
    from redis.retry import Retry
except ImportError:  # pragma: no cover - exercised by a test that hides redis-py
    redis = None
    REDIS_IMPORT_ERROR = traceback.format_exc()
    HAS_REDIS = False
else:
    REDIS_IMPORT_ERROR = None
    HAS_REDIS = True

REDIS_LIB = "redis (redis-py >= 5.0)"


def redis_argument_spec():
    """Connection options every Redis module takes (a fresh dict each call; doc_fragments/marketplace_redis.py)."""
    return dict(
        login_host=dict(type="str", default="localhost"),
        login_port=dict(type="int", default=6379),
        login_user=dict(type="str"),
        login_password=dict(type="str", no_log=True, fallback=(env_fallback, ["REDIS_PASSWORD"])),
        db=dict(type="int", default=0),
        tls=dict(type="bool", default=False),
        validate_certs=dict(type="bool", default=True),
        ca_certs=dict(type="path"),
        connect_timeout=dict(type="float", default=3.0),
        socket_timeout=dict(type="float", default=5.0),
    )


def validate_connection_params(module):
    """fail_json (nothing done yet) on connection options that cannot work."""
    p = module.params
    problems = []
    if not 1 <= p["login_port"] <= 65535:
        problems.append("login_port must be between 1 and 65535")
    if p["db"] < 0:
        problems.append("db must not be negative")
    for name in ("connect_timeout", "socket_timeout"):
        if p[name] <= 0:
            problems.append("%s must be greater than 0" % name)
    if problems:
        module.fail_json(msg="; ".join(problems))


def require_redis_lib(module):
    if not HAS_REDIS:
        module.fail_json(msg=missing_required_lib(REDIS_LIB), exception=REDIS_IMPORT_ERROR)


def redis_client(params, client_name=None, db=None):
    """Build a redis.Redis client from module params (does not connect yet).

    Short connect and socket timeouts, no automatic retries (an unreachable server must be reported
    quickly, not after three back-off rounds), RESP2 so that replies parse the same on redis-py 5..8,
    and binary replies (keys are bytes; callers decode for display).
    """
    kwargs = dict(
        host=params["login_host"],
        port=params["login_port"],
        db=params["db"] if db is None else db,
        username=params.get("login_user") or None,
        password=params.get("login_password") or None,
        socket_connect_timeout=params["connect_timeout"],
        socket_timeout=params["socket_timeout"],
        retry=Retry(NoBackoff(), 0),
        protocol=2,
        decode_responses=False,
        client_name=client_name,
    )
    if params.get("tls"):
        kwargs.update(ssl=True,
                      ssl_cert_reqs="required" if params.get("validate_certs", True) else "none",
                      ssl_check_hostname=bool(params.get("validate_certs", True)),
                      ssl_ca_certs=params.get("ca_certs"))
    return redis.Redis(**kwargs)


def safe_error(exc, params=None):
    """The text of an exception with any password from params blanked out."""
    text = str(exc) or exc.__class__.__name__
    password = (params or {}).get("login_password")
    if password:
        text = text.replace(password, "********")
    return text


def classify_error(exc):
    """A short kind for a redis-py exception: auth, timeout, connection, permission or error."""
    if redis is None:
        return "error"
    text = str(exc)
    if isinstance(exc, redis.exceptions.AuthenticationError) or text.startswith(("WRONGPASS", "NOAUTH")) \
            or "invalid password" in text or "invalid username-password" in text:
        return "auth"
    if isinstance(exc, redis.exceptions.NoPermissionError) or text.startswith("NOPERM"):
        return "permission"
    if isinstance(exc, redis.exceptions.TimeoutError):
        return "timeout"
    if isinstance(exc, redis.exceptions.ConnectionError):
        return "connection"
    return "error"


def describe_error(exc, params, action="connect to"):
    """One-line message for a failed Redis call, naming the endpoint, never the password."""
    where = "%s:%s" % (params["login_host"], params["login_port"])
    kind = classify_error(exc)
    text = safe_error(exc, params)
    if kind == "auth":
        return "authentication to Redis at %s failed (check login_user/login_password or REDIS_PASSWORD): %s" \
            % (where, text)
    if kind == "timeout":
        return "timed out trying to %s Redis at %s: %s" % (action, where, text)
    if kind == "connection":
        return "cannot %s Redis at %s: %s" % (action, where, text)
    if kind == "permission":
        return "Redis at %s refused the command (ACL): %s" % (where, text)
    return "Redis at %s answered with an error: %s" % (where, text)


def connect(params, client_name=None):
    """Connect and PING. Returns (client, None) or (None, (kind, message)) without raising."""
    client = None
    try:
        client = redis_client(params)
        client.ping()
    except Exception as exc:  # redis errors, ssl errors, bad hostnames: all become a reason
        if client is not None:
            with contextlib.suppress(Exception):  # closing a half-open client must not mask the reason
                client.close()
        return None, (classify_error(exc), describe_error(exc, params))
    if client_name:
        # Best effort, after the connection works: an ACL user without CLIENT SETNAME can still be served.
        with contextlib.suppress(Exception):
            client.client_setname(client_name)
    return client, None


def decode_key(key, limit=200):
    """A key (bytes) as display text: undecodable bytes escaped, very long keys shortened."""
    if isinstance(key, (bytes, bytearray)):
        text = bytes(key).decode("utf-8", errors="backslashreplace")
    else:
        text = str(key)
    if len(text) > limit:
        text = text[:limit] + "...(%d chars)" % len(text)
    return text


# ---------- key patterns and prefixes (pure functions: no Redis needed; the central input check may reuse them) ----

PREFIX_SEPARATOR = ":"


def parse_glob(pattern):
    """Tokenise a Redis glob. Returns (tokens, error). Tokens: ('*',), ('?',), ('[', text), ('lit', ch).

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


def literal_prefix(tokens):
    """The literal text before the first wildcard ('*', '?' or a '[...]' class)."""
    out = []
    for token in tokens:
        if token[0] != "lit":
            break
        out.append(token[1])
    return "".join(out)


def literal_key(tokens):
    """The key name when the pattern has no wildcard, else None."""
    if all(t[0] == "lit" for t in tokens):
        return "".join(t[1] for t in tokens)
    return None


def pattern_refusal(pattern, db=None, allow_all=False):
    """Why a delete pattern is refused, or None when it may run. Malformed patterns are always refused.

    The rule: a pattern needs a literal key prefix with at least one letter or digit before its first wildcard
    ('cache:*', 'c*', 'session:abc'), so that it names what it deletes. Without one ('', '*', '**', '?*', '*:*',
    '[a-z]*', ':*', '*session*') it can match the keys of every prefix in the database, and is refused unless
    allow_all is set. A pattern without wildcards is one literal key; a key name without a letter or digit
    ('\\*' is the key named '*', the wildcard escaped) is almost always a mistyped wildcard and is refused too.
    """
    where = "database %s" % db if db is not None else "the database"
    tokens, error = parse_glob(pattern)
    if error:
        return "malformed pattern %r: %s; nothing was deleted" % (pattern, error)
    if allow_all:
        return None
    prefix = literal_prefix(tokens)
    if any(ch.isalnum() for ch in prefix):
        return None
    key = literal_key(tokens)
    if key:
        return ("pattern %r is the literal key %r (a backslash makes the next character literal), a name without "
                "a letter or digit; nothing was deleted. If you meant a glob, name the key prefix before the "
                "wildcard (for example 'cache:*'); to delete exactly that key set allow_all: true"
                % (pattern, key))
    return ("pattern %r has no literal key prefix with a letter or digit before its first wildcard, so it can match "
            "keys of every prefix in %s (sessions, rate limits, config); nothing was deleted. Name the prefix "
            "(for example 'cache:*'), or set allow_all: true to delete every key it matches (or flush the "
            "database)" % (pattern, where))


def key_prefix(key):
    """The prefix of a key (bytes or str): the text before the first ':', or the whole name when it has none."""
    if isinstance(key, (bytes, bytearray)):
        head = bytes(key).split(PREFIX_SEPARATOR.encode(), 1)[0]
    else:
        head = str(key).split(PREFIX_SEPARATOR, 1)[0]
    return decode_key(head, limit=64)


class PrefixCounter:
    """Keys per prefix, with a bound on the distinct prefixes kept (names of keys without ':' can be many)."""

    def __init__(self, limit=10000):
        self.counts = {}
        self.limit = limit
        self.overflow = 0  # keys whose prefix was not kept (more than `limit` distinct prefixes)

    def add(self, key):
        prefix = key_prefix(key)
        if prefix in self.counts:
            self.counts[prefix] += 1
        elif len(self.counts) < self.limit:
            self.counts[prefix] = 1
        else:
            self.overflow += 1

    def top(self, n=50):
        """({prefix: count} of the n largest, largest first, then by name; number of further prefixes)."""
        ordered = sorted(self.counts.items(), key=lambda kv: (-kv[1], kv[0]))
        return dict(ordered[:n]), max(0, len(ordered) - n) + (1 if self.overflow else 0)


class DistinctKeys:
    """SCAN may return a key more than once: first(key) is True the first time a key is seen. At most ``limit``
    keys are remembered; past that every key counts again and ``exact`` turns False."""

    def __init__(self, limit=1000000):
        self.seen, self.exact, self.limit = set(), True, limit

    def first(self, key):
        if not self.exact:
            return True
        if key in self.seen:
            return False
        self.seen.add(key)
        if len(self.seen) > self.limit:
            self.exact, self.seen = False, set()
        return True


def format_prefixes(counts, limit=10):
    """'cache: 1200, session: 40' (largest first), ' and N more' past limit; 'none' when empty."""
    if not counts:
        return "none"
    ordered = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    text = ", ".join("%s: %d" % kv for kv in ordered[:limit])
    if len(ordered) > limit:
        text += " and %d more prefix(es)" % (len(ordered) - limit)
    return text
