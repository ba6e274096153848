"""The mappers' fast date paths agree with the one vendor-date reader, ``parse_date``."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from o365collector.dates import parse_date
from o365collector.normalize.ecs import _iso_ms
from o365collector.normalize.ocsf import _epoch_ms

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def expected(value: object) -> tuple[str | None, int | None]:
    moment = parse_date(value)
    if moment is None:
        return None, None
    text = moment.replace(tzinfo=None).isoformat(timespec="milliseconds") + "Z"
    return text, (moment - EPOCH) // timedelta(milliseconds=1)


@pytest.mark.parametrize(
    "value",
    [
        "2026-12-01T00:00:01Z",
        "2026-12-01T00:00:01.1Z",
        "2026-12-01T00:00:01.123456Z",
        "2026-12-01T00:00:01.1234567",  # RWS JSON light: 7 digits, no zone
        "2026-12-01T23:59:59.9999999",
        "2026-12-01T00:00:01",
        "2026-12-01T00:00:01+02:00",  # an offset: the slow path converts to UTC
        "2026-12-01T00:00:01.5-05:30",
        "/Date(1764547201123)/",
        "2026-13-01T00:00:01Z",  # no month 13
        "2026-02-30T00:00:01.000Z",
        "2026-12-01T00:00:01.Z",
        "2026-12-01T00:00:01.12a",
        "2026-12-01 00:00:01",
        "not a date",
        "",
        None,
        12345,
    ],
)
def test_fast_paths_match_parse_date(value: object) -> None:
    text, millis = expected(value)
    assert _iso_ms(value) == text
    assert _epoch_ms(value) == millis


@given(
    moment=st.datetimes(min_value=datetime(1971, 1, 1), max_value=datetime(2100, 1, 1)),
    digits=st.integers(min_value=0, max_value=7),
    zulu=st.booleans(),
)
def test_any_plain_iso_value_agrees(moment: datetime, digits: int, zulu: bool) -> None:
    value = moment.strftime("%Y-%m-%dT%H:%M:%S")
    if digits:
        value += "." + f"{moment.microsecond:06d}0"[:digits]
    value += "Z" if zulu else ""
    text, millis = expected(value)
    assert text is not None
    assert _iso_ms(value) == text
    assert _epoch_ms(value) == millis
