"""The lane's committer under sink trouble: nothing is recorded past an unacknowledged page.

A lane hands pages to the sinks and its committer records progress (dedup keys, the
resume link after a page, the watermark after the last page) strictly in page order, each
only after that page's acknowledgement. These tests drive the acknowledgements by hand
(out of order, failed, never coming) over the real dedup store and SQLite state, and
journal every state write as it is made; the last one fails a page for real (an HTTP sink
refuses it and its dead letters cannot be written).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from pydantic import TypeAdapter
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from o365collector.config.model import RetrySettings
from o365collector.config.sinks import SinkSettings
from o365collector.errors import SinkError
from o365collector.event import Event, StreamIds, row_facts
from o365collector.observability.progress import StreamProgress
from o365collector.pipeline.dedup import Deduplicator
from o365collector.pipeline.delivery import DeadLetter, Dispatcher, SinkRunner
from o365collector.pipeline.lane import LaneContext, StreamIdentity, WindowReader
from o365collector.planning.lanes import Priority
from o365collector.sinks.factory import build_sink
from o365collector.sources.base import Page
from o365collector.state.sqlite import SqliteStateStore
from o365collector.state.store import LaneStep
from o365collector.state.writer import StateWriter
from o365collector.windows import TimeWindow
from support.clock import FakeClock

START = datetime(2026, 11, 22, 10, tzinfo=UTC)
WINDOW = TimeWindow(START, datetime(2026, 11, 22, 11, tzinfo=UTC))
ROWS = 3  # per page
Entry = tuple[str, Any]


def _records(page: int) -> list[dict[str, Any]]:
    return [
        {"id": f"p{page}-r{row}", "recipientAddress": "r@contoso.com", "status": "Delivered"}
        for row in range(ROWS)
    ]


def _key(record: dict[str, Any]) -> tuple[str, str, str]:
    return (record["id"], record["recipientAddress"], record["status"])


class Pages:
    """A window of ``count`` pages (1-based); page ``n`` links on with ``link-n``."""

    def __init__(self, count: int) -> None:
        self.count = count
        self.requested = 0

    async def pages(
        self, window: TimeWindow, resume_link: str | None, *, priority: int = 0
    ) -> AsyncIterator[Page]:
        first = 1 if resume_link is None else int(resume_link.removeprefix("link-")) + 1
        for n in range(first, self.count + 1):
            self.requested += 1
            records = _records(n)
            link = None if n == self.count else f"link-{n}"
            yield Page(records, link, row_facts(records, _key))


class HeldDispatcher(Dispatcher):
    """Hands out one acknowledgement per page that the test resolves (or fails) by hand."""

    def __init__(self, journal: list[Entry], *, auto: bool = False) -> None:
        super().__init__([])
        self.journal = journal
        self.auto = auto
        self.acks: list[asyncio.Future[None]] = []
        self.pages: list[list[str]] = []  # the event ids of each submitted page
        self.submitted = asyncio.Event()

    async def submit(self, events: Sequence[Event]) -> asyncio.Future[None]:
        ack: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if self.auto:
            ack.set_result(None)
        self.acks.append(ack)
        self.pages.append([e.event_id for e in events])
        self.submitted.set()
        return ack

    async def wait_for_pages(self, count: int) -> None:
        while len(self.acks) < count:
            self.submitted.clear()
            await asyncio.wait_for(self.submitted.wait(), 5)

    def ack(self, page: int) -> None:
        self.journal.append(("ack", page))
        self.acks[page - 1].set_result(None)

    def fail(self, page: int, error: BaseException) -> None:
        self.journal.append(("failed", page))
        self.acks[page - 1].set_exception(error)


class JournalWriter(StateWriter):
    """The real state writer; notes each write when it is made, before its thread runs it."""

    def __init__(self, store: SqliteStateStore, journal: list[Entry]) -> None:
        super().__init__(store)
        self.journal = journal
        ids = StreamIds("tid", "s")
        self.page_of = {
            key: page
            for page in range(1, 20)
            for key in ids.row_keys(row_facts(_records(page), _key))
        }

    async def commit_page(
        self, scope: str, facts: list[tuple[bytes, str, int]], step: LaneStep | None
    ) -> None:
        if facts:
            self.journal.append(("remember", sorted({self.page_of[key] for key, _, _ in facts})))
        if step is not None and step.next_link is not None:
            self.journal.append(("link", step.next_link))
        elif step is not None:
            self.journal.append(("watermark", step.window.end))
        await super().commit_page(scope, facts, step)


@dataclass
class Lane:
    """One live lane over real dedup and SQLite state, fed by ``source``."""

    store: SqliteStateStore
    writer: JournalWriter
    source: Pages
    clock: FakeClock
    journal: list[Entry] = field(default_factory=list)
    dedup: Deduplicator | None = None

    def reader(self, dispatcher: Dispatcher, max_pages_in_flight: int = 4) -> WindowReader:
        """A started reader of this lane; a new one stands for the collector restarted."""
        if self.dedup is None:  # one per stream, kept across a stream's retries
            self.dedup = Deduplicator(
                self.writer, tenant="t", tenant_id="tid", stream="s", keep_secs=3600
            )
        ctx = LaneContext(
            StreamIdentity("t", "tid", "s"),
            self.source,
            dispatcher,
            self.dedup,
            self.clock,
            StreamProgress("t", "s"),
        )
        reader = WindowReader(ctx, "live", Priority.LIVE, max_pages_in_flight)
        reader.start()
        return reader

    async def read(self, reader: WindowReader, link: str | None = None) -> bool:
        """Read the window as the stream does: link after each page, watermark at the end."""
        return await reader.read(WINDOW, link, asyncio.Event(), checkpoint=True)

    def commits(self) -> list[Entry]:
        """The journal without the test's own entries: what the committer wrote."""
        return [e for e in self.journal if e[0] in ("remember", "link", "watermark")]

    def remembered_pages(self) -> list[int]:
        keys = list(self.writer.page_of)
        return sorted({self.writer.page_of[key] for key in self.store.seen_statuses(keys)})


@pytest.fixture
async def lane(tmp_path: Path, clock: FakeClock) -> AsyncIterator[Lane]:
    store = SqliteStateStore(tmp_path / "state.db")
    store.ensure_watermark("t", "s", "live", START, clock.now())
    journal: list[Entry] = []
    writer = JournalWriter(store, journal)
    try:
        yield Lane(store, writer, Pages(3), clock, journal)
    finally:
        writer.close()
        store.close()


async def _turns(count: int = 50) -> None:
    """Let every ready task run for a while (an ack's committer wakes within a few turns)."""
    for _ in range(count):
        await asyncio.sleep(0)


async def test_acks_out_of_order_commit_in_page_order(lane: Lane) -> None:
    dispatcher = HeldDispatcher(lane.journal)
    reader = lane.reader(dispatcher)
    assert await lane.read(reader)
    await dispatcher.wait_for_pages(3)
    dispatcher.ack(3)
    await _turns()
    dispatcher.ack(2)
    await _turns()
    assert lane.commits() == []  # page 1 is not acknowledged: nothing moves
    assert lane.store.load("t", "s", "live").next_link is None
    dispatcher.ack(1)
    await asyncio.wait_for(reader.drain(), 5)
    assert lane.journal == [
        ("ack", 3),
        ("ack", 2),
        ("ack", 1),
        ("remember", [1]),
        ("link", "link-1"),
        ("remember", [2]),
        ("link", "link-2"),
        ("remember", [3]),
        ("watermark", WINDOW.end),
    ]
    checkpoint = lane.store.load("t", "s", "live")
    assert (checkpoint.watermark, checkpoint.inflight, checkpoint.next_link) == (
        WINDOW.end,
        None,
        None,
    )
    assert lane.remembered_pages() == [1, 2, 3]


async def test_a_failed_ack_stops_the_lane_at_the_page_before_it(lane: Lane) -> None:
    dispatcher = HeldDispatcher(lane.journal)
    reader = lane.reader(dispatcher)
    assert await lane.read(reader)
    await dispatcher.wait_for_pages(3)
    dispatcher.ack(3)
    dispatcher.ack(1)
    dispatcher.fail(2, SinkError("sink siem: cannot write its dead-letter file"))
    with pytest.raises(SinkError, match="dead-letter"):
        await asyncio.wait_for(reader.drain(), 5)
    assert lane.commits() == [("remember", [1]), ("link", "link-1")]
    checkpoint = lane.store.load("t", "s", "live")
    assert (checkpoint.watermark, checkpoint.inflight, checkpoint.next_link) == (
        START,
        WINDOW,
        "link-1",
    )
    assert lane.remembered_pages() == [1]

    # The stream is retried (same dedup store): it resumes after page 1 and sends pages
    # 2 and 3 again with the same event ids; the failed page's facts are not "in flight".
    again = HeldDispatcher(lane.journal, auto=True)
    retried = lane.reader(again)
    assert await asyncio.wait_for(lane.read(retried, checkpoint.next_link), 5)
    await asyncio.wait_for(retried.drain(), 5)
    assert again.pages == dispatcher.pages[1:]
    assert lane.store.load("t", "s", "live").watermark == WINDOW.end
    assert lane.remembered_pages() == [1, 2, 3]


async def test_a_failed_ack_stops_a_reader_held_by_a_full_commit_queue(lane: Lane) -> None:
    lane.source = Pages(12)
    dispatcher = HeldDispatcher(lane.journal)
    reader = lane.reader(dispatcher, max_pages_in_flight=2)
    reading = asyncio.create_task(lane.read(reader))
    # page 1 awaited by the committer, pages 2 and 3 queued, page 4 handed over and held
    await dispatcher.wait_for_pages(4)
    await _turns()
    assert not reading.done() and len(dispatcher.acks) == 4
    dispatcher.fail(1, SinkError("sink siem raised RuntimeError"))
    with pytest.raises(SinkError, match="siem"):
        await asyncio.wait_for(reading, 5)  # not held forever by a committer that is gone
    assert len(dispatcher.acks) == 4  # nothing more was read or sent after the failure
    with pytest.raises(SinkError, match="siem"):
        await asyncio.wait_for(reader.drain(), 5)
    assert lane.commits() == []
    checkpoint = lane.store.load("t", "s", "live")
    assert (checkpoint.watermark, checkpoint.next_link) == (START, None)
    assert lane.remembered_pages() == []


async def test_an_ack_that_never_comes_holds_every_later_page(lane: Lane) -> None:
    dispatcher = HeldDispatcher(lane.journal)
    reader = lane.reader(dispatcher)
    assert await lane.read(reader)
    await dispatcher.wait_for_pages(3)
    dispatcher.ack(2)
    dispatcher.ack(3)
    await _turns()
    reader.cancel()  # the stop deadline passed: the stream gives up on page 1
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(reader.drain(), 5)
    assert lane.commits() == []
    checkpoint = lane.store.load("t", "s", "live")
    assert (checkpoint.watermark, checkpoint.inflight, checkpoint.next_link) == (
        START,
        None,
        None,
    )
    assert lane.remembered_pages() == []

    # After a restart (a new dedup store in memory) the window is read from its start:
    # every page again, with the same event ids, and now committed.
    lane.dedup = None
    again = HeldDispatcher(lane.journal, auto=True)
    restarted = lane.reader(again)
    assert await asyncio.wait_for(lane.read(restarted), 5)
    await asyncio.wait_for(restarted.drain(), 5)
    assert again.pages == dispatcher.pages
    assert lane.store.load("t", "s", "live").watermark == WINDOW.end
    assert lane.remembered_pages() == [1, 2, 3]


def _refuse_page_2(request: Request) -> Response:
    """A receiver that refuses (HTTP 400) every request holding a record of page 2."""
    if b'"p2-' in request.get_data():
        return Response("field too long", status=400)
    return Response("ok")


async def test_dead_letters_that_cannot_be_written_stop_the_lane_uncommitted(
    lane: Lane, tmp_path: Path, clock: FakeClock, httpserver: HTTPServer
) -> None:
    httpserver.expect_request("/in").respond_with_handler(_refuse_page_2)
    settings = TypeAdapter(SinkSettings).validate_python(
        {"type": "http", "name": "siem", "url": httpserver.url_for("/in"), "gzip": False}
    )
    sink = build_sink(settings, clock)
    await sink.start()
    blocked = tmp_path / "dead-letter"
    blocked.write_text("a file where the dead-letter folder should be\n")
    runner = SinkRunner(
        sink,
        batch_max_events=ROWS,  # one page per request
        queue_max_batches=8,
        retry=RetrySettings(initial_interval_secs=0.01, max_interval_secs=0.05),
        dead_letter=DeadLetter(blocked),
        clock=clock,
    )
    running = asyncio.create_task(runner.run())
    try:
        reader = lane.reader(Dispatcher([runner]))
        with pytest.raises(SinkError, match="dead-letter") as raised:
            await asyncio.wait_for(lane.read(reader), 5)
            await asyncio.wait_for(reader.drain(), 5)
        assert "siem" in str(raised.value)
    finally:
        running.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await running
        await sink.close()
    assert lane.commits() == [("remember", [1]), ("link", "link-1")]
    assert lane.store.load("t", "s", "live").watermark == START
    assert lane.remembered_pages() == [1]
    assert runner.discarded == 0  # refused, but not dead-lettered: not counted as such
