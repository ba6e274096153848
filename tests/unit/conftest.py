"""Fixtures of the unit tests: a fake clock and an ApiClient over httpx.MockTransport."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import httpx
import pytest
from pydantic import SecretStr
from unit_support import AUTHORITY, CLIENT_ID, CLIENT_SECRET, EPOCH, TENANT_ID

from o365collector.config.model import RetrySettings
from o365collector.http.auth import TokenProvider
from o365collector.http.budget import RequestBudget
from o365collector.http.client import ApiClient
from support import FakeClock


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
