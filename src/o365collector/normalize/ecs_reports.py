"""The Exchange reports (every ``rws.<Report>`` but MessageTrace, and message trace detail)
as ECS documents.

``MAPPERS`` maps a report name (``MailTraffic``) or a stream (``message_trace_detail``) to
its mapper; :func:`generic` maps any other stream.

Every document carries ``ecs.version``, ``event.id`` (the event id), ``event.kind`` /
``category`` / ``type``, ``event.original`` when asked, the envelope
``o365collector.{tenant,stream,event_id}`` and, under ``o365.<report_snake_case>``
(``o365.mail_traffic``, ``o365.message_trace_detail``…), every field of the record that no
ECS field holds verbatim, in snake case: counts, the raw ``Action`` / ``EventType`` (whose
ECS forms are lower-cased), the query window ``start_date`` / ``end_date`` (ISO-8601 UTC;
never an event time, but for MailTrafficSummary, below), ``index``, ``organization`` and
any field or value the mapper does not know. ``None``, ``""`` and empty values are
omitted. ``Action`` values go through the one action table (:func:`.status.action_of`):
``event.action`` is the action in lower case and ``event.type`` gains ``allowed`` or
``denied`` when the action says so (``Quarantine`` → denied, ``MoveToJmf`` → neither).

==================== ====== ========================== ======================================
Report               kind   category / type            key fields
==================== ====== ========================== ======================================
message_trace_detail event  email / info (+Action)     @timestamp=Date|dateTime,
(Graph or RWS rows)                                    event.action=Event (lower),
                                                       event.outcome (Deliver, Send external:
                                                       success; Fail: failure), message=Detail
                                                       |description, email.local_id,
                                                       message_id, from, to, direction (local
                                                       domains), user, related.user
MailDetailSpam       event  email / info (+Action)     @timestamp=Date, event.action=Action,
                                                       rule.name=EventType, email.* as message
                                                       trace (size in attachments.file.size),
                                                       source.ip=SenderIP, source/destination
                                                       .user, user, related
MailDetailMalware    alert  email, malware / info,     as MailDetailSpam
                            denied
MailDetailATP        alert  email, malware|intrusion_  as MailDetailSpam, rule.category=
                            detection / info (+Action) VerdictType, threat.software.name=
                                                       MalwareName, email.attachments.file
                                                       .name=FileName
DlpDetailReport      alert  email (Exchange) or file   rule.name=DLPPolicy, event.severity
                            / info (+Action)           (Low 2, Medium 3, High 4), user=Actor,
                                                       Exchange: email.subject=Title,
                                                       message_id=ObjectId, from=Actor,
                                                       to=Recipients
SafelinksDetail      event  web (+intrusion_detection  @timestamp=ClickTime, event.action=
                            when the verdict was a     Action, url.full/original=Url,
                            block) / access (+Action)  url.domain=UrlDomain, user=Recipient,
                                                       email.local_id=NetworkMessageId,
                                                       message_id=ClientMessageId,
                                                       related.user/hosts
MailTraffic,         metric email / info (+Action)     @timestamp=event.start=Date,
MailTrafficATP,                                        event.end, event.duration (ns: hour
MailTrafficPolicy,                                     or day), event.action=EventType,
MailTrafficTop,                                        email.direction=Direction; ATP:
DlpDetectionsReport                                    rule.ruleset=VerdictSource; Policy:
                                                       rule.name=DlpPolicy|TransportRule;
                                                       Detections: rule.name=DlpPolicy; Top:
                                                       email.from|to=Name; counts in o365.*
SpoofMailReport      metric email / info (+denied      email.from.address=SpoofedUser,
                            when Result fail, allowed  source.domain=SendingInfrastructure,
                            when pass)                 SPF/DKIM/DMARC/Count in o365.*
MailTrafficSummary   metric email / info               @timestamp=StartDate (see below),
                                                       event.action=Category, C1 as email.from
                                                       |to for Top* categories, C2 as count
==================== ====== ========================== ======================================

Departures from ``normalization.md`` §5, on purpose:

- The product namespace is ``o365.<report>`` (the project's), not ``microsoft.*``.
- SafelinksDetail's ``event.action`` is the click's ``Action`` (``clickedevenblocked``),
  not a constant ``click`` (the stream already says it is a click); its category is
  ``intrusion_detection`` rather than ``threat`` when the verdict was a block, and so is
  MailDetailATP's for phish and spam: ECS expects ``threat`` events to be of type
  ``indicator``, ``intrusion_detection`` expects ``allowed`` / ``denied`` / ``info``.
- MailDetailSpam is ``event.kind: event`` (routine filtering), not an alert; malware, ATP
  and DLP detail rows are alerts.
- MailTrafficSummary has no time of its own: it summarises the query range, which the
  collector asks one day at a time, so its ``StartDate`` is the only time the row has; it
  is ``@timestamp`` / ``event.start`` (EndDate ``event.end``), and the raw window is kept
  under ``o365.mail_traffic_summary`` as for every report.
- ``event.start`` / ``event.end`` of the aggregates are the bucket (Date + its length),
  not the query window.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from o365collector.event import Event
from o365collector.normalize.ecs import (
    ECS_VERSION,
    ENVELOPE_NAMESPACE,
    PRODUCT_NAMESPACE,
    _put,
    _text,
)
from o365collector.normalize.ecs_reports_base import (
    direction_of,
    email_part,
    endpoint,
    finish,
    frame,
    leftovers,
    own_side,
    related_users,
    types_of,
)
from o365collector.normalize.ecs_reports_base import stamp as timestamp
from o365collector.normalize.ecs_reports_metrics import (
    mail_traffic_summary,
    spoof_mail_report,
    traffic_mapper,
)
from o365collector.normalize.ecs_reports_rows import (
    dlp_detail_report,
    mail_detail,
    safelinks_detail,
)
from o365collector.normalize.mapper import Mapper
from o365collector.normalize.status import action_of
from o365collector.streams.catalog import MESSAGE_TRACE_DETAIL


def generic(event: Event, local_domains: Sequence[str], include_original: bool) -> dict[str, Any]:
    """A stream no mapper knows: the envelope, and the record under ``o365.<stream>``."""
    del local_domains
    part: dict[str, Any] = {"kind": "event", "category": ["email"], "type": ["info"]}
    part["id"] = event.event_id
    if include_original:
        part["original"] = orjson.dumps(event.record).decode()
    return {
        "ecs": {"version": ECS_VERSION},
        "event": part,
        ENVELOPE_NAMESPACE: {
            "tenant": event.tenant,
            "stream": event.stream,
            "event_id": event.event_id,
        },
        PRODUCT_NAMESPACE: {_namespace(event.stream): dict(event.record)},
    }


def _namespace(stream: str) -> str:
    """``rws.MailTraffic`` → ``mail_traffic``; ``message_trace_detail`` stays."""
    name = stream.rsplit(".", 1)[-1]
    out = [name[0].lower()]
    for previous, char in itertools.pairwise(name):
        if char.isupper() and previous.islower():
            out.append("_")
        out.append(char.lower())
    return "".join(out)


# -- message trace detail (Graph getDetailsByRecipient or RWS MessageTraceDetail) ----------


@dataclass(frozen=True, slots=True)
class _DetailNames:
    """The record keys of one source's message trace detail row."""

    trace_id: str
    message_id: str
    sender: str
    recipient: str
    date: str
    event: str
    action: str
    detail: str

    def consumed(self) -> frozenset[str]:
        """Keys an ECS field holds verbatim (``event``/``action`` are lower-cased there)."""
        keys = (self.trace_id, self.message_id, self.sender, self.recipient, self.detail)
        return frozenset((*keys, self.date))


_GRAPH_DETAIL = _DetailNames(
    "id", "messageId", "senderAddress", "recipientAddress", "dateTime", "event", "action",
    "description",
)  # fmt: skip
_RWS_DETAIL = _DetailNames(
    "MessageTraceId", "MessageId", "SenderAddress", "RecipientAddress", "Date", "Event",
    "Action", "Detail",
)  # fmt: skip
_DETAIL_CONSUMED = {_GRAPH_DETAIL: _GRAPH_DETAIL.consumed(), _RWS_DETAIL: _RWS_DETAIL.consumed()}
# A processing step's Event → event.outcome; other steps have none.
_STEP_OUTCOME = {"deliver": "success", "send external": "success", "fail": "failure"}


def message_trace_detail(
    event: Event, local_domains: Sequence[str], include_original: bool
) -> dict[str, Any]:
    """One processing step of a message and recipient, from Graph or from RWS."""
    record = event.record
    names = _RWS_DETAIL if "MessageTraceId" in record or "Date" in record else _GRAPH_DETAIL
    action = action_of(_text(record.get(names.action)))
    rest = leftovers(record, _DETAIL_CONSUMED[names])
    stamp = timestamp(record, names.date, rest)
    doc, part = frame(
        event,
        timestamp=stamp,
        kind="event",
        category=["email"],
        types=types_of("info", action),
        include_original=include_original,
    )
    step = _text(record.get(names.event))
    if step is not None:
        lowered = step.lower()
        part["action"] = lowered
        _put(part, "outcome", _STEP_OUTCOME.get(lowered))
    sender = _text(record.get(names.sender))
    recipient = _text(record.get(names.recipient))
    known, direction = direction_of(None, sender, recipient, local_domains)
    _put(doc, "message", _text(record.get(names.detail)))
    doc["email"] = email_part(
        direction=direction,
        local_id=_text(record.get(names.trace_id)),
        message_id=_text(record.get(names.message_id)),
        senders=[sender] if sender else None,
        recipients=[recipient] if recipient else None,
    )
    if not doc["email"]:
        del doc["email"]
    _put(doc, "source", endpoint(None, sender))
    _put(doc, "destination", endpoint(None, recipient))
    _put(doc, "user", own_side(known, sender, recipient))
    users = related_users(recipient, sender)
    if users:
        doc["related"] = {"user": users}
    return finish(doc, event, "message_trace_detail", rest)


MAPPERS: dict[str, Mapper] = {
    MESSAGE_TRACE_DETAIL: message_trace_detail,
    "MessageTraceDetail": message_trace_detail,
    "MailDetailSpam": mail_detail("MailDetailSpam", "mail_detail_spam", "event", atp=False),
    "MailDetailMalware": mail_detail(
        "MailDetailMalware", "mail_detail_malware", "alert", atp=False
    ),
    "MailDetailATP": mail_detail("MailDetailATP", "mail_detail_atp", "alert", atp=True),
    "DlpDetailReport": dlp_detail_report,
    "SafelinksDetail": safelinks_detail,
    "MailTraffic": traffic_mapper("MailTraffic"),
    "MailTrafficATP": traffic_mapper("MailTrafficATP", ruleset="VerdictSource"),
    "MailTrafficPolicy": traffic_mapper("MailTrafficPolicy", rules=("DlpPolicy", "TransportRule")),
    "MailTrafficTop": traffic_mapper("MailTrafficTop"),
    "DlpDetectionsReport": traffic_mapper("DlpDetectionsReport", rules=("DlpPolicy",)),
    "SpoofMailReport": spoof_mail_report,
    "MailTrafficSummary": mail_traffic_summary,
}
"""Report name or stream → its ECS mapper (every catalog report but MessageTrace)."""
