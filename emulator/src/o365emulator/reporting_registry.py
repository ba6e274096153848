"""The emulated RWS reports: each one's properties, time field, retention and row source."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from .dataset import TenantData
from .reporting_aggregates import (
    SummaryReport,
    dlp_detections,
    mail_traffic,
    mail_traffic_atp,
    mail_traffic_policy,
    mail_traffic_top,
    spoof_mail,
)
from .reporting_rows import (
    Facts,
    Row,
    TraceDetailReport,
    TraceReport,
    atp,
    dlp_detail,
    malware,
    safelinks,
    spam,
)


class RowSource(Protocol):
    """Where a report's rows come from."""

    def select(self, low: int, high: int, now: int, eq: Mapping[str, str]) -> list[Row]:
        """Visible rows of ``[low, high]`` (ticks) matching the ``eq`` clauses, in order."""
        ...

    def truth(self) -> Iterator[dict[str, Any]]:
        """Ground truth: every row it will ever serve, with when it becomes visible."""
        ...


Build = Callable[[TenantData, int], RowSource]  # (tenant data, aggregate delay in ticks)


@dataclass(frozen=True)
class ReportDef:
    """One emulated report.

    Attributes:
        name: Entity set name (as in the service document).
        time_field: The field a JSON light body writes without ``Z`` (empty: none).
        fields: Properties a ``$filter`` may name (besides StartDate, EndDate, AggregateBy).
        retention_days: Rows older than this are gone.
        build: Makes the tenant's row source (built once, on first use).
        aggregate_by: The ``AggregateBy`` value the report answers, if it takes one.
    """

    name: str
    time_field: str
    fields: tuple[str, ...]
    retention_days: int
    build: Build
    aggregate_by: str | None = None


def _static(make: Callable[[Facts], RowSource]) -> Build:
    return lambda data, _delay: make(Facts(data))


def _aggregate(make: Callable[[Facts, int], RowSource]) -> Build:
    return lambda data, delay: make(Facts(data), delay)


_MAIL = (
    "Date", "MessageId", "MessageTraceId", "Domain", "Subject", "MessageSize", "Direction",
    "SenderAddress", "RecipientAddress", "EventType", "Action",
)  # fmt: skip
_TRAFFIC = ("Date", "Direction", "Domain", "EventType", "Action", "MessageCount", "AggregateBy")

REPORTS: dict[str, ReportDef] = {
    d.name: d
    for d in (
        ReportDef("MessageTrace", "Received", (
            "Organization", "MessageId", "Received", "SenderAddress", "RecipientAddress",
            "Subject", "Status", "ToIP", "FromIP", "Size", "MessageTraceId", "Index",
        ), 30, lambda data, _: TraceReport(data)),
        ReportDef("MessageTraceDetail", "Date", (
            "Organization", "MessageId", "MessageTraceId", "RecipientAddress", "SenderAddress",
            "Date", "Event", "Action", "Detail", "Data", "Index",
        ), 30, lambda data, _: TraceDetailReport(data)),
        ReportDef("MailTraffic", "Date", _TRAFFIC, 90, _aggregate(mail_traffic), "Hour"),
        ReportDef(
            "MailTrafficATP", "Date", (*_TRAFFIC, "VerdictSource"), 90,
            _aggregate(mail_traffic_atp), "Day",
        ),
        ReportDef("MailDetailATP", "Date", (
            *_MAIL, "BulkComplaintLevel", "VerdictType", "FileName", "MalwareName",
        ), 10, _static(atp)),
        ReportDef("SpoofMailReport", "Date", (
            "Date", "SpoofedUser", "TrueSender", "SendingInfrastructure", "SpoofType", "Source",
            "Result", "ResultCode", "EventType", "Direction", "Domain", "SPF", "DKIM", "DMARC",
            "Count",
        ), 90, _aggregate(spoof_mail)),
        ReportDef("DlpDetailReport", "Date", (
            "Date", "Title", "Location", "Severity", "Size", "Source", "Actor", "DLPPolicy",
            "UserAction", "Justification", "SensitiveInformationType",
            "SensitiveInformationCount", "SensitiveInformationConfidence", "EventType", "Action",
            "ObjectId", "Recipients",
        ), 7, _static(dlp_detail)),
        ReportDef("DlpDetectionsReport", "Date", (
            "Date", "DlpPolicy", "SensitiveInformationType", "Source", "EventType", "Action",
            "MessageCount",
        ), 90, _aggregate(dlp_detections)),
        ReportDef("SafelinksDetail", "ClickTime", (
            "ClickTime", "NetworkMessageId", "ClientMessageId", "SenderAddress",
            "RecipientAddress", "Url", "UrlDomain", "Action", "AppName", "SourceId",
            "Organization", "DetectedBy", "UrlType", "Flags",
        ), 7, _static(safelinks)),
        ReportDef(
            "MailTrafficTop", "Date", (*_TRAFFIC, "Name"), 90, _aggregate(mail_traffic_top), "Day"
        ),
        ReportDef("MailTrafficSummary", "", (
            "Category", *(f"C{i}" for i in range(1, 21)), "DlpPolicy", "Domain",
        ), 90, _aggregate(SummaryReport)),
        ReportDef("MailDetailSpam", "Date", (*_MAIL, "SenderIP"), 30, _static(spam)),
        ReportDef("MailDetailMalware", "Date", (*_MAIL, "SenderIP"), 30, _static(malware)),
        ReportDef("MailTrafficPolicy", "Date", (
            *_TRAFFIC, "DlpPolicy", "TransportRule",
        ), 90, _aggregate(mail_traffic_policy), "Hour"),
    )
}  # fmt: skip
BY_LOWER = {name.lower(): d for name, d in REPORTS.items()}
