"""The dedup store: only new facts pass, facts are remembered only after acknowledgement."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest

from o365collector.pipeline.dedup import Deduplicator
from o365collector.state.sqlite import SqliteStateStore

END = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


@pytest.fixture
def store(tmp_path):
    db = SqliteStateStore(tmp_path / "state.db")
    yield db
    db.close()


def _dedup(store, stream="message_trace"):
    return Deduplicator(store, tenant="t", tenant_id="tid", stream=stream, keep_secs=3600)


def _page(*facts):
    keys = [(trace, rcpt, status) for trace, rcpt, status in facts]
    records = [{"id": t, "recipientAddress": r, "status": s} for t, r, s in facts]
    return keys, records


async def test_new_rows_then_known_then_status_change(store):
    dedup = _dedup(store)
    keys, records = _page(("a", "x@c", "pending"), ("a", "y@c", "pending"))
    first = dedup.split(keys, records)
    assert (first.new_rows, first.status_changes, first.known) == (2, 0, 0)
    assert [e.record for e in first.events] == records
    dedup.settle(first.facts, END)

    again = dedup.split(keys, records)
    assert again.events == [] and again.known == 2

    keys2, records2 = _page(("a", "X@C", "delivered"), ("a", "y@c", "pending"))
    changed = dedup.split(keys2, records2)
    assert (changed.new_rows, changed.status_changes, changed.known) == (0, 1, 1)
    assert changed.events[0].record["status"] == "delivered"
    assert changed.events[0].event_id != first.events[0].event_id


async def test_facts_are_not_remembered_before_settle(store):
    dedup = _dedup(store)
    keys, records = _page(("a", "x@c", "pending"))
    dedup.split(keys, records)  # read but never acknowledged (e.g. a crash)
    fresh = _dedup(store)
    assert len(fresh.split(keys, records).events) == 1


async def test_a_fact_in_flight_is_waited_for_not_resent(store):
    dedup = _dedup(store)
    keys, records = _page(("a", "x@c", "pending"))
    first = dedup.split(keys, records)
    ack: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    dedup.track(first.facts, ack)
    second = dedup.split(keys, records)
    assert second.events == [] and second.waits == [ack]
    ack.set_result(None)
    dedup.settle(first.facts, END)
    third = dedup.split(keys, records)
    assert third.events == [] and third.waits == []


async def test_streams_do_not_share_facts_and_reset_forgets(store):
    one, other = _dedup(store), _dedup(store, stream="rws.MessageTrace")
    keys, records = _page(("a", "x@c", "delivered"))
    one.settle(one.split(keys, records).facts, END)
    assert len(other.split(keys, records).events) == 1
    store.reset("t", "message_trace")
    assert len(_dedup(store).split(keys, records).events) == 1


async def test_expiry_forgets_after_the_horizon(store):
    dedup = _dedup(store)
    keys, records = _page(("a", "x@c", "delivered"))
    dedup.settle(dedup.split(keys, records).facts, END)
    store.expire_seen(int(END.timestamp()) + 3599)
    assert dedup.split(keys, records).events == []
    store.expire_seen(int(END.timestamp()) + 3601)
    assert len(dedup.split(keys, records).events) == 1


async def test_a_stream_read_by_one_lane_delivers_every_row_and_stores_nothing(store):
    single = Deduplicator(
        store, tenant="t", tenant_id="tid", stream="message_trace", keep_secs=3600, shared=False
    )
    keys, records = _page(("a", "x@c", "pending"), ("b", "y@c", "delivered"))
    first = single.split(keys, records)
    assert [e.record for e in first.events] == records and first.new_rows == 2
    assert first.facts == []  # nothing to look up or remember: the lane reads once
    single.settle(first.facts, END)
    assert len(single.split(keys, records).events) == 2
    # ids are the same as a shared store's, so sinks that drop repeats still can
    shared = _dedup(store).split(keys, records)
    assert [e.event_id for e in first.events] == [e.event_id for e in shared.events]


async def test_settle_without_remembering_releases_the_in_flight_marks(store):
    dedup = _dedup(store)
    keys, records = _page(("a", "x@c", "delivered"))
    page = dedup.split(keys, records)
    ack: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    dedup.track(page.facts, ack)
    ack.set_result(None)
    dedup.settle(page.facts, END, remember=False)
    again = dedup.split(keys, records)
    assert len(again.events) == 1 and again.waits == []  # neither stored nor in flight


async def test_rows_with_a_receive_time_are_recognised_on_every_read(store):
    dedup = _dedup(store)
    keys = [("a", "x@c", "pending"), ("b", "x@c", "pending")]
    records = [
        {"id": "a", "receivedDateTime": "2026-11-22T05:59:59Z", "status": "pending"},
        {"id": "b", "receivedDateTime": "2026-11-22T06:00:00Z", "status": "pending"},
    ]
    dedup.settle(dedup.split(keys, records).facts, END)
    reread = dedup.split(list(reversed(keys)), list(reversed(records)))
    assert reread.events == [] and reread.known == 2
    changed = dedup.split([("b", "X@C", "delivered")], [{**records[1], "status": "delivered"}])
    assert changed.status_changes == 1 and changed.new_rows == 0
