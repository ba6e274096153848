"""Issue 19: what one tenant's 2-day backlog costs, beside the peers and the raw limit.

Issue 19 measured a 2-day, 200,000-row message-trace backlog read by ``run --once`` with
default settings against a Graph fake (ours then: 21.9 µs CPU per event, 87 MB peak RSS,
41 Graph requests, 6 s wall; the open-source peers: 15.3 µs per event at best with 1 h
windows, 223 µs with their defaults, 61-66 MB peak RSS each). This benchmark reads exactly
that backlog (``throughput.start_emulator`` with a 2-day history; 10,000 rows with
``--smoke``) in four configurations, each ``run --once`` with its empty-tenant run for the
"net" CPU (``throughput.collect_backlog``):

1. defaults (``initial_lookback_secs`` widened to reach the whole backlog) into JSON lines;
2. the same with ``payload: ecs`` (the JSON-lines sink's key for the issue's ``format: ecs``);
3. the same with ``state: {backend: postgresql}`` in a throwaway database
   (``replicas._database``), so that its transactions are the collector's alone: round
   trips per page = (transactions of the run - those of the empty run) / Graph requests;
4. ``fixed_delay`` (the seeds' mode), as a reference;
5. defaults with smaller Graph pages (``page_size`` 2,000, 1,000, 500; once each): what
   a page's size costs in peak RSS, against the requests it saves;
6. defaults with fewer pages in memory (``max_pages_in_memory`` 2 and 1; once each): what
   overlapping pages cost in peak RSS, against the wall time they save.

What the imports alone cost (``import_floor``: the interpreter, the libraries, pydantic,
the settings models, the rest) is measured in fresh interpreters beside the empty run.

1-3 run three times, interleaved (once with ``--smoke``), and the median is reported: the
machine is small and shared. Every run must deliver every row exactly once. The raw limit
(``rawlimit``) parses the same pages, fetched once, in this process; py-spy profiles one
more run of configuration 1 (``hotpath.profile``).
"""

from __future__ import annotations

import re
import shutil
import statistics
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from bench import hotpath, import_floor, profiling, rawlimit, replicas
from bench.common import EmulatorProcess, tenant_id
from bench.rawlimit import RawResult
from bench.results import Context, Report, bench_command
from bench.throughput import (
    FIXED,
    FRESH_DEFAULTS,
    BacklogRun,
    collect_backlog,
    describe,
    start_emulator,
)

NAME = "cost"
HISTORY_SECS = 2 * 86400.0
ROWS, SMOKE_ROWS = 200_000, 10_000
REPEATS = 3
PAGE_ROWS = 5000  # Graph's largest page: the fewest requests that can read the backlog
JSONL, ECS, PG, FIXED_LABEL = (
    "defaults → JSON lines",
    "defaults, payload: ecs",
    "defaults, PostgreSQL state",
    "fixed_delay",
)
TARGET_US = {JSONL: 10.0, ECS: 15.0}
TARGET_RSS_MIB = {JSONL: 60.0}
SMALLER_PAGES = (2000, 1000, 500)
FEWER_PAGES_IN_MEMORY = (2, 1)
PAGES_IN_MEMORY = 3  # the default of max_pages_in_memory
TARGET_ROUND_TRIPS = 2.0
TARGET_PG_RATIO = 1.3
PEERS = "best 15.3 µs/event (1 h windows), 223 µs with their defaults; 61-66 MB peak RSS"
_SCHEMA = re.compile(r"\bbench_\w+")
FILED = "21.9 µs/event, 87 MB peak RSS, 41 requests (1.03× the minimum), 6 s wall"


class PgMeter:
    """Transactions of the throwaway database, read once its backends have gone.

    A backend flushes its counts to ``pg_stat_database`` when it exits, a moment after the
    collector does: wait until the database has no session left and the count is steady.
    The server log's offsets are kept too, for the statements of each run.
    """

    def __init__(self, log: replicas.StatementLog) -> None:
        """Meter the database of ``log``."""
        self.log = log
        self.marks: list[int] = []

    def __call__(self) -> int:
        """The transactions so far (and a mark in the server log)."""
        deadline = time.monotonic() + 10
        while _sessions(self.log.database) and time.monotonic() < deadline:
            time.sleep(0.1)
        count = replicas._transactions(self.log.database)
        while time.monotonic() < deadline:
            time.sleep(0.3)
            again = replicas._transactions(self.log.database)
            if again == count:
                break
            count = again
        self.marks.append(self.log.offset())
        return count

    def kinds(self) -> Counter[str]:
        """Statements of the backlog runs minus those of their empty runs, by kind."""
        if self.log.path is None:
            return Counter()
        total: Counter[str] = Counter()
        for index in range(0, len(self.marks) - 3, 4):  # empty before/after, run before/after
            empty_before, empty_after, before, after = self.marks[index : index + 4]
            total.update(_unnamed(self.log.count(before, after)))
            total.subtract(_unnamed(self.log.count(empty_before, empty_after)))
        return +total


def _unnamed(kinds: Counter[str]) -> Counter[str]:
    """The kinds without the run's schema name, so that a run and its empty run compare."""
    out: Counter[str] = Counter()
    for kind, count in kinds.items():
        out[_SCHEMA.sub("<schema>", kind)] += count
    return out


def _sessions(database: str) -> int:
    """Sessions still connected to ``database``."""
    with replicas._admin() as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = %s", (database,)
        ).fetchone()
    return int(row[0]) if row else 0


def _schemas(dsn: str) -> Callable[[str], dict[str, Any]]:
    """The ``state:`` section of each run: the throwaway database, a schema per run."""

    def state(name: str) -> dict[str, Any]:
        schema = "bench_" + "".join(c if c.isalnum() else "_" for c in name.lower())
        return {"backend": "postgresql", "dsn": dsn, "schema": schema[:63]}

    return state


def _backlog_runs(
    ctx: Context, emulator: EmulatorProcess, rows: int, repeats: int, meter: PgMeter, dsn: str
) -> dict[str, list[BacklogRun]]:
    """Configurations 1-3 ``repeats`` times, interleaved, then ``fixed_delay`` once."""
    runs: dict[str, list[BacklogRun]] = {JSONL: [], ECS: [], PG: [], FIXED_LABEL: []}
    for turn in range(repeats):
        runs[JSONL].append(
            collect_backlog(ctx, emulator, f"jsonl{turn}", FRESH_DEFAULTS, rows=rows)
        )
        runs[ECS].append(
            collect_backlog(
                ctx, emulator, f"ecs{turn}", FRESH_DEFAULTS, rows=rows, sink={"payload": "ecs"}
            )
        )
        runs[PG].append(
            collect_backlog(
                ctx,
                emulator,
                f"pg{turn}",
                FRESH_DEFAULTS,
                rows=rows,
                state=_schemas(dsn),
                meter=meter,
            )
        )
    runs[FIXED_LABEL].append(collect_backlog(ctx, emulator, "fixed", FIXED, rows=rows))
    return runs


def _variant_runs(
    ctx: Context, emulator: EmulatorProcess, rows: int, key: str, values: tuple[int, ...]
) -> dict[int, BacklogRun]:
    """Configurations 5 and 6: the defaults with each of ``values`` as ``key``, once each."""
    return {
        value: collect_backlog(
            ctx, emulator, f"{key}-{value}", {**FRESH_DEFAULTS, key: value}, rows=rows
        )
        for value in values
    }


def _add_gates(
    report: Report, cmd: str, default: list[BacklogRun], fewer: dict[int, BacklogRun]
) -> None:
    """Peak RSS and wall by pages in memory: the price of memory in time."""
    _add_variants(
        report,
        cmd,
        "peak RSS by max_pages_in_memory (defaults → JSON lines; pages: RSS, wall, CPU per event)",
        f"{PAGES_IN_MEMORY} (default): {_median(default, _rss):.0f} MiB, "
        f"{_median(default, _wall):.1f} s, {_median(default, _us):.1f} µs",
        fewer,
        lambda run: f"{_rss(run):.0f} MiB, {_wall(run):.1f} s, {_us(run):.1f} µs",
    )


def _add_variants(
    report: Report,
    cmd: str,
    metric: str,
    default: str,
    variants: dict[int, BacklogRun],
    cell: Callable[[BacklogRun], str],
) -> None:
    """One row: the default's cell, then each variant's (which must deliver every row once)."""
    cells = [default] + [
        f"{key:,}: {cell(run)}" + ("" if run.every_row_once else " (NOT every row once)")
        for key, run in variants.items()
    ]
    report.add(
        metric,
        "; ".join(cells),
        target="all, none twice",
        ok=all(r.every_row_once for r in variants.values()),
        command=cmd,
    )


def _add_imports(
    report: Report, cmd: str, default: list[BacklogRun], layers: list[tuple[str, float, float]]
) -> None:
    """What the imports alone cost, layer by layer, beside the empty run's peak."""
    empty = _median(default, lambda r: r.empty.max_rss_mib)
    report.add(
        "RSS of a run's imports alone, by layer (fresh interpreters, medians)",
        f"{import_floor.describe(layers)} (the empty run peaks at {empty:.0f} MiB)",
        command=cmd,
    )


def _add_page_sizes(
    report: Report, cmd: str, default: list[BacklogRun], smaller: dict[int, BacklogRun]
) -> None:
    """Peak RSS, requests and CPU by page size: the price of memory in requests."""
    _add_variants(
        report,
        cmd,
        "peak RSS by Graph page size (defaults → JSON lines; rows per page: RSS, requests, "
        "CPU per event)",
        f"{PAGE_ROWS:,} (default): {_median(default, _rss):.0f} MiB, "
        f"{_median(default, lambda r: float(r.requests)):g} requests, "
        f"{_median(default, _us):.1f} µs",
        smaller,
        lambda run: f"{_rss(run):.0f} MiB, {run.requests} requests, {_us(run):.1f} µs",
    )


def _raw(ctx: Context, emulator: EmulatorProcess) -> tuple[RawResult, RawResult]:
    """The raw limit (envelope) and floor passes over the same pages, fetched once."""
    end = datetime.now(UTC) - timedelta(seconds=1)
    pages = rawlimit.fetch_pages(emulator, 0, end - timedelta(seconds=HISTORY_SECS + 7200), end)
    folder = ctx.folder("raw")
    envelope = rawlimit.envelope_pass(pages, folder / "envelope.jsonl", "t000", tenant_id(0))
    floor = rawlimit.floor_pass(pages, folder / "floor.jsonl")
    shutil.rmtree(folder, ignore_errors=True)
    return envelope, floor


def _profile(ctx: Context, emulator: EmulatorProcess, rows: int) -> list[str]:
    """py-spy notes of configuration 1 (components and hottest functions), or why none."""
    if profiling.pyspy() is None:
        return ["py-spy is not installed: profile skipped (pip install py-spy)."]
    try:
        folded = hotpath.profile(ctx, emulator, "profile", FRESH_DEFAULTS, ctx.src)
    except RuntimeError as error:  # e.g. no ptrace permission
        return [f"Profile of {JSONL} skipped: {error}"]
    head, hottest = profiling.summary(folded)
    return [f"Profile of {JSONL}, {rows:,} rows: {head}", hottest]


def _median(runs: list[BacklogRun], value: Callable[[BacklogRun], float]) -> float:
    return float(statistics.median(value(r) for r in runs))


def _each(runs: list[BacklogRun], value: Callable[[BacklogRun], float], fmt: str) -> str:
    """Every run's figure, when there are several (the median alone hides the spread)."""
    return "" if len(runs) < 2 else f"; runs {', '.join(fmt.format(value(r)) for r in runs)}"


def _us(run: BacklogRun) -> float:
    return run.us_per_event


def _gross(run: BacklogRun) -> float:
    return run.gross_us_per_event


def _rss(run: BacklogRun) -> float:
    return run.run.max_rss_mib


def _wall(run: BacklogRun) -> float:
    return run.run.wall_secs


def _round_trips(run: BacklogRun) -> float:
    net = (run.metered or 0) - (run.empty_metered or 0)
    return net / max(1, run.requests)


def _add_config(report: Report, cmd: str, label: str, runs: list[BacklogRun]) -> None:
    """Delivery, CPU, RSS, requests and wall of one configuration (medians)."""
    rows = runs[0].rows
    lines = ", ".join(f"{r.lines:,} / {r.distinct:,}" for r in runs)
    report.add(
        f"events delivered / rows ({label})",
        f"{lines} distinct ids, of {rows:,} rows ({len(runs)} run{'s' if len(runs) > 1 else ''})",
        target="all, none twice",
        ok=all(r.every_row_once for r in runs),
        command=cmd,
    )
    us = _median(runs, _us)
    target = TARGET_US.get(label)
    report.add(
        f"collector CPU per event, net ({label})",
        f"{us:.1f} µs (median; {_median(runs, _gross):.1f} µs gross{_each(runs, _us, '{:.1f}')})",
        target=f"≤ {target:g} µs" if target else "",
        ok=us <= target if target else None,
        command=cmd,
    )
    rss = _median(runs, _rss)
    limit = TARGET_RSS_MIB.get(label)
    report.add(
        f"peak RSS ({label})",
        f"{rss:.0f} MiB (median; empty run {_median(runs, lambda r: r.empty.max_rss_mib):.0f} "
        f"MiB{_each(runs, _rss, '{:.0f}')})",
        target=f"≤ {limit:g} MiB" if limit else "",
        ok=rss <= limit if limit else None,
        command=cmd,
    )
    minimum = -(-rows // PAGE_ROWS)
    requests = _median(runs, lambda r: float(r.requests))
    report.add(
        f"Graph requests ({label})",
        f"{requests:g} (minimum {minimum}: {requests / minimum:.2f}×)",
        command=cmd,
    )
    wall = _median(runs, _wall)
    spread = _each(runs, _wall, "{:.1f}")
    report.add(
        f"wall ({label})",
        f"{wall:.1f} s ({rows / wall:,.0f} events/s, start-up included{spread})",
        command=cmd,
    )


def _add_postgres(report: Report, cmd: str, runs: dict[str, list[BacklogRun]]) -> None:
    """Round trips per page and the PostgreSQL / SQLite CPU ratio."""
    pg = runs[PG]
    trips = _median(pg, _round_trips)
    counts = ", ".join(
        f"({r.metered:,} - {r.empty_metered:,}) / {r.requests}"
        for r in pg
        if r.metered is not None and r.empty_metered is not None
    )
    report.add(
        "PostgreSQL round trips per page",
        f"{trips:.2f} (median; transactions of the run - of the empty run / pages: {counts})",
        target=f"≤ {TARGET_ROUND_TRIPS:g}",
        ok=trips <= TARGET_ROUND_TRIPS,
        command=cmd,
    )
    base = _median(runs[JSONL], _us)
    ratio = _median(pg, _us) / max(1e-9, base)
    report.add(
        "CPU per event, PostgreSQL ÷ SQLite state",
        f"{ratio:.2f}× ({_median(pg, _us):.1f} / {base:.1f} µs, medians)",
        target=f"≤ {TARGET_PG_RATIO:g}×",
        ok=ratio <= TARGET_PG_RATIO,
        command=cmd,
    )


def _add_raw(
    report: Report, cmd: str, runs: dict[str, list[BacklogRun]], raw: tuple[RawResult, RawResult]
) -> None:
    """The raw limit, the floor, and the headline configuration against both."""
    envelope, floor = raw
    rawlimit.add_rows(report, envelope, floor, cmd)
    us = _median(runs[JSONL], _us)
    report.add(
        f"collector ÷ raw limit ({JSONL})",
        f"{us / max(1e-9, envelope.cpu_us_per_event):.1f}× "
        f"(÷ floor: {us / max(1e-9, floor.cpu_us_per_event):.1f}×)",
        command=cmd,
    )


def _add_peers(report: Report, cmd: str, runs: dict[str, list[BacklogRun]]) -> None:
    """The comparison of issue 19: peers, ours at filing, ours now (plain figures)."""
    now = runs[JSONL]
    report.add("peers (issue 19, same backlog)", PEERS, command=cmd)
    report.add("o365collector at issue 19's filing", FILED, command=cmd)
    report.add(
        "o365collector now (defaults → JSON lines, medians)",
        f"{_median(now, _us):.1f} µs/event, {_median(now, _rss):.0f} MiB peak RSS, "
        f"{_median(now, lambda r: float(r.requests)):g} requests, "
        f"{_median(now, _wall):.1f} s wall",
        command=cmd,
    )


def _notes(runs: dict[str, list[BacklogRun]], meter: PgMeter) -> list[str]:
    """The median run of each configuration in full, and the PostgreSQL statements."""
    notes = []
    for label, group in runs.items():
        middle = sorted(group, key=_us)[len(group) // 2]
        notes.append(f"{label} (the median run): {describe(middle)}.")
    kinds = meter.kinds()
    if kinds:
        pages = sum(r.requests for r in runs[PG])
        top = ", ".join(f"{k} ×{n / max(1, pages):.2f}" for k, n in kinds.most_common(8))
        notes.append(f"PostgreSQL statements per page beyond the empty run (server log): {top}.")
    notes.append(
        "CPU is the collector process's own (rusage), net of the same configuration's run "
        "against an empty tenant; peak RSS is its VmHWM. The issue's MB and these MiB "
        "differ by 5 % (60 MB = 57.2 MiB)."
    )
    return notes


def run(ctx: Context) -> Report:
    """Configurations 1-6 over the issue's backlog, the imports, the raw limit, the profile,
    the peers."""
    rows = SMOKE_ROWS if ctx.smoke else ROWS
    repeats = 1 if ctx.smoke else REPEATS
    report = Report(NAME)
    cmd = bench_command(NAME, ctx.smoke)
    emulator = start_emulator(ctx, rows, history_secs=HISTORY_SECS)
    try:
        report.notes.append(
            f"Emulator: {rows:,} rows over {HISTORY_SECS / 86400:g} days, generated in "
            f"{emulator.ready_secs:.1f} s, RSS {emulator.rss_mib():.0f} MiB; configurations "
            f"1-3 run {repeats}× interleaved, medians reported."
        )
        with replicas._database() as (log, dsn):
            meter = PgMeter(log)
            runs = _backlog_runs(ctx, emulator, rows, repeats, meter, dsn)
            pg_notes = _notes(runs, meter)
        smaller = _variant_runs(ctx, emulator, rows, "page_size", SMALLER_PAGES)
        fewer = _variant_runs(ctx, emulator, rows, "max_pages_in_memory", FEWER_PAGES_IN_MEMORY)
        raw = _raw(ctx, emulator)
        report.notes += _profile(ctx, emulator, rows)
    finally:
        emulator.stop()
    for label, group in runs.items():
        _add_config(report, cmd, label, group)
    _add_page_sizes(report, cmd, runs[JSONL], smaller)
    _add_gates(report, cmd, runs[JSONL], fewer)
    _add_imports(report, cmd, runs[JSONL], import_floor.measure(ctx.src, ctx.folder("pycache")))
    _add_postgres(report, cmd, runs)
    _add_raw(report, cmd, runs, raw)
    _add_peers(report, cmd, runs)
    report.notes += pg_notes
    return report
