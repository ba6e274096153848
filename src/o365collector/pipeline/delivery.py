"""Fan-out with acknowledgements: one bounded queue and one worker per sink.

A page's events are offered to every sink; the returned future resolves only when every
sink has delivered each event or dead-lettered it. A sink that is down holds its queue,
and a full queue holds the producers (bounded memory, nothing lost).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import orjson
import structlog

from o365collector.clock import Clock
from o365collector.config.model import RetrySettings
from o365collector.http.backoff import Backoff
from o365collector.observability import metrics
from o365collector.pipeline.event import Event
from o365collector.sinks.base import DeliveryStatus, Sink
from o365collector.sinks.encode import delivered_at

log = structlog.get_logger(__name__)


class DeadLetter:
    """Appends refused events, with the sink and the reason, to ``{state}/dead-letter/``."""

    def __init__(self, folder: Path) -> None:
        """Files are created on first use."""
        self.folder = folder

    def write(self, sink: str, items: Sequence[tuple[Event, str]]) -> None:
        """Append and fsync; the caller counts the events as discarded only after this."""
        self.folder.mkdir(parents=True, exist_ok=True)
        stamp = delivered_at()
        lines = b"".join(
            orjson.dumps(
                {
                    "sink": sink,
                    "reason": reason,
                    "dead_lettered_at": stamp,
                    "event_id": e.event_id,
                    "tenant": e.tenant,
                    "stream": e.stream,
                    "record": e.record,
                },
                option=orjson.OPT_APPEND_NEWLINE,
            )
            for e, reason in items
        )
        with (self.folder / f"{sink}.jsonl").open("ab") as file:
            file.write(lines)
            file.flush()
            os.fsync(file.fileno())


@dataclass(slots=True)
class _Item:
    events: Sequence[Event]
    done: asyncio.Future[None]


class SinkRunner:
    """Feeds one sink from a bounded queue, batching, retrying and dead-lettering."""

    def __init__(
        self,
        sink: Sink,
        *,
        batch_max_events: int,
        queue_max_batches: int,
        retry: RetrySettings,
        dead_letter: DeadLetter,
        clock: Clock,
    ) -> None:
        """Wrap ``sink``; call :meth:`run` in a task."""
        self.sink = sink
        self.batch_max_events = batch_max_events
        self.queue: asyncio.Queue[_Item] = asyncio.Queue(queue_max_batches)
        self.retry = retry
        self.dead_letter = dead_letter
        self.clock = clock
        self.delivered = 0
        self.discarded = 0

    async def offer(self, events: Sequence[Event]) -> asyncio.Future[None]:
        """Queue ``events`` (waiting while the queue is full); the future marks their fate."""
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        await self.queue.put(_Item(events, done))
        return done

    async def run(self) -> None:
        """Deliver queued batches forever (until cancelled)."""
        while True:
            items = [await self.queue.get()]
            count = len(items[0].events)
            while count < self.batch_max_events and not self.queue.empty():
                item = self.queue.get_nowait()
                items.append(item)
                count += len(item.events)
            events = [e for item in items for e in item.events]
            await self._deliver(events)
            for item in items:
                if not item.done.done():
                    item.done.set_result(None)

    async def _deliver(self, events: list[Event]) -> None:
        backoff = Backoff(
            self.retry.initial_interval_secs,
            self.retry.multiplier,
            self.retry.max_interval_secs,
            max_elapsed_secs=float("inf"),  # a down sink holds the pipeline; it never drops
        )
        while True:
            if not events:
                return
            result = await self.sink.send(events)
            if result.status is DeliveryStatus.DELIVERED:
                self._count_sent(len(events))
                return
            if result.status is DeliveryStatus.REJECTED:
                refused = [(events[i], reason) for i, reason in sorted(result.rejected.items())]
                await asyncio.to_thread(self.dead_letter.write, self.sink.name, refused)
                for _, reason in refused:
                    metrics.DISCARDED.labels(sink=self.sink.name, reason=reason[:40]).inc()
                self.discarded += len(refused)
                self._count_sent(len(events) - len(refused))
                log.error(
                    "Sink refused events; they were written to the dead-letter file.",
                    sink=self.sink.name,
                    refused=len(refused),
                    reason=result.reason or (refused[0][1] if refused else ""),
                )
                return
            delay = backoff.next_delay(result.retry_after_secs) or 0.0
            metrics.ERRORS.labels(stage="sending", error_type="sink_retry").inc()
            log.warning(
                "Sink delivery failed; retrying.",
                sink=self.sink.name,
                reason=result.reason,
                retry_in_secs=round(delay, 2),
            )
            await self.clock.sleep(delay)

    def _count_sent(self, count: int) -> None:
        self.delivered += count
        metrics.SENT.labels(sink=self.sink.name).inc(count)


class Dispatcher:
    """Offers each page to every sink; the page is acknowledged when all sinks are done."""

    def __init__(self, runners: Sequence[SinkRunner]) -> None:
        """Fan out to ``runners``."""
        self.runners = list(runners)

    async def submit(self, events: Sequence[Event]) -> asyncio.Future[None]:
        """Queue ``events`` on every sink; the returned future resolves once all have them."""
        loop = asyncio.get_running_loop()
        if not events:
            done: asyncio.Future[None] = loop.create_future()
            done.set_result(None)
            return done
        futures = [await runner.offer(events) for runner in self.runners]
        return asyncio.ensure_future(_all(futures))


async def _all(futures: list[asyncio.Future[None]]) -> None:
    for future in futures:
        await future
