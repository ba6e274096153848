"""Delivery that cannot finish: dead letters that cannot be written, a sink that raises.

Either way the page's acknowledgement must fail with a :class:`SinkError` that says what is
wrong (never stay pending, which would hang the lane's committer and ``run --once``),
nothing may be counted as dead-lettered, and the runner must go on serving later pages.
"Disk full" and "folder gone" are real: ``/dev/full`` answers every write with ENOSPC,
and a file where the dead-letter folder should be (or a folder under ``/proc``) cannot be
created even by root.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path

import pytest

from o365collector.config.model import RetrySettings
from o365collector.errors import SinkError
from o365collector.event import Event
from o365collector.observability import metrics
from o365collector.pipeline.delivery import DeadLetter, Dispatcher, SinkRunner
from o365collector.sinks.base import DeliveryResult
from support.clock import FakeClock

RETRY = RetrySettings(initial_interval_secs=0.5, max_interval_secs=4.0, max_elapsed_secs=60)
QUICK = RetrySettings(initial_interval_secs=0.5, max_interval_secs=1.0, max_elapsed_secs=3)


def _page(name: str, size: int = 3, *, refused: bool = False) -> list[Event]:
    """A page of ``size`` events; with ``refused`` the sink refuses its second event."""
    return [
        Event("contoso", "message_trace", f"{name}-{i}", {"id": f"{name}-{i}", "bad": refused})
        for i in range(size)
    ]


class RefusingSink:
    """Takes every event but those whose record says ``bad`` (refused as ``oversize``)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.sent: list[str] = []

    async def start(self) -> None:
        return None

    async def send(self, events: Sequence[Event]) -> DeliveryResult:
        self.sent += [e.event_id for e in events]
        bad = {
            i: "oversize: too long"
            for i, e in enumerate(events)
            if e.record["bad"] and e.event_id.endswith("-1")
        }
        return DeliveryResult.reject(bad, "oversize") if bad else DeliveryResult.delivered()

    async def close(self) -> None:
        return None


class RaisingSink:
    """Raises ``error`` on its first ``times`` sends (every send if ``times`` is None)."""

    name = "buggy"

    def __init__(self, error: Exception, times: int | None = None) -> None:
        self.error, self.times, self.calls = error, times, 0

    async def start(self) -> None:
        return None

    async def send(self, events: Sequence[Event]) -> DeliveryResult:
        self.calls += 1
        if self.times is None or self.calls <= self.times:
            raise self.error
        return DeliveryResult.delivered()

    async def close(self) -> None:
        return None


Make = Callable[..., SinkRunner]


@pytest.fixture
async def running(clock: FakeClock) -> AsyncIterator[Make]:
    """Build runners (one page per batch) and run them until the test ends."""
    tasks: list[asyncio.Task[None]] = []

    def make(
        sink: object, dead_letter: Path, batch_max_events: int = 3, retry: RetrySettings = RETRY
    ) -> SinkRunner:
        runner = SinkRunner(
            sink,  # type: ignore[arg-type]
            batch_max_events=batch_max_events,
            queue_max_batches=4,
            retry=retry,
            dead_letter=DeadLetter(dead_letter),
            clock=clock,
        )
        tasks.append(asyncio.create_task(runner.run()))
        return runner

    yield make
    for task in tasks:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def _file_in_the_way(tmp_path: Path) -> tuple[Path, str]:
    folder = tmp_path / "dead-letter"
    folder.write_text("not a folder\n")
    return folder, "exists"


def _under_proc(tmp_path: Path) -> tuple[Path, str]:
    return Path("/proc/o365collector-dead-letter"), "No such file or directory"


def _disk_full(tmp_path: Path) -> tuple[Path, str]:
    folder = tmp_path / "dead-letter"
    folder.mkdir()
    (folder / "siem.jsonl").symlink_to("/dev/full")  # every write: ENOSPC
    return folder, "No space left on device"


def _discarded(sink: str) -> float:
    value = metrics.REGISTRY.get_sample_value(
        "component_discarded_events_total", {"sink": sink, "reason": "oversize"}
    )
    return value or 0.0


@pytest.mark.parametrize("broken", [_file_in_the_way, _under_proc, _disk_full])
async def test_unwritable_dead_letters_fail_the_page_and_the_runner_goes_on(
    running: Make, tmp_path: Path, broken: Callable[[Path], tuple[Path, str]]
) -> None:
    folder, why = broken(tmp_path)
    sink = RefusingSink("siem")
    runner = running(sink, folder)
    before = _discarded("siem")
    failed = await runner.offer(_page("p1", refused=True))
    with pytest.raises(SinkError) as raised:
        await asyncio.wait_for(failed, 5)
    message = str(raised.value)
    assert "siem" in message
    assert str(folder / "siem.jsonl") in message
    assert why in message
    assert "not acknowledged" in message
    assert (runner.discarded, _discarded("siem")) == (0, before)  # nothing was kept
    # Later pages are still served: one without refusals is delivered.
    later = await runner.offer(_page("p2"))
    await asyncio.wait_for(later, 5)
    assert sink.sent[-3:] == ["p2-0", "p2-1", "p2-2"]


async def test_a_repaired_dead_letter_folder_takes_the_next_refusals(
    running: Make, tmp_path: Path
) -> None:
    folder, _ = _file_in_the_way(tmp_path)
    runner = running(RefusingSink("siem"), folder)
    with pytest.raises(SinkError):
        await asyncio.wait_for(await runner.offer(_page("p1", refused=True)), 5)
    folder.unlink()  # the operator removes what was in the way
    await asyncio.wait_for(await runner.offer(_page("p2", refused=True)), 5)
    assert runner.discarded == 1
    assert "p2-1" in (folder / "siem.jsonl").read_text()


async def test_pages_batched_with_the_failed_one_fail_too(running: Make, tmp_path: Path) -> None:
    folder, _ = _disk_full(tmp_path)
    sink = RefusingSink("siem")
    gate = asyncio.Event()
    original = sink.send

    async def held_send(events: Sequence[Event]) -> DeliveryResult:
        await gate.wait()
        return await original(events)

    sink.send = held_send  # type: ignore[method-assign]
    runner = running(sink, folder, batch_max_events=100)
    first = await runner.offer(_page("p1"))  # taken alone while the sink is held
    await asyncio.sleep(0)
    queued = [await runner.offer(_page("p2")), await runner.offer(_page("p3", refused=True))]
    gate.set()
    await asyncio.wait_for(first, 5)
    for page in queued:  # one batch: p3's refusal cannot be kept, so neither page is settled
        with pytest.raises(SinkError, match="No space left"):
            await asyncio.wait_for(page, 5)


async def test_one_sinks_dead_letter_failure_fails_the_dispatched_page(
    running: Make, tmp_path: Path
) -> None:
    healthy = RefusingSink("archive")
    broken_folder, _ = _disk_full(tmp_path)
    (tmp_path / "ok").mkdir()
    dispatcher = Dispatcher(
        [running(healthy, tmp_path / "ok"), running(RefusingSink("siem"), broken_folder)]
    )
    ack = await dispatcher.submit(_page("p1", refused=True))
    with pytest.raises(SinkError, match="siem"):
        await asyncio.wait_for(ack, 5)
    assert healthy.sent == ["p1-0", "p1-1", "p1-2"]  # the other sink did its part


async def test_a_sink_that_keeps_raising_fails_the_page_after_the_retry_budget(
    running: Make, tmp_path: Path, clock: FakeClock
) -> None:
    sink = RaisingSink(TypeError("'NoneType' object is not subscriptable"))
    runner = running(sink, tmp_path / "dead-letter", retry=QUICK)
    done = await runner.offer(_page("p1"))
    with pytest.raises(SinkError) as raised:
        await asyncio.wait_for(done, 5)
    message = str(raised.value)
    assert "buggy" in message and "TypeError" in message and "not subscriptable" in message
    assert "max_elapsed_secs" in message
    assert isinstance(raised.value.__cause__, TypeError)
    assert sink.calls >= 2  # retried with backoff before giving up
    assert sum(clock.sleeps) <= QUICK.max_elapsed_secs
    assert runner.delivered == 0
    assert runner.failing_since is not None  # readiness reports the sink as failing


async def test_a_sink_that_raises_a_few_times_is_retried_until_it_answers(
    running: Make, tmp_path: Path, clock: FakeClock
) -> None:
    sink = RaisingSink(ConnectionResetError("peer reset"), times=3)
    runner = running(sink, tmp_path / "dead-letter")
    await asyncio.wait_for(await runner.offer(_page("p1")), 5)
    assert sink.calls == 4 and len(clock.sleeps) == 3
    assert runner.delivered == 3
    assert runner.failing_since is None
