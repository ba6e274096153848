"""Issue 21.6: RWS paging at the ``$skiptoken`` ceiling, bounds, partitions and restarts.

Every test reads the project's emulator over HTTP (its ``rws_skiptoken_ceiling`` answers 500
from a small offset) and asserts what was delivered: each row of the window once, none
missing. No dedup store runs here, as under ``fixed_delay`` and for aggregated reports,
so a row the reader sends twice is a row a Devo table receives twice.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections import Counter
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import quote

import pytest

from o365collector.app import Collector, RunOptions
from o365collector.config.loader import parse_settings
from o365collector.errors import SourceError
from o365collector.sources.base import Page
from o365collector.sources.reporting.records import record_key
from o365collector.sources.reporting.source import ReportSource
from o365collector.state.sqlite import SqliteStateStore
from o365collector.streams.catalog import CATALOG, ReportSpec
from o365collector.windows import TimeWindow
from o365emulator.reporting_format import When, truth_row
from o365emulator.reporting_rows import Row, Table
from o365emulator.ticks import to_ticks
from support.compat import read_jsonl
from support.rws import ANCHOR, CLIENT_ID, EXCHANGE_SCOPE, RWS_PATH, SECRET, TENANT_ID

CEILING = 30  # the service answers 500 from this $skiptoken on; the reader knows it
TOP = 10  # the collector's $top: three pages fit under the ceiling
START = ANCHOR - timedelta(hours=8)
HOUR = timedelta(hours=1)
Key = tuple[str, str, str]


def _trace_rows(times: list[datetime], status: str = "Delivered", tag: str = "r") -> list[Any]:
    """MessageTrace rows at ``times``, visible from the start."""
    items = []
    for i, moment in enumerate(times):
        row: Row = {
            "MessageTraceId": f"00000000-0000-4000-8000-{i:012d}",
            "RecipientAddress": f"{tag}{i}@contoso.com",
            "Status": status,
            "Received": When(to_ticks(moment)),
        }
        items.append((to_ticks(moment), 0, row))
    return items


def _spread(count: int, window: TimeWindow) -> list[datetime]:
    step = (window.end - window.start) / count
    return [window.start + i * step for i in range(count)]


def _serve(emu: Any, report: str, items: list[Any]) -> set[Key]:
    """Serve ``items`` as ``report``; the keys of every row served."""
    emu.serve_report_rows(TENANT_ID, report, Table.of(items))
    spec = CATALOG[report]
    return {record_key(spec, truth_row(row)) for _, _, row in items}


def _reader(emu: Any, api_factory: Any, spec: ReportSpec = CATALOG["MessageTrace"]) -> ReportSource:
    api = api_factory(authority=emu.base_url, max_elapsed_secs=5.0)
    return ReportSource(
        api, spec, base=emu.base_url + RWS_PATH, scope=EXCHANGE_SCOPE, page_size=TOP,
        skiptoken_ceiling=CEILING,
    )  # fmt: skip


async def _pages(source: ReportSource, window: TimeWindow, link: str | None = None,
                 stop: Callable[[Page], bool] | None = None) -> list[Page]:  # fmt: skip
    """Pages of ``window`` (from ``link``), up to and including the first where ``stop`` holds."""
    out = []
    async for page in source.pages(window, link):
        out.append(page)
        page.permit.release()
        if stop is not None and stop(page):
            break
    return out


def _delivered(source: ReportSource, pages: list[Page]) -> Counter[Key]:
    return Counter(source.key_of(r) for p in pages for r in p.records)


def _once(delivered: Counter[Key], expected: set[Key]) -> None:
    twice = [k for k, n in delivered.items() if n > 1]
    assert not twice, f"{len(twice)} rows delivered twice, e.g. {twice[:2]}"
    missing = expected - set(delivered)
    assert not missing, f"{len(missing)} of {len(expected)} rows missing"
    assert set(delivered) == expected


@pytest.mark.parametrize("links", [True, False], ids=["service-links", "computed-offsets"])
async def test_a_range_past_the_ceiling_is_read_in_halves_each_row_once(
    emulator, api_factory, links: bool
) -> None:
    """100 rows in one 2 h query, 30 fit under the ceiling: whether the service sends next
    links or the reader computes each offset, the range is split (the service would
    answer 500), and the rows the abandoned attempt delivered are not delivered again."""
    emu = emulator(rows=10, rws_skiptoken_ceiling=CEILING, rws_next_links=links)
    window = TimeWindow(START, START + 2 * HOUR)
    expected = _serve(emu, "MessageTrace", _trace_rows(_spread(100, window)))
    source = _reader(emu, api_factory)
    pages = await _pages(source, window)
    _once(_delivered(source, pages), expected)
    ends = {source.query_of(p.next_link).end for p in pages if p.next_link}  # type: ignore[union-attr]
    assert min(ends) < window.end, "the range was never split: the test proves nothing"
    assert pages[-1].next_link is None


async def test_rows_on_query_and_window_bounds_are_delivered_once(emulator, api_factory) -> None:
    """The emulator includes both bounds. Rows exactly at a window's start, at the bound
    between two windows, at the one-day bound between two queries of a window, and at the
    last window's end (the next window's row): each is delivered by one query only."""
    emu = emulator(rows=10)
    start = (ANCHOR - timedelta(days=3)).replace(hour=0)
    middle, end = start + timedelta(days=2), start + timedelta(days=2, hours=6)
    bounds = [start, start + timedelta(days=1), middle, end]
    inner = _spread(40, TimeWindow(start, end))
    items = _trace_rows(bounds, tag="bound") + _trace_rows(inner[1:], tag="inner")
    served = _serve(emu, "MessageTrace", items)
    spec = CATALOG["MessageTrace"]
    at_end = record_key(spec, truth_row(items[3][2]))
    source = _reader(emu, api_factory)
    pages = await _pages(source, TimeWindow(start, middle))
    pages += await _pages(source, TimeWindow(middle, end))
    _once(_delivered(source, pages), served - {at_end})


async def test_resuming_from_a_link_inside_a_split_half(emulator, api_factory) -> None:
    """A restart after a page inside a half: the new reader goes on from the stored link
    in that half and then through the rest of the range. Nothing is missing; the half's
    pages read before the restart are not read again; the only rows that can come twice
    are those the abandoned attempt delivered (the reader's memory of them is gone)."""
    emu = emulator(rows=10, rws_skiptoken_ceiling=CEILING)
    window = TimeWindow(START, START + 2 * HOUR)
    expected = _serve(emu, "MessageTrace", _trace_rows(_spread(100, window)))
    first = _reader(emu, api_factory)

    def inside_a_half(page: Page) -> bool:
        query = first.query_of(page.next_link) if page.next_link else None
        return query is not None and query.end < window.end and "skiptoken" in page.next_link  # type: ignore[operator]

    before = await _pages(first, window, stop=inside_a_half)
    link = before[-1].next_link
    assert link is not None and inside_a_half(before[-1]), "no page inside a half"
    split_at = next(i for i, p in enumerate(before) if first.query_of(p.next_link).end < window.end)  # type: ignore[union-attr]
    abandoned = _delivered(first, before[: split_at + 1])
    in_half = _delivered(first, before[split_at + 1 :])
    second = _reader(emu, api_factory)
    after = await _pages(second, window, link)
    resumed = _delivered(second, after)
    assert set(_delivered(first, before)) | set(resumed) == expected, "rows missing"
    assert max(resumed.values()) == 1
    assert not set(resumed) & set(in_half), "the half's pages were read again"
    assert set(resumed) & set(_delivered(first, before)) <= set(abandoned)
    assert after[-1].next_link is None


async def test_a_partitioned_report_that_cannot_split_fails_loudly(emulator, api_factory) -> None:
    """MailTrafficSummary reads each category of a day as its own query and cannot split
    a day: a category past the ceiling stops the window with an error, after delivering
    the earlier category whole and that category's pages before the last one, once."""
    emu = emulator(rows=10, rws_skiptoken_ceiling=CEILING)
    day = START.replace(hour=0)
    items = []
    for category, count in (("TopMailSender", 7), ("TopMailRecipient", 45)):
        for i in range(count):
            row: Row = {"Category": category, "C1": f"{category}{i}@contoso.com", "C2": str(i)}
            items.append((to_ticks(day), 0, {**row, "Domain": "contoso.com", "DlpPolicy": None}))
    emu.serve_report_rows(TENANT_ID, "MailTrafficSummary", Table.of(items))
    source = _reader(emu, api_factory, CATALOG["MailTrafficSummary"])
    pages: list[Page] = []
    with pytest.raises(SourceError, match="cannot be split further"):
        async for page in source.pages(TimeWindow(day, day + timedelta(days=1)), None):
            pages.append(page)
            page.permit.release()
    got = Counter((r["Category"], r["C1"]) for p in pages for r in p.records)
    assert max(got.values()) == 1
    # The page whose next offset would pass the ceiling raises before it is handed over.
    assert Counter(c for c, _ in got) == {"TopMailSender": 7, "TopMailRecipient": CEILING - TOP}


async def test_a_partitioned_range_split_in_a_later_partition_delivers_each_row_once(
    emulator, api_factory
) -> None:
    """A report read in two partitions (by status) whose second passes the ceiling: the
    range is split, each half is read in both partitions, and the first partition's rows
    of the second half, already delivered before the split, are not delivered again."""
    spec = dataclasses.replace(
        CATALOG["MessageTrace"], partitions=("Status eq 'Delivered'", "Status eq 'Failed'")
    )
    emu = emulator(rows=10, rws_skiptoken_ceiling=CEILING)
    window = TimeWindow(START, START + 2 * HOUR)
    delivered_rows = _trace_rows(_spread(20, window), "Delivered", "ok")
    failed_rows = _trace_rows(_spread(60, window), "Failed", "ko")
    expected = _serve(emu, "MessageTrace", delivered_rows + failed_rows)
    source = _reader(emu, api_factory, spec)
    pages = await _pages(source, window)
    _once(_delivered(source, pages), expected)
    halves = {source.query_of(p.next_link) for p in pages if p.next_link}
    assert any(q is not None and q.partition == 1 and q.end < window.end for q in halves)


@pytest.mark.parametrize("stored", ["not-a-query", "refused"])
def test_the_stream_loop_reads_the_window_again_after_an_unusable_link(
    emulator, clock, tmp_path, stored: str
) -> None:
    """A run that finds an in-flight window whose stored link is not a query of the report,
    or one the service refuses (400), reads that window again from its start and goes on:
    every row since the first watermark is delivered once, the bound row included."""
    emu = emulator(rows=10)
    now = clock.now()
    first = (now - timedelta(hours=4)).replace(minute=0, second=0, microsecond=0)
    inflight = TimeWindow(first, first + HOUR)
    times = [*_spread(60, TimeWindow(first, now - timedelta(minutes=5))), inflight.end]
    expected = _serve(emu, "MessageTrace", _trace_rows(times))
    base = emu.base_url + RWS_PATH
    link = f"{base}/MessageTrace?$top=10&$skiptoken=20"
    if stored == "refused":
        clause = (
            f"StartDate eq datetime'{first:%Y-%m-%dT%H:%M:%SZ}' and EndDate eq "
            f"datetime'{inflight.end:%Y-%m-%dT%H:%M:%SZ}' and Organizations eq 'x'"
        )
        link = f"{base}/MessageTrace?$filter={quote(clause, safe='')}&$top=10&$skiptoken=20"
    state = tmp_path / "state"
    state.mkdir()
    store = SqliteStateStore(state / "state.db")
    try:
        store.ensure_watermark("contoso", "rws.MessageTrace", "final", first, now)
        store.save_inflight("contoso", "rws.MessageTrace", inflight, link, now, "final")
    finally:
        store.close()
    settings = parse_settings(
        {
            "state_dir": str(state),
            "tenants": [
                {
                    "name": "contoso",
                    "tenant_id": TENANT_ID,
                    "client_id": CLIENT_ID,
                    "client_secret": SECRET,
                    "endpoints": {"authority": emu.base_url, "graph": emu.base_url,
                                  "reporting": base},
                    "streams": [{"name": "rws.MessageTrace", "page_size": 10}],
                }
            ],
            "collection": {"mode": "fixed_delay", "fixed_delay_secs": 60,
                           "initial_lookback_secs": 4 * 3600, "max_window_secs": 3600},
            "sinks": [{"type": "jsonl", "name": "file", "path": str(tmp_path / "out.jsonl")}],
        }
    )  # fmt: skip
    options = RunOptions(once=True, install_signal_handlers=False)
    result = asyncio.run(Collector(settings, options, clock=clock).run())
    assert result.failures == []
    spec = CATALOG["MessageTrace"]
    events = read_jsonl(tmp_path / "out.jsonl")
    _once(Counter(record_key(spec, e["record"]) for e in events), expected)
    store = SqliteStateStore(state / "state.db")
    try:
        checkpoint = store.load("contoso", "rws.MessageTrace", "final")
    finally:
        store.close()
    assert checkpoint.inflight is None and checkpoint.next_link is None
    assert checkpoint.watermark is not None and checkpoint.watermark > inflight.end
