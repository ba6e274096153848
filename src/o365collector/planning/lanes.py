"""The lanes of a stream: who reads which part of the timeline, how often, at what priority.

A stream is read by several lanes that share one dedup store, so a row or status change is
delivered once however many lanes see it:

- ``live`` (watermark, checkpointed): every new window a short settle delay behind now.
- ``resweep-N`` (bands, not checkpointed): the trailing horizon re-read on a schedule that
  gets sparser with age, delivering late rows and status changes within one period. Each
  band reaches one of its own periods past its upper age (``resweep-1h`` re-reads rows up
  to 1 h + 180 s old), so a row that changes just before leaving a band is still re-read
  within that band's period, not the next band's.
- ``final`` (watermark, checkpointed): every window once it is older than the oldest
  band's reach (the horizon plus that band's period: 26 h by default), so a status
  Microsoft shows between the horizon and then is still read. No lane reads a window after
  ``final``. It is also the backfill: on a new deployment it reads history from the
  configured start up to where ``live`` began.

With ``mode: fixed_delay`` only ``final`` runs, with the horizon set to the fixed delay:
the seeds' behaviour (read data once it is 25 hours old).
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass
from datetime import datetime, timedelta

from o365collector.windows import TimeWindow, floor_second


class Priority(enum.IntEnum):
    """Budget priority of a lane; lower goes first."""

    LIVE = 0
    RESWEEP = 1
    DETAIL = 2
    FINAL = 3


@dataclass(frozen=True, slots=True)
class WatermarkLane:
    """A checkpointed lane reading contiguous windows that end ``settle_secs`` behind now."""

    name: str
    priority: Priority
    settle_secs: float
    min_window_secs: float
    start: datetime | None = None  # first watermark; default: from initial_lookback_secs
    until: datetime | None = None  # a bounded lane (backfill) stops here


@dataclass(frozen=True, slots=True)
class BandLane:
    """A lane re-reading rows aged ``[min_age_secs, max_age_secs + every_secs)`` every period.

    The extra period is the band's reach: a row is in at least one sweep of this band after
    any change it shows while younger than ``max_age_secs``.
    """

    name: str
    priority: Priority
    min_age_secs: float
    max_age_secs: float
    every_secs: float

    def window(self, now: datetime) -> TimeWindow:
        """The band as of ``now`` (reach included), on whole seconds."""
        start = floor_second(now - timedelta(seconds=self.reach_secs))
        end = floor_second(now - timedelta(seconds=self.min_age_secs))
        return TimeWindow(start, end)

    @property
    def reach_secs(self) -> float:
        """The oldest age this band re-reads: its upper age plus one period."""
        return self.max_age_secs + self.every_secs


@dataclass(frozen=True, slots=True)
class Tier:
    """One re-sweep tier of the configuration: rows younger than ``max_age_secs``."""

    max_age_secs: float
    every_secs: float


def build_lanes(
    *,
    mode: str,
    settle_delay_secs: float,
    poll_interval_secs: float,
    horizon_secs: float,
    final_every_secs: float,
    tiers: list[Tier],
) -> list[WatermarkLane | BandLane]:
    """The lanes of a stream for ``mode`` (``fresh`` or ``fixed_delay``)."""
    if mode == "fixed_delay":
        return [WatermarkLane("final", Priority.FINAL, horizon_secs, final_every_secs)]
    lanes: list[WatermarkLane | BandLane] = [
        WatermarkLane("live", Priority.LIVE, settle_delay_secs, poll_interval_secs)
    ]
    low = settle_delay_secs
    for tier in sorted(tiers, key=lambda t: t.max_age_secs):
        high = min(tier.max_age_secs, horizon_secs)
        if high <= low:
            continue
        lanes.append(
            BandLane(f"resweep-{_age_label(high)}", Priority.RESWEEP, low, high, tier.every_secs)
        )
        low = high
    reach = max([horizon_secs, *(lane.reach_secs for lane in lanes if isinstance(lane, BandLane))])
    lanes.append(WatermarkLane("final", Priority.FINAL, reach, final_every_secs))
    return lanes


def final_age_secs(lanes: list[WatermarkLane | BandLane], default: float) -> float:
    """How old a window is before ``final`` reads it (``default`` without a ``final`` lane)."""
    for lane in lanes:
        if isinstance(lane, WatermarkLane) and lane.name == "final":
            return lane.settle_secs
    return default


def live_start(first_start: datetime, now: datetime, final_age: float) -> datetime:
    """Where ``live`` begins on a new deployment: where ``final`` stops, never before the start.

    Older history (``final_age`` seconds and more) is left to ``final`` (as backfill, at the
    lowest priority), so a new deployment delivers today's mail at once instead of after the
    whole backfill, and no span is read by both on the first day.
    """
    return max(first_start, floor_second(now - timedelta(seconds=final_age)))


def sweep_window(
    band: TimeWindow, *, oldest: datetime, final_mark: datetime | None, live_mark: datetime | None
) -> TimeWindow | None:
    """The part of a band's sweep that may hold rows or statuses not yet delivered.

    - Nothing before ``final``'s watermark: ``final`` has read it, or, on a stream's first
      run, it is older than ``initial_lookback_secs`` (only ``backfill`` reads that).
    - Nothing after ``live``'s watermark: that span is still ahead of ``live`` (a new
      deployment, or catching up), which will read it itself.
    - Nothing older than ``oldest`` (the API's retention).

    Returns ``None`` when nothing is left to sweep.
    """
    start = max(band.start, oldest, final_mark or band.start)
    end = min(band.end, live_mark or band.end)
    return TimeWindow(start, end) if start < end else None


def final_absorbs(
    final_mark: datetime, window: TimeWindow, read_started: datetime, final_age: float
) -> datetime | None:
    """The new ``final`` watermark when another lane's committed window needs no re-read.

    A window whose end was already ``final_age`` old when its read began holds only settled
    rows, so ``final`` need not read it again; it may skip it if it is contiguous
    with ``final``'s watermark. Returns ``None`` when nothing changes.
    """
    settled_by = read_started - timedelta(seconds=final_age)
    if window.end <= settled_by and window.start <= final_mark < window.end:
        return window.end
    return None


def _age_label(seconds: float) -> str:
    if seconds % 3600 == 0:
        return f"{math.floor(seconds / 3600)}h"
    if seconds % 60 == 0:
        return f"{math.floor(seconds / 60)}m"
    return f"{math.floor(seconds)}s"


def backfill_lane(start: datetime, until: datetime) -> WatermarkLane:
    """A one-off lane reading ``[start, until)`` at the lowest priority, resumable by name."""
    name = f"backfill:{start:%Y%m%dT%H%M%S}-{until:%Y%m%dT%H%M%S}"
    return WatermarkLane(name, Priority.FINAL, 0.0, 1.0, start=start, until=until)


BACKFILL_PREFIX = "backfill:"
_BACKFILL_STAMP = "%Y%m%dT%H%M%S"


def backfill_until(lane: str) -> datetime | None:
    """The end of a backfill lane's range, read from its name; ``None`` for other lanes."""
    if not lane.startswith(BACKFILL_PREFIX):
        return None
    _, _, until = lane.removeprefix(BACKFILL_PREFIX).partition("-")
    try:
        return datetime.strptime(f"{until}+0000", f"{_BACKFILL_STAMP}%z")  # names are UTC
    except ValueError:
        return None


def backfill_finished(lane: str, watermark: datetime | None) -> bool:
    """Whether ``lane`` is a backfill whose watermark reached the end of its range."""
    until = backfill_until(lane)
    return until is not None and watermark is not None and watermark >= until
