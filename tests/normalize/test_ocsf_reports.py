"""The Exchange reports → OCSF 1.8.0: every served row validates, key fields per report.

The rows are the emulator's, read over HTTP by the collector's own sources (``ReportSource``
for each report, ``DetailSource`` for message trace detail from Graph and from RWS), so
they have the shape the collector receives: RWS verbose JSON (``/Date(ms)/`` dates, the
per-row ``__metadata``, the ``StartDate`` / ``EndDate`` echo), Graph camelCase detail steps
with the ``recipientAddress`` the source adds. Each event is checked with the validator of
``support.ocsf_schema`` against the class its ``class_uid`` names.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import orjson
import pytest

from o365collector.dates import parse_date
from o365collector.event import Event
from o365collector.normalize import ocsf_reports
from o365collector.normalize.normalizer import Normalizer, mapper_for
from o365collector.normalize.ocsf_reports_mail import MALWARE_CLASSES
from o365collector.streams.catalog import CATALOG, MESSAGE_TRACE_DETAIL, RWS_PREFIX
from o365emulator.reporting_registry import REPORTS
from support.emulator_rows import (
    GRAPH_DETAIL,
    GRAPH_MESSAGE_TRACE,
    LISTED,
    RWS_DETAIL,
    RWS_MESSAGE_TRACE,
    TENANT,
    served_events,
)
from support.ocsf_schema import SCHEMA_DIR, _load, schema_or_skip, validate

LOCAL = {TENANT: ("contoso.com",)}
MESSAGE_TRACE = {GRAPH_MESSAGE_TRACE, RWS_MESSAGE_TRACE}


@pytest.fixture(scope="module")
def served() -> dict[str, list[Event]]:
    """Stream (detail: per shape) → the emulator's events of two days."""
    return served_events()


def _normalizer() -> Normalizer:
    return Normalizer("ocsf", local_domains=LOCAL, include_original=True)


def _ms(value: object) -> int:
    moment = parse_date(value)
    assert moment is not None, value
    return int(moment.timestamp() * 1000)


# --- every stream has its mapper, every served row validates -------------------------------


def test_every_catalog_report_and_detail_has_a_specific_mapper() -> None:
    assert set(REPORTS) <= set(CATALOG)
    streams = [spec.stream for spec in CATALOG.values() if spec.name != "MessageTrace"]
    for stream in [*streams, MESSAGE_TRACE_DETAIL]:
        assert mapper_for("ocsf", stream) is not ocsf_reports.generic, stream


# Record keys each report maps to an attribute; every other non-empty key (but the OData
# ``__metadata``) must be in ``unmapped``.
MAPPED: dict[str, set[str]] = {
    "MailTraffic": {"Date", "EventType", "MessageCount", "Action"},
    "MailTrafficATP": {"Date", "EventType", "MessageCount", "Action"},
    "MailTrafficPolicy": {
        *("Date", "EventType", "MessageCount", "Action", "DlpPolicy", "TransportRule"),
    },
    "MailTrafficTop": {"Date", "EventType", "MessageCount", "Action", "Name", "Direction"},
    "MailTrafficSummary": {"Category", "C1", "C2"},
    "SpoofMailReport": {
        *("Date", "Count", "SpoofedUser", "Direction", "SendingInfrastructure"),
        *("SPF", "DKIM", "DMARC", "Result"),
    },
    "MailDetailATP": {
        *("Date", "MessageId", "MessageTraceId", "Subject", "MessageSize", "Direction"),
        *("SenderAddress", "RecipientAddress", "Action", "FileName", "MalwareName"),
    },
    "MailDetailSpam": {
        *("Date", "MessageId", "MessageTraceId", "Subject", "MessageSize", "Direction"),
        *("SenderAddress", "RecipientAddress", "Action", "SenderIP"),
    },
    "DlpDetailReport": {
        *("Date", "Title", "Severity", "Actor", "DLPPolicy", "SensitiveInformationType"),
        *("SensitiveInformationCount", "SensitiveInformationConfidence", "EventType", "Action"),
    },
    "DlpDetectionsReport": {
        *("Date", "DlpPolicy", "SensitiveInformationType", "EventType", "Action"),
        "MessageCount",
    },
    "SafelinksDetail": {"ClickTime", "NetworkMessageId", "Url", "UrlDomain", "Action"},
    RWS_DETAIL: {
        *("MessageTraceId", "MessageId", "RecipientAddress", "SenderAddress", "Date"),
        *("Event", "Detail", "Action"),
    },
    GRAPH_DETAIL: {"id", "messageId", "recipientAddress", "dateTime", "event", "description"},
}
MAPPED["MailDetailMalware"] = MAPPED["MailDetailSpam"]
QUERY_METADATA = {"StartDate", "EndDate"}


def _label(key: str) -> str:
    return key.removeprefix(RWS_PREFIX)


def test_every_served_row_of_every_stream_validates_and_keeps_its_leftovers(
    served: dict[str, list[Event]],
) -> None:
    schema_or_skip()
    assert set(served) == {RWS_PREFIX + name for name in LISTED} | {
        GRAPH_DETAIL,
        RWS_DETAIL,
        GRAPH_MESSAGE_TRACE,
        RWS_MESSAGE_TRACE,
    }
    normalizer = _normalizer()
    classes: dict[str, set[tuple[int, int]]] = {}
    for key, events in served.items():
        label = _label(key)
        assert events, f"the emulator served no {label} rows"
        if key in MESSAGE_TRACE:  # its fields: test_ocsf_message_trace.py
            assert all(validate(normalizer.document(e)) == [] for e in events), label
            continue
        for event in events:
            doc = normalizer.document(event)
            assert validate(doc) == [], (label, event.record)
            classes.setdefault(label, set()).add((doc["class_uid"], doc["activity_id"]))
            record = event.record
            assert orjson.loads(doc["raw_data"]) == record
            assert doc["metadata"]["uid"] == event.event_id
            assert doc["metadata"]["tenant_uid"] == TENANT
            assert doc["metadata"]["log_name"] == event.stream
            assert doc["metadata"]["product"]["feature"]["name"] in {label, "MessageTraceDetail"}
            present = {k for k, v in record.items() if v not in (None, "") and k != "__metadata"}
            unmapped = doc.get("unmapped", {})
            assert present - MAPPED[label] <= set(unmapped), label
            assert QUERY_METADATA & present <= set(unmapped), label
            for name in set(unmapped) & present:
                assert unmapped[name] == record[name]
    assert classes == {
        "MailTraffic": {(0, 99)},
        "MailTrafficATP": {(0, 99)},
        "MailTrafficPolicy": {(0, 99)},
        "MailTrafficTop": {(4009, 99)},
        "MailTrafficSummary": {(4009, 99)},
        "SpoofMailReport": {(4009, 3)},
        "MailDetailATP": {(4009, 3)},
        "MailDetailSpam": {(4009, 3)},
        "MailDetailMalware": {(4009, 3)},
        "DlpDetailReport": {(2006, 1)},
        "DlpDetectionsReport": {(2006, 1)},
        "SafelinksDetail": {(4012, 3)},
        RWS_DETAIL: {(4009, 4)},
        GRAPH_DETAIL: {(4009, 4)},
    }


TIME_FIELDS = {GRAPH_DETAIL: "dateTime", RWS_DETAIL: "Date"}


def test_time_is_the_rows_time_and_buckets_span_their_length(
    served: dict[str, list[Event]],
) -> None:
    normalizer = _normalizer()
    for key, events in served.items():
        if key in MESSAGE_TRACE:  # the receive time: test_ocsf_message_trace.py
            continue
        label = _label(key)
        spec = CATALOG.get(label)
        for event in events:
            doc = normalizer.document(event)
            record = event.record
            field = TIME_FIELDS.get(key) or (spec.time_field if spec else "")
            assert doc["time"] == _ms(record[field]), (label, record)
            assert doc["metadata"]["original_time"] == record[field]
            if spec is not None and spec.aggregated:
                assert doc["start_time"] == doc["time"]
                length = (
                    _ms(record["EndDate"]) - _ms(record["StartDate"])
                    if label == "MailTrafficSummary"
                    else int((spec.bucket_secs or 0) * 1000)
                )
                assert doc["end_time"] - doc["start_time"] == length > 0
                assert isinstance(doc["count"], int) and doc["count"] >= 1
            else:
                assert "start_time" not in doc and "count" not in doc


def test_graph_and_rws_detail_steps_agree(served: dict[str, list[Event]]) -> None:
    normalizer = _normalizer()

    def core(doc: dict[str, Any]) -> tuple[Any, ...]:
        return (
            doc["message_trace_uid"],
            doc["email"]["to"],
            doc["email"]["message_uid"],
            doc["time"],
            doc["status_detail"],
            doc["status_id"],
            doc["message"],
        )

    graph = sorted(core(normalizer.document(e)) for e in served[GRAPH_DETAIL])
    rws = [normalizer.document(e) for e in served[RWS_DETAIL]]
    assert graph == sorted(core(doc) for doc in rws)
    assert {doc["status_detail"] for doc in rws} >= {"Receive", "Deliver", "Fail"}
    assert all("from" in doc["email"] and doc["direction_id"] != 0 for doc in rws)
    assert all(
        normalizer.document(e)["direction_id"] == 0 for e in served[GRAPH_DETAIL]
    )  # Graph steps name no sender


# --- the validator refuses broken events of every class used ------------------------------

Mutation = Callable[[dict[str, Any]], Any]


def _doc(report: str, record: dict[str, Any], *, event_id: str = "e-1") -> dict[str, Any]:
    stream = report if report == MESSAGE_TRACE_DETAIL else RWS_PREFIX + report
    return _normalizer().document(Event(TENANT, stream, event_id, record))


D = "/Date(1768737600000)/"  # 2026-01-18T12:00:00Z
D_MS = 1768737600000
META = {"__metadata": {"type": "TenantReporting.X"}}
WINDOW_ECHO = {"StartDate": "/Date(1768694400000)/", "EndDate": "/Date(1768867200000)/"}
MAIL = {
    "Date": D,
    "MessageId": "<m-1@fabrikam.com>",
    "MessageTraceId": "ea54784e-276e-468b-bd65-d8389c604d35",
    "Domain": "contoso.com",
    "Subject": "Invoice",
    "MessageSize": 64736,
    "Direction": "Inbound",
    "SenderAddress": "hr@fabrikam.com",
    "RecipientAddress": "lidia@contoso.com",
}
ROWS: dict[str, dict[str, Any]] = {
    "MailTraffic": {
        **META,
        "Date": D,
        "Direction": "Inbound",
        "Domain": "contoso.com",
        "EventType": "GoodMail",
        "Action": None,
        "AggregateBy": None,
        "MessageCount": 7,
        **WINDOW_ECHO,
    },
    "MailTrafficATP": {
        "Date": D,
        "Direction": "Inbound",
        "Domain": "contoso.com",
        "EventType": "Malware",
        "VerdictSource": "Anti-malware engine",
        "Action": None,
        "MessageCount": 9,
        **WINDOW_ECHO,
    },
    "MailTrafficPolicy": {
        "Date": D,
        "Direction": "Outbound",
        "Domain": "contoso.com",
        "EventType": "TransportRuleHits",
        "DlpPolicy": None,
        "TransportRule": "Block executable attachments",
        "Action": "RejectMessage",
        "MessageCount": 2,
    },
    "MailTrafficTop": {
        "Date": D,
        "Direction": "Outbound",
        "Domain": "contoso.com",
        "EventType": "TopMailSender",
        "Name": "lee@contoso.com",
        "MessageCount": 16,
        "AggregateBy": None,
    },
    "MailTrafficSummary": {
        **META,
        "Category": "TopMailRecipient",
        "C1": "lee@contoso.com",
        "C2": "14",
        **{f"C{i}": None for i in range(3, 21)},
        "DlpPolicy": None,
        "Domain": "contoso.com",
        "StartDate": D,
        "EndDate": "/Date(1768824000000)/",
    },
    "SpoofMailReport": {
        "Date": D,
        "SpoofedUser": "adele@northwind.com",
        "TrueSender": "northwind.com",
        "SendingInfrastructure": "mail2.northwind.com",
        "SpoofType": "External",
        "Source": "SPOOF",
        "Result": "fail",
        "ResultCode": "000",
        "EventType": "SpoofMail",
        "Direction": "Inbound",
        "Domain": "contoso.com",
        "SPF": "fail",
        "DKIM": "none",
        "DMARC": "bestguesspass",
        "Count": 4,
    },
    "MailDetailATP": {
        **MAIL,
        "EventType": "Malware",
        "BulkComplaintLevel": 0,
        "VerdictType": "Malware",
        "Action": "Quarantine",
        "FileName": "invoice_070.docm",
        "MalwareName": "Trojan:W97M/Emotet.PV",
        **WINDOW_ECHO,
    },
    "MailDetailSpam": {**MAIL, "EventType": "SpamIPBlock", "Action": "MoveToJmf"},
    "MailDetailMalware": {
        **MAIL,
        "EventType": "Malware",
        "Action": "DeleteMessage",
        "SenderIP": "198.51.245.62",
    },
    "DlpDetailReport": {
        "Date": D,
        "Title": "Q3 figures",
        "Location": "Exchange",
        "Severity": "High",
        "Size": 10798540,
        "Source": "EXCHANGE",
        "Actor": "xavier@contoso.com",
        "DLPPolicy": "GDPR Enhanced",
        "UserAction": "None",
        "Justification": None,
        "SensitiveInformationType": "Credit Card Number",
        "SensitiveInformationCount": 5,
        "SensitiveInformationConfidence": 85,
        "EventType": "DLPRuleMatch",
        "Action": "BlockAccess",
        "ObjectId": "<o-1@contoso.com>",
        "Recipients": "pradeep@proseware.com",
    },
    "DlpDetectionsReport": {
        "Date": D,
        "DlpPolicy": "PCI DSS",
        "SensitiveInformationType": "IBAN",
        "Source": "EXCHANGE",
        "EventType": "DLPPolicyHits",
        "Action": "NotifyUser",
        "MessageCount": 3,
    },
    "SafelinksDetail": {
        "ClickTime": D,
        "NetworkMessageId": "cdb9bf23-22a7-440a-8333-07fbff452a96",
        "ClientMessageId": "<c-1@tailspintoys.com>",
        "SenderAddress": "news@tailspintoys.com",
        "RecipientAddress": "amara@contoso.com",
        "Url": "https://www.tailspintoys.com/l/b9bf23",
        "UrlDomain": "www.tailspintoys.com",
        "Action": "Blocked",
        "AppName": "Teams",
        "SourceId": "0",
        "Organization": "contoso.com",
        "DetectedBy": "Safe Links in Outlook",
        "UrlType": None,
        "Flags": 1,
    },
    MESSAGE_TRACE_DETAIL: {
        **META,
        "Organization": "contoso.com",
        "MessageId": "<m-1@fabrikam.com>",
        "MessageTraceId": "ea54784e-276e-468b-bd65-d8389c604d35",
        "RecipientAddress": "lidia@contoso.com",
        "SenderAddress": "hr@fabrikam.com",
        "Date": D,
        "Event": "Fail",
        "Action": "RejectMessage",
        "Detail": "Reason: [{LED=550 5.1.10 RESOLVER.ADR.RecipientNotFound}]",
        "Data": "<root><MEP Name='Fail' /></root>",
        **WINDOW_ECHO,
        "Index": 0,
    },
}
GRAPH_STEP = {
    "id": "ea54784e-276e-468b-bd65-d8389c604d35",
    "messageId": "<m-1@fabrikam.com>",
    "dateTime": "2026-01-18T12:00:00Z",
    "event": "Fail",
    "action": "",
    "description": "Reason: [{LED=550 5.1.10 RESOLVER.ADR.RecipientNotFound}]",
    "data": "<root><MEP Name='Fail' /></root>",
    "recipientAddress": "lidia@contoso.com",
}


def test_every_report_row_here_validates() -> None:
    for report, row in ROWS.items():
        assert validate(_doc(report, row)) == [], report


BROKEN_CASES: list[tuple[str, str, Mutation, str]] = [
    # Base Event (0)
    ("MailTraffic", "no time", lambda d: d.pop("time"), "time: required attribute missing"),
    ("MailTraffic", "type_uid", lambda d: d.update(type_uid=9), "type_uid=9, expected 99"),
    (
        "MailTraffic",
        "category name",
        lambda d: d.update(category_name="Other"),
        "category_name='Other', expected 'Uncategorized'",
    ),
    ("MailTraffic", "count as text", lambda d: d.update(count="7"), "is not integer_t"),
    ("MailTraffic", "email here", lambda d: d.update(direction_id=1), "not an attribute here"),
    ("MailTraffic", "disposition 28", lambda d: d.update(disposition_id=28), "not in enum"),
    ("MailTrafficPolicy", "empty policy", lambda d: d.update(policy={"desc": "x"}), "at least"),
    # Email Activity (4009)
    ("MailDetailATP", "no email", lambda d: d.pop("email"), "email: required attribute"),
    ("MailDetailATP", "activity 6", lambda d: d.update(activity_id=6), "activity_id=6 not in"),
    ("MailDetailATP", "type_uid", lambda d: d.update(type_uid=400904), "type_uid=400904"),
    (
        "MailDetailATP",
        "malware class 12",
        lambda d: d["malware"][0].update(classification_ids=[12]),
        "classification_ids[0]=12 not in enum",
    ),
    (
        "MailDetailATP",
        "malware unclassified",
        lambda d: d["malware"][0].pop("classification_ids"),
        "required attribute missing",
    ),
    ("MailDetailATP", "alert as text", lambda d: d.update(is_alert="true"), "is not boolean_t"),
    (
        "MailDetailATP",
        "no profile",
        lambda d: d["metadata"].pop("profiles"),
        "disposition_id: not an attribute here",
    ),
    ("SpoofMailReport", "auth list", lambda d: d.update(email_auth=["x"]), "must not be an array"),
    ("SpoofMailReport", "bad from", lambda d: d["email"].update({"from": "x"}), "email_t"),
    # Email URL Activity (4012)
    ("SafelinksDetail", "no email_uid", lambda d: d.pop("email_uid"), "email_uid: required"),
    ("SafelinksDetail", "no url", lambda d: d.pop("url"), "url: required attribute missing"),
    ("SafelinksDetail", "activity 4", lambda d: d.update(activity_id=4), "activity_id=4 not in"),
    ("SafelinksDetail", "url only host", lambda d: d["url"].pop("url_string"), "at least one"),
    ("SafelinksDetail", "caption", lambda d: d.update(disposition="Allowed"), "caption is"),
    ("SafelinksDetail", "action_id 5", lambda d: d.update(action_id=5), "action_id=5 not in"),
    ("SafelinksDetail", "bad url", lambda d: d["url"].update(url_string=7), "is not url_t"),
    # Data Security Finding (2006)
    ("DlpDetailReport", "time as text", lambda d: d.update(time="2026"), "not timestamp_t"),
    ("DlpDetailReport", "no finding", lambda d: d.pop("finding_info"), "finding_info: required"),
    ("DlpDetailReport", "no uid", lambda d: d["finding_info"].pop("uid"), "uid: required"),
    ("DlpDetailReport", "severity 7", lambda d: d.update(severity_id=7), "severity_id=7 not in"),
    ("DlpDetailReport", "confidence 4", lambda d: d.update(confidence_id=4), "not in enum"),
    (
        "DlpDetailReport",
        "data_security bare",
        lambda d: d.update(data_security={"total": 1}),
        "needs at least one",
    ),
    (
        "DlpDetailReport",
        "detection system 13",
        lambda d: d["data_security"].update(detection_system_id=13),
        "not in enum",
    ),
    ("DlpDetailReport", "class 2007", lambda d: d.update(class_uid=2007), "class_name="),
    ("DlpDetailReport", "no such class", lambda d: d.update(class_uid=7777), "no class"),
    ("DlpDetailReport", "version", lambda d: d["metadata"].update(version="1.7.0"), "version"),
]


@pytest.mark.parametrize(
    ("report", "label", "mutate", "expected"),
    BROKEN_CASES,
    ids=[f"{report}-{label}" for report, label, _, _ in BROKEN_CASES],
)
def test_the_validator_refuses_broken_events_of_each_class(
    report: str, label: str, mutate: Mutation, expected: str
) -> None:
    doc = _doc(report, ROWS[report])
    assert validate(doc) == [], report
    mutate(doc)
    errors = validate(doc)
    assert any(expected in error for error in errors), (label, errors)


def test_the_validator_knows_the_classes_from_the_schema_tree() -> None:
    root = schema_or_skip()
    assert root == SCHEMA_DIR
    finding = _load(root / "events" / "findings" / "data_security_finding.json")
    assert finding["extends"] == "finding" and finding["uid"] == 6
    url = _load(root / "events" / "network" / "email_url_activity.json")
    assert url["uid"] == 12 and "email_uid" in url["attributes"]


# --- key fields per report ----------------------------------------------------------------


def test_mail_traffic_is_a_base_event_count_over_an_hour() -> None:
    doc = _doc("MailTraffic", {**ROWS["MailTraffic"], "Action": "Quarantine"})
    assert (doc["class_uid"], doc["category_uid"], doc["activity_id"]) == (0, 0, 99)
    assert (doc["class_name"], doc["category_name"]) == ("Base Event", "Uncategorized")
    assert (doc["type_uid"], doc["activity_name"]) == (99, "GoodMail")
    assert doc["count"] == 7
    assert (doc["time"], doc["start_time"], doc["end_time"]) == (D_MS, D_MS, D_MS + 3_600_000)
    assert (doc["disposition_id"], doc["disposition"], doc["action_id"]) == (3, "Quarantined", 2)
    assert doc["unmapped"] == {"Direction": "Inbound", "Domain": "contoso.com", **WINDOW_ECHO}
    assert "__metadata" not in doc["unmapped"]
    assert doc["metadata"]["product"] == {
        "name": "Exchange Online",
        "vendor_name": "Microsoft",
        "feature": {"name": "MailTraffic"},
    }
    assert doc["metadata"]["profiles"] == ["security_control"]
    assert doc["metadata"]["log_provider"] == "o365collector"
    null_action = _doc("MailTraffic", ROWS["MailTraffic"])
    assert (null_action["disposition_id"], null_action["action_id"]) == (0, 0)
    daily = _doc("MailTraffic", {**ROWS["MailTraffic"], "AggregateBy": "Day"})
    assert daily["end_time"] - daily["start_time"] == 86_400_000


def test_mail_traffic_atp_is_daily_and_keeps_its_verdict_source() -> None:
    doc = _doc("MailTrafficATP", ROWS["MailTrafficATP"])
    assert (doc["class_uid"], doc["activity_name"], doc["count"]) == (0, "Malware", 9)
    assert doc["end_time"] - doc["start_time"] == 86_400_000
    assert doc["unmapped"]["VerdictSource"] == "Anti-malware engine"


def test_mail_traffic_policy_names_the_rule() -> None:
    doc = _doc("MailTrafficPolicy", ROWS["MailTrafficPolicy"])
    assert doc["policy"] == {"name": "Block executable attachments", "type": "Transport Rule"}
    assert (doc["disposition_id"], doc["action_id"]) == (25, 2)
    dlp = _doc(
        "MailTrafficPolicy",
        {**ROWS["MailTrafficPolicy"], "DlpPolicy": "PCI DSS", "TransportRule": None},
    )
    assert dlp["policy"] == {"name": "PCI DSS", "type": "DLP Policy"}


def test_mail_traffic_top_puts_the_name_on_its_side() -> None:
    sender = _doc("MailTrafficTop", ROWS["MailTrafficTop"])
    assert (sender["class_uid"], sender["activity_id"], sender["type_uid"]) == (4009, 99, 400999)
    assert sender["activity_name"] == "TopMailSender"
    assert sender["email"] == {"from": "lee@contoso.com"} and sender["from"] == "lee@contoso.com"
    assert (sender["direction_id"], sender["count"]) == (2, 16)
    recipient = _doc("MailTrafficTop", {**ROWS["MailTrafficTop"], "EventType": "TopMailRecipient"})
    assert recipient["email"] == {"to": ["lee@contoso.com"]}
    odd = _doc("MailTrafficTop", {**ROWS["MailTrafficTop"], "Name": "Lee Holt"})
    assert odd["class_uid"] == 0 and odd["unmapped"]["Name"] == "Lee Holt"
    assert odd["unmapped"]["Direction"] == "Outbound"
    assert validate(odd) == []


def test_mail_traffic_summary_reads_top_categories_and_keeps_others() -> None:
    doc = _doc("MailTrafficSummary", ROWS["MailTrafficSummary"])
    assert (doc["class_uid"], doc["activity_name"], doc["count"]) == (4009, "TopMailRecipient", 14)
    assert doc["email"] == {"to": ["lee@contoso.com"]}
    assert (doc["start_time"], doc["end_time"]) == (D_MS, D_MS + 86_400_000)
    assert doc["unmapped"]["StartDate"] == D
    other = _doc(
        "MailTrafficSummary",
        {**ROWS["MailTrafficSummary"], "Category": "TopMalware", "C1": "Emotet", "C2": "3"},
    )
    assert (other["class_uid"], other["activity_name"]) == (0, "TopMalware")
    assert (other["unmapped"]["C1"], other["unmapped"]["C2"]) == ("Emotet", "3")
    assert validate(other) == []


def test_spoof_mail_has_email_auth_and_a_verdict() -> None:
    doc = _doc("SpoofMailReport", ROWS["SpoofMailReport"])
    assert (doc["class_uid"], doc["activity_id"], doc["activity_name"]) == (4009, 3, "Scan")
    assert doc["email_auth"] == {"spf": "fail", "dkim": "none", "dmarc": "bestguesspass"}
    assert doc["email"] == {"from": "adele@northwind.com"}
    assert doc["src_endpoint"] == {"domain": "mail2.northwind.com"}
    assert (doc["count"], doc["direction_id"]) == (4, 1)
    assert (doc["disposition_id"], doc["action_id"]) == (15, 3)
    assert doc["unmapped"]["EventType"] == "SpoofMail"
    assert doc["unmapped"]["TrueSender"] == "northwind.com"
    passed = _doc("SpoofMailReport", {**ROWS["SpoofMailReport"], "Result": "Pass"})
    assert (passed["disposition_id"], passed["action_id"]) == (1, 1)
    odd = _doc("SpoofMailReport", {**ROWS["SpoofMailReport"], "Result": "maybe"})
    assert (odd["disposition_id"], odd["unmapped"]["Result"]) == (0, "maybe")
    domain = _doc("SpoofMailReport", {**ROWS["SpoofMailReport"], "SpoofedUser": "northwind.com"})
    assert (domain["class_uid"], domain["unmapped"]["SpoofedUser"]) == (0, "northwind.com")
    assert domain["unmapped"]["SPF"] == "fail"
    assert validate(domain) == [] and validate(odd) == []


def test_mail_detail_atp_is_a_scan_alert_with_malware_and_file() -> None:
    doc = _doc("MailDetailATP", ROWS["MailDetailATP"])
    assert (doc["class_uid"], doc["activity_id"], doc["is_alert"]) == (4009, 3, True)
    assert doc["message_trace_uid"] == MAIL["MessageTraceId"]
    assert doc["malware"] == [
        {
            "name": "Trojan:W97M/Emotet.PV",
            "classification_ids": [18],
            "classifications": ["Trojan"],
        }
    ]
    assert doc["email"] == {
        "from": "hr@fabrikam.com",
        "to": ["lidia@contoso.com"],
        "message_uid": "<m-1@fabrikam.com>",
        "subject": "Invoice",
        "size": 64736,
        "files": [{"name": "invoice_070.docm", "type_id": 1, "type": "Regular File"}],
    }
    assert (doc["direction_id"], doc["direction"]) == (1, "Inbound")
    assert (doc["disposition_id"], doc["disposition"]) == (3, "Quarantined")
    assert (doc["action_id"], doc["action"]) == (2, "Denied")
    assert doc["time"] == D_MS
    assert {"EventType", "VerdictType", "BulkComplaintLevel", "Domain"} <= set(doc["unmapped"])
    unknown = _doc("MailDetailATP", {**ROWS["MailDetailATP"], "MalwareName": "Oddity:X/Y"})
    assert "malware" not in unknown and unknown["unmapped"]["MalwareName"] == "Oddity:X/Y"
    phish = _doc("MailDetailATP", {**ROWS["MailDetailATP"], "Direction": "IntraOrg"})
    assert (phish["direction_id"], phish["direction"]) == (3, "Internal")


def test_malware_classes_are_in_the_schema_enum() -> None:
    root = schema_or_skip()
    enum = _load(root / "objects" / "malware.json")["attributes"]["classification_ids"]["enum"]
    for uid, caption in MALWARE_CLASSES.values():
        assert enum[str(uid)]["caption"] == caption


def test_mail_detail_malware_and_spam_dispositions() -> None:
    malware = _doc("MailDetailMalware", ROWS["MailDetailMalware"])
    assert (malware["disposition_id"], malware["disposition"]) == (5, "Deleted")
    assert (malware["action_id"], malware["is_alert"]) == (2, True)
    assert malware["src_endpoint"] == {"ip": "198.51.245.62"}
    assert "malware" not in malware  # the report names no malware
    spam = _doc("MailDetailSpam", ROWS["MailDetailSpam"])
    assert (spam["disposition_id"], spam["disposition"], spam["action_id"]) == (18, "Tagged", 4)
    assert "is_alert" not in spam
    unknown = _doc("MailDetailSpam", {**ROWS["MailDetailSpam"], "Action": "Teleport"})
    assert (unknown["disposition_id"], unknown["disposition"]) == (99, "Teleport")
    assert (unknown["action_id"], unknown["action"]) == (99, "Teleport")
    assert validate(unknown) == []


def test_dlp_detail_is_a_data_security_finding() -> None:
    doc = _doc("DlpDetailReport", ROWS["DlpDetailReport"], event_id="evt-42")
    assert (doc["class_uid"], doc["category_uid"], doc["activity_id"]) == (2006, 2, 1)
    assert (doc["type_uid"], doc["class_name"]) == (200601, "Data Security Finding")
    assert doc["finding_info"] == {
        "uid": "evt-42",
        "title": "Q3 figures",
        "types": ["DLPRuleMatch"],
    }
    assert doc["data_security"] == {
        "data_lifecycle_state_id": 2,
        "data_lifecycle_state": "Data in-Transit",
        "detection_system_id": 6,
        "detection_system": "Secure Email Gateway",
        "policy": {"name": "GDPR Enhanced"},
        "detection_pattern": "Credit Card Number",
        "total": 5,
    }
    assert (doc["severity_id"], doc["severity"]) == (4, "High")
    assert doc["actor"] == {
        "user": {"uid": "xavier@contoso.com", "email_addr": "xavier@contoso.com"}
    }
    assert (doc["disposition_id"], doc["action_id"], doc["is_alert"]) == (2, 2, True)
    assert (doc["confidence_score"], doc["confidence_id"]) == (85, 3)
    assert {"Recipients", "ObjectId", "Location", "Size", "Source"} <= set(doc["unmapped"])
    low = _doc("DlpDetailReport", {**ROWS["DlpDetailReport"], "Severity": "Spicy"})
    assert (low["severity_id"], low["severity"]) == (99, "Spicy")
    sharepoint = _doc("DlpDetailReport", {**ROWS["DlpDetailReport"], "Location": "SharePoint"})
    assert "detection_system_id" not in sharepoint["data_security"]
    assert validate(low) == [] and validate(sharepoint) == []


def test_dlp_detections_is_a_daily_finding_count() -> None:
    doc = _doc("DlpDetectionsReport", ROWS["DlpDetectionsReport"])
    assert (doc["class_uid"], doc["activity_id"], doc["count"]) == (2006, 1, 3)
    assert (doc["start_time"], doc["end_time"]) == (D_MS, D_MS + 86_400_000)
    assert doc["finding_info"]["title"] == "PCI DSS"
    assert doc["data_security"]["policy"] == {"name": "PCI DSS"}
    assert doc["data_security"]["detection_pattern"] == "IBAN"
    assert (doc["disposition_id"], doc["disposition"], doc["action_id"]) == (19, "Alert", 3)
    cmdlet = {**ROWS["DlpDetectionsReport"]}
    cmdlet["Policy"] = cmdlet.pop("DlpPolicy")
    assert _doc("DlpDetectionsReport", cmdlet)["data_security"]["policy"] == {"name": "PCI DSS"}


def test_safelinks_click_is_an_email_url_scan() -> None:
    doc = _doc("SafelinksDetail", ROWS["SafelinksDetail"])
    assert (doc["class_uid"], doc["activity_id"], doc["type_uid"]) == (4012, 3, 401203)
    assert doc["email_uid"] == "cdb9bf23-22a7-440a-8333-07fbff452a96"
    assert doc["url"] == {
        "url_string": "https://www.tailspintoys.com/l/b9bf23",
        "hostname": "www.tailspintoys.com",
    }
    assert (doc["disposition_id"], doc["action_id"]) == (2, 2)
    assert doc["time"] == D_MS
    assert doc["unmapped"]["RecipientAddress"] == "amara@contoso.com"
    assert doc["unmapped"]["Flags"] == 1
    through = _doc("SafelinksDetail", {**ROWS["SafelinksDetail"], "Action": "ClickedEvenBlocked"})
    assert (through["disposition_id"], through["action_id"]) == (1, 1)


@pytest.mark.parametrize("shape", ["rws", "graph"])
def test_message_trace_detail_is_a_trace_step(shape: str) -> None:
    row = ROWS[MESSAGE_TRACE_DETAIL] if shape == "rws" else GRAPH_STEP
    doc = _doc(MESSAGE_TRACE_DETAIL, row)
    assert (doc["class_uid"], doc["activity_id"], doc["type_uid"]) == (4009, 4, 400904)
    assert doc["message_trace_uid"] == "ea54784e-276e-468b-bd65-d8389c604d35"
    assert doc["email"]["to"] == ["lidia@contoso.com"]
    assert doc["email"]["message_uid"] == "<m-1@fabrikam.com>"
    assert (doc["status_id"], doc["status"], doc["status_detail"]) == (2, "Failure", "Fail")
    assert doc["message"].startswith("Reason:")
    assert doc["time"] == D_MS
    assert doc["metadata"]["product"]["feature"]["name"] == "MessageTraceDetail"
    if shape == "rws":
        assert doc["email"]["from"] == "hr@fabrikam.com"
        assert (doc["direction_id"], doc["direction"]) == (1, "Inbound")
        assert (doc["disposition_id"], doc["action_id"]) == (25, 2)  # RejectMessage
        assert doc["unmapped"] == {
            "Organization": "contoso.com",
            "Data": "<root><MEP Name='Fail' /></root>",
            **WINDOW_ECHO,
            "Index": 0,
        }
    else:
        assert (doc["direction_id"], doc["disposition_id"]) == (0, 0)
        assert doc["unmapped"] == {"data": "<root><MEP Name='Fail' /></root>"}
    assert validate(doc) == []


@pytest.mark.parametrize("report", sorted(set(ROWS) - {"MailTrafficSummary"}))
def test_an_unreadable_time_gives_the_processing_time_and_keeps_the_raw(report: str) -> None:
    key = "ClickTime" if report == "SafelinksDetail" else "Date"
    before = time.time_ns() // 1_000_000
    doc = _doc(report, {**ROWS[report], key: "soon"})
    assert before <= doc["time"] <= time.time_ns() // 1_000_000
    assert doc["unmapped"][key] == "soon"
    assert "start_time" not in doc
    assert validate(doc) == []


def test_include_original_is_raw_data_and_the_record_is_untouched() -> None:
    for report, row in ROWS.items():
        before = orjson.dumps(row)
        stream = report if report == MESSAGE_TRACE_DETAIL else RWS_PREFIX + report
        event = Event(TENANT, stream, "e", row)
        with_raw = Normalizer("ocsf", include_original=True).document(event)
        without = Normalizer("ocsf").document(event)
        assert orjson.loads(with_raw.pop("raw_data")) == row
        assert with_raw == without
        assert orjson.dumps(row) == before


def test_an_unknown_stream_gets_a_valid_generic_event() -> None:
    doc = Normalizer("ocsf").document(Event(TENANT, "rws.SomethingNew", "e", {"A": 1, "B": None}))
    assert (doc["class_uid"], doc["activity_id"], doc["activity_name"]) == (
        0,
        99,
        "rws.SomethingNew",
    )
    assert doc["unmapped"] == {"A": 1}
    assert validate(doc) == []
