# Validation of the library's public extra vars (the names AWX surveys and job templates use).
#
# One place says which extra vars each playbook takes and what a valid value is. Three users:
# - action_plugins/validate_inputs.py: the first task of every playbook; refuses bad input before anything runs;
# - runbook/cli.py: types `-e key=value` the way this spec says (booleans) and refuses bad input with exit code 5
#   before ansible-playbook starts;
# - modules and filters that take the same values (a cache pattern, a database name, a version) and must refuse
#   them on their own as well.
# Pure Python, no Ansible import: controller plugins, AnsiballZ modules and the CLI all load it.
from __future__ import annotations

import datetime
import ipaddress
import re
import time

__all__ = [
    "INPUTS",
    "PLAYBOOK_INPUTS",
    "InputError",
    "changes_state",
    "describe_inputs",
    "parse_bool",
    "parse_int",
    "parse_int_list",
    "parse_name_list",
    "refusal",
    "task_argument_spec",
    "typed_value",
    "validate_api_key_selection",
    "validate_backup_name",
    "validate_block_ips",
    "validate_choice",
    "validate_db_name",
    "validate_inputs",
    "validate_redis_pattern",
    "validate_regex",
    "validate_tail",
    "validate_time",
    "validate_version",
]


class InputError(ValueError):
    """A public input that cannot be used; the message is one line, fit for the operator."""


TRUE_WORDS = ("true", "yes", "on", "1", "y")
FALSE_WORDS = ("false", "no", "off", "0", "n")


def _shown(value, limit=60):
    text = repr(value) if not isinstance(value, str) else "'%s'" % value
    return text if len(text) <= limit else text[:limit] + "...'"


def parse_bool(value, name="value"):
    """true/false as YAML 1.1 and ansible's `bool` filter read them; anything else is refused (no silent false)."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        word = value.strip().lower()
        if word in TRUE_WORDS:
            return True
        if word in FALSE_WORDS:
            return False
    raise InputError("%s must be true or false (got %s)" % (name, _shown(value)))


def parse_int(value, name="value", minimum=None, maximum=None):
    """A whole number given as an int or as digits; booleans, floats and '2.0' are refused."""
    if isinstance(value, bool) or value is None:
        raise InputError("%s must be a whole number (got %s)" % (name, _shown(value)))
    if isinstance(value, int):
        number = value
    elif isinstance(value, str) and re.fullmatch(r"\s*[+-]?\d+\s*", value):
        number = int(value)
    else:
        raise InputError("%s must be a whole number (got %s)" % (name, _shown(value)))
    if minimum is not None and number < minimum:
        raise InputError("%s must be at least %d (got %d)" % (name, minimum, number))
    if maximum is not None and number > maximum:
        raise InputError("%s must be at most %d (got %d)" % (name, maximum, number))
    return number


def _as_items(value, name):
    """A list, or a comma-separated string (what `-e name=a,b` gives)."""
    if isinstance(value, str):
        items = value.split(",")
    elif isinstance(value, (list, tuple)):
        items = list(value)
    else:
        raise InputError("%s must be a list or a comma-separated string (got %s)" % (name, _shown(value)))
    return items


SERVICE_NAME = re.compile(r"[a-zA-Z0-9][a-zA-Z0-9_.-]{0,62}")


def parse_name_list(value, name="services", pattern=SERVICE_NAME):
    """Names (compose services): no empty entry, no duplicates, each a plain name."""
    out = []
    for item in _as_items(value, name):
        if not isinstance(item, str) or not item.strip():
            raise InputError("%s has an empty entry (got %s)" % (name, _shown(value)))
        item = item.strip()
        if not pattern.fullmatch(item):
            raise InputError("%s entry %s is not a valid name" % (name, _shown(item)))
        if item not in out:
            out.append(item)
    return out


def parse_int_list(value, name="pids", minimum=1):
    return [parse_int(item, "%s entry" % name, minimum=minimum) for item in _as_items(value, name)]


# Image tags (docker's own rule: [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}) and git refs of that shape.
VERSION = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")


def validate_version(value, name="version"):
    if not isinstance(value, str) or isinstance(value, bool):
        raise InputError("%s must be a string such as 1.2.0 (got %s); quote numbers in YAML" % (name, _shown(value)))
    text = value.strip()
    if not VERSION.fullmatch(text) or ".." in text:
        raise InputError("%s %s is not a valid image tag: 1 to 128 of A-Z a-z 0-9 _ . -, not starting with . or -, "
                         "no '..'" % (name, _shown(text)))
    return text


# Backup names as db-backup writes them: a file name in the backup directory, never a path.
BACKUP_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.+-]{0,199}")


def validate_backup_name(value, name="backup"):
    if not isinstance(value, str):
        raise InputError("%s must be a backup file name (got %s)" % (name, _shown(value)))
    text = value.strip()
    if "/" in text or "\\" in text or text.startswith(".") or ".." in text or not BACKUP_NAME.fullmatch(text):
        raise InputError("%s %s is not a backup name: give the file name as db-backup lists it (no directory, "
                         "no '..', no absolute path)" % (name, _shown(text)))
    return text


# Unquoted PostgreSQL identifiers we create ourselves: lower case, at most 63 bytes (NAMEDATALEN - 1).
DB_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")
RESERVED_DATABASES = ("postgres", "template0", "template1")


def validate_db_name(value, name="database", live=None):
    if not isinstance(value, str) or not value.strip():
        raise InputError("%s must be a database name (got %s)" % (name, _shown(value)))
    text = value.strip()
    if len(text) > 63:
        raise InputError("%s is %d characters long; PostgreSQL names have at most 63" % (name, len(text)))
    if not DB_NAME.fullmatch(text):
        raise InputError("%s %s must be lower case letters, digits and _ (not starting with a digit)"
                         % (name, _shown(text)))
    if text in RESERVED_DATABASES:
        raise InputError("%s %s is a PostgreSQL system database" % (name, _shown(text)))
    if live and text == live:
        raise InputError("%s %s is the live database" % (name, _shown(text)))
    return text


# A Redis key prefix as the cache role counts them: the text before the first ':' (no wildcards, no spaces).
KEY_PREFIX = re.compile(r"[^\s*?\[\]\\:]{1,100}")
GLOB_SPECIAL = "*?["


def glob_literal_prefix(pattern):
    """The literal part of a Redis glob before its first unescaped wildcard (escapes resolved)."""
    out = []
    i = 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == "\\" and i + 1 < len(pattern):
            out.append(pattern[i + 1])
            i += 2
            continue
        if ch in GLOB_SPECIAL:
            break
        out.append(ch)
        i += 1
    return "".join(out)


def validate_redis_pattern(pattern, allow_all=False, name="pattern"):
    """A key pattern for SCAN MATCH + UNLINK: it must start with a literal key prefix (cache:listings:*).

    `*`, `**`, `*:*`, `?*`, `[a-z]*` and `\\*` reach (nearly) every key of the database: refused unless
    allow_all is true.
    """
    if not isinstance(pattern, str) or not pattern.strip():
        raise InputError("%s is required: a key pattern such as cache:listings:*" % name)
    if allow_all:
        return pattern
    prefix = glob_literal_prefix(pattern)
    if not re.search(r"[A-Za-z0-9]", prefix):
        raise InputError("%s %s has no literal key prefix before its first wildcard, so it reaches (nearly) every "
                         "key; give a prefix such as cache:listings:*, or set allow_all=true to mean all keys"
                         % (name, _shown(pattern)))
    return pattern


def validate_regex(value, name="pattern"):
    if not isinstance(value, str):
        raise InputError("%s must be a regular expression string (got %s)" % (name, _shown(value)))
    try:
        re.compile(value)
    except re.error as exc:
        raise InputError("%s %s is not a valid regular expression: %s" % (name, _shown(value), exc)) from None
    return value


RELATIVE = re.compile(r"(\d+(\.\d+)?(ns|us|ms|s|m|h|d|w))+")
# As compose_logs reads them (and docker logs --since/--until): seconds ago (300), a duration (15m, 1h30m, 7d), a
# Unix time (a number of 1,000,000,000 or more) or an ISO 8601 time. A time in the future is refused.
UNIX_TIME_FROM = 1_000_000_000
MAX_FUTURE_S = 86400


def validate_time(value, name="since", now=None):
    if isinstance(value, (datetime.datetime, datetime.date)):
        value = value.isoformat()
    if isinstance(value, bool) or value is None:
        raise InputError("%s must be a time (got %s)" % (name, _shown(value)))
    text = str(value).strip()
    if not text:
        raise InputError("%s is empty" % name)
    now = time.time() if now is None else now
    if text == "now" or RELATIVE.fullmatch(text):
        return text
    if re.fullmatch(r"\d+(\.\d+)?", text):
        stamp = float(text)
        if stamp >= UNIX_TIME_FROM and stamp > now + MAX_FUTURE_S:
            raise InputError("%s %s is a Unix time in the future (%s UTC)" % (name, text, _year_text(stamp)))
        return text
    try:
        parsed = datetime.datetime.fromisoformat(text.replace("Z", "+00:00") if text.endswith("Z") else text)
    except ValueError:
        raise InputError("%s %s is not a time: give seconds ago (300), a duration (15m, 24h, 7d), a Unix time or an "
                         "ISO 8601 time (2026-12-01T02:00:00Z)" % (name, _shown(text))) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=datetime.timezone.utc)  # noqa: UP017 (targets may run Python < 3.11)
    if parsed.timestamp() > now + MAX_FUTURE_S:
        raise InputError("%s %s is in the future" % (name, _shown(text)))
    return text


def _year_text(stamp):
    try:
        moment = datetime.datetime.fromtimestamp(stamp, datetime.timezone.utc)  # noqa: UP017 (targets: Python < 3.11)
        return moment.strftime("%Y-%m-%dT%H:%M:%S")
    except (OverflowError, OSError, ValueError):
        return "beyond year 9999"


def validate_tail(value, name="tail"):
    if isinstance(value, str) and value.strip().lower() == "all":
        return "all"
    return parse_int(value, name, minimum=0)


def validate_choice(value, choices, name):
    if not isinstance(value, str) or value not in choices:
        raise InputError("%s must be one of %s (got %s)" % (name, ", ".join(choices), _shown(value)))
    return value


def validate_block_ips(value, name="block_ips", min_prefix_v4=8, min_prefix_v6=32):
    """IP addresses and networks to block: no host names, zone ids, IPv4-mapped forms, loopback or catch-alls."""
    out = []
    for item in _as_items(value, name):
        if not isinstance(item, str) or not item.strip():
            raise InputError("%s has an empty entry (got %s)" % (name, _shown(value)))
        text = item.strip()
        if "%" in text:
            raise InputError("%s entry %s carries a zone id: give the address without %%<interface>" % (
                name, _shown(text)))
        try:
            net = ipaddress.ip_network(text, strict=False)
        except ValueError:
            raise InputError("%s entry %s is not an IP address or network (host names are not resolved)" % (
                name, _shown(text))) from None
        if net.version == 6 and net.network_address.ipv4_mapped is not None:
            raise InputError("%s entry %s is an IPv4-mapped address: give the IPv4 address itself" % (
                name, _shown(text)))
        if net.is_loopback or net.network_address.is_unspecified:
            raise InputError("%s entry %s is loopback or unspecified: refusing to block it" % (name, _shown(text)))
        if net.is_link_local:
            raise InputError("%s entry %s is link-local: refusing to block it" % (name, _shown(text)))
        minimum = min_prefix_v4 if net.version == 4 else min_prefix_v6
        if net.prefixlen < minimum:
            raise InputError("%s entry %s is wider than /%d: refusing to block so many addresses" % (
                name, _shown(text), minimum))
        if str(net) not in out:
            out.append(str(net))
    return out


API_KEY_ITEM = re.compile(r"[\x21-\x7e]{1,128}")
MIN_KEY_GLOB_PREFIX = 4


def validate_api_key_selection(value, name="revoke_api_keys"):
    """`all` alone, or key ids, key prefixes and prefix globs with a trailing * after at least 4 characters."""
    items = [i.strip() if isinstance(i, str) else i for i in _as_items(value, name)]
    if any(isinstance(i, str) and i.lower() == "all" for i in items):
        if len(items) > 1:
            raise InputError("%s: 'all' cannot be combined with other entries (got %s)" % (name, _shown(value)))
        return "all"
    out = []
    for item in items:
        if isinstance(item, int) and not isinstance(item, bool):
            item = str(item)
        if not isinstance(item, str) or not item:
            raise InputError("%s has an empty entry (got %s)" % (name, _shown(value)))
        if item.strip("*") == "":
            raise InputError("%s entry %s is a wildcard that selects every key: say %s=all"
                             % (name, _shown(item), name))
        if "*" in item[:-1] or "?" in item or "[" in item:
            raise InputError("%s entry %s has a wildcard other than one trailing *" % (name, _shown(item)))
        if item.endswith("*") and len(item) - 1 < MIN_KEY_GLOB_PREFIX:
            raise InputError("%s entry %s is too broad: a prefix glob needs at least %d characters before the * "
                             "(say %s=all to revoke every key)" % (name, _shown(item), MIN_KEY_GLOB_PREFIX, name))
        if not API_KEY_ITEM.fullmatch(item):
            raise InputError("%s entry %s is not a key id or key prefix" % (name, _shown(item)))
        if item not in out:
            out.append(item)
    return out


# The public extra vars: type (how the CLI types `-e key=value`), the check, and a one-line description.
INPUTS = {
    "confirm": dict(type="bool", check=lambda v: parse_bool(v, "confirm"),
                    description="act (true) instead of describing what would be done (false, the default)"),
    "allow_all": dict(type="bool", check=lambda v: parse_bool(v, "allow_all"),
                      description="let a cache pattern reach every key"),
    "force": dict(type="bool", check=lambda v: parse_bool(v, "force"), description="override a safety refusal"),
    "services": dict(type="list", check=lambda v: parse_name_list(v, "services"),
                     description="compose services (default: all)"),
    "since": dict(type="str", check=lambda v: validate_time(v, "since"),
                  description="log window start: seconds ago, a duration (15m, 7d), a Unix time or ISO 8601"),
    "until": dict(type="str", check=lambda v: validate_time(v, "until"), description="log window end (as since)"),
    "tail": dict(type="int", check=validate_tail, description="last N lines per service (or all)"),
    "logs_pattern": dict(type="str", check=lambda v: validate_regex(v, "pattern"),
                         description="regular expression the log lines must match"),
    "cache_pattern": dict(type="str", check=lambda v: validate_redis_pattern(v, True, "pattern"),
                          description="glob of the cache keys to delete (cache:listings:*)"),
    "include_prefixes": dict(type="list", check=lambda v: parse_name_list(v, "include_prefixes", KEY_PREFIX),
                             description="key prefixes besides the cache's that scope=cache_db may flush"),
    "scope": dict(type="str", check=lambda v: validate_choice(v, ("cache_db", "all"), "scope"),
                  description="cache_db (FLUSHDB ASYNC of the cache db) or all (FLUSHALL)"),
    "version": dict(type="str", check=validate_version, description="image tag to deploy or roll back to"),
    "backup": dict(type="str", check=validate_backup_name, description="backup file name (default: newest)"),
    "restore_into": dict(type="str", check=lambda v: validate_db_name(v, "restore_into"),
                         description="restore beside the live database into this new database"),
    "drop_replaced": dict(type="str", check=lambda v: validate_db_name(v, "drop_replaced"),
                          description="drop this database kept by an earlier restore"),
    "terminate": dict(type="str", check=lambda v: validate_choice(v, ("blockers", "long_running", "pids"),
                                                                  "terminate"),
                      description="which backends to end: blockers, long_running or pids"),
    "pids": dict(type="list", check=lambda v: parse_int_list(v, "pids"), description="backend pids (terminate=pids)"),
    "scale_backend": dict(type="int", check=lambda v: parse_int(v, "scale_backend", minimum=1),
                          description="backend replicas to run"),
    "block_ips": dict(type="list", check=validate_block_ips, description="addresses or networks to block"),
    "revoke_api_keys": dict(type="list", check=validate_api_key_selection,
                            description="API keys to revoke: all, or ids/prefixes"),
}

# Which extra vars each playbook takes (input name -> key of INPUTS when it differs).
PLAYBOOK_INPUTS = {
    "health-check": {},
    "view-logs": {"services": "services", "since": "since", "until": "until", "tail": "tail",
                  "pattern": "logs_pattern"},
    "db-status": {},
    "db-backup": {"confirm": "confirm"},
    "db-restore": {"confirm": "confirm", "backup": "backup", "restore_into": "restore_into",
                   "drop_replaced": "drop_replaced"},
    "emergency-restore": {"confirm": "confirm", "backup": "backup", "restore_into": "restore_into",
                          "drop_replaced": "drop_replaced"},
    "backup-verify": {"backup": "backup"},
    "cache-status": {},
    "cache-clear": {"confirm": "confirm", "pattern": "cache_pattern", "allow_all": "allow_all"},
    "cache-flush": {"confirm": "confirm", "scope": "scope", "include_prefixes": "include_prefixes"},
    "deploy": {"confirm": "confirm", "version": "version"},
    "rollback": {"confirm": "confirm", "version": "version"},
    "incident-p0": {"confirm": "confirm", "services": "services"},
    "incident-p1": {"confirm": "confirm", "scale_backend": "scale_backend"},
    "troubleshoot-startup": {},
    "troubleshoot-memory": {},
    "troubleshoot-cpu": {},
    "troubleshoot-db-connections": {"confirm": "confirm", "terminate": "terminate", "pids": "pids"},
    "ssl-check": {},
    "ssl-renew": {"confirm": "confirm"},
    "daily-maintenance": {"confirm": "confirm"},
    "weekly-maintenance": {"confirm": "confirm"},
    "monthly-maintenance": {"confirm": "confirm"},
    "emergency-recover": {"confirm": "confirm"},
    "emergency-security-breach": {"confirm": "confirm", "block_ips": "block_ips",
                                  "revoke_api_keys": "revoke_api_keys"},
}


def changes_state(playbook):
    """A playbook that takes `confirm` can change state."""
    return "confirm" in PLAYBOOK_INPUTS.get(playbook, {})


def validate_inputs(playbook, values):
    """Check the public extra vars given to a playbook. Returns (normalised, errors).

    values: name -> value, only the names that were given; None and "" count as not given. Unknown playbooks are
    an error; names the playbook does not take are not checked here (roles document their own options).
    """
    if playbook not in PLAYBOOK_INPUTS:
        return {}, ["unknown playbook %r (known: %s)" % (playbook, ", ".join(sorted(PLAYBOOK_INPUTS)))]
    normalised, errors = {}, []
    for name, key in PLAYBOOK_INPUTS[playbook].items():
        if name not in values:
            continue
        value = values[name]
        if value is None or (isinstance(value, str) and value == ""):
            continue  # empty = not given (role defaults of these names are empty strings)
        try:
            normalised[name] = INPUTS[key]["check"](value)
        except InputError as exc:
            errors.append(str(exc))
    if playbook == "troubleshoot-db-connections" and normalised.get("terminate") == "pids" and not values.get("pids"):
        errors.append("terminate=pids needs pids (e.g. -e pids=1234,5678)")
    if playbook == "cache-clear" and "pattern" in normalised and not normalised.get("allow_all", False):
        try:
            validate_redis_pattern(values["pattern"], False)
        except InputError as exc:
            errors.append(str(exc))
    return normalised, errors


def task_argument_spec():
    """The argument spec of the validate_inputs module and action."""
    return dict(playbook=dict(type="str", required=True), values=dict(type="dict"))


def refusal(playbook, errors):
    """The one message a refused run prints."""
    known = ", ".join(PLAYBOOK_INPUTS.get(playbook, {})) or "none"
    return ("bad input for %s: %s (extra vars this playbook takes: %s); nothing was changed"
            % (playbook, "; ".join(errors), known))


def typed_value(playbook, name, text):
    """How the CLI types `-e name=text`: a string, as ansible-playbook keeps it, except where this spec says bool.

    Returns text itself for anything not declared bool (numbers, lists and times stay strings: the playbook's
    own checks read them); a bool input that is not a boolean word stays a string so validation names it.
    """
    key = PLAYBOOK_INPUTS.get(playbook, {}).get(name)
    if key and INPUTS[key]["type"] == "bool":
        try:
            return parse_bool(text, name)
        except InputError:
            return text
    return text


def describe_inputs(playbook):
    """[(name, type, description)] of a playbook's public extra vars."""
    return [(name, INPUTS[key]["type"], INPUTS[key]["description"])
            for name, key in PLAYBOOK_INPUTS.get(playbook, {}).items()]
