"""One (tenant, stream): plan windows, read pages, hand them to the sinks, commit in order."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import structlog

from o365collector.clock import Clock
from o365collector.errors import RestartWindowError, UnavailableError
from o365collector.observability import metrics
from o365collector.pipeline.delivery import Dispatcher
from o365collector.pipeline.event import Event, event_id
from o365collector.pipeline.progress import StreamProgress
from o365collector.sources.base import WindowSource
from o365collector.state.sqlite import SqliteStateStore
from o365collector.windows import PlannerSettings, TimeWindow, plan_next_window

log = structlog.get_logger(__name__)

_DONE = None


@dataclass(frozen=True, slots=True)
class StreamIdentity:
    """Who this stream is: the tenant's label and id, and the stream name."""

    tenant: str
    tenant_id: str
    stream: str


class StreamWorker:
    """Reads one stream forever (or until caught up with ``once``), at least once.

    Pages are handed to the sinks as soon as they are read; a committer task awaits their
    acknowledgements in order and only then moves the checkpoint: after a page, the
    in-flight window's next link; after the last page, the watermark. Nothing commits in a
    ``finally``; whatever was not acknowledged is read again after a restart.
    """

    def __init__(
        self,
        identity: StreamIdentity,
        source: WindowSource,
        dispatcher: Dispatcher,
        store: SqliteStateStore,
        planner: PlannerSettings,
        *,
        initial_lookback_secs: float,
        clock: Clock,
        progress: StreamProgress,
        max_pages_in_flight: int = 4,
        unavailable_pause_secs: float = 30.0,
    ) -> None:
        """Wire one stream; call :meth:`run` in a task."""
        self.id = identity
        self.source = source
        self.dispatcher = dispatcher
        self.store = store
        self.planner = planner
        self.initial_lookback_secs = initial_lookback_secs
        self.clock = clock
        self.progress = progress
        self.unavailable_pause_secs = unavailable_pause_secs
        self._commits: asyncio.Queue[tuple[Awaitable[None], Callable[[], None]] | None] = (
            asyncio.Queue(max_pages_in_flight)
        )
        self._log = log.bind(tenant=identity.tenant, stream=identity.stream)

    async def run(self, stop: asyncio.Event, *, once: bool) -> None:
        """Collect until ``stop`` is set (or, with ``once``, until caught up), then drain.

        Raises:
            SourceError: a permanent refusal (credentials, permission, setup, bad query);
                everything acknowledged before it is committed first.
        """
        committer = asyncio.create_task(self._committer())
        try:
            await self._produce(stop, once=once)
        except asyncio.CancelledError:
            committer.cancel()
            raise
        except BaseException:
            await self._drain(committer)
            raise
        await self._drain(committer)

    async def _drain(self, committer: asyncio.Task[None]) -> None:
        """Let the committer apply every acknowledged page, then stop it."""
        await self._commits.put(_DONE)
        await committer

    async def _produce(self, stop: asyncio.Event, *, once: bool) -> None:
        checkpoint = self.store.load(self.id.tenant, self.id.stream)
        now = self.clock.now()
        cursor = checkpoint.watermark or (now - timedelta(seconds=self.initial_lookback_secs))
        self.progress.watermark = checkpoint.watermark
        resume: tuple[TimeWindow, str | None] | None = None
        if checkpoint.inflight is not None:
            resume = (checkpoint.inflight, checkpoint.next_link)
            self._log.info("Resuming the in-flight window.", window=str(checkpoint.inflight))
        while not stop.is_set():
            if resume is None:
                window = self._plan(cursor)
                if window is None:
                    if once:
                        break
                    continue_at = self._wait_secs(cursor)
                    self.progress.state = "waiting"
                    await _wait(stop, continue_at)
                    continue
                resume = (window, None)
            window, link = resume
            try:
                finished = await self._read_window(window, link, stop)
            except RestartWindowError as exc:
                self._log.warning("Reading the window again from its start.", reason=str(exc))
                resume = (window, None)
                continue
            except UnavailableError as exc:
                if once:
                    raise
                self.progress.state = "retrying"
                self.progress.error = str(exc)
                metrics.ERRORS.labels(stage="receiving", error_type="unavailable").inc()
                self._log.error(
                    "Microsoft API unavailable; the window will be read again.",
                    window=str(window),
                    reason=str(exc),
                    retry_in_secs=self.unavailable_pause_secs,
                )
                resume = (window, self._last_link or link)
                await _wait(stop, self.unavailable_pause_secs)
                continue
            if not finished:
                break  # stopped between pages; the next link is committed once acked
            resume = None
            cursor = window.end
        self.progress.state = "stopped"

    _last_link: str | None = None

    def _plan(self, cursor: datetime) -> TimeWindow | None:
        plan = plan_next_window(cursor, self.clock.now(), self.planner)
        if plan.clamped_secs > 0:
            metrics.RETENTION_CLAMPED.labels(tenant=self.id.tenant, stream=self.id.stream).inc(
                plan.clamped_secs
            )
            self._log.error(
                "Start is older than the API keeps; the oldest history was skipped.",
                skipped_secs=plan.clamped_secs,
                requested_start=cursor.isoformat(),
            )
        return plan.window

    def _wait_secs(self, cursor: datetime) -> float:
        return plan_next_window(cursor, self.clock.now(), self.planner).wait_secs or 1.0

    async def _read_window(self, window: TimeWindow, link: str | None, stop: asyncio.Event) -> bool:
        """Read the window's pages; False if stopped before its end."""
        self.progress.window = str(window)
        self.progress.state = "reading"
        self._last_link = link
        async for page in self.source.pages(window, link):
            events = [self._event(record) for record in page.records]
            metrics.RECEIVED.labels(tenant=self.id.tenant, stream=self.id.stream).inc(len(events))
            ack = await self.dispatcher.submit(events)
            self.progress.pages += 1
            if page.next_link is None:
                await self._commits.put((ack, self._window_done(window, len(events))))
                return True
            await self._commits.put((ack, self._page_done(window, page.next_link, len(events))))
            self._last_link = page.next_link
            if stop.is_set():
                return False
        return True

    def _event(self, record: dict[str, Any]) -> Event:
        trace_id, recipient, status = self.source.key_of(record)
        return Event(
            self.id.tenant,
            self.id.stream,
            event_id(self.id.tenant_id, self.id.stream, trace_id, recipient, status),
            record,
        )

    def _page_done(self, window: TimeWindow, next_link: str, count: int) -> Callable[[], None]:
        def apply() -> None:
            self.store.save_inflight(
                self.id.tenant, self.id.stream, window, next_link, self.clock.now()
            )
            self.progress.events += count

        return apply

    def _window_done(self, window: TimeWindow, count: int) -> Callable[[], None]:
        def apply() -> None:
            now = self.clock.now()
            self.store.commit_window(self.id.tenant, self.id.stream, window, now)
            self.progress.events += count
            self.progress.windows += 1
            self.progress.watermark = window.end
            metrics.COMMITS.labels(tenant=self.id.tenant, stream=self.id.stream).inc()
            metrics.CHECKPOINT_LAG.labels(tenant=self.id.tenant, stream=self.id.stream).set(
                (now - window.end).total_seconds()
            )
            self._log.info(
                "Window committed.", window=str(window), watermark=window.end.isoformat()
            )

        return apply

    async def _committer(self) -> None:
        while True:
            item = await self._commits.get()
            if item is _DONE:
                return
            ack, apply = item
            await ack
            apply()


async def _wait(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), timeout=max(0.0, seconds))
