"""Issue 8 §6: profile the hot path, and measure each proposed change before and after.

Backlog of 300,000 rows (10,000 with ``--smoke``), same setup as ``throughput.py``.

1. py-spy samples the collector process (``run --once``) for ``fixed_delay`` and for
   ``fresh`` with every default; the samples are folded into components (``profiling``).
2. Each patch of ``bench/patches/`` is applied, cumulatively, to a copy of src and the
   same two runs are measured without the profiler: collector CPU per event (net of an
   empty run), peak RSS, wall events/s and requests.
3. The fully patched tree is profiled again: what dominates after the changes.
"""

from __future__ import annotations

import shutil
from typing import Any

from bench import profiling, prototype
from bench.common import EmulatorProcess, collector_config, run_collector
from bench.results import Context, Report, bench_command
from bench.throughput import FIXED, FRESH_DEFAULTS, BacklogRun, collect_backlog, start_emulator

NAME = "hotpath"
MODES: list[tuple[str, dict[str, Any]]] = [
    ("fixed_delay", FIXED),
    ("fresh, defaults", FRESH_DEFAULTS),
]


def profile(
    ctx: Context, emulator: EmulatorProcess, name: str, collection: dict[str, Any], tree: Any
) -> profiling.Profile:
    """Run the collector under py-spy over the backlog and fold the samples."""
    folder = ctx.workdir / name
    shutil.rmtree(folder, ignore_errors=True)
    config = collector_config(folder, emulator.url, collection=collection)
    output = folder / "pyspy.txt"
    result = run_collector(config, "--once", prefix=profiling.prefix(output), src=tree.src)
    if result.returncode != 0:
        raise RuntimeError(f"profiled run failed with {result.returncode}")
    folded = profiling.fold(output)
    shutil.rmtree(folder, ignore_errors=True)
    return folded


def _cell(run: BacklogRun) -> str:
    return (
        f"{run.us_per_event:.1f} µs/event, {run.run.max_rss_mib:.0f} MiB, "
        f"{run.events_per_sec:,.0f} ev/s, {run.requests} req"
    )


def run(ctx: Context) -> Report:
    """Profile, then measure every cumulative patch step."""
    rows = 5_000 if ctx.smoke else 300_000
    report = Report(NAME)
    cmd = bench_command(NAME, ctx.smoke)
    trees = prototype.steps(ctx.src, ctx.workdir / "trees")
    modes = MODES[:1] if ctx.smoke else MODES
    if ctx.smoke:  # prove it works: the first and the last step, one mode, one profile
        trees = [trees[0], trees[-1]] if len(trees) > 1 else trees
    emulator = start_emulator(ctx, rows)
    try:
        if profiling.pyspy() is None:
            report.notes.append("py-spy is not installed: no profile (pip install py-spy).")
        else:
            profiled = [("src", trees[0][1]), ("all patches", trees[-1][1])]
            for label, tree in profiled[: 1 if ctx.smoke or len(trees) == 1 else 2]:
                for mode, collection in modes:
                    folded = profile(ctx, emulator, f"profile-{mode[:5]}", collection, tree)
                    lines = profiling.summary(folded)
                    report.notes.append(f"Profile of {label}, {mode}, {rows:,} rows: {lines[0]}")
                    report.notes.append(lines[1])
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
    for label, runs in results.items():
        complete = all(r.lines == r.distinct == rows for r in runs.values())
        report.add(
            f"{label}: fixed_delay | fresh, defaults",
            " | ".join(_cell(runs[mode]) for mode, _ in modes)
            + ("" if complete else " — INCOMPLETE OUTPUT"),
            command=cmd,
        )
    skipped = trees[-1][1].skipped
    if skipped:
        report.notes.append(f"Patches that do not apply to src (left out): {', '.join(skipped)}.")
    report.notes.append(
        "Each row applies the patches of the rows above it too (bench/patches/); "
        "µs/event is the collector's own CPU net of an empty run."
    )
    return report
