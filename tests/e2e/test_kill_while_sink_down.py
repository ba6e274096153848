"""SIGKILL while a sink is down, then restart: nothing lost, repeats bounded by what was in flight.

The emulator holds three days of history; ``run --once`` delivers it to a jsonl file and an
HTTP sink (pytest-httpserver). The HTTP receiver takes a first share of the events, then
answers 503 to everything: the collector holds, pages unacknowledged, and is SIGKILLed
there. At that moment no lane's watermark may have passed a row the HTTP sink did not
take. With the receiver back, a second ``run --once`` must complete the history: every
row of the emulator's ground truth reaches the HTTP sink, and the events it took twice are
at most the pages the lanes could have had in flight when the process was killed.
"""

from __future__ import annotations

import threading
from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
from harness import (
    TENANT_ID,
    EmulatorProcess,
    cli,
    collector_config,
    emulator_settings,
    kill,
    now,
    output_lines,
    parse_time,
    run_collector,
    start_collector,
    visible_by,
)
from pytest_httpserver import HTTPServer
from replicas_support import wait_until
from werkzeug import Request, Response

from o365collector.event import event_id
from o365collector.pipeline.lane import MAX_PAGES_IN_FLIGHT

pytestmark = pytest.mark.integration

ROWS = 3_000
PAGE_SIZE = 100
TAKEN_BEFORE_OUTAGE = 800  # events the receiver takes before it goes down
LANES = 3  # live, one re-sweep band, final
IN_FLIGHT = LANES * (MAX_PAGES_IN_FLIGHT + 1) * PAGE_SIZE
COLLECTION = {
    "page_size": PAGE_SIZE,
    "max_window_secs": 3600,  # many windows: watermarks move before the outage
    "resweeps": [{"max_age_secs": 3600, "every_secs": 60}],
    "retry": {"initial_interval_secs": 0.1, "max_interval_secs": 0.5, "max_elapsed_secs": 60},
}


class OutageIngest:
    """Takes events until ``budget`` runs out (whole requests), then answers 503 until reopened."""

    def __init__(self, budget: int) -> None:
        self.lock = threading.Lock()
        self.budget = budget
        self.taken: list[str] = []  # event ids, in arrival order, repeats kept
        self.refused = 0

    def __call__(self, request: Request) -> Response:
        ids = [orjson.loads(line)["event_id"] for line in request.get_data().splitlines()]
        with self.lock:
            if len(self.taken) >= self.budget:
                self.refused += 1
                return Response("maintenance", status=503)
            self.taken += ids
            return Response("ok", status=200)

    def reopen(self) -> None:
        with self.lock:
            self.budget = 10**9

    def ids(self) -> list[str]:
        with self.lock:
            return list(self.taken)


def _marks(config: Path) -> dict[str, datetime | None]:
    """Each watermark lane's watermark, from ``state show --json``."""
    result = cli(config, "state", "show", "--json")
    assert result.returncode == 0, result.stderr[-2000:]
    return {
        row["lane"]: parse_time(row["watermark"]) if row["watermark"] else None
        for row in orjson.loads(result.stdout)
    }


def _fact_ids(row: dict[str, Any]) -> set[str]:
    """The event ids any status of a ground-truth row would be delivered with."""
    return {
        event_id(TENANT_ID, "message_trace", row["id"], row["recipientAddress"], step["status"])
        for step in row["history"]
    }


def test_kill_while_the_sink_is_down_then_restart_loses_nothing(
    tmp_path: Path, httpserver: HTTPServer
) -> None:
    ingest = OutageIngest(budget=0)  # down until the start marks are read
    httpserver.expect_request("/ingest").respond_with_handler(ingest)
    siem = {
        "type": "http",
        "name": "siem",
        "url": httpserver.url_for("/ingest"),
        "gzip": False,
        "payload": "envelope",
        "batch_max_events": PAGE_SIZE,
    }
    emulator = EmulatorProcess(
        tmp_path, emulator_settings(ROWS, tenant={"quota_requests": 100_000})
    ).start()
    try:
        config = collector_config(tmp_path, emulator.url, extra_sinks=[siem], **COLLECTION)
        started = now()
        proc = start_collector(config, "--once")
        try:
            # Nothing is acknowledged yet, so these are the lanes' first watermarks.
            wait_until("the collector never refused", lambda: ingest.refused > 0)
            first = _marks(config)
            assert set(first) == {"live", "final"}, first
            with ingest.lock:
                ingest.budget = TAKEN_BEFORE_OUTAGE  # up for a while, then down for good
            wait_until(
                "the receiver never went down",
                lambda: (
                    proc.poll() is not None
                    or (len(ingest.ids()) >= TAKEN_BEFORE_OUTAGE and ingest.refused > 3)
                ),
            )
            assert proc.poll() is None, "the run ended although a sink was down"
        finally:
            kill(proc)
        before_kill = ingest.ids()
        at_kill = _marks(config)
        truth = emulator.ground_truth()
        taken = set(before_kill)
        # No watermark passed a row the HTTP sink did not take.
        for lane, mark in at_kill.items():
            start = first[lane]
            assert mark is not None and start is not None
            committed = [
                row
                for row in truth
                if start <= parse_time(row["receivedDateTime"]) < mark and visible_by(row, started)
            ]
            unsent = [row["id"] for row in committed if not _fact_ids(row) & taken]
            assert not unsent, f"{lane} moved to {mark} past {len(unsent)} rows never taken"

        moved = [lane for lane in at_kill if at_kill[lane] != first[lane]]
        assert moved, "no watermark moved before the outage: nothing above was checked"

        ingest.reopen()
        final = run_collector(config, "--once", timeout=300)
        assert final.returncode == 0, final.stderr[-3000:]
    finally:
        emulator.stop()

    ids = ingest.ids()
    in_scope = [row for row in truth if visible_by(row, started)]
    assert len(in_scope) >= ROWS * 0.9
    missing = [row["id"] for row in in_scope if not _fact_ids(row) & set(ids)]
    assert not missing, f"{len(missing)} rows never reached the HTTP sink, e.g. {missing[:3]}"
    known = set().union(*(_fact_ids(row) for row in truth))
    assert set(ids) <= known, "the HTTP sink got events that are not in the ground truth"
    repeats = sum(n - 1 for n in Counter(ids).values())
    # A repeat is an event taken before the kill whose page was not yet committed.
    repeated_from_before = sum(1 for i in set(before_kill) if ids.count(i) > 1)
    print(f"\ntaken before the kill {len(before_kill)}, repeats after restart {repeats}")
    assert repeats == repeated_from_before, "an event was taken twice within one process"
    assert repeats <= IN_FLIGHT, f"{repeats} repeats, more than {IN_FLIGHT} could be in flight"
    # The file sink kept taking pages during the outage; they were not committed either.
    in_file = Counter(event["event_id"] for event in output_lines(tmp_path))
    file_repeats = sum(n - 1 for n in in_file.values())
    print(f"file sink repeats {file_repeats}")
    assert set(in_file) == set(ids), "the two sinks do not hold the same events"
    assert file_repeats <= IN_FLIGHT, f"{file_repeats} file repeats, more than {IN_FLIGHT}"
