"""Client assertion checks of the emulated token endpoint: x5t, RS256 signature, claims."""

from __future__ import annotations

import base64
import functools
import hashlib
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

import orjson
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.serialization import Encoding

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
_SKEW_SECS = 300


class AssertionRefused(Exception):  # noqa: N818 - mirrors Entra's refusal, not a bug
    """Why Entra refuses an assertion: its AADSTS code and text."""

    def __init__(self, code: int, text: str) -> None:
        """Keep the code and Microsoft's text."""
        super().__init__(text)
        self.code, self.text = code, text


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@functools.lru_cache(maxsize=64)
def _certificate(pem: str) -> x509.Certificate:
    return x509.load_pem_x509_certificate(pem.encode())


def verify_assertion(
    assertion: str,
    *,
    certificate_pem: str | None,
    client_id: str,
    tenant: str,
    now: datetime,
) -> None:
    """Check an RS256 client assertion like Entra ID does.

    Args:
        assertion: The compact JWT from ``client_assertion``.
        certificate_pem: The certificate uploaded to the app (None: none uploaded).
        client_id: The request's client id (``iss`` and ``sub`` must equal it).
        tenant: The tenant path segment (``aud`` must be this tenant's token URL).
        now: The emulator's clock.

    Raises:
        AssertionRefused: unknown certificate (700027), bad signature (700027), expired
            certificate (700027), wrong ``iss``/``sub`` (700021), wrong ``aud`` (700027),
            outside ``nbf``..``exp`` (700024), malformed (50027).
    """
    parts = assertion.split(".")
    try:
        header, claims = (orjson.loads(_unb64(p)) for p in parts[:2])
        signature = _unb64(parts[2])
    except (ValueError, IndexError, orjson.JSONDecodeError):
        raise AssertionRefused(50027, "JWT token is invalid or malformed.") from None
    if len(parts) != 3 or not isinstance(header, dict) or not isinstance(claims, dict):
        raise AssertionRefused(50027, "JWT token is invalid or malformed.")
    cert = _registered(header, certificate_pem)
    public_key = cert.public_key()
    if header.get("alg") != "RS256" or not isinstance(public_key, rsa.RSAPublicKey):
        raise AssertionRefused(700027, "Client assertion contains an invalid signature.")
    try:
        public_key.verify(
            signature, f"{parts[0]}.{parts[1]}".encode(), padding.PKCS1v15(), hashes.SHA256()
        )
    except InvalidSignature:
        raise AssertionRefused(700027, "Client assertion failed signature validation.") from None
    if cert.not_valid_after_utc < now:
        raise AssertionRefused(
            700027,
            "Client assertion contains an invalid signature. [Reason - The key used is expired.]",
        )
    _check_claims(claims, client_id, tenant, now.timestamp())


def _registered(header: dict[str, Any], certificate_pem: str | None) -> x509.Certificate:
    """The uploaded certificate, if the header's thumbprint names it."""
    thumbprint = str(header.get("x5t#S256") or header.get("x5t") or "")
    cert = _certificate(certificate_pem) if certificate_pem else None
    if cert is not None:
        der = cert.public_bytes(Encoding.DER)
        known = {
            _b64(hashlib.sha1(der, usedforsecurity=False).digest()),
            _b64(hashlib.sha256(der).digest()),
        }
        if thumbprint in known:
            return cert
    raise AssertionRefused(
        700027,
        "The certificate with identifier used to sign the client assertion is not registered "
        f"on application. [Reason - The key was not found., Thumbprint of key used by client: "
        f"'{thumbprint}']",
    )


def _check_claims(claims: dict[str, Any], client_id: str, tenant: str, now: float) -> None:
    if (
        str(claims.get("iss", "")).lower() != client_id.lower()
        or str(claims.get("sub", "")).lower() != client_id.lower()
    ):
        raise AssertionRefused(
            700021, "Client assertion application identifier doesn't match 'client_id' parameter."
        )
    path = urlsplit(str(claims.get("aud", ""))).path.lower().rstrip("/")
    if path not in (f"/{tenant.lower()}/oauth2/v2.0/token", f"/{tenant.lower()}/oauth2/token"):
        raise AssertionRefused(
            700027, "Client assertion audience claim does not match Realm issuer."
        )
    if not claims.get("jti"):
        raise AssertionRefused(50027, "JWT token is invalid or malformed: no jti.")
    nbf, exp = claims.get("nbf"), claims.get("exp")
    if not isinstance(exp, (int, float)) or exp < now - _SKEW_SECS:
        raise AssertionRefused(700024, "Client assertion is not within its valid time range.")
    if isinstance(nbf, (int, float)) and nbf > now + _SKEW_SECS:
        raise AssertionRefused(700024, "Client assertion is not within its valid time range.")
