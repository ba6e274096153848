"""Many lanes, one slow sink: pages in memory stay within the process-wide limit."""

from __future__ import annotations

import asyncio
import contextlib
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from o365collector.clock import SystemClock
from o365collector.config.model import RetrySettings
from o365collector.event import Event, row_facts
from o365collector.observability import metrics
from o365collector.observability.progress import StreamProgress
from o365collector.page_gate import PageGate
from o365collector.pipeline.dedup import Deduplicator, PageFacts
from o365collector.pipeline.delivery import DeadLetter, Dispatcher, SinkRunner
from o365collector.pipeline.lane import LaneContext, StreamIdentity, WindowReader
from o365collector.planning.lanes import Priority
from o365collector.sinks.base import DeliveryResult
from o365collector.sources.base import Page
from o365collector.state.sqlite import SqliteStateStore
from o365collector.state.writer import StateWriter
from o365collector.windows import TimeWindow

WINDOW = TimeWindow(datetime(2026, 11, 22, tzinfo=UTC), datetime(2026, 11, 22, 1, tzinfo=UTC))
LIMIT = 2
ALIVE: weakref.WeakSet[dict[str, Any]] = weakref.WeakSet()


class Row(dict):  # type: ignore[type-arg]
    """A record that can be counted while alive (a plain dict cannot be weakly referenced)."""

    __hash__ = object.__hash__  # by identity, for the WeakSet


class GatedSource:
    """Pages of ``rows`` records, each requested the way ApiClient does (a place first)."""

    def __init__(self, gate: PageGate, name: str, pages: int, rows: int, peak: list[int]) -> None:
        self.gate, self.name, self.count, self.rows, self.peak = gate, name, pages, rows, peak

    async def pages(
        self, window: TimeWindow, resume_link: str | None, *, priority: int = 0
    ) -> AsyncIterator[Page]:
        for index in range(self.count):
            permit = await self.gate.acquire(priority)
            await asyncio.sleep(0)  # the response arrives
            records: list[dict[str, Any]] = [
                Row(id=f"{self.name}-{index}-{row}", recipientAddress="r@c", status="ok")
                for row in range(self.rows)
            ]
            ALIVE.update(records)
            # every record of every page still referenced anywhere (reader, queues, sink)
            self.peak[0] = max(self.peak[0], len(ALIVE))
            facts = row_facts(records, self.key_of)
            link = None if index == self.count - 1 else f"next-{index}"
            page = Page(records, link, facts, permit)
            del records, facts, permit
            yield page
            del page  # as the real sources: nothing held while the next page is read

    def key_of(self, record: dict[str, Any]) -> tuple[str, str, str]:
        return (record["id"], record["recipientAddress"], record["status"])


def _page(record: dict[str, Any]) -> Page:
    """A page of one record, with the identity ``GatedSource`` gives it."""
    key = (record["id"], record["recipientAddress"], record["status"])
    return Page([record], None, row_facts([record], lambda _: key))


class SlowSink:
    name = "slow"

    def __init__(self) -> None:
        self.ids: list[str] = []

    async def start(self) -> None:
        return None

    async def send(self, events: Sequence[Event]) -> DeliveryResult:
        await asyncio.sleep(0.002)
        self.ids.extend(e.event_id for e in events)
        return DeliveryResult.delivered()

    async def close(self) -> None:
        return None


@dataclass
class Rig:
    """A running slow sink behind a dispatcher, and the state store, for one test."""

    sink: SlowSink
    dispatcher: Dispatcher
    store: StateWriter  # one writer thread for the SQLite store, as in the collector

    def context(self, name: str, source: GatedSource) -> LaneContext:
        """The lane context of stream ``s`` of tenant ``name``, reading ``source``."""
        dedup = Deduplicator(self.store, tenant=name, tenant_id=name, stream="s", keep_secs=3600)
        return LaneContext(
            StreamIdentity(name, name, "s"),
            source,  # type: ignore[arg-type]
            self.dispatcher,
            dedup,
            SystemClock(),
            StreamProgress(name, "s"),
        )


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[Rig]:
    sink = SlowSink()
    runner = SinkRunner(
        sink,  # type: ignore[arg-type]
        batch_max_events=50,
        queue_max_batches=8,
        retry=RetrySettings(),
        dead_letter=DeadLetter(tmp_path / "dead-letter"),
        clock=SystemClock(),
    )
    running = asyncio.create_task(runner.run())
    store = SqliteStateStore(tmp_path / "state.db")
    writer = StateWriter(store)
    try:
        yield Rig(sink, Dispatcher([runner]), writer)
    finally:
        running.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await running
        writer.close()
        store.close()


async def test_pages_held_across_tenants_never_exceed_the_limit(rig: Rig) -> None:
    gate = PageGate(LIMIT)
    peak = [0]
    readers = []
    for tenant in range(12):  # twelve tenants, two lanes each, all reading at once
        name = f"t{tenant}"
        ctx = rig.context(name, GatedSource(gate, name, pages=5, rows=20, peak=peak))
        for lane, priority in (("live", Priority.LIVE), ("final", Priority.FINAL)):
            reader = WindowReader(
                ctx,
                lane,
                priority,
                forget_older_than_secs=None if lane == "live" else 3600,
            )
            reader.start()
            readers.append(reader)
    stop = asyncio.Event()
    await asyncio.wait_for(
        asyncio.gather(
            *(r.read(WINDOW, None, stop, checkpoint=False, on_window=_nothing) for r in readers)
        ),
        timeout=30,
    )
    await asyncio.gather(*(r.drain() for r in readers))
    # records in memory at once: at most LIMIT pages of 20, and the limit was reached
    assert peak[0] == LIMIT * 20
    assert gate.in_use == 0 and gate.waiting == 0  # every place given back
    # both lanes of a tenant read the same rows: each row delivered once
    ids = rig.sink.ids
    assert len(ids) == len(set(ids)) == 12 * 5 * 20


async def test_final_forgets_history_it_alone_reads(rig: Rig) -> None:
    gate = PageGate(None)
    ctx = rig.context("t", GatedSource(gate, "t", pages=1, rows=3, peak=[0]))
    now = datetime.now(UTC)
    old = TimeWindow(now - timedelta(days=3), now - timedelta(days=3) + timedelta(hours=1))
    recent = TimeWindow(now - timedelta(hours=27), now - timedelta(hours=26))
    for window, expect_remembered in ((old, False), (recent, True)):
        rig.store.store.reset()
        reader = WindowReader(ctx, "final", Priority.FINAL, forget_older_than_secs=2 * 86400)
        reader.start()
        await reader.read(window, None, asyncio.Event(), checkpoint=False, on_window=_nothing)
        await reader.drain()
        again = await _split(ctx, _page({"id": "t-0-0", "recipientAddress": "r@c", "status": "ok"}))
        assert (again.events == []) is expect_remembered, window


async def test_first_pages_after_a_takeover_are_counted_as_the_redelivery_bound(
    rig: Rig,
) -> None:
    def bound(tenant: str) -> float:
        value = metrics.REGISTRY.get_sample_value(
            "collector_takeover_redelivery_bound_events_total", {"tenant": tenant, "stream": "s"}
        )
        return value or 0.0

    for tenant, suspect in (("taken-over", 2), ("fresh", 0)):
        ctx = rig.context(tenant, GatedSource(PageGate(None), tenant, pages=5, rows=7, peak=[0]))
        reader = WindowReader(ctx, "live", Priority.LIVE, suspect_pages=suspect)
        reader.start()
        await reader.read(WINDOW, None, asyncio.Event(), checkpoint=False, on_window=_nothing)
        await reader.drain()
        assert bound(tenant) == suspect * 7


async def _nothing() -> None:
    return None


def _setter(event: asyncio.Event) -> Callable[[], Awaitable[None]]:
    async def set_it() -> None:
        event.set()

    return set_it


async def _split(ctx: LaneContext, page: Page) -> PageFacts:
    """What the lane's dedup makes of ``page`` now (a probe: nothing stays in flight)."""
    facts = await ctx.dedup.split(page, asyncio.get_running_loop().create_future())
    ctx.dedup.release(facts.facts)
    return facts


class Status(str):
    """A status that can be weakly referenced, to see who keeps a page's facts alive."""

    __slots__ = ("__weakref__",)


async def test_a_committed_page_is_not_kept_while_the_lane_waits(rig: Rig) -> None:
    gate = PageGate(None)
    statuses: list[weakref.ref[Status]] = []

    class Source(GatedSource):
        def key_of(self, record: dict[str, Any]) -> tuple[str, str, str]:
            status = Status(record["status"])
            statuses.append(weakref.ref(status))
            return (record["id"], record["recipientAddress"], status)

    ctx = rig.context("t", Source(gate, "t", pages=2, rows=5, peak=[0]))
    committed = asyncio.Event()
    reader = WindowReader(ctx, "live", Priority.LIVE)
    reader.start()
    try:
        await reader.read(
            WINDOW, None, asyncio.Event(), checkpoint=False, on_window=_setter(committed)
        )
        await asyncio.wait_for(committed.wait(), 5)
        assert len(statuses) == 10 and len(rig.sink.ids) == 10
        # The committer waits for the lane's next page: it holds none of the last page's
        # facts. (The state thread drops its last call's arguments just after answering:
        # give it a moment, not a reference that lasts.)
        alive = statuses
        for _ in range(200):
            await asyncio.sleep(0.005)
            alive = [ref for ref in statuses if ref() is not None]
            if not alive:
                break
        assert alive == []
        again = await _split(ctx, _page({"id": "t-0-0", "recipientAddress": "r@c", "status": "ok"}))
        assert again.events == []
    finally:
        await reader.drain()
