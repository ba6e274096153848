"""Reporting Web Service dates: the canonical key form of a date, and the filter literal.

Reading dates is :func:`o365collector.dates.parse_date` (every RWS shape, as UTC);
``parse_rws_date`` is kept as its name here.
"""

from __future__ import annotations

from datetime import datetime

from o365collector.dates import parse_date as parse_rws_date
from o365collector.windows import iso_z

__all__ = ["canonical_date", "filter_literal", "parse_rws_date"]


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
