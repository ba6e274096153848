"""The seed's config.yaml, placeholders filled, collects every service into a Devo receiver.

The drop-in mode runs ``fixed_delay``: each window is read once and no dedup store runs, so
every row the sources hand over twice reaches Devo twice. One ``run --once`` on a fake
clock reads a day of the emulator (Graph message trace and every RWS report of the seed)
into a real mutual-TLS Devo receiver; then, per Devo table, the delivered rows are exactly
the emulator's ground truth for the span read: none missing, none twice. The DlpDetail
report holds rows exactly on every window bound (the emulator includes both bounds) and an
hour of 3,000 rows that passes the ``$skiptoken`` ceiling, so that hour is split and a half
read again.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import orjson
import pytest

from o365collector.app import Collector, RunOptions
from o365collector.config.loader import load_settings
from o365collector.sources.reporting.records import record_key, record_time
from o365collector.sources.reporting.source import ReportSource
from o365collector.state.sqlite import SqliteStateStore
from o365collector.streams.catalog import (
    CATALOG,
    DEVO_MESSAGE_TRACE_TABLE,
    ReportSpec,
    devo_table,
)
from o365collector.windows import parse_iso
from o365emulator import Emulator
from o365emulator.reporting_format import When
from o365emulator.reporting_rows import Row, Table
from o365emulator.ticks import to_ticks
from support.clock import FakeClock
from support.compat import (
    APP_TENANT,
    DEVO_HOST,
    DevoReceiver,
    Layout,
    emulator_for,
    native_block,
    seed_yaml,
)

NOW = datetime(2026, 1, 20, 12, 0, tzinfo=UTC)
LOOKBACK = timedelta(days=3)  # a daily bucket is read once a day-long window has settled
WINDOW = timedelta(hours=1)  # o365collector.collection.max_window_secs below
CEILING = 2500  # the emulator's $skiptoken ceiling here, and the collector's
BUSY_ROWS = 3000  # one hour of DlpDetail: its second page (offset 2000) would pass it
TENANT = "contoso.onmicrosoft.com"
DLP = CATALOG["DlpDetailReport"]


def _dlp_row(moment: datetime, index: int) -> tuple[int, int, Row]:
    row: Row = {
        "Date": When(to_ticks(moment)),
        "Title": f"Quarterly report {index}",
        "Location": "Exchange",
        "Severity": "High",
        "Size": 1024 + index,
        "Source": "Exchange",
        "Actor": f"user{index % 7}@{TENANT}",
        "DLPPolicy": "U.S. Financial Data",
        "UserAction": "None",
        "Justification": None,
        "SensitiveInformationType": "Credit Card Number",
        "SensitiveInformationCount": 1 + index % 5,
        "SensitiveInformationConfidence": 85,
        "EventType": "DLPRuleMatch",
        "Action": "BlockAccess",
        "ObjectId": f"<{index:08d}@{TENANT}>",
        "Recipients": f"partner{index}@fabrikam.com",
    }
    return to_ticks(moment), 0, row


def _dlp_table(first: datetime, end: datetime) -> Table:
    """A row on every window bound from ``first`` to ``end``, a busy hour past the ceiling,
    and a few rows between."""
    moments = [first + k * WINDOW for k in range(int((end - first) / WINDOW) + 1)]
    busy = first + 5 * WINDOW + timedelta(minutes=7)
    moments += [busy + i * (timedelta(minutes=45) / BUSY_ROWS) for i in range(BUSY_ROWS)]
    moments += [first + timedelta(minutes=13 + 97 * i) for i in range(12)]
    return Table.of(_dlp_row(moment, i) for i, moment in enumerate(moments))


def _rws_truth(emulator: Emulator, report: str) -> list[dict[str, Any]]:
    response = httpx.get(
        f"{emulator.base_url}/_emulator/ground-truth",
        params={"tenant": APP_TENANT, "report": report},
        timeout=30,
    )
    response.raise_for_status()
    return [orjson.loads(line)["record"] for line in response.content.splitlines()]


def _expected_rws(
    spec: ReportSpec, truth: list[dict[str, Any]], first: datetime, mark: datetime
) -> set[tuple[str, str, str]]:
    """Rows the final lane read in ``[first, mark)``; aggregates: whole buckets in it."""
    low, high = first, mark
    if spec.bucket_secs is not None:
        size = spec.bucket_secs
        low = datetime.fromtimestamp(first.timestamp() // size * size, UTC)
        high = datetime.fromtimestamp(mark.timestamp() // size * size, UTC)
    return {
        record_key(spec, row)
        for row in truth
        if low <= record_time(spec, row) < high  # type: ignore[operator]
    }


def _final_marks(layout: Layout) -> dict[str, datetime]:
    store = SqliteStateStore(layout.root / "state" / "state.db")
    try:
        marks = {}
        for _, stream, lane, checkpoint in store.all():
            assert lane == "final", f"{stream}: fixed_delay runs the final lane only, not {lane}"
            assert checkpoint.inflight is None and checkpoint.watermark is not None
            marks[stream] = checkpoint.watermark
        return marks
    finally:
        store.close()


@pytest.mark.timeout(60)
async def test_every_service_is_delivered_exactly_once_per_devo_table(
    tmp_path, monkeypatch
) -> None:
    """Per Devo table, the rows delivered are the emulator's rows of the span read, once."""
    clock = FakeClock(NOW)
    first = NOW - LOOKBACK
    layout = Layout(tmp_path / "office365")
    emulator = emulator_for(
        rows=300,
        clock=clock,
        history_secs=4 * 86400,
        rws_aggregate_delay_secs=0,
        rws_skiptoken_ceiling=CEILING,
    )
    emulator.serve_report_rows(APP_TENANT, DLP.name, _dlp_table(first, NOW))
    # The collector's ceiling, as low as the emulator's (keyword default of every source).
    monkeypatch.setitem(ReportSource.__init__.__kwdefaults__, "skiptoken_ceiling", CEILING)
    receiver = DevoReceiver(layout)
    try:
        block = native_block(
            emulator.base_url,
            collection={
                "max_window_secs": WINDOW.total_seconds(),
                "initial_lookback_secs": LOOKBACK.total_seconds(),
            },
            outputs={"devo_1": {"host": "127.0.0.1", "port": receiver.port,
                                "tls_server_name": DEVO_HOST}},
        )  # fmt: skip
        settings = load_settings(layout.write(seed_yaml(), block))
        assert settings.collection.mode == "fixed_delay"
        assert settings.collection.initial_lookback_secs == LOOKBACK.total_seconds()
        options = RunOptions(once=True, install_signal_handlers=False)
        result = await Collector(settings, options, clock=clock).run()
        receiver.wait_closed()
        lines = receiver.lines()
        streams = [str(s) for s in settings.tenants[0].streams]
        graph_truth = emulator.ground_truth(APP_TENANT)
        reports = [CATALOG[s.removeprefix("rws.")] for s in streams if s != "message_trace"]
        truths = {spec.name: _rws_truth(emulator, spec.name) for spec in reports}
    finally:
        receiver.close()
        emulator.stop()
    assert result.failures == []
    marks = _final_marks(layout)
    assert set(marks) == set(streams)
    tables = Counter(table for table, _ in lines)
    assert set(tables) == {devo_table(stream) for stream in streams}, tables

    # Graph message trace: every row received in [first, watermark), once.
    traces = Counter(
        (r["id"], r["recipientAddress"]) for t, r in lines if t == DEVO_MESSAGE_TRACE_TABLE
    )
    assert max(traces.values()) == 1, "a message trace row was delivered twice"
    expected = {
        (row["id"], row["recipientAddress"])
        for row in graph_truth
        if first <= parse_iso(row["receivedDateTime"]) < marks["message_trace"]
    }
    assert len(expected) >= 100
    assert set(traces) == expected

    # Every RWS report: its table holds the ground truth of the span read, once.
    for spec in reports:
        got = Counter(record_key(spec, r) for t, r in lines if t == spec.devo_table)
        twice = [key for key, n in got.items() if n > 1]
        assert not twice, f"{spec.devo_table}: {len(twice)} rows twice, e.g. {twice[:1]}"
        want = _expected_rws(spec, truths[spec.name], first, marks[spec.stream])
        assert want, f"{spec.stream}: nothing was due; the test proves nothing"
        assert set(got) == want, (
            f"{spec.devo_table}: {len(want - set(got))} missing, {len(set(got) - want)} extra"
        )

    # What the DlpDetail rows prove: bound rows, and a split busy hour, each once.
    # The seed's override_time_delay_in_seconds: 60 s (the fake clock moves with the pace).
    assert marks[DLP.stream] >= NOW - timedelta(seconds=60)
    every = (first + k * WINDOW for k in range(int(LOOKBACK / WINDOW) + 1))
    bounds = {bound for bound in every if bound < marks[DLP.stream]}
    assert len(bounds) >= LOOKBACK / WINDOW
    delivered = [r for t, r in lines if t == DLP.devo_table]
    on_bounds = {record_time(DLP, r) for r in delivered} & bounds
    assert on_bounds == bounds, "a row on a window bound is missing"
    assert len(delivered) >= BUSY_ROWS + len(bounds)
    assert (layout.root / "state" / "state.db").is_file()  # globals.persistence → state/
