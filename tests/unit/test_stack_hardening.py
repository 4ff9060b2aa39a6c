"""The reference stack as committed: no secret in any argv its scripts run, fault endpoints off by default,
no TLS private key in the repository. Reads the files (and renders the compose file); the live checks are in
tests/integration/test_stack_hardening.py."""
from __future__ import annotations

import re
import shlex
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
STACK = ROOT / "stack"
COMPOSE_FILE = STACK / "docker-compose.production.yml"

# Variables whose values stack.sh generates as secrets (CHANGE_ME in defaults.env).
SECRETS = sorted(line.split("=", 1)[0] for line in (STACK / "defaults.env").read_text().splitlines()
                 if line.endswith("=CHANGE_ME"))
# Shell builtins: they run in the shell itself, so their arguments never reach an execve argv.
BUILTINS = {":", "printf", "export", "local", "readonly", "declare", "test", "[", "[["}
HEREDOC = re.compile(r"<<-?\s*(['\"]?)(\w+)\1")
PEM_KEY = re.compile(rb"-----BEGIN (?:[A-Z]+ )?PRIVATE KEY-----")
ASSIGNMENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")


def secret_ref(text: str) -> str | None:
    for name in SECRETS:
        if re.search(r"\$\$?\{?" + name + r"\b", text):
            return name
    return None


def logical_lines(text: str):
    """(line number, command text) with continuation lines joined and here-document bodies (stdin) skipped."""
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        start, line = i + 1, lines[i]
        while line.endswith("\\") and i + 1 < len(lines):
            i += 1
            line = line[:-1] + " " + lines[i]
        i += 1
        marker = HEREDOC.search(line)
        if marker:
            while i < len(lines) and lines[i].strip() != marker.group(2):
                i += 1
            i += 1
        if not line.lstrip().startswith("#"):
            yield start, line


def argv_leaks(command_text: str) -> list[str]:
    """Simple commands of a shell line that pass a secret variable to a program's argv."""
    leaks = []
    for segment in re.split(r"\|\||&&|[;|(){}`]|\$\(", command_text):
        if not secret_ref(segment):
            continue
        try:
            words = shlex.split(segment, comments=True)
        except ValueError:
            words = segment.split()
        while words and ASSIGNMENT.match(words[0]):  # VAR=value cmd: the value goes to the environment
            words.pop(0)
        rest = " ".join(words)
        if words and words[0] not in BUILTINS and secret_ref(rest):
            leaks.append(segment.strip())
    return leaks


def shell_sources() -> list[Path]:
    return sorted(p for p in STACK.rglob("*") if p.is_file() and (p.suffix == ".sh" or p.read_bytes()[:2] == b"#!"))


def test_the_secret_list_is_the_stacks():
    assert {"POSTGRES_PASSWORD", "APP_DB_PASSWORD", "REDIS_PASSWORD", "JWT_SECRET"} <= set(SECRETS)


@pytest.mark.parametrize("path", shell_sources(), ids=lambda p: str(p.relative_to(STACK)))
def test_stack_scripts_pass_no_secret_in_argv(path):
    leaks = [f"{path.relative_to(ROOT)}:{n}: {leak}" for n, line in logical_lines(path.read_text())
             for leak in argv_leaks(line)]
    assert leaks == [], "secret in a command line:\n" + "\n".join(leaks)


def test_the_argv_parser_sees_the_old_init_leak():
    """The check above is not vacuous: the former first-init line (psql -v app_pw=...) is caught, env is not."""
    assert argv_leaks('psql_local -d postgres -v app_user="$APP_USER" -v app_pw="$APP_DB_PASSWORD" <<\'SQL\'')
    assert argv_leaks('redis-cli -a "$REDIS_PASSWORD" ping')
    assert not argv_leaks('REDISCLI_AUTH="$REDIS_PASSWORD" redis-cli ping | grep -q PONG')
    assert not argv_leaks("printf '%s' \"$POSTGRES_PASSWORD\" > \"$pwfile\"")


def test_compose_healthchecks_pass_no_secret_in_argv():
    compose = yaml.safe_load(COMPOSE_FILE.read_text())
    leaks = []
    for name, svc in compose["services"].items():
        test = (svc.get("healthcheck") or {}).get("test") or []
        if test and test[0] == "CMD-SHELL":
            leaks += [f"{name}: {leak}" for leak in argv_leaks(test[1])]
        elif test:
            leaks += [f"{name}: {w}" for w in test[1:] if secret_ref(w)]
        leaks += [f"{name} command: {w}" for w in (svc.get("command") or []) if secret_ref(str(w))]
    assert leaks == []


def render_compose(tmp_path: Path, extra: str = "") -> dict:
    """`docker compose config` of the committed file with defaults.env (secrets filled in), as compose sees it."""
    env = tmp_path / "stack.env"
    env.write_text((STACK / "defaults.env").read_text().replace("=CHANGE_ME", "=x") + extra)
    out = subprocess.run(["docker", "compose", "--project-directory", str(STACK), "-f", str(COMPOSE_FILE),
                          "--env-file", str(env), "config", "--format", "json"],
                         capture_output=True, text=True, timeout=60,
                         env={"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": str(tmp_path)})
    assert out.returncode == 0, out.stderr
    return yaml.safe_load(out.stdout)


def test_fault_endpoints_are_off_in_the_default_compose(tmp_path):
    backend = render_compose(tmp_path)["services"]["backend"]
    assert backend["environment"]["ENABLE_FAULT_ENDPOINTS"] == "0"
    # An env file without the line (one made before it existed) is off too.
    env = tmp_path / "stack.env"
    defaults = (STACK / "defaults.env").read_text().replace("=CHANGE_ME", "=x").splitlines()
    env.write_text("\n".join(line for line in defaults if not line.startswith("ENABLE_FAULT_ENDPOINTS=")))
    out = subprocess.run(["docker", "compose", "--project-directory", str(STACK), "-f", str(COMPOSE_FILE),
                          "--env-file", str(env), "config", "--format", "json"],
                         capture_output=True, text=True, timeout=60,
                         env={"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": str(tmp_path)})
    assert yaml.safe_load(out.stdout)["services"]["backend"]["environment"]["ENABLE_FAULT_ENDPOINTS"] == "0"
    # Only the harness's value switches them on.
    on = render_compose(tmp_path, "\nENABLE_FAULT_ENDPOINTS=1\n")["services"]["backend"]
    assert on["environment"]["ENABLE_FAULT_ENDPOINTS"] == "1"


def test_stack_sh_writes_the_fault_switch_only_for_the_harness():
    """stack.sh's set_fault_endpoints, run on a copy of an env file: 0 by default, 1 with the harness variable."""
    script = (STACK / "bin" / "stack.sh").read_text()
    body = re.search(r"^set_fault_endpoints\(\) \{\n.*?^\}\n", script, re.S | re.M).group(0)
    cases = (({}, "0"), ({"EM_STACK_FAULT_ENDPOINTS": "1"}, "1"), ({"EM_STACK_FAULT_ENDPOINTS": "0"}, "0"))
    for harness, want in cases:
        for start in ("ENABLE_FAULT_ENDPOINTS=1\nA=b\n", "A=b\n"):
            res = subprocess.run(
                ["bash", "-c", 'set -euo pipefail; ENV_FILE=$(mktemp); printf "$START" > "$ENV_FILE"; '
                 'log() { :; }; die() { echo "$*"; exit 1; }; ' + body + ' set_fault_endpoints; '
                 'cat "$ENV_FILE"; echo "exported=$ENABLE_FAULT_ENDPOINTS"; rm -f "$ENV_FILE"'],
                capture_output=True, text=True, env={"PATH": "/usr/bin:/bin", "START": start, **harness})
            assert res.returncode == 0, res.stdout + res.stderr
            lines = res.stdout.splitlines()
            assert [x for x in lines if x.startswith("ENABLE_FAULT_ENDPOINTS=")] == [f"ENABLE_FAULT_ENDPOINTS={want}"]
            assert "A=b" in lines and f"exported={want}" in lines
    bad = subprocess.run(["bash", "-c", 'ENV_FILE=/dev/null; log() { :; }; die() { echo "$*"; exit 1; }; '
                          + body + " set_fault_endpoints"],
                         capture_output=True, text=True,
                         env={"PATH": "/usr/bin:/bin", "EM_STACK_FAULT_ENDPOINTS": "yes"})
    assert bad.returncode == 1 and "must be 0 or 1" in bad.stdout


def test_no_tls_private_key_in_the_repository():
    tracked = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True,
                             check=True).stdout.splitlines()
    keys = []
    for name in tracked:
        path = ROOT / name
        if path.is_file() and (name.endswith((".key", ".pem")) or PEM_KEY.search(path.read_bytes())):
            keys.append(name)
    assert keys == []
    ignored = subprocess.run(["git", "check-ignore", "-q", "stack/runtime/nginx/ssl/server.key"], cwd=ROOT)
    assert ignored.returncode == 0, "stack/runtime/ is not in .gitignore"


def test_a_fresh_checkout_gets_its_certificate_from_gen_cert(tmp_path):
    """With no key in the repository, nginx's certificate comes from stack.sh (gen-cert.sh into the state dir,
    mounted into nginx): an empty directory gets a key (not world-readable) and a certificate for the domain."""
    from tests.helpers.modules import load_module

    out = tmp_path / "state" / "nginx" / "ssl"
    subprocess.run(["bash", str(STACK / "bin" / "gen-cert.sh"), "--out", str(out), "--days", "30",
                    "--domain", "marketplace.local"], check=True, capture_output=True, timeout=60)
    assert (out / "server.key").stat().st_mode & 0o007 == 0
    res = load_module("certificate_check").judge((out / "server.crt").read_bytes(), (out / "server.key").read_bytes(),
                                                 "marketplace.local")
    assert res["valid"], res["problems"]
    nginx = render_compose(tmp_path)["services"]["nginx"]
    ssl_mount = [v for v in nginx["volumes"] if v["target"] == "/etc/nginx/ssl"]
    assert ssl_mount and ssl_mount[0]["source"].endswith("/nginx/ssl") and "stack/runtime" not in ssl_mount[0]["source"]
