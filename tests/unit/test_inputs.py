"""module_utils/marketplace_inputs.py: the one spec of the public extra vars (no Docker, no stack).

Every value of issue 10's bad-input matrix is refused here with a one-line message naming the input; the good
values the playbooks document pass, normalised. The integration matrix (tests/integration/test_bad_input_matrix.py)
checks the same values end to end through the playbooks.
"""
from __future__ import annotations

import importlib.util
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("marketplace_inputs_test",
                                               ROOT / "module_utils" / "marketplace_inputs.py")
inputs = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(inputs)
InputError = inputs.InputError


@pytest.mark.parametrize("value", ["false", "no", "0", "off", "False", "OFF", False, 0])
def test_confirm_false_words(value):
    assert inputs.parse_bool(value, "confirm") is False


@pytest.mark.parametrize("value", ["true", "yes", "1", "on", "TRUE", True, 1])
def test_confirm_true_words(value):
    assert inputs.parse_bool(value, "confirm") is True


@pytest.mark.parametrize("value", ["ture", "yes please", "", "2", 2, None, [], "flase"])
def test_confirm_typo_is_refused_not_read_as_false(value):
    with pytest.raises(InputError, match="confirm must be true or false"):
        inputs.parse_bool(value, "confirm")


@pytest.mark.parametrize("value", ["1.0;id", "$(id)", "-x", "../x", "x" * 129, ".hidden", "a b", "", 1.1, True])
def test_version_refused(value):
    with pytest.raises(InputError, match="version"):
        inputs.validate_version(value)


@pytest.mark.parametrize("value", ["1.10", "1.0.0", "v2_rc-1", "x" * 128, "latest"])
def test_version_accepted_and_kept_as_text(value):
    assert inputs.validate_version(value) == value


@pytest.mark.parametrize("value", ["../../etc/passwd", "/var/backups/x.dump", "..", ".x", "a/b", "a\\b", ""])
def test_backup_name_refused(value):
    with pytest.raises(InputError, match="backup"):
        inputs.validate_backup_name(value)


def test_backup_name_accepted():
    assert inputs.validate_backup_name("equipment_marketplace-20261203T010000Z.dump") == \
        "equipment_marketplace-20261203T010000Z.dump"


@pytest.mark.parametrize("value, words", [
    ("postgres", "system database"), ("template1", "system database"), ("template0", "system database"),
    ("Upper", "lower case"), ("x" * 64, "at most 63"), ("1abc", "lower case"), ("a-b", "lower case"), ("", "database"),
])
def test_database_names_refused(value, words):
    with pytest.raises(InputError, match=words):
        inputs.validate_db_name(value, "restore_into")


def test_live_database_refused_when_named():
    with pytest.raises(InputError, match="live database"):
        inputs.validate_db_name("equipment_marketplace", "restore_into", live="equipment_marketplace")
    assert inputs.validate_db_name("x" * 63, "restore_into") == "x" * 63


@pytest.mark.parametrize("pattern", ["*", "**", "*:*", "[a-z]*", "?*", "\\*", ":*", "", "  "])
def test_cache_patterns_without_literal_prefix_refused(pattern):
    with pytest.raises(InputError, match="pattern"):
        inputs.validate_redis_pattern(pattern)


@pytest.mark.parametrize("pattern", ["cache:listings:*", "cache:*", "session:?bc", "c*"])
def test_cache_patterns_with_prefix_accepted(pattern):
    assert inputs.validate_redis_pattern(pattern) == pattern


def test_allow_all_lets_a_match_all_pattern_through():
    assert inputs.validate_redis_pattern("*", allow_all=True) == "*"


@pytest.mark.parametrize("value", ["ALL", "bogus", "", "cache"])
def test_scope_refused(value):
    with pytest.raises(InputError, match="scope must be one of cache_db, all"):
        inputs.INPUTS["scope"]["check"](value)


@pytest.mark.parametrize("value", ["0", "-1", "2.0", "true", True, 2.0, "abc", 0])
def test_scale_backend_refused(value):
    with pytest.raises(InputError, match="scale_backend"):
        inputs.INPUTS["scale_backend"]["check"](value)


def test_scale_backend_accepted():
    assert inputs.INPUTS["scale_backend"]["check"]("3") == 3


@pytest.mark.parametrize("value", [[0], [-1], ["abc"], "0", "-1", "abc", "1,,2", [True]])
def test_pids_refused(value):
    with pytest.raises(InputError, match="pids"):
        inputs.parse_int_list(value, "pids")


def test_pids_accepted():
    assert inputs.parse_int_list("12,34", "pids") == [12, 34]
    assert inputs.parse_int_list([5], "pids") == [5]


def test_terminate_choices():
    with pytest.raises(InputError, match="terminate must be one of blockers, long_running, pids"):
        inputs.INPUTS["terminate"]["check"]("bogus")
    _, errors = inputs.validate_inputs("troubleshoot-db-connections", {"terminate": "pids"})
    assert errors == ["terminate=pids needs pids (e.g. -e pids=1234,5678)"]


@pytest.mark.parametrize("value", ["-5", "abc", -5, "1.5", True])
def test_tail_refused(value):
    with pytest.raises(InputError, match="tail"):
        inputs.validate_tail(value)


def test_tail_accepted():
    assert inputs.validate_tail("50") == 50 and inputs.validate_tail("all") == "all" and inputs.validate_tail(0) == 0


def test_since_future_unix_time_refused_and_iso_accepted():
    with pytest.raises(InputError, match="in the future"):
        inputs.validate_time("99999999999", "since")
    assert inputs.validate_time("2026-12-01T02:00:00Z", "since", now=time.time()) == "2026-12-01T02:00:00Z"
    assert inputs.validate_time("10m", "since") == "10m"
    assert inputs.validate_time("1h30m", "since") == "1h30m"
    assert inputs.validate_time("7d", "since") == "7d" and inputs.validate_time("300", "since") == "300"
    with pytest.raises(InputError, match="5138-11-16"):
        inputs.validate_time("99999999999", "until")
    assert inputs.validate_time(str(int(time.time()) - 60), "since")
    with pytest.raises(InputError, match="not a time"):
        inputs.validate_time("yesterday", "since")


def test_regex_pattern():
    with pytest.raises(InputError, match="not a valid regular expression"):
        inputs.validate_regex("(")
    assert inputs.validate_regex("ERROR|WARN") == "ERROR|WARN"


@pytest.mark.parametrize("value, words", [
    ("::ffff:127.0.0.1", "IPv4-mapped"), ("fe80::1%eth0", "zone id"), ("2001:db8::/16", "wider than /32"),
    ("attacker.example.com", "not an IP address"), ("203.0.113.9,,198.51.100.1", "empty entry"), ("", "empty entry"),
    ("127.0.0.0/8", "loopback"), ("0.0.0.0/0", "loopback or unspecified"), ("fe80::1", "link-local"),
    ("10.0.0.0/7", "wider than /8"),
])
def test_block_ips_refused(value, words):
    with pytest.raises(InputError, match=words):
        inputs.validate_block_ips(value)


def test_block_ips_accepted_and_normalised():
    assert inputs.validate_block_ips("203.0.113.9, 198.51.100.0/24") == ["203.0.113.9/32", "198.51.100.0/24"]
    assert inputs.validate_block_ips(["2001:db8::1"]) == ["2001:db8::1/128"]


@pytest.mark.parametrize("value, words", [("all,x", "cannot be combined"), ("a*", "too broad"), ("**", "every key"),
                                          ("a*b", "wildcard other"), ("a b", "not a key id"),
                                          ("abc,,xyz", "empty entry")])
def test_revoke_api_keys_refused(value, words):
    with pytest.raises(InputError, match=words):
        inputs.validate_api_key_selection(value)


def test_revoke_api_keys_accepted():
    assert inputs.validate_api_key_selection("all") == "all"
    assert inputs.validate_api_key_selection(["all"]) == "all"
    assert inputs.validate_api_key_selection("key_abc,em_123,7,emk_*") == ["key_abc", "em_123", "7", "emk_*"]


def test_include_prefixes():
    check = inputs.INPUTS["include_prefixes"]["check"]
    assert check("session,ratelimit") == ["session", "ratelimit"] and check(["config"]) == ["config"]
    for bad in ("session:*", "a b", "x,,y", "ses*", "", "a:b"):
        with pytest.raises(InputError, match="include_prefixes"):
            check(bad)


def test_services_names():
    assert inputs.parse_name_list("backend, nginx,backend") == ["backend", "nginx"]
    for bad in ("", "backend,", "a b", "../x", ["ok", 3]):
        with pytest.raises(InputError, match="services"):
            inputs.parse_name_list(bad)


def test_validate_inputs_names_every_bad_value_and_only_the_playbooks_own_inputs():
    normalised, errors = inputs.validate_inputs("deploy", {"confirm": "ture", "version": "$(id)", "scope": "bogus"})
    assert normalised == {} and len(errors) == 2
    assert errors[0].startswith("confirm") and errors[1].startswith("version")
    normalised, errors = inputs.validate_inputs("cache-clear", {"confirm": "yes", "pattern": "cache:*"})
    assert errors == [] and normalised == {"confirm": True, "pattern": "cache:*"}
    _, errors = inputs.validate_inputs("cache-clear", {"pattern": "**", "allow_all": "true"})
    assert errors == []
    _, errors = inputs.validate_inputs("cache-clear", {"pattern": "**"})
    assert len(errors) == 1 and "allow_all" in errors[0]
    _, errors = inputs.validate_inputs("no-such", {})
    assert "unknown playbook" in errors[0]


def test_every_playbook_is_in_the_spec_and_runs_the_check_first():
    names = sorted(p.stem for p in (ROOT / "playbooks").glob("*.yml"))
    assert names == sorted(inputs.PLAYBOOK_INPUTS)
    for name in names:
        text = (ROOT / "playbooks" / f"{name}.yml").read_text()
        check = text.index("validate_inputs:", text.index("  pre_tasks:"))
        assert text.index("  pre_tasks:\n    - name: Check the extra vars") < check, name
        assert f"        playbook: {name}\n" in text, name


def test_refusal_message_lists_the_playbooks_inputs():
    msg = inputs.refusal("cache-flush", ["scope must be one of cache_db, all (got 'ALL')"])
    assert msg.startswith("bad input for cache-flush: scope must be") and "(extra vars this playbook takes: confirm, " \
        "scope, include_prefixes)" in msg and msg.endswith("nothing was changed")
