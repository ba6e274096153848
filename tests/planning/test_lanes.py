"""Lane planning: which lanes a mode builds, where live starts, when final absorbs a window."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

from o365collector.planning.lanes import (
    BandLane,
    Priority,
    Tier,
    WatermarkLane,
    backfill_lane,
    build_lanes,
    final_absorbs,
    final_age_secs,
    live_start,
    sweep_window,
)
from o365collector.windows import TimeWindow

NOW = datetime(2026, 11, 22, 12, 0, 0, 500000, tzinfo=UTC)
TIERS = [Tier(3600, 180), Tier(600, 30), Tier(90000, 3600), Tier(21600, 1200)]


def _fresh(**overrides):
    args = {
        "mode": "fresh",
        "settle_delay_secs": 30,
        "poll_interval_secs": 15,
        "horizon_secs": 90000,
        "final_every_secs": 3600,
        "tiers": TIERS,
    }
    args.update(overrides)
    return build_lanes(**args)


def test_fresh_mode_builds_live_sorted_contiguous_bands_and_final():
    lanes = _fresh()
    assert [lane.name for lane in lanes] == [
        "live",
        "resweep-10m",
        "resweep-1h",
        "resweep-6h",
        "resweep-25h",
        "final",
    ]
    bands = [lane for lane in lanes if isinstance(lane, BandLane)]
    assert bands[0].min_age_secs == 30  # starts where live's settle delay ends
    for earlier, later in itertools.pairwise(bands):
        assert earlier.max_age_secs == later.min_age_secs
    assert bands[-1].max_age_secs == 90000
    assert [b.every_secs for b in bands] == [30, 180, 1200, 3600]
    assert lanes[0].priority is Priority.LIVE and lanes[-1].priority is Priority.FINAL
    assert all(b.priority is Priority.RESWEEP for b in bands)


def test_each_band_reaches_one_of_its_periods_past_its_upper_age():
    bands = [lane for lane in _fresh() if isinstance(lane, BandLane)]
    assert [b.reach_secs for b in bands] == [630, 3780, 22800, 93600]
    # a row that changes at 599 s old (just before leaving the 10-minute band) is still in
    # that band's sweeps until it is 630 s old: at least one sweep sees the change
    ten = bands[0]
    window = ten.window(NOW)
    changed_at = NOW - timedelta(seconds=599)
    for sweep in range(2):
        later = ten.window(NOW + timedelta(seconds=30 * sweep))
        assert later.start <= changed_at < later.end
    assert window.start == (NOW - timedelta(seconds=630)).replace(microsecond=0)


def test_final_reads_only_after_the_oldest_band_reach():
    lanes = _fresh()
    final = lanes[-1]
    assert isinstance(final, WatermarkLane) and final.name == "final"
    assert final.settle_secs == 93600  # 25 h horizon + the 25 h band's hourly period
    assert final_age_secs(lanes, 90000) == 93600
    assert max(b.reach_secs for b in lanes if isinstance(b, BandLane)) <= final.settle_secs


def test_final_age_without_bands_is_the_horizon():
    lanes = _fresh(tiers=[])
    assert [lane.name for lane in lanes] == ["live", "final"]
    assert final_age_secs(lanes, 90000) == 90000
    assert final_age_secs([], 7200) == 7200


def test_tiers_beyond_the_horizon_are_cut_and_empty_ones_dropped():
    lanes = _fresh(horizon_secs=3600, settle_delay_secs=600)
    bands = [lane for lane in lanes if isinstance(lane, BandLane)]
    assert [(b.min_age_secs, b.max_age_secs) for b in bands] == [(600, 3600)]


def test_fixed_delay_mode_is_the_final_lane_alone():
    lanes = _fresh(mode="fixed_delay", horizon_secs=90000, final_every_secs=60)
    assert lanes == [WatermarkLane("final", Priority.FINAL, 90000, 60)]


def test_band_window_is_on_whole_seconds():
    band = BandLane("resweep-1h", Priority.RESWEEP, 600, 3600, 180)
    window = band.window(NOW)
    assert window == TimeWindow(
        datetime(2026, 11, 22, 10, 57, 0, tzinfo=UTC), datetime(2026, 11, 22, 11, 50, 0, tzinfo=UTC)
    )


def test_live_starts_where_final_stops_but_never_before_the_first_start():
    first = NOW - timedelta(days=10)
    assert live_start(first, NOW, 90000) == (NOW - timedelta(seconds=90000)).replace(microsecond=0)
    recent = NOW - timedelta(hours=2)
    assert live_start(recent, NOW, 90000) == recent


def test_final_absorbs_only_settled_contiguous_windows():
    mark = datetime(2026, 11, 20, 0, 0, tzinfo=UTC)
    window = TimeWindow(mark - timedelta(hours=1), mark + timedelta(hours=1))
    read_at = mark + timedelta(hours=1, seconds=90000)
    assert final_absorbs(mark, window, read_at, 90000) == window.end
    too_fresh = read_at - timedelta(seconds=1)
    assert final_absorbs(mark, window, too_fresh, 90000) is None
    gap = TimeWindow(mark + timedelta(minutes=1), mark + timedelta(hours=1))
    assert final_absorbs(mark, gap, read_at, 90000) is None
    behind = TimeWindow(mark - timedelta(hours=2), mark)
    assert final_absorbs(mark, behind, read_at, 90000) is None


def test_backfill_lane_is_bounded_low_priority_and_named_by_its_range():
    start = datetime(2026, 11, 1, tzinfo=UTC)
    until = datetime(2026, 11, 10, tzinfo=UTC)
    lane = backfill_lane(start, until)
    assert lane.start == start and lane.until == until
    assert lane.priority is Priority.FINAL
    assert lane.name == "backfill:20261101T000000-20261110T000000"


def test_a_sweep_never_reaches_behind_final_nor_ahead_of_live():
    band = TimeWindow(NOW - timedelta(hours=26), NOW - timedelta(minutes=10))
    oldest = NOW - timedelta(days=89)
    first_run = NOW - timedelta(minutes=10, seconds=600)  # final's mark: the look-back
    assert sweep_window(band, oldest=oldest, final_mark=None, live_mark=None) == band
    # A first run with a 600 s look-back: nothing older than it, nothing ahead of live.
    live = NOW - timedelta(minutes=3)
    assert sweep_window(band, oldest=oldest, final_mark=first_run, live_mark=live) == (
        TimeWindow(first_run, band.end)
    )
    # Steady state: final is behind the band; the band is read whole.
    behind = NOW - timedelta(hours=27)
    assert sweep_window(band, oldest=oldest, final_mark=behind, live_mark=NOW) == band
    # Live has not reached the band yet, or final is past it: nothing to sweep.
    early = NOW - timedelta(hours=30)
    assert sweep_window(band, oldest=oldest, final_mark=behind, live_mark=early) is None
    assert sweep_window(band, oldest=oldest, final_mark=band.end, live_mark=NOW) is None
    # Retention cuts the oldest part.
    young = NOW - timedelta(hours=2)
    assert sweep_window(band, oldest=young, final_mark=None, live_mark=None) == (
        TimeWindow(young, band.end)
    )
