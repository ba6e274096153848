"""The lanes of a stream: who reads which part of the timeline, how often, at what priority.

A stream is read by several lanes that share one dedup store, so a row or status change is
delivered once however many lanes see it:

- ``live`` (watermark, checkpointed): every new window a short settle delay behind now.
- ``resweep-N`` (bands, not checkpointed): the trailing horizon re-read on a schedule that
  gets sparser with age, delivering late rows and status changes within one period.
- ``final`` (watermark, checkpointed): every window once it is older than the horizon, when
  Microsoft will not change it any more. It is also the backfill: on a new deployment it
  reads history from the configured start up to where ``live`` began.

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
    """A lane re-reading rows aged ``[min_age_secs, max_age_secs)`` every ``every_secs``."""

    name: str
    priority: Priority
    min_age_secs: float
    max_age_secs: float
    every_secs: float

    def window(self, now: datetime) -> TimeWindow:
        """The band as of ``now``, on whole seconds."""
        start = floor_second(now - timedelta(seconds=self.max_age_secs))
        end = floor_second(now - timedelta(seconds=self.min_age_secs))
        return TimeWindow(start, end)


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
    final = WatermarkLane("final", Priority.FINAL, horizon_secs, final_every_secs)
    if mode == "fixed_delay":
        return [final]
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
    lanes.append(final)
    return lanes


def live_start(first_start: datetime, now: datetime, horizon_secs: float) -> datetime:
    """Where ``live`` begins on a new deployment: within the horizon, never before the start.

    Older history is left to ``final`` (as backfill, at the lowest priority), so a new
    deployment delivers today's mail at once instead of after the whole backfill.
    """
    return max(first_start, floor_second(now - timedelta(seconds=horizon_secs)))


def final_absorbs(
    final_mark: datetime, window: TimeWindow, read_started: datetime, horizon_secs: float
) -> datetime | None:
    """The new ``final`` watermark when another lane's committed window needs no re-read.

    A window whose end was already older than the horizon when its read began holds only
    settled rows, so ``final`` need not read it again; it may skip it if it is contiguous
    with ``final``'s watermark. Returns ``None`` when nothing changes.
    """
    settled_by = read_started - timedelta(seconds=horizon_secs)
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
