"""Per-tenant request budget: a running window shared by every stream of the tenant."""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import math
from collections.abc import AsyncIterator

from o365collector.clock import Clock

_IN_FLIGHT = float("inf")
_RECHECK_SECS = 0.05
_ANSWERED, _GRANT = 0, 1  # a slot: [answered-at (inf while in flight), grant number]


class RequestBudget:
    """Allow at most ``requests`` API calls in any ``window_secs``, in priority order.

    The tenant's quota (Graph: 100 per 5 minutes) is shared with every other tool of the
    tenant, so the collector spends only its configured share:

    - Waiting requests are served lowest ``priority`` first (live reads before re-sweeps
      before backfill), and requests at ``background_priority`` or above may use only
      ``1 - reserve_share`` of the budget, keeping room for fresh reads.
    - A 429 stops every request of the tenant for its whole ``Retry-After`` and lowers the
      limit by a quarter (other tools are spending the quota); each window without a 429
      gives a tenth of the configured budget back. A fractional limit allows its whole
      part (6 × 0.75 = 4.5: 4 requests), never less than one. The 429s of requests that
      were all sent before the last lowering are one burst: they lower the limit once.
    - A request counts from when it is sent until ``window_secs`` after its answer:
      Microsoft counts it on arrival, in between, so no slot frees early on its side. A
      request cancelled while it waits takes no slot; one cancelled after its slot was
      granted but before it was sent gives the slot back at once.
    - ``per_second``, when given, also spaces requests at least ``1 / per_second`` apart:
      a cap on top of the window (Devo's ``requests_per_second``).
    """

    def __init__(
        self,
        requests: int,
        window_secs: float,
        clock: Clock,
        *,
        reserve_share: float = 0.25,
        background_priority: int = 3,
        per_second: float | None = None,
    ) -> None:
        """Create an empty budget (``per_second``: see the class)."""
        self.requests = requests
        self.spacing_secs = 1.0 / per_second if per_second else 0.0
        self._last_grant = -float("inf")
        self.window_secs = window_secs
        self.reserve_share = reserve_share
        self.background_priority = background_priority
        self.limit = float(requests)
        self._clock = clock
        self._spent: list[list[float]] = []  # [answered-at, grant number]; see _ANSWERED
        self._paused_until = 0.0
        self._last_throttle = -float("inf")
        self._granted = 0  # grants ever made: the last grant's number
        self._last_answered = 0  # grant number of the request answered last (0: none yet)
        self._lowered_after = -1  # grants made when the limit was last lowered (-1: never)
        self._last_recovery = clock.monotonic()
        self._waiters: list[tuple[int, int, asyncio.Future[list[float]]]] = []
        self._order = itertools.count()
        self._pump_task: asyncio.Task[None] | None = None
        self._pump_priority: int | None = None  # priority the sleeping pump waits for
        self.throttled = 0
        self.used = 0

    @contextlib.asynccontextmanager
    async def spend(self, priority: int = 0) -> AsyncIterator[None]:
        """Wait for a slot, hold it while the request runs, and start its window at the answer."""
        slot = await self._acquire(priority)
        try:
            yield
        finally:
            slot[_ANSWERED] = self._clock.monotonic()
            self._last_answered = int(slot[_GRANT])

    async def _acquire(self, priority: int) -> list[float]:
        future: asyncio.Future[list[float]] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._waiters, (priority, next(self._order), future))
        waiting_for = self._pump_priority
        if self._pump_task is None or self._pump_task.done():
            self._pump_task = asyncio.create_task(self._pump())
        elif waiting_for is not None and priority < waiting_for:
            # The pump sleeps for a lower-priority request that may wait longer (the
            # reserve); restart it so this one is considered now.
            self._pump_task.cancel()
            self._pump_task = asyncio.create_task(self._pump())
        try:
            return await future
        except asyncio.CancelledError:
            if future.done() and not future.cancelled():
                self._give_back(future.result())  # granted, never sent
            raise

    def _give_back(self, slot: list[float]) -> None:
        """Forget a granted slot whose request was never sent: Microsoft never counted it."""
        self._spent = [entry for entry in self._spent if entry is not slot]
        self.used -= 1

    async def _pump(self) -> None:
        """Grant slots to waiters in priority order as the window allows."""
        while self._waiters:
            priority, _, future = self._waiters[0]
            if future.done():
                heapq.heappop(self._waiters)
                continue
            wait = self._wait_for(priority)
            if wait > 0:
                self._pump_priority = priority
                try:
                    await self._clock.sleep(wait)
                finally:
                    self._pump_priority = None
                continue
            heapq.heappop(self._waiters)
            self._last_grant = self._clock.monotonic()
            self.used += 1
            self._granted += 1
            slot = [_IN_FLIGHT, float(self._granted)]
            self._spent.append(slot)
            future.set_result(slot)

    def _wait_for(self, priority: int) -> float:
        now = self._clock.monotonic()
        self._recover(now)
        self._expire(now)
        wait = max(self._paused_until, self._last_grant + self.spacing_secs) - now
        share = 1.0 - self.reserve_share if priority >= self.background_priority else 1.0
        allowed = max(1, math.floor(self.limit * share))  # whole requests only
        if len(self._spent) >= allowed:
            ranked = sorted(entry[_ANSWERED] for entry in self._spent)
            oldest = ranked[len(self._spent) - allowed]
            free_at = oldest + self.window_secs if oldest != _IN_FLIGHT else now + _RECHECK_SECS
            wait = max(wait, free_at - now)
        return wait

    def _expire(self, now: float) -> None:
        if any(entry[_ANSWERED] <= now - self.window_secs for entry in self._spent):
            self._spent = [e for e in self._spent if e[_ANSWERED] > now - self.window_secs]

    def _recover(self, now: float) -> None:
        if self.limit >= self.requests:
            return
        if now - max(self._last_throttle, self._last_recovery) >= self.window_secs:
            self.limit = min(float(self.requests), self.limit + max(1.0, self.requests / 10))
            self._last_recovery = now

    def in_window(self) -> int:
        """Requests counted in the current running window (in flight included)."""
        self._expire(self._clock.monotonic())
        return len(self._spent)

    def throttled_for(self, seconds: float) -> None:
        """Record a 429: nothing goes out for ``seconds`` and the limit drops by a quarter.

        Call it as the 429 arrives, before awaiting anything (as ``ApiClient`` does): the
        429 is taken to answer the request whose slot was released last. If that request
        was granted before the limit was last lowered, its 429 is part of the same burst
        (every request in flight then meets the same exhausted quota) and the limit stays.
        """
        now = self._clock.monotonic()
        self.throttled += 1
        self._paused_until = max(self._paused_until, now + seconds)
        if self._last_answered > self._lowered_after:
            self.limit = max(1.0, self.limit * 0.75)
            self._lowered_after = self._granted
        self._last_throttle = now
