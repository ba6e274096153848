"""Fan-out with acknowledgements: one bounded queue and one worker per sink.

A page's events are offered to every sink; the returned future resolves only when every
sink has delivered each event or dead-lettered it. A sink that is down holds its queue,
and a full queue holds the producers (bounded memory, nothing lost) unless the sink opted
into ``when_full: drop_newest``, which drops (and counts) what does not fit.
"""

from __future__ import annotations

import asyncio
import functools
import os
from collections.abc import Sequence
from concurrent.futures import Executor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import orjson
import structlog
from prometheus_client import Counter

from o365collector.clock import Clock
from o365collector.config.model import RetrySettings
from o365collector.errors import SinkError
from o365collector.event import Event
from o365collector.http.backoff import Backoff
from o365collector.observability import metrics
from o365collector.observability.redact import redact
from o365collector.sinks.base import DeliveryResult, DeliveryStatus, Sink
from o365collector.sinks.encode import delivered_at, dumps

log = structlog.get_logger(__name__)

WhenFull = Literal["block", "drop_newest"]

DROPPED = Counter(
    "buffer_discarded_events_total",
    "Events dropped on purpose because a sink's queue was full (when_full: drop_newest).",
    ["sink"],
    registry=metrics.REGISTRY,
)


def reason_label(reason: str) -> str:
    """The bounded metric label of a rejection reason: its text before the first colon."""
    return reason.split(":", 1)[0].strip()[:40] or "unknown"


class DeadLetter:
    """Appends refused events, with the sink and the reason, to ``{state}/dead-letter/``."""

    def __init__(self, folder: Path, clock: Clock | None = None) -> None:
        """Files are created on first use; ``clock`` stamps each line (system clock by default)."""
        self.folder = folder
        self.clock = clock

    def path(self, sink: str) -> Path:
        """The dead-letter file of ``sink``."""
        return self.folder / f"{sink}.jsonl"

    def write(self, sink: str, items: Sequence[tuple[Event, str]]) -> None:
        """Append and fsync; the caller counts the events as discarded only after this.

        Raises:
            OSError: the folder or the file cannot be created or written (disk full, a
                file where the folder should be, no permission).
        """
        self.folder.mkdir(parents=True, exist_ok=True)
        stamp = delivered_at(self.clock)
        lines = b"".join(_dead_line(sink, e, reason, stamp) for e, reason in items)
        with self.path(sink).open("ab") as file:
            file.write(lines)
            file.flush()
            os.fsync(file.fileno())


def _dead_line(sink: str, event: Event, reason: str, stamp: str) -> bytes:
    """One dead-letter line; a record that is not JSON-encodable is kept as its repr, and
    one kept as text that does not decode (a number no float holds) as that text."""
    entry: dict[str, Any] = {
        "sink": sink,
        "reason": reason,
        "dead_lettered_at": stamp,
        "event_id": event.event_id,
        "tenant": event.tenant,
        "stream": event.stream,
        "record": None,
    }
    try:
        entry["record"] = event.record
        return dumps(entry) + b"\n"
    except ValueError:
        entry["record"] = None
        raw = event.raw
        if raw is not None:
            entry["record_text"] = bytes(memoryview(raw)).decode("utf-8", "replace")
        else:
            entry["record_repr"] = repr(event.record)
        return orjson.dumps(entry, option=orjson.OPT_APPEND_NEWLINE)


@dataclass(slots=True)
class _Item:
    events: Sequence[Event]
    done: asyncio.Future[None]


class SinkRunner:
    """Feeds one sink from a bounded queue, batching, retrying and dead-lettering.

    Queued pages are coalesced and sent in batches of at most ``batch_max_events``.
    RETRY answers are retried forever with the shared backoff (Retry-After first); when
    a sink says which events are still pending, only those are sent again. REJECTED
    events go to the dead-letter file and are counted. With ``when_full="drop_newest"``
    a page that finds the queue full is dropped, counted, and acknowledged at once.
    """

    def __init__(
        self,
        sink: Sink,
        *,
        batch_max_events: int,
        queue_max_batches: int,
        retry: RetrySettings,
        dead_letter: DeadLetter,
        clock: Clock,
        when_full: WhenFull = "block",
        executor: Executor | None = None,
    ) -> None:
        """Wrap ``sink``; call :meth:`run` in a task (dead-letter writes run in ``executor``)."""
        self.executor = executor
        self.sink = sink
        self.batch_max_events = batch_max_events
        self.queue: asyncio.Queue[_Item] = asyncio.Queue(queue_max_batches)
        self.retry = retry
        self.dead_letter = dead_letter
        self.clock = clock
        self.when_full: WhenFull = when_full
        self.delivered = 0
        self.discarded = 0
        self.dropped = 0
        self.failing_since: float | None = None  # monotonic time of the first failed retry

    async def offer(self, events: Sequence[Event]) -> asyncio.Future[None]:
        """Queue ``events`` (waiting while the queue is full); the future marks their fate.

        With ``drop_newest`` and a full queue the events are dropped instead: counted in
        ``buffer_discarded_events_total`` and :attr:`dropped`, and the future is already
        resolved, so the checkpoint moves past them. This loses data on purpose.
        """
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if self.when_full == "drop_newest" and self.queue.full():
            self.dropped += len(events)
            DROPPED.labels(sink=self.sink.name).inc(len(events))
            log.warning(
                "Sink queue full; events dropped (when_full: drop_newest).",
                sink=self.sink.name,
                dropped=len(events),
                dropped_total=self.dropped,
            )
            done.set_result(None)
            return done
        await self.queue.put(_Item(events, done))
        metrics.BUFFER_PUSHED.labels(sink=self.sink.name).inc(len(events))
        return done

    async def run(self) -> None:
        """Deliver queued batches forever (until cancelled).

        A batch that cannot be settled (its refused events cannot be dead-lettered, or the
        sink keeps raising) fails the futures of the pages in it with a :class:`SinkError`:
        their streams stop with that error and commit nothing from those pages on. The
        runner goes on with the next pages (other streams, or a disk that has room again).
        """
        while True:
            items = [await self.queue.get()]
            count = len(items[0].events)
            while count < self.batch_max_events and not self.queue.empty():
                item = self.queue.get_nowait()
                items.append(item)
                count += len(item.events)
            events = [e for item in items for e in item.events]
            metrics.BUFFER_POPPED.labels(sink=self.sink.name).inc(len(events))
            try:
                for start in range(0, len(events), self.batch_max_events):
                    await self._deliver(events[start : start + self.batch_max_events])
            except Exception as exc:  # noqa: BLE001 - handed to the pages' streams
                self._fail(items, exc)
            for item in items:
                if not item.done.done():
                    item.done.set_result(None)
            del items, events, item  # not held while waiting for the next page

    def _fail(self, items: Sequence[_Item], exc: Exception) -> None:
        """Fail the pages of a batch that could not be settled; they stay unacknowledged."""
        error = exc
        if not isinstance(error, SinkError):
            error = SinkError(f"sink {self.sink.name} failed: {type(exc).__name__}: {exc}")
            error.__cause__ = exc
        metrics.ERRORS.labels(stage="sending", error_type="sink_failed").inc()
        log.error(
            "Sink could not settle a batch; its pages are not acknowledged.",
            sink=self.sink.name,
            pages=len(items),
            error=redact(str(error)),
        )
        for item in items:
            if not item.done.done():
                item.done.set_exception(error)

    async def _deliver(self, events: list[Event]) -> None:
        """Send until every event is delivered or dead-lettered.

        Raises:
            SinkError: the refused events cannot be dead-lettered, or the sink raised
                instead of answering for longer than ``retry.max_elapsed_secs`` (a sink
                bug: retrying forever would hold the pipeline without saying why).
        """
        retry = self.retry
        backoff = Backoff(
            retry.initial_interval_secs,
            retry.multiplier,
            retry.max_interval_secs,
            max_elapsed_secs=float("inf"),  # a down sink holds the pipeline; it never drops
        )
        raising = Backoff(
            retry.initial_interval_secs,
            retry.multiplier,
            retry.max_interval_secs,
            max_elapsed_secs=retry.max_elapsed_secs,
        )
        while events:
            try:
                result = await self.sink.send(events)
            except Exception as exc:
                metrics.ERRORS.labels(stage="sending", error_type="sink_bug").inc()
                delay = raising.next_delay()
                if delay is None:
                    msg = (
                        f"sink {self.sink.name} raised {type(exc).__name__} instead of "
                        f"answering, on every attempt for {raising.waited_secs:.0f} s "
                        f"(collection.retry.max_elapsed_secs): {redact(str(exc))}"
                    )
                    raise SinkError(msg) from exc
                log.exception(
                    "Sink raised instead of answering; retrying.",
                    sink=self.sink.name,
                    retry_in_secs=round(delay, 2),
                )
                if self.failing_since is None:
                    self.failing_since = self.clock.monotonic()
                await self.clock.sleep(delay)
                continue
            if result.status is DeliveryStatus.DELIVERED:
                self._count_sent(len(events))
                self.failing_since = None
                return
            events = await self._settle(events, result)
            if result.status is DeliveryStatus.REJECTED or not events:
                return
            if self.failing_since is None:
                self.failing_since = self.clock.monotonic()
            delay = backoff.next_delay(result.retry_after_secs) or 0.0
            metrics.ERRORS.labels(stage="sending", error_type="sink_retry").inc()
            log.warning(
                "Sink delivery failed; retrying.",
                sink=self.sink.name,
                reason=redact(result.reason),
                pending=len(events),
                retry_in_secs=round(delay, 2),
            )
            await self.clock.sleep(delay)

    async def _settle(self, events: list[Event], result: DeliveryResult) -> list[Event]:
        """Dead-letter the refused, count the delivered; return the events still pending."""
        refused = [
            (events[i], reason) for i, reason in sorted(result.rejected.items()) if i < len(events)
        ]
        if result.status is DeliveryStatus.RETRY:
            pending = (
                set(range(len(events))) - set(result.rejected)
                if result.pending is None
                else set(result.pending) - set(result.rejected)
            )
        else:
            pending = set()
        if refused:
            await self._dead_letter(refused)
            for _, reason in refused:
                metrics.DISCARDED.labels(sink=self.sink.name, reason=reason_label(reason)).inc()
            self.discarded += len(refused)
            log.error(
                "Sink refused events; they were written to the dead-letter file.",
                sink=self.sink.name,
                refused=len(refused),
                reason=redact(result.reason or refused[0][1]),
            )
        self._count_sent(len(events) - len(refused) - len(pending))
        return [events[i] for i in sorted(pending) if i < len(events)]

    async def _dead_letter(self, refused: list[tuple[Event, str]]) -> None:
        """Write ``refused`` to the dead-letter file; a :class:`SinkError` if impossible."""
        write = functools.partial(self.dead_letter.write, self.sink.name, refused)
        try:
            if self.executor is None:
                await asyncio.to_thread(write)
            else:
                await asyncio.get_running_loop().run_in_executor(self.executor, write)
        except OSError as exc:
            path = self.dead_letter.path(self.sink.name)
            reason = exc.strerror or str(exc)
            if exc.filename is not None and str(exc.filename) != str(path):
                reason = f"{reason}: {exc.filename}"  # e.g. a file where the folder should be
            msg = (
                f"sink {self.sink.name} refused {len(refused)} events and they cannot be "
                f"written to the dead-letter file {path}: "
                f"{reason}; they are neither delivered nor kept, so their pages "
                "are not acknowledged (make room or repair the folder, then restart)"
            )
            raise SinkError(msg) from exc

    def _count_sent(self, count: int) -> None:
        if count <= 0:
            return
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
        for future in futures:  # the first failure is raised; the others are known
            future.add_done_callback(handled)
        acknowledged = asyncio.ensure_future(_all(futures))
        acknowledged.add_done_callback(handled)  # its failure stops the lane (committer)
        return acknowledged


def handled(future: asyncio.Future[None]) -> None:
    """Mark ``future``'s error as seen: its owner reports it, not the garbage collector."""
    if not future.cancelled():
        future.exception()


async def _all(futures: list[asyncio.Future[None]]) -> None:
    for future in futures:
        await future
