"""Issue 13.1: a query is complete only when the service says so, whatever its page size.

The Reporting Web Service may page at fewer rows than the ``$top`` the collector asks for
(OData v3 server-driven paging: a page plus a next link carrying the *remaining* ``$top``),
or send no links at all and leave the stepping to the client. Microsoft documents neither
its page size nor that it will stay what it is. For every page size the emulator serves,
with and without links, and for each kind of report (per-row, aggregate, summary), one
window of 20k rows is read over HTTP with a 503 on a page after the first and a restart
from the stored link in the middle of the chain: every row arrives, none twice.
"""

from __future__ import annotations

from collections import Counter
from datetime import timedelta
from typing import Any

import pytest

from o365collector.sources.base import Page
from o365collector.sources.reporting.paging import top_of
from o365collector.sources.reporting.source import ReportSource
from o365collector.streams.catalog import CATALOG
from o365collector.windows import TimeWindow
from o365emulator.faults import FaultRule
from o365emulator.reporting_format import When, truth_row
from o365emulator.reporting_rows import Row, Table
from o365emulator.ticks import to_ticks
from support.rws import ANCHOR, EXCHANGE_SCOPE, RWS_PATH, TENANT_ID

ROWS = 20_000
PAGE_SIZES = (100, 500, 2000, 5000)
COLLECTOR_TOP = 2000
START = ANCHOR - timedelta(hours=8)  # inside every report's retention, before the clock
HOUR = timedelta(hours=1)


def _per_row() -> tuple[TimeWindow, list[tuple[int, int, Row]]]:
    window = TimeWindow(START, START + 2 * HOUR)
    step = (window.end - window.start) / ROWS
    items = []
    for i in range(ROWS):
        moment = to_ticks(window.start + i * step)
        row: Row = {
            "MessageTraceId": f"00000000-0000-4000-8000-{i:012d}",
            "RecipientAddress": f"user{i}@contoso.com",
            "Status": "Delivered",
            "Received": When(moment),
        }
        items.append((moment, 0, row))
    return window, items


def _aggregate() -> tuple[TimeWindow, list[tuple[int, int, Row]]]:
    """Four hourly buckets of 5,000 rows, and rows of the next bucket (the next window's)."""
    window = TimeWindow(START, START + 4 * HOUR)
    items = []
    for bucket in range(5):
        moment = to_ticks(window.start + bucket * HOUR)
        for i in range(ROWS // 4 if bucket < 4 else 300):
            row: Row = {
                "Date": When(moment),
                "Direction": "Inbound",
                "Domain": f"d{i}.contoso.com",
                "EventType": "GoodMail",
                "Action": None,
                "MessageCount": i + 1,
            }
            items.append((moment, 0, row))
    return window, items


def _summary() -> tuple[TimeWindow, list[tuple[int, int, Row]]]:
    """One day of summary rows, spread over the three categories (a query each)."""
    day = START.replace(hour=0)
    window = TimeWindow(day, day + timedelta(days=1))
    categories = CATALOG["MailTrafficSummary"].partitions
    items = []
    moment = to_ticks(day)
    for i in range(ROWS):
        category = categories[i % len(categories)].split("'")[1]
        row: Row = {"Category": category, "C1": f"sender{i}@contoso.com", "C2": str(i)}
        row.update({"Domain": "contoso.com", "DlpPolicy": None})
        items.append((moment, 0, row))
    return window, items


KINDS = {"MessageTrace": _per_row, "MailTraffic": _aggregate, "MailTrafficSummary": _summary}


def _expected(report: str, source: ReportSource, items: list[tuple[int, int, Row]]) -> set[Any]:
    """The keys a reader must deliver: rows of the window (aggregates: of its buckets)."""
    window, _ = KINDS[report]()
    keys = set()
    for moment, _, row in items:
        if moment >= to_ticks(window.end):
            continue  # the next window's bucket
        record = truth_row(row)
        if report == "MailTrafficSummary":  # the service echoes the query's range in rows
            record["StartDate"] = truth_row({"d": When(to_ticks(window.start))})["d"]
        keys.add(source.key_of(record))
    return keys


def _reader(emu: Any, api_factory: Any, report: str) -> ReportSource:
    """A report source over the emulator, asking for the collector's default ``$top``."""
    api = api_factory(authority=emu.base_url)
    base = emu.base_url + RWS_PATH
    return ReportSource(
        api, CATALOG[report], base=base, scope=EXCHANGE_SCOPE, page_size=COLLECTOR_TOP
    )


async def _read_until(source: ReportSource, window: TimeWindow, link: str | None, stop: int | None,
                      emulator: Any) -> list[Page]:  # fmt: skip
    """Pages of ``window`` from ``link``; a 503 after the first page; stop after ``stop``."""
    pages = []
    async for page in source.pages(window, link):
        pages.append(page)
        if len(pages) == 1:
            emulator.faults.set([FaultRule(target="graph", status=503, count=1)])
        if stop is not None and len(pages) == stop:
            break
    return pages


@pytest.mark.parametrize("next_links", [True, False], ids=["links", "no-links"])
@pytest.mark.parametrize("page_size", PAGE_SIZES)
@pytest.mark.parametrize("report", list(KINDS))
async def test_every_row_of_a_20k_window_arrives_once(
    emulator, api_factory, report: str, page_size: int, next_links: bool
) -> None:
    emu = emulator(rows=10, rws_page_size=page_size, rws_next_links=next_links)
    window, items = KINDS[report]()
    emu.serve_report_rows(TENANT_ID, report, Table.of(items))

    first = _reader(emu, api_factory, report)
    # Past a chain's first page: where the service pages, its link asks for the rest of $top.
    middle = ROWS // min(page_size, COLLECTOR_TOP) // 2 + 1
    before = await _read_until(first, window, None, middle, emu)
    stored = before[-1].next_link
    assert stored is not None, "the chain ended before its middle"
    if next_links and page_size < COLLECTOR_TOP:
        assert top_of(stored, COLLECTOR_TOP) < COLLECTOR_TOP, stored  # inside a chain
    # A new reader, as after a restart: it keeps nothing but the stored link.
    after = await _read_until(_reader(emu, api_factory, report), window, stored, None, emu)

    expected = _expected(report, first, items)
    assert len(expected) == ROWS
    keys = Counter(first.key_of(r) for p in before + after for r in p.records)
    assert set(keys) == expected, f"{len(expected - set(keys))} of {ROWS} rows missing"
    assert max(keys.values()) == 1, "a row was delivered twice"
    assert after[-1].next_link is None
    assert emu.faults.injected == 2  # a 503 in each run, read through


async def test_a_chain_that_ends_exactly_at_its_top_continues(emulator, api_factory) -> None:
    """500-row service pages: links ask for 1500, 1000, 500; the query goes on after them."""
    emu = emulator(rows=10, rws_page_size=500)
    window, items = _per_row()
    emu.serve_report_rows(TENANT_ID, "MessageTrace", Table.of(items[:4_321]))
    source = _reader(emu, api_factory, "MessageTrace")
    pages = [page async for page in source.pages(window, None)]
    tops = [p.next_link.split("$top=")[1].split("&")[0] for p in pages if p.next_link]
    assert tops[:4] == ["1500", "1000", "500", "2000"]
    assert sum(len(p.records) for p in pages) == 4_321


async def test_a_service_that_cuts_pages_without_links_is_read_to_the_end(
    emulator, api_factory
) -> None:
    """No links and 500-row pages under a $top of 2000: each short page is confirmed."""
    emu = emulator(rows=10, rws_page_size=500, rws_next_links=False)
    window, items = _per_row()
    emu.serve_report_rows(TENANT_ID, "MessageTrace", Table.of(items[:1_730]))
    source = _reader(emu, api_factory, "MessageTrace")
    pages = [page async for page in source.pages(window, None)]
    assert [len(p.records) for p in pages] == [500, 500, 500, 230]
