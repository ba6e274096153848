"""A tenant behind ``httpx.MockTransport``: its constants, a fake clock and an ApiClient factory.

The fixtures ``clock`` and ``api_factory`` are registered by the conftest of each folder that
uses them (``http``, ``pipeline``, ``sources/graph``); the rest is imported by name.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime

import httpx
import pytest
from pydantic import SecretStr

from o365collector.config.model import RetrySettings
from o365collector.http.auth import TokenProvider
from o365collector.http.budget import RequestBudget
from o365collector.http.client import ApiClient
from support.clock import FakeClock

EPOCH = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)
AUTHORITY = "https://login.microsoftonline.com"
GRAPH = "https://graph.microsoft.com"
TENANT_ID = "11111111-2222-3333-4444-555555555555"
CLIENT_ID = "66666666-7777-8888-9999-000000000000"
CLIENT_SECRET = "unit-test-client-secret-Q7x~9zK"
TOKEN_URL = f"{AUTHORITY}/{TENANT_ID}/oauth2/v2.0/token"
SCOPE = f"{GRAPH}/.default"


def token_response(token: str = "tok-1", expires_in: int = 3600) -> httpx.Response:
    return httpx.Response(
        200, json={"token_type": "Bearer", "expires_in": expires_in, "access_token": token}
    )


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(EPOCH)


Handler = Callable[[httpx.Request], httpx.Response]
ApiFactory = Callable[..., ApiClient]


@pytest.fixture
async def api_factory(clock: FakeClock) -> AsyncIterator[ApiFactory]:
    """Build an ApiClient whose HTTP goes to ``handler`` (token endpoint included)."""
    clients: list[httpx.AsyncClient] = []

    def make(
        handler: Handler,
        *,
        retry: RetrySettings | None = None,
        budget: RequestBudget | None = None,
    ) -> ApiClient:
        http = httpx.AsyncClient(transport=httpx.MockTransport(handler))
        clients.append(http)
        tokens = TokenProvider(
            http,
            authority=AUTHORITY,
            tenant_id=TENANT_ID,
            client_id=CLIENT_ID,
            client_secret=SecretStr(CLIENT_SECRET),
            clock=clock,
        )
        return ApiClient(
            http=http,
            tokens=tokens,
            budget=budget or RequestBudget(10_000, 300.0, clock),
            retry=retry
            or RetrySettings(
                initial_interval_secs=1.0,
                multiplier=2.0,
                max_interval_secs=4.0,
                max_elapsed_secs=30.0,
            ),
            clock=clock,
            tenant="unit",
        )

    yield make
    for http in clients:
        await http.aclose()
