"""The emulator's rows of every stream, read by the collector's own sources.

``ReportSource`` reads each report, ``DetailSource`` reads message trace detail from Graph
and from RWS, so the records have the shape the collector receives: RWS verbose JSON
(``/Date(ms)/`` dates, the per-row ``__metadata``, the ``StartDate`` / ``EndDate`` echo),
Graph camelCase detail steps with the ``recipientAddress`` the source adds. Used by the
normalization tests and the docs samples (``bench/normalize.py`` has its own, pytest-free copy).
"""

from __future__ import annotations

import asyncio
import functools
from datetime import timedelta
from typing import Any

import httpx
from pydantic import SecretStr

from o365collector.config.model import RetrySettings
from o365collector.event import Event, StreamIds
from o365collector.http.auth import TokenProvider
from o365collector.http.budget import RequestBudget
from o365collector.http.client import ApiClient
from o365collector.sources.base import Page
from o365collector.sources.graph.message_trace import GraphMessageTraceSource
from o365collector.sources.reporting.detail import DetailSource, GraphDetail, RwsDetail
from o365collector.sources.reporting.source import ReportSource
from o365collector.streams.catalog import (
    CATALOG,
    GRAPH_MESSAGE_TRACE,
    MESSAGE_TRACE_DETAIL,
    RWS_PREFIX,
)
from o365collector.windows import TimeWindow
from o365emulator import Emulator
from o365emulator.reporting_registry import REPORTS
from support.clock import FakeClock
from support.rws import (
    ANCHOR,
    CLIENT_ID,
    EXCHANGE_SCOPE,
    RWS_PATH,
    SECRET,
    TENANT_ID,
    emulator_settings,
)

TENANT = "contoso"
GRAPH_SCOPE = "https://graph.microsoft.com/.default"
WINDOW = TimeWindow(ANCHOR - timedelta(days=2), ANCHOR)
DETAIL_STATUSES = ("delivered", "failed", "quarantined", "filteredAsSpam", "pending", "expanded")
GRAPH_DETAIL = "message_trace_detail (graph)"
RWS_DETAIL = "message_trace_detail (rws)"
RWS_MESSAGE_TRACE = RWS_PREFIX + "MessageTrace"
LISTED = sorted(set(REPORTS) - {"MessageTrace", "MessageTraceDetail"})


async def _events(stream: str, pages: Any) -> list[Event]:
    ids = StreamIds(TENANT_ID, stream)
    out: list[Event] = []
    page: Page
    async for page in pages:
        for key, record in zip(ids.event_ids(page.facts), page.records, strict=True):
            out.append(Event(TENANT, stream, key, record))
        page.permit.release()
    return out


async def _collect() -> dict[str, list[Event]]:
    clock = FakeClock(ANCHOR + timedelta(days=3))  # every status final, every bucket settled
    emu = Emulator(emulator_settings(), clock=clock.now)
    emu.start()
    try:
        async with httpx.AsyncClient() as http:
            tokens = TokenProvider(
                http,
                authority=emu.base_url,
                tenant_id=TENANT_ID,
                client_id=CLIENT_ID,
                client_secret=SecretStr(SECRET),
                clock=clock,
            )
            retry = RetrySettings(
                initial_interval_secs=1.0,
                multiplier=2.0,
                max_interval_secs=4.0,
                max_elapsed_secs=30.0,
            )
            api = ApiClient(http, tokens, RequestBudget(100_000, 300.0, clock), retry, clock, "t")
            base = emu.base_url + RWS_PATH

            def report(name: str) -> ReportSource:
                return ReportSource(api, CATALOG[name], base=base, scope=EXCHANGE_SCOPE)

            served: dict[str, list[Event]] = {}
            trace = GraphMessageTraceSource(
                api, graph_base=emu.base_url, scope=GRAPH_SCOPE, page_size=500, max_pages=100
            )
            served[GRAPH_MESSAGE_TRACE] = await _events(
                GRAPH_MESSAGE_TRACE, trace.pages(WINDOW, None)
            )
            served[RWS_MESSAGE_TRACE] = await _events(
                RWS_MESSAGE_TRACE, report("MessageTrace").pages(WINDOW, None)
            )
            for name in LISTED:
                stream = RWS_PREFIX + name
                served[stream] = await _events(stream, report(name).pages(WINDOW, None))
            rws = DetailSource(
                report("MessageTrace"), RwsDetail(report("MessageTraceDetail")), DETAIL_STATUSES
            )
            served[RWS_DETAIL] = await _events(MESSAGE_TRACE_DETAIL, rws.pages(WINDOW, None))
            listing = GraphMessageTraceSource(
                api, graph_base=emu.base_url, scope=GRAPH_SCOPE, page_size=500, max_pages=100
            )
            graph = DetailSource(
                listing,
                GraphDetail(api, graph_base=emu.base_url, scope=GRAPH_SCOPE),
                DETAIL_STATUSES,
            )
            served[GRAPH_DETAIL] = await _events(MESSAGE_TRACE_DETAIL, graph.pages(WINDOW, None))
            return served
    finally:
        emu.stop()


@functools.cache
def served_events() -> dict[str, list[Event]]:
    """Stream (message trace from Graph and RWS, every report; detail per shape, see
    ``GRAPH_DETAIL`` / ``RWS_DETAIL``) → the emulator's
    events of two days (read once per test process)."""
    return asyncio.run(_collect())
