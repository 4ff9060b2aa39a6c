"""Masking before any failure (issue 10, defect 2): every module registers all its secrets as no_log values
before any option check that can fail, so a failed run never shows one. The secrets sit where AnsibleModule does
not look by itself: in nested dict options (health_gather's parts), in the password of a URL or a libpq conninfo
(a DATABASE_URL-like login_db, a redis:// login_host, a probe URL), in an Authorization header; and in the
no_log options themselves. Each case ends in a failure BEFORE anything is contacted: an unknown option
(AnsibleModule's own validation) or a value the module's own checks refuse. No stack is needed; the action
plugin's in-process path runs through ansible-playbook on a local connection."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from tests.helpers.modules import load_module, load_utils, run_module

ROOT = Path(__file__).resolve().parents[2]
TAG = uuid.uuid4().hex[:10]
SECRET = "Mask-Sekr3t-" + TAG          # a no_log option's value
URL_SECRET = "Url-Pa55-" + TAG         # the password part of a URL / conninfo
NESTED_SECRET = "Nested-Pw-" + TAG     # a part's password inside health_gather
HEADER_SECRET = "Bearer Hdr-" + TAG    # an Authorization header of a probe
SECRETS = (SECRET, URL_SECRET, NESTED_SECRET, HEADER_SECRET)

PG_URL = "postgresql://app:%s@127.0.0.1:1/marketplace" % URL_SECRET
REDIS_URL = "redis://:%s@127.0.0.1:1/0" % URL_SECRET
HTTP_URL = "http://ops:%s@127.0.0.1:1/metrics" % URL_SECRET
PG = {"login_host": "127.0.0.1", "login_port": 1, "login_password": SECRET, "login_db": PG_URL}
REDIS = {"login_host": REDIS_URL, "login_port": 1, "login_password": SECRET}
DOCKER = {"docker_host": "tcp://ops:%s@127.0.0.1:1" % URL_SECRET}
COMPOSE = dict(DOCKER, project="em-masking-test")

# module -> (arguments holding secrets, arguments the module's own checks refuse before contacting anything)
CASES = {
    "app_metrics": ({"urls": [HTTP_URL], "prometheus_url": HTTP_URL}, {"window": "five minutes"}),
    "backup_s3": ({"backup_dir": "/nonexistent", "bucket": "b", "endpoint_url": HTTP_URL, "access_key": SECRET,
                   "secret_key": SECRET, "session_token": SECRET}, {"part_size": 1}),
    "compose_logs": (dict(COMPOSE, extra_secrets=[SECRET]), {"max_line_length": 10}),
    "compose_status": (dict(COMPOSE), {"timeout": 0}),
    "container_env_check": (dict(COMPOSE), {"variables": ["A=B"]}),
    "container_processes": (dict(COMPOSE), {"top": -1}),
    "http_probe": ({"probes": [{"name": "p", "url": HTTP_URL, "headers": {"Authorization": HEADER_SECRET}}]},
                   {"timeout": 0}),
    "marketplace_report": ({"redact": [SECRET], "playbook": "x", "host": "h", "dest": "/nonexistent"}, None),
    "metrics_window": ({"url": HTTP_URL, "traffic_urls": [HTTP_URL]}, {"quantile": 2}),
    "postgres_admin": (dict(PG, action="cancel"), {"pids": [-1]}),
    "postgres_health": (dict(PG), {"connections_warning_pct": 200}),
    "api_key_revoke": (dict(PG, keys=["k1"]), {"max_keys": -1}),
    "backup_dump": (dict({**PG, **DOCKER}, database="marketplace", backup_dir="/nonexistent"), {"compress": 42}),
    "backup_restore": (dict({**PG, **DOCKER}, action="inspect"), {"jobs": 0}),
    "backup_catalog": (dict(DOCKER, backup_dir="/nonexistent"), {"keep_last": -1}),
    "redis_health": (dict(REDIS), {"db": -1}),
    "redis_keys": (dict(REDIS, pattern="x:*"), {"db": -1}),
    "health_gather": ({"postgres": {"login_host": "127.0.0.1", "login_password": NESTED_SECRET, "login_db": PG_URL},
                       "redis": {"login_host": REDIS_URL, "password": NESTED_SECRET},
                       "logs": {"extra_secrets": [NESTED_SECRET]},
                       "http": {"probes": [{"name": "p", "url": HTTP_URL,
                                            "headers": {"Authorization": HEADER_SECRET}}]}},
                      {"timeout": 0}),
}


def library_modules():
    return sorted(p.stem for p in (ROOT / "library").glob("*.py"))


def assert_masked(result, case):
    assert result.get("failed"), "%s: the bad option was accepted: %s" % (case, result.get("msg"))
    raw = result["_raw"]
    leaked = [s for s in SECRETS if s in raw]
    assert not leaked, "%s: secret(s) in the failed result: %s" % (case, raw[:3000])


# Modules that take no secret and no URL (host_resources: sections and thresholds; certificate_check: file paths
# only, never key material in its result) and the central input check of the public extra vars (validate_inputs).
NO_SECRET_OPTIONS = {"host_resources", "certificate_check", "validate_inputs"}


def test_every_module_has_a_case():
    """A new module needs a case here (or a place in NO_SECRET_OPTIONS)."""
    assert set(CASES) == set(library_modules()) - NO_SECRET_OPTIONS


def test_every_module_is_a_marketplace_module():
    """Every module of library/ is built with MarketplaceModule (masking before any failure)."""
    plain = [name for name in library_modules()
             if "MarketplaceModule(argument_spec" not in (ROOT / "library" / (name + ".py")).read_text()]
    assert not plain, "built with AnsibleModule: %s" % plain


@pytest.mark.parametrize("name", sorted(CASES))
def test_unknown_option_masks_every_secret(name):
    args, _ = CASES[name]
    assert_masked(run_module(name, dict(args, no_such_option=1)), name + " + unknown option")


@pytest.mark.parametrize("name", sorted(n for n, c in CASES.items() if c[1] is not None))
def test_own_check_failure_masks_every_secret(name):
    args, bad = CASES[name]
    assert_masked(run_module(name, dict(args, **bad)), name + " + %s" % bad)


def test_bad_part_option_masks_the_other_parts_secrets():
    """A bad option in one part (checked first: host starts first) fails the task; the postgres part's password,
    validated after it, is masked all the same."""
    args = dict(CASES["health_gather"][0], host={"sections": ["memory"], "top": "many"})
    assert_masked(run_module("health_gather", args), "health_gather + bad host part")


def test_every_nested_no_log_option_is_recognised():
    """health_gather finds the parts' secrets by option name before it validates them: every no_log option of
    every part module (and its aliases) must match the secret-key pattern."""
    from ansible.module_utils.marketplace_common import SECRET_KEY

    gather = load_utils("marketplace_health_gather")
    for part, module_name in gather.PART_MODULES.items():
        spec = load_module(module_name).build_argument_spec()
        for option, opt in spec.items():
            if opt.get("no_log"):
                for name in [option, *opt.get("aliases", [])]:
                    assert SECRET_KEY.search(name), "%s.%s is not recognised as a secret" % (part, name)


def test_url_secrets():
    from ansible.module_utils.marketplace_common import url_secrets

    assert url_secrets("postgresql://app:s%40cret@db:5432/x") == {"s%40cret", "s@cret"}
    assert url_secrets("redis://:pw@cache:6379/0") == {"pw"}
    assert url_secrets("https://tok3n@example.invalid/") == {"tok3n"}
    assert url_secrets("host=db user=app password='a b' dbname=x") == {"a b"}
    assert url_secrets("postgresql://app@db/x") == set()
    assert url_secrets("http://127.0.0.1:8080/api/health") == set()


PLAYBOOK = """\
- hosts: localhost
  gather_facts: false
  tasks:
    - name: health_gather in-process with a bad timeout
      health_gather:
        timeout: 0
        postgres: {login_host: 127.0.0.1, login_port: 1, login_password: "%(nested)s", login_db: "%(pg_url)s"}
        redis: {login_host: 127.0.0.1, login_port: 1, password: "%(nested)s"}
        http: {probes: [{name: p, url: "%(http_url)s", headers: {Authorization: "%(header)s"}}]}
      register: inproc
      ignore_errors: true
    - name: health_gather in-process with an unknown option
      health_gather:
        bogus: 1
        postgres: {login_host: 127.0.0.1, login_port: 1, login_password: "%(nested)s"}
      register: unknown
      ignore_errors: true
    - name: Keep the results
      ansible.builtin.copy:
        dest: "{{ out_file }}"
        content: "{{ {'inproc': inproc, 'unknown': unknown} | to_json }}"
        mode: "0600"
"""


def test_health_gather_action_in_process_masks_before_failing(tmp_path):
    """The action plugin's in-process path (local connection, this Python) validates by itself: a bad timeout
    and an unknown option fail with the parts' passwords masked, in the result and in ansible's output."""
    book = tmp_path / "play.yml"
    book.write_text(PLAYBOOK % {"nested": NESTED_SECRET, "pg_url": PG_URL, "http_url": HTTP_URL,
                                "header": HEADER_SECRET})
    out = tmp_path / "out.json"
    env = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"), ANSIBLE_STDOUT_CALLBACK="json",
               PATH="%s:%s" % (Path(sys.executable).parent, os.environ.get("PATH", "")))
    proc = subprocess.run(
        [str(Path(sys.executable).parent / "ansible-playbook"), "-i", "localhost,", "-c", "local", str(book),
         "-e", "ansible_python_interpreter=%s" % sys.executable, "-e", "out_file=%s" % out],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    results = json.loads(out.read_text())
    for key in ("inproc", "unknown"):
        assert results[key]["failed"], results[key]
        assert results[key].get("in_process") is not False
    assert "timeout must be positive" in results["inproc"]["msg"]
    text = proc.stdout + proc.stderr + out.read_text()
    leaked = [s for s in SECRETS if s in text]
    assert not leaked, text[:4000]


def test_data_about_secrets_is_not_masked():
    """Only strings directly under a secret-looking key count: a report's data about a secret (its state and
    length, a flag) stays readable."""
    from ansible.module_utils.marketplace_common import early_no_log_values

    params = {"extra": {"JWT_SECRET": {"state": "set", "length": 64}, "password_set": True, "token_ttl": 3600,
                        "api_keys": ["ab12cd34"], "headers": {"Authorization": "Bearer x1"}}}
    assert early_no_log_values(params, {"extra": {"type": "dict"}}) == {"ab12cd34", "Bearer x1"}
    assert early_no_log_values({"postgres": {"login_password": 271828, "port": 5432}}, {}) == {"271828"}
