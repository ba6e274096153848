"""TokenProvider: caching, renewal, and refusals that say how to fix them."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from urllib.parse import parse_qs

import httpx
import pytest
from pydantic import SecretStr

from o365collector.errors import AuthError, UnavailableError
from o365collector.http.auth import TokenProvider
from support.mock_api import AUTHORITY, CLIENT_ID, CLIENT_SECRET, SCOPE, TENANT_ID, TOKEN_URL

AADSTS7000215 = {
    "error": "invalid_client",
    "error_description": "AADSTS7000215: Invalid client secret provided. Ensure the secret "
    "being sent in the request is the client secret value, not the client secret ID, for a "
    "secret added to app '66666666-7777-8888-9999-000000000000'.\r\n"
    "Trace ID: 0f3a Correlation ID: 9c1b Timestamp: 2024-05-01 12:00:00Z",
    "error_codes": [7000215],
}


@pytest.fixture
async def provider_for(clock) -> AsyncIterator[Callable[..., TokenProvider]]:
    clients: list[httpx.AsyncClient] = []

    def make(handler: Callable[[httpx.Request], httpx.Response]) -> TokenProvider:
        http = httpx.AsyncClient(transport=httpx.MockTransport(handler))
        clients.append(http)
        return TokenProvider(
            http,
            authority=AUTHORITY + "/",
            tenant_id=TENANT_ID,
            client_id=CLIENT_ID,
            client_secret=SecretStr(CLIENT_SECRET),
            clock=clock,
            renew_before_secs=300,
        )

    yield make
    for http in clients:
        await http.aclose()


async def test_token_request_form(provider_for) -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"access_token": "tok-A", "expires_in": 3599})

    provider = provider_for(handler)
    assert await provider.token(SCOPE) == "tok-A"
    assert len(seen) == 1
    request = seen[0]
    assert request.method == "POST"
    assert str(request.url) == TOKEN_URL
    form = {k: v[0] for k, v in parse_qs(request.content.decode()).items()}
    assert form == {
        "grant_type": "client_credentials",
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
        "scope": SCOPE,
    }


async def test_token_cached_until_renewal_time(provider_for, clock) -> None:
    issued: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        issued.append(f"tok-{len(issued) + 1}")
        return httpx.Response(200, json={"access_token": issued[-1], "expires_in": 3600})

    provider = provider_for(handler)
    assert await provider.token(SCOPE) == "tok-1"
    clock.advance(3299)  # 3600 s lifetime, renewed 300 s before expiry
    assert await provider.token(SCOPE) == "tok-1"
    assert provider.acquired == 1
    clock.advance(1)
    assert await provider.token(SCOPE) == "tok-2"
    assert provider.acquired == 2
    assert await provider.token(SCOPE) == "tok-2"
    assert issued == ["tok-1", "tok-2"]


async def test_tokens_cached_per_scope(provider_for) -> None:
    scopes: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        scope = parse_qs(request.content.decode())["scope"][0]
        scopes.append(scope)
        return httpx.Response(200, json={"access_token": f"tok-{scope}", "expires_in": 3600})

    provider = provider_for(handler)
    assert await provider.token("a/.default") == "tok-a/.default"
    assert await provider.token("b/.default") == "tok-b/.default"
    assert await provider.token("a/.default") == "tok-a/.default"
    assert scopes == ["a/.default", "b/.default"]


async def test_invalidate_forces_a_new_token(provider_for) -> None:
    count = 0

    def handler(request: httpx.Request) -> httpx.Response:
        nonlocal count
        count += 1
        return httpx.Response(200, json={"access_token": f"tok-{count}", "expires_in": 3600})

    provider = provider_for(handler)
    assert await provider.token(SCOPE) == "tok-1"
    provider.invalidate(SCOPE)
    assert await provider.token(SCOPE) == "tok-2"
    provider.invalidate("never-fetched")  # harmless


async def test_short_lifetime_still_cached_briefly(provider_for, clock) -> None:
    count = 0

    def handler(request: httpx.Request) -> httpx.Response:
        nonlocal count
        count += 1
        return httpx.Response(200, json={"access_token": f"tok-{count}", "expires_in": 60})

    provider = provider_for(handler)
    await provider.token(SCOPE)
    await provider.token(SCOPE)
    assert count == 1
    clock.advance(1)
    await provider.token(SCOPE)
    assert count == 2


async def test_wrong_secret_gives_the_fix_without_the_secret(provider_for) -> None:
    provider = provider_for(lambda request: httpx.Response(401, json=AADSTS7000215))
    with pytest.raises(AuthError) as info:
        await provider.token(SCOPE)
    message = str(info.value)
    assert "AADSTS7000215" in message
    assert "Value (not its Secret ID)" in message
    assert "client_secret" in message
    assert "invalid_client" in message
    assert "HTTP 401" in message
    assert CLIENT_SECRET not in message
    assert TENANT_ID not in message  # shortened
    assert "Trace ID" not in message  # only the first line of Microsoft's description
    assert provider.acquired == 0


@pytest.mark.parametrize(
    ("code", "fix"),
    [
        ("AADSTS7000222", "expired"),
        ("AADSTS700016", "check client_id and tenant_id"),
        ("AADSTS90002", "tenant_id does not exist"),
    ],
)
async def test_known_refusals_name_their_fix(provider_for, code: str, fix: str) -> None:
    body = {"error": "invalid_request", "error_description": f"{code}: something went wrong"}
    provider = provider_for(lambda request: httpx.Response(400, json=body))
    with pytest.raises(AuthError, match=fix):
        await provider.token(SCOPE)


async def test_200_without_access_token_is_auth_error(provider_for) -> None:
    provider = provider_for(lambda request: httpx.Response(200, json={"foo": "bar"}))
    with pytest.raises(AuthError, match="check tenant_id, client_id and client_secret"):
        await provider.token(SCOPE)


@pytest.mark.parametrize("status", [500, 503, 429])
async def test_server_errors_are_unavailable(provider_for, status: int) -> None:
    provider = provider_for(lambda request: httpx.Response(status, text="busy"))
    with pytest.raises(UnavailableError, match=f"HTTP {status}"):
        await provider.token(SCOPE)


async def test_non_json_answer_is_unavailable(provider_for) -> None:
    provider = provider_for(lambda request: httpx.Response(200, text="<html>proxy</html>"))
    with pytest.raises(UnavailableError, match="non-JSON"):
        await provider.token(SCOPE)


@pytest.mark.parametrize("exc", [httpx.ConnectError("refused"), httpx.ReadTimeout("slow")])
async def test_transport_errors_are_unavailable(provider_for, exc: Exception) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise exc

    provider = provider_for(handler)
    with pytest.raises(UnavailableError) as info:
        await provider.token(SCOPE)
    assert type(exc).__name__ in str(info.value)
    assert CLIENT_SECRET not in str(info.value)


async def test_failure_is_not_cached(provider_for) -> None:
    answers = [httpx.Response(503), httpx.Response(200, json={"access_token": "ok"})]
    provider = provider_for(lambda request: answers.pop(0))
    with pytest.raises(UnavailableError):
        await provider.token(SCOPE)
    assert await provider.token(SCOPE) == "ok"


async def test_concurrent_callers_share_one_fetch(provider_for) -> None:
    count = 0

    async def slow_post(*args: object, **kwargs: object) -> httpx.Response:
        nonlocal count
        count += 1
        await asyncio.sleep(0)
        return httpx.Response(200, json={"access_token": f"tok-{count}", "expires_in": 3600})

    provider = provider_for(lambda request: httpx.Response(500))
    provider._client.post = slow_post  # an async round trip the callers overlap on
    tokens = await asyncio.gather(*(provider.token(SCOPE) for _ in range(5)))
    assert tokens == ["tok-1"] * 5
    assert count == 1
    assert provider.acquired == 1
