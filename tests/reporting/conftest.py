"""Fixtures of the RWS tests: a fake clock, ApiClients over MockTransport or the emulator."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).parents[1] / "integration"))

from rws_support import (
    ANCHOR,
    CLIENT_ID,
    SECRET,
    TENANT_ID,
    emulator_settings,
)

from o365collector.config.model import RetrySettings
from o365collector.http.auth import TokenProvider
from o365collector.http.budget import RequestBudget
from o365collector.http.client import ApiClient
from o365emulator import Emulator
from support import FakeClock


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
