"""Issue 18, "kill at any point": SIGKILL the daemon 20 times, restart it, lose nothing.

The emulator (``o365collector emulator``, its own process) holds ten minutes of history and
receives live rows from the moment it starts, 15 % of them late by 20-60 s and 40 %
changing status 5-45 s after each step. The collector daemon (``o365collector run``, a real
process, re-sweeps scaled down as in tests/e2e/test_fresh_and_complete.py) delivers to four
sinks at once, each a real server: a Sekoia-style HTTP intake, Devo over mutual TLS, an
Elasticsearch ``_bulk`` (osmem-server behind a counting forwarder) and a jsonl file (see
``faults_receivers.py``). It is SIGKILLed 20 times (3 with ``--smoke``; ``KIND_MIX``), the
moments drawn with a seeded RNG, and restarted at once each time. The kinds of moments:

- ``sink write``: the intake holds the next request open, unanswered; the harness kills
  0.5-2 s after that request arrived, so the process dies in the middle of a sink write
  while the other sinks went on (a page must not commit before every sink has it);
- ``state write``: the harness polls ``state.db-wal`` every 0.5 ms and kills as soon as
  it changes, i.e. right as a checkpoint (or the dedup store's "delivered" facts, written
  with it after every sink acknowledged a page) is being committed;
- ``start-up``: 0.2-1.2 s after the process was spawned, before it delivered anything;
- ``random``: 1-12 s after the spawn, whatever it is doing.

After the last restart the daemon runs 45 s (more than the slowest re-sweep period) and
is stopped with SIGTERM. Then every sink's facts (trace id, recipient, status) are compared
with the emulator's ground truth (``groundtruth.check``): rows and final statuses missing,
facts received more than once, and each repeat is charged to the last kill before it
arrived. A repeat is *explained* when it carries the event id of the first copy, no
process sent that fact twice (a repeat needs a kill), and its kill's repeats stay within
what could be in flight (``IN_FLIGHT``: every lane hands at most ``MAX_PAGES_IN_FLIGHT`` +
1 pages to the sinks before its oldest page's facts are committed; a restart killed before
it delivered anything passes its kill's share on to the next kill). The Elasticsearch
sink takes the event id as ``_id``, so there any stored repeat is unexplained (re-sent
documents are refused with 409 and counted separately). Every copy is placed in time by
its ``delivered_at`` (stamped by the process that sent it, as a receiver may read a killed
process's last bytes after the restart). Resume time: from each restart's spawn to the
``delivered_at`` of the first batch of the new process that reached the sink.
"""

from __future__ import annotations

import bisect
import os
import random
import signal
import statistics
import subprocess
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from bench.common import (
    EmulatorProcess,
    collector_command,
    collector_config,
    collector_env,
    collector_log_tail,
    output_events,
    tenant_spec,
)
from bench.faults_receivers import Arrival, DevoTls, HttpIntake, tls_files, wait_for
from bench.groundtruth import Check, Fact, check
from bench.results import Context, Report, bench_command, parse_time
from o365collector.pipeline.lane import MAX_PAGES_IN_FLIGHT

NAME = "faults"
SEED = 18
PAGE_SIZE = 100
BATCH = 100
PAGES_IN_MEMORY = 8
LANES = 5  # live, three re-sweeps, final
# What a sink can have received that the state does not yet know was delivered: each lane
# hands MAX_PAGES_IN_FLIGHT pages (plus one being handed) before its oldest is committed.
IN_FLIGHT = LANES * (MAX_PAGES_IN_FLIGHT + 1) * PAGE_SIZE
SLOWEST_RESWEEP = 20.0
LOOKBACK = 900.0
COLLECTION: dict[str, Any] = {
    "initial_lookback_secs": LOOKBACK,
    "settle_delay_secs": 2,
    "poll_interval_secs": 2,
    "horizon_secs": 3600,
    "final_every_secs": 30,
    "resweeps": [
        {"max_age_secs": 60, "every_secs": 3},
        {"max_age_secs": 300, "every_secs": 8},
        {"max_age_secs": 3600, "every_secs": SLOWEST_RESWEEP},
    ],
    "page_size": PAGE_SIZE,
    "max_pages_in_memory": PAGES_IN_MEMORY,
    "retry": {"initial_interval_secs": 0.2, "max_interval_secs": 2, "max_elapsed_secs": 60},
}
DELAYS: dict[str, Any] = {
    "visible_delay_secs": [1.0, 8.0],
    "late_fraction": 0.15,
    "late_delay_secs": [20.0, 60.0],
    "status_change_fraction": 0.4,
    "status_change_delay_secs": [5.0, 45.0],
}
SINKS = ("sekoia", "devo", "elastic", "file")
KIND_MIX = {"sink write": 5, "state write": 5, "start-up": 2, "random": 8}  # 20 kills
SMOKE_KINDS = ["sink write", "state write", "start-up"]


@dataclass
class Kill:
    """One SIGKILL: its kind, when, how long after the spawn, and what it hit."""

    kind: str
    spawned: float
    at: float = 0.0
    note: str = ""

    @property
    def after(self) -> float:
        """Seconds from the spawn to the kill."""
        return self.at - self.spawned


@dataclass
class SinkOutcome:
    """One sink's comparison with ground truth and its repeats."""

    name: str
    truth: Check
    facts: dict[Fact, list[float]]
    per_kill: list[int] = field(default_factory=list)
    same_run: int = 0  # copies of a fact one process delivered again (no kill between)
    new_ids: int = 0
    resent: int = 0  # Elasticsearch: documents sent again and refused as already stored
    resume: list[float] = field(default_factory=list)

    delivered: list[bool] = field(default_factory=list)  # per span: anything arrived?

    @property
    def repeated(self) -> int:
        """Copies beyond the first, every fact."""
        return sum(len(t) - 1 for t in self.facts.values())

    def allowance(self, kill: int, bound: int) -> int:
        """What kill ``kill`` may repeat: ``bound``, plus the bound of each kill just before
        it whose restart delivered nothing (its repeats arrive after this one)."""
        kills = 1
        while kill - kills >= 0 and not self.delivered[kill - kills + 1]:
            kills += 1
        return kills * bound

    def unexplained(self, bound: int) -> int:
        """Repeats over a kill's allowance, by one process, or with a new event id."""
        over = sum(max(0, n - self.allowance(i, bound)) for i, n in enumerate(self.per_kill))
        return over + self.same_run + self.new_ids


class Harness:
    """The emulator, the four receivers and the collector's config, for one run."""

    def __init__(self, ctx: Context, rate: float, history_rows: int, live_secs: float) -> None:
        """Start the emulator, osmem-server, the intake and the Devo server; write the config."""
        import osmem_server

        self.ctx = ctx
        settings = {
            "seed": SEED,
            "history_secs": 600.0,
            "live_rows_per_sec": rate,
            "live_secs": live_secs,
            **DELAYS,
            "tenants": [tenant_spec(0, history_rows)],
        }
        self.emulator = EmulatorProcess(ctx.folder("emulator"), settings)
        self.osmem = osmem_server.OsmemServer.start(japanese=False)
        self.intake = HttpIntake(es_url=self.osmem.url)
        tls = tls_files(ctx.folder("tls"))
        self.devo = DevoTls(tls.server_context)
        self.emulator.start()
        self.folder = ctx.folder("collector")
        self.config = collector_config(
            self.folder,
            self.emulator.url,
            collection=COLLECTION,
            sink={"payload": "envelope", "batch_max_events": BATCH},
        )
        data = yaml.safe_load(self.config.read_text(encoding="utf-8"))
        common = {"payload": "envelope", "batch_max_events": BATCH}
        data["sinks"] += [
            {
                "type": "sekoia",
                "name": "sekoia",
                "intake_key": "bench-intake-key",
                "base_url": self.intake.url,
                **common,
            },
            {
                "type": "devo",
                "name": "devo",
                "host": "127.0.0.1",
                "port": self.devo.port,
                "ca_file": str(tls.ca_file),
                "cert_file": str(tls.cert_file),
                "key_file": str(tls.key_file),
                **common,
            },
            {
                "type": "elasticsearch",
                "name": "elastic",
                "url": f"{self.intake.url}/es",
                "index": "o365-faults",
                **common,
            },
        ]
        self.config.write_text(yaml.safe_dump(data), encoding="utf-8")
        self.wal = self.folder / "state" / "state.db-wal"

    def spawn(self) -> subprocess.Popen[bytes]:
        """Start ``o365collector run`` (the daemon), appending to its log."""
        log = (self.folder / "collector.log").open("ab")
        proc = subprocess.Popen(
            collector_command(self.config), stdout=log, stderr=log, env=collector_env(self.ctx.src)
        )
        log.close()
        return proc

    def delivered_since(self, moment: float) -> bool:
        """Did the intake receive a request after ``moment``?"""
        with self.intake.lock:
            return bool(self.intake.sekoia) and self.intake.sekoia[-1][0] >= moment

    def close(self) -> None:
        """Stop every server."""
        self.emulator.stop()
        self.intake.close()
        self.devo.close()
        self.osmem.close()
        if self.osmem.process.stdout is not None:
            self.osmem.process.stdout.close()


def _alive(harness: Harness, proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is not None:
        tail = collector_log_tail(harness.folder)
        raise RuntimeError(f"collector exited {proc.returncode} by itself: {tail}")


def _kill_at(harness: Harness, proc: subprocess.Popen[bytes], kill: Kill, rng: random.Random):
    """Wait for the moment of ``kill.kind`` and SIGKILL the process there."""
    if kill.kind == "start-up":
        time.sleep(rng.uniform(0.2, 1.2))
    elif kill.kind == "random":
        time.sleep(rng.uniform(1.0, 12.0))
    else:
        try:
            wait_for(lambda: harness.delivered_since(kill.spawned), 120, "a delivery")
        except RuntimeError as exc:
            raise RuntimeError(
                f"{exc} after restart: {collector_log_tail(harness.folder)}"
            ) from None
        _alive(harness, proc)
    if kill.kind == "sink write":
        stall = harness.intake.stall_next()
        if not stall.arrived.wait(120):
            raise RuntimeError("no sink request arrived to stall")
        held = rng.uniform(0.5, 2.0)  # the other sinks go on meanwhile: nothing may commit
        time.sleep(held)
        _alive(harness, proc)
        kill.at = time.time()
        os.kill(proc.pid, signal.SIGKILL)
        stall.release()
        kill.note = f"request of {stall.events} events held open {held:.1f} s"
    elif kill.kind == "state write":
        before = _stat(harness.wal)
        deadline = time.monotonic() + 120
        while _stat(harness.wal) == before:
            if time.monotonic() > deadline:
                raise RuntimeError("the state's WAL never changed")
            time.sleep(0.0005)
        kill.at = time.time()
        os.kill(proc.pid, signal.SIGKILL)
        kill.note = "within 0.5 ms of a WAL write"
    else:
        _alive(harness, proc)
        kill.at = time.time()
        os.kill(proc.pid, signal.SIGKILL)
        delivered = harness.delivered_since(kill.spawned)
        kill.note = "after deliveries" if delivered else "before any delivery"
    proc.wait(30)
    if proc.returncode != -signal.SIGKILL:
        raise RuntimeError(f"collector exited {proc.returncode} before the kill")


def _stat(path: Path) -> tuple[int, int]:
    try:
        info = path.stat()
    except FileNotFoundError:
        return (0, 0)
    return (info.st_mtime_ns, info.st_size)


def _facts(arrivals: list[Arrival]) -> tuple[dict[Fact, list[float]], dict[Fact, set[str]]]:
    facts: dict[Fact, list[float]] = {}
    ids: dict[Fact, set[str]] = {}
    for moment, envelope in arrivals:
        record = envelope["record"]
        fact = (record["id"], record["recipientAddress"].lower(), record["status"].lower())
        facts.setdefault(fact, []).append(moment)
        ids.setdefault(fact, set()).add(envelope["event_id"])
    return facts, ids


def _outcome(
    name: str,
    arrivals: list[Arrival],
    truth: list[dict[str, Any]],
    kills: list[Kill],
    spans: list[tuple[float, float]],
    window: dict[str, float],
) -> SinkOutcome:
    facts, ids = _facts(arrivals)
    result = check(truth, facts, **window)
    out = SinkOutcome(name, result, facts, per_kill=[0] * len(kills))
    out.new_ids = sum(len(i) - 1 for i in ids.values())
    kill_times = [k.at for k in kills]
    for times in facts.values():
        runs = sorted(bisect.bisect_right(kill_times, moment) for moment in times)
        out.same_run += len(runs) - len(set(runs))  # a process that sent a fact twice
        for run in sorted(set(runs))[1:]:
            out.per_kill[run - 1] += 1
    moments = sorted(m for m, _ in arrivals)
    for index, (begin, end) in enumerate(spans):
        first = bisect.bisect_left(moments, begin)
        out.delivered.append(first < len(moments) and moments[first] < end)
        if index > 0 and out.delivered[-1]:  # a restart after a kill
            out.resume.append(moments[first] - begin)
    return out


def run(ctx: Context) -> Report:
    """Kill the daemon at random moments, restart it, and count what was lost or repeated."""
    rng = random.Random(SEED)
    if ctx.smoke:
        kinds, rate, history_rows, tail = list(SMOKE_KINDS), 4.0, 600, 20.0
    else:
        kinds = [k for k, n in KIND_MIX.items() for _ in range(n)]
        rng.shuffle(kinds)
        rate, history_rows, tail = 10.0, 3000, SLOWEST_RESWEEP + 25.0
    harness = Harness(ctx, rate, history_rows, live_secs=3600.0)
    kills: list[Kill] = []
    spans: list[tuple[float, float]] = []
    try:
        started = time.time()
        for kind in kinds:
            spawned = time.time()
            proc = harness.spawn()
            kill = Kill(kind, spawned)
            _kill_at(harness, proc, kill, rng)
            kills.append(kill)
            spans.append((spawned, kill.at))
        spawned = time.time()
        proc = harness.spawn()
        time.sleep(tail)
        _alive(harness, proc)
        stopped = time.time()
        proc.send_signal(signal.SIGTERM)
        if proc.wait(90) != 0:
            raise RuntimeError(f"collector exited {proc.returncode} on SIGTERM")
        spans.append((spawned, stopped))
        time.sleep(0.5)  # the last TLS lines and requests are read by the receivers
        truth = list(harness.emulator.ground_truth(0))
        with harness.intake.lock, harness.devo.lock:
            received = {
                "sekoia": list(harness.intake.sekoia),
                "devo": list(harness.devo.lines),
                "elastic": list(harness.intake.es_stored),
            }
            resent = len(harness.intake.es_conflicts)
            es_other = len(harness.intake.es_other)
            partial = harness.devo.partial_lines
            cut = harness.intake.cut_requests
        received["file"] = [(0.0, e) for e in output_events(harness.folder)]
    finally:
        harness.close()
    window = {
        "first_start": started - LOOKBACK + 5,
        "cutoff": stopped - SLOWEST_RESWEEP - 10,
        "fresh_from": started,
    }
    # Each copy is placed in time by its envelope's delivered_at, stamped by the process that
    # sent it: a receiver may read a killed process's last bytes after the restart.
    stamped = {n: [(parse_time(e["delivered_at"]), e) for _, e in received[n]] for n in SINKS}
    outcomes = {n: _outcome(n, stamped[n], truth, kills, spans, window) for n in SINKS}
    outcomes["elastic"].resent = resent
    return _report(ctx, kills, outcomes, es_other=es_other, partial=(partial, cut), tail=tail)


def _report(
    ctx: Context,
    kills: list[Kill],
    outcomes: dict[str, SinkOutcome],
    *,
    es_other: int,
    partial: tuple[int, int],
    tail: float,
) -> Report:
    report = Report(NAME)
    cmd = bench_command(NAME, ctx.smoke)
    mix = Counter(k.kind for k in kills)
    report.add(
        "SIGKILLs, each followed by a restart",
        f"{len(kills)}: " + ", ".join(f"{n} {kind}" for kind, n in mix.items()),
        command=cmd,
    )
    for name, o in outcomes.items():
        bound = 0 if name == "elastic" else IN_FLIGHT
        t = o.truth
        report.add(
            f"{name}: rows missing / final statuses missing / repeats not explained by a kill",
            f"{t.rows_missing} / {t.finals_missing} / {o.unexplained(bound)} "
            f"({t.rows_due:,} rows, {t.finals_due:,} final statuses due)",
            target="0 / 0 / 0",
            ok=t.rows_missing == 0 and t.finals_missing == 0 and o.unexplained(bound) == 0,
            command=cmd,
        )
        per_kill = sorted(o.per_kill)
        repeats = (
            f"{o.repeated} of {t.facts_delivered:,} facts received; per kill median "
            f"{statistics.median(per_kill):g}, max {max(per_kill)} (in flight ≤ {bound})"
        )
        if name == "elastic":
            repeats += f"; {o.resent} re-sent documents refused as already stored (409)"
        report.add(f"{name}: repeated facts", repeats, command=cmd)
        resume = (
            f"{statistics.median(o.resume):.1f} s / {max(o.resume):.1f} s "
            f"({len(o.resume)} of {len(kills)} restarts delivered before the next kill)"
            if o.resume
            else "no restart delivered"
        )
        report.add(f"{name}: restart → first delivery, median / max", resume, command=cmd)
    report.notes.append(
        "Kills (kind, seconds after spawn, what it hit): "
        + "; ".join(f"{k.kind} {k.after:.1f} s, {k.note}" for k in kills)
        + "."
    )
    for name, o in outcomes.items():
        report.notes.append(
            f"{name}: repeats per kill {o.per_kill}; repeated by the same process {o.same_run}; "
            f"repeats with a new event id {o.new_ids}; unknown facts {o.truth.unknown_delivered}."
        )
    report.notes.append(
        f"Cut by a kill (never counted): {partial[0]} Devo lines, {partial[1]} intake "
        f"requests; Elasticsearch items neither "
        f"201 nor 409: {es_other}. After the last restart the daemon ran {tail:g} s and was "
        f"stopped with SIGTERM; due = visible {SLOWEST_RESWEEP + 10:g} s before the stop. "
        f"page_size {PAGE_SIZE}, batch_max_events {BATCH}, max_pages_in_memory "
        f"{PAGES_IN_MEMORY}; in flight per sink ≤ {LANES} lanes × "
        f"{MAX_PAGES_IN_FLIGHT + 1} pages × {PAGE_SIZE} = {IN_FLIGHT}; emulator `{DELAYS}`."
    )
    return report
