"""Reporting Web Service dates: read every shape it sends as UTC, write its filter literal."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from o365collector.windows import iso_z, parse_iso

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# WCF's JSON date: milliseconds since the epoch (UTC), optionally with the sender's offset.
_WCF_DATE = re.compile(r"^\\?/Date\((-?\d+)([+-]\d{4})?\)\\?/$")
_ISO_START = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}")


def parse_rws_date(value: object) -> datetime | None:
    """Read an RWS date as an aware UTC datetime; ``None`` when it is absent or not a date.

    Accepted shapes (api-facts §1.4):

    - ``/Date(1658751973240)/`` (verbose JSON; ``\\/`` escapes already decoded or not), with
      an optional ``+hhmm`` / ``-hhmm`` suffix. The milliseconds are UTC whatever the
      suffix says: WCF writes the offset only to tell the sender's local zone.
    - ISO-8601 with 0–7 fractional digits, with ``Z``, an offset, or nothing (JSON light
      writes ``Received`` without ``Z``): values without a zone are UTC.
    """
    if not isinstance(value, str):
        return None
    text = value.strip()
    match = _WCF_DATE.match(text)
    if match is not None:
        return _EPOCH + timedelta(milliseconds=int(match.group(1)))
    if _ISO_START.match(text) is None:
        return None
    try:
        return parse_iso(text)
    except ValueError:
        return None


def canonical_date(value: object) -> str:
    """A date field as ``YYYY-MM-DDThh:mm:ss.fffZ`` (its text unchanged if not a date).

    Verbose JSON carries milliseconds only (``/Date(ms)/``), JSON light up to 100 ns: both
    are cut to the millisecond, so keys built from a date do not depend on the envelope.
    """
    moment = parse_rws_date(value)
    if moment is None:
        return "" if value is None else str(value)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def filter_literal(moment: datetime) -> str:
    """The OData v2 literal RWS filters take: ``datetime'2024-01-01T00:00:00Z'``."""
    return f"datetime'{iso_z(moment)}'"
