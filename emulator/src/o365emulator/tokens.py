"""Entra ID token endpoint (v1/v2: secret, certificate, password), HS256 tokens and checks."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import uuid
from collections.abc import Callable, Collection, Mapping
from datetime import datetime
from typing import Any

import orjson

from .responses import GraphError, Response, json_response
from .settings import TenantSpec
from .signin import EntraError, check_assertion, check_public_client, check_user, missing
from .ticks import format_entra

GRAPH_AUDIENCE = "https://graph.microsoft.com"
GRAPH_APP_ID = "00000003-0000-0000-c000-000000000000"
RESOURCES = {  # accepted resource identifiers -> token audience
    GRAPH_AUDIENCE: GRAPH_AUDIENCE,
    GRAPH_APP_ID: GRAPH_AUDIENCE,
    "https://outlook.office365.com": "https://outlook.office365.com",
    "https://outlook.office.com": "https://outlook.office.com",
    "https://manage.office.com": "https://manage.office.com",
}
_OIDC_SCOPES = {"openid", "profile", "offline_access", "email"}
_EXCHANGE = frozenset({"https://outlook.office365.com", "https://outlook.office.com"})
# Permissions belong to one API: a token carries only those of its audience.
_PERMISSION_AUDIENCES = {
    "ExchangeMessageTrace.Read.All": frozenset({GRAPH_AUDIENCE}),
    "ReportingWebService.Read.All": _EXCHANGE,
    "ReportingWebService.Read": _EXCHANGE,
}


def _for_audience(permissions: list[str], audience: str) -> list[str]:
    return [p for p in permissions if audience in _PERMISSION_AUDIENCES.get(p, {audience})]


_WWW_AUTHENTICATE = (
    'Bearer realm="", authorization_uri="https://login.microsoftonline.com/common/oauth2/'
    f'authorize", client_id="{GRAPH_APP_ID}"'
)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class InvalidTokenError(GraphError):
    """401 from Graph for a missing/invalid/expired token; ``tenant`` when it is known."""

    def __init__(self, message: str, tenant: str | None = None) -> None:
        """Create the 401 InvalidAuthenticationToken error."""
        super().__init__(
            401, "InvalidAuthenticationToken", message, [("WWW-Authenticate", _WWW_AUTHENTICATE)]
        )
        self.tenant = tenant


class TokenService:
    """Issues and verifies access tokens for the configured tenants.

    Tokens are HS256 JWTs signed with a key private to this instance, carrying ``aud``,
    ``iss``, ``tid``, ``appid``, ``roles``, ``iat``, ``nbf`` and ``exp``.
    """

    def __init__(
        self, tenants: list[TenantSpec], lifetime_secs: int, clock: Callable[[], datetime]
    ) -> None:
        """Create the service; ``clock`` returns aware UTC datetimes."""
        self._by_id = {t.tenant_id.lower(): t for t in tenants}
        domains: dict[str, list[TenantSpec]] = {}
        for t in tenants:
            domains.setdefault(t.domain.lower(), []).append(t)
        self._by_domain = {d: ts[0] for d, ts in domains.items() if len(ts) == 1}
        self._lifetime = lifetime_secs
        self._clock = clock
        self._key = secrets.token_bytes(32)

    def tenant(self, name: str) -> TenantSpec | None:
        """The tenant addressed by id or (unambiguous) domain, case-insensitively."""
        lower = name.lower()
        return self._by_id.get(lower) or self._by_domain.get(lower)

    def _error(self, exc: EntraError) -> Response:
        now = self._clock()
        trace_id, correlation_id = str(uuid.uuid4()), str(uuid.uuid4())
        stamp = format_entra(now)
        body = {
            "error": exc.error,
            "error_description": f"AADSTS{exc.code}: {exc.text} Trace ID: {trace_id} "
            f"Correlation ID: {correlation_id} Timestamp: {stamp}",
            "error_codes": [exc.code],
            "timestamp": stamp,
            "trace_id": trace_id,
            "correlation_id": correlation_id,
            "error_uri": f"https://login.microsoftonline.com/error?code={exc.code}",
        }
        return json_response(exc.status, body, headers=[("Cache-Control", "no-store, no-cache")])

    @staticmethod
    def _audience(v1: bool, form: Mapping[str, str], spec: TenantSpec) -> str:
        """The audience the request asks for (``resource`` in v1, ``scope`` in v2)."""
        if v1:
            resource = form.get("resource", "").strip()
            if not resource:
                raise missing("resource")
        else:
            scopes = [s for s in form.get("scope", "").split() if s.lower() not in _OIDC_SCOPES]
            if not scopes:
                raise EntraError(
                    400,
                    "invalid_scope",
                    70011,
                    "The provided request must include a 'scope' input parameter.",
                )
            if len(scopes) != 1 or not scopes[0].endswith("/.default"):
                raise EntraError(
                    400,
                    "invalid_scope",
                    1002012,
                    f"The provided value for scope {' '.join(scopes)} is not valid. Client "
                    "credential flows must have a scope value with /.default suffixed to the "
                    "resource identifier (application ID URI).",
                )
            resource = scopes[0].removesuffix("/.default")
        audience = RESOURCES.get(resource.rstrip("/"))
        if audience is None:
            raise EntraError(
                400,
                "invalid_resource",
                500011,
                f"The resource principal named {resource} was not found in the tenant named "
                f"{spec.domain}. This can happen if the application has not been installed by "
                "the administrator of the tenant or consented to by any user in the tenant. You "
                "might have sent your authentication request to the wrong tenant.",
            )
        return audience

    def _check(
        self, tenant: str, v1: bool, method: str, form: Mapping[str, str]
    ) -> tuple[TenantSpec, str]:
        """Validate a token request in Entra's order; return (tenant, audience)."""
        if method != "POST":
            raise EntraError(
                400,
                "invalid_request",
                900561,
                f"The endpoint only accepts POST, OPTIONS requests. Received a {method} request.",
            )
        spec = self.tenant(tenant)
        if spec is None:
            raise EntraError(
                400,
                "invalid_request",
                90002,
                f"Tenant '{tenant}' not found. Check to make sure you have the correct tenant ID "
                "and are signing into the correct cloud. Check with your subscription "
                "administrator, this may happen if there are no active subscriptions for the "
                "tenant.",
            )
        grant = form.get("grant_type", "")
        if not grant:
            raise missing("grant_type")
        if grant == "password":
            check_public_client(spec, form)
            audience = self._audience(v1, form, spec)
            check_user(spec, form)
            return spec, audience
        if grant != "client_credentials":
            raise EntraError(
                400,
                "unsupported_grant_type",
                70003,
                f"The app requested an unsupported grant type '{grant}'.",
            )
        client_id = form.get("client_id", "")
        if not client_id:
            raise missing("client_id")
        if client_id.lower() != spec.client_id.lower():
            raise EntraError(
                400,
                "unauthorized_client",
                700016,
                f"Application with identifier '{client_id}' was not found in the directory "
                f"'{spec.domain}'. This can happen if the application has not been installed by "
                "the administrator of the tenant or consented to by any user in the tenant. You "
                "may have sent your authentication request to the wrong tenant.",
            )
        audience = self._audience(v1, form, spec)
        assertion = form.get("client_assertion", "")
        if assertion:
            check_assertion(spec, tenant, form, assertion, self._clock())
            return spec, audience
        secret = form.get("client_secret", "")
        if not secret:
            raise EntraError(
                401,
                "invalid_client",
                7000216,
                "'client_assertion', 'client_secret' or 'request' is required "
                "for the 'client_credentials' grant type.",
            )
        if not hmac.compare_digest(secret.encode(), spec.client_secret.encode()):
            raise EntraError(
                401,
                "invalid_client",
                7000215,
                "Invalid client secret provided. Ensure the secret being sent in the request is "
                "the client secret value, not the client secret ID, for a secret added to app "
                f"'{spec.client_id}'.",
            )
        if spec.secret_expired:
            raise EntraError(
                401,
                "invalid_client",
                7000222,
                f"The provided client secret keys for app '{spec.client_id}' are expired. "
                "Visit the Azure portal to create new keys for your app: "
                "https://aka.ms/NewClientSecret, or consider using certificate credentials for "
                "added security: https://aka.ms/certCreds.",
            )
        return spec, audience

    def token_endpoint(
        self, tenant: str, *, v1: bool, method: str, form: Mapping[str, str]
    ) -> Response:
        """Answer ``POST /{tenant}/oauth2[/v2.0]/token`` like Entra ID (secret never echoed).

        Args:
            tenant: The tenant path segment (tenant id or domain).
            v1: True for ``/oauth2/token`` (``resource=``), False for v2.0 (``scope=``).
            method: HTTP method.
            form: Decoded form body.

        Returns:
            200 with a Bearer token, or Entra's error body (400/401) with an AADSTS code.
        """
        try:
            spec, audience = self._check(tenant, v1, method, form)
        except EntraError as exc:
            return self._error(exc)
        user = form.get("username") if form.get("grant_type") == "password" else None
        return self._issue(spec, audience, v1=v1, user=user)

    def _issue(self, spec: TenantSpec, audience: str, *, v1: bool, user: str | None) -> Response:
        iat = int(self._clock().timestamp())
        exp = iat + self._lifetime
        issuer = f"https://sts.windows.net/{spec.tenant_id}/"
        subject = user or spec.client_id
        oid = str(uuid.UUID(bytes=hashlib.sha256(subject.encode()).digest()[:16], version=4))
        claims: dict[str, Any] = {
            "aud": audience,
            "iss": issuer,
            "iat": iat,
            "nbf": iat,
            "exp": exp,
            "app_displayname": "o365collector",
            "appid": spec.client_id,
            "appidacr": "1",
            "idp": issuer,
            "idtyp": "app",
            "oid": oid,
            "roles": _for_audience(spec.roles, audience),
            "sub": oid,
            "tid": spec.tenant_id,
            "uti": _b64(secrets.token_bytes(16)),
            "ver": "1.0",
        }
        if user is not None:  # a delegated token: the user's scopes, no application roles
            del claims["roles"]
            claims.update(
                appid=spec.public_client_id,
                appidacr="0",
                idtyp="user",
                scp=" ".join(_for_audience(spec.delegated_scopes, audience)),
                upn=user,
            )
        header = {"typ": "JWT", "alg": "HS256", "kid": "o365collector-emulator"}
        signing_input = f"{_b64(orjson.dumps(header))}.{_b64(orjson.dumps(claims))}"
        signature = hmac.new(self._key, signing_input.encode(), hashlib.sha256).digest()
        token = f"{signing_input}.{_b64(signature)}"
        body: dict[str, Any]
        if v1:  # the v1 endpoint returns numbers as strings
            body = {
                "token_type": "Bearer",
                "expires_in": str(self._lifetime),
                "ext_expires_in": str(self._lifetime),
                "expires_on": str(exp),
                "not_before": str(iat),
                "resource": audience,
                "access_token": token,
            }
        else:
            body = {
                "token_type": "Bearer",
                "expires_in": self._lifetime,
                "ext_expires_in": self._lifetime,
                "access_token": token,
            }
        return json_response(
            200, body, headers=[("Cache-Control", "no-store, no-cache"), ("Pragma", "no-cache")]
        )

    def authenticate(
        self,
        authorization: str | None,
        audiences: Collection[str] = (GRAPH_AUDIENCE, GRAPH_APP_ID),
    ) -> dict[str, Any]:
        """Verify a request's ``Authorization: Bearer`` token (for one of ``audiences``).

        Raises:
            InvalidTokenError: Missing, malformed, wrongly signed, wrong audience, unknown tenant,
                or expired (``exp`` before the clock's now).
        """
        scheme, _, token = (authorization or "").strip().partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise InvalidTokenError("Access token is empty.")
        parts = token.split(".")
        if len(parts) != 3:
            raise InvalidTokenError(
                "IDX14100: JWT is not well formed. Access token validation failed."
            )
        try:
            signature = _unb64(parts[2])
            claims = orjson.loads(_unb64(parts[1]))
        except (ValueError, orjson.JSONDecodeError) as exc:
            raise InvalidTokenError(
                "Access token validation failed: the token is not a well-formed JWT."
            ) from exc
        expected = hmac.new(self._key, f"{parts[0]}.{parts[1]}".encode(), hashlib.sha256).digest()
        if not hmac.compare_digest(signature, expected) or not isinstance(claims, dict):
            raise InvalidTokenError("Access token validation failed: signature validation failed.")
        tenant = str(claims.get("tid", ""))
        if claims.get("aud") not in audiences:
            raise InvalidTokenError("Access token validation failure. Invalid audience.", tenant)
        if self.tenant(tenant) is None:
            raise InvalidTokenError("Access token validation failed: unknown tenant.")
        exp = claims.get("exp")
        if not isinstance(exp, int) or exp < self._clock().timestamp():
            raise InvalidTokenError("Lifetime validation failed, the token is expired.", tenant)
        return claims
