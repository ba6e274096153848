"""OAuth2 tokens for one (tenant, credential): cached per audience, renewed before expiry."""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import httpx
import orjson
from pydantic import SecretStr

from o365collector.certificates import CredentialFileError, load_certificate
from o365collector.clock import Clock
from o365collector.errors import AuthError, ConfigError, UnavailableError
from o365collector.http.credentials import (
    Certificate,
    ClientSecret,
    Credential,
    Password,
    warn_password_flow,
)
from o365collector.observability.redact import shorten

if TYPE_CHECKING:
    from o365collector.config.model import TenantSettings

LoginVersion = Literal["v1", "v2"]
_AADSTS = re.compile(r"AADSTS\d+")
_APP_NEEDED = (
    "an app registration is needed: register an app in Entra ID, grant it the API "
    "permissions (admin consent) and sign in with a certificate (docs/authentication.md)"
)


@dataclass(frozen=True, slots=True)
class Refusal:
    """What an AADSTS code means for the operator: a problem name and the fix."""

    problem: str
    fix: str


# AADSTS codes an operator can fix, with the fix (Microsoft's description follows it).
REFUSALS = {
    "AADSTS7000215": Refusal(
        "invalid_credentials",
        "the client secret is wrong: copy the secret's Value (not its Secret ID) into "
        "client_secret",
    ),
    "AADSTS7000222": Refusal(
        "expired_credentials",
        "the client secret has expired: create a new secret under the app's Certificates & "
        "secrets and put its Value in client_secret",
    ),
    "AADSTS700016": Refusal(
        "invalid_credentials",
        "no app with this client id in the tenant: check client_id and tenant_id (for a "
        "password sign-in, client_id is the public client)",
    ),
    "AADSTS90002": Refusal(
        "invalid_credentials",
        "the tenant_id does not exist in this cloud: check tenant_id (a GUID or the tenant's "
        ".onmicrosoft.com domain) and cloud",
    ),
    "AADSTS900023": Refusal(
        "invalid_credentials", "tenant_id is malformed: use the Directory (tenant) ID GUID"
    ),
    "AADSTS70011": Refusal(
        "wrong_endpoint", "the scope was refused: check endpoints.*_scope for this cloud"
    ),
    "AADSTS1002012": Refusal(
        "wrong_endpoint", "the scope was refused: check endpoints.*_scope for this cloud"
    ),
    "AADSTS500011": Refusal(
        "wrong_endpoint",
        "the API is unknown to this tenant: check cloud and endpoints.*_scope",
    ),
    "AADSTS700027": Refusal(
        "invalid_credentials",
        "the certificate is not registered on the app, has expired, or does not match the "
        "key: upload the certificate (.cer/.pem) under the app's Certificates & secrets",
    ),
    "AADSTS700024": Refusal(
        "invalid_credentials",
        "the client assertion is outside its valid time range: fix this machine's clock (NTP)",
    ),
    "AADSTS50126": Refusal(
        "invalid_credentials",
        "wrong user name or password: check credential.username and credential.password",
    ),
    "AADSTS50034": Refusal(
        "invalid_credentials",
        "the user does not exist in this tenant: check credential.username and tenant_id",
    ),
    "AADSTS50053": Refusal(
        "invalid_credentials", "the account is locked after failed sign-ins: wait, then retry"
    ),
    "AADSTS50057": Refusal("invalid_credentials", "the user account is disabled"),
    "AADSTS50055": Refusal(
        "expired_credentials",
        "the user's password has expired: set a new one and update credential.password",
    ),
    "AADSTS7000218": Refusal(
        "invalid_credentials",
        "this client id is not a public client: set client_id to a public client, or enable "
        "'Allow public client flows' on the app",
    ),
    "AADSTS65001": Refusal(
        "consent_missing",
        "nobody consented to this client's permissions: grant admin consent, or " + _APP_NEEDED,
    ),
    "AADSTS50076": Refusal(
        "mfa_required",
        "the account must use multi-factor authentication, which a password sign-in cannot "
        "do; " + _APP_NEEDED,
    ),
    "AADSTS50079": Refusal(
        "mfa_required",
        "the account must enrol in multi-factor authentication, which a password sign-in "
        "cannot do; " + _APP_NEEDED,
    ),
    "AADSTS50158": Refusal(
        "mfa_required",
        "an external security challenge (MFA) is required; " + _APP_NEEDED,
    ),
    "AADSTS53003": Refusal(
        "conditional_access",
        "a conditional access policy blocked the sign-in; " + _APP_NEEDED,
    ),
    "AADSTS53000": Refusal(
        "conditional_access",
        "conditional access requires a compliant device; " + _APP_NEEDED,
    ),
}
_DEFAULT_FIX = {
    "client_secret": "check tenant_id, client_id and client_secret",
    "certificate": "check tenant_id, client_id and the certificate uploaded to the app",
    "password": "check tenant_id, credential.username and credential.password",
}


def aadsts_code(text: str) -> str | None:
    """The first ``AADSTSnnnn`` code in ``text`` (an AuthError message), if any."""
    match = _AADSTS.search(text)
    return match.group(0) if match else None


@dataclass(slots=True)
class _Cached:
    token: str
    expires_at: float  # monotonic seconds


class TokenProvider:
    """Tokens for one (tenant, credential), cached per audience (a v2 scope).

    A token is renewed ``renew_before_secs`` before it expires, so requests never race its
    expiry; :meth:`invalidate` forces renewal after an API answered 401. With
    ``login_version="v1"`` the v1 endpoint is asked for the scope's resource instead.
    """

    def __init__(
        self,
        client: httpx.AsyncClient,
        *,
        authority: str,
        tenant_id: str,
        clock: Clock,
        credential: Credential | None = None,
        client_id: str | None = None,
        client_secret: SecretStr | None = None,
        login_version: LoginVersion = "v2",
        renew_before_secs: float = 300.0,
    ) -> None:
        """Bind the provider to one tenant's credential (or a ``client_id``/secret pair)."""
        if credential is None:
            if client_id is None or client_secret is None:
                raise ValueError("give credential, or client_id and client_secret")
            credential = ClientSecret(client_id, client_secret)
        self._client = client
        path = "oauth2/v2.0/token" if login_version == "v2" else "oauth2/token"
        self.url = f"{authority.rstrip('/')}/{tenant_id}/{path}"
        self._v1 = login_version == "v1"
        self._tenant_id = tenant_id
        self.credential = credential
        self._clock = clock
        self._renew_before = renew_before_secs
        self._cache: dict[str, _Cached] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self.acquired = 0

    def invalidate(self, scope: str) -> None:
        """Forget the cached token for ``scope``; the next call fetches a new one."""
        self._cache.pop(scope, None)

    async def token(self, scope: str) -> str:
        """Return a valid bearer token for ``scope``.

        Raises:
            AuthError: the token endpoint refused the credentials (with the fix).
            UnavailableError: the token endpoint could not be reached or answered 5xx; the
                caller retries it like any transient failure.
        """
        cached = self._cache.get(scope)
        if cached and cached.expires_at > self._clock.monotonic():
            return cached.token
        lock = self._locks.setdefault(scope, asyncio.Lock())
        async with lock:
            cached = self._cache.get(scope)
            if cached and cached.expires_at > self._clock.monotonic():
                return cached.token
            fresh = await self._fetch(scope)
            self._cache[scope] = fresh
            self.acquired += 1
            return fresh.token

    async def _fetch(self, scope: str) -> _Cached:
        form = self.credential.form(self.url, self._clock.now())
        if self._v1:
            form["resource"] = scope.removesuffix("/.default")
        else:
            form["scope"] = scope
        try:
            response = await self._client.post(self.url, data=form)
        except httpx.TransportError as exc:
            msg = f"token endpoint {self.url} unreachable: {type(exc).__name__}: {exc}"
            raise UnavailableError(msg) from None
        if response.status_code >= 500 or response.status_code == 429:
            msg = f"token endpoint {self.url} answered HTTP {response.status_code}"
            raise UnavailableError(msg)
        try:
            body = orjson.loads(response.content)
        except orjson.JSONDecodeError:
            msg = (
                f"token endpoint {self.url} answered HTTP {response.status_code} with a "
                "non-JSON body: check the authority endpoint"
            )
            raise UnavailableError(msg) from None
        if response.status_code != 200 or not isinstance(body, dict) or "access_token" not in body:
            raise AuthError(self._describe_refusal(response.status_code, body))
        try:
            lifetime = float(body.get("expires_in", 3599))
        except (TypeError, ValueError):
            lifetime = 3599.0
        expires_at = self._clock.monotonic() + max(1.0, lifetime - self._renew_before)
        return _Cached(str(body["access_token"]), expires_at)

    def _describe_refusal(self, status: int, body: object) -> str:
        fields = body if isinstance(body, dict) else {}
        error = str(fields.get("error", "unknown_error"))
        description = str(fields.get("error_description", "")).split("\r\n")[0].split("\n")[0]
        code = aadsts_code(description) if description.startswith("AADSTS") else None
        kind = self.credential.kind
        refusal = REFUSALS.get(code or "")
        fix = refusal.fix if refusal else _DEFAULT_FIX.get(kind, _DEFAULT_FIX["client_secret"])
        who = f"app {shorten(self.credential.client_id)}"
        if isinstance(self.credential, Password):
            who = f"user {shorten(self.credential.username)} via public client " + shorten(
                self.credential.client_id
            )
        said = self._shorten_ids(description or error)
        return (
            f"sign-in refused for tenant {shorten(self._tenant_id)} ({kind} of {who}, "
            f"HTTP {status} {error}): {fix}. Microsoft said: {said}"
        )

    def _shorten_ids(self, text: str) -> str:
        """Microsoft quotes ids and user names in full; show them shortened like ours."""
        names = [self._tenant_id, self.credential.client_id]
        if isinstance(self.credential, Password):
            names.append(self.credential.username)
        for name in names:
            if len(name) > 8:
                text = re.sub(re.escape(name), shorten(name), text, flags=re.IGNORECASE)
        return text


def credential_for(tenant: TenantSettings) -> Credential:
    """Build the sign-in credential a tenant's settings describe.

    Raises:
        ConfigError: a certificate file became unreadable since the configuration loaded.
    """
    settings = tenant.effective_credential()
    if settings.type == "client_secret":
        return ClientSecret(tenant.client_id, settings.client_secret)
    if settings.type == "certificate":
        try:
            cert = load_certificate(
                certificate_file=settings.certificate_file,
                key_file=settings.key_file,
                pkcs12_file=settings.pkcs12_file,
                password=settings.password(),
            )
        except CredentialFileError as exc:
            raise ConfigError(f"tenant {tenant.label}: credential: {exc}") from None
        return Certificate(tenant.client_id, cert)
    warn_password_flow(tenant.label, settings.username)
    return Password(tenant.client_id, settings.username, settings.password)


def token_provider_for(
    tenant: TenantSettings, client: httpx.AsyncClient, clock: Clock
) -> TokenProvider:
    """The token provider of one configured tenant (its credential, cloud and token version)."""
    return TokenProvider(
        client,
        authority=tenant.endpoints.authority_base(),
        tenant_id=tenant.tenant_id,
        credential=credential_for(tenant),
        clock=clock,
        login_version=tenant.endpoints.login_version,
    )
