"""What a report row means to the pipeline: its identity (for event ids and dedup) and its time."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from o365collector.dates import parse_date
from o365collector.sources.reporting.dates import canonical_date
from o365collector.streams.catalog import ReportSpec

_UNIT = "\x1f"  # joins key parts; never in RWS values
_FACT_SEPARATOR = "|"  # the dedup store joins a row's statuses with it


def record_key(spec: ReportSpec, record: dict[str, Any]) -> tuple[str, str, str]:
    """The row's (id, rest of the key, status) for its event id and the dedup store.

    The first key field is the id, the other key fields (lower-cased recipient first for
    message rows) join into the second part, and ``status_field`` is the third (empty for
    reports without one). The time field is written canonically, so a row read as verbose
    JSON (``/Date(ms)/``) and as JSON light (ISO text) has one key. For MessageTrace this is
    exactly (MessageTraceId, RecipientAddress, Status), like Graph message trace.
    """
    parts = [_part(spec, name, record.get(name)) for name in spec.key_fields]
    status = ""
    if spec.status_field is not None:
        status = _text(record.get(spec.status_field)).replace(_FACT_SEPARATOR, "/")
    return parts[0], _UNIT.join(parts[1:]), status


def record_time(spec: ReportSpec, record: dict[str, Any]) -> datetime | None:
    """When the row happened (the bucket start for aggregates), UTC; ``None`` if unreadable."""
    return parse_date(record.get(spec.time_field))


def _part(spec: ReportSpec, name: str, value: object) -> str:
    if name == spec.time_field:
        return canonical_date(value)
    return _text(value)


def _text(value: object) -> str:
    return "" if value is None else str(value)
