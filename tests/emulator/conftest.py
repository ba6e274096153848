"""Fixtures of the emulator tests: a frozen clock and emulators served on loopback port 0."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
from emulator_support import ANCHOR, Graph, make_settings

from o365emulator import Emulator, EmulatorSettings
from support import FakeClock


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(ANCHOR + timedelta(hours=1))


@pytest.fixture
def serve(clock: FakeClock) -> Iterator[Callable[..., Graph]]:
    """Factory: ``serve(settings=None, **make_settings_kwargs)`` -> a Graph on a live server."""
    started: list[tuple[Emulator, httpx.Client]] = []

    def factory(settings: EmulatorSettings | None = None, **kwargs: Any) -> Graph:
        emulator = Emulator(settings or make_settings(**kwargs), clock=clock.now)
        # plain HTTP on loopback: verify=False spares building a CA bundle per test
        client = httpx.Client(base_url=emulator.start(), timeout=30, verify=False)
        started.append((emulator, client))
        return Graph(emulator, client)

    yield factory
    for emulator, client in started:
        client.close()
        emulator.stop()


@pytest.fixture
def graph(serve: Callable[..., Graph]) -> Graph:
    """The default emulator: 3000 rows, fixed anchor, clock one hour after the anchor."""
    return serve()
