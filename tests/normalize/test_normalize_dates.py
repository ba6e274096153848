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
        "/Date(1764547201123+0100)/",  # the offset names the sender's zone only
        "/Date(1764547201123-0530)/",
        "/Date(0)/",
        "/Date(-5)/",  # before the epoch: floor, not truncation
        "/Date(-62135596800000)/",  # 0001-01-01, the first datetime
        "/Date(-62135596800001)/",  # before it: not a date
        "/Date(253402300799999)/",  # 9999-12-31T23:59:59.999, the last millisecond
        "/Date(253402300800000)/",
        "/Date(99999999999999999999999)/",
        "\\/Date(1764547201123)\\/",  # escaped slashes: the slow path
        " /Date(1764547201123)/ ",  # spaces: the slow path
        "/Date(\u0661\u0662\u0663)/",  # Arabic-Indic digits: the regex's \d takes them
        "/Date(12\u00b2)/",  # a superscript is a digit to isdigit, not to \d
        "/Date(--1234)/",
        "/Date(1-1234)/",
        "/Date(+0100)/",
        "/Date()/",
        "/Date(12)",
        "2026-13-01T00:00:01Z",  # no month 13
        "2026-02-30T00:00:01.000Z",
        "2026-12-01T00:00:01.Z",
        "2026-12-01T00:00:01.12a",
        "2026-12-01 00:00:01",
        "2026-12-01T00+01:00",  # an offset inside the first 19 characters
        "2026-12-01T00:00+01Z",
        "2026-12-01T00:00:01.1\u00b2",  # a superscript: a digit to isdigit, not to ISO
        "2026-12-01T00:00:01.\u0661\u0662\u0663",  # Arabic-Indic digits
        "2026-W48-1T00:00:01Z",  # an ISO week date
        # Graph's own shape (20 characters, checked by position) and its near misses
        "2026-12-01T23:59:59Z",
        "2026-12-01T24:00:00Z",  # no hour 24
        "2026-12-01T00:00:60Z",  # no leap second
        "2026-12-01t00:00:01Z",
        "2026-12-01 00:00:01Z",
        "2026-12-01T00:00:01z",
        "2026-12-01T0\u0661:00:01Z",  # an Arabic-Indic digit in the hour
        "2026-12-01T000001.1Z",  # ISO basic time with a fraction: 20 characters too
        "2026-1201T00:00:01ZZ",
        "+026-12-01T00:00:01Z",
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
    millis=st.integers(min_value=-62_135_596_800_500, max_value=253_402_300_800_500)
    | st.integers(min_value=1_500_000_000_000, max_value=2_000_000_000_000),
    offset=st.none() | st.integers(min_value=-1200, max_value=1400),
)
def test_any_wcf_date_agrees_with_parse_date(millis: int, offset: int | None) -> None:
    value = f"/Date({millis}{'' if offset is None else f'{offset:+05d}'})/"
    assert _iso_ms(value) == expected(value)[0]
    assert _epoch_ms(value) == expected(value)[1]


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
