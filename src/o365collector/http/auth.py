"""OAuth2 client credentials: one cached token per scope, renewed before it expires."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import httpx
import orjson
from pydantic import SecretStr

from o365collector.clock import Clock
from o365collector.errors import AuthError, UnavailableError
from o365collector.observability.redact import shorten

# AADSTS codes an operator can fix, with the fix (Microsoft's description follows it).
_FIXES = {
    "AADSTS7000215": "the client secret is wrong: copy the secret's Value (not its Secret ID) "
    "into client_secret",
    "AADSTS7000222": "the client secret has expired: create a new secret for the app",
    "AADSTS700016": "no app with this client_id in the tenant: check client_id and tenant_id "
    "(and that the app is multi-tenant if registered elsewhere)",
    "AADSTS90002": "the tenant_id does not exist: check tenant_id (a GUID or the "
    "tenant's .onmicrosoft.com domain)",
    "AADSTS900023": "tenant_id is malformed: use the Directory (tenant) ID GUID",
    "AADSTS70011": "the scope was refused: check the endpoint overrides for this cloud",
    "AADSTS1002012": "the scope was refused: check the endpoint overrides for this cloud",
}


@dataclass(slots=True)
class _Cached:
    token: str
    expires_at: float  # monotonic seconds


class TokenProvider:
    """Client-credentials tokens for one (tenant, app), cached per scope.

    A token is renewed ``renew_before_secs`` before it expires, so requests never race its
    expiry; :meth:`invalidate` forces renewal after an API answered 401.
    """

    def __init__(
        self,
        client: httpx.AsyncClient,
        *,
        authority: str,
        tenant_id: str,
        client_id: str,
        client_secret: SecretStr,
        clock: Clock,
        renew_before_secs: float = 300.0,
    ) -> None:
        """Bind the provider to one tenant's app registration."""
        self._client = client
        self._url = f"{authority.rstrip('/')}/{tenant_id}/oauth2/v2.0/token"
        self._tenant_id = tenant_id
        self._client_id = client_id
        self._secret = client_secret
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
        form = {
            "grant_type": "client_credentials",
            "client_id": self._client_id,
            "client_secret": self._secret.get_secret_value(),
            "scope": scope,
        }
        try:
            response = await self._client.post(self._url, data=form)
        except httpx.TransportError as exc:
            msg = f"token endpoint {self._url} unreachable: {type(exc).__name__}: {exc}"
            raise UnavailableError(msg) from None
        if response.status_code >= 500 or response.status_code == 429:
            msg = f"token endpoint {self._url} answered HTTP {response.status_code}"
            raise UnavailableError(msg)
        try:
            body = orjson.loads(response.content)
        except orjson.JSONDecodeError:
            msg = (
                f"token endpoint {self._url} answered HTTP {response.status_code} with a "
                "non-JSON body: check the authority endpoint"
            )
            raise UnavailableError(msg) from None
        if response.status_code != 200 or "access_token" not in body:
            raise AuthError(self._describe_refusal(response.status_code, body))
        lifetime = float(body.get("expires_in", 3599))
        expires_at = self._clock.monotonic() + max(1.0, lifetime - self._renew_before)
        return _Cached(str(body["access_token"]), expires_at)

    def _describe_refusal(self, status: int, body: dict[str, object]) -> str:
        error = str(body.get("error", "unknown_error"))
        description = str(body.get("error_description", "")).split("\r\n")[0].split("\n")[0]
        code = description.split(":", 1)[0].strip() if description.startswith("AADSTS") else ""
        fix = _FIXES.get(code, "check tenant_id, client_id and client_secret")
        return (
            f"sign-in refused for tenant {shorten(self._tenant_id)} app "
            f"{shorten(self._client_id)} (HTTP {status} {error}): {fix}. "
            f"Microsoft said: {description or error}"
        )
