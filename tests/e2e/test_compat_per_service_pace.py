"""On the emulator, each Devo service is read at its own period and its own delay.

The collector runs as a daemon for a few periods while every request the emulator answers
is recorded with when it arrived; each stream's window requests must be spaced by that
service's ``request_period_in_seconds`` and end its ``override_time_delay_in_seconds``
behind the moment they were sent.
"""

from __future__ import annotations

import asyncio
import copy
import json
import re
import threading
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pytest

from o365collector.app import Collector, RunOptions
from o365collector.config.loader import load_settings
from o365emulator import Emulator
from support.compat import SEED_CLOUD_JSON, emulator_for, native_block, read_jsonl
from support.rws import RWS_PATH

TRACE = "office365_reporting_MessageTrace_service"
DLP = "office365_reporting_DlpDetail_service"
# service: (marker in the request path, period s, delay s)
PACE = {TRACE: ("messageTraces", 2, 90), DLP: ("DlpDetailReport", 4, 150)}
RUN_SECS = 13.0
# The planner wakes at least a second after a window is due, and windows end on whole
# seconds: a request may come up to that much off its period, never a period late.
TOLERANCE_SECS = 1.5
_STAMP = re.compile(r"(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?)Z?")


@dataclass(frozen=True, slots=True)
class Request:
    at: datetime  # when the emulator received it
    target: str  # the decoded path and query


class Recorder:
    """Wraps the emulator's dispatch: every request, when it arrived."""

    def __init__(self, emulator: Emulator) -> None:
        self.requests: list[Request] = []
        self._lock = threading.Lock()
        original = emulator.dispatch

        def dispatch(method: str, target: str, headers: dict[str, str], body: bytes) -> Any:
            with self._lock:
                self.requests.append(Request(datetime.now(UTC), unquote(target)))
            return original(method, target, headers, body)

        emulator.dispatch = dispatch  # type: ignore[method-assign]

    def windows(self, marker: str) -> list[tuple[datetime, datetime]]:
        """(sent at, window end) of each first-page request whose path names ``marker``."""
        with self._lock:
            found = [r for r in self.requests if marker in r.target.split("?")[0]]
        out = []
        for request in found:
            stamps = [_parse(s) for s in _STAMP.findall(request.target)]
            if len(stamps) >= 2:
                out.append((request.at, max(stamps)))
        return out


def _parse(stamp: str) -> datetime:
    return datetime.fromisoformat(stamp[:26]).replace(tzinfo=UTC)


def _write(path: Path, url: str, out: Path, dlp_marker: str) -> None:
    data: dict[str, Any] = copy.deepcopy(SEED_CLOUD_JSON)
    services = data["office365_reporting_message"]["services"] = {}
    for service, (_, period, delay) in PACE.items():
        services[service] = {
            "request_period_in_seconds": period,
            "override_time_delay_in_seconds": delay,
            "reset_persistence_auth": dlp_marker if service == DLP else "2024-05-01",
        }
    data["o365collector"] = native_block(
        url,
        tenant={"endpoints": {"authority": url, "graph": url, "reporting": url + RWS_PATH}},
        sinks=[{"type": "jsonl", "path": str(out)}],
    )
    data["o365collector"]["tenant"]["budget"] = {"requests": 100_000}
    path.write_text(json.dumps(data), encoding="utf-8")


async def _run(path: Path, seconds: float | None) -> list[str]:
    settings = load_settings(path)
    collector = Collector(settings, RunOptions(once=seconds is None, install_signal_handlers=False))
    task = asyncio.create_task(collector.run())
    if seconds is not None:
        await asyncio.sleep(seconds)
        collector.stop.set()
    result = await task
    return result.failures


@pytest.mark.timeout(90)
async def test_each_stream_polls_at_its_own_period_and_delay(tmp_path) -> None:
    emulator = emulator_for(rows=60)
    recorder = Recorder(emulator)
    config, out = tmp_path / "config" / "params.json", tmp_path / "out" / "events.jsonl"
    config.parent.mkdir()
    try:
        _write(config, emulator.base_url, out, "2024-05-01")
        failures = await _run(config, RUN_SECS)
    finally:
        emulator.stop()
    assert failures == []
    assert read_jsonl(out), "nothing was delivered"
    for service, (marker, period, delay) in PACE.items():
        windows = recorder.windows(marker)
        steady = windows[1:]  # the first request catches up the whole lookback
        assert len(steady) >= RUN_SECS // period - 2, (service, windows)
        for sent, end in steady:
            behind = (sent - end).total_seconds()
            # its own delay behind now: never earlier, at most one period and the tolerance later
            assert delay <= behind <= delay + period + TOLERANCE_SECS, (service, sent, end)
        gaps = [(b[0] - a[0]).total_seconds() for a, b in pairwise(steady)]
        assert all(abs(gap - period) <= TOLERANCE_SECS for gap in gaps), (service, gaps)


@pytest.mark.timeout(90)
async def test_changing_one_reset_marker_rereads_that_stream_only(tmp_path) -> None:
    emulator = emulator_for(rows=60, anchor_age=timedelta(hours=2))
    recorder = Recorder(emulator)
    config, out = tmp_path / "config" / "params.json", tmp_path / "out" / "events.jsonl"
    config.parent.mkdir()
    firsts: dict[str, list[datetime]] = {}
    try:
        for marker in ("2024-05-01", "2024-05-01", "2024-06-01"):
            _write(config, emulator.base_url, out, marker)
            before = len(recorder.requests)
            assert await _run(config, None) == []
            for service, (name, _, _) in PACE.items():
                starts = [
                    min(_parse(s) for s in _STAMP.findall(r.target))
                    for r in recorder.requests[before:]
                    if name in r.target.split("?")[0] and len(_STAMP.findall(r.target)) >= 2
                ]
                firsts.setdefault(service, []).append(min(starts, default=None))  # type: ignore[arg-type]
    finally:
        emulator.stop()
    first, again, reset = firsts[DLP]
    assert first is not None and reset is not None
    # after the reset DlpDetail starts from the lookback again; the first start had it too
    assert abs((reset - first).total_seconds()) <= 60
    assert again is None or again > first + timedelta(hours=12)  # resumed, not restarted
    trace_first, trace_again, trace_after = firsts[TRACE]
    assert trace_first is not None
    for later in (trace_again, trace_after):  # message trace kept its state throughout
        assert later is None or later > trace_first + timedelta(hours=12)


@pytest.mark.timeout(60)
async def test_a_disabled_input_collects_nothing(tmp_path) -> None:
    emulator = emulator_for(rows=20)
    recorder = Recorder(emulator)
    config, out = tmp_path / "config" / "params.json", tmp_path / "out" / "events.jsonl"
    config.parent.mkdir()
    try:
        _write(config, emulator.base_url, out, "2024-05-01")
        data = json.loads(config.read_text(encoding="utf-8"))
        data["office365_reporting_message"]["enabled"] = False
        config.write_text(json.dumps(data), encoding="utf-8")
        assert await _run(config, None) == []  # --once: nothing to catch up
        assert await _run(config, 1.0) == []  # daemon: idles until stopped
    finally:
        emulator.stop()
    assert recorder.requests == []
    assert read_jsonl(out) == []
