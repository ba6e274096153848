"""``o365collector backfill``: read a past period once, with a progress bar and ETA."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

from o365collector.app import Collector, RunOptions
from o365collector.config.model import Settings
from o365collector.errors import ConfigError
from o365collector.pipeline.progress import Progress as StreamProgress
from o365collector.planning.lanes import backfill_lane
from o365collector.windows import floor_second, parse_iso


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
    """Read ``[start, end)`` for the selected streams once; return the exit status."""
    begin, finish = parse_range(start, end, datetime.now(UTC))
    tenants = [t for t in settings.tenants if tenant is None or t.label == tenant]
    if not tenants:
        raise ConfigError(f"--tenant {tenant!r}: no such tenant in the config")
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
