"""``o365collector backfill``: read a past period once, with a progress bar and ETA."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

from o365collector.app import Collector, RunOptions
from o365collector.config.model import Settings, TenantSettings
from o365collector.errors import ConfigError
from o365collector.observability.progress import Progress as StreamProgress
from o365collector.planning.lanes import backfill_lane
from o365collector.planning.plan import stream_plan
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
    settings: Settings, *, start: str, end: str, tenant: str | None, stream: str | None
) -> int:
    """Read ``[start, end)`` for the selected streams once; return the exit status.

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
    total = (finish - begin).total_seconds()
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.percentage:>5.1f}%"),
        TextColumn("{task.fields[events]} events"),
        TimeRemainingColumn(),
        console=console,
    ) as bar:
        task = bar.add_task(
            f"Backfill {begin:%Y-%m-%d %H:%M} → {finish:%Y-%m-%d %H:%M}", total=total, events=0
        )

        async def main() -> int:
            run = asyncio.create_task(collector.run())
            while not run.done():
                await asyncio.wait({run}, timeout=0.5)
                done = [
                    min(total, (p.lane_marks.get(lane.name, begin) - begin).total_seconds())
                    for p in progress.streams.values()
                ]
                events = sum(p.events for p in progress.streams.values())
                bar.update(task, completed=min(done) if done else 0, events=events)
            return (await run).exit_code

        code = asyncio.run(main())
    if code == 0:
        console.print(
            f"Backfill complete: {sum(p.events for p in progress.streams.values())} "
            "new events delivered."
        )
    return code


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
