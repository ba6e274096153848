"""Issue 8 §3: peak RSS of the collector for backlogs of 100k, 1M and 3M rows.

Same setup as ``throughput.py`` (emulator process with the backlog, ``run --once`` into
the JSON-lines sink); the collector's peak RSS is the ``VmHWM`` of its own process
(``common.PeakRss``). ``fixed_delay`` (the backlog path) runs at every size; ``fresh`` with
every default at 100k and 1M; when ``bench/patches/`` holds patches, ``fixed_delay`` on a
copy of src with them applied at the smallest and largest size. The empty run (same
configuration, a tenant without rows) is the floor: interpreter, imports, SQLite and one
token.
"""

from __future__ import annotations

from bench import prototype
from bench.results import Context, Report, bench_command
from bench.throughput import FIXED, FRESH_DEFAULTS, BacklogRun, collect_backlog, start_emulator

NAME = "memory"
TARGET_MIB = 80.0
FLAT_MIB = 5.0


def run(ctx: Context) -> Report:
    """Peak RSS per backlog size and mode."""
    sizes = [5_000, 20_000] if ctx.smoke else [100_000, 1_000_000, 3_000_000]
    report = Report(NAME)
    cmd = bench_command(NAME, ctx.smoke)
    tree = prototype.patched(ctx.src, ctx.workdir / "tree-all")
    patched: dict[int, BacklogRun] = {}
    peaks: dict[str, dict[int, BacklogRun]] = {"fixed_delay": {}, "fresh, defaults": {}}
    for rows in sizes:
        emulator = start_emulator(ctx, rows)
        try:
            report.notes.append(
                f"Emulator with {rows:,} rows: generated in {emulator.ready_secs:.1f} s, "
                f"RSS {emulator.rss_mib():.0f} MiB."
            )
            check = rows <= 1_000_000
            peaks["fixed_delay"][rows] = collect_backlog(
                ctx, emulator, f"fixed-{rows}", FIXED, rows=rows, check_ids=check
            )
            if rows in sizes[:2]:  # fresh at the two smaller sizes (its 3M run takes minutes)
                peaks["fresh, defaults"][rows] = collect_backlog(
                    ctx, emulator, f"fresh-{rows}", FRESH_DEFAULTS, rows=rows, check_ids=check
                )
            if rows in (sizes[0], sizes[-1]) and tree.applied:
                patched[rows] = collect_backlog(
                    ctx,
                    emulator,
                    f"patched-{rows}",
                    FIXED,
                    rows=rows,
                    check_ids=check,
                    src=tree.src,
                )
        finally:
            emulator.stop()
    if patched:
        peaks["fixed_delay, with bench/patches applied"] = patched
    for mode, runs in peaks.items():
        for rows, result in runs.items():
            ok = result.lines == rows and result.run.max_rss_mib <= TARGET_MIB
            report.add(
                f"peak RSS, {rows:,} rows ({mode})",
                f"{result.run.max_rss_mib:.0f} MiB ({result.lines:,} events, "
                f"{result.us_per_event:.1f} µs/event)",
                target=f"≤ {TARGET_MIB:.0f} MiB",
                ok=ok,
                command=cmd,
            )
        small, large = runs[min(runs)], runs[max(runs)]
        growth = large.run.max_rss_mib - small.run.max_rss_mib
        report.add(
            f"RSS growth {min(runs):,} → {max(runs):,} rows ({mode})",
            f"{growth:+.1f} MiB",
            target=f"flat (within {FLAT_MIB:.0f} MiB)",
            ok=abs(growth) <= FLAT_MIB,
            command=cmd,
        )
    report.notes += prototype.left_out(tree)
    floor = peaks["fixed_delay"][sizes[0]].empty.max_rss_mib
    report.add("RSS floor: empty run (start-up only)", f"{floor:.0f} MiB", command=cmd)
    return report
