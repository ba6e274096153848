"""Encoders shared by sinks: what a sink ships per event (:class:`Payload`) and its time."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import orjson

from o365collector.clock import Clock
from o365collector.config.sinks import NORMALIZED, PayloadKind
from o365collector.dates import epoch_secs
from o365collector.event import Event

if TYPE_CHECKING:  # imported when an ecs / ocsf payload is made: raw and envelope need none
    from o365collector.normalize.normalizer import Normalizer

UNENCODABLE = "unencodable"
UNMAPPABLE = "unmappable"
_REASON_MAX = 300


class UnmappableError(ValueError):
    """The normalizer failed on one event; :attr:`reason` is the rejection reason.

    A ``ValueError``, so every place that refuses an unencodable event refuses this one
    too; :func:`refusal` gives the reason to record.
    """

    def __init__(self, form: str, exc: Exception) -> None:
        """Describe the mapper's failure: ``unmappable: ecs KeyError: 'x'``."""
        self.reason = f"{UNMAPPABLE}: {form} {type(exc).__name__}: {exc}"[:_REASON_MAX]
        super().__init__(self.reason)


def refusal(exc: ValueError) -> str:
    """The rejection reason of an event whose payload failed: unmappable or unencodable."""
    return exc.reason if isinstance(exc, UnmappableError) else UNENCODABLE


class Payload:
    """What a sink ships for each event: the one place that decides it.

    - ``raw``: the vendor record exactly as received;
    - ``envelope``: ``{"event_id", "tenant", "stream", "delivered_at", "record"}``;
    - ``ecs`` / ``ocsf``: the event's normalized document, from :attr:`normalizer`.

    Sinks accept a kind (``payload="raw"``) or a ready object (with the tenants' local
    domains), see :meth:`of`.
    """

    __slots__ = ("kind", "normalizer")

    def __init__(self, kind: PayloadKind = "raw", normalizer: Normalizer | None = None) -> None:
        """A payload of ``kind``; ``ecs`` / ``ocsf`` without a normalizer get a default one.

        Raises:
            ValueError: a normalizer with a raw or envelope payload, or of another form.
        """
        if kind in NORMALIZED:
            if normalizer is None:
                from o365collector.normalize.normalizer import Normalizer  # noqa: PLC0415

                normalizer = Normalizer("ecs" if kind == "ecs" else "ocsf")
            if normalizer.form != kind:
                msg = f"payload {kind} given a normalizer of {normalizer.form}"
                raise ValueError(msg)
        elif normalizer is not None:
            msg = f"payload {kind} ships no normalized document; drop the normalizer"
            raise ValueError(msg)
        self.kind: PayloadKind = kind
        self.normalizer: Normalizer | None = normalizer

    @classmethod
    def of(cls, value: Payload | PayloadKind) -> Payload:
        """``value`` itself, or a payload of that kind."""
        return value if isinstance(value, Payload) else cls(value)

    def __repr__(self) -> str:
        """``Payload('ecs')``."""
        return f"Payload({self.kind!r})"

    @property
    def normalized(self) -> bool:
        """True for ``ecs`` and ``ocsf``."""
        return self.normalizer is not None

    def object(self, event: Event, stamp: str) -> dict[str, Any]:
        """The object to ship for ``event``; ``stamp`` is the batch's ``delivered_at``.

        Raises:
            UnmappableError: the normalizer failed on this event (a mapper bug, an odd record);
                the sink refuses the event with :attr:`UnmappableError.reason`.
        """
        if self.normalizer is not None:
            try:
                return self.normalizer.document(event)
            except Exception as exc:  # one odd record (or a mapper bug) must not stop the batch
                raise UnmappableError(self.kind, exc) from exc
        if self.kind == "raw":
            return event.record
        return envelope(event, stamp)


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


def _head(event: Event, stamp: str) -> dict[str, Any]:
    """The envelope without its record (the last key)."""
    return {
        "event_id": event.event_id,
        "tenant": event.tenant,
        "stream": event.stream,
        "delivered_at": stamp,
    }


_COMMA = ord(",")


def payload_object(event: Event, payload: Payload | PayloadKind, stamp: str) -> dict[str, Any]:
    """The object a sink ships for ``event`` (see :meth:`Payload.object`).

    Raises:
        UnmappableError: the normalizer failed on this event.
    """
    return Payload.of(payload).object(event, stamp)


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


def encode(event: Event, payload: Payload, stamp: str) -> bytes:
    """The JSON text of ``event``'s payload.

    Raises:
        ValueError: the payload cannot be mapped (:class:`UnmappableError`) or written as JSON;
            :func:`refusal` gives the reason.
    """
    return dumps(payload.object(event, stamp))


def encode_batch(
    events: Sequence[Event], payload: Payload | PayloadKind, stamp: str
) -> tuple[list[bytes | None], dict[int, str]]:
    """Encode every event's payload; events that cannot be encoded are listed as rejected.

    Returns:
        One JSON text per event (``None`` where it failed) and the rejected indexes with
        their reason: ``unencodable``, or ``unmappable: …`` when the normalizer failed.
    """
    shape = Payload.of(payload)
    out: list[bytes | None] = []
    rejected: dict[int, str] = {}
    for index, event in enumerate(events):
        try:
            out.append(encode(event, shape, stamp))
        except ValueError as exc:
            out.append(None)
            rejected[index] = refusal(exc)
    return out, rejected


def lines(
    events: Sequence[Event], payload: Payload | PayloadKind, stamp: str
) -> tuple[bytearray, dict[int, str]]:
    """Newline-terminated JSON lines of the encodable events, and the rejected indexes.

    The buffer is returned as built (no copy into ``bytes``): the caller writes it and
    drops it.

    Appends to one buffer: orjson returns each text in a 4 KiB allocation, so a list of
    them holds ~4 KiB per event until the batch is joined.
    """
    shape = Payload.of(payload)
    out = bytearray()
    dump = orjson.dumps
    try:  # the common case, without calls per event around the mapper and orjson
        if shape.normalizer is not None:
            document = shape.normalizer.document
            for event in events:
                out += dump(document(event))
                out += b"\n"
        elif shape.kind == "raw":
            for event in events:
                raw = event.raw
                out += dump(event.record) if raw is None else raw  # the text as it came
                out += b"\n"
        else:
            for event in events:
                raw = event.raw
                if raw is None:
                    out += dump(envelope(event, stamp))
                else:  # the envelope's head, then the record's text as it came
                    out += dump(_head(event, stamp))
                    out[-1] = _COMMA  # the head's closing brace
                    out += b'"record":'
                    out += raw
                    out += b"}"
                out += b"\n"
    except Exception:  # noqa: BLE001 - one event refused: one by one, rejecting only it
        out.clear()
    else:
        return out, {}
    rejected: dict[int, str] = {}
    for index, event in enumerate(events):
        try:
            out += encode(event, shape, stamp)
        except ValueError as exc:
            rejected[index] = refusal(exc)
            continue
        out += b"\n"
    return out, rejected


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
