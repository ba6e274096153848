"""How ``run --once`` and ``backfill`` report: progress while they work, a summary at the end.

On a terminal, a rich progress bar per stream (windows done and left, rows, ETA) and a
summary table; when stderr is piped, plain lines a script or ``less`` can read::

    progress: itest/message_trace windows 12/40 rows 5,000 eta 2m
    progress: itest/message_trace done windows 40/40 rows 17,120
    summary: itest/message_trace ok rows 17,120 windows 40 pages 41 took 61.2s
    summary: tenant itest requests 44
    summary: 1 stream(s) ok, 0 failed in 61.4s

Both read counters the streams keep anyway (:class:`~o365collector.observability.progress.
Progress`, and the ``checkpoint_commits_total`` metric for the windows of every lane), so
they cost the collector nothing.
"""

from __future__ import annotations

import asyncio
import math
import os
import sys
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, TextIO, TypeVar

from o365collector.config.model import Settings
from o365collector.config.streams import configured
from o365collector.observability import metrics
from o365collector.observability.progress import Progress, StreamProgress
from o365collector.observability.redact import redact
from o365collector.planning.lanes import WatermarkLane
from o365collector.planning.plan import stream_plan

PLAIN_EVERY_SECS = 10.0
"""How often the plain (piped) form prints a progress line per unfinished stream."""

_POLL_SECS = 0.5
_FINISHED = frozenset({"stopped", "failed", "skipped"})

Key = tuple[str, str]
T = TypeVar("T")

if TYPE_CHECKING:  # rich is imported only for a terminal: see `stderr_console`
    from rich.console import Console
    from rich.progress import BarColumn, TaskID
    from rich.progress import Progress as Bar


class PlainConsole:
    """What the plain (piped) form needs of a rich ``Console``: lines written to stderr.

    Piped, nothing of rich is used, and importing it (with the Pygments lexers it pulls
    in) would keep ~3 MiB resident for the life of ``run --once``.
    """

    is_terminal = False

    def out(self, text: str, *, highlight: bool = False) -> None:
        """Write ``text`` and a newline to stderr, as ``Console.out`` does when piped."""
        del highlight  # a plain line is never highlighted
        sys.stderr.write(text + "\n")
        sys.stderr.flush()


def stderr_console() -> Console | PlainConsole:
    """A rich ``Console`` on stderr, or a :class:`PlainConsole` where rich would see no terminal.

    Plain when stderr is not a TTY and neither ``TTY_COMPATIBLE=1`` nor ``FORCE_COLOR`` asks
    rich to treat it as one; otherwise rich decides, as it always did.
    """
    forced = os.environ.get("TTY_COMPATIBLE") == "1" or bool(os.environ.get("FORCE_COLOR"))
    if not forced and not sys.stderr.isatty():
        return PlainConsole()
    from rich.console import Console  # noqa: PLC0415 - only a terminal needs rich

    return Console(stderr=True)


@dataclass(frozen=True, slots=True)
class Goal:
    """Where each checkpointed lane of one stream ends, and how long its windows are at most.

    ``ends`` maps a lane to the time it reads up to. ``start`` is where the first lane
    begins; ``None``: where it stood when first seen (a lane's first commit for the others).
    """

    ends: Mapping[str, datetime]
    window_secs: float
    start: datetime | None = None


@dataclass(frozen=True, slots=True)
class Snapshot:
    """One stream's progress at one moment, as the displays show it."""

    tenant: str
    stream: str
    state: str
    rows: int
    windows_done: int
    windows_left: int
    done_secs: float
    total_secs: float
    eta_secs: float | None

    @property
    def name(self) -> str:
        """``tenant/stream``."""
        return f"{self.tenant}/{self.stream}"

    @property
    def finished(self) -> bool:
        """The stream has stopped reading (caught up, failed or skipped)."""
        return self.state in _FINISHED


def committed_windows() -> dict[Key, int]:
    """Windows committed so far in this process per (tenant, stream), by every lane.

    Read from the ``checkpoint_commits_total`` metric, which counts each committed window.
    """
    counts: dict[Key, int] = {}
    for family in metrics.REGISTRY.collect():
        for sample in family.samples:
            if sample.name == "checkpoint_commits_total":
                key = (sample.labels["tenant"], sample.labels["stream"])
                counts[key] = int(sample.value)
    return counts


@dataclass
class Tracker:
    """Turns :class:`Progress` counters into :class:`Snapshot` s with windows left and ETA.

    ``goal`` names each stream's target (``None``: unknown, shown without windows left).
    Windows done count every lane's commits since the tracker was made.
    """

    progress: Progress
    goal: Callable[[StreamProgress], Goal | None]
    clock: Callable[[], float] = time.monotonic
    started: float = field(init=False)
    _starts: dict[tuple[str, str, str], datetime] = field(init=False, default_factory=dict)
    _before: dict[Key, int] = field(init=False, default_factory=dict)

    def __post_init__(self) -> None:
        """Start the ETA clock and count windows from here."""
        self.started = self.clock()
        self._before = committed_windows()

    def windows_done(self) -> dict[Key, int]:
        """Windows committed per (tenant, stream) since the tracker was made, by every lane."""
        now = committed_windows()
        return {key: count - self._before.get(key, 0) for key, count in now.items()}

    def snapshots(self) -> list[Snapshot]:
        """Every stream's progress now, in the order the streams were created."""
        elapsed = self.clock() - self.started
        windows = committed_windows()
        return [self._snapshot(p, elapsed, windows) for p in list(self.progress.streams.values())]

    def _snapshot(self, p: StreamProgress, elapsed: float, windows: dict[Key, int]) -> Snapshot:
        key = (p.tenant, p.stream)
        goal = self.goal(p)
        done_secs = total_secs = 0.0
        left = 0
        finished = p.state in _FINISHED
        if goal is not None:
            first = "live" if "live" in goal.ends else next(iter(goal.ends), "")
            for lane, end in goal.ends.items():
                mark = p.lane_marks.get(lane)
                if mark is None and lane == first:
                    mark = goal.start or p.watermark  # where the lane starts, before a commit
                if mark is None:
                    continue  # not started yet: counted from its first commit
                start = self._starts.setdefault((*key, lane), goal.start or mark)
                total = max(0.0, (end - start).total_seconds())
                done = min(total, max(0.0, (mark - start).total_seconds()))
                total_secs += total
                done_secs += done
                if total > done:
                    left += math.ceil((total - done) / max(goal.window_secs, 1.0))
        eta: float | None = None
        if finished:
            done_secs, left, eta = total_secs, 0, 0.0
        elif done_secs > 0 and elapsed > 0:
            eta = elapsed * (total_secs - done_secs) / done_secs
        done_windows = windows.get(key, 0) - self._before.get(key, 0)
        return Snapshot(
            p.tenant, p.stream, p.state, p.events, done_windows, left, done_secs, total_secs, eta
        )


def run_goals(settings: Settings, now: datetime | None = None) -> Callable[[StreamProgress], Goal]:
    """The goal of each stream of ``run --once``: each lane's settle delay behind now."""
    moment = now or datetime.now(UTC)
    goals: dict[Key, Goal] = {}
    for tenant in settings.tenants:
        for entry in tenant.streams:
            stream = configured(entry)
            plan = stream_plan(settings.collection, stream)
            ends = {
                lane.name: moment - timedelta(seconds=lane.settle_secs)
                for lane in plan.lanes
                if isinstance(lane, WatermarkLane)
            }
            goals[(tenant.label, str(stream))] = Goal(ends, plan.max_window_secs)
    live = moment - timedelta(seconds=settings.collection.settle_delay_secs)
    fallback = Goal({"live": live}, 86400.0)
    return lambda p: goals.get((p.tenant, p.stream), fallback)


class ProgressDisplay:
    """Show :class:`Snapshot` s: a rich bar per stream on a terminal, else plain lines.

    The plain form prints a line per unfinished stream every ``every_secs`` and one line
    when a stream finishes.
    """

    def __init__(
        self,
        console: Console | PlainConsole,
        *,
        plain: bool | None = None,
        every_secs: float = PLAIN_EVERY_SECS,
        out: TextIO | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """Show on ``console`` (plain lines to ``out``, stderr, when ``plain``)."""
        self.console = console
        self.plain = (not console.is_terminal) if plain is None else plain
        self.every_secs = every_secs
        self.out = out or sys.stderr
        self.clock = clock
        self._last_print = clock()
        self._reported: set[Key] = set()
        self._bar: Bar | None = None
        self._bar_column: BarColumn | None = None  # made with the bar: plain needs no rich
        self._tasks: dict[Key, TaskID] = {}

    @contextmanager
    def shown(self, relog: Callable[[TextIO], None] | None = None) -> Iterator[ProgressDisplay]:
        """Show the bar (terminal) while the block runs.

        ``relog(stream)`` points the logs at ``stream``: meanwhile at the bar's console, so
        that log lines print above the bar instead of through it, then back at stderr.
        """
        if self.plain:
            yield self
            return
        from rich.console import Console  # noqa: PLC0415 - a terminal only
        from rich.progress import BarColumn, TextColumn  # noqa: PLC0415
        from rich.progress import Progress as Bar  # noqa: PLC0415

        if not isinstance(self.console, Console):
            raise TypeError("a progress bar needs a rich Console")
        self._bar_column = BarColumn(bar_width=20)
        bar = Bar(
            TextColumn("{task.description}"),
            self._bar_column,
            TextColumn("windows {task.fields[windows]}"),
            TextColumn("rows {task.fields[rows]}"),
            TextColumn("eta {task.fields[eta]}"),
            console=self.console,
        )
        self._bar = bar
        original = sys.stderr
        try:
            with bar:
                if relog is not None:
                    relog(sys.stderr)  # the bar's redirection of stderr
                yield self
        finally:
            if relog is not None:
                relog(original)
            self._bar = None

    def update(self, snapshots: list[Snapshot], *, final: bool = False) -> None:
        """Show ``snapshots``; ``final``: the work is over, report every stream's end."""
        if self._bar is not None:
            self._update_bar(self._bar, snapshots)
            return
        due = self.clock() - self._last_print >= self.every_secs
        if due:
            self._last_print = self.clock()
        for snap in snapshots:
            key = (snap.tenant, snap.stream)
            if key in self._reported:
                continue
            if snap.finished or final:
                self._reported.add(key)
                self._line(f"progress: {snap.name} {_state_word(snap)} {_counts(snap)}")
            elif due:
                self._line(f"progress: {snap.name} {_counts(snap)} eta {_eta(snap.eta_secs)}")

    def _update_bar(self, bar: Bar, snapshots: list[Snapshot]) -> None:
        if not snapshots or self._bar_column is None:
            return
        texts = {
            (s.tenant, s.stream): (
                f"{s.windows_done}/{s.windows_done + s.windows_left}",
                f"{s.rows:,}",
                _eta(s.eta_secs),
            )
            for s in snapshots
        }
        # The bar gives way to the names and numbers: at 80 columns nothing is cut.
        name = max(len(s.name) for s in snapshots)
        rest = max(len("windows  rows  eta ") + sum(map(len, t)) for t in texts.values())
        self._bar_column.bar_width = max(3, min(20, bar.console.width - name - rest - 4))
        for snap in snapshots:
            key = (snap.tenant, snap.stream)
            if key not in self._tasks:
                self._tasks[key] = bar.add_task(snap.name, total=None, windows="", rows="", eta="")
            windows, rows, eta = texts[key]
            bar.update(
                self._tasks[key],
                total=max(snap.total_secs, 1.0),
                completed=snap.done_secs if snap.total_secs else float(snap.finished),
                windows=windows,
                rows=rows,
                eta="done" if snap.finished else eta,
            )

    def _line(self, text: str) -> None:
        self.out.write(text + "\n")
        self.out.flush()


async def watched(
    work: Awaitable[T],
    tracker: Tracker,
    display: ProgressDisplay,
    relog: Callable[[TextIO], None] | None = None,
) -> T:
    """Await ``work`` while ``display`` shows ``tracker``; once more (final) at its end."""
    run = asyncio.ensure_future(work)
    try:
        with display.shown(relog):
            while not run.done():
                await asyncio.wait({run}, timeout=_POLL_SECS)
                display.update(tracker.snapshots())
            display.update(tracker.snapshots(), final=True)
    except BaseException:
        run.cancel()
        raise
    return await run


# --- the summary at the end ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StreamSummary:
    """How one stream's run ended."""

    tenant: str
    stream: str
    result: str  # ok, failed, skipped
    rows: int
    windows: int
    pages: int
    duration_secs: float | None
    error: str


@dataclass(frozen=True, slots=True)
class RunSummary:
    """Every stream's end, the requests each tenant sent, and the run's duration."""

    streams: list[StreamSummary]
    requests: dict[str, int]
    duration_secs: float

    @property
    def failed(self) -> list[StreamSummary]:
        """The streams that failed."""
        return [s for s in self.streams if s.result == "failed"]


def summarize(
    progress: Progress,
    *,
    windows: Mapping[Key, int],
    durations: Mapping[Key, float],
    requests: Mapping[str, int],
    duration_secs: float,
) -> RunSummary:
    """Build the :class:`RunSummary` of a finished run from its progress counters."""
    streams = []
    for p in progress.streams.values():
        # `elsewhere`: another replica holds the tenant (PostgreSQL state shared by replicas)
        result = {"failed": "failed", "skipped": "skipped", "elsewhere": "skipped"}.get(
            p.state, "ok"
        )
        streams.append(
            StreamSummary(
                p.tenant,
                p.stream,
                result,
                p.events,
                windows.get((p.tenant, p.stream), 0),
                p.pages,
                durations.get((p.tenant, p.stream)),
                redact(p.error) if result == "failed" else "",
            )
        )
    return RunSummary(streams, dict(requests), duration_secs)


def print_summary(
    summary: RunSummary, console: Console | PlainConsole, *, plain: bool | None = None
) -> None:
    """Print ``summary``: a table on a terminal, plain ``summary:`` lines otherwise."""
    if (not console.is_terminal) if plain is None else plain:
        for line in summary_lines(summary):
            console.out(line, highlight=False)
        return
    from rich.console import Console  # noqa: PLC0415 - a terminal only
    from rich.markup import escape  # noqa: PLC0415
    from rich.measure import Measurement  # noqa: PLC0415
    from rich.table import Table  # noqa: PLC0415

    if not isinstance(console, Console):
        raise TypeError("a summary table needs a rich Console")
    table = Table(
        title="o365collector run summary",
        title_justify="left",
        box=None,
        pad_edge=False,
        header_style="bold underline",
    )
    table.add_column("tenant/stream", no_wrap=True, overflow="fold")
    table.add_column("result", no_wrap=True)
    for name in ("rows", "windows", "pages", "took"):
        table.add_column(name, justify="right", no_wrap=True)
    style = {"ok": "green", "failed": "bold red", "skipped": "yellow"}
    for s in summary.streams:
        table.add_row(
            escape(f"{s.tenant}/{s.stream}"),
            f"[{style[s.result]}]{s.result}[/]",
            f"{s.rows:,}",
            str(s.windows),
            str(s.pages),
            _took(s.duration_secs),
        )
    unbounded = console.options.update_width(1_000_000)
    if Measurement.get(console, unbounded, table).maximum > console.width:
        for line in summary_lines(summary):  # too narrow for the table: cut nothing
            console.print(line, markup=False, highlight=False, soft_wrap=True)
        return
    console.print(table)
    for s in summary.failed:  # why, whole (the table has no room for it)
        console.print(f"{s.tenant}/{s.stream} failed: {s.error}", markup=False, soft_wrap=True)
    for tenant, count in summary.requests.items():
        console.print(f"tenant {tenant}: {count:,} requests to Microsoft", highlight=False)
    console.print(_verdict(summary), highlight=False)


def summary_lines(summary: RunSummary) -> list[str]:
    """The plain form of ``summary``: one ``summary:`` line per stream, tenant and the run."""
    lines = []
    for s in summary.streams:
        line = (
            f"summary: {s.tenant}/{s.stream} {s.result} rows {s.rows:,} windows {s.windows} "
            f"pages {s.pages} took {_took(s.duration_secs)}"
        )
        if s.error:
            line += f" error: {s.error}"
        lines.append(line)
    lines.extend(
        f"summary: tenant {tenant} requests {count:,}" for tenant, count in summary.requests.items()
    )
    lines.append(f"summary: {_verdict(summary)}")
    return lines


def _verdict(summary: RunSummary) -> str:
    ok = sum(1 for s in summary.streams if s.result == "ok")
    return f"{ok} stream(s) ok, {len(summary.failed)} failed in {_took(summary.duration_secs)}"


def _state_word(snap: Snapshot) -> str:
    if snap.state == "elsewhere":
        return "elsewhere"  # another replica holds the tenant
    if not snap.finished:
        return "stopped"  # the run ended before the stream did (a stop signal, an error)
    return {"failed": "failed", "skipped": "skipped"}.get(snap.state, "done")


def _counts(snap: Snapshot) -> str:
    total = snap.windows_done + snap.windows_left
    return f"windows {snap.windows_done}/{total} rows {snap.rows:,}"


def _took(seconds: float | None) -> str:
    return "—" if seconds is None else f"{seconds:.1f}s"


def _eta(seconds: float | None) -> str:
    """A rough, readable remaining time: ``45s``, ``2m``, ``1h05m``; ``?`` when unknown."""
    if seconds is None:
        return "?"
    if seconds < 60:
        return f"{seconds:.0f}s"
    if seconds < 3600:
        return f"{seconds / 60:.0f}m"
    hours, rest = divmod(int(seconds), 3600)
    return f"{hours}h{rest // 60:02d}m"
