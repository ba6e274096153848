"""Message trace detail from Graph and from RWS: selected rows only, same steps, DETAIL priority."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from datetime import timedelta

import httpx
import orjson
import pytest

from o365collector.http.budget import RequestBudget
from o365collector.planning.lanes import Priority
from o365collector.sources.graph.message_trace import GraphMessageTraceSource
from o365collector.sources.reporting.detail import DetailSource, GraphDetail, RwsDetail
from o365collector.sources.reporting.source import ReportSource
from o365collector.streams.catalog import CATALOG
from o365collector.windows import TimeWindow
from support.rws import ANCHOR, EXCHANGE_SCOPE, RWS_PATH, TENANT_ID

GRAPH_SCOPE = "https://graph.microsoft.com/.default"
STATUSES = ["failed", "quarantined", "filteredAsSpam"]
WINDOW = TimeWindow(ANCHOR - timedelta(days=1), ANCHOR)


class RecordingBudget(RequestBudget):
    """A budget that notes the priority of every request."""

    def __init__(self, clock) -> None:
        super().__init__(100_000, 300.0, clock)
        self.priorities: list[int] = []

    @contextlib.asynccontextmanager
    async def spend(self, priority: int = 0) -> AsyncIterator[None]:
        self.priorities.append(priority)
        async with super().spend(priority):
            yield


def _selected(emu_url: str) -> set[tuple[str, str]]:
    """(trace id, recipient) of rows in WINDOW whose final status is selected."""
    with httpx.Client(base_url=emu_url) as http:
        body = http.get(
            "/_emulator/ground-truth", params={"tenant": TENANT_ID, "report": "MessageTrace"}
        ).content
    out = set()
    for line in body.splitlines():
        row = orjson.loads(line)["record"]
        inside = "2026-01-19T12:00:00" <= row["Received"] <= "2026-01-20T12:00:00.0000000Z"
        if inside and row["Status"].lower() in {s.lower() for s in STATUSES}:
            out.add((row["MessageTraceId"], row["RecipientAddress"]))
    return out


async def _details(source: DetailSource) -> list[dict]:
    pages = [p async for p in source.pages(WINDOW, None, priority=Priority.DETAIL)]
    return [r for p in pages for r in p.records]


@pytest.fixture
def settled(emulator, clock):
    emu = emulator()
    clock.t = 3 * 86400  # every status is final
    return emu


async def test_graph_detail_covers_exactly_the_selected_rows(settled, api_factory, clock) -> None:
    api = api_factory(authority=settled.base_url)
    api.budget = RecordingBudget(clock)
    listing = GraphMessageTraceSource(
        api, graph_base=settled.base_url, scope=GRAPH_SCOPE, page_size=500, max_pages=100
    )
    detail = GraphDetail(api, graph_base=settled.base_url, scope=GRAPH_SCOPE)
    source = DetailSource(listing, detail, STATUSES)
    rows = await _details(source)
    assert {(r["id"], r["recipientAddress"]) for r in rows} == _selected(settled.base_url)
    keys = [source.key_of(r) for r in rows]
    assert len(set(keys)) == len(keys)
    assert {r["event"] for r in rows} >= {"Receive"}
    assert set(api.budget.priorities) == {Priority.DETAIL}


async def test_rws_detail_gives_the_same_steps_as_graph(settled, api_factory) -> None:
    api = api_factory(authority=settled.base_url)
    base = settled.base_url + RWS_PATH
    listing = ReportSource(api, CATALOG["MessageTrace"], base=base, scope=EXCHANGE_SCOPE)
    detail = ReportSource(api, CATALOG["MessageTraceDetail"], base=base, scope=EXCHANGE_SCOPE)
    rws = DetailSource(listing, RwsDetail(detail), STATUSES)
    rws_rows = await _details(rws)
    assert {(r["MessageTraceId"], r["RecipientAddress"]) for r in rws_rows} == _selected(
        settled.base_url
    )
    graph_listing = GraphMessageTraceSource(
        api, graph_base=settled.base_url, scope=GRAPH_SCOPE, page_size=500, max_pages=100
    )
    graph = DetailSource(
        graph_listing, GraphDetail(api, graph_base=settled.base_url, scope=GRAPH_SCOPE), STATUSES
    )
    graph_rows = await _details(graph)
    assert sorted(rws.key_of(r) for r in rws_rows) == sorted(graph.key_of(r) for r in graph_rows)


def test_rws_detail_query_has_the_documented_shape() -> None:
    source = ReportSource(None, CATALOG["MessageTraceDetail"], base="https://r/x.svc", scope="s")  # type: ignore[arg-type]
    row = {"MessageTraceId": "g-1", "RecipientAddress": "o'neil@x", "SenderAddress": "s@y"}
    assert RwsDetail(source).query(row, WINDOW) == (
        "MessageTraceId eq guid'g-1' and RecipientAddress eq 'o''neil@x' and "
        "SenderAddress eq 's@y' and StartDate eq datetime'2026-01-19T12:00:00Z' and "
        "EndDate eq datetime'2026-01-20T12:00:00Z'"
    )
