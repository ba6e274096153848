"""The Exchange reports → ECS: every emulator row of every stream is ECS 9.4, and each report
maps its key fields (normalization.md §5, the table in ``normalize/ecs_reports.py``).

The emulator serves the rows over HTTP exactly as the collector receives them: JSON light
(naive ``Date`` strings, ``StartDate``/``EndDate`` echoed), verbose JSON (``/Date(ms)/`` and
``__metadata``), RWS ``MessageTraceDetail`` per message, and Graph ``getDetailsByRecipient``
with the ``recipientAddress`` the Graph detail source adds.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any
from urllib.parse import urljoin

import httpx
import orjson
import pytest

from o365collector.event import Event, event_id
from o365collector.normalize import ecs_reports
from o365collector.normalize.normalizer import MESSAGE_TRACE_STREAMS, Normalizer, mapper_for
from o365collector.sources.reporting.detail import detail_key
from o365collector.sources.reporting.records import record_key
from o365collector.streams.catalog import CATALOG, MESSAGE_TRACE_DETAIL, RWS_PREFIX
from o365emulator import Emulator
from o365emulator.reporting_aggregates import SUMMARY_CATEGORIES
from o365emulator.reporting_registry import REPORTS
from support.clock import FakeClock
from support.ecs_fields import ecs_problems, flatten, load_ecs
from support.rws import ANCHOR, RWS_PATH, bearer, emulator_settings

TENANT = "contoso"
LOCAL = {TENANT: ["contoso.com"]}
WINDOW = "StartDate eq datetime'2026-01-18T00:00:00Z' and EndDate eq datetime'2026-01-20T00:00:00Z'"
GRAPH_SCOPE = "https://graph.microsoft.com/.default"
GRAPH_DETAIL = "message_trace_detail (graph)"
RWS_DETAIL = "message_trace_detail (rws)"
VERBOSE = "verbose"
# Details are asked for rows of these statuses (the detail stream's usual selection).
DETAIL_STATUSES = ("Failed", "Quarantined", "FilteredAsSpam", "Delivered", "Pending", "Expanded")
SAMPLES = [*CATALOG, RWS_DETAIL, GRAPH_DETAIL, VERBOSE]

# What each stream's documents must hold (beyond the frame every document has).
KEY_FIELDS: dict[str, set[str]] = {
    "MessageTraceDetail": {"@timestamp", "event.action", "message", "email.local_id"},
    "MailTraffic": {"@timestamp", "event.duration", "event.action", "email.direction"},
    "MailTrafficATP": {"@timestamp", "event.duration", "rule.ruleset"},
    "MailDetailATP": {"email.from.address", "email.to.address", "rule.name", "event.action"},
    "SpoofMailReport": {"email.from.address", "source.domain", "event.duration"},
    "DlpDetailReport": {"rule.name", "user.email", "event.severity", "email.to.address"},
    "DlpDetectionsReport": {"rule.name", "event.duration"},
    "SafelinksDetail": {"url.full", "url.domain", "user.email", "email.local_id"},
    "MailTrafficTop": {"event.duration", "email.to.address", "email.from.address"},
    "MailTrafficSummary": {"@timestamp", "event.action", "email.from.address"},
    "MailDetailSpam": {"source.ip", "email.local_id", "rule.name", "event.action"},
    "MailDetailMalware": {"source.ip", "email.local_id", "event.action"},
    "MailTrafficPolicy": {"rule.name", "event.duration"},
    RWS_DETAIL: {"@timestamp", "event.outcome", "email.to.address", "email.from.address"},
    GRAPH_DETAIL: {"@timestamp", "event.outcome", "email.to.address", "message"},
    VERBOSE: {"@timestamp", "event.duration"},
}


def _light(client: httpx.Client, report: str, flt: str) -> list[dict[str, Any]]:
    """Every row of ``report`` for ``flt``, JSON light, following the next links."""
    headers = {**bearer(client), "Accept": "application/json"}
    url: str = f"{RWS_PATH}/{report}"
    params: dict[str, str] | None = {"$filter": flt, "$top": "500"}
    rows: list[dict[str, Any]] = []
    while True:
        response = client.get(url, params=params, headers=headers)
        assert response.status_code == 200, (report, response.text[:300])
        body = orjson.loads(response.content)
        rows += body["value"]
        link = body.get("odata.nextLink")
        if link is None:
            return rows
        url, params = urljoin(str(response.url), link), None


def _fetch(emu: Emulator) -> dict[str, list[dict[str, Any]]]:
    samples: dict[str, list[dict[str, Any]]] = {}
    with httpx.Client(base_url=emu.base_url, timeout=60) as client:
        for name in CATALOG:
            if name == "MessageTraceDetail":
                continue
            if name == "MailTrafficSummary":
                samples[name] = [
                    row
                    for category in SUMMARY_CATEGORIES
                    for row in _light(client, name, f"{WINDOW} and Category eq '{category}'")
                ]
            else:
                samples[name] = _light(client, name, WINDOW)
        verbose = client.get(
            f"{RWS_PATH}/MailTraffic",
            params={"$filter": WINDOW, "$top": "50", "$format": "json"},
            headers=bearer(client),
        )
        samples[VERBOSE] = orjson.loads(verbose.content)["d"]["results"]
        picked = _picked(samples["MessageTrace"])
        rws_detail: list[dict[str, Any]] = []
        graph_detail: list[dict[str, Any]] = []
        graph_headers = bearer(client, GRAPH_SCOPE)
        for row in picked:
            flt = (
                f"MessageTraceId eq guid'{row['MessageTraceId']}' and RecipientAddress eq "
                f"'{row['RecipientAddress']}' and SenderAddress eq '{row['SenderAddress']}' "
                f"and {WINDOW}"
            )
            rws_detail += _light(client, "MessageTraceDetail", flt)
            response = client.get(
                f"/v1.0/admin/exchange/tracing/messageTraces/{row['MessageTraceId']}"
                f"/getDetailsByRecipient(recipientAddress='{row['RecipientAddress']}')",
                headers=graph_headers,
            )
            assert response.status_code == 200, response.text[:300]
            graph_detail += [
                {**step, "recipientAddress": row["RecipientAddress"]}  # as GraphDetail adds it
                for step in response.json()["value"]
            ]
        samples["MessageTraceDetail"] = rws_detail
        samples[RWS_DETAIL] = rws_detail
        samples[GRAPH_DETAIL] = graph_detail
    return samples


def _picked(traces: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A few trace rows of each status the detail stream selects."""
    picked = []
    for status in DETAIL_STATUSES:
        picked += [row for row in traces if row["Status"] == status][:4]
    return picked


@pytest.fixture(scope="module")
def emulator_rows() -> Iterator[dict[str, list[dict[str, Any]]]]:
    """Rows of every report (and both detail shapes), as served, three days after the anchor."""
    clock = FakeClock(ANCHOR + timedelta(days=3))
    emu = Emulator(emulator_settings(rows=2000), clock=clock.now)
    emu.start()
    try:
        yield _fetch(emu)
    finally:
        emu.stop()


def _stream(sample: str) -> str:
    if sample in (RWS_DETAIL, GRAPH_DETAIL):
        return MESSAGE_TRACE_DETAIL
    if sample == VERBOSE:
        return f"{RWS_PREFIX}MailTraffic"
    return f"{RWS_PREFIX}{sample}"


def _event(stream: str, record: dict[str, Any]) -> Event:
    if stream == MESSAGE_TRACE_DETAIL or stream.endswith("MessageTraceDetail"):
        key = detail_key(record)
    else:
        key = record_key(CATALOG[stream.removeprefix(RWS_PREFIX)], record)
    return Event(TENANT, stream, event_id(TENANT, stream, *key), record)


# (a) every stream has its own mapper -------------------------------------------------------


def test_every_emulated_report_is_in_the_catalog_and_sampled() -> None:
    assert set(REPORTS) == set(CATALOG)
    assert set(KEY_FIELDS) | {"MessageTrace"} == set(SAMPLES)


@pytest.mark.parametrize(
    "stream", [*(spec.stream for spec in CATALOG.values()), MESSAGE_TRACE_DETAIL]
)
def test_every_stream_has_a_specific_mapper(stream: str) -> None:
    mapper = mapper_for("ecs", stream)
    assert mapper is not ecs_reports.generic
    if stream not in MESSAGE_TRACE_STREAMS:
        assert mapper is ecs_reports.MAPPERS[stream.removeprefix(RWS_PREFIX)]


def test_a_stream_no_mapper_knows_still_gets_the_generic_mapper() -> None:
    assert mapper_for("ecs", "rws.SomeFutureReport") is ecs_reports.generic


# (b) every emulator row of every stream is ECS 9.4 -----------------------------------------


@pytest.mark.parametrize("sample", SAMPLES)
def test_every_emulator_row_maps_to_ecs_9_4(
    emulator_rows: dict[str, list[dict[str, Any]]], sample: str
) -> None:
    ecs = load_ecs()
    records = emulator_rows[sample]
    assert records, f"the emulator served no {sample} rows"
    stream = _stream(sample)
    normalizer = Normalizer("ecs", local_domains=LOCAL, include_original=True)
    checked: set[str] = set()
    namespaces: set[str] = set()
    for record in records:
        before = orjson.dumps(record)
        event = _event(stream, record)
        doc = normalizer.document(event)
        assert ecs_problems(doc, ecs, checked) == [], (sample, record)
        assert orjson.dumps(record) == before  # the record is not changed
        assert doc["ecs"] == {"version": "9.4.0"}
        assert doc["event"]["id"] == event.event_id
        assert doc["o365collector"] == {
            "tenant": TENANT,
            "stream": stream,
            "event_id": event.event_id,
        }
        assert orjson.loads(doc["event"]["original"]) == record
        assert all(value not in (None, "", [], {}) for value in flatten(doc).values())
        namespaces.update(doc.get("o365", {}))
        orjson.dumps(doc)  # serialisable as is
    assert KEY_FIELDS.get(sample, {"@timestamp"}) <= checked, sample
    assert len(namespaces) == 1, namespaces


def test_aggregates_are_metrics_with_their_bucket_and_counts_in_the_namespace(
    emulator_rows: dict[str, list[dict[str, Any]]],
) -> None:
    normalizer = Normalizer("ecs", local_domains=LOCAL)
    buckets = {"MailTraffic": 3600, "MailTrafficPolicy": 3600, "MailTrafficATP": 86400}
    buckets |= {"MailTrafficTop": 86400, "DlpDetectionsReport": 86400, "SpoofMailReport": 86400}
    for report, secs in buckets.items():
        for record in emulator_rows[report]:
            doc = normalizer.document(_event(f"{RWS_PREFIX}{report}", record))
            assert doc["event"]["kind"] == "metric"
            assert doc["event"]["duration"] == secs * 10**9
            assert doc["@timestamp"] == doc["event"]["start"]
            assert doc["@timestamp"].startswith(record["Date"][:19])
            namespace = next(iter(doc["o365"].values()))
            count = "Count" if report == "SpoofMailReport" else "MessageCount"
            assert namespace[count.replace("Message", "message_").lower()] == record[count]
            assert namespace["start_date"] == "2026-01-18T00:00:00.000Z"  # the query window


# (c) per report: the key fields ---------------------------------------------------------

_DATE = "2026-01-18T05:11:40.1234567"
_WINDOW_ECHO = {
    "StartDate": "2026-01-18T00:00:00.0000000Z",
    "EndDate": "2026-01-20T00:00:00.0000000Z",
}


def _doc(report: str, record: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    stream = report if report == MESSAGE_TRACE_DETAIL else f"{RWS_PREFIX}{report}"
    normalizer = Normalizer("ecs", local_domains=kwargs.pop("local", LOCAL), **kwargs)
    return normalizer.document(Event(TENANT, stream, "id-1", record))


MAIL_ROW = {
    "Date": _DATE,
    "MessageId": "<m1@proseware.com>",
    "MessageTraceId": "9c393a5b-c227-4181-9e54-01e218fe5273",
    "Domain": "contoso.com",
    "Subject": "Invoice",
    "MessageSize": 1263469,
    "Direction": "Inbound",
    "SenderAddress": "eve@proseware.com",
    "RecipientAddress": "omar@contoso.com",
    **_WINDOW_ECHO,
}


def test_mail_detail_spam() -> None:
    row = {
        **MAIL_ROW,
        "EventType": "SpamIPBlock",
        "Action": "MoveToJmf",
        "SenderIP": "40.107.86.194",
    }
    doc = _doc("MailDetailSpam", row)
    assert doc["@timestamp"] == "2026-01-18T05:11:40.123Z"
    assert doc["event"] | {"id": None} == {
        "id": None,
        "kind": "event",
        "category": ["email"],
        "type": ["info"],
        "action": "movetojmf",
    }
    assert doc["rule"] == {"name": "SpamIPBlock"}
    assert doc["email"] == {
        "direction": "inbound",
        "from": {"address": ["eve@proseware.com"]},
        "to": {"address": ["omar@contoso.com"]},
        "local_id": "9c393a5b-c227-4181-9e54-01e218fe5273",
        "message_id": "<m1@proseware.com>",
        "subject": "Invoice",
        "attachments": {"file": {"size": 1263469}},
    }
    assert doc["source"]["ip"] == "40.107.86.194"
    assert doc["source"]["user"]["email"] == "eve@proseware.com"
    assert doc["destination"]["user"]["email"] == "omar@contoso.com"
    assert doc["user"]["email"] == "omar@contoso.com"  # inbound: the tenant's side
    assert doc["related"] == {
        "user": ["omar@contoso.com", "eve@proseware.com", "omar", "eve"],
        "ip": ["40.107.86.194"],
    }
    assert doc["o365"]["mail_detail_spam"] == {
        "domain": "contoso.com",
        "action": "MoveToJmf",
        "start_date": "2026-01-18T00:00:00.000Z",
        "end_date": "2026-01-20T00:00:00.000Z",
    }


@pytest.mark.parametrize(
    ("action", "types"),
    [("DeleteMessage", ["info", "denied"]), ("Quarantine", ["info", "denied"])],
)
def test_mail_detail_malware(action: str, types: list[str]) -> None:
    row = {**MAIL_ROW, "EventType": "Malware", "Action": action, "SenderIP": None}
    doc = _doc("MailDetailMalware", row)
    assert doc["event"]["kind"] == "alert"
    assert doc["event"]["category"] == ["email", "malware"]
    assert doc["event"]["type"] == types
    assert doc["event"]["action"] == action.lower()
    assert "ip" not in doc["source"] and "related" in doc and "ip" not in doc["related"]


def test_mail_detail_atp_malware_and_phish() -> None:
    malware = {
        **MAIL_ROW,
        "EventType": "Malware",
        "VerdictType": "Malware",
        "Action": "Quarantine",
        "BulkComplaintLevel": 3,
        "FileName": "invoice_001.docm",
        "MalwareName": "Trojan:W97M/Emotet.PV",
    }
    doc = _doc("MailDetailATP", malware)
    assert doc["event"]["kind"] == "alert"
    assert doc["event"]["category"] == ["email", "malware"]
    assert doc["event"]["type"] == ["info", "denied"]
    assert doc["threat"] == {"software": {"name": "Trojan:W97M/Emotet.PV"}}
    assert doc["email"]["attachments"] == {"file": {"name": "invoice_001.docm", "size": 1263469}}
    assert doc["rule"] == {"name": "Malware", "category": "Malware"}
    assert doc["o365"]["mail_detail_atp"]["bulk_complaint_level"] == 3
    phish = {**malware, "EventType": "Phish", "VerdictType": "Phish", "FileName": None}
    phish["MalwareName"] = None
    doc = _doc("MailDetailATP", phish)
    assert doc["event"]["category"] == ["email", "intrusion_detection"]
    assert "threat" not in doc
    assert doc["email"]["attachments"] == {"file": {"size": 1263469}}


def test_mail_detail_direction_comes_from_the_row_and_intraorg_is_internal() -> None:
    row = {**MAIL_ROW, "Direction": "IntraOrg", "EventType": "Spam", "Action": "MoveToJmf"}
    doc = _doc("MailDetailSpam", row, local=None)
    assert doc["email"]["direction"] == "internal"
    assert doc["user"]["email"] == ["omar@contoso.com", "eve@proseware.com"]
    unknown = _doc("MailDetailSpam", {**row, "Direction": "Unknown"})
    assert unknown["email"]["direction"] == "unknown"
    assert "user" not in unknown
    derived = _doc("MailDetailSpam", {**row, "Direction": None})
    assert derived["email"]["direction"] == "inbound"  # from the local domains


DLP_ROW = {
    "Date": _DATE,
    "Title": "Budget draft",
    "Location": "Exchange",
    "Severity": "High",
    "Size": 198976,
    "Source": "EXCHANGE",
    "Actor": "lee@contoso.com",
    "DLPPolicy": "U.S. Financial Data",
    "UserAction": "None",
    "Justification": None,
    "SensitiveInformationType": "IBAN",
    "SensitiveInformationCount": 3,
    "SensitiveInformationConfidence": 75,
    "EventType": "DLPRuleMatch",
    "Action": "BlockAccess",
    "ObjectId": "<a46e@contoso.com>",
    "Recipients": "alerts@adatum.com; bob@fabrikam.com",
    **_WINDOW_ECHO,
}


def test_dlp_detail_report() -> None:
    doc = _doc("DlpDetailReport", DLP_ROW)
    assert doc["event"] | {"id": None} == {
        "id": None,
        "kind": "alert",
        "category": ["email"],
        "type": ["info", "denied"],
        "action": "blockaccess",
        "severity": 4,
    }
    assert doc["rule"] == {"name": "U.S. Financial Data"}
    assert doc["user"] == {
        "email": "lee@contoso.com",
        "id": "lee@contoso.com",
        "name": "lee",
        "domain": "contoso.com",
    }
    assert doc["email"] == {
        "from": {"address": ["lee@contoso.com"]},
        "to": {"address": ["alerts@adatum.com", "bob@fabrikam.com"]},
        "message_id": "<a46e@contoso.com>",
        "subject": "Budget draft",
        "attachments": {"file": {"size": 198976}},
    }
    rest = doc["o365"]["dlp_detail_report"]
    assert rest["severity"] == "High" and rest["action"] == "BlockAccess"
    assert rest["sensitive_information_type"] == "IBAN"
    assert rest["sensitive_information_count"] == 3
    assert "justification" not in rest


def test_dlp_detail_outside_exchange_is_a_file_and_unknown_severity_is_kept() -> None:
    row = {**DLP_ROW, "Location": "SharePoint", "Severity": "Extreme", "Action": "NotifyUser"}
    doc = _doc("DlpDetailReport", row)
    assert doc["event"]["category"] == ["file"]
    assert doc["event"]["type"] == ["info"]
    assert "severity" not in doc["event"] and "email" not in doc
    rest = doc["o365"]["dlp_detail_report"]
    assert rest["severity"] == "Extreme"
    assert rest["title"] == "Budget draft"
    assert rest["recipients"] == DLP_ROW["Recipients"]


SAFELINKS_ROW = {
    "ClickTime": _DATE,
    "NetworkMessageId": "875ccbba-9fa2-4dd5-b816-15c81565933a",
    "ClientMessageId": "<b225@adatum.com>",
    "SenderAddress": "it-helpdesk@adatum.com",
    "RecipientAddress": "raul@contoso.com",
    "Url": "https://www.adatum.com/l/5ccbba",
    "UrlDomain": "www.adatum.com",
    "Action": "Blocked",
    "AppName": "Outlook",
    "SourceId": "0",
    "Organization": "contoso.com",
    "DetectedBy": "Safe Links in Outlook",
    "UrlType": None,
    "Flags": 1,
    **_WINDOW_ECHO,
}


@pytest.mark.parametrize(
    ("action", "category", "types"),
    [
        ("Allowed", ["web"], ["access", "allowed"]),
        ("Blocked", ["web", "intrusion_detection"], ["access", "denied"]),
        ("ClickedEvenBlocked", ["web", "intrusion_detection"], ["access", "allowed"]),
    ],
)
def test_safelinks_detail(action: str, category: list[str], types: list[str]) -> None:
    doc = _doc("SafelinksDetail", {**SAFELINKS_ROW, "Action": action})
    assert doc["@timestamp"] == "2026-01-18T05:11:40.123Z"
    assert doc["event"]["category"] == category
    assert doc["event"]["type"] == types
    assert doc["event"]["action"] == action.lower()
    assert doc["url"] == {
        "full": "https://www.adatum.com/l/5ccbba",
        "original": "https://www.adatum.com/l/5ccbba",
        "domain": "www.adatum.com",
    }
    assert doc["user"]["email"] == "raul@contoso.com"
    assert doc["email"]["local_id"] == SAFELINKS_ROW["NetworkMessageId"]
    assert doc["email"]["message_id"] == "<b225@adatum.com>"
    assert doc["email"]["direction"] == "inbound"
    assert doc["related"]["hosts"] == ["www.adatum.com"]
    rest = doc["o365"]["safelinks_detail"]
    assert rest["action"] == action and rest["app_name"] == "Outlook" and rest["flags"] == 1


def test_safelinks_url_domain_is_read_from_the_url_when_absent() -> None:
    doc = _doc("SafelinksDetail", {**SAFELINKS_ROW, "UrlDomain": None})
    assert doc["url"]["domain"] == "www.adatum.com"


def test_mail_traffic_from_verbose_json() -> None:
    row = {
        "__metadata": {"type": "TenantReporting.MailTraffic"},
        "Date": "/Date(1768694400000)/",
        "Direction": "Outbound",
        "Domain": "contoso.com",
        "EventType": "GoodMail",
        "Action": None,
        "AggregateBy": None,
        "MessageCount": 14,
        "StartDate": "/Date(1768694400000)/",
        "EndDate": "/Date(1768867200000)/",
    }
    doc = _doc("MailTraffic", row)
    assert doc["@timestamp"] == "2026-01-18T00:00:00.000Z"
    assert doc["event"] | {"id": None} == {
        "id": None,
        "kind": "metric",
        "category": ["email"],
        "type": ["info"],
        "start": "2026-01-18T00:00:00.000Z",
        "end": "2026-01-18T01:00:00.000Z",
        "duration": 3_600_000_000_000,
        "action": "goodmail",
    }
    assert doc["email"] == {"direction": "outbound"}
    assert doc["o365"]["mail_traffic"] == {
        "domain": "contoso.com",
        "event_type": "GoodMail",
        "message_count": 14,
        "start_date": "2026-01-18T00:00:00.000Z",
        "end_date": "2026-01-20T00:00:00.000Z",
    }


def test_aggregate_by_in_the_row_sets_the_bucket() -> None:
    row = {"Date": "2026-01-18T00:00:00", "EventType": "GoodMail", "AggregateBy": "Day"}
    assert _doc("MailTraffic", row)["event"]["duration"] == 86_400 * 10**9


def test_mail_traffic_policy_names_the_dlp_policy_or_the_transport_rule() -> None:
    base = {"Date": "2026-01-18T03:00:00.0000000", "Direction": "Outbound", "MessageCount": 2}
    rule = {**base, "EventType": "TransportRuleHits", "DlpPolicy": None}
    rule |= {"TransportRule": "Block executable attachments", "Action": "RejectMessage"}
    doc = _doc("MailTrafficPolicy", rule)
    assert doc["rule"] == {"name": "Block executable attachments"}
    assert doc["event"]["type"] == ["info", "denied"]
    assert doc["event"]["action"] == "transportrulehits"
    assert doc["o365"]["mail_traffic_policy"]["action"] == "RejectMessage"
    dlp = {**base, "EventType": "DLPPolicyHits", "DlpPolicy": "GDPR Enhanced"}
    dlp |= {"TransportRule": None, "Action": "NotifyUser"}
    doc = _doc("MailTrafficPolicy", dlp)
    assert doc["rule"] == {"name": "GDPR Enhanced"}
    assert doc["event"]["type"] == ["info"]


def test_mail_traffic_atp_and_dlp_detections() -> None:
    atp = {"Date": "2026-01-18T00:00:00", "Direction": "Inbound", "EventType": "Phish"}
    atp |= {"VerdictSource": "ATP", "Action": None, "MessageCount": 3}
    doc = _doc("MailTrafficATP", atp)
    assert doc["rule"] == {"ruleset": "ATP"}
    assert doc["event"]["end"] == "2026-01-19T00:00:00.000Z"
    dlp = {"Date": "2026-01-18T00:00:00", "DlpPolicy": "PCI DSS", "EventType": "DLPPolicyHits"}
    dlp |= {"SensitiveInformationType": "IBAN", "Action": "BlockAccess", "MessageCount": 2}
    doc = _doc("DlpDetectionsReport", dlp)
    assert doc["rule"] == {"name": "PCI DSS"}
    assert doc["event"]["type"] == ["info", "denied"]
    assert doc["o365"]["dlp_detections_report"]["sensitive_information_type"] == "IBAN"


def test_mail_traffic_top_malware_names_no_address() -> None:
    row = {"Date": "2026-01-18T00:00:00", "EventType": "TopMalware", "Name": "Trojan:X"}
    doc = _doc("MailTrafficTop", {**row, "MessageCount": 2})
    assert "email" not in doc and "related" not in doc
    assert doc["o365"]["mail_traffic_top"]["name"] == "Trojan:X"


@pytest.mark.parametrize(
    ("kind", "side"),
    [("TopMailSender", "from"), ("TopMailRecipient", "to"), ("TopMalwareRecipient", "to")],
)
def test_mail_traffic_top(kind: str, side: str) -> None:
    row = {"Date": "2026-01-18T00:00:00", "Direction": "Inbound", "EventType": kind}
    row |= {"Name": "lee@contoso.com", "MessageCount": 16, "AggregateBy": None}
    doc = _doc("MailTrafficTop", row)
    assert doc["email"] == {"direction": "inbound", side: {"address": ["lee@contoso.com"]}}
    assert doc["related"] == {"user": ["lee@contoso.com", "lee"]}
    assert doc["o365"]["mail_traffic_top"]["message_count"] == 16


@pytest.mark.parametrize(
    ("result", "types"),
    [("fail", ["info", "denied"]), ("pass", ["info", "allowed"]), ("weird", ["info"])],
)
def test_spoof_mail_report(result: str, types: list[str]) -> None:
    row = {
        "Date": "2026-01-18T00:00:00.0000000",
        "SpoofedUser": "adele@northwindtraders.com",
        "TrueSender": "northwindtraders.com",
        "SendingInfrastructure": "mail2.northwindtraders.com",
        "SpoofType": "External",
        "Source": "SPOOF",
        "Result": result,
        "ResultCode": "001",
        "EventType": "SpoofMail",
        "Direction": "Inbound",
        "Domain": "contoso.com",
        "SPF": "fail",
        "DKIM": "none",
        "DMARC": "bestguesspass",
        "Count": 4,
    }
    doc = _doc("SpoofMailReport", row)
    assert doc["event"]["type"] == types
    assert doc["event"]["duration"] == 86_400 * 10**9
    assert doc["email"] == {"direction": "inbound", "from": {"address": [row["SpoofedUser"]]}}
    assert doc["source"] == {"domain": "mail2.northwindtraders.com"}
    rest = doc["o365"]["spoof_mail_report"]
    assert (rest["spf"], rest["dkim"], rest["dmarc"]) == ("fail", "none", "bestguesspass")
    assert (
        rest["result"] == result and rest["count"] == 4 and rest["true_sender"] == row["TrueSender"]
    )


@pytest.mark.parametrize(
    ("category", "side"),
    [("TopMailSender", "from"), ("TopMailRecipient", "to"), ("TopSpamRecipient", "to")],
)
def test_mail_traffic_summary(category: str, side: str) -> None:
    row = {"Category": category, "C1": "amara@relecloud.com", "C2": "25", "C3": None}
    row |= {"DlpPolicy": None, "Domain": "contoso.com", **_WINDOW_ECHO}
    doc = _doc("MailTrafficSummary", row)
    assert doc["@timestamp"] == "2026-01-18T00:00:00.000Z"
    assert doc["event"]["end"] == "2026-01-20T00:00:00.000Z"
    assert doc["event"]["duration"] == 2 * 86_400 * 10**9
    assert doc["event"]["action"] == category.lower()
    assert doc["email"] == {side: {"address": ["amara@relecloud.com"]}}
    rest = doc["o365"]["mail_traffic_summary"]
    assert (
        rest["message_count"] == 25 and rest["c1"] == "amara@relecloud.com" and rest["c2"] == "25"
    )
    assert rest["start_date"] == "2026-01-18T00:00:00.000Z"


def test_a_summary_category_of_other_columns_keeps_them_all() -> None:
    row = {"Category": "TopMalware", "C1": "Trojan:X", "C2": "3", **_WINDOW_ECHO}
    doc = _doc("MailTrafficSummary", row)
    assert "email" not in doc
    assert doc["o365"]["mail_traffic_summary"]["c1"] == "Trojan:X"
    assert "message_count" not in doc["o365"]["mail_traffic_summary"]


GRAPH_STEP = {
    "id": "0218d450-528a-4268-816b-0be64f634a89",
    "messageId": "<3761@contoso.com>",
    "dateTime": "2026-01-18T00:17:07Z",
    "event": "Fail",
    "action": "",
    "description": "Reason: [{LED=550 5.1.10 RESOLVER.ADR.RecipientNotFound}]",
    "data": '<root><MEP Name="Fail" /></root>',
    "recipientAddress": "emily@fabrikam.com",
}
RWS_STEP = {
    "Organization": "contoso.com",
    "MessageId": "<3761@contoso.com>",
    "MessageTraceId": "0218d450-528a-4268-816b-0be64f634a89",
    "RecipientAddress": "emily@fabrikam.com",
    "SenderAddress": "joni@contoso.com",
    "Date": "2026-01-18T00:17:07.0000000",
    "Event": "Fail",
    "Action": None,
    "Detail": "Reason: [{LED=550 5.1.10 RESOLVER.ADR.RecipientNotFound}]",
    "Data": '<root><MEP Name="Fail" /></root>',
    **_WINDOW_ECHO,
    "Index": 1,
}


def test_message_trace_detail_graph_and_rws_rows_agree() -> None:
    graph = flatten(_doc(MESSAGE_TRACE_DETAIL, GRAPH_STEP))
    rws = flatten(_doc(MESSAGE_TRACE_DETAIL, RWS_STEP))
    for doc in (graph, rws):
        assert doc["@timestamp"] == "2026-01-18T00:17:07.000Z"
        assert (doc["event.kind"], doc["event.action"], doc["event.outcome"]) == (
            "event",
            "fail",
            "failure",
        )
        assert doc["message"].startswith("Reason: [{LED=550")
        assert doc["email.local_id"] == GRAPH_STEP["id"]
        assert doc["email.message_id"] == "<3761@contoso.com>"
        assert doc["email.to.address"] == ["emily@fabrikam.com"]
    # Graph rows do not name the sender: only the sender's side differs.
    assert rws["email.from.address"] == ["joni@contoso.com"]
    assert rws["email.direction"] == "outbound" and rws["user.email"] == "joni@contoso.com"
    assert graph["email.direction"] == "external"
    assert graph["o365.message_trace_detail.data"] == rws["o365.message_trace_detail.data"]
    assert graph["o365.message_trace_detail.event"] == "Fail"
    assert rws["o365.message_trace_detail.index"] == 1
    assert rws["o365.message_trace_detail.start_date"] == "2026-01-18T00:00:00.000Z"


@pytest.mark.parametrize(
    ("step", "action", "outcome", "types"),
    [
        ("Deliver", "", "success", ["info"]),
        ("Send external", None, "success", ["info"]),
        ("Receive", "SetSpamConfidenceLevel", None, ["info"]),
        ("Drop", "RejectMessage", None, ["info", "denied"]),
    ],
)
def test_message_trace_detail_outcome_and_action(
    step: str, action: str | None, outcome: str | None, types: list[str]
) -> None:
    doc = _doc(MESSAGE_TRACE_DETAIL, {**GRAPH_STEP, "event": step, "action": action})
    assert doc["event"].get("outcome") == outcome
    assert doc["event"]["action"] == step.lower()
    assert doc["event"]["type"] == types
    assert doc["o365"]["message_trace_detail"].get("action") == (action or None)


# (d) unknown fields and values are kept, never dropped -------------------------------------

UNKNOWN_CASES: dict[str, dict[str, Any]] = {
    "MailDetailSpam": {**MAIL_ROW, "EventType": "SpamX", "Action": "Vaporize"},
    "MailDetailMalware": {**MAIL_ROW, "EventType": "Malware", "Action": "Vaporize"},
    "MailDetailATP": {**MAIL_ROW, "EventType": "Phish", "Action": "Vaporize"},
    "DlpDetailReport": {**DLP_ROW, "Action": "Vaporize"},
    "SafelinksDetail": {**SAFELINKS_ROW, "Action": "Vaporize"},
    "MailTraffic": {"Date": _DATE, "EventType": "GoodMail", "Action": "Vaporize"},
    "MailTrafficATP": {"Date": _DATE, "EventType": "Spam", "Action": "Vaporize"},
    "MailTrafficPolicy": {"Date": _DATE, "EventType": "DLPPolicyHits", "Action": "Vaporize"},
    "MailTrafficTop": {"Date": _DATE, "EventType": "TopMailSender", "Action": "Vaporize"},
    "DlpDetectionsReport": {"Date": _DATE, "EventType": "DLPPolicyHits", "Action": "Vaporize"},
    "SpoofMailReport": {"Date": _DATE, "EventType": "SpoofMail", "Action": "Vaporize"},
    "MailTrafficSummary": {"Category": "TopMailSender", "Action": "Vaporize", **_WINDOW_ECHO},
    "MessageTraceDetail": {**RWS_STEP, "Action": "Vaporize"},
    MESSAGE_TRACE_DETAIL: {**GRAPH_STEP, "action": "Vaporize"},
}


PER_ROW_ACTION = {
    "MailDetailSpam",
    "MailDetailMalware",
    "MailDetailATP",
    "DlpDetailReport",
    "SafelinksDetail",
}


def test_every_report_has_an_unknown_value_case() -> None:
    assert set(UNKNOWN_CASES) == set(ecs_reports.MAPPERS)


@pytest.mark.parametrize("report", list(UNKNOWN_CASES))
def test_unknown_fields_and_values_are_kept(report: str) -> None:
    record = {**UNKNOWN_CASES[report], "BrandNewField": {"nested": 1}, "AnotherOne": 7}
    doc = _doc(report, record)
    rest = next(iter(doc["o365"].values()))
    assert rest["brand_new_field"] == {"nested": 1}
    assert rest["another_one"] == 7
    assert rest["action"] == "Vaporize"  # the raw action, as sent
    assert doc["event"]["type"] in (["info"], ["access"])  # neither allowed nor denied
    if report in PER_ROW_ACTION:  # event.action is the action; else the event type / step
        assert doc["event"]["action"] == "vaporize"
    assert ecs_problems(doc, load_ecs()) == []


@pytest.mark.parametrize("report", list(UNKNOWN_CASES))
def test_a_time_that_is_not_a_date_is_kept_not_used(report: str) -> None:
    record = dict(UNKNOWN_CASES[report])
    key = next(k for k in ("Date", "ClickTime", "dateTime", "StartDate") if k in record)
    record[key] = "yesterday-ish"
    doc = _doc(report, record)
    assert "@timestamp" not in doc
    assert "yesterday-ish" in next(iter(doc["o365"].values())).values()


@pytest.mark.parametrize("report", list(UNKNOWN_CASES))
def test_event_original_only_when_asked(report: str) -> None:
    record = UNKNOWN_CASES[report]
    without = _doc(report, record)
    with_original = _doc(report, record, include_original=True)
    assert "original" not in without["event"]
    assert orjson.loads(with_original["event"].pop("original")) == record
    assert with_original == without


def test_an_empty_record_still_gets_its_frame() -> None:
    for report in ecs_reports.MAPPERS:
        doc = _doc(report, {})
        assert doc["event"]["id"] == "id-1"
        assert doc["o365collector"]["event_id"] == "id-1"
        assert doc["ecs"] == {"version": "9.4.0"}
        assert "o365" not in doc and "@timestamp" not in doc
