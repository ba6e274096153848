"""Issue 8 §6: profile the hot path, and measure each proposed change before and after.

Backlog of 300,000 rows (5,000 with ``--smoke``), same setup as ``throughput.py``.

1. py-spy samples the collector process (``run --once``) running src, for ``fixed_delay``
   and for ``fresh`` with every default; the samples are folded into components
   (``profiling``) and the notes give each component's share and the hottest functions.
   Without py-spy (or when it cannot sample) the profile is skipped and the notes say so.
2. src is measured with the same two runs without the profiler: collector CPU per event
   (net of an empty run), peak RSS, wall events/s and requests; then, when
   ``bench/patches/`` holds patches, each patch applied cumulatively to a copy of src.
3. When patches apply, the fully patched tree is profiled too: what dominates after them.

With ``--smoke``: ``fixed_delay`` only, one profile (src), src and the fully patched tree.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from bench import profiling, prototype
from bench.common import EmulatorProcess, collector_config, collector_log_tail, run_collector
from bench.results import Context, Report, bench_command
from bench.throughput import FIXED, FRESH_DEFAULTS, BacklogRun, collect_backlog, start_emulator

NAME = "hotpath"
MODES: list[tuple[str, dict[str, Any]]] = [
    ("fixed_delay", FIXED),
    ("fresh, defaults", FRESH_DEFAULTS),
]


def profile(
    ctx: Context,
    emulator: EmulatorProcess,
    name: str,
    collection: dict[str, Any],
    src: Path | None,
) -> profiling.Profile:
    """Run the collector under py-spy over the backlog and fold the samples."""
    folder = ctx.workdir / name
    shutil.rmtree(folder, ignore_errors=True)
    config = collector_config(folder, emulator.url, collection=collection)
    output = folder / "pyspy.txt"
    result = run_collector(config, "--once", prefix=profiling.prefix(output), src=src)
    if result.returncode != 0 or not output.exists():
        tail = collector_log_tail(folder, 3).replace("\n", " / ")
        raise RuntimeError(f"py-spy run exited with {result.returncode}" + (tail and f": {tail}"))
    folded = profiling.fold(output)
    shutil.rmtree(folder, ignore_errors=True)
    return folded


def _profiles(
    ctx: Context,
    report: Report,
    emulator: EmulatorProcess,
    rows: int,
    profiled: list[tuple[str, prototype.Tree]],
    modes: list[tuple[str, dict[str, Any]]],
) -> None:
    """Profile each tree in each mode; a note per profile, or why there is none."""
    if profiling.pyspy() is None:
        report.notes.append("py-spy is not installed: profile skipped (pip install py-spy).")
        return
    for label, tree in profiled:
        for mode, collection in modes:
            try:
                folded = profile(ctx, emulator, f"profile-{mode[:5]}", collection, tree.src)
            except RuntimeError as error:  # e.g. no ptrace permission: measure without it
                report.notes.append(f"Profile of {label}, {mode} skipped: {error}")
                return
            lines = profiling.summary(folded)
            report.notes.append(f"Profile of {label}, {mode}, {rows:,} rows: {lines[0]}")
            report.notes.append(lines[1])


def _cell(run: BacklogRun) -> str:
    return (
        f"{run.us_per_event:.1f} µs/event, {run.run.max_rss_mib:.0f} MiB, "
        f"{run.events_per_sec:,.0f} ev/s, {run.requests} req"
    )


def run(ctx: Context) -> Report:
    """Profile src, then measure src and every cumulative patch step (if any)."""
    rows = 5_000 if ctx.smoke else 300_000
    report = Report(NAME)
    cmd = bench_command(NAME, ctx.smoke)
    trees = prototype.steps(ctx.src, ctx.workdir / "trees")
    left_out = prototype.left_out(*(tree for _, tree in trees))
    modes = MODES[:1] if ctx.smoke else MODES
    if ctx.smoke:  # prove it works: the first and the last step, one mode, one profile
        trees = [trees[0], trees[-1]] if len(trees) > 1 else trees
    profiled = [("src", trees[0][1])]
    if len(trees) > 1 and not ctx.smoke:
        profiled.append(("all patches", trees[-1][1]))
    emulator = start_emulator(ctx, rows)
    try:
        _profiles(ctx, report, emulator, rows, profiled, modes)
        results: dict[str, dict[str, BacklogRun]] = {}
        for label, tree in trees:
            results[label] = {
                mode: collect_backlog(
                    ctx, emulator, f"step-{mode[:5]}", collection, rows=rows, src=tree.src
                )
                for mode, collection in modes
            }
    finally:
        emulator.stop()
    header = " | ".join(mode for mode, _ in modes)
    for label, runs in results.items():
        complete = all(r.lines == r.distinct == rows for r in runs.values())
        report.add(
            f"{label}: {header}",
            " | ".join(_cell(runs[mode]) for mode, _ in modes)
            + ("" if complete else " — INCOMPLETE OUTPUT"),
            command=cmd,
        )
    report.notes += left_out
    if len(trees) > 1:
        report.notes.append(
            "Each row applies the patches of the rows above it too (bench/patches/); "
            "µs/event is the collector's own CPU net of an empty run."
        )
    else:
        report.notes.append(
            "bench/patches/ holds no patch that applies: src alone is measured; "
            "µs/event is the collector's own CPU net of an empty run."
        )
    return report
