"""Make real certificates and keys for the certificate tests (self-signed, with chosen validity, names, key)."""
from __future__ import annotations

import datetime
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID


def new_key(bits: int = 2048):
    return rsa.generate_private_key(public_exponent=65537, key_size=bits)


def key_pem(key) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def make_cert(key, names=("marketplace.local",), days_from: float = -1, days_to: float = 365,
              common_name: str | None = None) -> bytes:
    """A self-signed certificate valid from now+days_from to now+days_to, SANs `names` (DNS; none when empty)."""
    now = datetime.datetime.now(datetime.UTC)
    subject = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Equipment Marketplace (test)"),
                         x509.NameAttribute(NameOID.COMMON_NAME, common_name or (names[0] if names else "test"))])
    builder = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
               .serial_number(x509.random_serial_number())
               .not_valid_before(now + datetime.timedelta(days=days_from))
               .not_valid_after(now + datetime.timedelta(days=days_to)))
    if names:
        builder = builder.add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), critical=False)
    return builder.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM)


def write_pair(directory: Path, cert: bytes, key) -> tuple[Path, Path]:
    """cert.pem and key.pem (0600) in directory."""
    directory.mkdir(parents=True, exist_ok=True)
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(cert)
    key_path.touch(mode=0o600)
    key_path.write_bytes(key_pem(key))
    return cert_path, key_path
