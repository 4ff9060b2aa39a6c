#!/usr/bin/python
# Equipment Marketplace runbook: judge a certificate (and its key) before it is installed.
from __future__ import annotations

DOCUMENTATION = r"""
---
module: certificate_check
short_description: Refuse a TLS certificate that is expired, does not match its key or does not name the domain
description:
  - Reads a PEM certificate file (a leaf, or a leaf followed by its chain) and, when given, the PEM private key
    meant to go with it, and judges whether nginx may serve them for O(domain).
  - Problems found (each named in RV(problems)) are that a block of the file does not parse, the leaf is expired
    or not yet valid, the key cannot be read (not PEM, or encrypted) or its public half is not the certificate's,
    and the domain is not among the certificate's subject alternative names (a C(*.) wildcard covers one label;
    the common name is not used, as browsers ignore it).
  - With O(fail_on_problem) (the default) the module fails with one message naming every problem; the ssl role
    runs it before it backs up or installs anything, so a refused certificate changes nothing.
  - Reads files only; never returns key material; supports check mode (and runs the same in it).
options:
  certificate_path:
    description: PEM certificate file; the first certificate in it is the leaf that is judged.
    type: path
    required: true
  private_key_path:
    description: PEM private key file that is to be installed with the certificate. Omit to skip the key check.
    type: path
  domain:
    description: Name the certificate must cover (DNS name, or an IP address matched against IP SANs).
    type: str
    required: true
  min_days_valid:
    description: Also refuse a certificate that expires within this many days (0 refuses only an expired one).
    type: int
    default: 0
  fail_on_problem:
    description: Fail when a problem is found (otherwise report it in RV(problems) and RV(valid)).
    type: bool
    default: true
author:
  - Equipment Marketplace operations team
"""

EXAMPLES = r"""
- name: Check the certificate before installing it
  certificate_check:
    certificate_path: /tmp/new/fullchain.pem
    private_key_path: /tmp/new/privkey.pem
    domain: marketplace.example.com
"""

RETURN = r"""
valid:
  description: No problem found.
  returned: always
  type: bool
problems:
  description: One sentence per problem found (empty when valid).
  returned: always
  type: list
  elements: str
serial_number:
  description: Serial number of the leaf certificate.
  returned: when the certificate parses
  type: int
fingerprint_sha256:
  description: SHA-256 fingerprint of the leaf (colon-separated hex, as community.crypto prints it).
  returned: when the certificate parses
  type: str
not_before:
  description: Start of validity, UTC, ISO 8601.
  returned: when the certificate parses
  type: str
not_after:
  description: End of validity, UTC, ISO 8601.
  returned: when the certificate parses
  type: str
days_left:
  description: Days until RV(not_after) (negative when expired).
  returned: when the certificate parses
  type: float
subject_alt_names:
  description: The leaf's SANs (C(DNS:name), C(IP:address)).
  returned: when the certificate parses
  type: list
  elements: str
names_domain:
  description: The SANs cover O(domain).
  returned: when the certificate parses
  type: bool
key_matches:
  description: The private key is the certificate's (null when no key was given or it could not be read).
  returned: always
  type: bool
chain_length:
  description: Certificates in the file (leaf plus intermediates).
  returned: when the certificate parses
  type: int
"""

import datetime
import ipaddress

from ansible.module_utils.marketplace_module import MarketplaceModule

try:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.x509.oid import ExtensionOID
    HAS_CRYPTOGRAPHY = True
except ImportError:  # pragma: no cover - the venv has it (community.crypto needs it)
    HAS_CRYPTOGRAPHY = False

PEM_BEGIN = b"-----BEGIN CERTIFICATE-----"


def build_argument_spec():
    return dict(
        certificate_path=dict(type="path", required=True),
        private_key_path=dict(type="path"),
        domain=dict(type="str", required=True),
        min_days_valid=dict(type="int", default=0),
        fail_on_problem=dict(type="bool", default=True),
    )


def _utc(dt: datetime.datetime) -> datetime.datetime:
    return dt if dt.tzinfo else dt.replace(tzinfo=datetime.UTC)


def _validity(cert):
    before = getattr(cert, "not_valid_before_utc", None) or _utc(cert.not_valid_before)
    after = getattr(cert, "not_valid_after_utc", None) or _utc(cert.not_valid_after)
    return before, after


def subject_alt_names(cert) -> list[str]:
    try:
        ext = cert.extensions.get_extension_for_oid(ExtensionOID.SUBJECT_ALTERNATIVE_NAME).value
    except x509.ExtensionNotFound:
        return []
    names = ["DNS:" + n for n in ext.get_values_for_type(x509.DNSName)]
    names += ["IP:" + str(a) for a in ext.get_values_for_type(x509.IPAddress)]
    return names


def names_domain(sans: list[str], domain: str) -> bool:
    """Whether the SANs cover domain: exact DNS name (any case), a *. wildcard for exactly one label, or an IP."""
    domain = domain.strip().rstrip(".").lower()
    try:
        ip = ipaddress.ip_address(domain)
    except ValueError:
        ip = None
    for san in sans:
        kind, _, value = san.partition(":")
        if ip is not None:
            if kind == "IP" and ipaddress.ip_address(value) == ip:
                return True
            continue
        if kind != "DNS":
            continue
        value = value.rstrip(".").lower()
        if value == domain:
            return True
        if value.startswith("*.") and "." in domain and domain.split(".", 1)[1] == value[2:] \
                and domain.split(".", 1)[0] not in ("", "*"):
            return True
    return False


def _public_der(public_key) -> bytes:
    return public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def judge(cert_pem: bytes, key_pem: bytes | None, domain: str, min_days_valid: int = 0,
          now: datetime.datetime | None = None) -> dict:
    """Everything the module reports about a certificate file's content (and a key's), problems included."""
    now = now or datetime.datetime.now(datetime.UTC)
    result: dict = {"problems": [], "key_matches": None}
    problems = result["problems"]
    blocks = cert_pem.count(PEM_BEGIN)
    try:
        certs = x509.load_pem_x509_certificates(cert_pem)
    except ValueError as exc:
        certs = []
        problems.append("the certificate file does not parse as PEM certificates (%s)" % str(exc).split("\n")[0])
    if certs and len(certs) != blocks:
        problems.append("only %d of the %d PEM blocks in the certificate file parse" % (len(certs), blocks))
    if not certs:
        if not problems:
            problems.append("the certificate file holds no PEM certificate")
        result["valid"] = False
        return result
    leaf = certs[0]
    before, after = _validity(leaf)
    days_left = (after - now).total_seconds() / 86400
    sans = subject_alt_names(leaf)
    result.update(
        serial_number=leaf.serial_number,
        fingerprint_sha256=":".join("%02x" % b for b in leaf.fingerprint(hashes.SHA256())),
        not_before=before.strftime("%Y-%m-%dT%H:%M:%SZ"),
        not_after=after.strftime("%Y-%m-%dT%H:%M:%SZ"),
        days_left=round(days_left, 2),
        subject_alt_names=sans,
        names_domain=names_domain(sans, domain),
        chain_length=len(certs),
    )
    if after <= now:
        problems.append("the certificate expired on %s" % result["not_after"])
    elif days_left < min_days_valid:
        problems.append("the certificate expires in %.1f days (%s), under the %d required"
                        % (days_left, result["not_after"], min_days_valid))
    if before > now:
        problems.append("the certificate is not valid before %s" % result["not_before"])
    if not result["names_domain"]:
        problems.append("the certificate does not name %s (subject alternative names: %s)"
                        % (domain, ", ".join(sans) if sans else "none"))
    if key_pem is not None:
        try:
            key = serialization.load_pem_private_key(key_pem, password=None)
        except (ValueError, TypeError) as exc:
            reason = "it is encrypted" if isinstance(exc, TypeError) else "it is not a PEM private key"
            problems.append("cannot read the private key: %s" % reason)
        else:
            result["key_matches"] = _public_der(key.public_key()) == _public_der(leaf.public_key())
            if not result["key_matches"]:
                problems.append("the private key does not match the certificate")
    result["valid"] = not problems
    return result


def main():
    module = MarketplaceModule(argument_spec=build_argument_spec(), supports_check_mode=True)
    if not HAS_CRYPTOGRAPHY:
        module.fail_json(msg="the Python library cryptography is required on the target")
    p = module.params
    try:
        with open(p["certificate_path"], "rb") as fh:
            cert_pem = fh.read()
    except OSError as exc:
        module.fail_json(msg="cannot read certificate %s: %s" % (p["certificate_path"], exc.strerror),
                         valid=False, problems=["cannot read the certificate file"], key_matches=None)
    key_pem = None
    if p["private_key_path"]:
        try:
            with open(p["private_key_path"], "rb") as fh:
                key_pem = fh.read()
        except OSError as exc:
            module.fail_json(msg="cannot read private key %s: %s" % (p["private_key_path"], exc.strerror),
                             valid=False, problems=["cannot read the private key file"], key_matches=None)
    result = judge(cert_pem, key_pem, p["domain"], p["min_days_valid"])
    del key_pem
    if result["problems"] and p["fail_on_problem"]:
        module.fail_json(msg="refusing certificate %s for %s: %s" % (p["certificate_path"], p["domain"],
                                                                    "; ".join(result["problems"])), **result)
    module.exit_json(changed=False, **result)


if __name__ == "__main__":
    main()
