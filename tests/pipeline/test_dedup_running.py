"""Dedup in the running collector: a stream's lanes over one store, on the fake clock.

A real ``StreamWorker`` (live, two re-sweep bands, final) reads a scripted mailbox: rows
become visible and change status at set times. The worker runs ``once`` per step while the
test moves the fake clock, over real SQLite state and a real sink runner; what the sink
received is the proof: every fact once, none twice, and the dedup store emptied once no
lane can read a fact again.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from o365collector.config.model import CollectionSettings, ResweepSettings, RetrySettings
from o365collector.event import Event, StreamIds, row_facts
from o365collector.observability.progress import StreamProgress
from o365collector.pipeline.dedup import Deduplicator
from o365collector.pipeline.delivery import DeadLetter, Dispatcher, SinkRunner
from o365collector.pipeline.lane import LaneContext, StreamIdentity
from o365collector.pipeline.stream import StreamWorker
from o365collector.planning.lanes import Priority
from o365collector.planning.plan import StreamPlan, lanes_plan
from o365collector.sinks.base import DeliveryResult
from o365collector.sources.base import Page
from o365collector.state.sqlite import SqliteStateStore
from o365collector.state.writer import StateWriter
from o365collector.windows import TimeWindow
from support import FakeClock

T0 = datetime.fromisoformat("2026-11-22T00:00:00+00:00")
# Scaled down: live 30 s behind now; bands to 10 min (every 2 min) and 1 h (every 10 min);
# final reads a window once it is 4,200 s old (1 h + one period of the oldest band).
COLLECTION = CollectionSettings(
    settle_delay_secs=30,
    poll_interval_secs=60,
    horizon_secs=3600,
    final_every_secs=600,
    initial_lookback_secs=3600,
    resweeps=[
        ResweepSettings(max_age_secs=600, every_secs=120),
        ResweepSettings(max_age_secs=3600, every_secs=600),
    ],
)
FINAL_AGE = 4200.0
STREAM = "message_trace"


@dataclass
class Row:
    """One message trace row: when it was received and the statuses it shows, from when."""

    id: str
    received: datetime
    statuses: list[tuple[datetime, str]]

    def status_at(self, now: datetime) -> str | None:
        shown = [status for since, status in self.statuses if since <= now]
        return shown[-1] if shown else None


@dataclass
class Mailbox:
    """The tenant's message trace as Microsoft shows it at the clock's time, in pages.

    ``reads`` records each window read, by budget priority (one per lane kind).
    """

    clock: FakeClock
    rows: list[Row] = field(default_factory=list)
    page_size: int = 3
    reads: list[tuple[int, TimeWindow]] = field(default_factory=list)
    twice: set[str] = field(default_factory=set)  # rows the API lists twice in a row

    async def pages(
        self, window: TimeWindow, resume_link: str | None, *, priority: int = 0
    ) -> AsyncIterator[Page]:
        self.reads.append((priority, window))
        now = self.clock.now()
        records = [
            {
                "id": row.id,
                "recipientAddress": "someone@contoso.com",
                "status": status,
                "receivedDateTime": row.received.strftime("%Y-%m-%dT%H:%M:%SZ"),
            }
            for row in sorted(self.rows, key=lambda r: r.received)
            if window.start <= row.received < window.end
            and (status := row.status_at(now)) is not None
            for _ in range(2 if row.id in self.twice else 1)
        ]
        first = int(resume_link or 0)
        starts = range(first, max(len(records), 1), self.page_size)
        for start in starts:
            chunk = records[start : start + self.page_size]
            link = str(start + self.page_size) if start + self.page_size < len(records) else None
            await asyncio.sleep(0)  # the answer arrives
            yield Page(chunk, link, row_facts(chunk, _identity))


def _identity(record: dict[str, Any]) -> tuple[str, str, str]:
    return record["id"], record["recipientAddress"], record["status"]


class Recorder:
    """A sink that keeps every event it is sent."""

    name = "recorder"

    def __init__(self) -> None:
        self.events: list[Event] = []

    async def start(self) -> None:
        return None

    async def send(self, events: Sequence[Event]) -> DeliveryResult:
        self.events.extend(events)
        return DeliveryResult.delivered()

    async def close(self) -> None:
        return None

    def facts(self) -> Counter[tuple[str, str]]:
        """How many times each (row id, status) was delivered."""
        return Counter((e.record["id"], e.record["status"]) for e in self.events)


@dataclass
class Collector:
    """One stream's worker with its mailbox, state store and sink."""

    clock: FakeClock
    mailbox: Mailbox
    store: SqliteStateStore
    sink: Recorder
    plan: StreamPlan
    worker: StreamWorker

    async def run_until(self, end: datetime, step_secs: float) -> None:
        """Run the stream once per step (as its loop would) until the clock reaches ``end``."""
        while True:
            await self.worker.run(asyncio.Event(), once=True)
            left = (end - self.clock.now()).total_seconds()
            if left <= 0:
                return
            self.clock.advance(min(step_secs, left))

    def remembered(self, row: Row) -> dict[bytes, str]:
        """The statuses the dedup store holds for ``row`` (empty once expired)."""
        received = row.received.strftime("%Y-%m-%dT%H:%M:%SZ")
        fact = (row.id, "someone@contoso.com", "", received)
        key = StreamIds("tid", STREAM).row_keys([fact])[0]
        return self.store.seen_statuses([key])

    async def final_mark(self) -> datetime | None:
        return (await StateWriter(self.store).load("t", STREAM, "final")).watermark


@pytest.fixture
async def collector(tmp_path: Path) -> AsyncIterator[Collector]:
    clock = FakeClock(T0)
    sink = Recorder()
    runner = SinkRunner(
        sink,  # type: ignore[arg-type]
        batch_max_events=100,
        queue_max_batches=8,
        retry=RetrySettings(),
        dead_letter=DeadLetter(tmp_path / "dead-letter"),
        clock=clock,
    )
    running = asyncio.create_task(runner.run())
    store = SqliteStateStore(tmp_path / "state.db")
    plan = lanes_plan(
        COLLECTION,
        poll_interval_secs=60,
        settle_delay_secs=30,
        initial_lookback_secs=3600,
        retention_secs=10 * 86400,
        max_window_secs=1800,
    )
    assert plan.final_age_secs == FINAL_AGE
    writer = StateWriter(store)
    dedup = Deduplicator(
        writer, tenant="t", tenant_id="tid", stream=STREAM, keep_secs=plan.remember_secs
    )
    mailbox = Mailbox(clock)
    ctx = LaneContext(
        StreamIdentity("t", "tid", STREAM),
        mailbox,
        Dispatcher([runner]),
        dedup,
        clock,
        StreamProgress("t", STREAM),
    )
    try:
        yield Collector(clock, mailbox, store, sink, plan, StreamWorker(ctx, writer, plan))
    finally:
        running.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await running
        store.close()


def _at(secs: float) -> datetime:
    return T0 + timedelta(seconds=secs)


async def test_a_key_outlives_every_lane_that_can_read_it_then_expires(
    collector: Collector,
) -> None:
    """No band and not ``final`` re-deliver a remembered fact; then the store lets it go.

    The row turns ``delivered`` while the 1-hour band sweeps it; bands re-read it until it
    is 4,200 s old, then ``final`` reads its window once. Its key must survive all of that,
    and must be gone once the horizon after the last window that read it has passed (plus
    one expiry period), or the store grows without bound.
    """
    row = Row("r1", _at(300), [(_at(310), "Pending"), (_at(2000), "Delivered")])
    filler = [Row(f"f{i}", _at(60 * i), [(_at(60 * i + 5), "Delivered")]) for i in range(1, 90)]
    collector.mailbox.rows = [row, *filler]
    await collector.run_until(_at(300 + 5400), 120)
    final_mark = await collector.final_mark()
    assert final_mark is not None and final_mark > row.received  # final has read it...
    read_by_final = [w for p, w in collector.mailbox.reads if p == Priority.FINAL]
    assert sum(1 for w in read_by_final if w.start <= row.received < w.end) == 1
    assert set(collector.remembered(row).values()) == {"Pending|Delivered"}  # ...and it is kept

    # A fact is kept for a day after the end of the window that delivered it (a band sweep
    # may still be running when final reads): that window ends after the row was received,
    # and at most FINAL_AGE after it. Then it goes within one expiry period (10 minutes).
    keep = timedelta(seconds=collector.plan.remember_secs)
    await collector.run_until(row.received + keep - timedelta(minutes=1), 3600)
    assert collector.remembered(row)
    expiry = row.received + timedelta(seconds=FINAL_AGE) + keep
    await collector.run_until(expiry + timedelta(minutes=11), 60)
    assert collector.remembered(row) == {}  # expired on the 10-minute schedule

    delivered = collector.sink.facts()
    assert delivered[("r1", "Pending")] == 1
    assert delivered[("r1", "Delivered")] == 1
    assert max(delivered.values()) == 1, delivered.most_common(3)
    assert all(delivered[(f.id, "Delivered")] == 1 for f in filler)


async def test_the_same_fact_twice_in_one_page_is_delivered_once(collector: Collector) -> None:
    """A page listing a row twice with one status delivers it once; a later status once more.

    The repeat sits right after the first in the same page: neither in the store nor in
    flight yet when the page is split. Re-sweeps and final meet both copies again.
    """
    row = Row("twice", _at(-600), [(_at(-590), "Pending"), (_at(300), "Delivered")])
    others = [
        Row(f"o{i}", _at(-900 + 60 * i), [(_at(-890 + 60 * i), "Delivered")]) for i in range(4)
    ]
    collector.mailbox.rows = [row, *others]
    collector.mailbox.twice = {"twice"}
    collector.mailbox.page_size = 10
    await collector.run_until(_at(0), 60)
    assert collector.sink.facts()[("twice", "Pending")] == 1
    await collector.run_until(_at(FINAL_AGE + 1800), 300)  # bands, then final, read it
    delivered = collector.sink.facts()
    assert delivered[("twice", "Pending")] == 1
    assert delivered[("twice", "Delivered")] == 1
    assert all(delivered[(o.id, "Delivered")] == 1 for o in others)
    assert sum(delivered.values()) == len(others) + 2
    final = [w for p, w in collector.mailbox.reads if p == Priority.FINAL]
    assert any(w.start <= row.received < w.end for w in final)


async def test_a_repeat_in_one_page_counts_as_known_not_as_a_new_row(
    collector: Collector,
) -> None:
    """The split of such a page: one event and one fact to remember; the copy is known."""
    collector.mailbox.rows = [Row("twice", _at(-600), [(_at(-590), "Pending")])]
    collector.mailbox.twice = {"twice"}
    window = TimeWindow(_at(-3600), _at(0))
    pages = [page async for page in collector.mailbox.pages(window, None)]
    assert [len(page.records) for page in pages] == [2]
    dedup = collector.worker.ctx.dedup
    split = await dedup.split(pages[0], asyncio.get_running_loop().create_future())
    assert (len(split.events), len(split.facts)) == (1, 1)
    assert (split.new_rows, split.status_changes, split.known) == (1, 0, 1)


def _covered(windows: list[TimeWindow], moment: datetime) -> bool:
    return any(w.start <= moment < w.end for w in windows)


async def test_final_takes_over_settled_windows_from_live_without_repeats_or_gaps(
    collector: Collector,
) -> None:
    """``final`` absorbs the settled windows ``live`` reads, then reads the rest itself.

    The stream resumes 6 hours behind, ``final``'s watermark at ``live``'s (``final`` never
    passes ``live``; it reaches it when ``live`` was held back longer than final's age).
    ``live`` catches up; each window it reads that was already settled is committed for
    ``final`` too (not read again), and ``final`` reads on from where the windows stop
    being settled, after the re-sweeps. Across that hand-over every row arrives with its
    last status, and no fact twice.
    """
    resumed_at = T0 - timedelta(hours=6)
    writer = StateWriter(collector.store)
    for lane in ("live", "final"):
        await writer.ensure_watermark("t", STREAM, lane, resumed_at, resumed_at)
    rows = [
        Row(
            f"m{i}",
            resumed_at + timedelta(seconds=300 * i + 7),
            [(resumed_at + timedelta(seconds=300 * i + 17), "Pending")]
            + ([(resumed_at + timedelta(seconds=300 * i + 907), "Delivered")] if i % 2 else []),
        )
        for i in range(12 * 9)  # 9 hours of rows: 6 behind, 3 ahead
    ]
    collector.mailbox.rows = rows
    end = T0 + timedelta(hours=3)
    await collector.run_until(end, 120)

    delivered = collector.sink.facts()
    assert max(delivered.values()) == 1, delivered.most_common(3)
    for row in rows:
        if row.received < end - timedelta(seconds=FINAL_AGE):  # final has passed it
            assert delivered[(row.id, row.statuses[-1][1])] == 1, row
        elif row.received < end - timedelta(minutes=1):
            assert any(delivered[(row.id, status)] for _, status in row.statuses), row
    settled = T0 - timedelta(seconds=FINAL_AGE)
    live = [w for p, w in collector.mailbox.reads if p == Priority.LIVE]
    final = [w for p, w in collector.mailbox.reads if p == Priority.FINAL]
    absorbed = [w for w in live if w.end <= settled]
    assert absorbed and absorbed[0].start == resumed_at
    assert not [w for w in final if w.start < absorbed[-1].end]  # never read again
    assert _covered(final, absorbed[-1].end)  # final read on from there
    final_mark = await collector.final_mark()
    assert final_mark is not None and final_mark >= end - timedelta(seconds=FINAL_AGE + 1800)


async def test_an_outage_longer_than_a_day_does_not_repeat_what_live_delivered(
    collector: Collector,
) -> None:
    """``final`` still has to read what ``live`` delivered before a 2-day outage: no repeats.

    ``final`` reads a window only once it is 4,200 s old; whatever ``live`` delivered in
    the last 4,200 s before the outage is still final's to read afterwards, so its keys
    must outlive the outage however long it was.
    """
    rows = [
        Row(f"m{i}", _at(-3600 + 300 * i), [(_at(-3590 + 300 * i), "Delivered")]) for i in range(40)
    ]
    collector.mailbox.rows = rows
    await collector.run_until(_at(7200), 120)
    collector.clock.advance(2 * 86400)  # the collector is down for two days
    await collector.run_until(collector.clock.now() + timedelta(hours=2), 600)
    delivered = collector.sink.facts()
    assert all(delivered[(row.id, "Delivered")] == 1 for row in rows), delivered.most_common(3)
