"""Aggregate mail-flow reports as OCSF 1.8.0 events: one event per bucket row.

Every row counts messages over an hourly or daily bucket: ``time`` and ``start_time`` are
the bucket start (the row's ``Date``), ``end_time`` the bucket end (the report's bucket
length, or the row's ``AggregateBy`` when it says ``Hour`` / ``Day``), ``count`` the row's
count. Disposition / action come from the row's ``Action`` (``null`` → 0 Unknown).

Email Activity (4009) requires an ``email`` with ``from`` or ``to``: a row that names an
address is Email Activity, a row that names none is a **Base Event** (class 0, category 0,
the schema's class for events no other class defines), activity 99 Other with
``activity_name`` = the row's ``EventType``; ``Direction`` then stays in ``unmapped``
(Base Event has no ``direction_id``). So:

- ``MailTraffic``, ``MailTrafficATP``, ``MailTrafficPolicy``: Base Event, Other.
  MailTrafficPolicy's ``DlpPolicy`` / ``TransportRule`` become ``policy {name, type}``
  (security_control profile); MailTrafficATP's ``VerdictSource`` stays in ``unmapped``.
- ``MailTrafficTop``: Email Activity, Other (``activity_name`` = ``TopMailSender`` …) with
  ``email.from`` = ``Name`` for senders and ``email.to`` = ``[Name]`` for recipients,
  ``direction_id`` from ``Direction``; a ``Name`` that is no address: Base Event.
- ``MailTrafficSummary``: ``time`` / ``start_time`` = ``StartDate``, ``end_time`` =
  ``EndDate`` (the one-bucket query range the row summarises); ``activity_name`` =
  ``Category``. For the top-address categories (``C1`` = the address, ``C2`` = its count):
  Email Activity with ``from`` / ``to`` and ``count``; any other category: Base Event with
  ``C1``…``C20`` in ``unmapped``.
- ``SpoofMailReport``: Email Activity, activity 3 Scan (spoof intelligence looked at the
  sender), ``email.from`` = ``SpoofedUser``, ``email_auth {spf, dkim, dmarc}``,
  ``src_endpoint.domain`` = ``SendingInfrastructure``, ``direction_id``, ``count`` =
  ``Count``. ``Result`` is the composite authentication verdict, not an action: ``pass`` /
  ``softpass`` → 1 Allowed / 1 Allowed; ``fail`` → 15 Detected / 3 Observed (what was done
  with the mail — junk, quarantine — is not in the row); anything else 0 Unknown, the raw
  value in ``unmapped``. A ``SpoofedUser`` that is a domain: Base Event, the
  authentication results in ``unmapped``.

Query metadata (``StartDate``, ``EndDate``, ``AggregateBy``, ``Index``) and every other
column stay in ``unmapped`` under their own names.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from o365collector.event import Event
from o365collector.normalize.mapper import Mapper
from o365collector.normalize.ocsf_reports_base import (
    BASE_EVENT_CLASS_UID,
    EMAIL_ACTIVITY_CLASS_UID,
    OTHER,
    Classification,
    bucket_times,
    copy_text,
    direction_of,
    email_address,
    epoch_ms,
    finish,
    long,
    names,
    put,
    put_action,
    row_time,
    text,
)
from o365collector.streams.catalog import CATALOG

_BASE_OTHER = Classification(BASE_EVENT_CLASS_UID, OTHER)
_EMAIL_OTHER = Classification(EMAIL_ACTIVITY_CLASS_UID, OTHER)
_EMAIL_SCAN = Classification(EMAIL_ACTIVITY_CLASS_UID, 3)
_HOUR = timedelta(hours=1)
_DAY = timedelta(days=1)
_AGGREGATE_BY = {"hour": _HOUR, "day": _DAY}


def _bucket_length(report: str) -> timedelta | None:
    secs = CATALOG[report].bucket_secs
    return None if secs is None else timedelta(seconds=secs)


def _start(
    classification: Classification,
    record: dict[str, Any],
    unmapped: dict[str, Any],
    length: timedelta | None,
    count_key: str,
    activity_key: str | None = "EventType",
) -> dict[str, Any]:
    """The classification, bucket times, ``count`` and disposition of an aggregate row."""
    doc = classification.start(text(record.get(activity_key)) if activity_key else None)
    start = row_time(doc, record, "Date", unmapped)
    by = text(record.get("AggregateBy"))
    bucket_times(doc, start, _AGGREGATE_BY.get(by.lower(), length) if by else length)
    raw_count = record.get(count_key)
    count = long(raw_count)
    if count is None:
        put(unmapped, count_key, raw_count)
    else:
        doc["count"] = count
    put_action(doc, record.get("Action"))
    return doc


# -- MailTraffic, MailTrafficATP, MailTrafficPolicy --------------------------------------------

_TRAFFIC_MAPPED = names("Date", "EventType", "MessageCount", "Action")
_POLICY_MAPPED = names(_TRAFFIC_MAPPED, ("DlpPolicy", "TransportRule"))


def _traffic(report: str) -> Mapper:
    length = _bucket_length(report)
    policies = report == "MailTrafficPolicy"
    mapped = _POLICY_MAPPED if policies else _TRAFFIC_MAPPED

    def mapper(
        event: Event, local_domains: Sequence[str], include_original: bool
    ) -> dict[str, Any]:
        del local_domains
        record = event.record
        unmapped: dict[str, Any] = {}
        doc = _start(_BASE_OTHER, record, unmapped, length, "MessageCount")
        if policies:
            dlp = text(record.get("DlpPolicy"))
            rule = text(record.get("TransportRule"))
            if dlp is not None:
                doc["policy"] = {"name": dlp, "type": "DLP Policy"}
            elif rule is not None:
                doc["policy"] = {"name": rule, "type": "Transport Rule"}
            if dlp is not None and rule is not None:
                unmapped["TransportRule"] = rule
        return finish(doc, event, report, mapped, unmapped, include_original, record.get("Date"))

    mapper.__name__ = mapper.__qualname__ = f"ocsf_{report}"
    return mapper


# -- MailTrafficTop -----------------------------------------------------------------------------

_TOP_MAPPED = names("Date", "EventType", "MessageCount", "Action", "Name", "Direction")
_TOP_SIDE = {"topmailsender": "from", "topmailrecipient": "to"}
_TOP_LENGTH = _bucket_length("MailTrafficTop")


def mail_traffic_top(
    event: Event, local_domains: Sequence[str], include_original: bool
) -> dict[str, Any]:
    """A top sender or recipient of a day: Email Activity, Other (Base Event without one)."""
    del local_domains
    record = event.record
    unmapped: dict[str, Any] = {}
    kind = text(record.get("EventType"))
    side = _TOP_SIDE.get(kind.lower()) if kind else None
    address = email_address(record, "Name", unmapped) if side else None
    if side is None or address is None:
        doc = _start(_BASE_OTHER, record, unmapped, _TOP_LENGTH, "MessageCount")
        put(unmapped, "Name", record.get("Name"))
        put(unmapped, "Direction", record.get("Direction"))
    else:
        doc = _start(_EMAIL_OTHER, record, unmapped, _TOP_LENGTH, "MessageCount")
        doc["direction_id"], doc["direction"] = direction_of(record.get("Direction"))
        _address(doc, side, address)
    return finish(
        doc, event, "MailTrafficTop", _TOP_MAPPED, unmapped, include_original, record.get("Date")
    )


def _address(doc: dict[str, Any], side: str, address: str) -> None:
    """``email.from`` + ``from``, or ``email.to`` + ``to``."""
    value: str | list[str] = address if side == "from" else [address]
    doc["email"] = {side: value}
    doc[side] = value


# -- MailTrafficSummary -------------------------------------------------------------------------

_SUMMARY_MAPPED = names("Category")
_SUMMARY_ADDRESS_MAPPED = names("Category", "C1", "C2")
_SUMMARY_SIDE = {
    "topmailsender": "from",
    "topspamsender": "from",
    "topmalwaresender": "from",
    "topmailrecipient": "to",
    "topspamrecipient": "to",
    "topmalwarerecipient": "to",
}


def mail_traffic_summary(
    event: Event, local_domains: Sequence[str], include_original: bool
) -> dict[str, Any]:
    """One line of a top-N summary of a bucket (by ``Category``)."""
    del local_domains
    record = event.record
    unmapped: dict[str, Any] = {}
    category = text(record.get("Category"))
    side = _SUMMARY_SIDE.get(category.lower()) if category else None
    probe: dict[str, Any] = {}
    address = email_address(record, "C1", probe) if side else None
    count = long(record.get("C2")) if address else None
    email = side is not None and address is not None and count is not None
    doc = (_EMAIL_OTHER if email else _BASE_OTHER).start(category)
    start = row_time(doc, record, "StartDate", unmapped)
    if start is not None:
        doc["start_time"] = start
        end = epoch_ms(record.get("EndDate"))
        if end is not None:
            doc["end_time"] = end
    if email and side is not None and address is not None:
        doc["count"] = count
        doc["direction_id"], doc["direction"] = 0, "Unknown"
        _address(doc, side, address)
    return finish(
        doc,
        event,
        "MailTrafficSummary",
        _SUMMARY_ADDRESS_MAPPED if email else _SUMMARY_MAPPED,
        unmapped,
        include_original,
        record.get("StartDate"),
    )


# -- SpoofMailReport ----------------------------------------------------------------------------

_SPOOF_MAPPED = names(
    "Date", "EventType", "Count", "SpoofedUser", "Direction", "SendingInfrastructure",
    "SPF", "DKIM", "DMARC", "Result",
)  # fmt: skip
_SPOOF_FALLBACK_KEPT = ("SpoofedUser", "Direction", "SendingInfrastructure", "SPF", "DKIM", "DMARC")
_ALLOWED = (1, "Allowed", 1, "Allowed")
_COMPAUTH: dict[str, tuple[int, str, int, str]] = {
    "pass": _ALLOWED,
    "softpass": _ALLOWED,
    "fail": (15, "Detected", 3, "Observed"),
}
_SPOOF_LENGTH = _bucket_length("SpoofMailReport")


def spoof_mail(
    event: Event, local_domains: Sequence[str], include_original: bool
) -> dict[str, Any]:
    """Mail from a spoofed sender over a day: Email Activity, Scan, with ``email_auth``."""
    del local_domains
    record = event.record
    unmapped: dict[str, Any] = {}
    sender = email_address(record, "SpoofedUser", {})
    if sender is None:
        doc = _start(_BASE_OTHER, record, unmapped, _SPOOF_LENGTH, "Count")
    else:
        doc = _start(_EMAIL_SCAN, record, unmapped, _SPOOF_LENGTH, "Count", None)
        put(unmapped, "EventType", record.get("EventType"))
    result = text(record.get("Result"))
    verdict = _COMPAUTH.get(result.lower()) if result else None
    if verdict is None:
        put(unmapped, "Result", result)
        verdict = (0, "Unknown", 0, "Unknown")
    doc["disposition_id"], doc["disposition"], doc["action_id"], doc["action"] = verdict
    if sender is None:
        for key in _SPOOF_FALLBACK_KEPT:
            put(unmapped, key, record.get(key))
    else:
        doc["direction_id"], doc["direction"] = direction_of(record.get("Direction"))
        _address(doc, "from", sender)
        auth: dict[str, Any] = {}
        copy_text(auth, "spf", record, "SPF")
        copy_text(auth, "dkim", record, "DKIM")
        copy_text(auth, "dmarc", record, "DMARC")
        put(doc, "email_auth", auth)
        infrastructure = text(record.get("SendingInfrastructure"))
        if infrastructure is not None:
            doc["src_endpoint"] = {"domain": infrastructure}
    return finish(
        doc, event, "SpoofMailReport", _SPOOF_MAPPED, unmapped, include_original, record.get("Date")
    )


MAPPERS: dict[str, Mapper] = {
    "MailTraffic": _traffic("MailTraffic"),
    "MailTrafficATP": _traffic("MailTrafficATP"),
    "MailTrafficPolicy": _traffic("MailTrafficPolicy"),
    "MailTrafficTop": mail_traffic_top,
    "MailTrafficSummary": mail_traffic_summary,
    "SpoofMailReport": spoof_mail,
}
