"""Filters of the security role: block_ips validation, nftables parsing, evidence lines, key selection, HS256."""
from __future__ import annotations

import base64
import hashlib
import hmac
import importlib.util
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location(
    "security_filters", ROOT / "roles" / "security" / "filter_plugins" / "security_filters.py")
sf = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(sf)

PROTECTED = sf.security_protected_list([
    {"addresses": ["192.0.2.2", "fd00::2", "fe80::fc:ff:fe00:1%eth0"], "reason": "an address of the target demo"},
    {"addresses": ["10.9.8.7"], "reason": "an address of the controller"},
    {"addresses": ["db.internal", ""], "reason": "the database"},       # host names and blanks are dropped
])


def check(entries, **kw):
    return sf.security_check_block_ips(entries, PROTECTED, **kw)


def test_protected_list_keeps_addresses_only():
    assert [p["address"] for p in PROTECTED] == ["192.0.2.2", "fd00::2", "fe80::fc:ff:fe00:1", "10.9.8.7"]


@pytest.mark.parametrize("entry, reason", [
    ("0.0.0.0/0", "would block every IPv4 address"),
    ("::/0", "would block every IPv6 address"),
    ("999.1.1.1", "is not a valid IPv4/IPv6 address or CIDR network"),
    ("evil.example.com", "hostnames are not accepted"),
    ("", "is empty"),
    ("127.0.0.1", "is a loopback address"),
    ("127.0.0.0/8", "is a loopback address"),
    ("64.0.0.0/2", "is broader than /8"),
    ("::1", "is a loopback address"),
    ("::ffff:127.0.0.1", "is a loopback address"),
    ("0.0.0.0", "is the unspecified address"),  # noqa: S104
    ("224.0.0.1", "is a multicast address"),
    ("10.0.0.1/24", "has host bits set: block the address 10.0.0.1 or the network 10.0.0.0/24"),
    ("192.0.2.2", "is an address of the target demo"),
    ("192.0.2.0/24", "contains 192.0.2.2 (an address of the target demo)"),
    ("10.9.8.7", "is an address of the controller"),
    ("fd00::/64", "contains fd00::2 (an address of the target demo)"),
    ("2001::/16", "is broader than /32"),
])
def test_unsafe_entries_are_refused_with_the_reason(entry, reason):
    (result,) = check([entry])
    assert result["ok"] is False and reason in result["reason"], result
    message = sf.security_refusal_message([result])
    assert f"'{entry}' " in message and reason in message and "Nothing was changed" in message


def test_valid_entries_are_normalised_and_deduplicated():
    results = check("198.51.100.77, 2001:DB8::77 ,198.51.100.0/28, 198.51.100.77")
    assert all(r["ok"] for r in results)
    assert sf.security_to_networks(results) == ["198.51.100.77", "2001:db8::77", "198.51.100.0/28"]
    assert sf.security_by_family(sf.security_to_networks(results), "ipv6") == ["2001:db8::77"]
    assert sf.security_refusal_message(results) == ""


def test_one_bad_entry_names_only_itself():
    results = check(["198.51.100.77", "999.1.1.1"])
    assert [r["ok"] for r in results] == [True, False]
    assert sf.security_refusal_message(results).startswith("refusing to block: '999.1.1.1' is not a valid")


@pytest.mark.parametrize("value, expected", [
    (None, []), ("", []), ("1.2.3.4", ["1.2.3.4"]), ("1.2.3.4, 5.6.7.8", ["1.2.3.4", "5.6.7.8"]),
    ('["1.2.3.4", "5.6.7.8"]', ["1.2.3.4", "5.6.7.8"]), (["1.2.3.4 "], ["1.2.3.4"]), (7, ["7"]),
])
def test_inputs_as_lists(value, expected):
    assert sf._as_list(value) == expected


def test_nft_elements_and_coverage():
    text = json.dumps({"nftables": [{"metainfo": {}}, {"set": {"name": "blocked_v4", "elem": [
        "198.51.100.7", {"prefix": {"addr": "203.0.113.0", "len": 24}}, {"range": ["10.0.0.0", "10.0.0.255"]},
        {"elem": {"val": "192.0.2.9", "timeout": 60}}]}}]})
    have = sf.security_nft_set_elements(text)
    assert have == ["198.51.100.7", "203.0.113.0/24", "10.0.0.0/24", "192.0.2.9"]
    assert sf.security_not_covered(["203.0.113.77", "198.51.100.8", "10.0.0.5", "2001:db8::1"], have) == [
        "198.51.100.8", "2001:db8::1"]
    assert sf.security_nft_set_elements("") == []


def test_log_patterns_and_line_selection():
    import re

    nets = ["198.51.100.77", "203.0.113.0/24", "2001:db8::7", "2001:db8::/48"]
    patterns = [re.compile(p, re.I) for p in sf.security_log_patterns(nets)]
    lines = [
        "WARN unauthorized: invalid or expired token from 198.51.100.77",
        "WARN 198.51.100.7 \"GET /\" 401",            # not the blocked host (prefix of it)
        "WARN 198.51.100.770 nonsense",               # not an address
        "203.0.113.9 - - [..] \"GET /api/me HTTP/1.1\" 401 10",
        "from 2001:DB8::7 again",
        "from 2001:db8:0:1::5",                        # inside 2001:db8::/48
        "from 2001:db9::5",
        "2026-01-31T02:00:01.000Z INFO 127.0.0.1 \"GET /api/health\" 200",
    ]
    candidates = [line for line in lines if any(p.search(line) for p in patterns)]
    kept = sf.security_lines_in(candidates, nets)
    assert kept == [lines[0], lines[3], lines[4], lines[5]]


def test_evidence_files_sort_lines_by_kind():
    result = {"logs": {"backend": {"containers": ["b-1"], "lines_scanned": 9, "match_count": 3, "pattern_counts": {},
                                   "matches": ["WARN unauthorized: no credentials from 198.51.100.77",
                                               "INFO 198.51.100.77 \"GET /api/listings\" 200",
                                               "WARN failed login for \"x\" from 127.0.0.1"]}}}
    ev = sf.security_evidence_files(result, ["unauthori[sz]ed", "failed"], ["198.51.100.77"])
    files = {f["path"]: f["lines"] for f in ev["files"]}
    assert files["logs/backend-auth-failures.log"] == [result["logs"]["backend"]["matches"][0],
                                                       result["logs"]["backend"]["matches"][2]]
    assert files["logs/backend-blocked-addresses.log"] == result["logs"]["backend"]["matches"][:2]
    assert ev["lines"] == 3 and ev["summary"]["backend"]["blocked_address_lines"] == 2


@pytest.mark.parametrize("value, expected", [
    ("all", {"all": True, "entries": [], "errors": []}),
    (["ALL"], {"all": True, "entries": [], "errors": []}),
    ("emk_demo_5, 42, emk_live_*", {"all": False, "entries": ["emk_demo_5", "42", "emk_live_*"], "errors": []}),
    ([], {"all": False, "entries": [], "errors": []}),
])
def test_key_selection(value, expected):
    assert sf.security_key_selection(value) == expected


@pytest.mark.parametrize("value, error", [
    (["all", "emk_demo_5"], "cannot be combined"),
    (["*"], "say revoke_api_keys=all"),
    (["emk_*_x"], "only a trailing * is supported"),
])
def test_bad_key_selections(value, error):
    errors = sf.security_key_selection(value)["errors"]
    assert errors and error in errors[0]


def test_hs256_matches_the_backend_algorithm():
    token = sf.security_jwt_hs256({"sub": "0", "exp": 2}, "s3cret")
    header, body, sig = token.split(".")
    expected = hmac.new(b"s3cret", f"{header}.{body}".encode(), hashlib.sha256).digest()
    assert base64.urlsafe_b64decode(sig + "=" * (-len(sig) % 4)) == expected
    assert json.loads(base64.urlsafe_b64decode(body + "==")) == {"sub": "0", "exp": 2}


def test_env_value():
    text = "# c\nA=1\nJWT_SECRET=abc=def\nQ='quoted'\n"
    assert sf.security_env_value(text, "JWT_SECRET") == "abc=def"
    assert sf.security_env_value(text, "Q") == "quoted"
    assert sf.security_env_value(text, "MISSING") is None


# ---------- issue 10: the bad-input matrix at the role level ----------

@pytest.mark.parametrize("entry, reason", [
    ("::ffff:127.0.0.1", "is a loopback address"),
    ("::ffff:198.51.100.7", "is an IPv4-mapped IPv6 address: an IPv6 rule would not stop IPv4 traffic"),
    ("fe80::1%eth0", "carries a zone id (%eth0)"),
    ("fe80::1", "is link-local"),
    ("169.254.10.1", "is link-local"),
    ("2001:db8::/16", "is broader than /32"),
    ("127.0.0.0/8", "is a loopback address"),
    ("10.0.0.0/8", "contains 10.9.8.7 (an address of the controller)"),
    ("evil.example.com", "hostnames are not accepted"),
])
def test_issue10_block_ips_matrix(entry, reason):
    (result,) = check([entry])
    assert result["ok"] is False and reason in result["reason"], result
    assert sf.security_to_networks([result]) == []


def test_the_ssh_connection_source_is_protected():
    # validate.yml reads SSH_CONNECTION on the target; its first field is where the connection comes from.
    ssh_connection = "198.51.100.9 50022 192.0.2.2 22"
    protected = sf.security_protected_list([{"addresses": [ssh_connection.split(" ")[0]],
                                             "reason": "the address the Ansible connection to demo comes from"}])
    (result,) = sf.security_check_block_ips(["198.51.100.0/24"], protected)
    assert not result["ok"]
    assert result["reason"] == "contains 198.51.100.9 (the address the Ansible connection to demo comes from)"


@pytest.mark.parametrize("value", ["198.51.100.7,,198.51.100.8", "198.51.100.7,", ["198.51.100.7", ""],
                                   ["198.51.100.7", None]])
def test_an_empty_block_ips_entry_is_refused(value):
    results = check(value)
    assert [r["ok"] for r in results] == [True, False] or [r["ok"] for r in results] == [True, False, True]
    empty = next(r for r in results if not r["ok"])
    assert empty["entry"] == "" and "is empty" in empty["reason"]
    assert "'' is empty" in sf.security_refusal_message(results)


def test_a_wholly_empty_block_ips_is_nothing_to_block():
    assert check("") == [] and check([]) == [] and check(None) == []


@pytest.mark.parametrize("value, error", [
    ("all,x", "revoke_api_keys=all cannot be combined with other entries"),
    ("a*", "'a*' is too broad: a key prefix glob needs at least 4 characters before the *"),
    ("emk*", "'emk*' is too broad"),
    ("**", "'**' would select every key: say revoke_api_keys=all"),
    ("emk_demo_5,,emk_demo_6", "an entry is empty"),
])
def test_issue10_revoke_api_keys_matrix(value, error):
    sel = sf.security_key_selection(value)
    assert sel["all"] is False and sel["errors"] and error in " ".join(sel["errors"]), sel


def test_a_long_enough_glob_is_accepted():
    assert sf.security_key_selection("emk_live_*") == {"all": False, "entries": ["emk_live_*"], "errors": []}


# ---------- issue 10: every backend replica is verified on its own ----------

PORT_READS = {"results": [
    {"item": "em-backend-1", "rc": 0, "stdout": "3001\n"},
    {"item": "em-backend-2", "rc": 0, "stdout": "3002"},
    {"item": "em-backend-3", "rc": 1, "stdout": ""},
]}


def test_backend_targets_and_probes():
    targets = sf.security_backend_targets(PORT_READS, "127.0.0.1")
    assert targets == [{"container": "em-backend-1", "port": 3001, "url": "http://127.0.0.1:3001"},
                       {"container": "em-backend-2", "port": 3002, "url": "http://127.0.0.1:3002"},
                       {"container": "em-backend-3", "port": None, "url": None}]
    probes = sf.security_backend_probes(targets, "/api/me", "OLD", "NEW")
    assert [(p["name"], p["url"], p["headers"]["Authorization"]) for p in probes] == [
        ("em-backend-1 old", "http://127.0.0.1:3001/api/me", "Bearer OLD"),
        ("em-backend-1 new", "http://127.0.0.1:3001/api/me", "Bearer NEW"),
        ("em-backend-2 old", "http://127.0.0.1:3002/api/me", "Bearer OLD"),
        ("em-backend-2 new", "http://127.0.0.1:3002/api/me", "Bearer NEW")]


def test_one_stale_replica_makes_the_rotation_critical():
    targets = sf.security_backend_targets(PORT_READS, "127.0.0.1")[:2]
    probes = {"probes": {"em-backend-1 old": {"status": 401}, "em-backend-1 new": {"status": 200},
                         "em-backend-2 old": {"status": 200}, "em-backend-2 new": {"status": 401}}}
    verdict = sf.security_judge_backends(targets, probes)
    assert verdict["status"] == "critical"
    assert [b["status"] for b in verdict["backends"]] == ["ok", "critical"]
    assert "em-backend-2 (port 3002): old token HTTP 200, new token HTTP 401" in verdict["message"]


def test_every_replica_ok_and_an_unreachable_one():
    targets = sf.security_backend_targets(PORT_READS, "127.0.0.1")
    probes = {"probes": {"em-backend-1 old": {"status": 401}, "em-backend-1 new": {"status": 200},
                         "em-backend-2 old": {"status": 401}, "em-backend-2 new": {"status": 200}}}
    assert sf.security_judge_backends(targets[:2], probes)["status"] == "ok"
    verdict = sf.security_judge_backends(targets, probes)
    assert verdict["status"] == "warning" and "em-backend-3" in verdict["message"]
    assert sf.security_judge_backends([], {})["status"] == "critical"


# ---------- issue 10, defect 7: what blocks ----------

ACTIVE_UFW = {"rc": 0, "stdout": "Status: active\n[ 1] 22/tcp ALLOW IN Anywhere"}
HAVE = {"rc": 0, "stdout": "x"}
MISSING = {"rc": 2, "stdout": ""}


@pytest.mark.parametrize("backend, ufw, nft, ipt, chosen", [
    # an active ufw no longer wins: its rules come after Docker's accept rules for published ports
    ("auto", ACTIVE_UFW, HAVE, HAVE, "nftables"),
    ("auto", ACTIVE_UFW, MISSING, HAVE, "iptables"),
    ("auto", ACTIVE_UFW, MISSING, MISSING, "ufw"),
    ("auto", {"rc": 0, "stdout": "Status: inactive"}, MISSING, MISSING, "none"),
    ("auto", {"skipped": True}, {"skipped": True}, {"skipped": True}, "none"),
    ("ufw", {"rc": 0, "stdout": "Status: inactive"}, HAVE, HAVE, "ufw"),
    ("nftables", ACTIVE_UFW, MISSING, HAVE, "none"),
    ("iptables", None, HAVE, HAVE, "iptables"),
])
def test_firewall_choice_prefers_the_forward_hook(backend, ufw, nft, ipt, chosen):
    assert sf.security_choose_firewall(backend, ufw, nft, ipt) == chosen


def _nft_rule(chain, set_name, verdict="drop"):
    return {"rule": {"family": "inet", "table": "t", "chain": chain, "expr": [
        {"match": {"op": "==", "left": {"payload": {"protocol": "ip", "field": "saddr"}}, "right": set_name}},
        {"counter": {"packets": 0, "bytes": 0}}, {verdict: None}]}}


def test_nft_coverage_reads_hooks_and_addresses():
    table = {"nftables": [
        {"table": {"family": "inet", "name": "marketplace_breach"}},
        {"set": {"name": "blocked_v4", "elem": ["198.51.100.77"]}},
        {"chain": {"name": "input", "hook": "input", "prio": -10, "policy": "accept"}},
        {"chain": {"name": "forward", "hook": "forward", "prio": -10, "policy": "accept"}},
        _nft_rule("input", "@blocked_v4"), _nft_rule("input", "@blocked_v6"), _nft_rule("forward", "@blocked_v4")]}
    cov = sf.security_nft_coverage(json.dumps(table))
    assert cov["table"] == "inet marketplace_breach" and cov["hooks"] == ["forward", "input"]
    assert cov["forward"] is True and cov["addresses"] == ["198.51.100.77"]
    assert cov["summary"] == (
        "table inet marketplace_breach drops packets from @blocked_v4, @blocked_v6 (198.51.100.77) in chain forward "
        "(hook forward, priority -10) and chain input (hook input, priority -10): traffic to this host and traffic "
        "forwarded to containers (Docker-published ports included: DNAT keeps the source address, and the chain runs "
        "before the filter chains of Docker and ufw at priority 0)")
    assert {c["chain"]: c["drops_from"] for c in cov["chains"]} == {"forward": ["@blocked_v4"],
                                                                    "input": ["@blocked_v4", "@blocked_v6"]}
    # a forward chain that only counts (no drop) does not block forwarded traffic
    table["nftables"][-1] = _nft_rule("forward", "@blocked_v4", verdict="accept")
    cov = sf.security_nft_coverage(json.dumps(table))
    assert cov["hooks"] == ["input"] and cov["forward"] is False
    assert cov["summary"].endswith("traffic to this host only, NOT traffic forwarded to containers")
    assert sf.security_nft_coverage("")["hooks"] == []


# ---------- judged in Python (issue 11): the inputs, the rotation, the outcome ----------

def test_judge_inputs_accepts_and_names_what_is_protected():
    keys = sf.security_key_selection(["emk_demo_5"])
    out = sf.security_judge_inputs(["198.51.100.77", "198.51.100.77"], keys, PROTECTED)
    assert out["refused"] is False and out["refusal"] == "" and out["actions"] == []
    assert out["networks"] == ["198.51.100.77"]
    assert out["check"] == {"name": "breach_inputs", "status": "ok", "threshold": None,
                            "value": {"block": ["198.51.100.77"], "revoke_api_keys": ["emk_demo_5"]},
                            "message": "to block: 198.51.100.77; API keys to revoke: emk_demo_5; "
                                       "protected: 192.0.2.2, fd00::2, fe80::fc:ff:fe00:1, 10.9.8.7"}
    assert out["timeline"] == "inputs accepted (1 address(es) to block)"


def test_judge_inputs_without_addresses_names_no_protected_list():
    out = sf.security_judge_inputs([], sf.security_key_selection("all"), None)
    assert out["check"]["message"] == "to block: nothing; API keys to revoke: all"
    assert out["check"]["value"] == {"block": [], "revoke_api_keys": "all"}
    none = sf.security_judge_inputs([], sf.security_key_selection([]), None)
    assert none["check"]["message"] == "to block: nothing; API keys to revoke: none"


def test_judge_inputs_refuses_the_whole_run():
    keys = sf.security_key_selection(["emk_demo_5", "a*"])
    out = sf.security_judge_inputs(["198.51.100.77", "0.0.0.0/0"], keys, PROTECTED)
    assert out["refused"] is True and out["networks"] == ["198.51.100.77"]
    assert out["refusal"].startswith("refusing to block: '0.0.0.0/0' would block every IPv4 address")
    assert "refusing to revoke_api_keys: 'a*' is too broad" in out["refusal"]
    check = out["check"]
    assert check["status"] == "critical" and check["message"] == out["refusal"]
    assert [r["entry"] for r in check["value"]["refused_ips"]] == ["0.0.0.0/0"]
    assert len(check["value"]["key_errors"]) == 1
    assert out["actions"] == [{"name": "validate inputs", "changed": False, "detail": out["refusal"]}]
    assert out["timeline"] == "refused: " + out["refusal"]
    only_keys = sf.security_judge_inputs([], sf.security_key_selection(["all", "x"]), None)
    assert only_keys["refusal"] == ("refusing to revoke_api_keys: revoke_api_keys=all cannot be combined with "
                                    "other entries")


ROTATION = {"key": "JWT_SECRET", "env_file": "/s/stack.env", "secret_length": 64, "replicas": 2,
            "verify_mode": "login", "verify_note": "", "old_token_before_rotation": 200,
            "old_token_after_rotation": 401, "new_login": 200, "new_token": 200}
BACKENDS_OK = {"status": "ok", "message": "each of the 2 backend replica(s) ...", "backends": []}


def rotation(**kw):
    return sf.security_judge_rotation({**ROTATION, **kw}, kw.pop("backends", BACKENDS_OK), "backend")


def test_judge_rotation_ok():
    out = rotation()
    check = out["check"]
    assert check["name"] == "breach_jwt_rotation" and check["status"] == "ok"
    assert check["threshold"] == {"old_token_before": 200, "old_token_after": 401, "new_token": 200}
    assert check["message"] == ("JWT secret rotated: tokens issued before the rotation are rejected (401), new logins "
                                "work; each of the 2 backend replica(s) ...")
    assert out["detail"] == ("wrote a new 64-character JWT_SECRET into /s/stack.env and recreated backend "
                             "(2 replica(s)); token issued before the rotation: HTTP 401 (was 200); "
                             "new login: HTTP 200, new token: HTTP 200")
    assert out["timeline"] == "rotated JWT_SECRET, backend recreated; old token 401, new login 200"
    signed = rotation(verify_mode="signed_token", new_login="n/a")
    assert "new tokens are accepted" in signed["check"]["message"] and "new login" not in signed["detail"]
    assert signed["timeline"].endswith("new token 200")


def test_judge_rotation_warnings():
    note = rotation(verify_note="login as x failed before the rotation")["check"]
    assert note["status"] == "warning" and note["message"] == (
        "JWT secret rotated, the old token is rejected and new tokens work, but login as x failed before the "
        "rotation; each of the 2 backend replica(s) ...")
    before = rotation(old_token_before_rotation=401)["check"]
    assert before["status"] == "warning" and before["message"].endswith(
        "but the old token already got HTTP 401 before the rotation, so its rejection proves little")
    unverified = sf.security_judge_rotation(ROTATION, {"status": "warning", "message": "could not reach b1"}, "backend")
    assert unverified["check"]["status"] == "warning"
    assert unverified["check"]["message"].endswith("but could not reach b1")


def test_judge_rotation_critical():
    out = rotation(old_token_after_rotation=200)
    assert out["check"]["status"] == "critical"
    assert out["check"]["message"] == ("JWT rotation NOT verified: through nginx the old token got HTTP 200 "
                                       "(want 401), the new login/token got HTTP 200 (want 200); "
                                       "each of the 2 backend replica(s) ...")
    assert out["timeline"] == "rotated but NOT verified: old token 200, new token 200"
    replica = sf.security_judge_rotation(ROTATION, {"status": "critical", "message": "b2 not rotated"}, "backend")
    assert replica["check"]["status"] == "critical" and replica["check"]["message"].endswith("; b2 not rotated")


def test_outcome():
    ok = [{"name": "a", "status": "ok", "message": "fine"}]
    actions = [{"name": "block addresses", "changed": True}, {"name": "revoke API keys", "changed": False},
               {"name": "rotate JWT secret", "changed": True}]
    assert sf.security_outcome(ok, actions) == {"status": "ok",
                                                "summary": "breach contained: block addresses, rotate JWT secret"}
    assert sf.security_outcome(ok, []) == {"status": "ok", "summary": "breach contained: nothing to change"}
    mixed = [*ok, {"name": "b", "status": "unknown", "message": "hm"},
             {"name": "c", "status": "warning", "message": "w"}]
    assert sf.security_outcome(mixed, actions) == {"status": "warning", "summary": "hm; w"}
    worst = [*mixed, {"name": "d", "status": "critical", "message": "x"}]
    assert sf.security_outcome(worst, [])["status"] == "critical"
