"""Issue 18, disk faults: an unwritable or full state, and a file sink on a full disk.

CI runs as root, for whom ``chmod`` stops nothing, so the faults are real mechanisms that
hold for root too:

- ``state_dir`` under ``/proc`` (no file can be created there), or a file where the folder
  should be: ``run`` exits 2 with one line naming the path;
- a full disk for the state: the collector runs with ``RLIMIT_FSIZE`` of 1 KiB, so every
  write past the first KiB of a file fails (EFBIG, which SQLite reports as a disk error);
  it exits 1 naming ``state.db``, the state opens afterwards unchanged, and the next run
  resumes from its checkpoint: every row once, none missing;
- the state's disk filling up while the daemon runs (the same limit set with ``prlimit``):
  it stops naming ``state.db``, and a restart delivers every row, repeating only what was
  in flight (its exit status is not asserted: ``app.py`` exits 0 after a stream's
  ``StateError``, a known gap);
- a full disk for the file sink: its path is a symlink to ``/dev/full`` (every write fails
  with ENOSPC). The daemon keeps the events, retries, says so by name in its log and on
  ``/readyz``, and once the symlink is replaced by a real file it delivers every row
  exactly once without a restart;
- a write cut short (``RLIMIT_FSIZE`` inside a batch): the batch is sent again and lands
  once, with no copy of the failed attempt's bytes.
"""

from __future__ import annotations

import json
import os
import resource
import signal
import subprocess
import sys
import textwrap
import threading
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from harness import (
    EmulatorProcess,
    collector_config,
    collector_env,
    emulator_settings,
    free_port,
    key,
    now,
    output_lines,
    parse_time,
    run_collector,
    start_collector,
    visible_by,
    watermark,
)
from pytest_httpserver import HTTPServer
from replicas_support import wait_until
from werkzeug import Request, Response

pytestmark = pytest.mark.integration

QUIET = {"late_fraction": 0.0, "status_change_fraction": 0.0, "visible_delay_secs": [0.2, 1.0]}
FAST = {"settle_delay_secs": 2, "poll_interval_secs": 1}


@pytest.fixture
def emulator(tmp_path: Path) -> Any:
    """An emulator with 300 rows of history and 5 new rows a second, none late or changing."""
    folder = tmp_path / "emulator"
    folder.mkdir()
    process = EmulatorProcess(
        folder, emulator_settings(300, live_rows_per_sec=5, live_secs=600, **QUIET)
    ).start()
    yield process
    process.stop()


def _one_error_line(stderr: str) -> str:
    """The single ``o365collector: error:`` line of a failed command (no traceback)."""
    assert "Traceback" not in stderr, stderr
    errors = [line for line in stderr.splitlines() if line.startswith("o365collector: error:")]
    assert len(errors) == 1, stderr
    return errors[0]


def _config_with_state_dir(tmp_path: Path, state_dir: Path) -> Path:
    config = collector_config(tmp_path, "http://127.0.0.1:9")
    data = yaml.safe_load(config.read_text())
    data["state_dir"] = str(state_dir)
    config.write_text(yaml.safe_dump(data))
    return config


@pytest.mark.parametrize("where", ["under /proc", "a file"])
def test_an_unwritable_state_dir_is_named_and_nothing_runs(tmp_path: Path, where: str) -> None:
    """``run`` exits 2 with one line naming ``state_dir``; no traceback, no output file."""
    if where == "a file":
        state_dir = tmp_path / "state"
        state_dir.write_text("not a folder")
    else:
        state_dir = Path(f"/proc/o365collector-test-{os.getpid()}/state")
    result = run_collector(_config_with_state_dir(tmp_path, state_dir), "--once", timeout=60)
    assert result.returncode == 2, result.stderr
    line = _one_error_line(result.stderr)
    assert f"cannot create state_dir {state_dir}" in line
    assert "check the path and its permissions" in line
    assert not (tmp_path / "out" / "events.jsonl").exists()


def _limit_file_size(limit: int) -> None:
    """In the child before exec: writes past ``limit`` bytes of any file fail with EFBIG."""
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, resource.RLIM_INFINITY))


def _run_once_with_file_limit(config: Path, limit: int) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "ITEST_SECRET": (config.parent / "secret.env").read_text()}
    command = [sys.executable, "-m", "o365collector", "run", "--once", "--config", str(config)]
    return subprocess.run(
        command,
        capture_output=True,  # pipes: the limit does not touch them
        text=True,
        env=env,
        timeout=120,
        check=False,
        preexec_fn=lambda: _limit_file_size(limit),
    )


def _delivered_keys(workdir: Path) -> list[tuple[str, str]]:
    return [key(line["record"]) for line in output_lines(workdir)]


def test_a_full_disk_under_the_state_stops_the_run_and_the_next_one_resumes(
    tmp_path: Path, emulator: EmulatorProcess
) -> None:
    """A full state disk at start: exit 1 naming ``state.db``, state unchanged, then resume."""
    config = collector_config(tmp_path, emulator.url, **FAST)
    first = run_collector(config, "--once")
    assert first.returncode == 0, first.stderr[-3000:]
    mark = watermark(config)
    delivered = len(_delivered_keys(tmp_path))
    assert delivered >= 300
    state = tmp_path / "state" / "state.db"

    full = _run_once_with_file_limit(config, 1024)
    assert full.returncode == 1, full.stderr[-3000:]
    line = _one_error_line(full.stderr)
    assert f"cannot open state database {state}: " in line
    assert "and that its disk has free space" in line
    assert watermark(config) == mark  # the state opens, as the first run left it
    assert len(_delivered_keys(tmp_path)) == delivered

    wait_until("no new row became visible", lambda: _visible_rows(emulator, mark) > 0)
    again = run_collector(config, "--once")
    assert again.returncode == 0, again.stderr[-3000:]
    resumed = watermark(config)
    assert resumed > mark
    keys = _delivered_keys(tmp_path)
    assert len(keys) == len(set(keys)), "a row was delivered twice"
    truth = {key(r) for r in emulator.ground_truth() if parse_time(r["receivedDateTime"]) < resumed}
    assert set(keys) == truth
    assert len(keys) > delivered  # the third run delivered what came after the first one


def _visible_rows(emulator: EmulatorProcess, after: datetime) -> int:
    """Rows received at or after ``after`` that a run started now would read.

    ``run --once`` reads up to now minus ``settle_delay_secs`` (2 s): a row counts when it
    was received before that (with a second to spare) and is visible.
    """
    moment = now()
    settled = moment - timedelta(seconds=FAST["settle_delay_secs"] + 1)
    return sum(
        1
        for r in emulator.ground_truth()
        if after <= parse_time(r["receivedDateTime"]) < settled and visible_by(r, moment)
    )


class _Receiver:
    """The HTTP sink's far end (pytest-httpserver): each line with its arrival time."""

    def __init__(self, httpserver: HTTPServer) -> None:
        self.arrivals: list[tuple[float, tuple[str, str]]] = []
        self._lock = threading.Lock()
        httpserver.expect_request("/ingest").respond_with_handler(self._take)
        self.url = httpserver.url_for("/ingest")

    def _take(self, request: Request) -> Response:
        at = time.monotonic()
        with self._lock:
            for line in request.get_data().splitlines():
                self.arrivals.append((at, key(json.loads(line)["record"])))
        return Response("ok")

    def keys(self) -> list[tuple[str, str]]:
        with self._lock:
            return [k for _, k in self.arrivals]


def _start_piped(config: Path) -> tuple[subprocess.Popen[str], list[str]]:
    """The daemon with its log on a pipe (a file limit must not hit its log), read aloud."""
    command = [sys.executable, "-m", "o365collector", "run", "--config", str(config)]
    proc = subprocess.Popen(
        [*command, "--log-format", "json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=collector_env(config.parent),
    )
    lines: list[str] = []
    assert proc.stdout is not None
    threading.Thread(target=lambda: lines.extend(proc.stdout or ()), daemon=True).start()
    return proc, lines


def test_a_state_disk_filling_up_mid_run_stops_with_its_path_and_a_restart_resumes(
    tmp_path: Path, emulator: EmulatorProcess, httpserver: HTTPServer
) -> None:
    """The state's disk fills while the daemon runs: it stops naming ``state.db``; the state
    opens afterwards, and a restart delivers every row, repeating only what was in flight.

    The fault: ``RLIMIT_FSIZE`` of 1 KiB set on the running collector (``prlimit``), so its
    next write to ``state.db-wal`` fails. The only sink is HTTP, so only the state is hit.
    """
    receiver = _Receiver(httpserver)
    config = collector_config(tmp_path, emulator.url, **FAST)
    data = yaml.safe_load(config.read_text())
    data["sinks"] = [{"type": "http", "name": "web", "url": receiver.url, "payload": "envelope"}]
    config.write_text(yaml.safe_dump(data))
    state = tmp_path / "state" / "state.db"
    proc, lines = _start_piped(config)
    try:
        wait_until("the history never arrived", lambda: len(receiver.keys()) >= 300)
        filled = time.monotonic()
        resource.prlimit(proc.pid, resource.RLIMIT_FSIZE, (1024, resource.RLIM_INFINITY))
        proc.wait(60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(30)
    log = "".join(lines)
    assert proc.returncode == 1, log[-3000:]  # a supervisor restarts it
    assert "Traceback" not in log, log[-3000:]
    written = ("dedup fingerprints", "checkpoint", "dedup fingerprints and checkpoint")
    assert any(f"cannot write {w} to {state}: disk I/O error" in log for w in written), log[-3000:]
    before_restart = len(receiver.keys())
    mark = watermark(config)  # the state opens as the failed run left it

    again, _ = _start_piped(config)
    try:
        wait_until("the restart delivered nothing", lambda: len(receiver.keys()) > before_restart)
    finally:
        again.send_signal(signal.SIGTERM)
        assert again.wait(60) == 0
    keys = receiver.keys()
    resumed = watermark(config)
    assert resumed > mark
    truth = {key(r) for r in emulator.ground_truth() if parse_time(r["receivedDateTime"]) < resumed}
    assert truth <= set(keys)
    first: dict[tuple[str, str], float] = {}
    for at, row in receiver.arrivals:
        first.setdefault(row, at)
    repeated = {row for row in keys if keys.count(row) > 1}
    # Only what was in flight when the disk filled (delivered, not yet committed) repeats.
    assert all(first[row] >= filled - 5 for row in repeated), sorted(repeated)[:5]


def test_a_file_sink_on_a_full_disk_waits_and_delivers_once_when_space_returns(
    tmp_path: Path, emulator: EmulatorProcess
) -> None:
    """ENOSPC on the file sink: named in the log and on /readyz, held, then delivered once."""
    port = free_port()
    config = collector_config(tmp_path, emulator.url, **FAST)
    data = yaml.safe_load(config.read_text())
    data["observability"] = {"listen": f"127.0.0.1:{port}", "readiness_max_sink_failure_secs": 1}
    data["collection"]["retry"] = {"initial_interval_secs": 0.2, "max_interval_secs": 1}
    config.write_text(yaml.safe_dump(data))
    out = tmp_path / "out" / "events.jsonl"
    out.parent.mkdir()
    out.symlink_to("/dev/full")
    log = tmp_path / "collector.log"
    started = now()
    proc = start_collector(config)
    try:
        reason = f"write to {out} failed: No space left on device"
        wait_until(lambda: log.read_text()[-3000:], lambda: reason in log.read_text())

        def not_ready() -> dict[str, Any] | None:
            answer = httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=5)
            body = answer.json()
            failing = [p for p in body["problems"] if p.startswith("sink file: failing for")]
            return body if answer.status_code == 503 and failing else None

        wait_until("/readyz never named the failing sink", not_ready)
        assert proc.poll() is None  # it waits for space; it does not give up or drop

        replacement = out.with_name("events.jsonl.new")
        replacement.touch()
        replacement.replace(out)  # space is back: a real file where the symlink was
        wait_until(
            lambda: f"only {len(_delivered_keys(tmp_path))} lines",
            lambda: len(_delivered_keys(tmp_path)) >= 300,
        )
        wait_until("/readyz stayed not ready", lambda: not_ready() is None)
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(60) == 0, log.read_text()[-3000:]
    text = log.read_text()
    assert "Traceback" not in text
    keys = _delivered_keys(tmp_path)
    assert len(keys) == len(set(keys)), "a row was delivered twice"
    history = {
        key(r) for r in emulator.ground_truth() if parse_time(r["receivedDateTime"]) < started
    }
    assert len(history) >= 300
    assert history <= set(keys)
    mark = watermark(config)
    assert {
        key(r) for r in emulator.ground_truth() if parse_time(r["receivedDateTime"]) < mark
    } <= set(keys)


_CUT_SHORT = textwrap.dedent(
    """
    import asyncio, json, resource, signal, sys
    from pathlib import Path
    from o365collector.event import Event
    from o365collector.sinks.jsonl.sink import JsonlSink

    def batch(first):
        return [
            Event("t", "message_trace", f"{n:032x}", {"id": f"row-{n}", "pad": "x" * 200})
            for n in range(first, first + 10)
        ]

    async def main():
        path = Path(sys.argv[1])
        sink = JsonlSink("file", path, max_bytes=1 << 30, keep_files=2)
        await sink.start()
        results = [await sink.send(batch(0))]
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        limit = path.stat().st_size + 700  # the next batch is cut after 700 bytes
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, resource.RLIM_INFINITY))
        results += [await sink.send(batch(10)), await sink.send(batch(10))]
        resource.setrlimit(resource.RLIMIT_FSIZE, (resource.RLIM_INFINITY,) * 2)
        results.append(await sink.send(batch(10)))
        await sink.close()
        print(json.dumps([[r.status.name, r.reason] for r in results]))

    asyncio.run(main())
    """
)


def test_a_write_cut_short_is_sent_again_and_lands_once(tmp_path: Path) -> None:
    """Bytes of a failed attempt (written or still buffered) never reach the file."""
    path = tmp_path / "events.jsonl"
    done = subprocess.run(
        [sys.executable, "-c", _CUT_SHORT, str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    results = json.loads(done.stdout)
    assert [status for status, _ in results] == ["DELIVERED", "RETRY", "RETRY", "DELIVERED"]
    assert results[1][1] == f"write to {path} failed: File too large"
    ids = [json.loads(line)["record"]["id"] for line in path.read_text().splitlines()]
    assert ids == [f"row-{n}" for n in range(20)]  # each once, in order, no partial line
