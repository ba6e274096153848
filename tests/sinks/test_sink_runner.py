"""The runner around every sink: partial retries, dead letters, when_full, fan-out, batching."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from pathlib import Path

import pytest
from sinks_support import make_event, make_events

from o365collector.config.model import RetrySettings
from o365collector.event import Event
from o365collector.observability import metrics
from o365collector.pipeline.delivery import DeadLetter, Dispatcher, SinkRunner, reason_label
from o365collector.sinks.base import DeliveryResult, Outcome
from support import FakeClock

RETRY = RetrySettings(initial_interval_secs=1.0, multiplier=2.0, max_interval_secs=8.0)


class ScriptedSink:
    """Answers from a script (then DELIVERED), recording every batch it was given."""

    def __init__(self, name: str, script: Sequence[DeliveryResult | Exception] = ()) -> None:
        self.name = name
        self.script = list(script)
        self.batches: list[list[str]] = []
        self.called = asyncio.Event()

    async def start(self) -> None:
        pass

    async def send(self, events: Sequence[Event]) -> DeliveryResult:
        self.batches.append([e.event_id for e in events])
        self.called.set()
        if self.script:
            answer = self.script.pop(0)
            if isinstance(answer, Exception):
                raise answer
            return answer
        return DeliveryResult.delivered()

    async def close(self) -> None:
        pass


def runner(sink: ScriptedSink, tmp_path: Path, clock: FakeClock, **kwargs: object) -> SinkRunner:
    options: dict[str, object] = {"batch_max_events": 100, "queue_max_batches": 4, **kwargs}
    return SinkRunner(
        sink,
        retry=RETRY,
        dead_letter=DeadLetter(tmp_path / "dead-letter"),
        clock=clock,
        **options,  # type: ignore[arg-type]
    )


async def deliver(run: SinkRunner, events: list[Event]) -> None:
    task = asyncio.create_task(run.run())
    try:
        done = await run.offer(events)
        await asyncio.wait_for(done, 10)
    finally:
        task.cancel()


def counter(name: str, **labels: str) -> float:
    return metrics.REGISTRY.get_sample_value(name, labels) or 0.0


async def test_partial_retry_resends_only_pending_and_dead_letters_refused(
    tmp_path: Path, clock: FakeClock
) -> None:
    events = make_events(5)
    sink = ScriptedSink(
        "partial",
        [
            DeliveryResult.retry(
                "HTTP 503", 7.0, pending=frozenset({3, 4}), rejected={1: "oversize"}
            )
        ],
    )
    run = runner(sink, tmp_path, clock)
    before = counter("component_discarded_events_total", sink="partial", reason="oversize")
    await deliver(run, events)
    assert sink.batches == [[e.event_id for e in events], [events[3].event_id, events[4].event_id]]
    assert clock.sleeps == [7.0]  # Retry-After honoured
    assert (run.delivered, run.discarded) == (4, 1)
    lines = (tmp_path / "dead-letter" / "partial.jsonl").read_text().splitlines()
    (dead,) = [json.loads(line) for line in lines]
    assert (dead["reason"], dead["event_id"], dead["record"]) == (
        "oversize",
        events[1].event_id,
        events[1].record,
    )
    after = counter("component_discarded_events_total", sink="partial", reason="oversize")
    assert after - before == 1


async def test_whole_retry_backs_off_until_delivered(tmp_path: Path, clock: FakeClock) -> None:
    sink = ScriptedSink("flaky", [DeliveryResult.retry("down")] * 3 + [RuntimeError("bug")])
    run = runner(sink, tmp_path, clock)
    await deliver(run, make_events(3))
    assert len(sink.batches) == 5
    assert all(b == sink.batches[0] for b in sink.batches)
    assert len(clock.sleeps) == 4
    assert all(0 <= d <= 8.0 for d in clock.sleeps)
    assert run.delivered == 3


async def test_batches_respect_batch_max_events(tmp_path: Path, clock: FakeClock) -> None:
    sink = ScriptedSink("small")
    run = runner(sink, tmp_path, clock, batch_max_events=3)
    pages = [await run.offer(make_events(7, start=start)) for start in (0, 7)]
    task = asyncio.create_task(run.run())
    await asyncio.wait_for(asyncio.gather(*pages), 10)
    task.cancel()
    assert max(len(b) for b in sink.batches) == 3
    assert [i for b in sink.batches for i in b] == [e.event_id for e in make_events(14)]


async def test_drop_newest_drops_counts_and_acknowledges(tmp_path: Path, clock: FakeClock) -> None:
    sink = ScriptedSink("shedding")
    run = runner(sink, tmp_path, clock, queue_max_batches=1, when_full="drop_newest")
    before = counter("buffer_discarded_events_total", sink="shedding")
    kept = await run.offer(make_events(2))
    dropped = await run.offer(make_events(3, start=2))
    assert dropped.done()  # acknowledged at once: the checkpoint may pass these events
    assert not kept.done()
    assert run.dropped == 3
    assert counter("buffer_discarded_events_total", sink="shedding") - before == 3
    task = asyncio.create_task(run.run())
    await asyncio.wait_for(kept, 10)
    task.cancel()
    assert [i for b in sink.batches for i in b] == [e.event_id for e in make_events(2)]
    assert run.delivered == 2


async def test_block_holds_the_producer_until_the_queue_drains(
    tmp_path: Path, clock: FakeClock
) -> None:
    sink = ScriptedSink("blocking")
    run = runner(sink, tmp_path, clock, queue_max_batches=1)
    await run.offer(make_events(1))
    producer = asyncio.create_task(run.offer(make_events(1, start=1)))
    for _ in range(20):
        await asyncio.sleep(0)
    assert not producer.done()
    assert run.dropped == 0
    task = asyncio.create_task(run.run())
    second = await producer
    await asyncio.wait_for(second, 10)
    task.cancel()
    assert run.delivered == 2


async def test_dispatcher_resolves_only_when_every_sink_has_the_page(
    tmp_path: Path, clock: FakeClock
) -> None:
    fast = ScriptedSink("fast")
    slow = ScriptedSink("slow", [DeliveryResult.retry("down")])
    gate = asyncio.Event()
    original = clock.sleep

    async def held_sleep(seconds: float) -> None:
        await gate.wait()
        await original(seconds)

    clock.sleep = held_sleep  # type: ignore[method-assign]
    runners = [runner(fast, tmp_path, clock), runner(slow, tmp_path, clock)]
    tasks = [asyncio.create_task(r.run()) for r in runners]
    page = await Dispatcher(runners).submit(make_events(4))
    await asyncio.wait_for(asyncio.gather(fast.called.wait(), slow.called.wait()), 10)
    assert not page.done()  # the slow sink is still backing off
    gate.set()
    await asyncio.wait_for(page, 10)
    for task in tasks:
        task.cancel()
    assert (runners[0].delivered, runners[1].delivered) == (4, 4)


def test_outcome_and_reason_labels() -> None:
    outcome = Outcome()
    outcome.reject(0, "oversize")
    assert outcome.result().rejected == {0: "oversize"}
    outcome.retry([2], "HTTP 503", 3.0)
    outcome.retry([3], "later", 1.0)
    result = outcome.result()
    assert (result.pending, result.reason, result.retry_after_secs) == (
        frozenset({2, 3}),
        "HTTP 503",
        3.0,
    )
    assert reason_label("HTTP 400: body text that varies") == "HTTP 400"
    assert reason_label("400 mapper_parsing_exception: failed to parse x") == (
        "400 mapper_parsing_exception"
    )


@pytest.mark.parametrize("policy", ["block", "drop_newest"])
def test_when_full_setting_is_validated(policy: str) -> None:
    from pydantic import TypeAdapter

    from o365collector.config.sinks import SinkSettings

    adapter: TypeAdapter[object] = TypeAdapter(SinkSettings)
    parsed = adapter.validate_python({"type": "stdout", "when_full": policy})
    assert parsed.when_full == policy  # type: ignore[attr-defined]
    with pytest.raises(ValueError, match="when_full"):
        adapter.validate_python({"type": "stdout", "when_full": "drop_oldest"})


async def test_a_very_long_outage_keeps_retrying(tmp_path: Path, clock: FakeClock) -> None:
    sink = ScriptedSink("long", [DeliveryResult.retry("down")] * 1500)
    run = runner(sink, tmp_path, clock)
    await deliver(run, make_events(1))
    assert len(sink.batches) == 1501  # 2.0**1500 would overflow: the exponent is capped
    assert max(clock.sleeps) <= RETRY.max_interval_secs
    assert run.delivered == 1


async def test_dead_letter_keeps_records_orjson_cannot_write(
    tmp_path: Path, clock: FakeClock
) -> None:
    odd = [make_event(0, huge=2**70), make_event(1, blob=b"\x00")]
    sink = ScriptedSink("odd", [DeliveryResult.reject({0: "HTTP 400: a", 1: "unencodable"})])
    run = runner(sink, tmp_path, clock)
    await deliver(run, odd)
    lines = [
        json.loads(x) for x in (tmp_path / "dead-letter" / "odd.jsonl").read_text().splitlines()
    ]
    assert lines[0]["record"]["huge"] == 2**70
    assert lines[1]["record"] is None
    assert "blob" in lines[1]["record_repr"]
    assert run.discarded == 2
