"""Issue 7: a steady tenant in real time — requests, budget, freshness, completeness.

The emulator holds ten minutes of history and receives 8 rows/s from the moment it starts
(5 % of them late by 2-15 minutes, 30 % changing status 30-600 s after each step; see
``livecheck.DELAYS``). The collector daemon, with its defaults except ``horizon_secs:
3600``, runs for 10 minutes (15 s with ``--smoke``) and is stopped with SIGTERM.
"""

from __future__ import annotations

from bench.livecheck import BUDGET, DELAYS, SLOWEST_PERIOD, Scenario, minimum_requests, run_live
from bench.results import Context, Report, bench_command, percentile

NAME = "steady"
RATE = 8.0
SETTLE, POLL = 30.0, 15.0  # collector defaults
SLACK = 15.0  # a read's own duration, the sink's batch and fsync


def allowed(age: float) -> float:
    """One re-sweep period of the band that covers ``age`` (default tiers, horizon 3600)."""
    if age < 600:
        return 30.0 + SLACK  # resweep-10m: rows 30 s to 10 min old, every 30 s
    return SLOWEST_PERIOD + SLACK  # resweep-1h: rows 10 min to 1 h old, every 180 s


def run(ctx: Context) -> Report:
    """Run the steady tenant and report issue 7's measures."""
    run_secs = 15.0 if ctx.smoke else 600.0
    scenario = Scenario(
        name="steady",
        history_secs=600.0,
        history_rows=int(RATE * 600),
        live_rows_per_sec=RATE,
        lookback_secs=900.0,
        run_secs=run_secs,
    )
    outcome = run_live(ctx, scenario, allowed=allowed)
    truth = outcome.truth
    report = Report(NAME)
    cmd = bench_command(NAME, ctx.smoke)
    rows = scenario.history_rows + outcome.live_rows_due
    minimum = minimum_requests(rows)
    report.add(
        "requests used (minimum: read every row once)",
        f"{outcome.requests} in {run_secs / 60:.0f} min ({minimum}; {rows:,} rows)",
        command=cmd,
    )
    report.add(
        "most requests in any 5 min (budget)",
        f"{outcome.peak_5min} ({BUDGET['requests']}); 429s: {outcome.throttled}",
        target=f"≤ {BUDGET['requests']}, no 429",
        ok=outcome.peak_5min <= BUDGET["requests"] and outcome.throttled == 0,
        command=cmd,
    )
    fresh = truth.latency["all"]
    p50, p99 = percentile(fresh, 0.5), percentile(fresh, 0.99)
    report.add(
        "freshness p50 / p99 (every fact)",
        f"{p50:.1f} s / {p99:.1f} s (n={len(fresh):,})",
        target="p50 ≤ 45 s",
        ok=p50 <= 45 if fresh else None,
        command=cmd,
    )
    report.add(
        "late rows and status changes within one re-sweep period",
        f"{truth.late_or_changed - truth.slow} of {truth.late_or_changed} (slower: {truth.slow})",
        target="all",
        ok=truth.slow == 0,
        command=cmd,
    )
    report.add(
        "completeness",
        truth.completeness(),
        target="0 / 0 / 0",
        ok=truth.clean,
        command=cmd,
    )
    report.notes += [
        f"Freshness by kind: {truth.freshness()}.",
        f"Collector process over the run: CPU {outcome.proc.cpu_secs:.1f} s, peak RSS "
        f"{outcome.proc.max_rss_mib:.0f} MiB; {truth.facts_delivered:,} lines.",
        "Settings: collector defaults (`mode: fresh`, settle 30 s, poll 15 s, re-sweeps "
        "600 s/30 s and 3600 s/180 s, budget 80 per 300 s) except `horizon_secs: 3600`; "
        f"emulator {RATE:g} rows/s with `{DELAYS}` and quota 100 per 300 s.",
    ]
    if truth.slow_examples:
        report.notes.append(
            "Slower than one period (kind, age when visible, wait): "
            + "; ".join(f"{k} {a:.0f} s, {w:.0f} s" for k, a, w in truth.slow_examples)
            + "."
        )
    return report
