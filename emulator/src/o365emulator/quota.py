"""Per-tenant running-window request quota (429 + Retry-After) and the request counters."""

from __future__ import annotations

import math
import threading
from collections import Counter, deque
from typing import Any


class TenantQuota:
    """Running window holding at most ``limit`` accepted requests per ``window_secs``.

    An accepted request occupies a slot for ``window_secs``. Throttled requests take no
    slot but are counted. All methods are thread-safe; times are epoch seconds.
    """

    def __init__(self, limit: int, window_secs: float) -> None:
        """Create an empty quota."""
        self.limit = limit
        self.window_secs = window_secs
        self._lock = threading.Lock()
        self._window: deque[float] = deque()
        self._accepted_times: list[float] = []
        self._throttled = 0
        self._by_status: Counter[int] = Counter()
        self._token_requests = 0
        self._rows_served = 0

    def admit(self, now: float) -> int | None:
        """Take a slot at ``now``; None when accepted, else Retry-After seconds (>= 1)."""
        with self._lock:
            window = self._window
            while window and window[0] <= now - self.window_secs:
                window.popleft()
            if len(window) >= self.limit:
                self._throttled += 1
                return max(1, math.ceil(window[0] + self.window_secs - now))
            window.append(now)
            self._accepted_times.append(now)
            return None

    def record(self, status: int, rows: int = 0) -> None:
        """Count a Graph response with HTTP ``status`` that carried ``rows`` rows."""
        with self._lock:
            self._by_status[status] += 1
            self._rows_served += rows

    def record_token(self) -> None:
        """Count a token endpoint request of this tenant."""
        with self._lock:
            self._token_requests += 1

    def snapshot(self) -> dict[str, Any]:
        """Counters as a JSON-ready dict.

        Returns:
            ``accepted``, ``throttled``, ``accepted_times`` (epoch seconds, ascending),
            ``by_status`` (HTTP status as string -> count), ``quota_requests``,
            ``quota_window_secs``, ``token_requests`` and ``rows_served``.
        """
        with self._lock:
            return {
                "accepted": len(self._accepted_times),
                "throttled": self._throttled,
                "accepted_times": list(self._accepted_times),
                "by_status": {str(k): v for k, v in sorted(self._by_status.items())},
                "quota_requests": self.limit,
                "quota_window_secs": self.window_secs,
                "token_requests": self._token_requests,
                "rows_served": self._rows_served,
            }
