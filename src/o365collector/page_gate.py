"""A process-wide limit on pages in memory: from their request until every sink has them.

A page of 5,000 rows costs several MiB from its body to its encoded lines. Without a limit,
every lane of every tenant may hold one while it waits for room in the sinks' queues, and
each sink queue holds more, so memory grows with the number of tenants. The gate is taken
right before a page's request is sent (after the tenant's budget slot, so a throttled
tenant never holds one), by the task reading the page, and released when every sink
acknowledged the page's events (or at once if the page brings none, or if the request
failed). Waiting lanes are served by budget priority: live reads before re-sweeps before
history.

A task holds at most one permit that it has not handed to a page yet: a source that needs
several requests for one page (retries, a token renewal) takes one permit for all of them.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools


class Permit:
    """One page's place in memory; :meth:`release` is idempotent."""

    __slots__ = ("_gate",)

    def __init__(self, gate: PageGate | None) -> None:
        """A permit of ``gate`` (``None``: a permit that holds nothing)."""
        self._gate = gate

    def release(self, _: object = None) -> None:
        """Give the place back (usable as a future's done callback)."""
        gate, self._gate = self._gate, None
        if gate is not None:
            gate._release_one()


class PageGate:
    """At most ``limit`` pages in memory across the process (``None``: no limit)."""

    def __init__(self, limit: int | None) -> None:
        """Create the gate; permits are counted from the first :meth:`acquire`."""
        self.limit = limit
        self.in_use = 0
        self._waiters: list[tuple[int, int, asyncio.Future[None]]] = []
        self._order = itertools.count()
        self._held: dict[asyncio.Task[object] | None, Permit] = {}

    async def acquire(self, priority: int = 0) -> None:
        """Take a place for the page this task is about to request (no-op if it has one)."""
        task = asyncio.current_task()
        if task in self._held:
            return
        if self.limit is None:
            self._held[task] = Permit(None)
            return
        if self.in_use < self.limit and not self._waiters:
            self.in_use += 1
        else:
            future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            heapq.heappush(self._waiters, (priority, next(self._order), future))
            try:
                await future  # granted: the releaser handed its place over
            except asyncio.CancelledError:
                if future.done() and not future.cancelled():
                    self._release_one()  # granted but no longer wanted
                raise
        self._held[task] = Permit(self)

    def claim(self) -> Permit:
        """The permit this task holds, now owned by the caller (a no-op permit if none)."""
        return self._held.pop(asyncio.current_task(), None) or Permit(None)

    def release_mine(self) -> None:
        """Release this task's unclaimed permit, if any (a failed or abandoned request)."""
        permit = self._held.pop(asyncio.current_task(), None)
        if permit is not None:
            permit.release()

    @property
    def waiting(self) -> int:
        """How many requests wait for a place."""
        return sum(1 for _, _, future in self._waiters if not future.done())

    def _release_one(self) -> None:
        while self._waiters:
            _, _, future = heapq.heappop(self._waiters)
            if not future.done():
                future.set_result(None)  # the place passes to the waiter: in_use unchanged
                return
        self.in_use -= 1
