"""Per-tenant request budget: a running window shared by every stream of the tenant."""

from __future__ import annotations

import asyncio
from collections import deque

from o365collector.clock import Clock


class RequestBudget:
    """Allow at most ``requests`` API calls in any ``window_secs``, and pause after a 429.

    The tenant's quota (Graph: 100 per 5 minutes) is shared with every other tool of the
    tenant, so the collector spends only its configured share and, when Microsoft still
    answers 429, stops for the whole ``Retry-After`` across all its streams.
    """

    def __init__(self, requests: int, window_secs: float, clock: Clock) -> None:
        """Create an empty budget."""
        self.requests = requests
        self.window_secs = window_secs
        self._clock = clock
        self._spent: deque[float] = deque()
        self._paused_until = 0.0
        self._lock = asyncio.Lock()
        self.throttled = 0
        self.used = 0

    async def acquire(self) -> None:
        """Wait until one request may be sent, then count it."""
        async with self._lock:
            while True:
                now = self._clock.monotonic()
                while self._spent and self._spent[0] <= now - self.window_secs:
                    self._spent.popleft()
                wait = self._paused_until - now
                if len(self._spent) >= self.requests:
                    wait = max(wait, self._spent[0] + self.window_secs - now)
                if wait <= 0:
                    self._spent.append(now)
                    self.used += 1
                    return
                await self._clock.sleep(wait)

    def in_window(self) -> int:
        """Requests counted in the current running window."""
        now = self._clock.monotonic()
        return sum(1 for t in self._spent if t > now - self.window_secs)

    def throttled_for(self, seconds: float) -> None:
        """Record a 429: no request of this tenant goes out for ``seconds``."""
        self.throttled += 1
        self._paused_until = max(self._paused_until, self._clock.monotonic() + seconds)
