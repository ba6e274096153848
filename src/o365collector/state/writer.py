"""The pipeline's view of the state: every call runs off the event loop, on the state's threads.

A state call is a disk write (SQLite, with its fsync at checkpoints) or a network round
trip (PostgreSQL). Made on the event loop, it would stall every tenant's reads and every
sink for its duration. :class:`StateWriter` runs each call of a
:class:`~o365collector.state.store.StreamState` on its own thread pool and awaits it:

* SQLite gets one thread (``threads=1``): the one writer, calls applied in the order they
  were made, which is the order the committers await them. Dedup lookups
  (``seen_statuses``) run on a second thread, on SQLite's lookup connection: a page's
  lookup does not queue behind other pages' commits (with 100 tenants, pages waited
  there, parsed, for 3 of the 8 places of the page gate);
* a backend with a connection pool may get more, so that one stream's slow round trip
  does not wait behind another's; lookups share those threads. Each caller still awaits
  its own calls one by one, so a lane's commits stay in order.

A call the caller stops awaiting (its task cancelled) still completes on its thread: a
commit either happens whole or not at all, never half. :meth:`close` waits for calls
already started.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from concurrent.futures import Executor, ThreadPoolExecutor
from datetime import datetime
from typing import TypeVar

from o365collector.state.store import Checkpoint, LaneStep, StreamState
from o365collector.windows import TimeWindow

_T = TypeVar("_T")


class StateWriter:
    """Awaitable :class:`~o365collector.state.store.StreamState`, run on its own threads."""

    def __init__(
        self, store: StreamState, *, threads: int = 1, executor: Executor | None = None
    ) -> None:
        """Run ``store``'s calls on ``threads`` threads (1: in the order they are made).

        ``executor``: run them there instead (the caller's; it must keep their order, and
        it is not shut down here), e.g. inline on the loop's thread for a virtual clock.
        """
        self.store = store
        self._own = executor is None
        self._pool: Executor = executor or ThreadPoolExecutor(
            max_workers=threads, thread_name_prefix="state"
        )
        self._lookups: Executor = self._pool
        if executor is None and threads == 1:
            self._lookups = ThreadPoolExecutor(max_workers=1, thread_name_prefix="state-lookup")

    async def _call(self, fn: Callable[..., _T], *args: object, on: Executor | None = None) -> _T:
        """Run ``fn(*args)`` on the state's threads (``on``: those, the writer's by default)."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(on or self._pool, functools.partial(fn, *args))

    async def load(self, tenant: str, stream: str, lane: str) -> Checkpoint:
        """See :meth:`~o365collector.state.store.CheckpointStore.load`."""
        return await self._call(self.store.load, tenant, stream, lane)

    async def ensure_watermark(
        self, tenant: str, stream: str, lane: str, watermark: datetime, now: datetime
    ) -> datetime:
        """See :meth:`~o365collector.state.store.CheckpointStore.ensure_watermark`."""
        return await self._call(self.store.ensure_watermark, tenant, stream, lane, watermark, now)

    async def save_inflight(
        self,
        tenant: str,
        stream: str,
        window: TimeWindow,
        next_link: str,
        now: datetime,
        lane: str,
    ) -> None:
        """See :meth:`~o365collector.state.store.CheckpointStore.save_inflight`."""
        await self._call(self.store.save_inflight, tenant, stream, window, next_link, now, lane)

    async def commit_window(
        self, tenant: str, stream: str, window: TimeWindow, now: datetime, lane: str
    ) -> None:
        """See :meth:`~o365collector.state.store.CheckpointStore.commit_window`."""
        await self._call(self.store.commit_window, tenant, stream, window, now, lane)

    async def set_status(
        self, tenant: str, stream: str, state: str, error: str, now: datetime
    ) -> None:
        """See :meth:`~o365collector.state.store.StreamHealth.set_status`."""
        await self._call(self.store.set_status, tenant, stream, state, error, now)

    async def seen_statuses(self, row_keys: list[bytes]) -> dict[bytes, str]:
        """See :meth:`~o365collector.state.store.DedupStore.seen_statuses`."""
        return await self._call(self.store.seen_statuses, row_keys, on=self._lookups)

    async def remember(self, scope: str, facts: list[tuple[bytes, str, int]]) -> None:
        """See :meth:`~o365collector.state.store.DedupStore.remember`."""
        await self._call(self.store.remember, scope, facts)

    async def commit_page(
        self, scope: str, facts: list[tuple[bytes, str, int]], step: LaneStep | None
    ) -> None:
        """See :meth:`~o365collector.state.store.StreamState.commit_page`."""
        await self._call(self.store.commit_page, scope, facts, step)

    async def expire_seen(self, now_epoch: int, scope: str | None = None) -> int:
        """See :meth:`~o365collector.state.store.DedupStore.expire_seen`."""
        return await self._call(self.store.expire_seen, now_epoch, scope)

    def close(self) -> None:
        """Wait for the calls already started, then stop the threads (the store stays open)."""
        if self._own:
            self._pool.shutdown(wait=True)
            self._lookups.shutdown(wait=True)
