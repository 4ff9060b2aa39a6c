"""Filters of the ssl role: the served certificate's checks (expiry, names, chain), the files check and the
role's outcome (status, severity, summary). No TLS server, no files: results as the modules return them."""
from __future__ import annotations

import datetime
import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location(
    "ssl_filters", ROOT / "roles" / "ssl" / "filter_plugins" / "ssl_filters.py")
sf = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(sf)

NOW = datetime.datetime(2026, 12, 3, 12, 0, 0)
LEAF = {"commonName": "marketplace.example"}
CA = {"commonName": "Example Intermediate CA"}


def info(days=60.0, subject=LEAF, issuer=CA, sans=("DNS:marketplace.example",), fp="AA:BB", key="PUB"):
    end = NOW + datetime.timedelta(days=days)
    return {"not_after": end.strftime("%Y%m%d%H%M%SZ"), "subject": subject, "issuer": issuer,
            "subject_alt_name": list(sans), "fingerprints": {"sha256": fp}, "public_key": key}


def served(chain=2):
    return {"cert": "PEM", "unverified_chain": ["PEM"] * chain}


def checks(served_result, info_result, allow_self_signed=False, domain="marketplace.example"):
    return {c["name"]: c for c in sf.ssl_served_checks(served_result, info_result, domain, "30", 7,
                                                       allow_self_signed, "127.0.0.1", 443, now=NOW)}


def test_no_tls_answer_is_one_critical_check():
    out = sf.ssl_served_checks({"msg": "connection refused"}, {"skipped": True}, "d", 30, 7, False, "h", 8443)
    assert out == [{"name": "ssl_connect", "component": "nginx", "status": "critical", "value": None,
                    "threshold": None, "message": "no TLS answer from h:8443: connection refused"}]
    assert sf.ssl_served_checks({}, None, "d", 30, 7)[0]["message"].endswith(": unknown error")


@pytest.mark.parametrize("days,status", [(60, "ok"), (30.04, "ok"), (29.9, "warning"), (6.9, "critical"),
                                         (-2.5, "critical")])
def test_expiry_thresholds(days, status):
    exp = checks(served(), info(days))["ssl_expiry"]
    assert exp["status"] == status and exp["value"] == round(days, 1)
    assert exp["threshold"] == {"warning": 30, "critical": 7}
    if days < 0:
        assert exp["message"] == "certificate EXPIRED 2.5 days ago (2026-12-01 00:00:00 UTC)"
    else:
        assert exp["message"].startswith(f"certificate expires in {float(round(days, 1))} days (")
    assert exp["message"].endswith(" UTC)")


def test_names_san_wildcard_and_cn_fallback():
    assert checks(served(), info())["ssl_names"]["status"] == "ok"
    assert checks(served(), info(sans=["DNS:*.example"]))["ssl_names"]["status"] == "ok"
    assert checks(served(), info(sans=[]))["ssl_names"]["status"] == "ok"           # no SAN: the CN counts
    bad = checks(served(), info(sans=["DNS:other.example", "IP:127.0.0.1"]))["ssl_names"]
    assert bad["status"] == "critical" and bad["threshold"] == "marketplace.example"
    assert bad["message"] == ("certificate does not name marketplace.example (subject CN marketplace.example, "
                              "SAN DNS:other.example, IP:127.0.0.1)")


def test_chain():
    ok = checks(served(2), info())["ssl_chain"]
    assert ok["status"] == "ok" and ok["message"] == "chain of 2 certificates served"
    assert ok["value"] == {"served_certificates": 2, "self_signed": False, "issuer": "Example Intermediate CA"}
    leaf = checks(served(1), info())["ssl_chain"]
    assert leaf["status"] == "critical" and "issued by Example Intermediate CA is missing" in leaf["message"]
    assert checks({"cert": "PEM"}, info())["ssl_chain"]["value"]["served_certificates"] == 1
    self_signed = checks(served(1), info(issuer=LEAF))["ssl_chain"]
    assert self_signed["status"] == "warning" and self_signed["message"].endswith("browsers will not trust it")
    allowed = checks(served(1), info(issuer=LEAF), allow_self_signed=True)["ssl_chain"]
    assert allowed["status"] == "ok" and allowed["message"] == "self-signed certificate (allowed here)"


def stats(cert=True, key=True):
    return {"results": [{"item": "server.crt", "stat": {"exists": cert}},
                        {"item": "server.key", "stat": {"exists": key}}]}


@pytest.mark.parametrize("kwargs,status,message", [
    ({}, "ok", "the files in /ssl are the certificate nginx serves"),
    ({"served_fp": "CC:DD"}, "warning", "the certificate in /ssl is not the one nginx serves (not reloaded?)"),
    ({"served_fp": None}, "warning", "the certificate in /ssl is not the one nginx serves (not reloaded?)"),
    ({"key": "OTHER"}, "critical", "the key in /ssl does not match the certificate"),
    ({"cert": False}, "critical", "missing server.crt in /ssl"),
    ({"cert": False, "key_file": False}, "critical", "missing server.crt and server.key in /ssl"),
])
def test_files_check(kwargs, status, message):
    cert, key_file = kwargs.get("cert", True), kwargs.get("key_file", True)
    file_info = info() if cert else {"skipped": True}
    key_info = {"public_key": kwargs.get("key", "PUB")} if key_file else {"skipped": True}
    served_fp = kwargs.get("served_fp", "AA:BB")
    served_info = {"fingerprints": {"sha256": served_fp}} if served_fp else None
    out = sf.ssl_files_check(stats(cert, key_file), file_info, key_info, served_info, "/ssl",
                             "server.crt", "server.key")
    assert (out["name"], out["status"], out["message"]) == ("ssl_files", status, message)
    assert out["value"]["certificate"] is cert and out["value"]["key"] is key_file


def test_outcome_severity_and_summary():
    ok = [{"name": "ssl_expiry", "status": "ok", "value": 40.0, "message": "certificate expires in 40.0 days"},
          {"name": "ssl_files", "status": "ok", "message": "fine"}]
    assert sf.ssl_outcome(ok) == {"status": "ok", "severity": None,
                                  "summary": "certificate ok: certificate expires in 40.0 days"}
    warn = [*ok, {"name": "ssl_chain", "status": "warning", "message": "self-signed"}]
    assert sf.ssl_outcome(warn) == {"status": "warning", "severity": "P3", "summary": "self-signed"}
    crit = [*warn, {"name": "ssl_names", "status": "critical", "message": "names"}]
    assert sf.ssl_outcome(crit)["severity"] == "P2" and sf.ssl_outcome(crit)["summary"] == "self-signed; names"
    expired = [{"name": "ssl_expiry", "status": "critical", "value": -1.0, "message": "EXPIRED"}]
    assert sf.ssl_outcome(expired) == {"status": "critical", "severity": "P1", "summary": "EXPIRED"}
    connect = [{"name": "ssl_connect", "status": "critical", "value": None, "message": "x"}]
    assert sf.ssl_outcome(connect)["severity"] == "P2"
    assert sf.ssl_outcome([{"name": "x", "status": "unknown", "message": "?"}])["status"] == "warning"
