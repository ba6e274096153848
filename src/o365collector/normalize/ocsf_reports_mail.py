"""Per-message reports as OCSF 1.8.0 events: trace detail, mail detail, Safe Links clicks.

- ``message_trace_detail`` (Graph ``exchangeMessageTraceDetail``, camelCase, or RWS
  ``MessageTraceDetail``, PascalCase): Email Activity 4009, activity 4 Trace with
  ``message_trace_uid``, as the message trace row it details. ``time`` = the step's time;
  ``status_detail`` = the step (``Receive``, ``Deliver``, ``Fail``…), ``status_id`` 1 for a
  delivery step, 2 for ``Fail``, 0 otherwise; ``message`` = the step's description;
  disposition / action from the step's ``Action``. The step's ``Data`` (URI-escaped XML)
  stays in ``unmapped``. A Graph step names no sender: ``direction_id`` is then 0 Unknown.
- ``MailDetailATP``, ``MailDetailSpam``, ``MailDetailMalware``: Email Activity 4009,
  activity 3 Scan (the filter looked at the message), ``message_trace_uid`` and ``email`` as
  message trace, ``direction_id`` from ``Direction``, disposition / action from ``Action``,
  ``src_endpoint.ip`` = ``SenderIP``. ATP and malware rows are detections: ``is_alert``.
  ATP's ``MalwareName`` becomes ``malware[{name, classification_ids}]`` when its type
  (Microsoft's ``Type:Platform/Family`` naming) has an OCSF classification, and ``FileName``
  ``email.files[{name, type_id 1}]``. MailDetailMalware rows carry no malware name, so no
  ``malware`` object (its ``classification_ids`` and ``name``/``uid`` would be invented).
  ``EventType``, ``VerdictType``, ``BulkComplaintLevel``, ``Domain`` stay in ``unmapped``.
- ``SafelinksDetail``: Email URL Activity 4012, activity 3 Scan (``email_uid`` =
  ``NetworkMessageId``, ``url {url_string, hostname}``), ``time`` = ``ClickTime``,
  disposition / action from ``Action`` (Allowed, Blocked, ClickedEvenBlocked…). The class
  has no addresses: sender, recipient and the rest stay in ``unmapped``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from o365collector.event import Event
from o365collector.normalize.ecs import email_direction
from o365collector.normalize.mapper import Mapper
from o365collector.normalize.ocsf import DIRECTION_IDS, _endpoint
from o365collector.normalize.ocsf_reports_base import (
    EMAIL_ACTIVITY_CLASS_UID,
    EMAIL_URL_ACTIVITY_CLASS_UID,
    Classification,
    copy_text,
    direction_of,
    email_address,
    finish,
    long,
    names,
    put,
    put_action,
    row_time,
    text,
)

_TRACE = Classification(EMAIL_ACTIVITY_CLASS_UID, 4)
_SCAN = Classification(EMAIL_ACTIVITY_CLASS_UID, 3)
_URL_SCAN = Classification(EMAIL_URL_ACTIVITY_CLASS_UID, 3)

# -- message trace detail ---------------------------------------------------------------------

_GRAPH_DETAIL = ("id", "messageId", "recipientAddress", "senderAddress", "dateTime")
_RWS_DETAIL = ("MessageTraceId", "MessageId", "RecipientAddress", "SenderAddress", "Date")
_GRAPH_STEP = ("event", "description", "action")
_RWS_STEP = ("Event", "Detail", "Action")
_DETAIL_MAPPED = {
    False: names(_GRAPH_DETAIL, _GRAPH_STEP),
    True: names(_RWS_DETAIL, _RWS_STEP),
}
_STEP_STATUS = {
    "deliver": (1, "Success"),
    "send external": (1, "Success"),
    "fail": (2, "Failure"),
}
_UNKNOWN_STATUS = (0, "Unknown")


def message_trace_detail(
    event: Event, local_domains: Sequence[str], include_original: bool
) -> dict[str, Any]:
    """One processing step of a message and recipient: Email Activity, Trace."""
    record = event.record
    rws = "MessageTraceId" in record or "Date" in record
    trace_key, message_key, recipient_key, sender_key, time_key = (
        _RWS_DETAIL if rws else _GRAPH_DETAIL
    )
    step_key, description_key, action_key = _RWS_STEP if rws else _GRAPH_STEP
    unmapped: dict[str, Any] = {}
    doc = _TRACE.start()
    row_time(doc, record, time_key, unmapped)
    step = text(record.get(step_key))
    doc["status_id"], doc["status"] = (
        _UNKNOWN_STATUS if step is None else _STEP_STATUS.get(step.lower(), _UNKNOWN_STATUS)
    )
    put(doc, "status_detail", step)
    copy_text(doc, "message", record, description_key)
    put_action(doc, record.get(action_key))
    sender = email_address(record, sender_key, unmapped)
    recipient = email_address(record, recipient_key, unmapped)
    direction = email_direction(sender, recipient, local_domains) if sender and recipient else None
    doc["direction_id"], doc["direction"] = DIRECTION_IDS[direction]
    doc["protocol_name"] = "SMTP"
    copy_text(doc, "message_trace_uid", record, trace_key)
    email: dict[str, Any] = {}
    put(email, "from", sender)
    put(email, "to", [recipient] if recipient else None)
    copy_text(email, "message_uid", record, message_key)
    doc["email"] = email
    put(doc, "from", sender)
    put(doc, "to", [recipient] if recipient else None)
    return finish(
        doc,
        event,
        "MessageTraceDetail",
        _DETAIL_MAPPED[rws],
        unmapped,
        include_original,
        record.get(time_key),
    )


# -- MailDetailATP / MailDetailSpam / MailDetailMalware -----------------------------------------

_MAIL_MAPPED = names(
    "Date", "MessageId", "MessageTraceId", "Subject", "MessageSize", "Direction",
    "SenderAddress", "RecipientAddress", "Action", "SenderIP", "FileName", "MalwareName",
)  # fmt: skip
# Microsoft's threat types (the part before ``:`` in ``Trojan:W97M/Emotet.PV``) → the
# malware object's classification_ids (1.8.0 enum).
MALWARE_CLASSES: dict[str, tuple[int, str]] = {
    "adware": (1, "Adware"),
    "backdoor": (2, "Backdoor"),
    "ddos": (5, "DDOS"),
    "trojandownloader": (6, "Downloader"),
    "trojandropper": (7, "Dropper"),
    "ransom": (10, "Ransomware"),
    "rogue": (14, "Rogue-Security-Software"),
    "pws": (17, "Spyware"),
    "spyware": (17, "Spyware"),
    "trojanspy": (17, "Spyware"),
    "trojan": (18, "Trojan"),
    "virus": (19, "Virus"),
    "worm": (22, "Worm"),
}


def _mail_detail(report: str, *, alert: bool) -> Mapper:
    def mapper(
        event: Event, local_domains: Sequence[str], include_original: bool
    ) -> dict[str, Any]:
        del local_domains  # the row says its direction
        record = event.record
        unmapped: dict[str, Any] = {}
        doc = _SCAN.start()
        row_time(doc, record, "Date", unmapped)
        put_action(doc, record.get("Action"))
        if alert:
            doc["is_alert"] = True
        doc["direction_id"], doc["direction"] = direction_of(record.get("Direction"))
        doc["protocol_name"] = "SMTP"
        copy_text(doc, "message_trace_uid", record, "MessageTraceId")
        sender = email_address(record, "SenderAddress", unmapped)
        recipient = email_address(record, "RecipientAddress", unmapped)
        email: dict[str, Any] = {}
        put(email, "from", sender)
        put(email, "to", [recipient] if recipient else None)
        copy_text(email, "message_uid", record, "MessageId")
        copy_text(email, "subject", record, "Subject")
        raw_size = record.get("MessageSize")
        size = long(raw_size)
        if size is None:
            put(unmapped, "MessageSize", raw_size)
        else:
            email["size"] = size
        file_name = text(record.get("FileName"))
        if file_name is not None:
            email["files"] = [{"name": file_name, "type_id": 1, "type": "Regular File"}]
        doc["email"] = email
        put(doc, "from", sender)
        put(doc, "to", [recipient] if recipient else None)
        put(doc, "src_endpoint", _endpoint(record, "SenderIP", unmapped))
        malware_name = text(record.get("MalwareName"))
        if malware_name is not None:
            kind = MALWARE_CLASSES.get(malware_name.partition(":")[0].lower())
            if kind is None:
                unmapped["MalwareName"] = malware_name
            else:
                doc["malware"] = [
                    {
                        "name": malware_name,
                        "classification_ids": [kind[0]],
                        "classifications": [kind[1]],
                    }
                ]
        return finish(
            doc, event, report, _MAIL_MAPPED, unmapped, include_original, record.get("Date")
        )

    mapper.__name__ = mapper.__qualname__ = f"ocsf_{report}"
    return mapper


# -- SafelinksDetail ---------------------------------------------------------------------------

_SAFELINKS_MAPPED = names("ClickTime", "NetworkMessageId", "Url", "UrlDomain", "Action")


def safelinks_detail(
    event: Event, local_domains: Sequence[str], include_original: bool
) -> dict[str, Any]:
    """One Safe Links click: Email URL Activity, Scan."""
    del local_domains
    record = event.record
    unmapped: dict[str, Any] = {}
    doc = _URL_SCAN.start()
    row_time(doc, record, "ClickTime", unmapped)
    put_action(doc, record.get("Action"))
    copy_text(doc, "email_uid", record, "NetworkMessageId")
    url: dict[str, Any] = {}
    copy_text(url, "url_string", record, "Url")
    copy_text(url, "hostname", record, "UrlDomain")
    put(doc, "url", url)
    return finish(
        doc,
        event,
        "SafelinksDetail",
        _SAFELINKS_MAPPED,
        unmapped,
        include_original,
        record.get("ClickTime"),
    )


MAPPERS: dict[str, Mapper] = {
    "message_trace_detail": message_trace_detail,
    "MessageTraceDetail": message_trace_detail,
    "MailDetailATP": _mail_detail("MailDetailATP", alert=True),
    "MailDetailSpam": _mail_detail("MailDetailSpam", alert=False),
    "MailDetailMalware": _mail_detail("MailDetailMalware", alert=True),
    "SafelinksDetail": safelinks_detail,
}
