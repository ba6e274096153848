"""The state writer runs every state call off the event loop, in order, and never half-way."""

from __future__ import annotations

import asyncio
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

from o365collector.state.sqlite import SqliteStateStore
from o365collector.state.store import dedup_scope
from o365collector.state.writer import StateWriter
from o365collector.windows import TimeWindow

T0 = datetime(2024, 5, 1, tzinfo=UTC)
NOW = datetime(2024, 5, 2, tzinfo=UTC)
FAR = 2**40


class _Gated(SqliteStateStore):
    """A real SQLite store whose commits wait for a gate and record the thread they ran on."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.gate = threading.Event()
        self.gate.set()
        self.started = threading.Event()
        self.threads: list[str] = []

    def commit_window(
        self, tenant: str, stream: str, window: TimeWindow, now: datetime, lane: str = "live"
    ) -> None:
        self.threads.append(threading.current_thread().name)
        self.started.set()
        assert self.gate.wait(10), "the test never opened the gate"
        super().commit_window(tenant, stream, window, now, lane)


def _windows(count: int) -> list[TimeWindow]:
    return [TimeWindow(T0 + timedelta(hours=i), T0 + timedelta(hours=i + 1)) for i in range(count)]


async def test_calls_run_on_the_state_thread_not_the_loop(tmp_path: Path) -> None:
    store = _Gated(tmp_path / "state.db")
    writer = StateWriter(store)
    await writer.commit_window("t", "s", _windows(1)[0], NOW, "live")
    writer.close()
    assert store.threads and store.threads[0].startswith("state")
    assert store.threads[0] != threading.current_thread().name
    assert store.load("t", "s", "live").watermark == T0 + timedelta(hours=1)
    store.close()


async def test_the_loop_runs_while_a_write_blocks(tmp_path: Path) -> None:
    store = _Gated(tmp_path / "state.db")
    store.gate.clear()
    writer = StateWriter(store)
    commit = asyncio.create_task(writer.commit_window("t", "s", _windows(1)[0], NOW, "live"))
    ticks = 0
    for _ in range(20):  # the event loop keeps turning while the write is held
        await asyncio.sleep(0)
        ticks += 1
    assert ticks == 20
    assert not commit.done()
    store.gate.set()
    await commit
    writer.close()
    store.close()


async def test_one_thread_applies_calls_in_the_order_made(tmp_path: Path) -> None:
    store = SqliteStateStore(tmp_path / "state.db")
    writer = StateWriter(store)
    windows = _windows(50)
    # Made without awaiting in between: the watermark ends at the last, the in-flight
    # link recorded after the 49th commit is cleared by the 50th.
    calls = []
    for i, window in enumerate(windows):
        calls.append(writer.commit_window("t", "s", window, NOW, "live"))
        if i == 48:
            calls.append(writer.save_inflight("t", "s", windows[49], "link", NOW, "live"))
    await asyncio.gather(*calls)
    checkpoint = await writer.load("t", "s", "live")
    writer.close()
    assert checkpoint.watermark == windows[-1].end
    assert checkpoint.inflight is None and checkpoint.next_link is None
    store.close()


async def test_a_cancelled_caller_does_not_leave_a_half_write(tmp_path: Path) -> None:
    store = _Gated(tmp_path / "state.db")
    store.gate.clear()
    writer = StateWriter(store)
    window = _windows(1)[0]
    commit = asyncio.create_task(writer.commit_window("t", "s", window, NOW, "live"))
    assert await asyncio.to_thread(store.started.wait, 10)
    commit.cancel()
    store.gate.set()
    writer.close()  # waits for the call already started
    assert store.load("t", "s", "live").watermark == window.end
    store.close()


async def test_dedup_calls_round_trip(tmp_path: Path) -> None:
    store = SqliteStateStore(tmp_path / "state.db")
    writer = StateWriter(store)
    await writer.remember(dedup_scope("t", "s"), [(b"k1", "Delivered", FAR)])
    assert await writer.seen_statuses([b"k1", b"k2"]) == {b"k1": "Delivered"}
    assert await writer.expire_seen(FAR + 1) == 1
    assert await writer.seen_statuses([b"k1"]) == {}
    writer.close()
    store.close()


async def test_a_lookup_does_not_queue_behind_a_held_write_on_sqlite(tmp_path: Path) -> None:
    # SQLite has one writer thread; a page's dedup lookup runs on a thread of its own, so
    # it is answered while another page's commit holds the writer (with many tenants,
    # pages otherwise waited there, parsed, for most of the page gate's places).
    store = _Gated(tmp_path / "state.db")
    writer = StateWriter(store)
    await writer.remember(dedup_scope("t", "s"), [(b"k1", "delivered", FAR)])
    store.gate.clear()
    commit = asyncio.create_task(writer.commit_window("t", "s", _windows(1)[0], NOW, "live"))
    assert await asyncio.to_thread(store.started.wait, 10)
    found = await asyncio.wait_for(writer.seen_statuses([b"k1", b"k2"]), 10)  # a hang guard
    assert found == {b"k1": "delivered"}
    assert not commit.done()  # the write was held the whole time
    store.gate.set()
    await commit
    writer.close()
    store.close()
