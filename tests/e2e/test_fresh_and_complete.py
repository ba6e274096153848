"""Issue 7: late rows and status changes arrive fresh and complete, through faults.

The emulator streams live rows with a compressed delay distribution (a tail many times the
settle delay) and status changes; the collector runs as a daemon with the horizon and
re-sweeps scaled down to match. Against the emulator's ground truth: every fact (row,
status) visible early enough is delivered, none twice, and the latencies are printed.

Both scenarios are paced by the clock (75 s each), not by CPU: the late-rows one starts with
the module (``late_rows``) and runs beside the fault matrix, then is checked after it.
"""

from __future__ import annotations

import signal
import statistics
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from subprocess import Popen

import httpx
import orjson
import pytest
from harness import (
    EmulatorProcess,
    collector_config,
    emulator_settings,
    kill,
    now,
    output_lines,
    parse_time,
    start_collector,
)
from werkzeug import Request, Response

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("late_rows")]

RUN_SECS = 75
TAIL_SECS = 13  # after the fault matrix's last step (the sink is back at 62 s of 75)
SLOWEST_RESWEEP_SECS = 20  # the longest period among the scaled re-sweeps below
COLLECTION = {
    "initial_lookback_secs": 900,
    "settle_delay_secs": 2,
    "poll_interval_secs": 2,
    "horizon_secs": 3600,
    "final_every_secs": 30,
    "resweeps": [
        {"max_age_secs": 60, "every_secs": 3},
        {"max_age_secs": 300, "every_secs": 8},
        {"max_age_secs": 3600, "every_secs": SLOWEST_RESWEEP_SECS},
    ],
    "retry": {"initial_interval_secs": 0.2, "max_interval_secs": 2, "max_elapsed_secs": 60},
}


def _emulator(tmp_path):
    return EmulatorProcess(
        tmp_path,
        emulator_settings(
            1_500,
            history_secs=600,
            live_rows_per_sec=8,
            live_secs=600,
            visible_delay_secs=[1.0, 8.0],
            late_fraction=0.15,
            late_delay_secs=[20.0, 60.0],
            status_change_fraction=0.4,
            status_change_delay_secs=[5.0, 45.0],
            token_lifetime_secs=320,  # renewed every ~20 s: token faults get exercised
            tenant={"quota_requests": 100_000, "quota_window_secs": 300},
        ),
    ).start()


def _facts_due(truth, first_start, started, cutoff):
    """(id, recipient, status) -> visible_at, for facts a reader must have seen by ``cutoff``.

    A status is due when it was visible, while the collector ran, from before ``cutoff``
    for longer than the slowest re-sweep period (a status replaced sooner may never be seen
    by any read, by the collector or anybody else). A row is due with at least one status.
    """
    due = {}
    rows = set()
    for row in truth:
        if parse_time(row["receivedDateTime"]) < first_start:
            continue
        history = row["history"]
        key = (row["id"], row["recipientAddress"].lower())
        if parse_time(history[0]["visible_at"]) <= cutoff:
            rows.add(key)
        for i, step in enumerate(history):
            visible = parse_time(step["visible_at"])
            seen_from = max(visible, started)
            until = parse_time(history[i + 1]["visible_at"]) if i + 1 < len(history) else None
            lasting = (
                until is None or (until - seen_from).total_seconds() > SLOWEST_RESWEEP_SECS + 5
            )
            if seen_from <= cutoff and lasting:
                due[(*key, step["status"].lower())] = visible
    return due, rows


def _check(tmp_path, emulator, started, stopped):
    truth = emulator.ground_truth()
    # Kept beside the output so a failure can be investigated after the emulator is gone.
    (tmp_path / "ground-truth.ndjson").write_bytes(
        b"".join(orjson.dumps(row, option=orjson.OPT_APPEND_NEWLINE) for row in truth)
    )
    delivered = list(output_lines(tmp_path))
    facts = Counter(
        (e["record"]["id"], e["record"]["recipientAddress"].lower(), e["record"]["status"].lower())
        for e in delivered
    )
    repeated = [f for f, n in facts.items() if n > 1]
    assert not repeated, f"{len(repeated)} facts delivered twice, e.g. {repeated[:3]}"
    first_start = started - timedelta(seconds=COLLECTION["initial_lookback_secs"] - 5)
    # Everything visible one slow re-sweep period (plus slack) before the stop must be there.
    # Kept on purpose: this is the completeness guarantee of the re-sweep schedule (every
    # fact is re-read within its period), not a speed target. The p50/p99 freshness figures
    # below are only printed; bench/ holds the targets.
    cutoff = stopped - timedelta(seconds=SLOWEST_RESWEEP_SECS + 10)
    due, rows = _facts_due(truth, first_start, started, cutoff)
    assert len(due) > 500
    assert sum(1 for f in due if f[2] not in ("gettingstatus", "pending")) > 100
    missing_rows = rows - {f[:2] for f in facts}
    assert not missing_rows, f"{len(missing_rows)} of {len(rows)} rows missing"
    missing = set(due) - set(facts)
    assert not missing, f"{len(missing)} of {len(due)} facts missing, e.g. {sorted(missing)[:3]}"
    latencies = []
    for event in delivered:
        record = event["record"]
        fact = (record["id"], record["recipientAddress"].lower(), record["status"].lower())
        visible = due.get(fact)
        if visible is not None and visible >= started:
            latencies.append((parse_time(event["delivered_at"]) - visible).total_seconds())
    latencies.sort()
    p50 = statistics.median(latencies)
    p99 = latencies[int(len(latencies) * 0.99) - 1]
    print(f"\nfreshness over {len(latencies)} facts: p50 {p50:.1f} s, p99 {p99:.1f} s")
    return p50, p99


def _wait_until(failure: str, condition, seconds: float = 120) -> None:
    """Poll ``condition``; the deadline only stops a hung run (it is no speed target)."""
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, failure
        time.sleep(0.2)


class FlakyIngest:
    """An HTTP sink's receiver that can be taken down (503) and records the event ids."""

    def __init__(self) -> None:
        self.down = threading.Event()
        self.ids: list[str] = []
        self.refused = 0

    def __call__(self, request: Request) -> Response:
        if self.down.is_set():
            self.refused += 1
            return Response("maintenance", status=503)
        self.ids += [orjson.loads(line)["event_id"] for line in request.get_data().splitlines()]
        return Response("ok", status=200)


def test_fault_matrix_ends_with_nothing_missing(tmp_path, httpserver):
    emulator = _emulator(tmp_path)
    faults = f"{emulator.url}/_emulator/faults"
    ingest = FlakyIngest()
    httpserver.expect_request("/ingest").respond_with_handler(ingest)
    second_sink = {
        "type": "http",
        "name": "siem",
        "url": httpserver.url_for("/ingest"),
        "gzip": False,
        "payload": "envelope",  # with event ids, to compare with the file
    }
    try:
        config = collector_config(tmp_path, emulator.url, extra_sinks=[second_sink], **COLLECTION)
        started = now()
        proc = start_collector(config)
        schedule = [
            (8, "5xx burst", {"rules": [{"target": "graph", "status": 503, "count": 6}]}),
            (16, "kill", None),
            (24, "token outage", {"rules": [{"target": "token", "status": 503, "count": 8}]}),
            (34, "429 storm", {"rules": [{"status": 429, "count": 12, "retry_after_secs": 1}]}),
            (
                44,
                "html 200s and drops",
                {"rules": [{"kind": "html", "count": 3}, {"kind": "drop", "count": 3}]},
            ),
            (52, "kill", None),
            (56, "sink outage", None),  # the SIEM answers 503 for 6 s: every sink waits
            (62, "sink back", None),
        ]
        # The times only pace the steps (a step may come later, never earlier): whether a
        # fault was felt is waited for as an event, so no assertion rests on how fast the
        # collector got through the previous step.
        begin = time.monotonic()
        for at, what, rules in schedule:
            time.sleep(max(0.0, at - (time.monotonic() - begin)))
            if what == "kill":
                kill(proc)
                proc = start_collector(config)
            elif what == "sink outage":
                ingest.down.set()
                _wait_until("the sink outage was never felt", lambda: ingest.refused > 0)
            elif what == "sink back":
                ingest.down.clear()
            else:
                assert httpx.post(faults, json=rules).status_code == 200, what
        _wait_until(
            "not every fault was exercised",
            lambda: httpx.get(faults).json()["pending"] == 0,
        )
        # then a quiet tail at least as long as the schedule's, for the re-sweeps to catch up
        time.sleep(max(TAIL_SECS, RUN_SECS - (time.monotonic() - begin)))
        stopped = now()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(60) == 0
        assert httpx.get(faults).json()["pending"] == 0, "not every fault was exercised"
        assert ingest.refused > 0, "the sink outage was never felt"
        _check(tmp_path, emulator, started, stopped)
        # the second sink got every event the file did (repeats after a kill keep their ids)
        in_file = {event["event_id"] for event in output_lines(tmp_path)}
        assert set(ingest.ids) == in_file
    finally:
        emulator.stop()


@dataclass
class LateRows:
    """The late-rows scenario: an emulator streaming late rows and a collector daemon."""

    folder: Path
    emulator: EmulatorProcess
    started: datetime = field(default_factory=now)
    begin: float = field(default_factory=time.monotonic)
    proc: Popen[bytes] | None = None


@pytest.fixture(scope="module")
def late_rows(tmp_path_factory) -> Iterator[LateRows]:
    """Started before the module's first test, so that it runs beside the fault matrix."""
    folder = tmp_path_factory.mktemp("late-rows")
    run = LateRows(folder, _emulator(folder))
    try:
        run.proc = start_collector(collector_config(folder, run.emulator.url, **COLLECTION))
        yield run
    finally:
        if run.proc is not None and run.proc.poll() is None:
            kill(run.proc)
        run.emulator.stop()


def test_late_rows_and_status_changes_arrive_complete(late_rows):
    # Last in the module: the collector has run beside the fault matrix since the module began.
    time.sleep(max(0.0, RUN_SECS - (time.monotonic() - late_rows.begin)))
    stopped = now()
    assert late_rows.proc is not None
    late_rows.proc.send_signal(signal.SIGTERM)
    assert late_rows.proc.wait(60) == 0
    _check(late_rows.folder, late_rows.emulator, late_rows.started, stopped)
    stats = late_rows.emulator.stats()
    # The collector's default budget share would be 80 per 5 minutes; here it is raised
    # for speed, so only check it stayed polite: no 429s at all.
    assert stats["throttled"] == 0
