"""certificate_check (the ssl role's refusal before install) and ssl_restore_verdict (what its rescue reports),
on real certificates and keys made with cryptography."""
from __future__ import annotations

import importlib.util

import pytest

from tests.helpers import certs
from tests.helpers.modules import ROOT, load_module, run_module

DOMAIN = "marketplace.local"
KEY = certs.new_key()
OTHER_KEY = certs.new_key()


def judge(cert: bytes, key=KEY, domain: str = DOMAIN, **kw) -> dict:
    return load_module("certificate_check").judge(cert, None if key is None else certs.key_pem(key), domain, **kw)


def test_a_good_certificate_passes():
    res = judge(certs.make_cert(KEY))
    assert res["valid"] and res["problems"] == [] and res["key_matches"] is True and res["names_domain"]
    assert 364 < res["days_left"] <= 365 and res["chain_length"] == 1


def test_expired_is_refused():
    res = judge(certs.make_cert(KEY, days_from=-30, days_to=-1))
    assert not res["valid"] and res["problems"] == ["the certificate expired on " + res["not_after"]]


def test_not_yet_valid_and_too_short_are_refused():
    assert "not valid before" in judge(certs.make_cert(KEY, days_from=2, days_to=30))["problems"][0]
    short = judge(certs.make_cert(KEY, days_to=3), min_days_valid=7)
    assert "under the 7 required" in short["problems"][0]


def test_a_key_that_is_not_the_certificates_is_refused():
    res = judge(certs.make_cert(KEY), key=OTHER_KEY)
    assert res["key_matches"] is False and res["problems"] == ["the private key does not match the certificate"]


def test_an_unreadable_key_is_refused():
    res = load_module("certificate_check").judge(certs.make_cert(KEY), b"not a key", DOMAIN)
    assert res["problems"] == ["cannot read the private key: it is not a PEM private key"]


@pytest.mark.parametrize(("names", "ok"), [
    (("marketplace.local",), True), (("MARKETPLACE.local",), True), (("*.local",), True),
    (("other.local", "localhost"), False), (("*.marketplace.local",), False), ((), False),
])
def test_the_domain_must_be_a_san(names, ok):
    res = judge(certs.make_cert(KEY, names=names, common_name=DOMAIN))  # the CN alone never counts
    assert res["names_domain"] is ok
    assert res["valid"] is ok
    if not ok:
        assert res["problems"] == [f"the certificate does not name {DOMAIN} (subject alternative names: "
                                   + (", ".join("DNS:" + n for n in names) or "none") + ")"]


def test_every_problem_is_named_at_once():
    res = judge(certs.make_cert(KEY, names=("other.example",), days_from=-9, days_to=-2), key=OTHER_KEY)
    assert len(res["problems"]) == 3


def test_a_chain_with_a_broken_block_is_refused():
    good = certs.make_cert(KEY)
    res = judge(good + b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")
    assert not res["valid"]


def test_the_module_fails_before_anything_and_names_the_file(tmp_path):
    cert, key = certs.write_pair(tmp_path, certs.make_cert(KEY, days_from=-30, days_to=-1), OTHER_KEY)
    res = run_module("certificate_check", {"certificate_path": str(cert), "private_key_path": str(key),
                                           "domain": DOMAIN})
    assert res["failed"] and res["msg"].startswith(f"refusing certificate {cert} for {DOMAIN}: ")
    assert "expired" in res["msg"] and "does not match" in res["msg"]
    assert "PRIVATE" not in res["_raw"]
    ok = run_module("certificate_check", {"certificate_path": str(cert), "domain": DOMAIN,
                                          "fail_on_problem": False})
    assert not ok.get("failed") and ok["valid"] is False and ok["key_matches"] is None


def _verdict():
    spec = importlib.util.spec_from_file_location("ssl_filters", ROOT / "roles/ssl/filter_plugins/ssl_filters.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.FilterModule().filters()["ssl_restore_verdict"]


def _stat(*checksums):
    return {"results": [{"item": f"f{i}", "stat": {"exists": c is not None, "path": f"/ssl/f{i}", "checksum": c}}
                        for i, c in enumerate(checksums)]}


CERT_A, CERT_B = "-----BEGIN CERTIFICATE-----\nAAA\n-----END CERTIFICATE-----\n", "-----BEGIN CERTIFICATE-----\nBBB\n"


def test_verdict_back_only_when_files_and_served_are_the_previous_ones():
    verdict = _verdict()
    back = verdict(_stat("c1", "k1"), _stat("c1", "k1"), CERT_A, CERT_A + "\n", True)
    assert back["back"] and back["files_back"] and back["served_back"]
    assert "checksums verified" in back["message"] and "serves the previous certificate" in back["message"]
    untouched = verdict(_stat("c1", "k1"), _stat("c1", "k1"), CERT_A, CERT_A, False)
    assert untouched["back"] and "nothing was installed" in untouched["message"]
    files_differ = verdict(_stat("c1", "k1"), _stat("c2", "k1"), CERT_A, CERT_A, True)
    assert not files_differ["back"] and "/ssl/f0 differs" in files_differ["message"]
    other_served = verdict(_stat("c1", "k1"), _stat("c1", "k1"), CERT_A, CERT_B, True)
    assert not other_served["back"] and "does NOT serve the previous certificate" in other_served["message"]
    silent = verdict(_stat("c1", "k1"), _stat("c1", "k1"), CERT_A, "", True)
    assert not silent["back"] and "does NOT answer" in silent["message"]
    gone = verdict(_stat("c1", "k1"), _stat(None, "k1"), CERT_A, CERT_A, True)
    assert not gone["back"]
