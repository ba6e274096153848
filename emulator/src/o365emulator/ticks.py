"""Time as integer 100 ns ticks since the Unix epoch: conversion, parsing and formatting."""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime, timedelta

TICKS_PER_SEC = 10_000_000
TICKS_PER_MICRO = 10
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

_ODATA_DT = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,7}))?(Z|\+00:00)",
    re.IGNORECASE,
)


def to_ticks(dt: datetime) -> int:
    """Convert an aware datetime to ticks (naive values are rejected)."""
    if dt.utcoffset() is None:
        raise ValueError("datetime must be timezone-aware")
    return ((dt - _EPOCH) // timedelta(microseconds=1)) * TICKS_PER_MICRO


def from_ticks(ticks: int) -> datetime:
    """Convert ticks to an aware UTC datetime (sub-microsecond part truncated)."""
    return _EPOCH + timedelta(microseconds=ticks // TICKS_PER_MICRO)


def _second_text(sec: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(sec))


def format_received(ticks: int) -> str:
    """Format like Graph's DateTimeOffset: seconds, plus up to 7 trimmed fractional digits, Z."""
    sec, frac = divmod(ticks, TICKS_PER_SEC)
    if frac == 0:
        return _second_text(sec) + "Z"
    return f"{_second_text(sec)}.{frac:07d}".rstrip("0") + "Z"


def format_micros(ticks: int) -> str:
    """Format as ISO UTC with exactly 6 fractional digits and Z (sub-microsecond truncated)."""
    sec, frac = divmod(ticks, TICKS_PER_SEC)
    return f"{_second_text(sec)}.{frac // TICKS_PER_MICRO:06d}Z"


def format_entra(dt: datetime) -> str:
    """Format the way Entra ID error bodies print timestamps: ``2026-01-23 10:30:00Z``."""
    return dt.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def parse_odata_datetime(text: str) -> int:
    """Parse ``YYYY-MM-DDThh:mm:ss[.f{1,7}](Z|+00:00)`` into ticks.

    Raises:
        ValueError: If the text is not in that exact shape or names an impossible date.
    """
    match = _ODATA_DT.fullmatch(text)
    if match is None:
        raise ValueError(
            f"'{text}' is not a valid DateTimeOffset; use YYYY-MM-DDThh:mm:ssZ "
            "(optionally with 1-7 fractional second digits), in UTC ending in Z"
        )
    year, month, day, hour, minute, second = (int(g) for g in match.groups()[:6])
    try:
        dt = datetime(year, month, day, hour, minute, second, tzinfo=UTC)
    except ValueError as exc:
        raise ValueError(f"'{text}' is not a valid date and time: {exc}") from exc
    frac_text = match.group(7) or ""
    frac = int(frac_text.ljust(7, "0")) if frac_text else 0
    return to_ticks(dt) + frac
