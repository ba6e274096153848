"""Message trace as an OCSF 1.8.0 Email Activity event (class 4009, activity Trace).

A Graph ``exchangeMessageTrace`` row and the RWS ``MessageTrace`` row of the same message
give the same event, except for what depends on the source (reference ``normalization.md``
§4): ``metadata.uid`` (the collector's event id), ``metadata.log_name`` (the stream),
``metadata.original_time`` (the receive time as sent), ``raw_data`` and ``unmapped`` (the
record's leftovers under their own names: RWS's ``Organization``, ``StartDate``,
``EndDate``, ``Index``, the raw status as spelled).

Choices:

- ``activity_id`` 4 Trace (``type_uid`` 400904): the schema's activity for following a
  message through an organization, with ``message_trace_uid`` set.
- ``time``: the receive time in epoch milliseconds. ``time`` is required: a row whose
  receive time is absent or unreadable gets the processing time and keeps the raw value in
  ``unmapped``.
- Status, disposition and action come from :func:`~.status.status_of`; ``status_detail``
  is the status's canonical spelling (the same for Graph and RWS).
- ``direction_id``: 1 Inbound, 2 Outbound, 3 Internal, 99 Other with ``direction``
  "External" when neither side is local, 0 Unknown without local domains.
- ``email.message_uid`` is the Message-ID header; ``email.uid`` is the email *thread* id in
  1.8.0 and stays unset. ``email.x_originating_ip`` (a header) is not the connecting IP:
  ``fromIP`` goes to ``src_endpoint.ip`` only.
- An address that is not an ``email_t`` (the null sender ``<>``) or an IP that is not an
  ``ip_t`` is kept in ``unmapped`` under its source name rather than emitted invalid.
- ``metadata.profiles`` is ``["security_control"]``: the profile that brings
  ``action_id`` and ``disposition_id``.

Absent, ``null`` and ``""`` values are omitted.
"""

from __future__ import annotations

import functools
import ipaddress
import re
import time as _time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from o365collector.dates import parse_date, plain_iso
from o365collector.event import Event

# Shared with the ECS mapper on purpose (same rows, same field names and value rules).
from o365collector.normalize.ecs import (
    _ENVELOPE_KEYS,
    _MAPPED,
    GRAPH_NAMES,
    RWS_NAMES,
    Direction,
    _long,
    _Names,
    _put,
    _text,
    email_direction,
)
from o365collector.normalize.status import StatusMapping, status_of

OCSF_VERSION = "1.8.0"
EMAIL_ACTIVITY_CLASS_UID = 4009
NETWORK_CATEGORY_UID = 4
TRACE_ACTIVITY_ID = 4
SEVERITY_INFORMATIONAL = 1
# The product that reported the event (normalization.md §4.2); the collector that fetched
# it is the log provider.
PRODUCT: dict[str, Any] = {
    "name": "Exchange Online",
    "vendor_name": "Microsoft",
    "feature": {"name": "Message Trace"},
}
LOG_PROVIDER = "o365collector"
PROFILES: tuple[str, ...] = ("security_control",)

DIRECTION_IDS: dict[Direction | None, tuple[int, str]] = {
    None: (0, "Unknown"),
    "inbound": (1, "Inbound"),
    "outbound": (2, "Outbound"),
    "internal": (3, "Internal"),
    "external": (99, "External"),  # 99 Other: the caption is the source's value
}
# OCSF email_t, as the 1.8.0 dictionary defines it.
_EMAIL_T = re.compile(r"^[a-zA-Z0-9!#$%&'*+-/=?^_`{|}~.]+@[a-zA-Z0-9-]+\.[a-zA-Z0-9-.]+$")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_EPOCH_NAIVE = datetime(1970, 1, 1)  # noqa: DTZ001 - for zone-less UTC text
_MS = timedelta(milliseconds=1)


def message_trace_to_ocsf(
    event: Event, *, local_domains: Sequence[str] = (), include_raw: bool = False
) -> dict[str, Any]:
    """The OCSF 1.8.0 Email Activity (4009, Trace) event of one message trace row.

    Args:
        event: The event; ``event.record`` is the untouched Graph or RWS row.
        local_domains: The tenant's own mail domains, for ``direction_id``.
        include_raw: Put the raw record, as a JSON string, in ``raw_data``.

    Returns:
        The event as nested dicts: classification (``class_uid``, ``activity_id``,
        ``type_uid``…), ``time``, status / disposition / action, direction, ``metadata``,
        ``message_trace_uid``, ``email``, ``from`` / ``to``, ``src_endpoint`` /
        ``dst_endpoint`` and ``unmapped``. Absent values are omitted.
    """
    record = event.record
    names = RWS_NAMES if "MessageTraceId" in record or "Received" in record else GRAPH_NAMES
    get = record.get
    unmapped: dict[str, Any] = {}
    raw_status = get(names.status)
    status = status_of(raw_status if raw_status.__class__ is str and raw_status else None)
    raw_sender = _text(get(names.sender))
    raw_recipient = _text(get(names.recipient))
    sender = _valid_email(raw_sender, names.sender, unmapped)
    recipient = _valid_email(raw_recipient, names.recipient, unmapped)
    direction_id, direction = DIRECTION_IDS[
        email_direction(raw_sender, raw_recipient, local_domains)
    ]
    raw_received = get(names.received)
    time_ms = _epoch_ms(raw_received)
    if time_ms is None:
        _put(unmapped, names.received, raw_received)
        time_ms = _time.time_ns() // 1_000_000

    doc: dict[str, Any] = {**_TRACE_CLASSIFICATION, "time": time_ms}
    doc.update(_status_fields(status))
    doc["direction_id"] = direction_id
    doc["direction"] = direction
    doc["protocol_name"] = "SMTP"
    doc["metadata"] = _metadata(event, raw_received)
    value = get(names.trace_id)
    if value.__class__ is str and value:
        doc["message_trace_uid"] = value
    doc["email"] = _email_part(record, names, sender, recipient, unmapped)
    if sender is not None:
        doc["from"] = sender
    if recipient is not None:
        doc["to"] = [recipient]
    _put(doc, "src_endpoint", _endpoint(record, names.from_ip, unmapped))
    _put(doc, "dst_endpoint", _endpoint(record, names.to_ip, unmapped))
    _put(doc, "unmapped", _leftovers(record, names, unmapped))
    if include_raw:
        doc["raw_data"] = orjson.dumps(record).decode()
    return doc


_TRACE_CLASSIFICATION: dict[str, Any] = {
    "class_uid": EMAIL_ACTIVITY_CLASS_UID,
    "class_name": "Email Activity",
    "category_uid": NETWORK_CATEGORY_UID,
    "category_name": "Network Activity",
    "activity_id": TRACE_ACTIVITY_ID,
    "activity_name": "Trace",
    "type_uid": EMAIL_ACTIVITY_CLASS_UID * 100 + TRACE_ACTIVITY_ID,
    "type_name": "Email Activity: Trace",
    "severity_id": SEVERITY_INFORMATIONAL,
    "severity": "Informational",
}


@functools.lru_cache(maxsize=256)
def _status_fields(status: StatusMapping) -> dict[str, Any]:
    """The status, disposition and action attributes of a status (made once per status;
    callers copy them into their event)."""
    fields: dict[str, Any] = {
        "status_id": status.ocsf_status_id,
        "status": status.ocsf_status,
        "disposition_id": status.ocsf_disposition_id,
        "disposition": status.ocsf_disposition,
        "action_id": status.ocsf_action_id,
        "action": status.ocsf_action,
    }
    _put(fields, "status_detail", status.name)
    return fields


def _epoch_ms(value: object) -> int | None:
    """A vendor date as epoch milliseconds (cut, not rounded), or ``None``.

    The zone-less and ``Z`` ISO values Graph and RWS JSON light send are read from the
    text; other shapes go through :func:`parse_date`.
    """
    plain = plain_iso(value)
    if plain is not None:
        second, _, millis = plain
        return None if second is None else (second - _EPOCH_NAIVE) // _MS + int(millis)
    parsed = parse_date(value)
    return None if parsed is None else (parsed - _EPOCH) // _MS


def _metadata(event: Event, raw_received: object) -> dict[str, Any]:
    """``metadata``: schema version, product, profiles, event id, tenant, stream, raw time."""
    part: dict[str, Any] = {
        "version": OCSF_VERSION,
        "product": {**PRODUCT, "feature": dict(PRODUCT["feature"])},
        "log_provider": LOG_PROVIDER,
        "profiles": list(PROFILES),
    }
    _put(part, "uid", event.event_id)
    _put(part, "tenant_uid", event.tenant)
    _put(part, "log_name", event.stream)
    _put(part, "original_time", _text(raw_received))
    return part


def _email_part(
    record: dict[str, Any],
    names: _Names,
    sender: str | None,
    recipient: str | None,
    unmapped: dict[str, Any],
) -> dict[str, Any]:
    """``email``: sender, ``[recipient]``, Message-ID, subject and size in bytes."""
    part: dict[str, Any] = {}
    _put(part, "from", sender)
    _put(part, "to", [recipient] if recipient else None)
    _put(part, "message_uid", _text(record.get(names.message_id)))
    _put(part, "subject", _text(record.get(names.subject)))
    raw_size = record.get(names.size)
    size = _long(raw_size)
    if size is None:
        _put(unmapped, names.size, raw_size)
    else:
        part["size"] = size
    return part


def _email(record: dict[str, Any], key: str, unmapped: dict[str, Any]) -> str | None:
    """A valid ``email_t`` address, else ``None`` (an invalid one goes to ``unmapped``)."""
    return _valid_email(_text(record.get(key)), key, unmapped)


def _valid_email(address: str | None, key: str, unmapped: dict[str, Any]) -> str | None:
    """``address`` when it is an ``email_t``, else ``None`` (kept in ``unmapped``)."""
    if address is None or _is_email(address):
        return address
    unmapped[key] = address
    return None


@functools.lru_cache(maxsize=8192)
def _is_email(address: str) -> bool:
    """Whether ``address`` is an OCSF ``email_t`` (addresses repeat: cached)."""
    return _EMAIL_T.match(address) is not None


@functools.lru_cache(maxsize=8192)
def _is_ip(value: str) -> bool:
    """Whether ``value`` is an IPv4 or IPv6 address (IPs repeat: cached)."""
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


def _endpoint(record: dict[str, Any], key: str, unmapped: dict[str, Any]) -> dict[str, Any]:
    """``src_endpoint`` / ``dst_endpoint``: ``{ip}`` when the value is an IP address."""
    value = _text(record.get(key))
    if value is None:
        return {}
    if not _is_ip(value):
        unmapped[key] = value
        return {}
    return {"ip": value}


def _leftovers(record: dict[str, Any], names: _Names, unmapped: dict[str, Any]) -> dict[str, Any]:
    """``unmapped``: the raw status, every field no attribute holds, and rejected values."""
    part: dict[str, Any] = {}
    _put(part, names.status, record.get(names.status))
    mapped = _MAPPED[names]
    for key, value in record.items():
        if key in mapped or key in _ENVELOPE_KEYS:
            continue
        _put(part, key, value)
    part.update(unmapped)
    return part
