"""Microsoft's timestamps: every ``/Date(ms)/`` and ISO-8601 shape it sends, read as UTC.

The one reader for vendor dates, shared by the sources (record keys and times) and the
sinks (receiver-side timestamps such as Splunk's ``time``). Its one time-zone rule: a value
without an offset is UTC (api-facts §1.4: JSON light writes ``Received`` without ``Z``).
"""

from __future__ import annotations

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


_ISO_HEAD = len("2026-12-01T00:00:00")
PlainIso = tuple[datetime | None, str, str]
"""(the whole seconds as a naive UTC datetime, or ``None`` when the calendar refuses them;
those seconds as text; the first three fractional digits, zero-padded)."""


def plain_iso(value: object) -> PlainIso | None:
    """The fast path for the two shapes Graph and RWS JSON light send: ISO-8601 in UTC with
    ``Z`` or without a zone, any number of fractional digits. ``None`` for every other
    shape (offsets, ``/Date(ms)/``, junk): read those with :func:`parse_date`.

    Mappers use it to cut a time to the millisecond as text, without building an aware
    datetime per event; it agrees with :func:`parse_date` (a property test holds it).
    """
    if value.__class__ is not str:
        return None
    text: str = value
    if len(text) < _ISO_HEAD or text[10] != "T":
        return None
    tail = text[_ISO_HEAD:]
    if tail[-1:] == "Z":
        tail = tail[:-1]
    if tail and (tail[0] != "." or not tail[1:].isdigit()):
        return None
    head = text[:_ISO_HEAD]
    try:
        moment: datetime | None = datetime.fromisoformat(head)
    except ValueError:
        moment = None
    return moment, head, f"{tail[1:4]:0<3}"


def epoch_secs(value: object) -> float | None:
    """:func:`parse_date` as seconds since the epoch (microsecond precision), or ``None``."""
    moment = parse_date(value)
    return None if moment is None else round(moment.timestamp(), 6)
