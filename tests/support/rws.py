"""Reporting Web Service helpers: the test tenant, emulator settings, tokens, fixtures.

The fixtures ``clock``, ``api_factory`` and ``emulator`` are registered by the conftest of each
folder that uses them (``sources/reporting``, ``emulator/reporting``); the rest is imported
by name.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from o365collector.config.model import RetrySettings
from o365collector.http.auth import TokenProvider
from o365collector.http.budget import RequestBudget
from o365collector.http.client import ApiClient
from o365emulator import Emulator, EmulatorSettings, TenantSpec
from support.clock import FakeClock

ANCHOR = datetime(2026, 1, 20, 12, 0, tzinfo=UTC)
TENANT_ID = "3c9a1e2f-0000-4000-8000-00000000a0a1"
CLIENT_ID = "9b8c7d6e-0000-4000-8000-00000000c0c1"
SECRET = "rws-test-secret~0123456789"
RWS_PATH = "/ecp/reportingwebservice/reporting.svc"
EXCHANGE_SCOPE = "https://outlook.office365.com/.default"


def emulator_settings(
    rows: int = 2000, *, tenant: dict[str, Any] | None = None, **overrides: Any
) -> EmulatorSettings:
    spec = TenantSpec(
        tenant_id=TENANT_ID,
        client_id=CLIENT_ID,
        client_secret=SECRET,
        rows=rows,
        **{"quota_requests": 100_000, **(tenant or {})},
    )
    values: dict[str, Any] = {
        "seed": 11,
        "tenants": [spec],
        "anchor": ANCHOR,
        "rws_aggregate_delay_secs": 600.0,
    }
    values.update(overrides)
    return EmulatorSettings(**values)


def token_response(token: str = "tok-rws") -> httpx.Response:
    return httpx.Response(
        200, json={"token_type": "Bearer", "expires_in": 3600, "access_token": token}
    )


def bearer(client: httpx.Client, scope: str = EXCHANGE_SCOPE) -> dict[str, str]:
    """A token for ``scope`` from the emulator the client talks to."""
    response = client.post(
        f"/{TENANT_ID}/oauth2/v2.0/token",
        data={
            "grant_type": "client_credentials",
            "client_id": CLIENT_ID,
            "client_secret": SECRET,
            "scope": scope,
        },
    )
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(ANCHOR + timedelta(hours=2))


ApiFactory = Callable[..., ApiClient]


@pytest.fixture
async def api_factory(clock: FakeClock) -> AsyncIterator[ApiFactory]:
    """``make(handler=None, base_url=None)``: an ApiClient over MockTransport or a server."""
    clients: list[httpx.AsyncClient] = []

    def make(
        handler: Callable[[httpx.Request], httpx.Response] | None = None,
        *,
        authority: str = "https://login.microsoftonline.com",
        max_elapsed_secs: float = 30.0,
    ) -> ApiClient:
        transport = httpx.MockTransport(handler) if handler is not None else None
        http = httpx.AsyncClient(transport=transport)
        clients.append(http)
        tokens = TokenProvider(
            http,
            authority=authority,
            tenant_id=TENANT_ID,
            client_id=CLIENT_ID,
            client_secret=SecretStr(SECRET),
            clock=clock,
        )
        retry = RetrySettings(
            initial_interval_secs=1.0,
            multiplier=2.0,
            max_interval_secs=4.0,
            max_elapsed_secs=max_elapsed_secs,
        )
        return ApiClient(http, tokens, RequestBudget(100_000, 300.0, clock), retry, clock, "t")

    yield make
    for http in clients:
        await http.aclose()


@pytest.fixture
def emulator(clock: FakeClock) -> Iterator[Callable[..., Emulator]]:
    """``start(**emulator_settings_kwargs)``: an emulator on loopback, on the fake clock."""
    started: list[Emulator] = []

    def start(**kwargs: Any) -> Emulator:
        emu = Emulator(emulator_settings(**kwargs), clock=clock.now)
        emu.start()
        started.append(emu)
        return emu

    yield start
    for emu in started:
        emu.stop()
