"""Encoders shared by sinks: the JSON line of an event with its collector metadata."""

from __future__ import annotations

from datetime import UTC, datetime

import orjson

from o365collector.pipeline.event import Event


def delivered_at() -> str:
    """The delivery timestamp written beside each record (one per batch)."""
    return datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def json_line(event: Event, stamp: str) -> bytes:
    """``{"event_id", "tenant", "stream", "delivered_at", "record"}`` and a newline."""
    return orjson.dumps(
        {
            "event_id": event.event_id,
            "tenant": event.tenant,
            "stream": event.stream,
            "delivered_at": stamp,
            "record": event.record,
        },
        option=orjson.OPT_APPEND_NEWLINE,
    )
