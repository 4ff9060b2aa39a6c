"""ssl-check and ssl-renew against the nginx of the reference stack, with a certificate about to expire."""
from __future__ import annotations

import hashlib
import ssl
import subprocess
import time

import pytest

from tests.helpers import certs, faults, stackenv
from tests.helpers.modules import load_module
from tests.helpers.playbooks import assert_no_traceback, check_by_name, run

SSL_DIR = stackenv.STATE_DIR / "nginx" / "ssl"


def served_fingerprint(port: int) -> str:
    pem = ssl.get_server_certificate(("127.0.0.1", port), timeout=5)
    return hashlib.sha256(ssl.PEM_cert_to_DER_cert(pem)).hexdigest()


def file_fingerprint() -> str:
    pem = (SSL_DIR / "server.crt").read_text()
    return hashlib.sha256(ssl.PEM_cert_to_DER_cert(pem)).hexdigest()


def install_cert(days: int, port: int) -> None:
    """Make a new self-signed certificate valid `days` days, reload nginx, wait until it is served."""
    subprocess.run(["bash", str(stackenv.STACK_DIR / "bin" / "gen-cert.sh"), "--days", str(days), "--force",
                    "--out", str(SSL_DIR)], check=True, capture_output=True)
    stackenv.compose("exec", "-T", "nginx", "nginx", "-s", "reload")
    want = file_fingerprint()
    deadline = time.monotonic() + 20
    # Three answers in a row: right after a reload an old worker may still answer a connection with the old one.
    seen = 0
    while seen < 3:
        seen = seen + 1 if served_fingerprint(port) == want else 0
        assert time.monotonic() < deadline, "nginx did not serve the new certificate"
        time.sleep(0.2 if seen else 0.5)


@pytest.fixture()
def tls_port(stack_env):
    faults.wait_healthy("nginx")
    port = int(stack_env["NGINX_HTTPS_PORT"])
    yield port
    # Whatever happened, leave a certificate for the domain, with its key, valid for a year being served.
    if (SSL_DIR / "server.crt").exists() and (SSL_DIR / "server.key").exists():
        sound = load_module("certificate_check").judge((SSL_DIR / "server.crt").read_bytes(),
                                                       (SSL_DIR / "server.key").read_bytes(),
                                                       stack_env["SSL_DOMAIN"], min_days_valid=300)["valid"]
        if not sound or served_fingerprint(port) != file_fingerprint():
            install_cert(365, port)
    else:
        install_cert(365, port)
    for bak in SSL_DIR.glob("*.bak"):
        bak.unlink()


def test_ssl_check_on_a_healthy_certificate(tls_port):
    result = run("ssl-check")
    assert result.rc == 0, result.stdout[-2000:]
    rep = result.report
    assert rep["status"] == "ok"
    expiry = check_by_name(rep, "ssl_expiry")
    assert expiry["status"] == "ok" and expiry["value"] > 300
    assert check_by_name(rep, "ssl_names")["status"] == "ok"
    assert check_by_name(rep, "ssl_files")["value"]["matches_served"] is True
    assert_no_traceback(result)


@pytest.mark.destructive
def test_expiring_certificate_is_critical_then_renewed(tls_port):
    install_cert(3, tls_port)
    old = file_fingerprint()  # served too (install_cert waited for it)

    result = run("ssl-check")
    assert result.rc != 0
    expiry = check_by_name(result.report, "ssl_expiry")
    assert expiry["status"] == "critical" and 2 <= expiry["value"] <= 3, expiry
    assert result.report["status"] == "critical" and result.report["severity"] == "P2"
    assert "expires in" in result.stdout
    assert_no_traceback(result)

    # Without confirm, and under --check even with confirm: described, nothing changed.
    for kwargs in ({}, {"check": True, "extravars": {"confirm": True}}):
        dry = run("ssl-renew", **kwargs)
        assert dry.rc == 0, dry.stdout[-2000:]
        action = dry.report["actions"][0]
        assert action["changed"] is False and "would generate a self-signed certificate" in action["detail"]
        if not kwargs:  # the run without confirm says how to confirm
            assert "rerun with -e confirm=true" in action["detail"]
        assert served_fingerprint(tls_port) == old and file_fingerprint() == old

    renewed = run("ssl-renew", extravars={"confirm": True})
    assert renewed.rc == 0, renewed.stdout[-3000:]
    assert renewed.report["actions"][0]["changed"] is True
    new = served_fingerprint(tls_port)
    assert new != old and new == file_fingerprint()
    expiry = check_by_name(renewed.report, "ssl_expiry")
    assert expiry["status"] == "ok" and expiry["value"] > 300
    assert_no_traceback(renewed)

    after = run("ssl-check")
    assert after.rc == 0 and check_by_name(after.report, "ssl_expiry")["value"] > 300


def test_served_certificate_differs_from_the_files(tls_port):
    """A certificate written to disk but not reloaded is reported as not being served."""
    subprocess.run(["bash", str(stackenv.STACK_DIR / "bin" / "gen-cert.sh"), "--days", "365", "--force",
                    "--out", str(SSL_DIR)], check=True, capture_output=True)
    result = run("ssl-check")
    files = check_by_name(result.report, "ssl_files")
    assert files["status"] == "warning" and files["value"]["matches_served"] is False
    assert "not the one nginx serves" in files["message"]


def file_hashes() -> dict[str, str]:
    return {name: hashlib.sha256((SSL_DIR / name).read_bytes()).hexdigest() for name in ("server.crt", "server.key")}


BAD_CERTS = {
    "expired": lambda key, other: (certs.make_cert(key, days_from=-30, days_to=-1), key, "expired on"),
    "mismatched_key": lambda key, other: (certs.make_cert(key), other, "private key does not match"),
    "no_domain": lambda key, other: (certs.make_cert(key, names=("localhost", "other.example"),
                                                     common_name="marketplace.local"), key,
                                     "does not name marketplace.local"),
}


@pytest.mark.destructive
@pytest.mark.parametrize("case", sorted(BAD_CERTS))
def test_renew_refuses_a_bad_certificate_before_installing_it(tls_port, tmp_path, case):
    """An expired certificate, a key that is not the certificate's, a certificate without marketplace_domain in its
    SANs: refused with the reason, before anything is backed up or installed; files and served certificate
    unchanged."""
    cert, key, reason = BAD_CERTS[case](certs.new_key(), certs.new_key())
    cert_path, key_path = certs.write_pair(tmp_path, cert, key)
    before_files, before_served = file_hashes(), served_fingerprint(tls_port)
    result = run("ssl-renew", extravars={"confirm": True, "ssl_use_certbot": False,
                                         "ssl_renew_cert_path": str(cert_path), "ssl_renew_key_path": str(key_path)})
    assert result.rc != 0, result.stdout[-3000:]
    assert f"refusing certificate {cert_path} for marketplace.local" in result.stdout and reason in result.stdout
    assert file_hashes() == before_files and served_fingerprint(tls_port) == before_served
    assert list(SSL_DIR.glob("*.bak")) == [] and not (SSL_DIR / ".staging").exists()
    assert_no_traceback(result)


@pytest.mark.destructive
def test_failed_install_is_rolled_back_and_the_rescue_says_what_it_verified(tls_port, tmp_path):
    """A certificate that passes the checks but that nginx refuses (a 1024-bit RSA key, under OpenSSL's security
    level): installed, nginx -t fails, the rescue puts the previous files back, and reports what it verified on
    disk and over TLS."""
    key = certs.new_key(1024)
    cert_path, key_path = certs.write_pair(tmp_path, certs.make_cert(key), key)
    before_files, before_served = file_hashes(), served_fingerprint(tls_port)
    result = run("ssl-renew", extravars={"confirm": True, "ssl_use_certbot": False,
                                         "ssl_renew_cert_path": str(cert_path), "ssl_renew_key_path": str(key_path)})
    assert result.rc != 0, result.stdout[-3000:]
    assert "failed at 'Test the nginx configuration with the new files'" in result.stdout, result.stdout[-3000:]
    assert ("the certificate and key files are the previous ones (checksums verified); "
            "nginx serves the previous certificate") in result.stdout
    assert file_hashes() == before_files and served_fingerprint(tls_port) == before_served
    assert_no_traceback(result)
