"""The collector stays inside the tenant's Graph quota and follows Retry-After."""

from __future__ import annotations

import pytest
from harness import (
    EmulatorProcess,
    collector_config,
    emulator_settings,
    key,
    now,
    output_lines,
    parse_time,
    run_collector,
    visible_by,
    watermark,
)

pytestmark = pytest.mark.integration

QUOTA = 6
WINDOW_SECS = 4.0


def _max_in_any_window(times: list[float], window: float) -> int:
    times = sorted(times)
    best = 0
    left = 0
    for right, t in enumerate(times):
        while times[left] <= t - window:
            left += 1
        best = max(best, right - left + 1)
    return best


@pytest.mark.parametrize("budget_requests", [QUOTA, 100])
def test_small_quota_is_respected_and_everything_arrives(tmp_path, budget_requests):
    emulator = EmulatorProcess(
        tmp_path,
        emulator_settings(
            3_000,
            late_fraction=0.0,
            tenant={"quota_requests": QUOTA, "quota_window_secs": WINDOW_SECS},
        ),
    ).start()
    try:
        config = collector_config(
            tmp_path,
            emulator.url,
            page_size=250,
            tenant={"budget": {"requests": budget_requests, "window_secs": WINDOW_SECS}},
        )
        started = now()
        result = run_collector(config, "--once", timeout=300)
        assert result.returncode == 0, result.stderr[-3000:]
        stats = emulator.stats()
        accepted = stats["accepted_times"]
        assert len(accepted) >= 12, "the test needs several quota windows of requests"
        assert _max_in_any_window(accepted, WINDOW_SECS) <= QUOTA
        if budget_requests <= QUOTA:
            assert stats["throttled"] == 0, "a budget inside the quota should never see a 429"
        else:
            assert stats["throttled"] >= 1, "the test should have provoked throttling"
            # Retry-After is followed: at most a couple of 429s per quota window of work.
            assert stats["throttled"] <= 2 * (len(accepted) // QUOTA + 1)
            assert "throttled" in result.stderr.lower()
        truth = emulator.ground_truth()
        mark = watermark(config)
        delivered = {key(e["record"]) for e in output_lines(tmp_path)}
        expected = {
            (r["id"], r["recipientAddress"].lower())
            for r in truth
            if visible_by(r, started) and parse_time(r["receivedDateTime"]) < mark
        }
        assert expected <= delivered
    finally:
        emulator.stop()
