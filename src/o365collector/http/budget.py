"""Per-tenant request budget: a running window shared by every stream of the tenant."""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import AsyncIterator

from o365collector.clock import Clock

_IN_FLIGHT = float("inf")


class RequestBudget:
    """Allow at most ``requests`` API calls in any ``window_secs``, and pause after a 429.

    The tenant's quota (Graph: 100 per 5 minutes) is shared with every other tool of the
    tenant, so the collector spends only its configured share and, when Microsoft still
    answers 429, stops for the whole ``Retry-After`` across all its streams.

    A request is counted from when it is sent until ``window_secs`` after its answer came
    back: Microsoft counts it when it arrives, somewhere in between, so timing the window
    from the answer never lets a slot free up early on the server's side.
    """

    def __init__(self, requests: int, window_secs: float, clock: Clock) -> None:
        """Create an empty budget."""
        self.requests = requests
        self.window_secs = window_secs
        self._clock = clock
        self._spent: deque[list[float]] = deque()  # [answered-at]; inf while in flight
        self._paused_until = 0.0
        self._lock = asyncio.Lock()
        self.throttled = 0
        self.used = 0

    @contextlib.asynccontextmanager
    async def spend(self) -> AsyncIterator[None]:
        """Wait for a slot, hold it while the request runs, and start its window at the answer."""
        slot = await self._acquire()
        try:
            yield
        finally:
            slot[0] = self._clock.monotonic()

    async def _acquire(self) -> list[float]:
        async with self._lock:
            while True:
                now = self._clock.monotonic()
                self._expire(now)
                wait = self._paused_until - now
                if len(self._spent) >= self.requests:
                    oldest = min(entry[0] for entry in self._spent)
                    wait = max(wait, oldest + self.window_secs - now)
                    if oldest == _IN_FLIGHT:
                        wait = max(wait, 0.05)  # an answer is due; look again shortly
                if wait <= 0:
                    slot = [_IN_FLIGHT]
                    self._spent.append(slot)
                    self.used += 1
                    return slot
                await self._clock.sleep(wait)

    def _expire(self, now: float) -> None:
        kept = [entry for entry in self._spent if entry[0] > now - self.window_secs]
        if len(kept) != len(self._spent):
            self._spent = deque(kept)

    def in_window(self) -> int:
        """Requests counted in the current running window (in flight included)."""
        self._expire(self._clock.monotonic())
        return len(self._spent)

    def throttled_for(self, seconds: float) -> None:
        """Record a 429: no request of this tenant goes out for ``seconds``."""
        self.throttled += 1
        self._paused_until = max(self._paused_until, self._clock.monotonic() + seconds)
