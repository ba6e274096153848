"""The one backoff policy: exponential with full jitter, Retry-After first, bounded in time."""

from __future__ import annotations

import random
from dataclasses import dataclass, field


@dataclass
class Backoff:
    """Delays for one operation's successive retries.

    ``next_delay`` returns ``None`` once ``max_elapsed_secs`` of waiting would be exceeded:
    the caller then gives up with an error that says how long it tried.
    """

    initial_interval_secs: float = 1.0
    multiplier: float = 2.0
    max_interval_secs: float = 60.0
    max_elapsed_secs: float = 900.0
    rng: random.Random = field(default_factory=random.Random)
    attempts: int = 0
    waited_secs: float = 0.0

    def next_delay(self, retry_after_secs: float | None = None) -> float | None:
        """Return how long to wait before the next attempt, or ``None`` to give up.

        Without ``Retry-After`` the delay is drawn uniformly from ``[0, cap]``, ``cap`` being
        ``min(max, initial * multiplier**attempts)``. A server's ``Retry-After`` is obeyed
        (it knows its quota) but never below ``cap / 2``: a server answering
        ``Retry-After: 0`` on every attempt would otherwise be asked again at once, forever,
        as no time would ever count toward ``max_elapsed_secs``.
        """
        cap = min(
            self.max_interval_secs,
            self.initial_interval_secs * self.multiplier ** min(self.attempts, 64),
        )
        if retry_after_secs is not None:
            delay = max(retry_after_secs, cap / 2)
        else:
            delay = self.rng.uniform(0.0, cap)
        if self.waited_secs + delay > self.max_elapsed_secs:
            return None
        self.attempts += 1
        self.waited_secs += delay
        return delay


def parse_retry_after(value: str | None) -> float | None:
    """Read a ``Retry-After`` header given in seconds; HTTP dates and junk give ``None``."""
    if value is None:
        return None
    try:
        seconds = float(value.strip())
    except ValueError:
        return None
    return seconds if seconds >= 0 else None
