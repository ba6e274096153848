"""The report catalog, stream configuration and the plan each kind of stream gets."""

from __future__ import annotations

import pytest

from o365collector.config.model import CollectionSettings, TenantSettings
from o365collector.config.streams import DetailOptions, ReportOptions, configured, parse_stream
from o365collector.errors import O365CollectorError
from o365collector.planning.lanes import BandLane, Priority, WatermarkLane
from o365collector.planning.plan import stream_plan
from o365collector.sources.factory import build_source
from o365collector.sources.graph.message_trace import GraphMessageTraceSource
from o365collector.sources.reporting.detail import DetailSource
from o365collector.sources.reporting.source import ReportSource
from o365collector.streams.catalog import (
    CATALOG,
    Granularity,
    devo_table,
    find_report,
    listed_reports,
    report_for_stream,
)

TENANT = "contoso.onmicrosoft.com"
CLIENT = "5f6a7b8c-0000-4000-8000-0000000000cc"
BRIEF = [
    *("MessageTrace", "MessageTraceDetail", "MailTraffic", "MailTrafficATP", "MailDetailATP"),
    *("SpoofMailReport", "DlpDetailReport", "DlpDetectionsReport", "SafelinksDetail"),
    *("MailTrafficTop", "MailTrafficSummary", "MailDetailSpam", "MailDetailMalware"),
    "MailTrafficPolicy",
]
_SEED_ROWS = [  # seed 004: service, Devo table, RWS entity set
    ("MailTraffic", "mailtraffic", "MailTraffic"),
    ("DlpDetail", "dlpdetail", "DlpDetailReport"),
    ("SpoofMail", "spoofmail", "SpoofMailReport"),
    ("AdvancedThreatProtectionTraffic", "atptraffic", "MailTrafficATP"),
    ("MessageTrace", "messagetrace", "MessageTrace"),
    ("Dlp", "dlp", "DlpDetectionsReport"),
    ("MailDetailATP", "maildetailatp", "MailDetailATP"),
    ("SafelinksDetail", "safelinksdetail", "SafelinksDetail"),
]
SEED_004 = {
    f"office365_reporting_{service}_service": (f"cloud.office365.reporting.{table}", report)
    for service, table, report in _SEED_ROWS
}


def test_the_catalog_holds_every_report_of_the_brief_with_its_facts() -> None:
    assert sorted(CATALOG) == sorted(BRIEF)
    for spec in CATALOG.values():
        assert spec.key_fields and spec.time_field and spec.retention_secs > 0, spec.name
        assert spec.stream == f"rws.{spec.name}"
        if spec.aggregated:
            assert spec.time_field in spec.key_fields, spec.name  # the bucket is in the key
    assert CATALOG["MessageTrace"].key_fields == ("MessageTraceId", "RecipientAddress")
    assert CATALOG["MessageTrace"].status_field == "Status"
    assert CATALOG["MessageTrace"].retention_secs == 30 * 86400
    assert CATALOG["MailTraffic"].granularity is Granularity.HOURLY
    assert CATALOG["SpoofMailReport"].granularity is Granularity.DAILY
    assert [s.name for s in listed_reports()] == [n for n in BRIEF if n != "MessageTraceDetail"]


def test_devo_tables_follow_seed_004() -> None:
    by_service = {
        s.devo_service: (s.devo_table, s.name) for s in CATALOG.values() if s.devo_service
    }
    assert by_service == SEED_004
    assert devo_table("rws.MailTrafficATP") == "cloud.office365.reporting.atptraffic"
    assert devo_table("message_trace") == "cloud.office365.reporting.messagetrace"
    assert devo_table("rws.MailTrafficTop") is None
    assert devo_table("message_trace_detail") is None
    assert devo_table("nonsense") is None


def test_report_lookup_is_case_insensitive() -> None:
    assert find_report("mailtrafficatp") is CATALOG["MailTrafficATP"]
    assert report_for_stream("rws.spoofmailreport") is CATALOG["SpoofMailReport"]
    assert report_for_stream("message_trace") is None


def _tenant(*streams: object) -> TenantSettings:
    return TenantSettings(
        tenant_id=TENANT, client_id=CLIENT, client_secret="s", streams=list(streams)
    )


def test_streams_take_names_and_mappings_and_keep_their_options() -> None:
    tenant = _tenant(
        "message_trace",
        "rws.mailtraffic",
        {"name": "rws.SpoofMailReport", "settle_delay_secs": 7200},
        {"name": "message_trace_detail", "api": "rws", "statuses": ["failed"]},
    )
    assert tenant.streams == [
        "message_trace",
        "rws.MailTraffic",
        "rws.SpoofMailReport",
        "message_trace_detail",
    ]
    spoof, detail = tenant.streams[2].options, tenant.streams[3].options
    assert isinstance(spoof, ReportOptions) and spoof.settle_delay_secs == 7200
    assert isinstance(detail, DetailOptions) and detail.api == "rws"
    assert "message_trace" in tenant.streams
    dumped = tenant.model_dump()["streams"]
    assert dumped[2] == {"name": "rws.SpoofMailReport", "settle_delay_secs": 7200.0}
    assert _tenant(*dumped).streams == tenant.streams
    default = TenantSettings(tenant_id=TENANT, client_id=CLIENT, client_secret="s")
    assert default.streams == ["message_trace"]


@pytest.mark.parametrize(
    ("entry", "says"),
    [
        ("rws.Nope", "unknown stream 'rws.Nope'"),
        ("rws.MessageTraceDetail", "`message_trace_detail` with `api: rws`"),
        ({"name": "rws.MessageTrace", "settle_delay_secs": -5}, "greater than or equal to 0"),
        ({"name": "message_trace", "poll_interval_secs": 0}, "greater than or equal to 1"),
        ({"name": "message_trace_detail", "statuses": []}, "at least one status"),
        ({"name": "rws.MailTraffic", "page_size": 5000}, "page_size"),
        ({"api": "rws"}, "needs `name`"),
    ],
)
def test_bad_streams_are_refused_naming_the_fix(entry: object, says: str) -> None:
    with pytest.raises((ValueError, O365CollectorError), match=says.replace("(", r"\(")):
        _tenant(entry)


COLLECTION = CollectionSettings()


def test_graph_and_per_row_reports_use_the_lanes() -> None:
    graph = stream_plan(COLLECTION)
    rws = stream_plan(COLLECTION, "rws.MessageTrace")
    assert [lane.name for lane in rws.lanes] == [lane.name for lane in graph.lanes]
    assert any(isinstance(lane, BandLane) for lane in rws.lanes)
    assert graph.retention_secs == 90 * 86400
    assert rws.retention_secs == 30 * 86400
    assert rws.max_window_secs == 86400 < graph.max_window_secs
    assert stream_plan(COLLECTION, "rws.SafelinksDetail").retention_secs == 7 * 86400


def test_aggregates_read_each_settled_bucket_once() -> None:
    hourly = stream_plan(COLLECTION, "rws.MailTraffic")
    assert len(hourly.lanes) == 1
    lane = hourly.lanes[0]
    assert isinstance(lane, WatermarkLane)
    assert lane.settle_secs == 90_000  # seed 004's default delay
    assert lane.min_window_secs == 3600  # a whole bucket
    assert hourly.retention_secs == 90 * 86400 - 3600
    daily = stream_plan(
        COLLECTION, parse_stream({"name": "rws.MailTrafficATP", "settle_delay_secs": 7200})
    )
    assert daily.lanes[0].settle_secs == 7200  # type: ignore[union-attr]
    assert daily.lanes[0].min_window_secs == 86400  # type: ignore[union-attr]


def test_detail_runs_one_lane_at_detail_priority() -> None:
    plan = stream_plan(COLLECTION, "message_trace_detail")
    assert len(plan.lanes) == 1
    assert plan.lanes[0].priority is Priority.DETAIL
    assert plan.lanes[0].settle_secs == COLLECTION.horizon_secs  # type: ignore[union-attr]


def test_each_stream_gets_its_source_and_its_discovery_needs() -> None:
    endpoints = _tenant("message_trace").endpoints

    def built(entry: object):
        return build_source(configured(parse_stream(entry)), None, endpoints, COLLECTION)  # type: ignore[arg-type]

    graph = built("message_trace")
    assert isinstance(graph.source, GraphMessageTraceSource) and graph.needs_reports == ()
    report = built("rws.MailTraffic")
    assert isinstance(report.source, ReportSource) and report.needs_reports == ("MailTraffic",)
    detail = built({"name": "message_trace_detail", "api": "rws"})
    assert isinstance(detail.source, DetailSource)
    assert detail.needs_reports == ("MessageTrace", "MessageTraceDetail")
    assert built("message_trace_detail").needs_reports == ()


@pytest.mark.parametrize(
    "module",
    [
        "o365collector.config.streams",
        "o365collector.streams.catalog",
        "o365collector.sources.factory",
        "o365collector.planning.plan",
        "o365collector.pipeline.offered",
        "o365emulator",
    ],
)
def test_modules_import_on_their_own(module: str) -> None:
    """The config package imports the stream model while it initialises: no import cycle."""
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-c", f"import {module}"], check=False, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr[-2000:]
