"""Certificates for the TLS tests, made on the spot with ``cryptography``.

Plain Python (no pytest). :func:`make_pki` writes into a folder one test CA and, signed by it,
a server certificate for ``localhost`` and ``127.0.0.1`` (what Orthanc and nginx present), a
client certificate (what this app presents), an expired server certificate and one for another
host name; and, from a second CA nobody trusts, a server certificate that is otherwise right.
Keys are small EC keys (fast to make); the files are PEM.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Issued:
    """A certificate and its key, as PEM files."""

    cert: Path
    key: Path


@dataclass(frozen=True)
class Pki:
    """What :func:`make_pki` made."""

    ca: Path
    """The CA bundle the app is told to trust."""
    other_ca: Path
    """The CA nobody here trusts (a CA bundle that does not hold :attr:`ca`)."""
    server: Issued
    client: Issued
    expired: Issued
    wrong_host: Issued
    untrusted: Issued
    """Right host names and dates, signed by a CA that is not in :attr:`ca`."""
    untrusted_client: Issued
    """A client certificate from the CA nobody trusts."""


def _key():
    from cryptography.hazmat.primitives.asymmetric import ec

    return ec.generate_private_key(ec.SECP256R1())


def _write(folder: Path, name: str, cert, key) -> Issued:
    from cryptography.hazmat.primitives import serialization

    cert_path, key_path = folder / f"{name}.pem", folder / f"{name}.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    key_path.chmod(0o600)
    return Issued(cert_path, key_path)


def _name(common_name: str):
    from cryptography.x509 import Name, NameAttribute
    from cryptography.x509.oid import NameOID

    return Name([NameAttribute(NameOID.COMMON_NAME, common_name)])


def _ca(common_name: str):
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes

    key = _key()
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(_name(common_name))
            .issuer_name(_name(common_name)).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True,
                                         crl_sign=True, content_commitment=False,
                                         key_encipherment=False, data_encipherment=False,
                                         key_agreement=False, encipher_only=False,
                                         decipher_only=False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                           critical=False)
            .sign(key, hashes.SHA256()))
    return cert, key


def _leaf(ca, common_name: str, hosts: tuple[str, ...], *, expired: bool = False):
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.x509.oid import ExtendedKeyUsageOID

    ca_cert, ca_key = ca
    key = _key()
    now = dt.datetime.now(dt.UTC)
    start, end = ((now - dt.timedelta(days=30), now - dt.timedelta(days=1)) if expired
                  else (now - dt.timedelta(days=1), now + dt.timedelta(days=30)))
    names = []
    for h in hosts:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(h)))
        except ValueError:
            names.append(x509.DNSName(h))
    # A DICOM node is a server and a client with one certificate (Orthanc connects back to the
    # app's storage SCP for a C-MOVE, and checks the certificate as a server's): both uses.
    usage = [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
    builder = (x509.CertificateBuilder().subject_name(_name(common_name))
               .issuer_name(ca_cert.subject).public_key(key.public_key())
               .serial_number(x509.random_serial_number())
               .not_valid_before(start).not_valid_after(end)
               .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
               .add_extension(x509.ExtendedKeyUsage(usage), critical=False)
               .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
                   ca_key.public_key()), critical=False))
    if names:
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    return builder.sign(ca_key, hashes.SHA256()), key


def make_pki(folder: str | Path) -> Pki:
    """Write the test CAs and certificates into ``folder`` (see the module's docstring)."""
    from cryptography.hazmat.primitives import serialization

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    ca = _ca("RcdNet Test CA")
    other = _ca("Somebody Else's CA")
    ca_path = folder / "ca.pem"
    ca_path.write_bytes(ca[0].public_bytes(serialization.Encoding.PEM))
    other_path = folder / "other-ca.pem"
    other_path.write_bytes(other[0].public_bytes(serialization.Encoding.PEM))
    here = ("localhost", "127.0.0.1")
    return Pki(
        ca=ca_path,
        other_ca=other_path,
        server=_write(folder, "server", *_leaf(ca, "localhost", here)),
        client=_write(folder, "client", *_leaf(ca, "RCDNET", ("localhost", "127.0.0.1"))),
        expired=_write(folder, "expired", *_leaf(ca, "localhost", here, expired=True)),
        wrong_host=_write(folder, "wrong-host", *_leaf(ca, "pacs.elsewhere.example",
                                                       ("pacs.elsewhere.example",))),
        untrusted=_write(folder, "untrusted", *_leaf(other, "localhost", here)),
        untrusted_client=_write(folder, "untrusted-client",
                                *_leaf(other, "RCDNET", ("localhost", "127.0.0.1"))),
    )


__all__ = ["Issued", "Pki", "make_pki"]
