"""The per-row Exchange detection reports as ECS documents: MailDetailSpam,
MailDetailMalware, MailDetailATP, DlpDetailReport and SafelinksDetail.

The mapping of each report is in :mod:`.ecs_reports`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit

from o365collector.event import Event
from o365collector.normalize.ecs import _long, _put, _text
from o365collector.normalize.ecs_reports_base import (
    addresses,
    direction_of,
    email_part,
    endpoint,
    finish,
    frame,
    leftovers,
    own_side,
    person,
    related_users,
    types_of,
)
from o365collector.normalize.ecs_reports_base import stamp as timestamp
from o365collector.normalize.mapper import Mapper
from o365collector.normalize.status import action_of

# -- per-message detection reports: MailDetailSpam, MailDetailMalware, MailDetailATP -------

_MAIL_CONSUMED = frozenset(
    {
        *("Date", "MessageId", "MessageTraceId", "Subject", "MessageSize", "Direction"),
        *("SenderAddress", "RecipientAddress", "SenderIP", "EventType"),
    }
)
_ATP_CONSUMED = _MAIL_CONSUMED | {"VerdictType", "FileName", "MalwareName"}


def mail_detail(report: str, namespace: str, kind: str, atp: bool) -> Mapper:
    """A per-message detection report's mapper (see the module table)."""
    consumed = _ATP_CONSUMED if atp else _MAIL_CONSUMED
    malware_only = report == "MailDetailMalware"

    def mapper(
        event: Event, local_domains: Sequence[str], include_original: bool
    ) -> dict[str, Any]:
        record = event.record
        action = action_of(_text(record.get("Action")))
        rest = leftovers(record, consumed)
        stamp = timestamp(record, "Date", rest)
        detection = _text(record.get("EventType"))
        verdict = _text(record.get("VerdictType")) if atp else None
        malware = _text(record.get("MalwareName")) if atp else None
        if malware_only or (atp and _is_malware(detection, verdict, malware)):
            category = ["email", "malware"]
        elif atp:
            category = ["email", "intrusion_detection"]
        else:
            category = ["email"]
        doc, part = frame(
            event,
            timestamp=stamp,
            kind=kind,
            category=category,
            types=types_of("info", action),
            include_original=include_original,
        )
        _put(part, "action", action.ecs_action)
        sender = _text(record.get("SenderAddress"))
        recipient = _text(record.get("RecipientAddress"))
        known, direction = direction_of(record.get("Direction"), sender, recipient, local_domains)
        size = _long(record.get("MessageSize"))
        if size is None:
            _put(rest, "message_size", record.get("MessageSize"))
        doc["email"] = email_part(
            direction=direction,
            local_id=_text(record.get("MessageTraceId")),
            message_id=_text(record.get("MessageId")),
            senders=[sender] if sender else None,
            recipients=[recipient] if recipient else None,
            subject=_text(record.get("Subject")),
            size=size,
            file_name=_text(record.get("FileName")) if atp else None,
        )
        if not doc["email"]:
            del doc["email"]
        rule: dict[str, Any] = {}
        _put(rule, "name", detection)
        _put(rule, "category", verdict)
        _put(doc, "rule", rule)
        if malware is not None:
            doc["threat"] = {"software": {"name": malware}}
        ip = _text(record.get("SenderIP"))
        _put(doc, "source", endpoint(ip, sender))
        _put(doc, "destination", endpoint(None, recipient))
        _put(doc, "user", own_side(known, sender, recipient))
        related: dict[str, Any] = {}
        _put(related, "user", related_users(recipient, sender))
        _put(related, "ip", [ip] if ip else None)
        _put(doc, "related", related)
        return finish(doc, event, namespace, rest)

    return mapper


def _is_malware(detection: str | None, verdict: str | None, malware: str | None) -> bool:
    return (
        malware is not None
        or (detection is not None and detection.lower() == "malware")
        or (verdict is not None and verdict.lower() == "malware")
    )


# -- DlpDetailReport ------------------------------------------------------------------------

_DLP_CONSUMED = frozenset({"Date", "Actor", "DLPPolicy"})
_DLP_EMAIL_CONSUMED = _DLP_CONSUMED | {"Title", "ObjectId", "Recipients", "Size"}
# Severity → event.severity, on OCSF's severity_id scale so both forms agree.
_SEVERITY = {"informational": 1, "low": 2, "medium": 3, "high": 4, "critical": 5}


def dlp_detail_report(
    event: Event, local_domains: Sequence[str], include_original: bool
) -> dict[str, Any]:
    """One DLP rule match. Exchange matches are email documents; other locations
    (SharePoint, OneDrive) keep the object's title, id and recipients under the namespace."""
    del local_domains
    record = event.record
    action = action_of(_text(record.get("Action")))
    location = _text(record.get("Location"))
    is_mail = location is None or location.lower() == "exchange"
    rest = leftovers(record, _DLP_EMAIL_CONSUMED if is_mail else _DLP_CONSUMED)
    size = _long(record.get("Size")) if is_mail else None
    if is_mail and size is None:
        _put(rest, "size", record.get("Size"))
    stamp = timestamp(record, "Date", rest)
    doc, part = frame(
        event,
        timestamp=stamp,
        kind="alert",
        category=["email"] if is_mail else ["file"],
        types=types_of("info", action),
        include_original=include_original,
    )
    _put(part, "action", action.ecs_action)
    severity = _text(record.get("Severity"))
    if severity is not None:
        _put(part, "severity", _SEVERITY.get(severity.lower()))
    actor = _text(record.get("Actor"))
    recipients = addresses(record.get("Recipients")) if is_mail else []
    if is_mail:
        _put(
            doc,
            "email",
            email_part(
                direction=None,
                local_id=None,
                message_id=_text(record.get("ObjectId")),
                senders=[actor] if actor else None,
                recipients=recipients or None,
                subject=_text(record.get("Title")),
                size=size,
            ),
        )
    policy = _text(record.get("DLPPolicy"))
    if policy is not None:
        doc["rule"] = {"name": policy}
    _put(doc, "user", person(actor))
    _put(doc, "related", {"user": related_users(actor, *recipients)} if actor or recipients else {})
    return finish(doc, event, "dlp_detail_report", rest)


# -- SafelinksDetail ------------------------------------------------------------------------

_SAFELINKS_CONSUMED = frozenset(
    {
        *("ClickTime", "NetworkMessageId", "ClientMessageId", "SenderAddress"),
        *("RecipientAddress", "Url", "UrlDomain"),
    }
)
# Verdicts that were a block, whether or not the user clicked through.
_BLOCK_VERDICTS = frozenset({"clickedevenblocked"})


def safelinks_detail(
    event: Event, local_domains: Sequence[str], include_original: bool
) -> dict[str, Any]:
    """One Safe Links click: the URL, who clicked (the recipient) and the verdict."""
    record = event.record
    action = action_of(_text(record.get("Action")))
    rest = leftovers(record, _SAFELINKS_CONSUMED)
    stamp = timestamp(record, "ClickTime", rest)
    blocked = action.blocked or action.ecs_action in _BLOCK_VERDICTS
    doc, part = frame(
        event,
        timestamp=stamp,
        kind="event",
        category=["web", "intrusion_detection"] if blocked else ["web"],
        types=types_of("access", action),
        include_original=include_original,
    )
    _put(part, "action", action.ecs_action)
    sender = _text(record.get("SenderAddress"))
    recipient = _text(record.get("RecipientAddress"))
    _, direction = direction_of(None, sender, recipient, local_domains)
    url = _text(record.get("Url"))
    domain = _text(record.get("UrlDomain"))
    if url is not None:
        url_part: dict[str, Any] = {"full": url, "original": url}
        if domain is None:
            domain = _host(url)
        _put(url_part, "domain", domain)
        doc["url"] = url_part
    elif domain is not None:
        doc["url"] = {"domain": domain}
    _put(
        doc,
        "email",
        email_part(
            direction=direction,
            local_id=_text(record.get("NetworkMessageId")),
            message_id=_text(record.get("ClientMessageId")),
            senders=[sender] if sender else None,
            recipients=[recipient] if recipient else None,
        ),
    )
    _put(doc, "user", person(recipient))
    related: dict[str, Any] = {}
    _put(related, "user", related_users(recipient, sender))
    _put(related, "hosts", [domain] if domain else None)
    _put(doc, "related", related)
    return finish(doc, event, "safelinks_detail", rest)


def _host(url: str) -> str | None:
    try:
        return urlsplit(url).hostname
    except ValueError:
        return None
