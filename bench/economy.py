"""Issue 8 §4 (and issue 7's economy): Graph requests against the minimum and the budget.

Hours of collection with the default settings (budget 80 per 5 minutes, the emulator's
quota 100 per 5 minutes, the default delay model with rows up to 24 h late and status
changes) run in virtual time through ``simulate.py``: the real collector and emulator
code in one process, with an event loop whose clock jumps to the next timer.

- ``backfill``: a new deployment, ``initial_lookback_secs`` = 10 days over rows spread
  over 10 days, ``run --once``. Minimum: one request per 5,000 rows of the 10-day window
  (Graph allows 10-day windows), i.e. ⌈rows ÷ 5000⌉.
- ``steady (N rows/day)``: the daemon for 27 virtual hours (a day of late rows, every lane
  in its steady rhythm), requests counted in the last hour. Minimum: reading that hour
  once, ⌈rows received in it ÷ 5000⌉ (any freshness needs more: one request per poll).
- ``steady, large tenant``: 1.5 virtual hours from an empty state (``initial_lookback_secs``
  60, so only the re-sweeps read the day of history); the last hour is counted, without
  the ``final`` lane, which first reads a window 25 h after the start.
- ``tail``: like the day above, for a small tenant whose rows are half 23-24 h late and
  all change status 10-60 minutes after each step: do final statuses that become visible
  past the 25 h horizon arrive?
- When ``bench/patches/`` holds patches, the backfill again with them applied
  (``prototype.py``): before/after. Without, src alone.
"""

from __future__ import annotations

import math
import os
import subprocess
from bisect import bisect_right
from collections import Counter
from pathlib import Path
from typing import Any

import orjson

from bench import prototype
from bench.common import PYTHON
from bench.groundtruth import Check
from bench.results import Context, Report, bench_command, percentile

NAME = "economy"
# Half the rows 23-24 h late (Microsoft documents up to 24 h), every row changing status
# 10-60 minutes after each step: final statuses land up to 26 h after receipt.
TAIL: dict[str, Any] = {
    "late_fraction": 0.5,
    "late_delay_secs": [82800.0, 86400.0],
    "status_change_fraction": 1.0,
    "status_change_delay_secs": [600.0, 3600.0],
}
DAY = 86400.0
BUDGET = 80
WINDOW = 300.0


def run_simulation(
    ctx: Context, name: str, spec: dict[str, Any], src: Path | None = None
) -> dict[str, Any]:
    """Run ``simulate.py`` in its own process (it patches the collector's edges)."""
    folder = ctx.folder(name)
    spec_path, out_path = folder / "spec.json", folder / "result.json"
    spec_path.write_bytes(orjson.dumps(spec))
    script = Path(__file__).with_name("simulate.py")
    src = src or ctx.src
    env_src = {} if src is None else {"PYTHONPATH": str(src)}
    done = subprocess.run(
        [PYTHON, str(script), str(spec_path), str(out_path)],
        capture_output=True,
        text=True,
        timeout=3600,
        env={**os.environ, **env_src},
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"simulation {name} failed:\n{done.stderr[-3000:]}")
    return dict(orjson.loads(out_path.read_bytes()))


def max_in_window(times: list[float], window: float = WINDOW) -> int:
    """The most requests in any running ``window`` seconds, ``(t - window, t]``."""
    ordered = sorted(times)
    return max(
        (i - bisect_right(ordered, t - window) + 1 for i, t in enumerate(ordered)), default=0
    )


def by_lane(requests: list[list[Any]], start: float, end: float) -> Counter[str]:
    """Requests per lane sent in ``[start, end)``."""
    return Counter(lane for t, lane, _, _ in requests if start <= t < end)


def lanes_text(counts: Counter[str]) -> str:
    """``live 240, resweep-10m 120, …``."""
    order = ["live", "resweep-10m", "resweep-1h", "resweep-6h", "resweep-25h", "final"]
    names = sorted(counts, key=lambda n: order.index(n) if n in order else 99)
    return ", ".join(f"{n} {counts[n]}" for n in names)


def _early_resweeps(requests: list[list[Any]]) -> str:
    """A sentence when re-sweeps read at the very start (what `live` reads first anyway)."""
    early = sum(1 for t, lane, _, _ in requests if t < 1.0 and lane.startswith("resweep"))
    if not early:
        return ""
    return (
        f" {early} of them are re-sweeps at the start, re-reading spans `live` reads in its "
        "own first window."
    )


def _backfill(ctx: Context, report: Report, cmd: str) -> None:
    rows = 20_000 if ctx.smoke else 1_000_000
    spec = {
        "emulator": {"seed": 11, "history_secs": 10 * DAY, "tenant": {"rows": rows}},
        "collection": {"initial_lookback_secs": 10 * DAY},
        "once": True,
        "first_start_secs": -10 * DAY + 60,
        "cutoff_secs": -60.0,
    }
    result = run_simulation(ctx, "backfill", spec)
    _patched_backfill(ctx, report, cmd, spec)
    truth = Check.from_json(result["truth"])
    requests = len(result["requests"])
    minimum = math.ceil(truth.rows_due / 5000)
    ratio = requests / max(1, minimum)
    peak = max_in_window(result["accepted_times"])
    report.add(
        "10-day backfill: requests ÷ minimum",
        f"{requests} ÷ {minimum} = {ratio:.2f}×",
        target="≤ 1.1×",
        ok=ratio <= 1.1,
        command=cmd,
    )
    report.add(
        "10-day backfill: most requests in any 5 min",
        f"{peak} (budget {BUDGET}); 429s: {result['throttled']}",
        target=f"≤ {BUDGET}, no 429",
        ok=peak <= BUDGET and result["throttled"] == 0,
        command=cmd,
    )
    report.add(
        "10-day backfill: completeness",
        truth.completeness(),
        target="0 / 0 / 0",
        ok=truth.clean,
        command=cmd,
    )
    report.notes.append(
        f"backfill: {rows:,} rows over 10 days, default settings, `run --once`: "
        f"{requests} requests by lane: {lanes_text(by_lane(result['requests'], -1, 1e12))}; "
        f"took {result['virtual_secs'] / 60:.1f} virtual minutes "
        f"({result['real_secs']:.0f} s real)." + _early_resweeps(result["requests"])
    )


def _patched_backfill(ctx: Context, report: Report, cmd: str, spec: dict[str, Any]) -> None:
    """The same backfill with every patch of bench/patches/ applied (no ground truth)."""
    tree = prototype.patched(ctx.src, ctx.workdir / "tree-all")
    report.notes += prototype.left_out(tree)
    if not tree.applied:
        return
    plain = {k: v for k, v in spec.items() if not k.endswith("_secs")}
    result = run_simulation(ctx, "backfill-patched", plain, src=tree.src)
    rows = result["rows"]
    report.add(
        "10-day backfill with bench/patches applied: requests ÷ ⌈rows ÷ 5000⌉",
        f"{len(result['requests'])} ÷ {math.ceil(rows / 5000)} "
        f"({lanes_text(by_lane(result['requests'], -1, 1e12))})",
        command=cmd,
    )


def _steady(
    ctx: Context,
    report: Report,
    cmd: str,
    per_day: int,
    hours: float,
    delays: dict[str, Any] | None = None,
    label: str = "",
) -> None:
    rate = per_day / DAY
    history = 26 * 3600.0
    duration = hours * 3600.0
    full_day = hours >= 26
    spec: dict[str, Any] = {
        "emulator": {
            "seed": 12,
            "history_secs": history,
            "live_rows_per_sec": rate,
            "live_secs": duration + 600,
            "tenant": {"rows": round(rate * history)},
            **(delays or {}),
        },
        "collection": {} if full_day else {"initial_lookback_secs": 60},
        "once": False,
        "duration_secs": duration,
    }
    if full_day:  # ground truth: the day, up to the slowest re-sweep period before the end
        spec |= {"first_start_secs": -DAY + 60, "cutoff_secs": duration - 3600 - 120}
    label = label or f"steady {per_day:,} rows/day"
    result = run_simulation(ctx, f"steady-{per_day}-{len(label)}", spec)
    start, end = duration - 3600, duration
    lanes = by_lane(result["requests"], start, end)
    in_hour = sum(lanes.values())
    if in_hour == 0:  # e.g. state calls on a real thread let the virtual clock run away
        raise RuntimeError(f"{label}: the daemon sent no request in its last virtual hour")
    rows_hour = round(rate * 3600)
    minimum = max(1, math.ceil(rows_hour / 5000))
    hour_times = [t for t in result["accepted_times"] if t >= 0]
    peak = max_in_window(hour_times)
    report.add(
        f"{label}: requests in the last hour (minimum)",
        f"{in_hour} ({minimum}; {rows_hour:,} rows received)",
        command=cmd,
    )
    report.add(
        f"{label}: most requests in any 5 min",
        f"{peak} (budget {BUDGET}); 429s: {result['throttled']}",
        target=f"≤ {BUDGET}",
        ok=peak <= BUDGET,
        command=cmd,
    )
    note = (
        f"{label}: daemon for {hours:g} virtual hours ({result['real_secs']:.0f} s real); "
        f"last hour by lane: {lanes_text(lanes)}"
    )
    if not full_day:
        note += " (final lane not yet in its rhythm: it adds one hourly window)"
    if result["truth"] is not None:
        truth = Check.from_json(result["truth"])
        fresh = truth.latency["all"]
        report.add(
            f"{label}: freshness p50 / p99 (virtual time)",
            f"{percentile(fresh, 0.5):.0f} s / {percentile(fresh, 0.99):.0f} s",
            target="" if delays else "p50 ≤ 45 s",
            ok=None if delays else percentile(fresh, 0.5) <= 45,
            command=cmd,
        )
        report.add(
            f"{label}: completeness over the day",
            truth.completeness(),
            target="0 / 0 / 0",
            ok=truth.clean,
            command=cmd,
        )
        report.add(
            f"{label}: final statuses visible > 25 h after receipt, missing",
            f"{truth.finals_past_horizon_missing} of {truth.finals_past_horizon}",
            target="0",
            ok=truth.finals_past_horizon_missing == 0,
            command=cmd,
        )
        note += f"; freshness: {truth.freshness()}"
        for example in truth.missing_examples[:2]:
            received, history_, seen = example
            steps = ", ".join(f"{s} at {t - received:,.0f} s" for s, t in history_)
            note += (
                f"; a missing final status: received at virtual {received:,.0f} s, "
                f"history (age when visible) {steps}; delivered: {seen}"
            )
    report.notes.append(note + ".")


def run(ctx: Context) -> Report:
    """Backfill and steady-state economy, in virtual time."""
    report = Report(NAME)
    cmd = bench_command(NAME, ctx.smoke)
    _backfill(ctx, report, cmd)
    if ctx.smoke:
        _steady(ctx, report, cmd, 20_000, 2)
    else:
        _steady(ctx, report, cmd, 20_000, 27)
        _steady(ctx, report, cmd, 1_000_000, 1.5)
        _steady(ctx, report, cmd, 5_000, 27, TAIL, "tail: late by 23-24 h, then status changes")
    return report
