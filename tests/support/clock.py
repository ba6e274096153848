"""The one fake clock of the test suite: the product's ``Clock`` protocol, moved by hand.

Time is ``t`` seconds after ``start``: ``now()`` is ``start + t`` and ``monotonic()`` is
``monotonic_start + t``. Nothing reads the wall clock.

``sleep`` has two behaviours, chosen per clock:

- ``sleep_advances=True`` (the default): ``sleep(s)`` records ``s`` in ``sleeps``, moves
  time forward by ``s`` at once and yields to the event loop, so code that waits runs
  through its waits instantly and deterministically.
- ``sleep_advances=False``: ``sleep(s)`` records ``s`` and parks the caller until
  ``advance``/``set`` moves time to or past its deadline, so a test can hold a waiter
  and watch what happens meanwhile. ``sleeping`` counts the parked callers.

The emulator takes a zero-argument callable returning the current time: pass
``clock.now``.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

EPOCH = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)


class FakeClock:
    """A ``Clock`` whose time moves only when told (or, by default, when something sleeps)."""

    def __init__(
        self,
        start: datetime = EPOCH,
        *,
        monotonic_start: float = 0.0,
        sleep_advances: bool = True,
    ) -> None:
        if start.tzinfo is None:
            raise ValueError("FakeClock needs a timezone-aware start")
        self._start = start
        self._monotonic_start = monotonic_start
        self._sleep_advances = sleep_advances
        self._parked: list[tuple[float, asyncio.Future[None]]] = []
        self.t = 0.0  # seconds since ``start``; tests may set it directly
        self.sleeps: list[float] = []

    def now(self) -> datetime:
        """The current time, timezone-aware."""
        return self._start + timedelta(seconds=self.t)

    def monotonic(self) -> float:
        """The monotonic reading: ``monotonic_start + t``."""
        return self._monotonic_start + self.t

    def advance(self, seconds: float = 0.0, **delta: float) -> None:
        """Move time forward: ``advance(5)``, ``advance(seconds=2)``, ``advance(hours=1)``."""
        self.t += seconds + (timedelta(**delta).total_seconds() if delta else 0.0)
        self._wake()

    def set(self, when: datetime) -> None:
        """Put the wall time at ``when`` (``monotonic()`` moves by the same amount)."""
        self.t = (when - self._start).total_seconds()
        self._wake()

    @property
    def sleeping(self) -> int:
        """How many callers are parked in ``sleep`` (only with ``sleep_advances=False``)."""
        return sum(1 for _, future in self._parked if not future.done())

    async def sleep(self, seconds: float) -> None:
        """Record ``seconds``, then advance at once or park until time reaches the deadline."""
        self.sleeps.append(seconds)
        if self._sleep_advances:
            self.t += max(0.0, seconds)
            await asyncio.sleep(0)
            return
        deadline = self.t + max(0.0, seconds)
        if deadline <= self.t:
            await asyncio.sleep(0)
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._parked.append((deadline, future))
        try:
            await future
        finally:
            self._parked = [(d, f) for d, f in self._parked if f is not future]

    def _wake(self) -> None:
        for deadline, future in self._parked:
            if deadline <= self.t and not future.done():
                future.set_result(None)
