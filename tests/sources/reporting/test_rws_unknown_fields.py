"""Issue 13.4: fields Microsoft adds to a report row stay in the delivered record.

The catalog names a report's key and time fields only; everything else a row carries is
Microsoft's and must reach the sinks as it came. A per-row report (MessageTrace) and an
aggregate one (MailTraffic) are served over HTTP by the emulator with a field no catalog
entry or emulated report knows, read by the report source and split into events by the
dedup store: every event's record holds the field, value untouched.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from o365collector.pipeline.dedup import Deduplicator
from o365collector.sources.reporting.source import ReportSource
from o365collector.state.sqlite import SqliteStateStore
from o365collector.state.writer import StateWriter
from o365collector.streams.catalog import CATALOG
from o365collector.windows import TimeWindow
from o365emulator.reporting_format import When
from o365emulator.reporting_rows import Row, Table
from o365emulator.ticks import to_ticks
from support.rws import ANCHOR, EXCHANGE_SCOPE, RWS_PATH, TENANT_ID

START = ANCHOR - timedelta(hours=8)
WINDOW = TimeWindow(START, START + timedelta(hours=2))
NEW_FIELD = "RecallState"  # a field no catalog entry and no emulated report has
NEW_VALUES = ("Recalled", None, 0, "")


def _message_trace(moment: int, i: int) -> Row:
    return {
        "MessageTraceId": f"00000000-0000-4000-8000-{i:012d}",
        "RecipientAddress": f"user{i}@contoso.com",
        "Status": "Delivered",
        "Received": When(moment),
    }


def _mail_traffic(moment: int, i: int) -> Row:
    return {
        "Date": When(moment),
        "Direction": "Inbound",
        "Domain": f"d{i}.contoso.com",
        "EventType": "GoodMail",
        "Action": None,
        "MessageCount": i + 1,
    }


ROWS = {"MessageTrace": _message_trace, "MailTraffic": _mail_traffic}


def _items(report: str) -> list[tuple[int, int, Row]]:
    items = []
    for i in range(40):
        moment = to_ticks(START + timedelta(minutes=3 * i if report == "MessageTrace" else 0))
        row = ROWS[report](moment, i)
        row[NEW_FIELD] = NEW_VALUES[i % len(NEW_VALUES)]
        items.append((moment, 0, row))
    return items


@pytest.mark.parametrize("report", list(ROWS))
async def test_a_field_outside_the_catalog_reaches_the_delivered_record(
    emulator: Any, api_factory: Any, tmp_path: Path, report: str
) -> None:
    spec = CATALOG[report]
    assert NEW_FIELD not in {*spec.key_fields, spec.time_field, spec.status_field}
    emu = emulator(rows=10)
    emu.serve_report_rows(TENANT_ID, report, Table.of(_items(report)))
    source = ReportSource(
        api_factory(authority=emu.base_url),
        spec,
        base=emu.base_url + RWS_PATH,
        scope=EXCHANGE_SCOPE,
        page_size=2000,
    )
    pages = [page async for page in source.pages(WINDOW, None)]
    store = SqliteStateStore(tmp_path / "state.db")
    try:
        dedup = Deduplicator(
            StateWriter(store), tenant="t", tenant_id=TENANT_ID, stream=spec.stream, keep_secs=3600
        )
        loop = asyncio.get_running_loop()
        events = [
            e for page in pages for e in (await dedup.split(page, loop.create_future())).events
        ]
    finally:
        store.close()
    assert len(events) == 40
    delivered = sorted((e.record[NEW_FIELD] for e in events), key=lambda v: (str(type(v)), str(v)))
    sent = sorted(
        (row[NEW_FIELD] for _, _, row in _items(report)), key=lambda v: (str(type(v)), str(v))
    )
    assert delivered == sent
