"""Properties of the window planner: contiguous, half-open, settled, bounded, in retention."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

from hypothesis import example, given, settings
from hypothesis import strategies as st

from o365collector.windows import PlannerSettings, TimeWindow, floor_second, plan_next_window

FAST = settings(max_examples=200, deadline=None, database=None)
DAY = 86400.0

moments = st.datetimes(
    min_value=datetime(2020, 1, 1), max_value=datetime(2030, 1, 1), timezones=st.just(UTC)
)


@st.composite
def planner_settings(
    draw: st.DrawFn, min_window: st.SearchStrategy[float] | None = None
) -> PlannerSettings:
    low = draw(min_window if min_window is not None else st.floats(1.0, 900.0))
    return PlannerSettings(
        settle_delay_secs=draw(st.floats(0.0, 3600.0)),
        # whole seconds, as configured (timedelta would round a float's last digits)
        max_window_secs=float(draw(st.integers(math.ceil(max(low, 1.0)), int(DAY)))),
        min_window_secs=low,
        retention_secs=draw(st.floats(DAY, 30 * DAY)),
        # whole seconds, as configured (default 3600); fractional margins: see below
        retention_margin_secs=float(draw(st.integers(0, 7200))),
    )


def _check(plan_window: TimeWindow, watermark: datetime, now: datetime, s: PlannerSettings) -> None:
    start, end = plan_window.start, plan_window.end
    assert start < end  # half-open and never empty
    assert start == floor_second(start) and end == floor_second(end)  # whole seconds
    assert end <= now - timedelta(seconds=s.settle_delay_secs)  # settled, so never in the future
    assert plan_window.seconds <= s.max_window_secs
    assert plan_window.seconds >= s.min_window_secs
    oldest = floor_second(now - timedelta(seconds=s.retention_secs))
    assert start >= oldest + timedelta(seconds=s.retention_margin_secs)  # inside retention
    assert start >= floor_second(watermark)  # never re-reads before the watermark


@FAST
@given(watermark=moments, now=moments, s=planner_settings())
def test_a_planned_window_is_settled_bounded_and_in_retention(
    watermark: datetime, now: datetime, s: PlannerSettings
) -> None:
    plan = plan_next_window(watermark, now, s)
    assert plan.clamped_secs >= 0
    if plan.window is None:
        assert plan.wait_secs >= 1.0
        return
    assert plan.wait_secs == 0.0
    _check(plan.window, watermark, now, s)
    if plan.clamped_secs == 0:
        assert plan.window.start == floor_second(watermark)  # starts where the last ended
    else:
        skipped = plan.window.start - floor_second(watermark)
        assert skipped == timedelta(seconds=plan.clamped_secs)


@FAST
@given(
    watermark=moments,
    now=moments,
    s=planner_settings(),
    steps=st.lists(st.floats(0.0, 2 * DAY), min_size=1, max_size=8),
)
def test_successive_windows_are_contiguous(
    watermark: datetime, now: datetime, s: PlannerSettings, steps: list[float]
) -> None:
    """Committing each window and planning again, as the lane does, leaves no gap or overlap."""
    watermark = floor_second(watermark)
    previous_end: datetime | None = None
    for step in steps:
        plan = plan_next_window(watermark, now, s)
        if plan.window is not None:
            _check(plan.window, watermark, now, s)
            if previous_end is not None and plan.clamped_secs == 0:
                assert plan.window.start == previous_end
            previous_end = watermark = plan.window.end
        now += timedelta(seconds=step)


@settings(max_examples=50, deadline=None, database=None)
@given(watermark=moments, now=moments, s=planner_settings(min_window=st.just(0.0)))
@example(
    watermark=datetime(2026, 1, 1, tzinfo=UTC),
    now=datetime(2026, 1, 1, tzinfo=UTC),
    s=PlannerSettings(0.0, 60.0, 0.0, DAY),
)
def test_min_window_zero_never_raises(
    watermark: datetime, now: datetime, s: PlannerSettings
) -> None:
    plan = plan_next_window(watermark, now, s)
    if plan.window is not None:
        _check(plan.window, watermark, now, s)


@settings(max_examples=50, deadline=None, database=None)
@given(watermark=moments, now=moments, s=planner_settings())
@example(
    watermark=datetime(2020, 1, 1, tzinfo=UTC),
    now=datetime(2020, 1, 2, tzinfo=UTC),
    s=PlannerSettings(0.0, 2.0, 1.0, DAY, retention_margin_secs=1.5),
)
def test_a_fractional_retention_margin_keeps_whole_seconds(
    watermark: datetime, now: datetime, s: PlannerSettings
) -> None:
    plan = plan_next_window(watermark, now, s)
    if plan.window is not None:
        _check(plan.window, watermark, now, s)
