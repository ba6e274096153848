"""Data loss prevention reports as OCSF 1.8.0 Data Security Findings (class 2006).

- ``DlpDetailReport`` (one row per rule match): activity 1 Create, ``time`` = ``Date``,
  ``is_alert``; ``finding_info {uid, title, types}`` with ``uid`` = the collector's event id
  (deterministic, so a re-read gives the same finding), ``title`` = ``Title`` (the item's
  subject), ``types`` = ``[EventType]``; ``data_security {policy {name}, detection_pattern,
  total}`` = ``DLPPolicy``, ``SensitiveInformationType``, ``SensitiveInformationCount``,
  with ``data_lifecycle_state_id`` 2 Data in-Transit and ``detection_system_id`` 6 Secure
  Email Gateway when ``Location`` is Exchange; ``severity_id`` from ``Severity`` (Low 2,
  Medium 3, High 4, Critical 5, Informational 1; anything else 99 with the raw caption);
  ``confidence_score`` = ``SensitiveInformationConfidence`` with ``confidence_id`` from
  Microsoft's levels (≥ 85 High, ≥ 75 Medium, else Low); ``actor.user`` = ``Actor``;
  disposition / action from ``Action`` (BlockAccess, NotifyUser, GenerateIncidentReport…).
  ``Recipients``, ``ObjectId``, ``Location``, ``Size``, ``Source``, ``UserAction``,
  ``Justification``, ``AttachmentNames`` stay in ``unmapped``.
- ``DlpDetectionsReport`` (daily counts by policy and sensitive type): the same class and
  activity as an aggregate: ``time`` / ``start_time`` = the day, ``end_time`` = its end,
  ``count`` = ``MessageCount``; ``finding_info.title`` = the policy, ``data_security`` as
  above (``DlpPolicy``, or ``Policy`` as the cmdlet names it).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from o365collector.event import Event
from o365collector.normalize.mapper import Mapper
from o365collector.normalize.ocsf_reports_base import (
    DATA_SECURITY_FINDING_CLASS_UID,
    OTHER,
    Classification,
    bucket_times,
    copy_text,
    email_address,
    finish,
    long,
    names,
    put,
    put_action,
    row_time,
    text,
)

_CREATE = Classification(DATA_SECURITY_FINDING_CLASS_UID, 1)
_DAY = timedelta(days=1)
_SEVERITIES: dict[str, tuple[int, str]] = {
    "informational": (1, "Informational"),
    "low": (2, "Low"),
    "medium": (3, "Medium"),
    "high": (4, "High"),
    "critical": (5, "Critical"),
}
# Email in transit through Exchange, checked by Exchange's own DLP.
_EXCHANGE = {
    "data_lifecycle_state_id": 2,
    "data_lifecycle_state": "Data in-Transit",
    "detection_system_id": 6,
    "detection_system": "Secure Email Gateway",
}

_IDENTIFYING = frozenset(
    {"data_lifecycle_state_id", "detection_pattern", "detection_system_id", "policy"}
)


def _data_security(
    record: dict[str, Any], policy_key: str, exchange: bool, unmapped: dict[str, Any]
) -> dict[str, Any]:
    part: dict[str, Any] = dict(_EXCHANGE) if exchange else {}
    policy = text(record.get(policy_key))
    if policy is not None:
        part["policy"] = {"name": policy}
    copy_text(part, "detection_pattern", record, "SensitiveInformationType")
    raw_total = record.get("SensitiveInformationCount")
    total = long(raw_total)
    if total is None:
        put(unmapped, "SensitiveInformationCount", raw_total)
    else:
        part["total"] = total
    if part.keys().isdisjoint(_IDENTIFYING):  # the object needs one of them
        put(unmapped, "SensitiveInformationCount", raw_total)
        return {}
    return part


def _finding(event: Event, title: str | None, kind: str | None) -> dict[str, Any]:
    info: dict[str, Any] = {"uid": event.event_id}
    put(info, "title", title)
    if kind is not None:
        info["types"] = [kind]
    return info


_DETAIL_MAPPED = names(
    "Date", "Title", "Severity", "Actor", "DLPPolicy", "SensitiveInformationType",
    "SensitiveInformationCount", "SensitiveInformationConfidence", "EventType", "Action",
)  # fmt: skip


def dlp_detail(
    event: Event, local_domains: Sequence[str], include_original: bool
) -> dict[str, Any]:
    """One DLP rule match: Data Security Finding, Create."""
    del local_domains
    record = event.record
    unmapped: dict[str, Any] = {}
    doc = _CREATE.start()
    row_time(doc, record, "Date", unmapped)
    severity = text(record.get("Severity"))
    if severity is None:
        doc["severity_id"], doc["severity"] = 0, "Unknown"
    else:
        doc["severity_id"], doc["severity"] = _SEVERITIES.get(severity.lower(), (OTHER, severity))
    put_action(doc, record.get("Action"))
    doc["is_alert"] = True
    doc["finding_info"] = _finding(event, text(record.get("Title")), text(record.get("EventType")))
    location = text(record.get("Location"))
    exchange = location is not None and location.lower() == "exchange"
    put(doc, "data_security", _data_security(record, "DLPPolicy", exchange, unmapped))
    raw_confidence = record.get("SensitiveInformationConfidence")
    confidence = long(raw_confidence)
    if confidence is None:
        put(unmapped, "SensitiveInformationConfidence", raw_confidence)
    else:
        doc["confidence_score"] = confidence
        doc["confidence_id"], doc["confidence"] = (
            (3, "High") if confidence >= 85 else (2, "Medium") if confidence >= 75 else (1, "Low")
        )
    actor = text(record.get("Actor"))
    if actor is not None:
        user: dict[str, Any] = {"uid": actor}
        put(user, "email_addr", email_address(record, "Actor", {}, actor))
        doc["actor"] = {"user": user}
    return finish(
        doc,
        event,
        "DlpDetailReport",
        _DETAIL_MAPPED,
        unmapped,
        include_original,
        record.get("Date"),
    )


_DETECTIONS_MAPPED = names(
    "Date", "DlpPolicy", "Policy", "SensitiveInformationType", "EventType", "Action",
    "MessageCount",
)  # fmt: skip


def dlp_detections(
    event: Event, local_domains: Sequence[str], include_original: bool
) -> dict[str, Any]:
    """A day's DLP rule matches of one policy and sensitive type: Data Security Finding."""
    del local_domains
    record = event.record
    unmapped: dict[str, Any] = {}
    doc = _CREATE.start()
    bucket_times(doc, row_time(doc, record, "Date", unmapped), _DAY)
    raw_count = record.get("MessageCount")
    count = long(raw_count)
    if count is None:
        put(unmapped, "MessageCount", raw_count)
    else:
        doc["count"] = count
    put_action(doc, record.get("Action"))
    policy_key = "DlpPolicy" if "DlpPolicy" in record else "Policy"
    doc["finding_info"] = _finding(
        event, text(record.get(policy_key)), text(record.get("EventType"))
    )
    source = text(record.get("Source"))
    exchange = source is not None and source.lower() == "exchange"
    put(doc, "data_security", _data_security(record, policy_key, exchange, unmapped))
    return finish(
        doc,
        event,
        "DlpDetectionsReport",
        _DETECTIONS_MAPPED,
        unmapped,
        include_original,
        record.get("Date"),
    )


MAPPERS: dict[str, Mapper] = {
    "DlpDetailReport": dlp_detail,
    "DlpDetectionsReport": dlp_detections,
}
