"""A process-wide limit on pages in memory: from their answer until every sink has them.

A page of 5,000 rows costs several MiB from its body to its encoded lines. Without a limit,
every lane of every tenant may hold one while it waits for room in the sinks' queues, and
each sink queue holds more, so memory grows with the number of tenants. A page takes its
place once its answer's headers came, before its body is read (``ApiClient``), and gives it
back when every sink acknowledged the page's events and the page was committed (or at once
if the page brings none, or if the request failed). Waiting lanes are served by budget
priority: live reads before re-sweeps before history.

The requests are bounded apart, by a second gate of this class (``max_requests_in_flight``):
a request waiting for Microsoft holds no page's place, so a small page limit does not
throttle many tenants behind a slow network. A page request is not sent while the page
gate is full (:meth:`PageGate.wait_for_room`): its answer would wait, unread, for a place.

The place is a value, a :class:`Permit`, that travels with the page: the request returns
it with the body (``ApiClient.get_page``), the source puts it on the ``Page`` it yields,
and the lane ties its release to the page's acknowledgement. Whoever holds a permit
releases it; nothing is looked up by task.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools


class Permit:
    """One page's place in memory; :meth:`release` is idempotent."""

    __slots__ = ("_gate",)

    def __init__(self, gate: PageGate | None = None) -> None:
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

    async def acquire(self, priority: int = 0) -> Permit:
        """Wait for a place for a page about to be requested; the caller owns the permit.

        ``priority``: lower is served first among waiters (then first come, first served).
        """
        if self.limit is None:
            return Permit(None)
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
        return Permit(self)

    async def wait_for_room(self, priority: int = 0) -> None:
        """Wait, in ``priority`` order with the acquirers, until a place is free; take none."""
        (await self.acquire(priority)).release()

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
