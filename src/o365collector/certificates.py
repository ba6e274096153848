"""Certificate and key files: PEM (one file or two) or PKCS#12, checked and kept out of output.

Loaded when the configuration is validated (so a wrong password stops the collector at
start, naming the file) and used by the certificate sign-in (``http.credentials``). The
key's PEM text is registered for redaction as soon as it is read.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from o365collector.observability.redact import register_secret

if TYPE_CHECKING:
    # ``cryptography`` is imported where a certificate is loaded or signs, not here: a
    # client-secret or password tenant never needs it, and it adds ~8 MiB to the RSS.
    from cryptography import x509
    from cryptography.hazmat.primitives.asymmetric import rsa


class CredentialFileError(ValueError):
    """A certificate or key file cannot be used; the message names the file and the fix."""


@dataclass(frozen=True, slots=True)
class CertificateKey:
    """An RSA private key and the certificate (DER) whose public key it matches."""

    key: rsa.RSAPrivateKey
    der: bytes

    def x5t(self) -> str:
        """Base64url SHA-1 thumbprint of the certificate (the JWT ``x5t`` header)."""
        return _b64(hashlib.sha1(self.der, usedforsecurity=False).digest())

    def x5t_s256(self) -> str:
        """Base64url SHA-256 thumbprint of the certificate (the JWT ``x5t#S256`` header)."""
        return _b64(hashlib.sha256(self.der).digest())

    def thumbprint_hex(self) -> str:
        """The SHA-1 thumbprint as the Entra portal shows it (upper-case hex)."""
        return hashlib.sha1(self.der, usedforsecurity=False).hexdigest().upper()


def load_certificate(
    *,
    certificate_file: Path | None = None,
    key_file: Path | None = None,
    pkcs12_file: Path | None = None,
    password: str | None = None,
) -> CertificateKey:
    """Load a PEM certificate and key (one file or two) or a PKCS#12 bundle.

    The key's PEM text is registered for redaction as soon as it is read.

    Raises:
        CredentialFileError: a file is unreadable, is not PEM / PKCS#12, needs another
            password, holds no RSA key, or the key does not match the certificate. The
            message names the file, never its content.
    """
    from cryptography import x509  # noqa: PLC0415 - see the imports
    from cryptography.exceptions import UnsupportedAlgorithm  # noqa: PLC0415
    from cryptography.hazmat.primitives import serialization  # noqa: PLC0415
    from cryptography.hazmat.primitives.serialization import pkcs12  # noqa: PLC0415

    secret = password.encode() if password else None
    if pkcs12_file is not None:
        data = _read(pkcs12_file)
        try:
            key, cert, _ = pkcs12.load_key_and_certificates(data, secret)
        except (ValueError, TypeError, UnsupportedAlgorithm):
            msg = (
                f"{pkcs12_file}: not a PKCS#12 file, or private_key_password is wrong or "
                "missing; export the .pfx again or fix the password"
            )
            raise CredentialFileError(msg) from None
        if cert is None or key is None:
            msg = f"{pkcs12_file}: the PKCS#12 file must hold the certificate and its private key"
            raise CredentialFileError(msg)
        return _matched(key, cert, pkcs12_file)
    if certificate_file is None:
        raise CredentialFileError("give certificate_file (PEM) or pkcs12_file")
    cert_pem = _read(certificate_file)
    key_path = key_file or certificate_file
    key_pem = _read(key_path) if key_file is not None else cert_pem
    _register_pem_secrets(key_pem)
    try:
        cert = x509.load_pem_x509_certificate(cert_pem)
    except ValueError:
        msg = f"{certificate_file}: no PEM certificate (-----BEGIN CERTIFICATE-----) found"
        raise CredentialFileError(msg) from None
    try:
        key = serialization.load_pem_private_key(_key_block(key_pem, key_path), secret)
    except TypeError:
        msg = (
            f"{key_path}: the private key is encrypted and private_key_password is missing, "
            "or a password was given for a key that is not encrypted"
        )
        raise CredentialFileError(msg) from None
    except (ValueError, UnsupportedAlgorithm):
        msg = f"{key_path}: cannot read the private key; check private_key_password and the file"
        raise CredentialFileError(msg) from None
    return _matched(key, cert, key_path)


def _matched(key: object, cert: x509.Certificate, where: Path) -> CertificateKey:
    from cryptography.hazmat.primitives import serialization  # noqa: PLC0415 - see the imports
    from cryptography.hazmat.primitives.asymmetric import rsa  # noqa: PLC0415

    if not isinstance(key, rsa.RSAPrivateKey):
        msg = f"{where}: Entra ID needs an RSA key for client assertions (RS256)"
        raise CredentialFileError(msg)
    if key.public_key().public_numbers() != cert.public_key().public_numbers():  # type: ignore[union-attr]
        msg = f"{where}: the private key does not belong to the certificate"
        raise CredentialFileError(msg)
    _register_key(key)
    return CertificateKey(key, cert.public_bytes(serialization.Encoding.DER))


def _register_key(key: rsa.RSAPrivateKey) -> None:
    """Register the key's PEM forms so that no output can carry them."""
    from cryptography.hazmat.primitives import serialization  # noqa: PLC0415 - see the imports

    for fmt in (serialization.PrivateFormat.PKCS8, serialization.PrivateFormat.TraditionalOpenSSL):
        pem = key.private_bytes(serialization.Encoding.PEM, fmt, serialization.NoEncryption())
        _register_pem_secrets(pem)


def _register_pem_secrets(pem: bytes) -> None:
    """Register each base64 line of every PEM private-key block, and each block's body."""
    text = pem.decode("ascii", "replace")
    inside = False
    body: list[str] = []
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("-----BEGIN") and "PRIVATE KEY" in stripped:
            inside, body = True, []
        elif stripped.startswith("-----END") and inside:
            inside = False
            register_secret("\n".join(body))
            register_secret("".join(body))
        elif inside and stripped and ":" not in stripped:
            body.append(stripped)
            if len(stripped) >= 16:
                register_secret(stripped)


def _key_block(pem: bytes, where: Path) -> bytes:
    start = pem.find(b"-----BEGIN")
    while start != -1:
        end_line = pem.find(b"\n", start)
        if b"PRIVATE KEY" in pem[start : end_line if end_line != -1 else len(pem)]:
            return pem[start:]
        start = pem.find(b"-----BEGIN", start + 1)
    msg = f"{where}: no PEM private key (-----BEGIN PRIVATE KEY-----) found; give key_file"
    raise CredentialFileError(msg)


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        msg = f"{path}: cannot read ({exc.strerror}); fix the path or the file's permissions"
        raise CredentialFileError(msg) from None


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()
