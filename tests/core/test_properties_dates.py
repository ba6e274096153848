"""Properties of the vendor date reader (``o365collector.dates.parse_date``)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from hypothesis import example, given, settings
from hypothesis import strategies as st

from o365collector.dates import epoch_secs, parse_date

FAST = settings(max_examples=200, deadline=None, database=None)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

# Times Microsoft can send: well inside datetime's range whatever the offset.
moments = st.datetimes(
    min_value=datetime(1900, 1, 1), max_value=datetime(2200, 1, 1), timezones=st.just(UTC)
)
offsets = st.integers(-14 * 60, 14 * 60).map(lambda m: timezone(timedelta(minutes=m)))
# Date-shaped text of every accepted form, within datetime's range (out of range: below).
date_like = st.from_regex(
    r"\A\s?(\\?/Date\(-?\d{1,13}([+-]\d{4})?\)\\?/|(19|20|21)\d{2}-\d{2}-\d{2}[T ]\d{2}:\d{2}"
    r"(:\d{2}(\.\d{1,9})?)?([Zz]|[+-]\d{2}:\d{2})?)\s?\Z"
)
out_of_range = st.from_regex(r"\A/Date\(-?\d{15,20}\)/\Z") | st.from_regex(
    r"\A(0001-01-01T0\d:\d{2}:\d{2}\+1\d|9999-12-31T2\d:\d{2}:\d{2}-1\d):00\Z"
)


def _check(moment: object) -> None:
    assert moment is None or (isinstance(moment, datetime) and moment.tzinfo == UTC)


@FAST
@given(value=st.text() | date_like | st.integers() | st.none() | st.floats())
def test_anything_is_a_utc_datetime_or_none(value: object) -> None:
    _check(parse_date(value))


@FAST
@given(moment=moments, offset=offsets, sep=st.sampled_from("T "))
def test_iso_round_trips_in_any_offset(moment: datetime, offset: timezone, sep: str) -> None:
    local = moment.astimezone(offset)
    assert parse_date(local.isoformat(sep=sep)) == moment
    naive = moment.replace(tzinfo=None).isoformat()  # no zone: UTC
    assert parse_date(naive) == moment
    assert parse_date(naive + "Z") == moment
    assert parse_date(naive + "z") == moment


@FAST
@given(moment=moments, digits=st.text("0123456789", min_size=1, max_size=7))
def test_iso_fractions_are_cut_to_the_microsecond(moment: datetime, digits: str) -> None:
    whole = moment.replace(microsecond=0)
    text = whole.replace(tzinfo=None).isoformat() + "." + digits + "Z"
    micro = int(digits[:6].ljust(6, "0"))
    assert parse_date(text) == whole.replace(microsecond=micro)


@FAST
@given(ms=st.integers(-(10**12), 10**13), suffix=st.sampled_from(["", "+0100", "-0530"]))
def test_wcf_dates_round_trip_and_ignore_their_offset(ms: int, suffix: str) -> None:
    expected = EPOCH + timedelta(milliseconds=ms)
    assert parse_date(f"/Date({ms}{suffix})/") == expected
    assert parse_date(f"\\/Date({ms}{suffix})\\/") == expected
    assert epoch_secs(f"/Date({ms})/") == round(expected.timestamp(), 6)


@settings(max_examples=100, deadline=None, database=None)
@given(value=out_of_range)
@example(value="/Date(99999999999999999)/")
@example(value="0001-01-01T00:00:00+01:00")
@example(value="9999-12-31T23:59:59-01:00")
def test_dates_out_of_range_are_none_not_an_error(value: str) -> None:
    _check(parse_date(value))
