"""Time windows: validation, API encodings, parsing, and the planner (with properties)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from o365collector.windows import (
    PlannerSettings,
    TimeWindow,
    iso_z,
    iso_z_last_tick,
    parse_iso,
    plan_next_window,
)

T0 = datetime(2024, 5, 1, 0, 0, 0, tzinfo=UTC)


# --- TimeWindow -------------------------------------------------------------------------


def test_window_seconds_and_str() -> None:
    window = TimeWindow(T0, T0 + timedelta(hours=1))
    assert window.seconds == 3600.0
    assert str(window) == "[2024-05-01T00:00:00Z, 2024-05-01T01:00:00Z)"


@pytest.mark.parametrize("length", [timedelta(0), timedelta(seconds=-1)])
def test_window_rejects_empty_or_inverted(length: timedelta) -> None:
    with pytest.raises(ValueError, match="not after start"):
        TimeWindow(T0, T0 + length)


@pytest.mark.parametrize(
    ("start", "end"),
    [
        (datetime(2024, 5, 1), T0 + timedelta(hours=1)),
        (T0, datetime(2024, 5, 1, 1)),
    ],
)
def test_window_rejects_naive(start: datetime, end: datetime) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        TimeWindow(start, end)


def test_window_is_frozen() -> None:
    window = TimeWindow(T0, T0 + timedelta(seconds=1))
    with pytest.raises(AttributeError):
        window.start = T0 - timedelta(seconds=1)  # type: ignore[misc]


# --- encodings ----------------------------------------------------------------------------


def test_iso_z_formats_utc_whole_seconds() -> None:
    assert iso_z(T0) == "2024-05-01T00:00:00Z"
    assert iso_z(T0.replace(microsecond=999_999)) == "2024-05-01T00:00:00Z"


def test_iso_z_converts_offsets_and_naive() -> None:
    plus2 = datetime(2024, 5, 1, 2, 30, 0, tzinfo=timezone(timedelta(hours=2)))
    assert iso_z(plus2) == "2024-05-01T00:30:00Z"
    assert iso_z(datetime(2024, 5, 1, 7, 8, 9)) == "2024-05-01T07:08:09Z"


@pytest.mark.parametrize(
    ("end", "expected"),
    [
        (T0, "2024-04-30T23:59:59.9999999Z"),
        (datetime(2024, 1, 1, tzinfo=UTC), "2023-12-31T23:59:59.9999999Z"),
        (datetime(2024, 3, 1, tzinfo=UTC), "2024-02-29T23:59:59.9999999Z"),
        (
            datetime(2024, 5, 1, 3, 0, 0, tzinfo=timezone(timedelta(hours=3))),
            "2024-04-30T23:59:59.9999999Z",
        ),
    ],
)
def test_iso_z_last_tick_is_end_minus_100ns(end: datetime, expected: str) -> None:
    text = iso_z_last_tick(end)
    assert text == expected
    assert len(text.split(".")[1]) == len("9999999Z")
    # 100 ns before the end: parsing (truncated to µs) lands in the last microsecond.
    assert end - parse_iso(text) == timedelta(microseconds=1)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2024-05-01T10:11:12Z", datetime(2024, 5, 1, 10, 11, 12, tzinfo=UTC)),
        ("2024-05-01T10:11:12z", datetime(2024, 5, 1, 10, 11, 12, tzinfo=UTC)),
        ("2024-05-01T10:11:12", datetime(2024, 5, 1, 10, 11, 12, tzinfo=UTC)),
        ("2024-05-01T10:11:12.5Z", datetime(2024, 5, 1, 10, 11, 12, 500_000, tzinfo=UTC)),
        ("2024-05-01T10:11:12.12Z", datetime(2024, 5, 1, 10, 11, 12, 120_000, tzinfo=UTC)),
        ("2024-05-01T10:11:12.123Z", datetime(2024, 5, 1, 10, 11, 12, 123_000, tzinfo=UTC)),
        ("2024-05-01T10:11:12.1234Z", datetime(2024, 5, 1, 10, 11, 12, 123_400, tzinfo=UTC)),
        ("2024-05-01T10:11:12.12345Z", datetime(2024, 5, 1, 10, 11, 12, 123_450, tzinfo=UTC)),
        ("2024-05-01T10:11:12.123456Z", datetime(2024, 5, 1, 10, 11, 12, 123_456, tzinfo=UTC)),
        ("2024-05-01T10:11:12.1234567Z", datetime(2024, 5, 1, 10, 11, 12, 123_456, tzinfo=UTC)),
        ("2024-05-01T10:11:12.9999999Z", datetime(2024, 5, 1, 10, 11, 12, 999_999, tzinfo=UTC)),
        ("2024-05-01T10:11:12.1234567", datetime(2024, 5, 1, 10, 11, 12, 123_456, tzinfo=UTC)),
        ("2024-05-01T10:11:12+02:00", datetime(2024, 5, 1, 8, 11, 12, tzinfo=UTC)),
        ("2024-05-01T10:11:12-05:30", datetime(2024, 5, 1, 15, 41, 12, tzinfo=UTC)),
        (
            "2024-05-01T10:11:12.1234567+02:00",
            datetime(2024, 5, 1, 8, 11, 12, 123_456, tzinfo=UTC),
        ),
        ("2024-05-01T10:11:12.25+00:00", datetime(2024, 5, 1, 10, 11, 12, 250_000, tzinfo=UTC)),
        ("  2024-05-01T10:11:12Z \n", datetime(2024, 5, 1, 10, 11, 12, tzinfo=UTC)),
        ("2024-05-01T10:11:12.123456789Z", datetime(2024, 5, 1, 10, 11, 12, 123_456, tzinfo=UTC)),
        ("2024-05-01T10:11:12.1234567z", datetime(2024, 5, 1, 10, 11, 12, 123_456, tzinfo=UTC)),
        ("2024-05-01", datetime(2024, 5, 1, tzinfo=UTC)),
    ],
)
def test_parse_iso(text: str, expected: datetime) -> None:
    parsed = parse_iso(text)
    assert parsed == expected
    assert parsed.utcoffset() == timedelta(0)


@pytest.mark.parametrize(
    "text", ["yesterday", "", "2024-05-01T10:11:12.Zx", "2024-05-01T10:11:12.12a4Z", "z"]
)
def test_parse_iso_rejects_garbage(text: str) -> None:
    with pytest.raises(ValueError):
        parse_iso(text)


@given(st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1)))
def test_parse_iso_round_trips_iso_z(moment: datetime) -> None:
    whole = moment.replace(microsecond=0, tzinfo=UTC)
    assert parse_iso(iso_z(whole)) == whole


# --- planner: examples --------------------------------------------------------------------

PLAN = PlannerSettings(
    settle_delay_secs=300,
    max_window_secs=3600,
    min_window_secs=60,
    retention_secs=90 * 86400,
    retention_margin_secs=3600,
)


def test_plan_full_window_when_far_behind() -> None:
    now = T0 + timedelta(days=1, microseconds=123)
    plan = plan_next_window(T0, now, PLAN)
    assert plan.window == TimeWindow(T0, T0 + timedelta(hours=1))
    assert plan.wait_secs == 0.0
    assert plan.clamped_secs == 0.0


def test_plan_ends_at_settle_horizon_when_caught_up() -> None:
    now = T0 + timedelta(minutes=30, seconds=10, microseconds=500_000)
    plan = plan_next_window(T0, now, PLAN)
    assert plan.window is not None
    assert plan.window.start == T0
    assert plan.window.end == T0 + timedelta(minutes=25, seconds=10)


def test_plan_floors_the_watermark() -> None:
    watermark = T0 + timedelta(microseconds=999_999)
    plan = plan_next_window(watermark, T0 + timedelta(days=1), PLAN)
    assert plan.window is not None
    assert plan.window.start == T0


def test_plan_waits_when_too_little_settled() -> None:
    now = T0 + timedelta(seconds=300 + 59)
    plan = plan_next_window(T0, now, PLAN)
    assert plan.window is None
    assert plan.wait_secs == pytest.approx(1.0)
    later = plan_next_window(T0, now + timedelta(seconds=plan.wait_secs), PLAN)
    assert later.window == TimeWindow(T0, T0 + timedelta(seconds=60))


def test_plan_waits_when_watermark_in_future() -> None:
    now = T0
    plan = plan_next_window(T0 + timedelta(hours=1), now, PLAN)
    assert plan.window is None
    assert plan.wait_secs == pytest.approx(3600 + 60 + 300)


def test_plan_clamps_into_retention() -> None:
    now = T0 + timedelta(days=200)
    plan = plan_next_window(T0, now, PLAN)
    oldest = now - timedelta(days=90) + timedelta(hours=1)
    assert plan.window is not None
    assert plan.window.start == oldest
    assert plan.clamped_secs == (oldest - T0).total_seconds()
    assert plan.window.end == oldest + timedelta(hours=1)


def test_plan_with_fractional_settings_keeps_whole_second_ends() -> None:
    """TimeWindow's contract: both ends on whole seconds, whatever float the config holds."""
    fractional = PlannerSettings(
        settle_delay_secs=300,
        max_window_secs=90.5,
        min_window_secs=60,
        retention_secs=90 * 86400,
        retention_margin_secs=3600,
    )
    plan = plan_next_window(T0, T0 + timedelta(days=1), fractional)
    assert plan.window is not None
    assert plan.window.start.microsecond == 0
    assert plan.window.end.microsecond == 0


def test_plan_with_fractional_min_window_never_says_wait_zero() -> None:
    """No window means a positive wait, or the caller would spin."""
    fractional = PlannerSettings(
        settle_delay_secs=0,
        max_window_secs=3600,
        min_window_secs=60.5,
        retention_secs=90 * 86400,
        retention_margin_secs=3600,
    )
    now = T0 + timedelta(seconds=60, microseconds=700_000)
    plan = plan_next_window(T0, now, fractional)
    assert plan.window is None
    assert plan.wait_secs > 0


# --- planner: properties ------------------------------------------------------------------


@st.composite
def planner_settings(draw: st.DrawFn) -> PlannerSettings:
    settle = draw(st.integers(0, 3600))
    min_window = draw(st.integers(1, 3600))
    max_window = draw(st.integers(min_window, 10 * 86400))
    margin = draw(st.integers(0, 7200))
    # A retention too short to ever hold a settled window is a configuration error, not
    # something the planner can satisfy; keep it long enough.
    retention = draw(st.integers(settle + max_window + margin + 2, 120 * 86400))
    return PlannerSettings(
        settle_delay_secs=settle,
        max_window_secs=max_window,
        min_window_secs=min_window,
        retention_secs=retention,
        retention_margin_secs=margin,
    )


def _retention_bound(now: datetime, s: PlannerSettings) -> datetime:
    return (now - timedelta(seconds=s.retention_secs)).replace(microsecond=0) + timedelta(
        seconds=s.retention_margin_secs
    )


def _settled(now: datetime, s: PlannerSettings) -> datetime:
    return (now - timedelta(seconds=s.settle_delay_secs)).replace(microsecond=0)


@settings(max_examples=150, deadline=None)
@given(
    s=planner_settings(),
    lag_secs=st.integers(0, 200 * 86400),
    now_micros=st.integers(0, 999_999),
    steps=st.lists(
        st.one_of(st.just(0), st.integers(0, 600), st.integers(0, 3 * 86400)),
        min_size=1,
        max_size=25,
    ),
)
def test_plan_chain_properties(
    s: PlannerSettings, lag_secs: int, now_micros: int, steps: list[int]
) -> None:
    now = T0 + timedelta(days=400, microseconds=now_micros)
    watermark = now.replace(microsecond=0) - timedelta(seconds=lag_secs)
    previous_end: datetime | None = None
    for step in steps:
        plan = plan_next_window(watermark, now, s)
        bound = _retention_bound(now, s)
        expected_clamp = max(0.0, (bound - watermark).total_seconds())
        assert plan.clamped_secs == expected_clamp
        if plan.window is None:
            start = max(watermark, bound)
            assert (_settled(now, s) - start).total_seconds() < s.min_window_secs
            assert plan.wait_secs > 0
            # The wait is just long enough: a window is ready then, not a second before.
            ready = plan_next_window(watermark, now + timedelta(seconds=plan.wait_secs), s)
            assert ready.window is not None
            if plan.wait_secs >= 1:
                early = now + timedelta(seconds=plan.wait_secs - 1)
                assert plan_next_window(watermark, early, s).window is None
        else:
            window = plan.window
            assert plan.wait_secs == 0.0
            assert window.start.microsecond == 0
            assert window.end.microsecond == 0
            assert window.end <= now - timedelta(seconds=s.settle_delay_secs)
            assert window.seconds <= s.max_window_secs
            assert window.seconds >= s.min_window_secs
            assert window.start >= bound
            # Contiguous unless retention forced a skip, and the skip is what was reported.
            assert window.start == watermark + timedelta(seconds=plan.clamped_secs)
            if previous_end is not None:
                assert window.start >= previous_end
                if plan.clamped_secs == 0:
                    assert window.start == previous_end
            previous_end = window.end
            watermark = window.end
        now += timedelta(seconds=step)


@settings(max_examples=100, deadline=None)
@given(
    s=planner_settings(),
    backlog_windows=st.floats(0, 40, allow_nan=False),
)
def test_plan_catching_up_covers_the_backlog_exactly(
    s: PlannerSettings, backlog_windows: float
) -> None:
    """At a fixed now, windows tile [watermark, settled horizon) with no gap and no overlap."""
    now = T0 + timedelta(days=400, microseconds=250_000)
    horizon = _settled(now, s)
    backlog_secs = int(backlog_windows * s.max_window_secs)
    start = max(horizon - timedelta(seconds=backlog_secs), _retention_bound(now, s))
    watermark = start
    covered = timedelta(0)
    for _ in range(100):
        plan = plan_next_window(watermark, now, s)
        if plan.window is None:
            break
        assert plan.window.start == watermark
        covered += plan.window.end - plan.window.start
        watermark = plan.window.end
    assert watermark <= horizon
    assert (horizon - watermark).total_seconds() < s.min_window_secs
    assert covered == watermark - start
