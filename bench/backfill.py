"""Issue 7: a 10-day backfill in real time, interleaved with live collection.

A new deployment (``initial_lookback_secs`` = 10 days) against a tenant with 250,000 rows
over the last 10 days (5,000 with ``--smoke``) that also receives 2 rows/s live, with late
rows and status changes (``livecheck.DELAYS``). The collector daemon keeps its defaults
(budget 80 requests per 5 minutes; the backfill at the lowest priority, held to 75 % of
the budget) except ``horizon_secs: 3600``, runs for 7 minutes (20 s with ``--smoke``)
and is stopped with SIGTERM. Measured: when the last history row was delivered, requests
against the minimum and the budget, the freshness of live facts meanwhile, completeness.
"""

from __future__ import annotations

from bench.livecheck import BUDGET, Scenario, minimum_requests, run_live
from bench.results import Context, Report, bench_command, percentile

NAME = "backfill"
DAYS = 10
RATE = 2.0


def run(ctx: Context) -> Report:
    """Run the backfill and report issue 7's measures."""
    rows, run_secs = (5_000, 20.0) if ctx.smoke else (250_000, 420.0)
    scenario = Scenario(
        name="backfill",
        history_secs=DAYS * 86400.0,
        history_rows=rows,
        live_rows_per_sec=RATE,
        lookback_secs=DAYS * 86400.0,
        run_secs=run_secs,
    )
    outcome = run_live(ctx, scenario)
    truth = outcome.truth
    report = Report(NAME)
    cmd = bench_command(NAME, ctx.smoke)
    done = outcome.backfill_done_secs
    report.add(
        "history delivered",
        f"all {outcome.history_rows:,} rows after {done:.0f} s"
        if done is not None
        else f"not all of {outcome.history_rows:,} rows within {run_secs:.0f} s",
        target="all, within the run",
        ok=done is not None,
        command=cmd,
    )
    backfill_min = minimum_requests(outcome.history_rows)
    live_min = minimum_requests(outcome.live_rows_due)
    report.add(
        "requests used (minimum: history once + live rows once)",
        f"{outcome.requests} in {run_secs / 60:.0f} min ({backfill_min} + {live_min})",
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
        "freshness of live facts during the backfill, p50 / p99",
        f"{p50:.1f} s / {p99:.1f} s (n={len(fresh):,})",
        target="p50 ≤ 45 s",
        ok=p50 <= 45 if fresh else None,
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
        "Requests include the live lane and re-sweeps polling meanwhile (see `steady`); "
        "`economy` splits a backfill's requests by lane.",
    ]
    return report
