"""Issue 7 in real time: the collector daemon against a live emulator, then ground truth.

Both run as real processes over loopback. The emulator produces live rows (some late,
some changing status) from the moment it starts; ``o365collector run`` (a daemon) is
stopped with SIGTERM after ``run_secs``. Then:

- requests: the emulator's accepted request times — total, the most in any running
  5 minutes against the collector's budget, and 429s;
- freshness: ``delivered_at`` of each output line minus the ``visible_at`` of its fact
  (ground truth), for facts that became visible after the collector started;
- completeness: rows and final statuses visible early enough (one slowest re-sweep period
  before the stop) that are missing, and (key, status) pairs delivered twice.

The delays are compressed to minutes so a run of minutes covers the whole distribution;
the collector keeps its defaults except ``horizon_secs`` (3600, the smallest allowed, far
above the compressed delays), which also clips the 6 h and 25 h re-sweep tiers away.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from bench.common import (
    EmulatorProcess,
    ProcResult,
    collector_config,
    collector_log_tail,
    output_events,
    run_collector,
    tenant_spec,
)
from bench.economy import max_in_window
from bench.groundtruth import Check, check, delivered_facts
from bench.results import Context, parse_time

BUDGET = {"requests": 80, "window_secs": 300}  # the collector's defaults, spelt out
QUOTA = 100  # Microsoft's: 100 requests per 5 minutes per tenant
# Compressed delay model: rows visible 5-60 s after receipt (as Microsoft), 5 % late by
# 2-15 minutes (Microsoft: up to 24 h), 30 % change status 30-600 s after each step.
DELAYS: dict[str, Any] = {
    "visible_delay_secs": [5.0, 60.0],
    "late_fraction": 0.05,
    "late_delay_secs": [120.0, 900.0],
    "status_change_fraction": 0.3,
    "status_change_delay_secs": [30.0, 600.0],
}
COLLECTION: dict[str, Any] = {"horizon_secs": 3600}
SLOWEST_PERIOD = 180.0  # resweep-1h (rows 10-60 minutes old) every 180 s, the default


@dataclass
class Scenario:
    """One live run: the emulator's data, the collector's settings and the duration."""

    name: str
    history_secs: float
    history_rows: int
    live_rows_per_sec: float
    lookback_secs: float
    run_secs: float
    collection: dict[str, Any] = field(default_factory=lambda: dict(COLLECTION))


@dataclass
class Outcome:
    """What one live run measured."""

    scenario: Scenario
    started: float
    stopped: float
    proc: ProcResult
    truth: Check
    accepted_times: list[float]
    throttled: int
    history_rows: int
    live_rows_due: int
    backfill_done_secs: float | None

    @property
    def requests(self) -> int:
        """Requests Microsoft accepted during the run."""
        return len(self.accepted_times)

    @property
    def peak_5min(self) -> int:
        """The most requests in any running 5 minutes."""
        return max_in_window(self.accepted_times, 300.0)


def run_live(
    ctx: Context, scenario: Scenario, allowed: Callable[[float], float] | None = None
) -> Outcome:
    """Start the emulator, run the daemon for ``run_secs``, compare with ground truth."""
    settings = {
        "seed": 21,
        "history_secs": scenario.history_secs,
        "live_rows_per_sec": scenario.live_rows_per_sec,
        "live_secs": scenario.run_secs + 600,
        **DELAYS,
        "tenants": [tenant_spec(0, scenario.history_rows, quota=QUOTA, window=300.0)],
    }
    emulator = EmulatorProcess(ctx.folder(f"{scenario.name}-emulator"), settings).start()
    try:
        folder = ctx.workdir / scenario.name
        collection = {"initial_lookback_secs": scenario.lookback_secs, **scenario.collection}
        config = collector_config(folder, emulator.url, collection=collection, budget=BUDGET)
        started = time.time()
        proc = run_collector(config, stop_after=scenario.run_secs, src=ctx.src)
        stopped = started + scenario.run_secs
        if proc.returncode != 0:
            raise RuntimeError(f"collector exited {proc.returncode}: {collector_log_tail(folder)}")
        stats = emulator.stats(0)
        truth_rows = list(emulator.ground_truth(0))
    finally:
        emulator.stop()
    first_start = started - scenario.lookback_secs + 5
    cutoff = stopped - SLOWEST_PERIOD - 30
    delivered = delivered_facts(output_events(folder))
    result = check(
        truth_rows,
        delivered,
        first_start=first_start,
        cutoff=cutoff,
        fresh_from=started,
        allowed=allowed,
    )
    history = [  # rows visible before the start: what the backfill must deliver
        r
        for r in truth_rows
        if first_start <= _received(r) < started - 120 and _visible(r) <= started
    ]
    done = _backfill_done(history, delivered, started)
    live_due = sum(1 for r in truth_rows if _received(r) >= started and _visible(r) <= cutoff)
    return Outcome(
        scenario,
        started,
        stopped,
        proc,
        result,
        stats["accepted_times"],
        stats["throttled"],
        len(history),
        live_due,
        done,
    )


def _received(row: dict[str, Any]) -> float:
    return parse_time(row["receivedDateTime"])


def _visible(row: dict[str, Any]) -> float:
    return parse_time(row["history"][0]["visible_at"])


def _backfill_done(
    history: list[dict[str, Any]],
    delivered: dict[tuple[str, str, str], list[float]],
    started: float,
) -> float | None:
    """Seconds after the start when the last history row was delivered (None: not all were)."""
    last = 0.0
    for row in history:
        key = (row["id"], row["recipientAddress"].lower())
        best = None
        for step in row["history"]:
            got = delivered.get((*key, step["status"].lower()))
            if got:
                best = min(got) if best is None else min(best, *got)
        if best is None:
            return None
        last = max(last, best)
    return last - started if history else 0.0


def minimum_requests(rows: int) -> int:
    """Reading ``rows`` once in 5,000-row pages (at least one request)."""
    return max(1, math.ceil(rows / 5000))
