"""Issue 8 §2: throughput and collector CPU per event on a large backlog, beside the raw limit.

The emulator (its own process) holds ``rows`` pre-generated, already final rows spread over
the last three days (tenant 0) and an empty tenant (tenant 1). ``o365collector run --once``
reads the backlog into the JSON-lines sink:

- ``fixed_delay`` (``fixed_delay_secs: 1``): one lane reading the backlog once, the pure
  backlog path (the mode of the seeds);
- ``fresh`` with every default (live + four re-sweep tiers + final): what a new deployment
  with the default configuration spends on the same backlog.

CPU is the collector process's own user + system time (``os.wait4``), so the emulator's
CPU does not count; "net" subtracts a run of the same configuration against the empty
tenant (interpreter start-up, imports, config, SQLite, token). The raw limit parses the
same pages, fetched once and kept as bytes, in this process (see ``rawlimit.py``).
When ``bench/patches/`` holds patches, both configurations run again on a copy of src with
them applied (``prototype.py``); without, src alone is measured.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import yaml

from bench import prototype, rawlimit
from bench.common import (
    EmulatorProcess,
    ProcResult,
    collector_config,
    collector_log_tail,
    count_lines,
    output_files,
    quiet_history,
    run_collector,
    tenant_id,
    tenant_spec,
)
from bench.results import Context, Report, bench_command

NAME = "throughput"
HISTORY_SECS = 3 * 86400.0
LOOKBACK = 4 * 86400
FIXED: dict[str, Any] = {
    "mode": "fixed_delay",
    "fixed_delay_secs": 1,
    "poll_interval_secs": 1,
    "initial_lookback_secs": LOOKBACK,
}
FRESH_DEFAULTS: dict[str, Any] = {"initial_lookback_secs": LOOKBACK}
TARGET_US = 10.0
TARGET_RATIO = 3.0


@dataclass
class BacklogRun:
    """One collector run over a backlog, and the same configuration's empty run."""

    rows: int
    lines: int
    distinct: int
    run: ProcResult
    empty: ProcResult
    requests: int
    emulator_cpu_secs: float
    metered: int | None = None  # the ``meter``'s growth during the run, when one was given
    empty_metered: int | None = None  # … and during the empty run

    @property
    def every_row_once(self) -> bool:
        """Every row delivered, none twice (as many distinct event ids as lines as rows)."""
        return self.lines == self.distinct == self.rows

    @property
    def net_cpu_secs(self) -> float:
        """Collector CPU minus the empty run's (start-up and shutdown)."""
        return max(0.0, self.run.cpu_secs - self.empty.cpu_secs)

    @property
    def us_per_event(self) -> float:
        """Net collector CPU microseconds per event delivered."""
        return self.net_cpu_secs / max(1, self.lines) * 1e6

    @property
    def gross_us_per_event(self) -> float:
        """Collector CPU microseconds per event, start-up included."""
        return self.run.cpu_secs / max(1, self.lines) * 1e6

    @property
    def events_per_sec(self) -> float:
        """Events per wall second of the whole run (start-up included)."""
        return self.lines / max(1e-9, self.run.wall_secs)


def start_emulator(
    ctx: Context, rows: int, tenants: int = 1, *, history_secs: float = HISTORY_SECS
) -> EmulatorProcess:
    """An emulator with ``tenants`` backlogs of ``rows`` over ``history_secs`` and one more,
    empty, tenant."""
    specs = [tenant_spec(i, rows) for i in range(tenants)] + [tenant_spec(tenants, 0)]
    settings = {**quiet_history(history_secs=history_secs), "tenants": specs}
    return EmulatorProcess(ctx.folder("emulator"), settings).start()


def _distinct_ids(ctx: Context, name: str) -> tuple[int, int]:
    ids: set[bytes] = set()
    lines = 0
    for path in output_files(ctx.workdir / name):
        with path.open("rb") as handle:
            for line in handle:
                lines += 1
                ids.add(bytes.fromhex(_event_id(orjson.loads(line))))
    return lines, len(ids)


def _event_id(doc: dict[str, Any]) -> str:
    """The event id of an output line: the envelope's ``event_id``, ECS's ``event.id``."""
    if "event_id" in doc:
        return str(doc["event_id"])
    return str(doc["event"]["id"])


def collect_backlog(
    ctx: Context,
    emulator: EmulatorProcess,
    name: str,
    collection: dict[str, Any],
    *,
    rows: int,
    tenants: int = 1,
    check_ids: bool = True,
    src: Path | None = None,
    sink: dict[str, Any] | None = None,
    state: Callable[[str], dict[str, Any]] | None = None,
    meter: Callable[[], int] | None = None,
) -> BacklogRun:
    """Run the collector over the backlog of tenants ``0..tenants-1``, then the empty one.

    ``src``: the o365collector source tree to run (default: ``ctx.src``, else installed).
    ``sink``: extra keys of the JSON-lines sink; ``state``: the ``state:`` section of the
    run named by its argument (``{name}-empty``, ``{name}``), so that a shared backend gives
    each run its own place; ``meter``: a counter (e.g. PostgreSQL transactions) read before
    and after each run, its growth kept in ``metered`` / ``empty_metered``.
    """
    src = src or ctx.src
    empty_dir = ctx.workdir / f"{name}-empty"
    shutil.rmtree(empty_dir, ignore_errors=True)
    empty_cfg = collector_config(
        empty_dir,
        emulator.url,
        collection=collection,
        sink=sink,
        state=state(f"{name}-empty") if state else None,
    )
    _patch_tenant(empty_cfg, tenants)
    mark = meter() if meter else 0
    empty = run_collector(empty_cfg, "--once", src=src)
    empty_metered = meter() - mark if meter else None
    if empty.returncode != 0:
        raise RuntimeError(f"empty run failed: {collector_log_tail(empty_dir)}")
    folder = ctx.workdir / name
    shutil.rmtree(folder, ignore_errors=True)
    config = collector_config(
        folder,
        emulator.url,
        tenants=tenants,
        collection=collection,
        sink=sink,
        state=state(name) if state else None,
    )
    before = [emulator.stats(i)["accepted"] for i in range(tenants)]
    cpu_before = emulator.cpu_secs()
    mark = meter() if meter else 0
    result = run_collector(config, "--once", src=src)
    metered = meter() - mark if meter else None
    emulator_cpu = emulator.cpu_secs() - cpu_before
    if result.returncode != 0:
        raise RuntimeError(f"collector failed: {collector_log_tail(folder)}")
    requests = sum(emulator.stats(i)["accepted"] - before[i] for i in range(tenants))
    if check_ids:
        lines, distinct = _distinct_ids(ctx, name)
    else:
        lines = distinct = count_lines(folder)
    shutil.rmtree(folder / "out", ignore_errors=True)  # large; counted already
    return BacklogRun(
        rows * tenants,
        lines,
        distinct,
        result,
        empty,
        requests,
        emulator_cpu,
        metered,
        empty_metered,
    )


def _patch_tenant(config_path: Path, index: int) -> None:
    """Point a one-tenant config at emulator tenant ``index`` (the empty one)."""
    config = yaml.safe_load(config_path.read_text(encoding="utf-8"))
    config["tenants"][0]["tenant_id"] = tenant_id(index)
    config_path.write_text(yaml.safe_dump(config), encoding="utf-8")


def describe(run: BacklogRun) -> str:
    """One line for the notes."""
    return (
        f"{run.lines:,} lines ({run.distinct:,} distinct event ids) of {run.rows:,} rows; "
        f"{run.requests} requests; wall {run.run.wall_secs:.1f} s; collector CPU "
        f"{run.run.cpu_secs:.1f} s (user {run.run.user_secs:.1f}, sys {run.run.sys_secs:.1f}), "
        f"empty run {run.empty.cpu_secs:.2f} s; peak RSS {run.run.max_rss_mib:.0f} MiB "
        f"(empty run {run.empty.max_rss_mib:.0f} MiB); "
        f"emulator CPU meanwhile {run.emulator_cpu_secs:.1f} s"
    )


def run(ctx: Context) -> Report:
    """Measure the fixed-delay and default backlog runs and the raw limit."""
    rows = 20_000 if ctx.smoke else 1_000_000
    report = Report(NAME)
    cmd = bench_command(NAME, ctx.smoke)
    emulator = start_emulator(ctx, rows)
    try:
        report.notes.append(
            f"Emulator: {rows:,} rows generated in {emulator.ready_secs:.1f} s, "
            f"RSS {emulator.rss_mib():.0f} MiB."
        )
        fixed = collect_backlog(ctx, emulator, "fixed", FIXED, rows=rows)
        fresh = collect_backlog(ctx, emulator, "fresh", FRESH_DEFAULTS, rows=rows)
        tree = prototype.patched(ctx.src, ctx.workdir / "tree-all")
        patched: dict[str, BacklogRun] = {}
        if tree.applied:
            for label, collection in (("fixed_delay", FIXED), ("fresh, defaults", FRESH_DEFAULTS)):
                patched[label] = collect_backlog(
                    ctx, emulator, f"patched-{label[:5]}", collection, rows=rows, src=tree.src
                )
        end = datetime.now(UTC) - timedelta(seconds=1)
        start = end - timedelta(seconds=HISTORY_SECS + 7200)
        pages = rawlimit.fetch_pages(emulator, 0, start, end)
    finally:
        emulator.stop()
    raw_dir = ctx.folder("raw")
    envelope = rawlimit.envelope_pass(pages, raw_dir / "envelope.jsonl", "t000", tenant_id(0))
    floor = rawlimit.floor_pass(pages, raw_dir / "floor.jsonl")
    del pages
    shutil.rmtree(raw_dir, ignore_errors=True)
    for label, result in (("fixed_delay", fixed), ("fresh, defaults", fresh)):
        complete = result.every_row_once
        report.add(
            f"events delivered / rows ({label})",
            f"{result.lines:,} / {result.rows:,} ({result.distinct:,} distinct ids)",
            target="all, none twice",
            ok=complete,
            command=cmd,
        )
        report.add(
            f"collector CPU per event, net ({label})",
            f"{result.us_per_event:.1f} µs ({result.gross_us_per_event:.1f} µs gross)",
            target=f"≤ {TARGET_US:.0f} µs",
            ok=result.us_per_event <= TARGET_US,
            command=cmd,
        )
        # A smoke run's few events can cost less than the empty run's start-up noise: net 0.
        one_core = 1e6 / result.us_per_event if result.us_per_event > 0 else float("inf")
        report.add(
            f"events/s wall ({label})",
            f"{result.events_per_sec:,.0f} (one core: {one_core:,.0f})",
            target="≥ 100,000 on one core",
            ok=one_core >= 100_000,
            command=cmd,
        )
        report.add(
            f"requests ({label})",
            f"{result.requests} (minimum {-(-rows // 5000)})",
            command=cmd,
        )
        report.notes.append(f"{label}: {describe(result)}.")
    rawlimit.add_rows(report, envelope, floor, cmd)
    ratio = fixed.us_per_event / max(1e-9, envelope.cpu_us_per_event)
    report.add(
        "collector ÷ raw limit (fixed_delay)",
        f"{ratio:.1f}×",
        target=f"≤ {TARGET_RATIO:.0f}×",
        ok=ratio <= TARGET_RATIO,
        command=cmd,
    )
    for label, result in patched.items():
        ok = result.every_row_once
        report.add(
            f"with bench/patches applied: CPU per event, net ({label})",
            f"{result.us_per_event:.1f} µs, {result.events_per_sec:,.0f} events/s wall, "
            f"peak RSS {result.run.max_rss_mib:.0f} MiB, {result.requests} requests"
            + ("" if ok else " — INCOMPLETE OUTPUT"),
            target=f"≤ {TARGET_US:.0f} µs",
            ok=ok and result.us_per_event <= TARGET_US,
            command=cmd,
        )
    if "fixed_delay" in patched:
        after = patched["fixed_delay"].us_per_event / max(1e-9, envelope.cpu_us_per_event)
        report.add(
            "with bench/patches applied: collector ÷ raw limit (fixed_delay)",
            f"{after:.1f}×",
            target=f"≤ {TARGET_RATIO:.0f}×",
            ok=after <= TARGET_RATIO,
            command=cmd,
        )
        report.notes.append(f"With {', '.join(tree.applied)}: {describe(patched['fixed_delay'])}.")
    report.notes += prototype.left_out(tree)
    if envelope.records != fixed.rows:
        report.notes.append(f"Raw limit read {envelope.records:,} records, not {fixed.rows:,}.")
    return report
