"""The report catalog: one declarative entry per Reporting Web Service report.

Adding a report is adding one :class:`ReportSpec` to ``_ENTRIES``. Everything else — the
stream name ``rws.{name}``, the window plan (lanes for per-row reports, settled buckets for
aggregates), the query, the dedup key and the Devo table — follows from the entry.

Retention values come from ``reference/api-facts.md`` §1.6–§1.9: documented where Microsoft
states one (MessageTrace 30 days, MailTrafficATP / SpoofMail 90 days, MailDetailATP 10 days
without Defender, SafeLinks and DLP detail 7 days), inferred (marked) otherwise.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Literal

RWS_PREFIX = "rws."
GRAPH_MESSAGE_TRACE = "message_trace"
MESSAGE_TRACE_DETAIL = "message_trace_detail"
DEVO_MESSAGE_TRACE_TABLE = "cloud.office365.reporting.messagetrace"

_HOUR = 3600.0
_DAY = 86400.0


class Granularity(enum.Enum):
    """What one row of a report stands for."""

    ROW = "row"  # one event (message, recipient, click, detection): read by the lanes
    HOURLY = "hourly"  # one hourly aggregate bucket: read once it has settled
    DAILY = "daily"  # one daily aggregate bucket: read once it has settled


@dataclass(frozen=True, slots=True)
class ReportSpec:
    """One RWS report and how to collect it.

    Attributes:
        name: The entity set in ``…/reporting.svc/{name}`` (and in the service document).
        description: One line for docs and ``check``.
        granularity: Per-row event, or hourly / daily aggregate bucket.
        time_field: The field that places a row in time (the bucket start for aggregates).
        key_fields: Fields that identify a row; for aggregates the bucket date and every
            dimension (every column but the counts), so a re-read never delivers a bucket
            twice and two buckets never share a key. The first two are the
            (trace id, recipient) of the event id when the report has a ``status_field``.
        retention_secs: How far back the service keeps rows; older windows are clamped with
            an ERROR log and ``retention_clamped_seconds_total``.
        status_field: A field whose change is a new fact (MessageTrace's ``Status``).
        devo_service: The Devo collector service of seed 004, if Devo collects the report.
        devo_table: The Devo table of that service.
        aggregate_by: ``AggregateBy`` filter value sent with the query (documented for the
            MailTraffic family only).
        partitions: Extra ``$filter`` clauses; the window is read once per clause (the
            summary report answers one ``Category`` per query).
        query_per_bucket: Query each bucket on its own: the report summarises its whole
            query range, so only one-bucket ranges give stable rows.
        per_message: Read only for selected messages (``message_trace_detail``), never
            listed by window.
        max_query_secs: Longest range one query may span (RWS times out on large ranges).
        inferred: Facts in this entry that no Microsoft source states (docs mark them).
    """

    name: str
    description: str
    granularity: Granularity
    time_field: str
    key_fields: tuple[str, ...]
    retention_secs: float
    status_field: str | None = None
    devo_service: str | None = None
    devo_table: str | None = None
    aggregate_by: Literal["Hour", "Day"] | None = None
    partitions: tuple[str, ...] = ()
    query_per_bucket: bool = False
    per_message: bool = False
    max_query_secs: float = _DAY
    inferred: tuple[str, ...] = ()

    @property
    def stream(self) -> str:
        """The stream name in configuration, state and events: ``rws.{name}``."""
        return RWS_PREFIX + self.name

    @property
    def bucket_secs(self) -> float | None:
        """Length of one aggregate bucket; ``None`` for per-row reports."""
        if self.granularity is Granularity.HOURLY:
            return _HOUR
        if self.granularity is Granularity.DAILY:
            return _DAY
        return None

    @property
    def aggregated(self) -> bool:
        """True for hourly and daily aggregate reports."""
        return self.granularity is not Granularity.ROW


_ENTRIES: tuple[ReportSpec, ...] = (
    ReportSpec(
        "MessageTrace",
        "Summary of every message and recipient (legacy RWS; Graph replaces it in 2026).",
        Granularity.ROW,
        "Received",
        ("MessageTraceId", "RecipientAddress"),
        30 * _DAY,
        status_field="Status",
        devo_service="office365_reporting_MessageTrace_service",
        devo_table=DEVO_MESSAGE_TRACE_TABLE,
    ),
    ReportSpec(
        "MessageTraceDetail",
        "Processing events of one message and recipient (read per selected message).",
        Granularity.ROW,
        "Date",
        ("MessageTraceId", "RecipientAddress", "Date", "Event"),
        30 * _DAY,
        per_message=True,
    ),
    ReportSpec(
        "MailTraffic",
        "Hourly message counts by direction, event type and action.",
        Granularity.HOURLY,
        "Date",
        ("Date", "Direction", "Domain", "EventType", "Action"),
        90 * _DAY,
        devo_service="office365_reporting_MailTraffic_service",
        devo_table="cloud.office365.reporting.mailtraffic",
        aggregate_by="Hour",
        max_query_secs=7 * _DAY,
        inferred=("retention_secs",),
    ),
    ReportSpec(
        "MailTrafficATP",
        "Daily Exchange Online Protection and Defender detections by verdict source.",
        Granularity.DAILY,
        "Date",
        ("Date", "Direction", "Domain", "EventType", "VerdictSource", "Action"),
        90 * _DAY,
        devo_service="office365_reporting_AdvancedThreatProtectionTraffic_service",
        devo_table="cloud.office365.reporting.atptraffic",
        max_query_secs=7 * _DAY,
        inferred=("REST entity set",),
    ),
    ReportSpec(
        "MailDetailATP",
        "Each message Exchange Online Protection or Defender acted on.",
        Granularity.ROW,
        "Date",
        ("MessageTraceId", "RecipientAddress", "EventType", "VerdictType", "FileName"),
        10 * _DAY,
        devo_service="office365_reporting_MailDetailATP_service",
        devo_table="cloud.office365.reporting.maildetailatp",
        inferred=("REST entity set",),
    ),
    ReportSpec(
        "SpoofMailReport",
        "Daily counts of mail from spoofed senders by sending infrastructure and verdict.",
        Granularity.DAILY,
        "Date",
        (
            *("Date", "EventType", "Direction", "Domain", "SpoofedUser", "TrueSender"),
            *("SendingInfrastructure", "SpoofType", "Source", "Result", "ResultCode"),
            *("SPF", "DKIM", "DMARC"),
        ),
        90 * _DAY,
        devo_service="office365_reporting_SpoofMail_service",
        devo_table="cloud.office365.reporting.spoofmail",
        max_query_secs=7 * _DAY,
        inferred=("REST entity set",),
    ),
    ReportSpec(
        "DlpDetailReport",
        "Each data loss prevention rule match (retired by Microsoft; kept while offered).",
        Granularity.ROW,
        "Date",
        ("ObjectId", "Recipients", "DLPPolicy", "SensitiveInformationType"),
        7 * _DAY,
        devo_service="office365_reporting_DlpDetail_service",
        devo_table="cloud.office365.reporting.dlpdetail",
        inferred=("REST entity set",),
    ),
    ReportSpec(
        "DlpDetectionsReport",
        "Daily data loss prevention rule matches by policy and sensitive information type.",
        Granularity.DAILY,
        "Date",
        ("Date", "DlpPolicy", "SensitiveInformationType", "Source", "EventType", "Action"),
        90 * _DAY,
        devo_service="office365_reporting_Dlp_service",
        devo_table="cloud.office365.reporting.dlp",
        max_query_secs=7 * _DAY,
        inferred=("REST entity set", "retention_secs"),
    ),
    ReportSpec(
        "SafelinksDetail",
        "Each Safe Links click (Microsoft publishes a day only once it is over).",
        Granularity.ROW,
        "ClickTime",
        ("NetworkMessageId", "RecipientAddress", "ClickTime", "Url"),
        7 * _DAY,
        devo_service="office365_reporting_SafelinksDetail_service",
        devo_table="cloud.office365.reporting.safelinksdetail",
        inferred=("REST entity set",),
    ),
    ReportSpec(
        "MailTrafficTop",
        "Daily top senders and recipients by direction.",
        Granularity.DAILY,
        "Date",
        ("Date", "Direction", "Domain", "EventType", "Name"),
        90 * _DAY,
        aggregate_by="Day",
        max_query_secs=7 * _DAY,
        inferred=("retention_secs",),
    ),
    ReportSpec(
        "MailTrafficSummary",
        "Daily top-N summaries, one Category per query (columns C1…C20 depend on it).",
        Granularity.DAILY,
        "StartDate",
        ("StartDate", "Category", "Domain", "C1"),
        90 * _DAY,
        partitions=(
            "Category eq 'TopMailSender'",
            "Category eq 'TopMailRecipient'",
            "Category eq 'TopSpamRecipient'",
        ),
        query_per_bucket=True,
        inferred=("retention_secs", "Category echoed in rows"),
    ),
    ReportSpec(
        "MailDetailSpam",
        "Each message filtered as spam.",
        Granularity.ROW,
        "Date",
        ("MessageTraceId", "RecipientAddress", "EventType"),
        30 * _DAY,
        inferred=("retention_secs",),
    ),
    ReportSpec(
        "MailDetailMalware",
        "Each message in which malware was found.",
        Granularity.ROW,
        "Date",
        ("MessageTraceId", "RecipientAddress", "EventType"),
        30 * _DAY,
        inferred=("retention_secs",),
    ),
    ReportSpec(
        "MailTrafficPolicy",
        "Hourly message counts per DLP policy and transport rule.",
        Granularity.HOURLY,
        "Date",
        ("Date", "Direction", "Domain", "EventType", "DlpPolicy", "TransportRule", "Action"),
        90 * _DAY,
        aggregate_by="Hour",
        max_query_secs=7 * _DAY,
        inferred=("retention_secs",),
    ),
)

CATALOG: dict[str, ReportSpec] = {spec.name: spec for spec in _ENTRIES}
_BY_LOWER = {name.lower(): spec for name, spec in CATALOG.items()}


def find_report(name: str) -> ReportSpec | None:
    """The report called ``name`` (RWS paths are case-insensitive), if the catalog has it."""
    return _BY_LOWER.get(name.lower())


def report_for_stream(stream: str) -> ReportSpec | None:
    """The report an ``rws.{Report}`` stream reads; ``None`` for other streams."""
    if not stream.startswith(RWS_PREFIX):
        return None
    return find_report(stream.removeprefix(RWS_PREFIX))


def listed_reports() -> list[ReportSpec]:
    """Reports that can be streams of their own (all but the per-message detail)."""
    return [spec for spec in _ENTRIES if not spec.per_message]


def devo_table(stream: str) -> str | None:
    """The Devo table (tag) of ``stream`` per seed 004, or ``None`` when Devo has none.

    Graph message trace (``message_trace``) lands in the same table as RWS MessageTrace,
    as Devo's own collectors do. Reports Devo does not collect, and message trace detail,
    have no table of their own.
    """
    if stream == GRAPH_MESSAGE_TRACE:
        return DEVO_MESSAGE_TRACE_TABLE
    spec = report_for_stream(stream)
    return spec.devo_table if spec is not None else None
