"""SinkRunner and Dispatcher: acknowledgements, retries, dead letters, fan-out, backpressure."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path

import msgspec
import pytest

from o365collector.config.model import RetrySettings
from o365collector.event import Event
from o365collector.pipeline.delivery import DeadLetter, Dispatcher, SinkRunner
from o365collector.sinks.base import DeliveryResult

RETRY = RetrySettings(initial_interval_secs=0.01, max_interval_secs=0.05)


def _events(n: int, prefix: str = "e") -> list[Event]:
    return [
        Event("contoso", "message_trace", f"{prefix}{i}", {"id": f"{prefix}{i}", "n": i})
        for i in range(n)
    ]


class ScriptedSink:
    """Answers from a script (then DELIVERED); can be held on an event."""

    def __init__(self, name: str, *answers: DeliveryResult) -> None:
        self.name = name
        self.answers = list(answers)
        self.batches: list[list[Event]] = []
        self.gate: asyncio.Event | None = None

    async def start(self) -> None:
        return None

    async def send(self, events: Sequence[Event]) -> DeliveryResult:
        self.batches.append(list(events))
        if self.gate is not None:
            await self.gate.wait()
        return self.answers.pop(0) if self.answers else DeliveryResult.delivered()

    async def close(self) -> None:
        return None

    @property
    def sent_ids(self) -> list[str]:
        return [e.event_id for batch in self.batches for e in batch]


@pytest.fixture
async def runner_for(tmp_path: Path, clock) -> AsyncIterator[Callable[..., SinkRunner]]:
    tasks: list[asyncio.Task[None]] = []

    def make(
        sink: ScriptedSink,
        *,
        start: bool = True,
        batch_max_events: int = 1000,
        queue_max_batches: int = 8,
    ) -> SinkRunner:
        runner = SinkRunner(
            sink,
            batch_max_events=batch_max_events,
            queue_max_batches=queue_max_batches,
            retry=RETRY,
            dead_letter=DeadLetter(tmp_path / "dead-letter"),
            clock=clock,
        )
        if start:
            tasks.append(asyncio.create_task(runner.run()))
        return runner

    make.tasks = tasks  # type: ignore[attr-defined]
    yield make
    for task in tasks:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def _settle(turns: int = 20) -> None:
    for _ in range(turns):
        await asyncio.sleep(0)


async def test_delivered_resolves_the_future(runner_for) -> None:
    sink = ScriptedSink("a")
    runner = runner_for(sink)
    events = _events(3)
    done = await runner.offer(events)
    await asyncio.wait_for(done, 1)
    assert sink.batches == [events]
    assert runner.delivered == 3
    assert runner.discarded == 0


async def test_retry_twice_then_delivered(runner_for, clock) -> None:
    sink = ScriptedSink(
        "a",
        DeliveryResult.retry("down", retry_after_secs=5),
        DeliveryResult.retry("still down", retry_after_secs=5),
    )
    runner = runner_for(sink)
    events = _events(4)
    done = await runner.offer(events)
    await asyncio.wait_for(done, 1)
    assert len(sink.batches) == 3
    assert all(batch == events for batch in sink.batches)
    assert clock.sleeps == [5, 5]
    assert runner.delivered == 4  # counted once, when finally delivered
    assert runner.discarded == 0


async def test_retry_without_retry_after_uses_backoff(runner_for, clock) -> None:
    sink = ScriptedSink("a", DeliveryResult.retry("x"), DeliveryResult.retry("y"))
    runner = runner_for(sink)
    done = await runner.offer(_events(1))
    await asyncio.wait_for(done, 1)
    assert len(clock.sleeps) == 2
    assert all(0 <= s <= 0.05 for s in clock.sleeps)


async def test_future_waits_while_retrying(runner_for) -> None:
    sink = ScriptedSink("a", *[DeliveryResult.retry("down")] * 3)
    sink.gate = asyncio.Event()
    runner = runner_for(sink)
    done = await runner.offer(_events(1))
    await _settle()
    assert not done.done()
    sink.gate.set()
    await asyncio.wait_for(done, 1)
    assert len(sink.batches) == 4


async def test_rejected_events_go_to_dead_letter(runner_for, tmp_path: Path) -> None:
    sink = ScriptedSink(
        "siem", DeliveryResult.reject({3: "field too long", 1: "bad tenant"}, "partial")
    )
    runner = runner_for(sink)
    events = _events(5)
    done = await runner.offer(events)
    await asyncio.wait_for(done, 1)
    file = tmp_path / "dead-letter" / "siem.jsonl"
    lines = [json.loads(line) for line in file.read_bytes().splitlines()]
    assert [(d["event_id"], d["reason"]) for d in lines] == [
        ("e1", "bad tenant"),
        ("e3", "field too long"),
    ]
    for line, event in zip(lines, (events[1], events[3]), strict=True):
        assert line["sink"] == "siem"
        assert line["record"] == event.record
        assert line["tenant"] == "contoso"
        assert line["stream"] == "message_trace"
        assert line["dead_lettered_at"]
    assert runner.discarded == 2
    assert runner.delivered == 3
    assert len(sink.batches) == 1  # rejected events are not retried


async def test_a_kept_text_that_does_not_decode_is_dead_lettered_as_text(
    runner_for, tmp_path: Path
) -> None:
    # Graph rows are kept as the text Graph sent. One with a number no float holds
    # (valid JSON, refused by orjson) is refused by every sink that reads the record; the
    # dead-letter file takes it as its text, and the batch's other events stay delivered.
    text = b'{"id":"big","size":1e400}'
    odd = Event("contoso", "message_trace", "odd", msgspec.json.decode(text, type=msgspec.Raw))
    assert "1e400" in repr(odd)
    sink = ScriptedSink("siem", DeliveryResult.reject({1: "unencodable: size"}, "partial"))
    runner = runner_for(sink)
    done = await runner.offer([_events(1)[0], odd, _events(2)[1]])
    await asyncio.wait_for(done, 1)
    [line] = [
        json.loads(x) for x in (tmp_path / "dead-letter" / "siem.jsonl").read_bytes().splitlines()
    ]
    assert (line["event_id"], line["record"], line["record_text"]) == ("odd", None, text.decode())
    assert (runner.discarded, runner.delivered) == (1, 2)


async def test_fan_out_resolves_when_both_sinks_delivered(runner_for) -> None:
    fast, slow = ScriptedSink("fast"), ScriptedSink("slow")
    slow.gate = asyncio.Event()
    dispatcher = Dispatcher([runner_for(fast), runner_for(slow)])
    events = _events(2)
    done = await dispatcher.submit(events)
    await _settle()
    assert fast.batches == [events]
    assert slow.batches == [events]
    assert not done.done()
    slow.gate.set()
    await asyncio.wait_for(done, 1)
    assert dispatcher.runners[0].delivered == 2
    assert dispatcher.runners[1].delivered == 2


async def test_fan_out_with_one_sink_retrying(runner_for, clock) -> None:
    ok = ScriptedSink("ok")
    flaky = ScriptedSink("flaky", DeliveryResult.retry("503", retry_after_secs=1))
    dispatcher = Dispatcher([runner_for(ok), runner_for(flaky)])
    done = await dispatcher.submit(_events(3))
    await asyncio.wait_for(done, 1)
    assert len(ok.batches) == 1
    assert len(flaky.batches) == 2
    assert clock.sleeps == [1]


async def test_empty_submit_resolves_at_once(runner_for) -> None:
    sink = ScriptedSink("a")
    dispatcher = Dispatcher([runner_for(sink, start=False)])
    done = await dispatcher.submit([])
    assert done.done()
    assert sink.batches == []


async def test_full_queue_makes_offer_wait(runner_for) -> None:
    sink = ScriptedSink("a")
    runner = runner_for(sink, start=False, queue_max_batches=1)
    first = await asyncio.wait_for(runner.offer(_events(1, "a")), 1)
    second_offer = asyncio.create_task(runner.offer(_events(1, "b")))
    await _settle()
    assert not second_offer.done()  # backpressure: the producer is held
    assert runner.queue.full()
    task = asyncio.create_task(runner.run())
    runner_for.tasks.append(task)
    second = await asyncio.wait_for(second_offer, 1)
    await asyncio.wait_for(asyncio.gather(first, second), 1)
    assert sink.sent_ids == ["a0", "b0"]


async def test_dispatcher_backpressure_from_a_stuck_sink(runner_for) -> None:
    ok, stuck = ScriptedSink("ok"), ScriptedSink("stuck")
    stuck.gate = asyncio.Event()
    dispatcher = Dispatcher(
        [runner_for(ok, queue_max_batches=1), runner_for(stuck, queue_max_batches=1)]
    )
    futures = [await dispatcher.submit(_events(1, "p0"))]  # taken by the stuck worker
    await _settle()
    futures.append(await dispatcher.submit(_events(1, "p1")))  # fills the stuck queue
    third = asyncio.create_task(dispatcher.submit(_events(1, "p2")))
    await _settle()
    assert not third.done()
    stuck.gate.set()
    futures.append(await asyncio.wait_for(third, 1))
    await asyncio.wait_for(asyncio.gather(*futures), 1)
    assert ok.sent_ids == ["p00", "p10", "p20"]
    assert sorted(stuck.sent_ids) == ["p00", "p10", "p20"]


async def test_queued_offers_are_batched_and_all_resolved(runner_for) -> None:
    sink = ScriptedSink("a")
    runner = runner_for(sink, start=False, batch_max_events=10)
    futures = [await runner.offer(_events(2, f"b{i}-")) for i in range(3)]
    task = asyncio.create_task(runner.run())
    runner_for.tasks.append(task)
    await asyncio.wait_for(asyncio.gather(*futures), 1)
    assert len(sink.batches) == 1
    assert sink.sent_ids == ["b0-0", "b0-1", "b1-0", "b1-1", "b2-0", "b2-1"]
    assert runner.delivered == 6
