"""The dedup store: only new facts pass, facts are remembered only after acknowledgement."""

from __future__ import annotations

import asyncio
import threading
from datetime import UTC, datetime

import pytest

from o365collector.event import event_id, row_facts
from o365collector.pipeline.dedup import Deduplicator
from o365collector.sources.base import Page
from o365collector.state.sqlite import SqliteStateStore
from o365collector.state.writer import StateWriter

END = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


@pytest.fixture
def store(tmp_path):
    db = SqliteStateStore(tmp_path / "state.db")
    yield db
    db.close()


def _dedup(store, stream="message_trace", *, shared=True, threads=1):
    return Deduplicator(
        StateWriter(store, threads=threads),
        tenant="t",
        tenant_id="tid",
        stream=stream,
        keep_secs=3600,
        shared=shared,
    )


async def _split(dedup, page, handed=None):
    """Split ``page``; its new facts are in flight until ``handed`` (a fresh future)."""
    if handed is None:
        handed = asyncio.get_running_loop().create_future()
    return await dedup.split(page, handed)


def _page(*facts, received=None):
    records = [{"id": t, "recipientAddress": r, "status": s} for t, r, s in facts]
    if received is not None:
        for record, moment in zip(records, received, strict=True):
            record["receivedDateTime"] = moment
    keys = iter(facts)
    return Page(records, None, row_facts(records, lambda _: next(keys)))


async def test_new_rows_then_known_then_status_change(store):
    dedup = _dedup(store)
    page = _page(("a", "x@c", "pending"), ("a", "y@c", "pending"))
    first = await _split(dedup, page)
    assert (first.new_rows, first.status_changes, first.known) == (2, 0, 0)
    assert [e.record for e in first.events] == page.records
    await dedup.settle(first.facts, END)

    again = await _split(dedup, page)
    assert again.events == [] and again.known == 2

    changed = await _split(dedup, _page(("a", "X@C", "delivered"), ("a", "y@c", "pending")))
    assert (changed.new_rows, changed.status_changes, changed.known) == (0, 1, 1)
    assert changed.events[0].record["status"] == "delivered"
    assert changed.events[0].event_id != first.events[0].event_id


async def test_event_ids_are_the_deterministic_ids_of_each_fact(store):
    # A deployed collector must not re-deliver after an upgrade: the page's identities
    # hash to exactly what event_id gives (recipient and status case-insensitive).
    facts = [("a", "X@C", "Pending"), ("b", "y@c", "delivered"), ("a", "x@c", "x|y")]
    expected = [event_id("tid", "message_trace", *fact) for fact in facts]
    assert [e.event_id for e in (await _split(_dedup(store), _page(*facts))).events] == expected
    single = _dedup(store, shared=False)
    assert [e.event_id for e in (await _split(single, _page(*facts))).events] == expected


async def test_row_keys_lead_with_the_receive_hour_and_ignore_case_and_status(store):
    page = _page(
        ("a", "X@C", "pending"),
        ("a", "x@c", "delivered"),
        received=["2026-11-22T05:59:59Z", "2026-11-22T05:00:00.1234567Z"],
    )
    facts = (await _split(_dedup(store), page)).facts
    assert facts[0][0] == facts[1][0]
    assert facts[0][0].startswith(b"2026-11-22T05") and len(facts[0][0]) == 13 + 16
    assert facts[0][0] != (await _split(_dedup(store, stream="other"), page)).facts[0][0]
    assert [status for _, status in facts] == ["pending", "delivered"]


async def test_facts_are_not_remembered_before_settle(store):
    dedup = _dedup(store)
    page = _page(("a", "x@c", "pending"))
    (await _split(dedup, page))  # read but never acknowledged (e.g. a crash)
    fresh = _dedup(store)
    assert len((await _split(fresh, page)).events) == 1


async def test_a_fact_in_flight_is_waited_for_not_resent(store):
    dedup = _dedup(store)
    page = _page(("a", "x@c", "pending"))
    ack: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    first = await _split(dedup, page, ack)
    second = await _split(dedup, page)
    assert second.events == [] and second.waits == [ack]
    ack.set_result(None)
    await dedup.settle(first.facts, END)
    third = await _split(dedup, page)
    assert third.events == [] and third.waits == []


async def test_streams_do_not_share_facts_and_reset_forgets(store):
    one, other = _dedup(store), _dedup(store, stream="rws.MessageTrace")
    page = _page(("a", "x@c", "delivered"))
    await one.settle((await _split(one, page)).facts, END)
    assert len((await _split(other, page)).events) == 1
    store.reset("t", "message_trace")
    assert len((await _split(_dedup(store), page)).events) == 1


async def test_expiry_forgets_after_the_horizon(store):
    dedup = _dedup(store)
    page = _page(("a", "x@c", "delivered"))
    await dedup.settle((await _split(dedup, page)).facts, END)
    store.expire_seen(int(END.timestamp()) + 3599)
    assert (await _split(dedup, page)).events == []
    store.expire_seen(int(END.timestamp()) + 3601)
    assert len((await _split(dedup, page)).events) == 1


async def test_a_stream_read_by_one_lane_delivers_every_row_and_stores_nothing(store):
    single = _dedup(store, shared=False)
    page = _page(("a", "x@c", "pending"), ("b", "y@c", "delivered"))
    first = await _split(single, page)
    assert [e.record for e in first.events] == page.records and first.new_rows == 2
    assert first.facts == []  # nothing to look up or remember: the lane reads once
    await single.settle(first.facts, END)
    assert len((await _split(single, page)).events) == 2
    # ids are the same as a shared store's, so sinks that drop repeats still can
    shared = await _split(_dedup(store), page)
    assert [e.event_id for e in first.events] == [e.event_id for e in shared.events]


async def test_settle_without_remembering_releases_the_in_flight_marks(store):
    dedup = _dedup(store)
    ack: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    page = await _split(dedup, _page(("a", "x@c", "delivered")), ack)
    ack.set_result(None)
    await dedup.settle(page.facts, END, remember=False)
    again = await _split(dedup, _page(("a", "x@c", "delivered")))
    assert len(again.events) == 1 and again.waits == []  # neither stored nor in flight


async def test_rows_with_a_receive_time_are_recognised_on_every_read(store):
    dedup = _dedup(store)
    facts = [("a", "x@c", "pending"), ("b", "x@c", "pending")]
    received = ["2026-11-22T05:59:59Z", "2026-11-22T06:00:00Z"]
    await dedup.settle((await _split(dedup, _page(*facts, received=received))).facts, END)
    reread = await _split(dedup, _page(*reversed(facts), received=list(reversed(received))))
    assert reread.events == [] and reread.known == 2
    changed = await _split(dedup, _page(("b", "X@C", "delivered"), received=received[1:]))
    assert changed.status_changes == 1 and changed.new_rows == 0


class _HeldStore(SqliteStateStore):
    """A real SQLite store whose lookups (read at once) answer, and whose page commits
    start, only when their gate is open (both open at first)."""

    def __init__(self, path):
        super().__init__(path)
        self.lookup_gate, self.commit_gate = threading.Event(), threading.Event()
        self.lookup_gate.set()
        self.commit_gate.set()
        self.looking, self.committing = threading.Event(), threading.Event()

    def seen_statuses(self, row_keys):
        found = super().seen_statuses(row_keys)  # read now, answered when the gate opens
        self.looking.set()
        assert self.lookup_gate.wait(10), "the test never opened the lookup gate"
        return found

    def commit_page(self, scope, facts, step):
        self.committing.set()
        assert self.commit_gate.wait(10), "the test never opened the commit gate"
        super().commit_page(scope, facts, step)


@pytest.mark.parametrize("threads", [1, 2])
async def test_a_lookup_racing_a_settle_on_another_thread_does_not_resend(tmp_path, threads):
    # Lane A's lookup and lane B's settle (remember, then unmark) run on different threads
    # (SQLite: the lookup thread and the writer; a pooled backend: two of its threads).
    # Were they to interleave, A would find the fact neither remembered (its lookup ran
    # first) nor in flight (unmarked since): a second delivery.
    store = _HeldStore(tmp_path / "state.db")
    dedup = _dedup(store, threads=threads)
    page = _page(("a", "x@c", "delivered"))
    ack: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    first = await _split(dedup, page, ack)
    ack.set_result(None)
    store.lookup_gate.clear()
    store.looking.clear()
    racing = asyncio.create_task(_split(dedup, page))
    assert await asyncio.to_thread(store.looking.wait, 10)
    settling = asyncio.create_task(dedup.settle(first.facts, END))
    for _ in range(50):  # let the settle run as far as it can while the lookup is held
        await asyncio.sleep(0.001)
    store.lookup_gate.set()
    second = await racing
    await settling
    assert second.events == []
    assert second.known == 1
    store.close()


async def test_a_lookup_is_not_held_by_another_lanes_commit(tmp_path):
    # Lanes of a stream share the deduplicator: one lane's page commit (a disk write)
    # must not hold another lane's lookup, or parsed pages pile up behind the commits.
    store = _HeldStore(tmp_path / "state.db")
    dedup = _dedup(store)
    ack: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    first = await _split(dedup, _page(("a", "x@c", "delivered")), ack)
    ack.set_result(None)
    store.commit_gate.clear()
    settling = asyncio.create_task(dedup.settle(first.facts, END))
    assert await asyncio.to_thread(store.committing.wait, 10)
    other = await asyncio.wait_for(_split(dedup, _page(("b", "y@c", "pending"))), 10)
    assert len(other.events) == 1  # a hang guard above, not a timing
    again = await asyncio.wait_for(_split(dedup, _page(("a", "x@c", "delivered"))), 10)
    assert again.events == [] and len(again.waits) == 1  # in flight until its commit
    assert not settling.done()
    store.commit_gate.set()
    await settling
    store.close()
