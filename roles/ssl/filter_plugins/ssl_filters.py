"""Decisions of the ssl role that are not simple lookups: the checks of the served certificate (expiry, names,
chain) and of the files nginx serves from, and whether a failed renewal really left the previous certificate in
place (files and what nginx serves), judged from what the rescue observed."""
from __future__ import annotations

import datetime
import re

_WS = re.compile(r"\s+")


def _pem(value) -> str:
    return _WS.sub("", value) if isinstance(value, str) else ""


def _file_state(stat_results) -> list:
    """[(path, exists, checksum)] from a looped ansible.builtin.stat result (or its .results list)."""
    if isinstance(stat_results, dict):
        stat_results = stat_results.get("results", [])
    out = []
    for res in stat_results or []:
        st = (res or {}).get("stat") or {}
        out.append((st.get("path") or res.get("item"), bool(st.get("exists")), st.get("checksum")))
    return out


def ssl_restore_verdict(before_files, after_files, before_served, after_served, installed=False):
    """Whether the previous certificate is back after a failed renewal.

    before_files/after_files: looped stat results (checksums) of the certificate and key taken before anything
    changed and after the rescue; before_served/after_served: the PEM nginx served before and serves after
    (None or '' when nothing answered); installed: the new files had been copied in before the failure.
    Returns {back, files_back, served_back, message}; served_back is None when nginx served nothing before
    (nothing to compare with)."""
    before, after = _file_state(before_files), _file_state(after_files)
    files_back = bool(before) and len(before) == len(after) and all(
        b[1] == a[1] and b[2] == a[2] for b, a in zip(before, after, strict=False))
    changed = [a[0] for b, a in zip(before, after, strict=False) if (b[1], b[2]) != (a[1], a[2])]
    was, now = _pem(before_served), _pem(after_served)
    served_back = None if not was else (now == was)
    parts = []
    if files_back:
        parts.append("the certificate and key files are the previous ones (checksums verified)"
                     if installed else "nothing was installed: the certificate and key files are unchanged")
    else:
        parts.append("the previous files are NOT back: %s differ%s from before the renewal"
                     % (", ".join(str(c) for c in changed) or "the files", "s" if len(changed) == 1 else ""))
    if served_back is None:
        parts.append("nginx served no certificate before the renewal" + (
            "" if now else " and serves none now"))
    elif served_back:
        parts.append("nginx serves the previous certificate")
    elif not now:
        parts.append("nginx does NOT answer over TLS now")
    else:
        parts.append("nginx does NOT serve the previous certificate")
    back = files_back and served_back is not False
    return {"back": back, "files_back": files_back, "served_back": served_back,
            "message": "; ".join(parts)}


def _days_left(not_after: str, now=None) -> tuple[datetime.datetime, float]:
    """(not after as a naive UTC datetime, days left rounded to 0.1) from x509_certificate_info's not_after."""
    end = datetime.datetime.strptime(not_after, "%Y%m%d%H%M%SZ")
    now = now or datetime.datetime.now(datetime.UTC).replace(tzinfo=None)
    return end, round((end - now).total_seconds() / 86400, 1)


def ssl_served_checks(served, info, domain, warning_days, critical_days, allow_self_signed=False, host="",
                      port="", now=None):
    """The checks of the certificate nginx serves: ssl_connect (critical) when nothing answered over TLS
    (served has no cert), else ssl_expiry, ssl_names and ssl_chain.

    served: community.crypto.get_certificate's result; info: x509_certificate_info's result for served.cert;
    now: a naive UTC datetime (tests), default the current time."""
    served = served or {}
    if not served.get("cert"):
        return [{"name": "ssl_connect", "component": "nginx", "status": "critical", "value": None, "threshold": None,
                 "message": "no TLS answer from %s:%s: %s" % (host, port, served.get("msg") or "unknown error")}]
    info = info or {}
    end, days = _days_left(info["not_after"], now)
    warning, critical = float(warning_days), float(critical_days)
    expiry = {
        "name": "ssl_expiry", "component": "nginx",
        "status": "critical" if days < critical else ("warning" if days < warning else "ok"),
        "value": days, "threshold": {"warning": int(warning), "critical": int(critical)},
        "message": ("certificate EXPIRED %s days ago" % abs(days) if days < 0
                    else "certificate expires in %s days" % days) + " (%s UTC)" % end}
    sans = info.get("subject_alt_name") or []
    subject, issuer = info.get("subject") or {}, info.get("issuer") or {}
    cn = subject.get("commonName", "")
    wildcard = "DNS:*." + ".".join(str(domain).split(".")[1:])
    name_ok = ("DNS:" + str(domain)) in sans or wildcard in sans or (not sans and cn == domain)
    names = {
        "name": "ssl_names", "component": "nginx", "status": "ok" if name_ok else "critical",
        "value": {"subject": subject, "issuer": issuer, "san": sans}, "threshold": domain,
        "message": "certificate names %s" % domain if name_ok
        else "certificate does not name %s (subject CN %s, SAN %s)" % (domain, cn, ", ".join(sans))}
    self_signed = subject == issuer
    count = len(served.get("unverified_chain", [served["cert"]]) or [])
    if self_signed:
        status = "ok" if allow_self_signed else "warning"
        message = "self-signed certificate" + (
            " (allowed here)" if allow_self_signed else ": browsers will not trust it")
    elif count < 2:
        status = "critical"
        message = ("only the leaf certificate is served; the intermediate issued by %s is missing"
                   % issuer.get("commonName", "?"))
    else:
        status, message = "ok", "chain of %d certificates served" % count
    chain = {
        "name": "ssl_chain", "component": "nginx", "status": status,
        "value": {"served_certificates": count, "self_signed": self_signed,
                  "issuer": issuer.get("commonName", issuer)},
        "threshold": "leaf plus intermediates", "message": message}
    return [expiry, names, chain]


def ssl_files_check(files, file_info, key_info, served_info, ssl_dir, cert_file, key_file):
    """The ssl_files check: the certificate and key files exist, the key is the certificate's, and the certificate
    is the one nginx serves.

    files: the looped stat result of [cert_file, key_file]; file_info/key_info: x509_certificate_info and
    openssl_privatekey_info of the files (skipped results when a file is missing); served_info: the served
    certificate's x509_certificate_info (None or a skipped result when nothing answered)."""
    results = (files or {}).get("results", []) if isinstance(files, dict) else (files or [])
    cert_exists = bool(((results[0] or {}).get("stat") or {}).get("exists")) if len(results) > 0 else False
    key_exists = bool(((results[1] or {}).get("stat") or {}).get("exists")) if len(results) > 1 else False
    file_info, key_info = file_info or {}, key_info or {}
    file_fp = (file_info.get("fingerprints") or {}).get("sha256", "")
    served_fp = ((served_info or {}).get("fingerprints") or {}).get("sha256")
    matches_served = served_fp is not None and file_fp == served_fp
    key_matches = key_exists and cert_exists and key_info.get("public_key", "") == file_info.get("public_key", "-")
    if not (cert_exists and key_exists):
        status = "critical"
        missing = " and ".join(name for name, ok in ((cert_file, cert_exists), (key_file, key_exists)) if not ok)
        message = "missing %s in %s" % (missing, ssl_dir)
    elif not key_matches:
        status, message = "critical", "the key in %s does not match the certificate" % ssl_dir
    elif not matches_served:
        status, message = "warning", "the certificate in %s is not the one nginx serves (not reloaded?)" % ssl_dir
    else:
        status, message = "ok", "the files in %s are the certificate nginx serves" % ssl_dir
    return {"name": "ssl_files", "component": "nginx", "status": status,
            "value": {"dir": ssl_dir, "certificate": cert_exists, "key": key_exists,
                      "key_matches_certificate": key_matches, "matches_served": matches_served,
                      "file_fingerprint": file_fp},
            "threshold": "files present, key matching, same as served", "message": message}


def ssl_outcome(checks):
    """{status, severity, summary} of the role's checks: P1 for an expired certificate, P2 for another critical
    check, P3 for a warning."""
    statuses = [c.get("status") for c in checks or []]
    expired = any(c.get("name") == "ssl_expiry" and isinstance(c.get("value"), (int, float))
                  and not isinstance(c.get("value"), bool) and c["value"] < 0 for c in checks or [])
    status = "critical" if "critical" in statuses else (
        "warning" if "warning" in statuses or "unknown" in statuses else "ok")
    severity = "P1" if expired else ("P2" if "critical" in statuses else ("P3" if "warning" in statuses else None))
    bad = "; ".join(str(c.get("message")) for c in checks or [] if c.get("status") != "ok")
    expiry = next((c.get("message") for c in checks or [] if c.get("name") == "ssl_expiry"), "")
    return {"status": status, "severity": severity, "summary": bad or "certificate ok: %s" % expiry}


class FilterModule:
    def filters(self):
        return {"ssl_restore_verdict": ssl_restore_verdict, "ssl_served_checks": ssl_served_checks,
                "ssl_files_check": ssl_files_check, "ssl_outcome": ssl_outcome}
