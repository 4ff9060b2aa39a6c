# Shared code of the Equipment Marketplace Docker modules (compose_status, compose_logs):
# the common argument spec (DOCKER_HOST / COMPOSE_PROJECT_NAME env fallbacks, short timeout), the Docker SDK
# client factory that turns "daemon down" into a reason instead of a traceback, compose-label helpers and a
# secret redactor that any module can use before it returns text it did not write itself.
# Imported by modules as `from ansible.module_utils.marketplace_docker import ...`.
from __future__ import annotations

import concurrent.futures
import json
import os
import re
import traceback
from urllib.parse import quote, unquote, urlsplit

from ansible.module_utils.basic import env_fallback, missing_required_lib

try:
    import docker
    from docker.errors import APIError, DockerException, NotFound

    HAS_DOCKER = True
    DOCKER_IMPORT_ERROR = None
except ImportError:  # pragma: no cover - exercised only on hosts without the SDK
    docker = None
    HAS_DOCKER = False
    DOCKER_IMPORT_ERROR = traceback.format_exc()

    class DockerException(Exception):
        pass

    class APIError(DockerException):
        pass

    class NotFound(APIError):
        pass

try:
    import requests.exceptions as _requests_exceptions

    _TRANSPORT_ERRORS = (_requests_exceptions.RequestException,)
except ImportError:  # pragma: no cover
    _TRANSPORT_ERRORS = ()

MIN_DOCKER_SDK = (7, 1)
DEFAULT_DOCKER_HOST = "unix:///var/run/docker.sock"
LABEL_PROJECT = "com.docker.compose.project"
LABEL_SERVICE = "com.docker.compose.service"
LABEL_NUMBER = "com.docker.compose.container-number"
LABEL_ONEOFF = "com.docker.compose.oneoff"
LABEL_CONFIG_FILES = "com.docker.compose.project.config_files"
LABEL_WORKING_DIR = "com.docker.compose.project.working_dir"

# Errors that mean "the daemon could not be talked to" (as opposed to a bug in the module).
DOCKER_ERRORS = (DockerException, OSError, *_TRANSPORT_ERRORS)


def docker_argument_spec(**extra):
    """The options every Docker module shares, plus the module's own (``extra``).

    Documented in doc_fragments/marketplace_docker.py, except ``services``, which each module documents.
    """
    spec = dict(
        docker_host=dict(type="str", default=DEFAULT_DOCKER_HOST, aliases=["docker_url"],
                         fallback=(env_fallback, ["DOCKER_HOST"])),
        timeout=dict(type="int", default=10),
        project=dict(type="str", required=True, aliases=["project_name"],
                     fallback=(env_fallback, ["COMPOSE_PROJECT_NAME"])),
        services=dict(type="list", elements="str", default=[]),
    )
    spec.update(extra)
    return spec


def check_docker_sdk(module):
    """fail_json, naming the library, when the Docker SDK is missing or older than 7.1."""
    if not HAS_DOCKER:
        module.fail_json(msg=missing_required_lib("docker (Docker SDK for Python >= 7.1)"),
                         exception=DOCKER_IMPORT_ERROR)
    version = tuple(int(p) for p in re.findall(r"\d+", getattr(docker, "__version__", "0"))[:2])
    if version < MIN_DOCKER_SDK:
        module.fail_json(msg=missing_required_lib("docker (Docker SDK for Python >= 7.1; found %s)"
                                                  % docker.__version__))


def validate_common(module):
    """Bad input of the shared options gets a clear fail_json before anything is contacted."""
    params = module.params
    if params["timeout"] is None or params["timeout"] <= 0:
        module.fail_json(msg="timeout must be a positive number of seconds")
    if not (params.get("project") or "").strip():
        module.fail_json(msg="project must not be empty")
    if any(not (s or "").strip() for s in params.get("services") or []):
        module.fail_json(msg="services must not contain empty names")


def docker_error_reason(exc, docker_host=None):
    """A short, secret-free explanation of why the daemon could not be used."""
    text = str(exc) or exc.__class__.__name__
    # requests/urllib3 wrap the interesting part deep inside; keep the message, drop the noise.
    for marker in ("FileNotFoundError", "ConnectionRefusedError", "PermissionError"):
        if marker in text:
            text = {"FileNotFoundError": "socket not found (is dockerd running?)",
                    "ConnectionRefusedError": "connection refused (is dockerd running?)",
                    "PermissionError": "permission denied on the Docker socket"}[marker]
            break
    if "Read timed out" in text or "timed out" in text.lower():
        text = "timed out talking to the Docker daemon"
    where = " at %s" % redact_url_passwords(docker_host) if docker_host else ""
    return redact_url_passwords("cannot talk to the Docker daemon%s: %s" % (where, text))[:500]


def connect(module, max_pool_size=32):
    """Client factory: ``(client, None)`` or ``(None, reason)`` when the daemon cannot be reached.

    Returns a low-level ``docker.APIClient`` (the modules need inspect/stats/logs only, and the
    high-level models would inspect every container again). The API version is negotiated with the
    daemon, which also proves it answers. One factory, so tests and callers can substitute it.
    """
    params = module.params
    try:
        client = docker.APIClient(base_url=params["docker_host"], version="auto", timeout=params["timeout"],
                                  max_pool_size=max_pool_size)
        return client, None
    except DOCKER_ERRORS as exc:
        return None, docker_error_reason(exc, params["docker_host"])


def unavailable_result(reason, **extra):
    """The structured "daemon down" result: never a failure, the playbook decides the severity."""
    result = dict(changed=False, available=False, reason=reason)
    result.update(extra)
    return result


def project_filters(project, service=None):
    labels = ["%s=%s" % (LABEL_PROJECT, project)]
    if service:
        labels.append("%s=%s" % (LABEL_SERVICE, service))
    return {"label": labels}


def list_project_containers(client, project, include_oneoff=False):
    """Summaries (``GET /containers/json``, one call) of every container of the project, running or not.

    Compose labels are a dict there: no `compose ps` text is parsed. One-off containers
    (`docker compose run`) are left out unless asked for.
    """
    found = client.containers(all=True, filters=project_filters(project))
    out = []
    for c in found:
        labels = c.get("Labels") or {}
        if labels.get(LABEL_PROJECT) != project:
            continue
        if not include_oneoff and str(labels.get(LABEL_ONEOFF, "False")).lower() == "true":
            continue
        out.append(c)
    return out


def known_projects(client):
    """Names of the compose projects that have containers on this daemon (for error messages)."""
    try:
        found = client.containers(all=True, filters={"label": [LABEL_PROJECT]})
    except DOCKER_ERRORS:
        return []
    return sorted({(c.get("Labels") or {}).get(LABEL_PROJECT) for c in found} - {None})


def container_service(summary):
    return (summary.get("Labels") or {}).get(LABEL_SERVICE)


def container_name(summary_or_inspect):
    names = summary_or_inspect.get("Names")
    if names:
        return names[0].lstrip("/")
    return (summary_or_inspect.get("Name") or "").lstrip("/")


def replica_number(labels):
    try:
        return int((labels or {}).get(LABEL_NUMBER))
    except (TypeError, ValueError):
        return None


def compose_file_services(labels):
    """Services the project's compose file(s) define, read from the paths in the compose labels.

    Returns ``None`` when the files are not readable here (remote daemon, moved files, no PyYAML).
    Services that only run under a profile, or are scaled to 0, are not expected to run.
    """
    files = [f.strip() for f in (labels or {}).get(LABEL_CONFIG_FILES, "").split(",") if f.strip()]
    if not files:
        return None
    try:
        import yaml
    except ImportError:
        return None
    workdir = (labels or {}).get(LABEL_WORKING_DIR) or ""
    services = set()
    read_any = False
    for path in files:
        if not os.path.isabs(path) and workdir:
            path = os.path.join(workdir, path)
        try:
            with open(path, encoding="utf-8") as handle:
                data = yaml.safe_load(handle) or {}
        except (OSError, ValueError, yaml.YAMLError):
            continue
        read_any = True
        for name, svc in (data.get("services") or {}).items():
            svc = svc or {}
            if svc.get("profiles"):
                continue
            replicas = (svc.get("deploy") or {}).get("replicas", svc.get("scale"))
            if replicas is not None and str(replicas).strip() in ("0",):
                continue
            services.add(str(name))
    return sorted(services) if read_any else None


def parallel_map(func, items, max_workers=16):
    """Run ``func`` over ``items`` in threads (Docker calls are I/O bound); results keep the input order.

    An exception in one item is returned in its slot instead of aborting the others.
    """
    items = list(items)
    if not items:
        return []
    workers = max(1, min(max_workers, len(items)))
    results = [None] * len(items)
    with concurrent.futures.ThreadPoolExecutor(max_workers=workers) as pool:
        futures = {pool.submit(func, item): i for i, item in enumerate(items)}
        for fut in concurrent.futures.as_completed(futures):
            i = futures[fut]
            try:
                results[i] = fut.result()
            except Exception as exc:
                results[i] = exc
    return results


# --------------------------------------------------------------------------------------------------------
# Redaction
# --------------------------------------------------------------------------------------------------------

REDACTED = "[REDACTED]"
# Env var names whose values are secrets. PWD (the working directory) is deliberately not here.
SECRET_ENV_NAME = re.compile(r"SECRET|PASSWORD|PASSWD|PASSPHRASE|TOKEN|KEY|CREDENTIAL|PRIVATE|AUTH|_PASS$|^PASS",
                             re.IGNORECASE)
URL_WITH_PASSWORD = re.compile(r"\b([A-Za-z][A-Za-z0-9+.\-]*://)([^\s:/@]*):(?!\[REDACTED)([^\s/]+)@")
SECRET_PATTERNS = [
    # Authorization: Bearer <token>  /  bearer=<token>
    (re.compile(r"(?i)\b(bearer)(\s+|=)[A-Za-z0-9\-._~+/]+=*"), r"\1\2" + REDACTED),
    # Authorization: Basic <base64>
    (re.compile(r"(?i)\b(basic)\s+[A-Za-z0-9+/]{8,}={0,2}"), r"\1 " + REDACTED),
    # JSON Web Tokens (header.payload.signature, base64url, header starts with '{"')
    # (a truncated one too: header.partial-payload)
    (re.compile(r"\beyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*(?:\.[A-Za-z0-9_-]*)?"), "[REDACTED:JWT]"),
    # scheme://user:password@host
    (URL_WITH_PASSWORD, r"\1\2:" + REDACTED + "@"),
    # password=..., "token": "...", api_key: ... (the value only)
    (re.compile(r"""(?i)\b([\w.-]*(?:password|passwd|secret|token|api[_-]?key|access[_-]?key|private[_-]?key)"""
                r"""[\w.-]*["']?\s*[=:]\s*["']?)(?!\[REDACTED)([^\s"',;&}]+)"""), r"\1" + REDACTED),
]


# A URL whose password was cut off by truncation: scheme://user:pass<end of text>
_CUT_URL_PASSWORD = re.compile(r"\b([A-Za-z][A-Za-z0-9+.\-]*://[^\s:/@]*:)(?!\[REDACTED)[^\s/@]+$")


def redact_url_passwords(text):
    """Replace the password part of every ``scheme://user:password@`` URL in a string."""
    if not text:
        return text
    return URL_WITH_PASSWORD.sub(r"\1\2:" + REDACTED + "@", text)


def env_secrets(env_list, name_pattern=SECRET_ENV_NAME):
    """``(name, value)`` pairs worth redacting from a container's ``Config.Env`` (``["NAME=value", ...]``).

    The value of every variable whose name looks secret, plus the password part of any URL value
    (DATABASE_URL, REDIS_URL, ...), whatever the variable is called.
    """
    out = []
    for item in env_list or []:
        name, sep, value = str(item).partition("=")
        if not sep or not value:
            continue
        if name_pattern.search(name):
            out.append((name, value))
        if "://" in value and "@" in value:
            try:
                password = urlsplit(value).password
            except ValueError:
                password = None
            if password:
                out.append((name, password))
                if unquote(password) != password:
                    out.append((name, unquote(password)))
    return out


class Redactor:
    """Redacts known secret values and secret-looking patterns from text.

    >>> r = Redactor(); r.add_env(["DB_PASSWORD=hunter22"]); r.redact("login hunter22")
    'login [REDACTED:DB_PASSWORD]'

    Values shorter than ``min_length`` are not replaced literally (they would shred the text: a
    ``KEY=1`` flag); the patterns still apply. ``replacements`` counts what was replaced.
    """

    def __init__(self, secrets=(), min_length=4, patterns=True, extra_patterns=()):
        self.min_length = min_length
        self.use_patterns = patterns
        self.extra_patterns = [re.compile(p) if isinstance(p, str) else p for p in extra_patterns]
        self._values = {}
        self._originals = set()
        self._regex = None
        self.skipped_short = 0
        self.replacements = 0
        for name, value in secrets:
            self.add(value, name)

    def add(self, value, name=None):
        if value is None:
            return
        value = str(value)
        if len(value) < self.min_length:
            if value:
                self.skipped_short += 1
            return
        label = "[REDACTED:%s]" % name if name else REDACTED
        self._originals.add(value)
        variants = {value, quote(value, safe=""), json.dumps(value)[1:-1]}
        for v in variants:
            if len(v) >= self.min_length and v not in self._values:
                self._values[v] = label
        self._regex = None

    def add_env(self, env_list):
        for name, value in env_secrets(env_list):
            self.add(value, name)

    @property
    def secret_count(self):
        """How many distinct secret values are redacted literally."""
        return len(self._originals)

    def _compiled(self):
        if self._regex is None and self._values:
            alternatives = sorted(self._values, key=len, reverse=True)
            self._regex = re.compile("|".join(re.escape(v) for v in alternatives))
        return self._regex

    def redact(self, text):
        if not text:
            return text
        if not isinstance(text, str):
            text = str(text)
        regex = self._compiled()
        if regex is not None:
            text, n = regex.subn(lambda m: self._values[m.group(0)], text)
            self.replacements += n
        if self.use_patterns:
            for pattern, repl in SECRET_PATTERNS:
                text, n = pattern.subn(repl, text)
                self.replacements += n
        for pattern in self.extra_patterns:
            text, n = pattern.subn(REDACTED, text)
            self.replacements += n
        return text

    @property
    def longest(self):
        """Length of the longest literal value (readers keep this much beyond a cut, see redact_truncated)."""
        return max((len(v) for v in self._values), default=0)

    def redact_literal(self, text):
        """Only the literal values (no patterns): a cheap last pass over a whole result."""
        regex = self._compiled()
        if not text or regex is None:
            return text
        return regex.sub(lambda m: self._values[m.group(0)], text)

    def redact_truncated(self, text, limit, marker=" [...truncated]"):
        """Redact ``text`` and cut it to its first ``limit`` characters without leaking part of a secret.

        A literal secret that starts before the cut is replaced whole (``text`` must extend at least
        ``longest`` characters past ``limit`` when it was cut earlier, as the log reader ensures); one
        that starts after it is dropped with the rest. A URL password cut at the end is redacted too.
        Returns ``(text, truncated)``.
        """
        if text is None or len(text) <= limit:
            return self.redact(text), False
        regex = self._compiled()
        out, pos = [], 0
        if regex is not None:
            for m in regex.finditer(text):
                if m.start() >= limit:
                    break
                out.append(text[pos:m.start()])
                out.append(self._values[m.group(0)])
                self.replacements += 1
                pos = m.end()
        if pos < limit:
            out.append(text[pos:limit])
        head = "".join(out)
        if self.use_patterns:
            for pattern, repl in SECRET_PATTERNS:
                head, n = pattern.subn(repl, head)
                self.replacements += n
            head, n = _CUT_URL_PASSWORD.subn(r"\1" + REDACTED, head)
            self.replacements += n
        for pattern in self.extra_patterns:
            head, n = pattern.subn(REDACTED, head)
            self.replacements += n
        return head + marker, True

    def redact_obj(self, obj):
        """Redact every string inside a JSON-like structure (dict keys included)."""
        if isinstance(obj, str):
            return self.redact(obj)
        if isinstance(obj, dict):
            return {self.redact_obj(k): self.redact_obj(v) for k, v in obj.items()}
        if isinstance(obj, (list, tuple)):
            return [self.redact_obj(v) for v in obj]
        return obj
