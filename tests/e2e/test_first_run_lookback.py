"""Issue 13.3: on a stream with no state, no lane reads anything older than the look-back.

``collection.initial_lookback_secs: 600`` delivered 26 hours of history on a first run: the
re-sweep bands read their whole reach whatever the look-back. Only ``backfill`` reads
older history. Emulator and collector run as real processes over loopback HTTP.
"""

from __future__ import annotations

import subprocess
import sys
from datetime import timedelta

import pytest
from harness import (
    EmulatorProcess,
    collector_config,
    collector_env,
    emulator_settings,
    now,
    output_lines,
    parse_time,
    run_collector,
)

pytestmark = pytest.mark.integration

LOOKBACK = 600


def test_a_first_run_reads_nothing_older_than_the_look_back(tmp_path) -> None:
    # 3 days of history, about 14 rows a minute: well over a hundred in the look-back.
    emulator = EmulatorProcess(tmp_path, emulator_settings(60_000)).start()
    try:
        config = collector_config(
            tmp_path, emulator.url, initial_lookback_secs=LOOKBACK, settle_delay_secs=5
        )
        started = now()
        first = run_collector(config, "--once")
        assert first.returncode == 0, first.stderr[-3000:]
        second = run_collector(config, "--once")  # state exists now; bands still may not
        assert second.returncode == 0, second.stderr[-3000:]
    finally:
        emulator.stop()
    oldest_allowed = started - timedelta(seconds=LOOKBACK + 2)
    received = [parse_time(e["record"]["receivedDateTime"]) for e in output_lines(tmp_path)]
    assert len(received) > 100, "the look-back held too few rows to prove anything"
    older = [r for r in received if r < oldest_allowed]
    assert not older, (
        f"{len(older)} of {len(received)} rows older than the {LOOKBACK} s look-back, "
        f"the oldest {min(older).isoformat()}"
    )


def test_validate_says_how_far_a_first_run_reads_back(tmp_path) -> None:
    config = collector_config(tmp_path, "http://127.0.0.1:9", initial_lookback_secs=LOOKBACK)
    result = subprocess.run(
        [sys.executable, "-m", "o365collector", "validate", "--config", str(config)],
        capture_output=True,
        text=True,
        env=collector_env(tmp_path),
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert f"reads back {LOOKBACK} s" in result.stdout
    assert "backfill" in result.stdout
