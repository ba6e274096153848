"""Issue 18, kill at any point (the short, deterministic version of ``bench/faults.py``).

The emulator streams live rows (some late, some changing status) and the collector daemon
delivers them to a jsonl file and an HTTP sink. It is SIGKILLed three times at chosen
points and restarted each time:

1. during start-up: as soon as its state database exists;
2. during a sink write: the HTTP receiver holds a request open, unanswered, and the kill
   lands while the collector waits for the answer;
3. during a state write: right as ``state.db-wal`` changes (a page's checkpoint and its
   delivered facts being committed).

After a last run stopped with SIGTERM, against the emulator's ground truth: no row and no
final status visible early enough is missing from either sink, every repeat carries the
event id of its first copy, no process delivers a fact twice (a repeat needs a kill), and
each kill repeats at most what could be in flight (pages a lane hands over before the
oldest is committed).
"""

from __future__ import annotations

import bisect
import signal
import subprocess
import threading
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import orjson
import pytest
from harness import (
    EmulatorProcess,
    collector_config,
    emulator_settings,
    key,
    output_lines,
    parse_time,
    start_collector,
)
from replicas_support import wait_until
from werkzeug import Request, Response

from o365collector.pipeline.lane import MAX_PAGES_IN_FLIGHT

pytestmark = pytest.mark.integration

PAGE_SIZE = 50
SLOWEST_RESWEEP_SECS = 8
COLLECTION = {
    "initial_lookback_secs": 900,
    "settle_delay_secs": 2,
    "poll_interval_secs": 1,
    "horizon_secs": 3600,
    "final_every_secs": 30,
    "resweeps": [
        {"max_age_secs": 60, "every_secs": 3},
        {"max_age_secs": 3600, "every_secs": SLOWEST_RESWEEP_SECS},
    ],
    "page_size": PAGE_SIZE,
    "retry": {"initial_interval_secs": 0.2, "max_interval_secs": 1, "max_elapsed_secs": 60},
}
LANES = 4  # live, two re-sweeps, final
# Facts a sink can have received that the state does not yet know were delivered: every
# lane hands MAX_PAGES_IN_FLIGHT pages (plus one being handed) before its oldest commits.
IN_FLIGHT = LANES * (MAX_PAGES_IN_FLIGHT + 1) * PAGE_SIZE
TAIL_SECS = SLOWEST_RESWEEP_SECS + 10
Fact = tuple[str, str, str]


class StallingIngest:
    """An HTTP sink's receiver keeping every event; it can hold one request unanswered."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.arrivals: list[tuple[float, dict[str, Any]]] = []
        self.armed = False
        self.arrived = threading.Event()
        self.released = threading.Event()

    def __call__(self, request: Request) -> Response:
        moment = time.time()
        envelopes = [orjson.loads(line) for line in request.get_data().splitlines() if line]
        with self.lock:
            self.arrivals += [(moment, e) for e in envelopes]
            stall, self.armed = self.armed, False
        if stall:  # received (the SIEM may have ingested it), then never answered in time
            self.arrived.set()
            self.released.wait(60)
            return Response("too late", status=503)
        return Response("ok", status=200)

    def since(self, moment: float) -> bool:
        with self.lock:
            return bool(self.arrivals) and self.arrivals[-1][0] >= moment


def _kill(proc: subprocess.Popen[bytes]) -> float:
    assert proc.poll() is None, "the collector exited before the kill"
    moment = time.time()
    proc.send_signal(signal.SIGKILL)
    assert proc.wait(30) == -signal.SIGKILL
    return moment


def _until_written(path: Path, proc: subprocess.Popen[bytes]) -> None:
    """Return as soon as ``path`` is created or written (polled every 0.5 ms)."""

    def stat() -> tuple[int, int]:
        try:
            info = path.stat()
        except FileNotFoundError:
            return (0, 0)
        return (info.st_mtime_ns, info.st_size)

    before = stat()
    deadline = time.monotonic() + 60
    while stat() == before:
        assert proc.poll() is None, f"the collector exited before {path.name} was written"
        assert time.monotonic() < deadline, f"{path.name} was never written"
        time.sleep(0.0005)


def _facts(envelopes: Iterable[dict[str, Any]]) -> dict[Fact, list[tuple[float, str]]]:
    """Each fact's copies as (``delivered_at``, event id).

    ``delivered_at`` is stamped by the process that sent the copy: a receiver may read a
    killed process's last request only after the restart, so its arrival time would not do.
    """
    out: dict[Fact, list[tuple[float, str]]] = {}
    for envelope in envelopes:
        moment = parse_time(envelope["delivered_at"]).timestamp()
        record = envelope["record"]
        fact = (*key(record), record["status"].lower())
        out.setdefault(fact, []).append((moment, envelope["event_id"]))
    return out


def _check_sink(
    name: str,
    facts: dict[Fact, list[tuple[float, str]]],
    truth: list[dict[str, Any]],
    kills: list[float],
    first_start: float,
    cutoff: float,
) -> list[int]:
    """Nothing due is missing; repeats keep their id and stay within each kill's in-flight."""
    rows = {f[:2] for f in facts}
    due_rows = due_finals = 0
    for row in truth:
        if parse_time(row["receivedDateTime"]).timestamp() < first_start:
            continue
        history = row["history"]
        if parse_time(history[0]["visible_at"]).timestamp() > cutoff:
            continue
        due_rows += 1
        assert key(row) in rows, f"{name}: row {key(row)} lost across the kills"
        if parse_time(history[-1]["visible_at"]).timestamp() <= cutoff:
            due_finals += 1
            final = (*key(row), history[-1]["status"].lower())
            assert final in facts, f"{name}: final status {final} lost across the kills"
    assert due_rows > 300 and due_finals > 300, (due_rows, due_finals)
    per_kill = [0] * len(kills)
    for fact, copies in facts.items():
        assert len({event_id for _, event_id in copies}) == 1, f"{name}: {fact} got a new id"
        # the run (0: before the first kill) each copy arrived in: one process never repeats
        runs = sorted(bisect.bisect_right(kills, moment) for moment, _ in copies)
        assert len(set(runs)) == len(runs), f"{name}: {fact} delivered twice by one process"
        for run in runs[1:]:
            per_kill[run - 1] += 1
    assert all(n <= IN_FLIGHT for n in per_kill), (name, per_kill, IN_FLIGHT)
    return per_kill


def test_three_kills_lose_nothing_and_repeat_only_what_was_in_flight(tmp_path, httpserver):
    emulator = EmulatorProcess(
        tmp_path,
        emulator_settings(
            600,
            history_secs=600,
            live_rows_per_sec=4,
            live_secs=600,
            visible_delay_secs=[1.0, 4.0],
            late_fraction=0.15,
            late_delay_secs=[5.0, 15.0],
            status_change_fraction=0.4,
            status_change_delay_secs=[2.0, 10.0],
            tenant={"quota_requests": 100_000, "quota_window_secs": 300},
        ),
    ).start()
    ingest = StallingIngest()
    httpserver.expect_request("/ingest").respond_with_handler(ingest)
    sink = {
        "type": "http",
        "name": "siem",
        "url": httpserver.url_for("/ingest"),
        "payload": "envelope",
        "batch_max_events": PAGE_SIZE,
    }
    try:
        config = collector_config(tmp_path, emulator.url, extra_sinks=[sink], **COLLECTION)
        state = tmp_path / "state"
        started = time.time()
        kills = []
        # 1. start-up: as soon as the state database is created
        proc = start_collector(config)
        _until_written(state / "state.db", proc)
        kills.append(_kill(proc))
        # 2. a sink write: the HTTP sink's request is held open when the kill lands
        spawned = time.time()
        proc = start_collector(config)
        wait_until("no delivery after a restart", lambda: ingest.since(spawned))
        ingest.armed = True
        assert ingest.arrived.wait(60), "no request arrived to hold"
        kills.append(_kill(proc))
        ingest.released.set()
        # 3. a state write: killed as soon as the WAL changes after a delivery
        spawned = time.time()
        proc = start_collector(config)
        wait_until("no delivery after a restart", lambda: ingest.since(spawned))
        _until_written(state / "state.db-wal", proc)
        kills.append(_kill(proc))
        # the last run catches up (more than the slowest re-sweep period), then stops
        proc = start_collector(config)
        time.sleep(TAIL_SECS)
        assert proc.poll() is None, "the collector exited by itself"
        stopped = time.time()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(60) == 0
        truth = emulator.ground_truth()
    finally:
        emulator.stop()
    # Kept beside the output so a failure can be investigated after the emulator is gone.
    (tmp_path / "ground-truth.ndjson").write_bytes(
        b"".join(orjson.dumps(row, option=orjson.OPT_APPEND_NEWLINE) for row in truth)
    )
    (tmp_path / "siem.ndjson").write_bytes(
        b"".join(orjson.dumps([t, e], option=orjson.OPT_APPEND_NEWLINE) for t, e in ingest.arrivals)
    )
    (tmp_path / "kills.json").write_bytes(orjson.dumps({"kills": kills, "stopped": stopped}))
    first_start = started - COLLECTION["initial_lookback_secs"] + 5
    cutoff = stopped - SLOWEST_RESWEEP_SECS - 5
    in_file = _facts(output_lines(tmp_path))
    with ingest.lock:
        at_siem = _facts(e for _, e in ingest.arrivals)
    file_repeats = _check_sink("file", in_file, truth, kills, first_start, cutoff)
    siem_repeats = _check_sink("siem", at_siem, truth, kills, first_start, cutoff)
    # both sinks got the same facts under the same event ids
    assert {f: c[0][1] for f, c in in_file.items()} == {f: c[0][1] for f, c in at_siem.items()}
    print(f"\nrepeats per kill: file {file_repeats}, siem {siem_repeats} (≤ {IN_FLIGHT})")
