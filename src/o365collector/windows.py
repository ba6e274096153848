"""Time windows: the half-open interval type, its API encodings, and the window planner.

Every window is half-open, ``[start, end)``, with both ends on whole seconds. APIs whose
bounds are inclusive at both ends (Graph's ``ge``/``le``) receive ``end`` minus one tick of
100 ns, so consecutive windows neither overlap nor leave a gap at any precision the API
stores.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

_ONE_SECOND = timedelta(seconds=1)


def floor_second(moment: datetime) -> datetime:
    """Drop sub-second precision (the planner only cuts windows on whole seconds)."""
    return moment.replace(microsecond=0)


def to_utc(moment: datetime) -> datetime:
    """Return ``moment`` in UTC; naive values are taken as UTC (Microsoft's own convention)."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def iso_z(moment: datetime) -> str:
    """Format as ``YYYY-MM-DDThh:mm:ssZ`` (UTC, whole seconds)."""
    return to_utc(moment).strftime("%Y-%m-%dT%H:%M:%SZ")


def iso_z_last_tick(moment: datetime) -> str:
    """Format the last 100 ns tick before ``moment`` (a whole second) with 7 fractional digits."""
    before = to_utc(moment) - _ONE_SECOND
    return before.strftime("%Y-%m-%dT%H:%M:%S") + ".9999999Z"


def parse_iso(text: str) -> datetime:
    """Parse an ISO-8601 timestamp, with or without ``Z`` or an offset, as UTC.

    Python 3.11's :meth:`datetime.fromisoformat` reads ``Z``, offsets and any number of
    fractional digits, cut to the microsecond: Graph's and RWS's 7 digits (100 ns ticks,
    api-facts §1.4) need no trimming. Only a lower-case ``z`` is refused, so it is
    upper-cased first. Values without a zone are UTC (Microsoft's own convention).

    Raises:
        ValueError: ``text`` is not an ISO-8601 date or date and time.
    """
    value = text.strip()
    if value.endswith("z"):
        value = value[:-1] + "Z"
    return to_utc(datetime.fromisoformat(value))


@dataclass(frozen=True, slots=True)
class TimeWindow:
    """A half-open interval ``[start, end)`` of UTC time, both ends on whole seconds."""

    start: datetime
    end: datetime

    def __post_init__(self) -> None:
        """Reject empty, inverted or naive windows: they are always a bug upstream."""
        if self.start.tzinfo is None or self.end.tzinfo is None:
            raise ValueError("TimeWindow needs timezone-aware datetimes")
        if self.end <= self.start:
            raise ValueError(f"TimeWindow end {self.end} is not after start {self.start}")

    @property
    def seconds(self) -> float:
        """Length of the window in seconds."""
        return (self.end - self.start).total_seconds()

    def __str__(self) -> str:
        """Render as ``[start, end)`` in ISO form for logs."""
        return f"[{iso_z(self.start)}, {iso_z(self.end)})"

    def short(self) -> str:
        """A compact form for displays: ``11-22 05:20:01 → 05:20:31`` (UTC)."""
        head = self.start.strftime("%m-%d %H:%M:%S")
        tail = self.end.strftime(
            "%H:%M:%S" if self.end.date() == self.start.date() else "%m-%d %H:%M:%S"
        )
        return f"{head} → {tail}"


@dataclass(frozen=True, slots=True)
class WindowPlan:
    """The planner's answer: the next window to read, or how long to wait for one."""

    window: TimeWindow | None
    wait_secs: float = 0.0
    clamped_secs: float = 0.0  # span skipped because it fell out of the API's retention


@dataclass(frozen=True, slots=True)
class PlannerSettings:
    """The knobs of the fast pass, all in seconds."""

    settle_delay_secs: float
    max_window_secs: float
    min_window_secs: float
    retention_secs: float
    retention_margin_secs: float = 3600.0


def plan_next_window(watermark: datetime, now: datetime, settings: PlannerSettings) -> WindowPlan:
    """Return the next window after ``watermark`` that has settled by ``now``.

    The window starts at the watermark (clamped into the API's retention, minus a safety
    margin, in which case ``clamped_secs`` says how much was skipped), ends no later than
    ``now - settle_delay_secs`` and is at most ``max_window_secs`` long. When less than
    ``min_window_secs`` has settled, no window is returned and ``wait_secs`` says how long
    until one will be.
    """
    start = floor_second(to_utc(watermark))
    oldest = floor_second(now - timedelta(seconds=settings.retention_secs))
    oldest += timedelta(seconds=settings.retention_margin_secs)
    if oldest != floor_second(oldest):  # a fractional margin: stay on whole seconds, inside
        oldest = floor_second(oldest) + _ONE_SECOND
    clamped = 0.0
    if start < oldest:
        clamped = (oldest - start).total_seconds()
        start = oldest
    settled = floor_second(now - timedelta(seconds=settings.settle_delay_secs))
    end = min(floor_second(start + timedelta(seconds=settings.max_window_secs)), settled)
    if end <= start or (end - start).total_seconds() < settings.min_window_secs:
        shortest = timedelta(seconds=math.ceil(settings.min_window_secs))
        ready_at = start + shortest + timedelta(seconds=settings.settle_delay_secs)
        return WindowPlan(None, max(1.0, (ready_at - now).total_seconds()), clamped)
    return WindowPlan(TimeWindow(start, end), 0.0, clamped)
