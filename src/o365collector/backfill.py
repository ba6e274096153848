"""``o365collector backfill``: read a past period once, showing its progress and ETA."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TextIO

from rich.console import Console

from o365collector.app import Collector, RunOptions
from o365collector.config.model import Settings, TenantSettings
from o365collector.errors import ConfigError
from o365collector.observability.progress import Progress as StreamProgress
from o365collector.observability.progress import StreamProgress as ProgressOf
from o365collector.observability.redact import redact
from o365collector.planning.lanes import backfill_lane
from o365collector.planning.plan import stream_plan
from o365collector.run_summary import Goal, ProgressDisplay, Tracker, watched
from o365collector.selection import configured_streams, require_stream
from o365collector.windows import PlannerSettings, floor_second, parse_iso, plan_next_window

_DAY_SECS = 86400.0
_START_SLACK = timedelta(minutes=1)  # from this check to the first window being planned
_SUGGESTION_SLACK = timedelta(minutes=5)  # time to copy the suggested --from and run again
_SUGGESTION_STEP_SECS = 900  # suggest a quarter hour: easy to read and type


@dataclass(frozen=True, slots=True)
class RetentionLimit:
    """How far back one stream can be read: its retention and the oldest allowed start."""

    stream: str
    retention_days: float
    oldest: datetime


def parse_range(start: str, end: str, now: datetime) -> tuple[datetime, datetime]:
    """Validate ``--from``/``--to``: UTC, start before end, end not in the future.

    Raises:
        ConfigError: with the value and the rule it breaks.
    """
    try:
        begin, finish = floor_second(parse_iso(start)), floor_second(parse_iso(end))
    except ValueError as exc:
        msg = f"--from/--to: not an ISO 8601 time ({exc}); e.g. 2026-11-01T00:00:00Z"
        raise ConfigError(msg) from None
    if finish <= begin:
        raise ConfigError(f"--to ({end}) must be after --from ({start})")
    if finish > now:
        raise ConfigError(f"--to ({end}) is in the future; Microsoft refuses future windows")
    return begin, finish


def run_backfill(
    settings: Settings,
    *,
    start: str,
    end: str,
    tenant: str | None,
    stream: str | None,
    relog: Callable[[TextIO], None] | None = None,
) -> int:
    """Read ``[start, end)`` for the selected streams once; return the exit status.

    Shows a progress bar per stream on a terminal, plain ``progress:`` lines when stderr is
    piped (see :mod:`o365collector.run_summary`); ``relog(stream)`` points the logs at the
    bar's console meanwhile.

    Raises:
        ConfigError: a bad range, tenant or stream, or a start older than a selected
            stream keeps; nothing was requested from Microsoft then.
    """
    moment = datetime.now(UTC)
    begin, finish = parse_range(start, end, moment)
    tenants = [t for t in settings.tenants if tenant is None or t.label == tenant]
    if not tenants:
        raise ConfigError(f"--tenant {tenant!r}: no such tenant in the config")
    if stream is not None:
        require_stream(stream, tenants)
    limits = retention_limits(settings, tenants, stream, moment)
    check_retention(begin, limits)
    lane = backfill_lane(begin, finish)
    progress = StreamProgress()
    collector = Collector(
        settings.model_copy(update={"tenants": tenants}),
        RunOptions(once=True),
        progress=progress,
        lanes=[lane],
        streams=None if stream is None else {stream},
    )
    console = Console(stderr=True)
    windows = {
        name: stream_plan(settings.collection, chosen).max_window_secs
        for name, chosen in configured_streams(tenants).items()
    }

    def goal(p: ProgressOf) -> Goal:
        return Goal({lane.name: finish}, windows.get(p.stream, 86400.0), start=begin)

    tracker = Tracker(progress, goal)
    display = ProgressDisplay(console)
    heading = f"Backfill {_iso(begin)} → {_iso(finish)}"
    if display.plain:
        console.out(f"backfill: {_iso(begin)} to {_iso(finish)}", highlight=False)
    else:
        console.print(heading, highlight=False)
    result = asyncio.run(watched(collector.run(), tracker, display, relog))
    for failure in result.failures:
        console.out(f"o365collector: error: {redact(failure)}", highlight=False)
    events = sum(p.events for p in progress.streams.values())
    if result.exit_code == 0:
        console.out(f"Backfill complete: {events:,} new events delivered.", highlight=False)
    return result.exit_code


def retention_limits(
    settings: Settings, tenants: Sequence[TenantSettings], stream: str | None, now: datetime
) -> list[RetentionLimit]:
    """The retention limit of each selected stream (``stream``, or all of ``tenants``').

    The oldest start is the planner's a minute from ``now``, so that a start accepted
    here is not clamped by the time the backfill plans its first window.
    """
    entries = configured_streams(tenants)
    names = [stream] if stream is not None else list(entries)
    limits = []
    for name in names:
        chosen = entries[name]
        plan = stream_plan(settings.collection, chosen)
        spec = chosen.report
        retention = spec.retention_secs if spec is not None else plan.retention_secs
        oldest = oldest_readable_start(plan.retention_secs, now + _START_SLACK)
        limits.append(RetentionLimit(name, retention / _DAY_SECS, oldest))
    return limits


def oldest_readable_start(retention_secs: float, now: datetime) -> datetime:
    """The oldest start the window planner reads at ``now``: retention less its margin.

    Asked of the planner itself, so that a start this check accepts is never clamped.
    """
    probe = PlannerSettings(
        settle_delay_secs=0.0,
        max_window_secs=1.0,
        min_window_secs=0.0,
        retention_secs=retention_secs,
    )
    long_ago = now - timedelta(seconds=retention_secs + _DAY_SECS)
    window = plan_next_window(long_ago, now, probe).window
    assert window is not None  # a 1 s window at the retention edge has always settled
    return window.start


def check_retention(begin: datetime, limits: list[RetentionLimit]) -> None:
    """Refuse a ``--from`` older than a selected stream keeps, before any request.

    Raises:
        ConfigError: naming each such stream, its retention in days and the oldest allowed
            ``--from``, and the fix (a later ``--from``, or ``--stream`` to leave it out).
    """
    too_old = [limit for limit in limits if begin < limit.oldest]
    if not too_old:
        return
    problems = "; ".join(
        f"stream {limit.stream} keeps {limit.retention_days:g} days of history, so the "
        f"oldest allowed --from is {_iso(limit.oldest)} (its retention less a safety margin)"
        for limit in too_old
    )
    suggestion = _suggested_start(max(limit.oldest for limit in too_old))
    fix = f"pass --from {_iso(suggestion)} or later (with --to after it)"
    kept = [limit.stream for limit in limits if limit not in too_old]
    if kept:
        fix += ", or backfill only a stream that keeps longer: " + " or ".join(
            f"--stream {name}" for name in kept
        )
    msg = f"--from {_iso(begin)} is too old: {problems}. Fix: {fix}."
    raise ConfigError(msg)


def _suggested_start(oldest: datetime) -> datetime:
    """A readable ``--from`` a little after ``oldest``, still valid minutes from now."""
    epoch = (oldest + _SUGGESTION_SLACK).timestamp()
    rounded = math.ceil(epoch / _SUGGESTION_STEP_SECS) * _SUGGESTION_STEP_SECS
    return datetime.fromtimestamp(rounded, UTC)


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
