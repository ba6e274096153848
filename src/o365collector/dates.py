"""Microsoft's timestamps: every ``/Date(ms)/`` and ISO-8601 shape it sends, read as UTC.

The one reader for vendor dates, shared by the sources (record keys and times) and the
sinks (receiver-side timestamps such as Splunk's ``time``). Its one time-zone rule: a value
without an offset is UTC (api-facts §1.4: JSON light writes ``Received`` without ``Z``).
"""

from __future__ import annotations

import functools
import re
from datetime import UTC, datetime, timedelta

from o365collector.windows import parse_iso

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# WCF's JSON date: milliseconds since the epoch (UTC), optionally with the sender's offset.
_WCF_DATE = re.compile(r"\\?/Date\((-?\d+)([+-]\d{4})?\)\\?/")
_ISO_START = re.compile(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}")


def parse_date(value: object) -> datetime | None:
    """Read a vendor date as an aware UTC datetime; ``None`` when it is absent or not a date.

    Accepted shapes (api-facts §1.4):

    - ``/Date(1658751973240)/`` (verbose JSON; ``\\/`` escapes already decoded or not), with
      an optional ``+hhmm`` / ``-hhmm`` suffix. The milliseconds are UTC whatever the
      suffix says: WCF writes the offset only to tell the sender's local zone.
    - ISO-8601 with 0–7 (or more) fractional digits, cut to the microsecond, with ``Z``, an
      offset, or nothing: values without a zone are UTC.

    A date outside ``datetime``'s range (a huge ``/Date(ms)/``, year 1 or 9999 moved by
    its offset) is ``None`` too, never an error.
    """
    if not isinstance(value, str):
        return None
    text = value.strip()
    try:
        return _parse(text)
    except (ValueError, OverflowError):  # not a date, or outside datetime's years 1–9999
        return None


def _parse(text: str) -> datetime | None:
    match = _WCF_DATE.fullmatch(text)
    if match is not None:
        return _EPOCH + timedelta(milliseconds=int(match.group(1)))
    if _ISO_START.match(text) is None:
        return None
    try:
        moment = datetime.fromisoformat(text)  # the fast path: Z, offsets, long fractions
    except ValueError:
        return parse_iso(text)  # what 3.11 refuses: a lower-case ``z``
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


_EPOCH_NAIVE = datetime(1970, 1, 1)  # noqa: DTZ001 - for zone-less UTC text
_MS = timedelta(milliseconds=1)


# WCF's JSON date as RWS verbose JSON sends it (slashes unescaped, no spaces): the
# milliseconds, then the sender's offset, which does not move them (api-facts §1.4).
_WCF_PLAIN = re.compile(r"/Date\((-?\d+)(?:[+-]\d{4})?\)/")
# Plain ISO-8601 in UTC, as Graph (``Z``) and RWS JSON light (no zone, 7 digits) send it:
# the whole seconds, then the first three fractional digits. One C call checks the shape.
_PLAIN_ISO = re.compile(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d{1,3})\d*)?Z?", re.ASCII)


def _graph_second(text: str) -> datetime | None:
    """The naive UTC moment of ``text`` when it is exactly ``YYYY-MM-DDThh:mm:ssZ`` (every
    Graph row's ``receivedDateTime``) on the calendar, or ``None`` for any other text.

    Checked by position and by the calendar, without the regex: half the cost of the
    general fast path on the one shape that comes with every row.
    """
    if (
        len(text) != 20  # the shape is 20 characters; each check is by position
        or text[19] != "Z"
        or text[10] != "T"
        or text[4] != "-"
        or text[7] != "-"
        or text[13] != ":"
        or text[16] != ":"
    ):
        return None
    try:  # ASCII digits only, and a real date and time of day
        return datetime.fromisoformat(text[:19])
    except ValueError:
        return None


def iso_ms(value: object) -> str | None:
    """:func:`parse_date` as ``YYYY-MM-DDThh:mm:ss.fffZ`` (UTC, cut to the millisecond).

    The mappers' date reader (``@timestamp``, ``email.delivery_timestamp``…), with fast
    paths for the shapes Microsoft sends: plain ISO-8601 in UTC is cut as text once the
    calendar accepts its seconds, ``/Date(ms)/`` (RWS verbose JSON) is formatted from the
    integer. Every other shape (offsets, junk) goes through :func:`parse_date`; a property
    test holds the fast paths to its answers.
    """
    if value.__class__ is str:
        text: str = value
        if _graph_second(text) is not None:
            return text[:19] + ".000Z"
        if text[:1] == "/":
            wcf = _WCF_PLAIN.fullmatch(text)
            if wcf is not None:
                return _ms_text(int(wcf[1]))
        else:
            plain = _PLAIN_ISO.fullmatch(text)
            if plain is not None:
                head, fraction = plain.groups()
                try:
                    datetime.fromisoformat(head)  # the calendar's check: no 30 February
                except ValueError:
                    pass  # refused: parse_date has the last word below
                else:
                    if fraction is not None and len(fraction) == 3:
                        return f"{head}.{fraction}Z"
                    return f"{head}.{_millis(fraction)}Z"
    moment = parse_date(value)
    if moment is None:
        return None
    return moment.replace(tzinfo=None).isoformat(timespec="milliseconds") + "Z"


def epoch_ms(value: object) -> int | None:
    """:func:`parse_date` as milliseconds since the epoch (cut, not rounded), or ``None``.

    Same fast paths as :func:`iso_ms`.
    """
    if value.__class__ is str:
        text: str = value
        second = _graph_second(text)
        if second is not None:
            return (second - _EPOCH_NAIVE) // _MS
        if text[:1] == "/":
            wcf = _WCF_PLAIN.fullmatch(text)
            if wcf is not None:
                millis = int(wcf[1])
                return None if _minute_text(millis // 60_000) is None else millis
        elif _PLAIN_ISO.fullmatch(text) is not None:
            try:  # what parse_date does with this shape, without its other checks
                moment = datetime.fromisoformat(text)
            except ValueError:
                moment = None  # the calendar refuses it: parse_date decides below
            if moment is not None:  # UTC, with Z or without a zone
                return (moment - (_EPOCH_NAIVE if moment.tzinfo is None else _EPOCH)) // _MS
    moment = parse_date(value)
    return None if moment is None else (moment - _EPOCH) // _MS


def _millis(fraction: str | None) -> str:
    """Up to three fractional digits as exactly three (``5`` → ``500``)."""
    if fraction is None:
        return "000"
    return fraction if len(fraction) == 3 else f"{fraction:0<3}"


_SECOND_TEXT = tuple(f"{second:02d}" for second in range(60))
_MILLI_TEXT = tuple(f".{milli:03d}Z" for milli in range(1000))


def _ms_text(millis: int) -> str | None:
    """Epoch milliseconds as ISO-8601 UTC with milliseconds and ``Z``: a cached minute and
    two table look-ups, cheaper than formatting each field; ``None`` outside years 1–9999
    (as :func:`parse_date`)."""
    minute, rest = divmod(millis, 60_000)
    prefix = _minute_text(minute)
    if prefix is None:
        return None
    second, milli = divmod(rest, 1000)
    return prefix + _SECOND_TEXT[second] + _MILLI_TEXT[milli]


@functools.lru_cache(maxsize=4096)
def _minute_text(minute: int) -> str | None:
    """Minute ``minute`` since the epoch as ``YYYY-MM-DDThh:mm:`` (a page's rows share
    minutes: cached); ``None`` outside ``datetime``'s years 1–9999."""
    try:
        return (_EPOCH_NAIVE + timedelta(minutes=minute)).isoformat(timespec="minutes") + ":"
    except OverflowError:
        return None


def epoch_secs(value: object) -> float | None:
    """:func:`parse_date` as seconds since the epoch (microsecond precision), or ``None``."""
    moment = parse_date(value)
    return None if moment is None else round(moment.timestamp(), 6)
