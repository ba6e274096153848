"""Encoders shared by sinks: the payload of an event (raw record or envelope) and its time."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, Literal

import orjson

from o365collector.clock import Clock
from o365collector.dates import epoch_secs
from o365collector.event import Event

Payload = Literal["raw", "envelope"]
"""``raw``: the vendor record exactly as received; ``envelope``: record plus metadata."""

UNENCODABLE = "unencodable"


def delivered_at(clock: Clock | None = None) -> str:
    """The delivery timestamp written beside each record (one per batch), by ``clock``."""
    now = datetime.now(UTC) if clock is None else clock.now().astimezone(UTC)
    return now.isoformat(timespec="microseconds").replace("+00:00", "Z")


def envelope(event: Event, stamp: str) -> dict[str, Any]:
    """``{"event_id", "tenant", "stream", "delivered_at", "record"}``."""
    return {
        "event_id": event.event_id,
        "tenant": event.tenant,
        "stream": event.stream,
        "delivered_at": stamp,
        "record": event.record,
    }


def payload_object(event: Event, payload: Payload, stamp: str) -> dict[str, Any]:
    """The object a sink ships for ``event``: the record itself, or its envelope."""
    return event.record if payload == "raw" else envelope(event, stamp)


def dumps(value: Any) -> bytes:
    """Compact UTF-8 JSON; falls back to the stdlib for values orjson refuses (huge ints).

    Raises:
        ValueError: the value cannot be written as strict JSON (NaN, unknown types).
    """
    try:
        return orjson.dumps(value)
    except orjson.JSONEncodeError:
        try:
            text = json.dumps(value, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
        except (TypeError, ValueError) as exc:
            msg = f"not encodable as JSON: {exc}"
            raise ValueError(msg) from exc
        return text.encode("utf-8")


def encode_batch(
    events: Sequence[Event], payload: Payload, stamp: str
) -> tuple[list[bytes | None], dict[int, str]]:
    """Encode every event's payload; events that cannot be encoded are listed as rejected.

    Returns:
        One JSON text per event (``None`` where encoding failed) and the rejected indexes
        with reason ``unencodable``.
    """
    out: list[bytes | None] = []
    rejected: dict[int, str] = {}
    for index, event in enumerate(events):
        try:
            out.append(dumps(payload_object(event, payload, stamp)))
        except ValueError:
            out.append(None)
            rejected[index] = UNENCODABLE
    return out, rejected


def lines(events: Sequence[Event], payload: Payload, stamp: str) -> tuple[bytes, dict[int, str]]:
    """Newline-terminated JSON lines of the encodable events, and the rejected indexes.

    Appends to one buffer: orjson returns each text in a 4 KiB allocation, so a list of
    them holds ~4 KiB per event until the batch is joined.
    """
    out = bytearray()
    dump = orjson.dumps
    try:  # the common case, without a call per event around orjson
        if payload == "raw":
            for event in events:
                out += dump(event.record)
                out += b"\n"
        else:
            for event in events:
                out += dump(envelope(event, stamp))
                out += b"\n"
        return bytes(out), {}
    except orjson.JSONEncodeError:
        pass  # one event orjson refuses: encode one by one, rejecting only what fails
    out.clear()
    rejected: dict[int, str] = {}
    for index, event in enumerate(events):
        try:
            out += dumps(payload_object(event, payload, stamp))
        except ValueError:
            rejected[index] = UNENCODABLE
            continue
        out += b"\n"
    return bytes(out), rejected


def record_time(record: dict[str, Any]) -> float | None:
    """Epoch seconds of the record's receive time (Graph ``receivedDateTime``, or ``Received``).

    Reads every shape :func:`o365collector.dates.parse_date` reads (ISO 8601, the Reporting
    web service's ``/Date(ms)/``), a value without an offset as UTC; anything else (missing,
    malformed) gives ``None`` and the receiver stamps its own time.
    """
    for key in ("receivedDateTime", "Received"):
        value = record.get(key)
        if not isinstance(value, str) or not value:
            continue
        when = epoch_secs(value)
        if when is not None:
            return when
    return None


def stream_slug(stream: str) -> str:
    """The stream as a single word: ``graph.message_trace`` → ``messagetrace``."""
    return stream.rsplit(".", 1)[-1].replace("_", "").lower()
