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

from o365collector.dates import epoch_ms
from o365collector.event import Event

# Shared with the ECS mapper on purpose (same rows, same field names and value rules).
from o365collector.normalize.ecs import (
    _ENVELOPE_KEYS,
    _GRAPH_KEYS,
    _RWS_KEYS,
    Direction,
    _long,
    _parts,
    _put,
    _text,
    direction_of,
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
    return map_message_trace(event, local_domains, include_raw)


def map_message_trace(  # noqa: PLR0912, PLR0915 - one flat pass is the cost budget
    event: Event, local_domains: Sequence[str], include_raw: bool
) -> dict[str, Any]:
    """:func:`message_trace_to_ocsf` as a :data:`~.mapper.Mapper` (what the sinks'
    :class:`~.normalizer.Normalizer` calls: positional, no wrapper per event).

    One pass with few calls, like :func:`~.ecs.message_trace_to_ecs` (normalization's
    budget is a few microseconds per event): each value is read and checked once, inline,
    and what repeats across rows (an address's checks, an IP's validity, a status's
    attributes) is cached. ``unmapped`` is filled in the order the event always had: the
    raw status, the record's other fields, then the rejected values.
    """
    record = event.record
    keys, mapped = _RWS_KEYS if "MessageTraceId" in record or "Received" in record else _GRAPH_KEYS
    (
        k_trace,
        k_message,
        k_sender,
        k_recipient,
        k_received,
        k_subject,
        k_size,
        k_from,
        k_to,
        k_status,
    ) = keys
    get = record.get
    rejected: dict[str, Any] = {}  # values no attribute can hold, by source name
    raw_status = get(k_status)
    sender = get(k_sender)
    s_lower: str | None = None
    if sender.__class__ is not str or not sender:
        sender = None
    else:
        s_lower, valid = _address_facts(sender)
        if not valid:
            rejected[k_sender] = sender
            sender = None
    recipient = get(k_recipient)
    r_lower: str | None = None
    if recipient.__class__ is not str or not recipient:
        recipient = None
    else:
        r_lower, valid = _address_facts(recipient)
        if not valid:
            rejected[k_recipient] = recipient
            recipient = None
    # Judged on the addresses as sent, valid email_t or not.
    direction = direction_of(s_lower, r_lower, local_domains) if local_domains else None
    raw_received = get(k_received)
    time_ms = epoch_ms(raw_received)
    if time_ms is None:
        if raw_received not in _ABSENT:
            rejected[k_received] = raw_received
        time_ms = _time.time_ns() // 1_000_000

    status = raw_status if raw_status.__class__ is str and raw_status else None
    doc = _trace_head(status, direction).copy()
    doc["time"] = time_ms  # a placeholder in the head: the key keeps its place
    doc["metadata"] = metadata_of(event, _FEATURE, raw_received)
    value = get(k_trace)
    if value.__class__ is str and value:
        doc["message_trace_uid"] = value

    email: dict[str, Any] = {}
    if sender is not None:
        email["from"] = sender
    if recipient is not None:
        email["to"] = [recipient]
    value = get(k_message)
    if value.__class__ is str and value:
        email["message_uid"] = value
    value = get(k_subject)
    if value.__class__ is str and value:
        email["subject"] = value
    raw_size = get(k_size)
    size = raw_size if raw_size.__class__ is int else _long(raw_size)
    if size is not None:
        email["size"] = size
    elif raw_size not in _ABSENT:
        rejected[k_size] = raw_size
    doc["email"] = email
    if sender is not None:
        doc["from"] = sender
    if recipient is not None:
        doc["to"] = [recipient]
    value = get(k_from)
    if value.__class__ is str and value:
        if _is_ip(value):
            doc["src_endpoint"] = {"ip": value}
        else:
            rejected[k_from] = value
    value = get(k_to)
    if value.__class__ is str and value:
        if _is_ip(value):
            doc["dst_endpoint"] = {"ip": value}
        else:
            rejected[k_to] = value

    unmapped: dict[str, Any] = {}
    if raw_status not in _ABSENT:
        unmapped[k_status] = raw_status
    if not mapped.issuperset(record):  # Graph rows hold mapped keys only: no walk
        for key in _unmapped_keys(tuple(record), mapped):
            value = record[key]
            if value.__class__ is str:
                if not value:
                    continue
            elif value is None or (value.__class__ in (dict, list) and not value):
                continue
            unmapped[key] = value
    if rejected:
        unmapped.update(rejected)
    if unmapped:
        doc["unmapped"] = unmapped
    if include_raw:
        doc["raw_data"] = orjson.dumps(record).decode()
    return doc


# What ``_put`` omits, for the rare values checked inline (``in`` compares by ``==``).
_ABSENT: tuple[object, ...] = (None, "", {}, [])


@functools.lru_cache(maxsize=256)
def _unmapped_keys(keys: tuple[str, ...], mapped: frozenset[str]) -> tuple[str, ...]:
    """The keys of a row with these ``keys`` that no attribute takes, in order. A page's
    rows share their keys, so this is worked out once per layout, not per row."""
    return tuple(key for key in keys if key not in mapped and key not in _ENVELOPE_KEYS)


@functools.lru_cache(maxsize=8192)
def _address_facts(address: str) -> tuple[str | None, bool]:
    """An address's domain in lower case (for the direction) and whether it is an OCSF
    ``email_t`` (addresses repeat: cached)."""
    return _parts(address)[2], _is_email(address)


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


@functools.lru_cache(maxsize=1024)
def _trace_head(raw_status: str | None, direction: Direction | None) -> dict[str, Any]:
    """An event's first attributes, in order: classification, ``time`` (``None``, for the
    caller to set), status / disposition / action, direction and protocol. They depend on
    the raw status and the direction only: made once per pair, and callers copy them (the
    values are immutable, so a shallow copy is a new event's own)."""
    head: dict[str, Any] = {**_TRACE_CLASSIFICATION, "time": None}
    head.update(_status_fields(status_of(raw_status)))
    head["direction_id"], head["direction"] = DIRECTION_IDS[direction]
    head["protocol_name"] = "SMTP"
    return head


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


# A vendor date as epoch milliseconds (cut, not rounded), with the fast paths for what
# Graph and RWS send (plain ISO text, ``/Date(ms)/``).
_epoch_ms = epoch_ms


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


_FEATURE: str = PRODUCT["feature"]["name"]


def metadata_of(event: Event, feature: str, original_time: object) -> dict[str, Any]:
    """``metadata``: schema version, product (with the stream's ``feature``), profiles, and
    the envelope: event id, tenant, stream, and the row's time as sent (when a string)."""
    metadata: dict[str, Any] = {
        "version": OCSF_VERSION,
        "product": {
            "name": PRODUCT["name"],
            "vendor_name": PRODUCT["vendor_name"],
            "feature": {"name": feature},
        },
        "log_provider": LOG_PROVIDER,
        "profiles": list(PROFILES),
    }
    if event.event_id:
        metadata["uid"] = event.event_id
    if event.tenant:
        metadata["tenant_uid"] = event.tenant
    if event.stream:
        metadata["log_name"] = event.stream
    if original_time.__class__ is str and original_time:
        metadata["original_time"] = original_time
    return metadata
