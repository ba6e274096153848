"""The aggregate Exchange reports as ECS ``event.kind: metric`` documents.

One document per bucket row: ``@timestamp`` and ``event.start`` are the bucket's ``Date``,
``event.end`` its end and ``event.duration`` its length in nanoseconds (the row's
``AggregateBy`` when it says ``Hour`` or ``Day``, else the report's bucket as the catalog
reads it). Counts (``MessageCount``, ``Count``) have no ECS field: they stay under
``o365.<report>`` with every other dimension. The mapping of each report is in
:mod:`.ecs_reports`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from o365collector.event import Event
from o365collector.normalize.ecs import _put, _text
from o365collector.normalize.ecs_reports_base import (
    NS_PER_SEC,
    bucket,
    direction_of,
    email_part,
    finish,
    frame,
    leftovers,
    namespace_of,
    period,
    related_users,
    snake,
    types_of,
)
from o365collector.normalize.mapper import Mapper
from o365collector.normalize.status import action_of
from o365collector.streams.catalog import CATALOG

_BUCKETS = {"hour": 3600, "day": 86400}
_CATEGORY = ("email",)
# Summary categories whose C1 is an address and C2 its message count (api-facts §1.8).
_SUMMARY_SENDERS = frozenset({"topmailsender"})
_SUMMARY_RECIPIENTS = frozenset({"topmailrecipient", "topspamrecipient"})
# SpoofMailReport Result (composite authentication) → event.type with info.
_SPOOF_RESULT = {"fail": "denied", "pass": "allowed", "softpass": "allowed"}


def _bucket_secs(report: str, aggregate_by: object) -> int | None:
    text = _text(aggregate_by)
    if text is not None and text.lower() in _BUCKETS:
        return _BUCKETS[text.lower()]
    spec = CATALOG.get(report)
    return None if spec is None or spec.bucket_secs is None else int(spec.bucket_secs)


def _times(
    part: dict[str, Any], record: dict[str, Any], key: str, secs: int | None, rest: dict[str, Any]
) -> str | None:
    """``event.start``/``end``/``duration`` of a bucket; returns ``@timestamp``."""
    raw = record.get(key)
    span = bucket(raw, secs) if raw.__class__ is str else None
    if span is None:
        if raw is not None and raw != "":
            rest[snake(key)] = raw
        return None
    start, end = span
    part["start"] = start
    if end is not None and secs is not None:
        part["end"] = end
        part["duration"] = secs * NS_PER_SEC
    return start


def traffic_mapper(
    report: str, *, rules: tuple[str, ...] = (), ruleset: str | None = None
) -> Mapper:
    """MailTraffic, MailTrafficATP, MailTrafficPolicy, MailTrafficTop, DlpDetectionsReport.

    ``event.action`` = ``EventType`` (lower case), ``event.type`` gains ``allowed`` /
    ``denied`` from ``Action`` (:func:`.status.action_of`), ``email.direction`` =
    ``Direction``; ``rules`` name the columns for ``rule.name`` (the first one set: a
    MailTrafficPolicy row names a DLP policy or a transport rule), ``ruleset`` the column
    for ``rule.ruleset``; MailTrafficTop's ``Name`` is ``email.from.address`` (Top…Sender) or
    ``email.to.address`` (Top…Recipient), and is kept as ``name`` (TopMalware names malware).
    """
    namespace = namespace_of(report)
    consumed = frozenset(filter(None, ("Date", "Direction", *rules, ruleset)))

    def mapper(
        event: Event, local_domains: Sequence[str], include_original: bool
    ) -> dict[str, Any]:
        del local_domains  # the row states its direction
        record = event.record
        action = action_of(_text(record.get("Action")))
        rest = leftovers(record, consumed)
        secs = _bucket_secs(report, record.get("AggregateBy"))
        timing: dict[str, Any] = {}
        stamp = _times(timing, record, "Date", secs, rest)
        doc, part = frame(
            event,
            timestamp=stamp,
            kind="metric",
            category=list(_CATEGORY),
            types=types_of("info", action),
            include_original=include_original,
        )
        part.update(timing)
        kind = _text(record.get("EventType"))
        if kind is not None:
            part["action"] = kind.lower()
        name = _text(record.get("Name"))
        senders = recipients = None
        if name is not None and kind is not None:
            lowered = kind.lower()
            if lowered.endswith("sender"):  # TopMailSender, TopSpamSender…
                senders = [name]
            elif lowered.endswith("recipient"):  # TopMailRecipient, TopMalwareRecipient…
                recipients = [name]
        _, text = direction_of(record.get("Direction"), None, None, ())
        _put(
            doc,
            "email",
            email_part(
                direction=text,
                local_id=None,
                message_id=None,
                senders=senders,
                recipients=recipients,
            ),
        )
        if rules or ruleset is not None:
            rule_part: dict[str, Any] = {}
            for column in rules:
                rule_name = _text(record.get(column))
                if rule_name is not None:
                    rule_part["name"] = rule_name
                    break
            _put(rule_part, "ruleset", _text(record.get(ruleset)) if ruleset else None)
            _put(doc, "rule", rule_part)
        if senders or recipients:
            doc["related"] = {"user": related_users(name)}
        return finish(doc, event, namespace, rest)

    return mapper


def spoof_mail_report(
    event: Event, local_domains: Sequence[str], include_original: bool
) -> dict[str, Any]:
    """SpoofMailReport: a daily count of mail from one spoofed sender and infrastructure.

    ``email.from.address`` = ``SpoofedUser``, ``source.domain`` = ``SendingInfrastructure``,
    ``event.type`` gains ``denied`` when composite authentication (``Result``) failed and
    ``allowed`` when it passed; SPF, DKIM, DMARC, the result, the true sender and the count
    stay under ``o365.spoof_mail_report``.
    """
    del local_domains
    record = event.record
    rest = leftovers(record, _SPOOF_CONSUMED)
    timing: dict[str, Any] = {}
    stamp = _times(timing, record, "Date", _bucket_secs("SpoofMailReport", None), rest)
    result = _text(record.get("Result"))
    verdict = _SPOOF_RESULT.get(result.lower()) if result is not None else None
    doc, part = frame(
        event,
        timestamp=stamp,
        kind="metric",
        category=list(_CATEGORY),
        types=["info"] if verdict is None else ["info", verdict],
        include_original=include_original,
    )
    part.update(timing)
    _put(part, "action", (_text(record.get("EventType")) or "").lower())
    spoofed = _text(record.get("SpoofedUser"))
    infrastructure = _text(record.get("SendingInfrastructure"))
    _, direction = direction_of(record.get("Direction"), None, None, ())
    _put(
        doc,
        "email",
        email_part(
            direction=direction,
            local_id=None,
            message_id=None,
            senders=[spoofed] if spoofed else None,
            recipients=None,
        ),
    )
    if infrastructure is not None:
        doc["source"] = {"domain": infrastructure}
    related: dict[str, Any] = {}
    _put(related, "user", related_users(spoofed))
    _put(related, "hosts", [infrastructure] if infrastructure else None)
    _put(doc, "related", related)
    return finish(doc, event, "spoof_mail_report", rest)


_SPOOF_CONSUMED = frozenset({"Date", "Direction", "SpoofedUser", "SendingInfrastructure"})


def mail_traffic_summary(
    event: Event, local_domains: Sequence[str], include_original: bool
) -> dict[str, Any]:
    """MailTrafficSummary: one line of a top-N list over the queried day.

    The report has no time of its own: its rows summarise the query range, which the
    collector asks one day at a time (``query_per_bucket``), so ``StartDate`` / ``EndDate``
    are the summarised period: ``@timestamp`` = ``event.start`` = StartDate, ``event.end``
    = EndDate (also kept as ``o365.mail_traffic_summary.start_date`` / ``end_date``).
    ``event.action`` = ``Category``; for the Top*Sender / Top*Recipient categories ``C1`` is
    the address (``email.from`` / ``email.to``) and ``C2`` its count (``message_count``).
    Every ``C<n>`` is kept as ``c<n>``.
    """
    del local_domains
    record = event.record
    rest = leftovers(record, frozenset())
    start, end = record.get("StartDate"), record.get("EndDate")
    span = period(start, end if end.__class__ is str else "") if start.__class__ is str else None
    doc, part = frame(
        event,
        timestamp=None if span is None else span[0],
        kind="metric",
        category=list(_CATEGORY),
        types=["info"],
        include_original=include_original,
    )
    if span is not None:
        part["start"] = span[0]
        if span[1] is not None:
            part["end"] = span[1]
            part["duration"] = span[2]
    category = _text(record.get("Category"))
    lowered = category.lower() if category is not None else ""
    _put(part, "action", lowered)
    first = _text(record.get("C1"))
    if first is not None and (lowered in _SUMMARY_SENDERS or lowered in _SUMMARY_RECIPIENTS):
        sender = lowered in _SUMMARY_SENDERS
        doc["email"] = {"from" if sender else "to": {"address": [first]}}
        doc["related"] = {"user": related_users(first)}
        count = _text(record.get("C2"))
        if count is not None and count.strip().isdigit():
            rest["message_count"] = int(count)
    return finish(doc, event, "mail_traffic_summary", rest)
