"""One (tenant, stream): run its lanes side by side over one dedup store.

See :mod:`o365collector.planning.lanes` for what each lane reads. Watermark lanes resume
from their checkpoint (mid-window from the stored next link); band lanes re-read their
band every period. A permanent failure in any lane stops the stream's lanes and is raised
after every acknowledged page was committed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta

from o365collector.errors import RestartWindowError, UnavailableError
from o365collector.observability import metrics
from o365collector.pipeline.lane import (
    MAX_PAGES_IN_FLIGHT,
    LaneContext,
    StreamIdentity,
    WindowReader,
    wait_or_stop,
)
from o365collector.planning.lanes import (
    BandLane,
    WatermarkLane,
    final_absorbs,
    live_start,
    sweep_window,
)
from o365collector.planning.plan import StreamPlan
from o365collector.state.writer import StateWriter
from o365collector.windows import PlannerSettings, TimeWindow, floor_second, plan_next_window

__all__ = ["StreamIdentity", "StreamWorker"]

_EXPIRE_EVERY = timedelta(minutes=10)


class StreamWorker:
    """Runs every lane of one stream until stopped (or, with ``once``, caught up)."""

    def __init__(self, ctx: LaneContext, store: StateWriter, plan: StreamPlan) -> None:
        """Wire one stream; call :meth:`run` in a task."""
        self.ctx = ctx
        self.id = ctx.identity
        self.progress = ctx.progress
        self.store = store
        self.plan = plan
        self._marks: dict[str, datetime] = {}
        self._has_live = any(lane.name == "live" for lane in plan.lanes)
        self._last_expiry: datetime | None = None
        self._healthy = False
        # Set before a run that follows a takeover: the previous owner may have delivered
        # the first pages of each lane without committing them (counted, see lane.py).
        self.after_takeover = False

    async def run(self, stop: asyncio.Event, *, once: bool) -> None:
        """Run all lanes; the first permanent failure stops the others and is raised."""
        self._healthy = False
        await self._init_marks()
        suspect_pages = 0
        if self.after_takeover:
            self.after_takeover = False  # a retry after a failure resumes its own commits
            suspect_pages = MAX_PAGES_IN_FLIGHT + 1
        lane_stop = asyncio.Event()
        relay = asyncio.create_task(_relay(stop, lane_stop))
        ident = self.ctx.identity
        tasks = [
            asyncio.create_task(
                self._run_lane(lane, lane_stop, once, suspect_pages),
                name=f"lane {lane.name} of {ident.tenant}/{ident.stream}",
            )
            for lane in self.plan.lanes
        ]
        self.progress.state = "reading"
        try:
            first_error: BaseException | None = None
            for future in asyncio.as_completed(tasks):
                try:
                    await future
                except asyncio.CancelledError:
                    raise
                except Exception as exc:  # noqa: BLE001 - re-raised below after the others stop
                    if first_error is None:
                        first_error = exc
                        lane_stop.set()
            if first_error is not None:
                raise first_error
        except asyncio.CancelledError:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            raise
        finally:
            relay.cancel()
            self.progress.state = "stopped"

    async def _init_marks(self) -> None:
        now = self.ctx.clock.now()
        first = floor_second(now - timedelta(seconds=self.plan.initial_lookback_secs))
        for lane in self.plan.lanes:
            if not isinstance(lane, WatermarkLane):
                continue
            start = lane.start or first
            if lane.name == "live":
                start = live_start(first, now, self.plan.final_age_secs)
            self._marks[lane.name] = await self.store.ensure_watermark(
                self.id.tenant, self.id.stream, lane.name, start, now
            )
        self.progress.watermark = self._marks.get("live") or self._marks.get("final")

    async def _run_lane(
        self,
        lane: WatermarkLane | BandLane,
        stop: asyncio.Event,
        once: bool,
        suspect_pages: int = 0,
    ) -> None:
        # `final` remembers what it delivers within `remember_secs` (a band may still be
        # sweeping that window) and forgets older history, which no lane reads again.
        forget = self.plan.remember_secs if lane.name == "final" else None
        reader = WindowReader(
            self.ctx,
            lane.name,
            lane.priority,
            forget_older_than_secs=forget,
            suspect_pages=suspect_pages,
        )
        reader.start()
        try:
            if isinstance(lane, WatermarkLane):
                await self._watermark_loop(lane, reader, stop, once)
            else:
                await self._band_loop(lane, reader, stop, once)
        except asyncio.CancelledError:
            reader.cancel()
            raise
        except BaseException:
            await reader.drain()
            raise
        await reader.drain()

    async def _watermark_loop(
        self, lane: WatermarkLane, reader: WindowReader, stop: asyncio.Event, once: bool
    ) -> None:
        checkpoint = await self.store.load(self.id.tenant, self.id.stream, lane.name)
        resume: tuple[TimeWindow, str | None] | None = None
        if checkpoint.inflight is not None:
            resume = (checkpoint.inflight, checkpoint.next_link)
            reader.log.info("Resuming the in-flight window.", window=str(checkpoint.inflight))
        settings = PlannerSettings(
            settle_delay_secs=lane.settle_secs,
            max_window_secs=self.plan.max_window_secs,
            min_window_secs=lane.min_window_secs,
            retention_secs=self.plan.retention_secs,
        )
        while not stop.is_set():
            if resume is None:
                await self._expire_dedup()
                window, wait = self._next_window(lane, settings, reader)
                if window is None:
                    if once or (lane.until is not None and self._marks[lane.name] >= lane.until):
                        break
                    await wait_or_stop(stop, wait)
                    continue
                resume = (window, None)
            window, link = resume
            started = self.ctx.clock.now()
            if lane.name == "live":
                self.progress.window = window.short()
            try:
                finished = await reader.read(
                    window,
                    link,
                    stop,
                    checkpoint=True,
                    on_window=self._on_window(lane.name, window, started),
                )
            except RestartWindowError as exc:
                reader.log.warning("Reading the window again from its start.", reason=str(exc))
                resume = (window, None)
                continue
            except UnavailableError as exc:
                if once:
                    raise
                self._unavailable(reader, window, exc)
                resume = (window, reader.last_link or link)
                await wait_or_stop(stop, self.plan.unavailable_pause_secs)
                continue
            if not finished:
                return
            resume = None
            self._marks[lane.name] = max(self._marks.get(lane.name, window.end), window.end)

    def _next_window(
        self, lane: WatermarkLane, settings: PlannerSettings, reader: WindowReader
    ) -> tuple[TimeWindow | None, float]:
        now = self.ctx.clock.now()
        plan = plan_next_window(self._marks[lane.name], now, settings)
        if plan.clamped_secs > 0:
            metrics.RETENTION_CLAMPED.labels(tenant=self.id.tenant, stream=self.id.stream).inc(
                plan.clamped_secs
            )
            reader.log.error(
                "Start is older than the API keeps; the oldest history was skipped.",
                skipped_secs=plan.clamped_secs,
                requested_start=self._marks[lane.name].isoformat(),
            )
        window = plan.window
        if lane.until is not None and window is not None:
            if window.start >= lane.until:
                return None, 0.0
            window = TimeWindow(window.start, min(window.end, lane.until))
        if window is not None and lane.name == "final" and self._has_live:
            # Never read ahead of `live`: it will read that span itself, and the span
            # becomes final's to re-read only once it is older than the horizon.
            live = self._marks["live"]
            if live <= window.start:
                return None, lane.min_window_secs
            if live < window.end:
                window = TimeWindow(window.start, live)
        return window, plan.wait_secs

    def _on_window(
        self, lane: str, window: TimeWindow, started: datetime
    ) -> Callable[[], Awaitable[None]]:
        """What follows the commit of the window's last page (which moved its watermark)."""

        async def apply() -> None:
            now = self.ctx.clock.now()
            metrics.COMMITS.labels(tenant=self.id.tenant, stream=self.id.stream).inc()
            metrics.LANE_WATERMARK_LAG.labels(
                tenant=self.id.tenant, stream=self.id.stream, lane=lane
            ).set((now - window.end).total_seconds())
            self.progress.lane_marks[lane] = window.end
            if not self._healthy:
                self._healthy = True
                self.progress.error = ""
                await self.store.set_status(self.id.tenant, self.id.stream, "ok", "", now)
                metrics.STREAM_UP.labels(tenant=self.id.tenant, stream=self.id.stream).set(1)
            if lane == "live" or not self._has_live:
                self.progress.watermark = window.end
                self.progress.windows += 1
                metrics.CHECKPOINT_LAG.labels(tenant=self.id.tenant, stream=self.id.stream).set(
                    (now - window.end).total_seconds()
                )
            if lane != "final" and "final" in self._marks:
                absorbed = final_absorbs(
                    self._marks["final"], window, started, self.plan.final_age_secs
                )
                if absorbed is not None:
                    skipped = TimeWindow(self._marks["final"], absorbed)
                    await self.store.commit_window(
                        self.id.tenant, self.id.stream, skipped, now, "final"
                    )
                    # `final` may have moved on while the commit was written (never back).
                    self._marks["final"] = max(self._marks["final"], absorbed)

        return apply

    async def _band_loop(
        self, lane: BandLane, reader: WindowReader, stop: asyncio.Event, once: bool
    ) -> None:
        clock = self.ctx.clock
        oldest = timedelta(seconds=self.plan.retention_secs - 3600)
        while not stop.is_set():
            started = clock.monotonic()
            now = clock.now()
            window = sweep_window(
                lane.window(now),
                oldest=floor_second(now - oldest),
                final_mark=self._marks.get("final"),
                live_mark=self._marks.get("live"),
            )
            if window is None:
                if once:
                    return
                await wait_or_stop(stop, lane.every_secs - (clock.monotonic() - started))
                continue
            try:
                await reader.read(
                    window, None, stop, checkpoint=False, on_window=self._on_sweep(lane)
                )
            except UnavailableError as exc:
                if once:
                    raise
                self._unavailable(reader, window, exc)
            if once:
                return
            await wait_or_stop(stop, lane.every_secs - (clock.monotonic() - started))

    def _on_sweep(self, lane: BandLane) -> Callable[[], Awaitable[None]]:
        async def apply() -> None:
            metrics.RESWEEP_COMPLETED.labels(
                tenant=self.id.tenant, stream=self.id.stream, lane=lane.name
            ).set(self.ctx.clock.now().timestamp())

        return apply

    def _unavailable(self, reader: WindowReader, window: TimeWindow, exc: Exception) -> None:
        self.progress.error = str(exc)
        metrics.ERRORS.labels(stage="receiving", error_type="unavailable").inc()
        reader.log.error(
            "Microsoft API unavailable; the window will be read again.",
            window=str(window),
            reason=str(exc),
            retry_in_secs=self.plan.unavailable_pause_secs,
        )

    async def _expire_dedup(self) -> None:
        """Forget this stream's facts that no lane can read again.

        A fact of a window expires ``remember_secs`` after the window's end, and not before
        ``final`` has passed the window: after an outage longer than that, ``final`` still
        has to read what ``live`` delivered before it.
        """
        now = self.ctx.clock.now()
        if self._last_expiry is None or now - self._last_expiry >= _EXPIRE_EVERY:
            self._last_expiry = now
            cutoff = now
            final = self._marks.get("final")
            if final is not None:
                cutoff = min(now, final + timedelta(seconds=self.plan.remember_secs))
            await self.store.expire_seen(int(cutoff.timestamp()), self.ctx.dedup.scope)


async def _relay(source: asyncio.Event, target: asyncio.Event) -> None:
    await source.wait()
    target.set()
