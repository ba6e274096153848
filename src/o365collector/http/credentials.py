"""How a tenant signs in: client secret, certificate (signed client assertion) or user password."""

from __future__ import annotations

import base64
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Protocol

import orjson
import structlog
from pydantic import SecretStr

from o365collector.certificates import CertificateKey
from o365collector.observability.redact import shorten

if TYPE_CHECKING:
    # ``cryptography`` is imported where a certificate is loaded or signs, not here: a
    # client-secret or password tenant never needs it, and it adds ~8 MiB to the RSS.
    pass

log = structlog.get_logger(__name__)

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
ASSERTION_LIFETIME_SECS = 600
_warned_password: set[tuple[str, str]] = set()


class Credential(Protocol):
    """What the token endpoint needs to sign in one client, whatever the method."""

    @property
    def client_id(self) -> str:
        """The client (application) id that signs in."""
        ...

    @property
    def kind(self) -> str:
        """``client_secret``, ``certificate`` or ``password``: names the method in messages."""
        ...

    @property
    def grant_type(self) -> str:
        """The OAuth2 grant: ``client_credentials`` or ``password``."""
        ...

    def form(self, token_url: str, now: datetime) -> dict[str, str]:
        """The token request's form fields, except ``scope`` / ``resource``.

        ``token_url`` is the exact URL the form is posted to (a client assertion's audience).
        """
        ...


@dataclass(frozen=True, slots=True)
class ClientSecret:
    """An app registration's client secret (the secret's Value, not its id)."""

    client_id: str
    secret: SecretStr
    kind: str = "client_secret"
    grant_type: str = "client_credentials"

    def form(self, token_url: str, now: datetime) -> dict[str, str]:
        """Client id and secret; see :meth:`Credential.form`."""
        del token_url, now
        return {
            "grant_type": self.grant_type,
            "client_id": self.client_id,
            "client_secret": self.secret.get_secret_value(),
        }


@dataclass(frozen=True, slots=True)
class Certificate:
    """A certificate credential: each token request carries a fresh RS256 client assertion."""

    client_id: str
    certificate: CertificateKey
    kind: str = "certificate"
    grant_type: str = "client_credentials"

    def form(self, token_url: str, now: datetime) -> dict[str, str]:
        """Client id and a signed assertion for ``token_url``; see :meth:`Credential.form`."""
        return {
            "grant_type": self.grant_type,
            "client_id": self.client_id,
            "client_assertion_type": ASSERTION_TYPE,
            "client_assertion": client_assertion(
                self.certificate, self.client_id, token_url, int(now.timestamp())
            ),
        }


@dataclass(frozen=True, slots=True)
class Password:
    """A user's name and password, sent by the resource-owner password flow (discouraged).

    Microsoft refuses it for accounts under MFA or conditional access; ``client_id`` is
    the public client the user signs in through.
    """

    client_id: str
    username: str
    password: SecretStr
    kind: str = "password"
    grant_type: str = "password"

    def form(self, token_url: str, now: datetime) -> dict[str, str]:
        """Public client id, user name and password; see :meth:`Credential.form`."""
        del token_url, now
        return {
            "grant_type": self.grant_type,
            "client_id": self.client_id,
            "username": self.username,
            "password": self.password.get_secret_value(),
        }


def warn_password_flow(tenant: str, username: str) -> None:
    """Log, once per process and account, that password sign-in is discouraged."""
    key = (tenant, username.lower())
    if key in _warned_password:
        return
    _warned_password.add(key)
    log.warning(
        "Signing in with a user name and password is discouraged: it fails under MFA and "
        "conditional access and Microsoft is retiring it. Register an app and use a "
        "certificate (docs/authentication.md).",
        tenant=tenant,
        user=shorten(username),
    )


def client_assertion(cert: CertificateKey, client_id: str, audience: str, now: int) -> str:
    """An RS256 JWT proving possession of ``cert``'s key, for Entra's token endpoint.

    Header ``x5t`` and ``x5t#S256`` name the certificate; claims ``aud`` (the token URL),
    ``iss`` = ``sub`` = client id, a unique ``jti``, ``nbf``/``iat`` now and ``exp`` ten
    minutes later.
    """
    header = {"alg": "RS256", "typ": "JWT", "x5t": cert.x5t(), "x5t#S256": cert.x5t_s256()}
    claims = {
        "aud": audience,
        "iss": client_id,
        "sub": client_id,
        "jti": str(uuid.uuid4()),
        "nbf": now,
        "iat": now,
        "exp": now + ASSERTION_LIFETIME_SECS,
    }
    from cryptography.hazmat.primitives import hashes  # noqa: PLC0415 - see the imports
    from cryptography.hazmat.primitives.asymmetric import padding  # noqa: PLC0415

    signing_input = f"{_b64(orjson.dumps(header))}.{_b64(orjson.dumps(claims))}"
    signature = cert.key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
    return f"{signing_input}.{_b64(signature)}"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()
