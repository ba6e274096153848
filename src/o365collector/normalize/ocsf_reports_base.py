"""What every OCSF report mapper shares: classification, envelope, times, leftovers.

The envelope is the one :mod:`.ocsf` gives message trace: ``metadata.version`` 1.8.0,
``metadata.product`` Exchange Online / Microsoft with ``feature.name`` = the report,
``log_provider`` o365collector, ``profiles`` ``["security_control"]`` (``action_id``,
``disposition_id``, ``is_alert``, ``malware``, ``policy``), ``uid`` = the event id,
``tenant_uid`` = the tenant label, ``log_name`` = the stream, ``original_time`` = the row's
time as sent. ``unmapped`` holds every record field no attribute holds (the query window
``StartDate`` / ``EndDate``, ``Index``, ``Organization`` included) under its own name, and
values an attribute refused (an address that is no ``email_t``, an unreadable date).
RWS verbose JSON's per-row ``__metadata`` (the OData envelope) is not part of the record's
data and is left out, as :mod:`.ocsf` does.
"""

from __future__ import annotations

import re
import time as _time
from collections.abc import Iterable
from datetime import timedelta
from typing import Any

import orjson

from o365collector.dates import parse_date
from o365collector.event import Event

# Shared with the message trace mappers on purpose (same value rules).
from o365collector.normalize.ecs import _ENVELOPE_KEYS, _long, _put, _text
from o365collector.normalize.ocsf import (
    _EMAIL_T,
    _EPOCH,
    _MS,
    EMAIL_ACTIVITY_CLASS_UID,
    NETWORK_CATEGORY_UID,
    metadata_of,
)
from o365collector.normalize.status import action_of

__all__ = [
    "BASE_EVENT_CLASS_UID",
    "DATA_SECURITY_FINDING_CLASS_UID",
    "EMAIL_ACTIVITY_CLASS_UID",
    "EMAIL_URL_ACTIVITY_CLASS_UID",
    "OTHER",
    "Classification",
    "bucket_times",
    "copy_text",
    "direction_of",
    "email_address",
    "epoch_ms",
    "finish",
    "long",
    "names",
    "put",
    "put_action",
    "row_time",
    "text",
]

BASE_EVENT_CLASS_UID = 0
DATA_SECURITY_FINDING_CLASS_UID = 2006
EMAIL_URL_ACTIVITY_CLASS_UID = 4012
FINDINGS_CATEGORY_UID = 2
OTHER = 99

text = _text
long = _long
put = _put

_CLASSES: dict[int, tuple[str, int, str]] = {
    # class_uid: class caption, category_uid, category caption
    BASE_EVENT_CLASS_UID: ("Base Event", 0, "Uncategorized"),
    DATA_SECURITY_FINDING_CLASS_UID: ("Data Security Finding", FINDINGS_CATEGORY_UID, "Findings"),
    EMAIL_ACTIVITY_CLASS_UID: ("Email Activity", NETWORK_CATEGORY_UID, "Network Activity"),
    EMAIL_URL_ACTIVITY_CLASS_UID: ("Email URL Activity", NETWORK_CATEGORY_UID, "Network Activity"),
}
_ACTIVITY_CAPTIONS = {1: "Create", 3: "Scan", 4: "Trace", OTHER: "Other"}


class Classification:
    """The constant classification attributes of one (class, activity), built once."""

    __slots__ = ("attributes", "class_uid")

    def __init__(self, class_uid: int, activity_id: int) -> None:
        """``class_uid`` one of the four classes used; ``activity_id`` its activity."""
        class_name, category_uid, category_name = _CLASSES[class_uid]
        activity = _ACTIVITY_CAPTIONS[activity_id]
        self.class_uid = class_uid
        self.attributes: dict[str, Any] = {
            "class_uid": class_uid,
            "class_name": class_name,
            "category_uid": category_uid,
            "category_name": category_name,
            "activity_id": activity_id,
            "activity_name": activity,
            "type_uid": class_uid * 100 + activity_id,
            "type_name": f"{class_name}: {activity}",
            "severity_id": 1,
            "severity": "Informational",
        }

    def start(self, activity_name: str | None = None) -> dict[str, Any]:
        """A new event holding the classification (``activity_name`` for activity Other)."""
        doc = dict(self.attributes)
        if activity_name:
            doc["activity_name"] = activity_name
        return doc


# Report Direction values (MailTraffic, MailDetail*, SpoofMail): Email Activity's enum.
_DIRECTIONS: dict[str, tuple[int, str]] = {
    "inbound": (1, "Inbound"),
    "outbound": (2, "Outbound"),
    "intraorg": (3, "Internal"),
    "internal": (3, "Internal"),
    "unknown": (0, "Unknown"),
}


def direction_of(raw: object) -> tuple[int, str]:
    """``(direction_id, direction)`` of a report's ``Direction``.

    Inbound 1, Outbound 2, IntraOrg 3 Internal; absent or ``Unknown`` 0; any other value
    99 Other with the value as its caption.
    """
    value = _text(raw)
    if value is None:
        return 0, "Unknown"
    return _DIRECTIONS.get(value.lower()) or (OTHER, value)


def copy_text(part: dict[str, Any], name: str, record: dict[str, Any], key: str) -> None:
    """``part[name] = record[key]`` when that is a non-empty string (one call, hot path)."""
    value = record.get(key)
    if isinstance(value, str) and value:
        part[name] = value


def email_address(
    record: dict[str, Any], key: str, unmapped: dict[str, Any], value: object = None
) -> str | None:
    """``record[key]`` (or ``value``) when it is an ``email_t``; else ``None``, the raw value
    kept in ``unmapped`` under ``key``."""
    address = _text(record.get(key) if value is None else value)
    if address is None or _EMAIL_T.match(address):
        return address
    unmapped[key] = address
    return None


# WCF's /Date(ms)/ (verbose JSON, what the collector asks RWS for), read without building a
# datetime; anything else goes through parse_date. Same accepted shapes and range.
_WCF_DATE = re.compile(r"\\?/Date\((-?\d+)(?:[+-]\d{4})?\)\\?/")
_MIN_MS = -62135596800000  # 0001-01-01T00:00:00Z
_MAX_MS = 253402300799999  # 9999-12-31T23:59:59.999Z


def epoch_ms(value: object) -> int | None:
    """A vendor date (as :func:`~o365collector.dates.parse_date` reads it) in epoch
    milliseconds; ``None`` when absent or unreadable."""
    if isinstance(value, str):
        match = _WCF_DATE.fullmatch(value)
        if match is not None:
            ms = int(match.group(1))
            return ms if _MIN_MS <= ms <= _MAX_MS else None
    moment = parse_date(value)
    return None if moment is None else (moment - _EPOCH) // _MS


def row_time(
    doc: dict[str, Any], record: dict[str, Any], key: str, unmapped: dict[str, Any]
) -> int | None:
    """Set ``time`` from ``record[key]``; the processing time when absent or unreadable.

    Returns the row's own time in epoch milliseconds, ``None`` when it had none (the raw
    value, if any, is then kept in ``unmapped``).
    """
    raw = record.get(key)
    ms = epoch_ms(raw)
    if ms is None:
        _put(unmapped, key, raw)
        doc["time"] = _time.time_ns() // 1_000_000
        return None
    doc["time"] = ms
    return ms


def bucket_times(doc: dict[str, Any], start_ms: int | None, length: timedelta | None) -> None:
    """``start_time`` / ``end_time`` of an aggregate bucket that starts at ``start_ms``."""
    if start_ms is None:
        return
    doc["start_time"] = start_ms
    if length is not None:
        doc["end_time"] = start_ms + length // _MS


def put_action(doc: dict[str, Any], raw: object) -> None:
    """``disposition_id`` / ``action_id`` (and captions) of a report ``Action`` value."""
    action = action_of(_text(raw))
    doc["disposition_id"] = action.ocsf_disposition_id
    doc["disposition"] = action.ocsf_disposition
    doc["action_id"] = action.ocsf_action_id
    doc["action"] = action.ocsf_action


def finish(
    doc: dict[str, Any],
    event: Event,
    feature: str,
    mapped: frozenset[str],
    unmapped: dict[str, Any],
    include_original: bool,
    original_time: object = None,
) -> dict[str, Any]:
    """Add ``metadata``, ``unmapped`` (leftovers + refused values) and ``raw_data``.

    ``mapped`` comes from :func:`names` (it holds the OData envelope keys too). A leftover
    that is ``None``, ``""`` or an empty dict or list is nothing and is not kept (``0`` and
    ``False`` are kept).
    """
    doc["metadata"] = metadata_of(event, feature, original_time)
    record = event.record
    leftovers = {
        key: value
        for key, value in record.items()
        if key not in mapped and (value or value == 0)  # 0 and False are values
    }
    if unmapped:
        leftovers.update(unmapped)
    if leftovers:
        doc["unmapped"] = leftovers
    if include_original:
        doc["raw_data"] = orjson.dumps(record).decode()
    return doc


def names(*keys: Iterable[str] | str) -> frozenset[str]:
    """The record keys a mapper maps (strings or iterables of them), and the OData
    envelope's keys, which are no data of the record."""
    out: set[str] = set(_ENVELOPE_KEYS)
    for key in keys:
        out.update((key,) if isinstance(key, str) else key)
    return frozenset(out)
