"""Issue 13.6: backfill ranges beyond retention, unknown stream names, finished backfills.

Every command runs as a real subprocess against the project's Microsoft emulator.
"""

from __future__ import annotations

import re
import subprocess
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from harness import (
    EmulatorProcess,
    cli,
    collector_config,
    collector_env,
    emulator_settings,
    iso,
    kill,
    now,
    output_lines,
    parse_time,
)

pytestmark = pytest.mark.integration

STREAMS = ["message_trace", "rws.MailDetailATP", "rws.MailTraffic"]
_OLDEST = re.compile(r"oldest allowed --from is (\S+Z)\b")
_SUGGESTED = re.compile(r"--from (\S+Z) or later")


def _state_rows(config: Path) -> list[dict[str, Any]]:
    shown = cli(config, "state", "show", "--json")
    assert shown.returncode == 0, shown.stderr
    rows: list[dict[str, Any]] = orjson.loads(shown.stdout)
    return rows


def _backfill_rows(config: Path) -> list[dict[str, Any]]:
    return [r for r in _state_rows(config) if str(r["lane"]).startswith("backfill:")]


def _no_request_reached(emulator: EmulatorProcess) -> bool:
    stats = emulator.stats()
    return stats["accepted"] == 0 and stats["throttled"] == 0 and stats["token_requests"] == 0


@pytest.fixture
def emulator(tmp_path: Path) -> Any:
    process = EmulatorProcess(tmp_path, emulator_settings(600, history_secs=4 * 3600)).start()
    yield process
    process.stop()


def test_from_older_than_a_streams_retention_exits_2_before_any_request(
    tmp_path: Path, emulator: EmulatorProcess
) -> None:
    config = collector_config(tmp_path, emulator.url, tenant={"streams": STREAMS})
    start, end = now() - timedelta(days=20), now() - timedelta(days=19)
    refused = cli(config, "backfill", "--from", iso(start), "--to", iso(end))
    assert refused.returncode == 2, refused.stderr
    message = refused.stderr
    # rws.MailDetailATP keeps 10 days; message_trace and rws.MailTraffic keep 90.
    assert "rws.MailDetailATP" in message and "10 days" in message
    assert "message_trace" not in message.split("Fix:")[0]
    oldest = parse_time(_OLDEST.search(message).group(1))  # type: ignore[union-attr]
    expected = now() - timedelta(days=10) + timedelta(hours=1)
    assert abs((oldest - expected).total_seconds()) < 120
    assert "--stream" in message  # the other fix: leave that stream out
    assert _SUGGESTED.search(message)
    assert _no_request_reached(emulator)
    assert not list(output_lines(tmp_path))


def test_graph_retention_and_the_suggested_from_works(
    tmp_path: Path, emulator: EmulatorProcess
) -> None:
    config = collector_config(tmp_path, emulator.url)
    start = now() - timedelta(days=100)
    refused = cli(config, "backfill", "--from", iso(start), "--to", iso(start + timedelta(hours=1)))
    assert refused.returncode == 2, refused.stderr
    assert "message_trace" in refused.stderr and "90 days" in refused.stderr
    assert _no_request_reached(emulator)
    suggested = parse_time(_SUGGESTED.search(refused.stderr).group(1))  # type: ignore[union-attr]
    assert suggested >= parse_time(_OLDEST.search(refused.stderr).group(1))  # type: ignore[union-attr]
    accepted = cli(
        config, "backfill", "--from", iso(suggested), "--to", iso(suggested + timedelta(hours=1))
    )
    assert accepted.returncode == 0, accepted.stderr[-2000:]
    assert "older than the API keeps" not in accepted.stderr  # no window was clamped


def test_only_the_selected_stream_is_held_to_its_retention(
    tmp_path: Path, emulator: EmulatorProcess
) -> None:
    config = collector_config(tmp_path, emulator.url, tenant={"streams": STREAMS})
    start = now() - timedelta(days=20)
    end = start + timedelta(hours=1)
    chosen = cli(
        config, "backfill", "--from", iso(start), "--to", iso(end), "--stream", "message_trace"
    )
    assert chosen.returncode == 0, chosen.stderr[-2000:]
    assert emulator.stats()["accepted"] >= 1  # message_trace (90 days) was read


def test_unknown_stream_on_backfill_lists_the_configured_names(
    tmp_path: Path, emulator: EmulatorProcess
) -> None:
    config = collector_config(tmp_path, emulator.url, tenant={"streams": STREAMS})
    start, end = now() - timedelta(hours=3), now() - timedelta(hours=2)
    refused = cli(
        config, "backfill", "--from", iso(start), "--to", iso(end), "--stream", "rws.Nope"
    )
    assert refused.returncode == 2, refused.stderr
    assert "rws.Nope" in refused.stderr
    assert all(name in refused.stderr for name in STREAMS), refused.stderr
    assert _no_request_reached(emulator)


def test_unknown_stream_on_state_reset_lists_the_configured_names(
    tmp_path: Path, emulator: EmulatorProcess
) -> None:
    config = collector_config(tmp_path, emulator.url, tenant={"streams": STREAMS})
    refused = cli(
        config, "state", "reset", "--tenant", "itest", "--stream", "mesage_trace", "--yes"
    )
    assert refused.returncode == 2, refused.stderr
    assert "mesage_trace" in refused.stderr
    assert all(name in refused.stderr for name in STREAMS), refused.stderr
    assert "removed" not in refused.stdout
    known = cli(
        config, "state", "reset", "--tenant", "itest", "--stream", "rws.MailTraffic", "--yes"
    )
    assert known.returncode == 0 and "checkpoint(s) removed" in known.stdout, known.stderr


def test_a_finished_backfill_leaves_state_show(tmp_path: Path, emulator: EmulatorProcess) -> None:
    config = collector_config(tmp_path, emulator.url)
    start, end = now() - timedelta(hours=3), now() - timedelta(hours=1)
    filled = cli(config, "backfill", "--from", iso(start), "--to", iso(end))
    assert filled.returncode == 0, filled.stderr[-2000:]
    delivered = len(list(output_lines(tmp_path)))
    assert delivered > 0
    rows = _state_rows(config)
    assert not [r for r in rows if str(r["lane"]).startswith("backfill:")], rows
    assert [(r["stream"], r["lane"]) for r in rows] == [("message_trace", "—")]
    # Finished means remembered, not forgotten: the same range again delivers nothing.
    again = cli(config, "backfill", "--from", iso(start), "--to", iso(end))
    assert again.returncode == 0, again.stderr[-2000:]
    assert len(list(output_lines(tmp_path))) == delivered
    assert not _backfill_rows(config)


def _start_backfill(config: Path, start: datetime, end: datetime) -> subprocess.Popen[bytes]:
    log = (config.parent / "backfill.log").open("ab")
    return subprocess.Popen(
        [sys.executable, "-m", "o365collector", "backfill", "--config", str(config),
         "--from", iso(start), "--to", iso(end), "--log-format", "json"],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=collector_env(config.parent),
    )  # fmt: skip


def test_an_interrupted_backfill_stays_in_state_show(
    tmp_path: Path, emulator: EmulatorProcess
) -> None:
    # A budget of 4 requests per 10 minutes stops the backfill after its first windows.
    config = collector_config(
        tmp_path,
        emulator.url,
        max_window_secs=3600,
        tenant={"budget": {"requests": 4, "window_secs": 600}},
    )
    start, end = now() - timedelta(hours=30), now() - timedelta(hours=2)
    proc = _start_backfill(config, start, end)
    try:
        deadline = time.monotonic() + 90
        progressed: list[dict[str, Any]] = []
        while time.monotonic() < deadline and not progressed:
            assert proc.poll() is None, (tmp_path / "backfill.log").read_text()[-2000:]
            rows = _backfill_rows(config)
            progressed = [r for r in rows if r["watermark"] and parse_time(r["watermark"]) > start]
            time.sleep(0.5)
        assert progressed, "the backfill committed no window in time"
    finally:
        kill(proc)
    (row,) = _backfill_rows(config)
    assert row["stream"] == "message_trace"
    assert parse_time(row["watermark"]) < end.replace(microsecond=0)
