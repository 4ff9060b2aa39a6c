"""Run a runbook playbook through ansible-runner's Python API.

`run_playbook()` is what the `runbook` command, AWX-less automation and the test-suite use: it runs
the playbook in a private data directory under ``artifacts/``, reports progress per task, and returns
rc, status, per-host stats, the events and the report(s) the playbook wrote.
"""
from __future__ import annotations

import datetime
import json
import os
import re
import shutil
import sys
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

PROJECT_ROOT = Path(__file__).resolve().parents[1]
PLAYBOOK_DIR = PROJECT_ROOT / "playbooks"
DEFAULT_INVENTORY = PROJECT_ROOT / "inventory" / "demo"
ARTIFACTS_DIR = PROJECT_ROOT / "artifacts"
REPORT_ACTION = "marketplace_report"


class DriverError(Exception):
    """Bad input to the driver (unknown playbook, missing inventory, ...)."""


# The playbook's process gets the operator's environment only through this allowlist: names that configure
# ansible, Docker, SSH and the locale. Everything else stays out of the run, so neither its environment nor
# ansible-runner's artifacts (the `command` file records the whole environment) hold the operator's secrets
# (PGPASSWORD, REDIS_PASSWORD, AWS_SECRET_ACCESS_KEY, tokens...). Credentials come from the inventory.
ENV_ALLOW_NAMES = frozenset({
    "PATH", "HOME", "USER", "LOGNAME", "LANG", "LANGUAGE", "TERM", "TZ", "TMPDIR", "SHELL", "PWD",
    "SSH_AUTH_SOCK", "VIRTUAL_ENV", "PYTHONPATH", "DOCKER_HOST", "DOCKER_CERT_PATH", "DOCKER_TLS_VERIFY",
    "DOCKER_CONTEXT", "DOCKER_CONFIG", "http_proxy", "https_proxy", "no_proxy", "HTTP_PROXY", "HTTPS_PROXY",
    "NO_PROXY"})
ENV_ALLOW_PREFIXES = ("LC_", "ANSIBLE_", "EM_")
SECRET_NAME = re.compile(r"PASS|SECRET|TOKEN|CREDENTIAL|PRIVATE|_KEY$|^KEY$|APIKEY|API_KEY", re.IGNORECASE)
# A name that looks secret may still pass when it only names a file (ANSIBLE_VAULT_PASSWORD_FILE, EM_SSH_KEY).
SECRET_NAME_FILE_OK = re.compile(r"(_FILE|_PATH|_DIR)$|^EM_SSH_KEY$")
REDACTED = "<redacted by runbook.driver>"
_ENV_LOCK = threading.Lock()


def secret_env_name(name: str) -> bool:
    return bool(SECRET_NAME.search(name)) and not SECRET_NAME_FILE_OK.search(name)


def allowed_env(environ: dict[str, str]) -> dict[str, str]:
    """The part of an environment a playbook run inherits (see ENV_ALLOW_NAMES)."""
    return {k: v for k, v in environ.items()
            if (k in ENV_ALLOW_NAMES or k.startswith(ENV_ALLOW_PREFIXES)) and not secret_env_name(k)}


def json_safe(value: Any) -> Any:
    """Extra vars as JSON can carry them: dates as ISO strings, tuples/sets as lists (a YAML file may hold dates)."""
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set)):
        return [json_safe(v) for v in value]
    if isinstance(value, (datetime.datetime, datetime.date, datetime.time)):
        return value.isoformat()
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return str(value)


@dataclass
class RunResult:
    playbook: str
    rc: int
    status: str
    stats: dict[str, dict[str, int]]
    events: list[dict[str, Any]]
    artifact_dir: Path
    reports: dict[str, dict[str, Any]] = field(default_factory=dict)
    report_paths: dict[str, str] = field(default_factory=dict)
    duration_s: float = 0.0

    @property
    def stdout(self) -> str:
        path = self.artifact_dir / "stdout"
        return path.read_text(errors="replace") if path.exists() else ""

    @property
    def report(self) -> dict[str, Any] | None:
        """The report of the only (or first) host."""
        return next(iter(self.reports.values()), None)

    def host_stats(self, host: str) -> dict[str, int]:
        return {key: counts.get(host, 0) for key, counts in self.stats.items() if isinstance(counts, dict)}

    def changed(self, host: str | None = None) -> int:
        counts = self.stats.get("changed", {}) or {}
        return counts.get(host, 0) if host else sum(counts.values())

    def task_results(self, task_name: str | None = None, event: str = "runner_on_ok") -> list[dict[str, Any]]:
        out = []
        for ev in self.events:
            if ev.get("event") != event:
                continue
            data = ev.get("event_data", {})
            if task_name is None or data.get("task") == task_name:
                out.append(data)
        return out


def resolve_playbook(name: str) -> Path:
    """`health-check`, `health-check.yml` or a path."""
    candidates = [Path(name)]
    stem = name if name.endswith((".yml", ".yaml")) else name + ".yml"
    candidates.append(PLAYBOOK_DIR / stem)
    for cand in candidates:
        if cand.is_file():
            return cand.resolve()
    known = ", ".join(sorted(p.stem for p in PLAYBOOK_DIR.glob("*.yml")))
    raise DriverError(f"unknown playbook {name!r}; known: {known}")


def _venv_env() -> dict[str, str]:
    """ansible-runner finds ansible-playbook on PATH: put this interpreter's bin dir first."""
    bindir = str(Path(sys.executable).parent)
    path = os.environ.get("PATH", "")
    if bindir not in path.split(os.pathsep):
        path = bindir + os.pathsep + path
    return {
        "PATH": path,
        "ANSIBLE_CONFIG": str(PROJECT_ROOT / "ansible.cfg"),
        "ANSIBLE_FORCE_COLOR": "0",
        "ANSIBLE_NOCOLOR": "1",
        "PYTHONUNBUFFERED": "1",
    }


def _progress_printer(stream) -> Callable[[dict], bool]:
    marks = {"runner_on_ok": "ok", "runner_on_failed": "FAILED", "runner_on_unreachable": "UNREACHABLE",
             "runner_on_skipped": "skipped"}

    def handler(event: dict) -> bool:
        kind = event.get("event")
        data = event.get("event_data", {})
        if kind == "playbook_on_play_start":
            stream.write(f"PLAY {data.get('play', '')}\n")
        elif kind in marks:
            task = data.get("task", "")
            res = data.get("res", {}) or {}
            mark = marks[kind]
            if kind == "runner_on_ok" and res.get("changed"):
                mark = "changed"
            if kind == "runner_on_failed" and data.get("ignore_errors"):
                mark = "failed (ignored)"
            if kind == "runner_on_skipped":
                return True
            line = f"  [{data.get('host', '?')}] {task}: {mark}"
            shout = kind in ("runner_on_failed", "runner_on_unreachable") and not data.get("ignore_errors")
            if shout and res.get("msg"):
                line += f" - {str(res.get('msg'))[:300]}"
            stream.write(line + "\n")
            stream.flush()
        return True

    return handler


def _collect_reports(events: Iterable[dict]) -> tuple[dict[str, dict], dict[str, str]]:
    reports: dict[str, dict] = {}
    paths: dict[str, str] = {}
    for ev in events:
        if ev.get("event") != "runner_on_ok":
            continue
        data = ev.get("event_data", {})
        if data.get("task_action", "").split(".")[-1] != REPORT_ACTION:
            continue
        res = data.get("res", {}) or {}
        host = res.get("report_host") or data.get("host")
        path = res.get("report_path")
        if not path:
            continue
        paths[host] = path
        try:
            reports[host] = json.loads(Path(path).read_text())
        except (OSError, ValueError):
            continue
    return reports, paths


def run_playbook(
    playbook: str,
    inventory: str | os.PathLike | None = None,
    extravars: dict[str, Any] | None = None,
    check: bool = False,
    tags: str | Iterable[str] | None = None,
    skip_tags: str | Iterable[str] | None = None,
    limit: str | None = None,
    verbosity: int = 0,
    progress: bool = False,
    stream=None,
    envvars: dict[str, str] | None = None,
    timeout: int | None = None,
    keep_artifacts: int = 50,
) -> RunResult:
    """Run a playbook of this project and return its RunResult (never raises for a failed play)."""
    import ansible_runner

    pb = resolve_playbook(playbook)
    inv = Path(inventory) if inventory else DEFAULT_INVENTORY
    if not inv.exists():
        raise DriverError(f"inventory {inv} does not exist")
    ARTIFACTS_DIR.mkdir(mode=0o700, parents=True, exist_ok=True)
    ARTIFACTS_DIR.chmod(0o700)  # events and stdout of every run: the operator's only
    ident = f"{pb.stem}-{time.strftime('%Y%m%dT%H%M%S', time.gmtime())}-{os.getpid()}-{time.monotonic_ns() % 100000}"
    private = ARTIFACTS_DIR / ident
    private.mkdir(mode=0o700, parents=True)
    cmdline = []
    if check:
        cmdline.append("--check")
    if isinstance(tags, (list, tuple, set)):
        tags = ",".join(tags)
    if isinstance(skip_tags, (list, tuple, set)):
        skip_tags = ",".join(skip_tags)
    env = _venv_env()
    env.update(envvars or {})
    kwargs: dict[str, Any] = dict(
        private_data_dir=str(private),
        project_dir=str(PROJECT_ROOT),
        playbook=str(pb),
        inventory=str(inv.resolve()),
        extravars=json_safe(extravars or {}),
        envvars=env,
        quiet=True,
        verbosity=verbosity or None,
        ident="run",
        rotate_artifacts=0,
        # Facts stay in the run's memory: no fact_cache/ of gathered facts left among the artifacts.
        fact_cache_type="memory",
    )
    if cmdline:
        kwargs["cmdline"] = " ".join(cmdline)
    if tags:
        kwargs["tags"] = tags
    if skip_tags:
        kwargs["skip_tags"] = skip_tags
    if limit:
        kwargs["limit"] = limit
    if timeout:
        kwargs["timeout"] = timeout
    if progress:
        kwargs["event_handler"] = _progress_printer(stream or sys.stdout)
    started = time.monotonic()
    # ansible-runner copies os.environ into the playbook's environment (and its `command` artifact) when it
    # prepares the run: prepare it with the allowlisted environment (PATH first, which its own lookup of
    # ansible-playbook needs too), then put the caller's environment back before the play runs.
    with _ENV_LOCK:
        saved = dict(os.environ)
        os.environ.clear()
        os.environ.update(allowed_env(saved))
        os.environ["PATH"] = env["PATH"]
        try:
            runner = ansible_runner.interface.init_runner(**kwargs)
        finally:
            os.environ.clear()
            os.environ.update(saved)
    try:
        runner.run()
    finally:
        _scrub_env_artifacts(private, Path(runner.config.artifact_dir))
    duration = time.monotonic() - started
    events = list(runner.events)
    stats = runner.stats or {}
    reports, paths = _collect_reports(events)
    _prune_artifacts(keep_artifacts)
    return RunResult(playbook=pb.stem, rc=runner.rc, status=runner.status, stats=stats, events=events,
                     artifact_dir=Path(runner.config.artifact_dir), reports=reports, report_paths=paths,
                     duration_s=duration)


def _scrub_env_artifacts(private: Path, artifact_dir: Path) -> None:
    """Values of secret-looking names a caller passed in `envvars` do not stay in the artifacts."""
    targets = [(artifact_dir / "command", "env"), (private / "env" / "envvars", None)]
    for path, key in targets:
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        env = data.get(key) if key else data
        if not isinstance(env, dict):
            continue
        hidden = [k for k in env if secret_env_name(k)]
        if not hidden:
            continue
        for k in hidden:
            env[k] = REDACTED
        tmp = path.with_name(path.name + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            json.dump(data, fh)
        os.replace(tmp, path)


def _prune_artifacts(keep: int) -> None:
    if keep <= 0 or not ARTIFACTS_DIR.exists():
        return
    runs = sorted((p for p in ARTIFACTS_DIR.iterdir() if p.is_dir()), key=lambda p: p.stat().st_mtime)
    for old in runs[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
