"""The one reader of Microsoft's dates: every shape, one time-zone rule (no offset = UTC)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from o365collector.dates import epoch_secs, parse_date
from o365collector.sinks.encode import record_time
from o365collector.sources.reporting.dates import canonical_date, parse_rws_date

MOMENT = datetime(2022, 7, 25, 12, 26, 13, 240000, tzinfo=UTC)
MS = 1658751973240


@pytest.mark.parametrize(
    "text",
    [
        f"/Date({MS})/",
        f"/Date({MS}+0100)/",
        f"/Date({MS}-0530)/",
        f"\\/Date({MS})\\/",
        f"\\/Date({MS}+0100)\\/",
        f"  /Date({MS})/ ",
    ],
)
def test_wcf_dates_are_utc_milliseconds_whatever_the_suffix(text: str) -> None:
    assert parse_date(text) == MOMENT
    assert epoch_secs(text) == MS / 1000.0


def test_wcf_negative_milliseconds() -> None:
    assert parse_date("/Date(-1000)/") == datetime(1969, 12, 31, 23, 59, 59, tzinfo=UTC)


@pytest.mark.parametrize("digits", range(8))
@pytest.mark.parametrize(
    ("zone", "shift"),
    [
        ("", timedelta(0)),  # JSON light's Received: no zone means UTC
        ("Z", timedelta(0)),
        ("z", timedelta(0)),
        ("+00:00", timedelta(0)),
        ("+02:00", timedelta(hours=-2)),
        ("-05:30", timedelta(hours=5, minutes=30)),
    ],
)
def test_iso_with_0_to_7_fraction_digits(digits: int, zone: str, shift: timedelta) -> None:
    fraction = "4907658"[:digits]
    text = f"2022-09-05T18:10:13{'.' if digits else ''}{fraction}{zone}"
    micros = int(fraction[:6].ljust(6, "0")) if digits else 0
    expected = datetime(2022, 9, 5, 18, 10, 13, micros, tzinfo=UTC) + shift
    assert parse_date(text) == expected
    assert parse_date(text).tzinfo is UTC  # type: ignore[union-attr]
    assert epoch_secs(text) == round(expected.timestamp(), 6)


def test_iso_without_seconds_and_with_a_space() -> None:
    assert parse_date("2022-09-05T18:10") == datetime(2022, 9, 5, 18, 10, tzinfo=UTC)
    assert parse_date("2022-09-05 18:10:00+00:00") == datetime(2022, 9, 5, 18, 10, tzinfo=UTC)


@pytest.mark.parametrize(
    "value",
    [None, 5, "", "yesterday", "2022-09-05", "/Date(abc)/", "/Date(12)", "2022-13-05T18:10:13Z"],
)
def test_not_a_date(value: object) -> None:
    assert parse_date(value) is None
    assert epoch_secs(value) is None


def test_reporting_names_are_the_shared_reader() -> None:
    assert parse_rws_date is parse_date
    assert canonical_date(f"/Date({MS})/") == "2022-07-25T12:26:13.240Z"
    assert canonical_date("2022-07-25T12:26:13.2400001") == "2022-07-25T12:26:13.240Z"


# --- the sinks' record_time: unchanged for every input that parsed before the merge --------

_OLD_MS_DATE = re.compile(r"/Date\((-?\d+)(?:[+-]\d{4})?\)/")


def _old_record_time(record: dict[str, Any]) -> float | None:
    """The sinks' reader before the merge (naive ISO and ``\\/Date()\\/`` gave ``None``)."""
    for key in ("receivedDateTime", "Received"):
        value = record.get(key)
        if not isinstance(value, str) or not value:
            continue
        match = _OLD_MS_DATE.fullmatch(value)
        if match:
            return int(match.group(1)) / 1000.0
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            continue
        if parsed.tzinfo is None:
            continue
        return round(parsed.timestamp(), 6)
    return None


@pytest.mark.parametrize(
    "record",
    [
        {"receivedDateTime": "2026-11-22T08:30:00.1234567Z"},
        {"receivedDateTime": "2026-11-22T08:30:00Z"},
        {"receivedDateTime": "2026-11-22T08:30:00.5+01:00"},
        {"receivedDateTime": "2026-11-22 08:30:00.5-04:00"},
        {"Received": "/Date(1795336200000)/"},
        {"Received": "/Date(1795336200123+0100)/"},
        {"Received": "/Date(-1)/"},
        {"Received": "2026-11-22T08:30:00.999999Z"},
        {"receivedDateTime": "junk", "Received": "/Date(1795336200001)/"},
    ],
)
def test_sink_record_time_unchanged_where_it_parsed_before(record: dict[str, Any]) -> None:
    before = _old_record_time(record)
    assert before is not None
    assert record_time(record) == before


def test_sink_record_time_same_for_many_milliseconds() -> None:
    for ms in range(1795336200000, 1795336200000 + 5000, 7):
        record = {"Received": f"/Date({ms})/"}
        assert record_time(record) == _old_record_time(record)


def test_sink_record_time_now_reads_naive_and_escaped_forms_as_utc() -> None:
    # Before the merge these gave None (no Splunk ``time``); RWS sends both (api-facts §1.4).
    assert record_time({"Received": "2022-09-05T18:10:13.4907658"}) == 1662401413.490765
    assert record_time({"Received": "\\/Date(1795336200000)\\/"}) == 1795336200.0


@pytest.mark.parametrize(
    "text",
    ["/Date(99999999999999999)/", "0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00"],
)
def test_out_of_range_is_none_not_an_error(text: str) -> None:
    assert parse_date(text) is None
    assert record_time({"Received": text}) is None
