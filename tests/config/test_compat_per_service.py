"""Each Devo service keeps its own period, delay, start and reset: nothing is folded."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from o365collector.cli import main, run, wants_debug
from o365collector.config.compat import CompatSettings
from o365collector.config.effective import describe, stream_settings
from o365collector.config.loader import parse_settings
from o365collector.config.model import Settings
from o365collector.errors import ConfigError
from o365collector.planning.lanes import WatermarkLane
from o365collector.planning.plan import StreamPlan, stream_plan
from support.compat import Layout, seed_yaml

SERVICES = "inputs.services"
# Per service: its stream, then its request period and its delay, in seconds.
PER_SERVICE = {
    "office365_reporting_MailTraffic_service": ("rws.MailTraffic", 7200, 7200),
    "office365_reporting_DlpDetail_service": ("rws.DlpDetailReport", 300, 43200),
    "office365_reporting_SpoofMail_service": ("rws.SpoofMailReport", 172800, 3600),
    "office365_reporting_AdvancedThreatProtectionTraffic_service": (
        "rws.MailTrafficATP",
        60,
        86400,
    ),
    "office365_reporting_MessageTrace_service": ("message_trace", 120, 5400),
    "office365_reporting_Dlp_service": ("rws.DlpDetectionsReport", 90, 600),
}


def _seed(**changes: dict[str, Any]) -> dict[str, Any]:
    """The seed's config.yaml with ``changes`` per service (a None value removes the key)."""
    data: dict[str, Any] = yaml.safe_load(seed_yaml())
    for service, keys in changes.items():
        node = data["inputs"]["services"][service]
        for key, value in keys.items():
            if value is None:
                node.pop(key, None)
            else:
                node[key] = value
    return data


def _per_service() -> dict[str, Any]:
    return _seed(
        **{
            service: {"request_period_in_seconds": period, "override_time_delay_in_seconds": delay}
            for service, (_, period, delay) in PER_SERVICE.items()
        }
    )


def _load(tmp_path: Any, data: dict[str, Any]) -> Settings:
    return parse_settings(data, base_dir=Layout(tmp_path).root / "config")


def _only_lane(plan: StreamPlan) -> WatermarkLane:
    (lane,) = plan.lanes
    assert isinstance(lane, WatermarkLane)
    return lane


def test_each_service_period_and_delay_reach_its_stream_plan(tmp_path) -> None:
    settings = _load(tmp_path, _per_service())
    streams = {str(s): s for s in settings.tenants[0].streams}
    assert set(streams) == {stream for stream, _, _ in PER_SERVICE.values()}
    for stream, period, delay in PER_SERVICE.values():
        plan = stream_plan(settings.collection, streams[stream])
        lane = _only_lane(plan)  # fixed delay: one lane, each window read once
        assert lane.settle_secs == delay, stream
        bucket = streams[stream].report.bucket_secs if streams[stream].report else None
        # an aggregated report gains data once per bucket: never polled more often
        assert lane.min_window_secs == max(period, bucket or 0), stream
    # per-row streams keep their own values: neither the shortest nor the longest
    detail = _only_lane(stream_plan(settings.collection, streams["rws.DlpDetailReport"]))
    assert (detail.settle_secs, detail.min_window_secs) == (43200, 300)
    assert stream_plan(settings.collection, streams["rws.DlpDetailReport"]).horizon_secs == 43200


def test_a_blank_removed_or_commented_key_takes_the_seed_default(tmp_path) -> None:
    data = _seed(
        office365_reporting_MailTraffic_service={"request_period_in_seconds": ""},
        office365_reporting_DlpDetail_service={
            "request_period_in_seconds": None,
            "override_time_delay_in_seconds": None,
        },
    )
    text = yaml.safe_dump(data).replace(
        "      request_period_in_seconds: 60\n", "      # request_period_in_seconds: 60\n", 1
    )
    settings = _load(tmp_path, yaml.safe_load(text))
    streams = {str(s): s for s in settings.tenants[0].streams}
    detail = streams["rws.DlpDetailReport"].options
    assert (detail.poll_interval_secs, detail.settle_delay_secs) == (60, 90000)
    assert streams["rws.MailTraffic"].options.poll_interval_secs == 60
    rows = {r["stream"]: r for r in stream_settings(settings)}
    assert rows["rws.DlpDetailReport"]["poll_interval_from"] == (
        "default of request_period_in_seconds (seed 004: 60 s)"
    )
    assert rows["rws.DlpDetailReport"]["settle_delay_from"] == (
        "default of override_time_delay_in_seconds (seed 004: 90000 s)"
    )
    assert rows["message_trace"]["settle_delay_from"] == (
        f"{SERVICES}.office365_reporting_MessageTrace_service.override_time_delay_in_seconds"
    )


def test_validate_prints_each_stream_with_where_each_value_came_from(tmp_path) -> None:
    layout = Layout(tmp_path)
    path = layout.config
    path.write_text(yaml.safe_dump(_per_service()), encoding="utf-8")
    result = subprocess.run(
        [sys.executable, "-m", "o365collector", "validate", "--config", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    out = result.stdout
    trace = f"{SERVICES}.office365_reporting_MessageTrace_service"
    assert f"poll interval   120 s ← {trace}.request_period_in_seconds" in out
    assert f"settle delay    5400 s ← {trace}.override_time_delay_in_seconds" in out
    assert f"reset marker    2024-05-01 ← {trace}.reset_persistence_auth" in out
    spoof = f"{SERVICES}.office365_reporting_SpoofMail_service"
    assert f"poll interval   172800 s ← {spoof}.request_period_in_seconds" in out
    atp = f"{SERVICES}.office365_reporting_AdvancedThreatProtectionTraffic_service"
    assert (
        f"poll interval   86400 s ← {atp}.request_period_in_seconds (60 s raised to one daily "
        "bucket" in out
    )
    assert "at most 10 requests/s ← inputs.office365_reporting_message.requests_per_second" in out
    assert "first lookback  86400 s ← default of collection.initial_lookback_secs" in out


def test_fresh_mode_drops_default_delays_and_keeps_given_ones(tmp_path) -> None:
    data = _seed(
        office365_reporting_MessageTrace_service={"override_time_delay_in_seconds": None},
        office365_reporting_DlpDetail_service={"override_time_delay_in_seconds": 1800},
    )
    data["o365collector"] = {"collection": {"mode": "fresh"}}
    settings = _load(tmp_path, data)
    streams = {str(s): s for s in settings.tenants[0].streams}
    assert streams["message_trace"].options.settle_delay_secs is None  # fresh: 30 s
    plan = stream_plan(settings.collection, streams["message_trace"])
    assert plan.lanes[0].name == "live"
    assert isinstance(plan.lanes[0], WatermarkLane) and plan.lanes[0].settle_secs == 30
    assert streams["rws.DlpDetailReport"].options.settle_delay_secs == 1800
    detail = stream_plan(settings.collection, streams["rws.DlpDetailReport"])
    assert isinstance(detail.lanes[0], WatermarkLane) and detail.lanes[0].settle_secs == 1800
    assert streams["rws.MailTraffic"].options.settle_delay_secs == 60  # aggregated: kept
    rows = {r["stream"]: r for r in stream_settings(settings)}
    assert rows["message_trace"]["settle_delay_from"] == "default of collection.settle_delay_secs"
    assert rows["message_trace"]["reading"].startswith("collection.mode fresh")


def test_fresh_mode_refuses_a_given_delay_at_the_horizon_naming_the_key(tmp_path) -> None:
    data = _seed(office365_reporting_DlpDetail_service={"override_time_delay_in_seconds": 90000})
    data["o365collector"] = {"collection": {"mode": "fresh"}}
    with pytest.raises(ConfigError) as info:
        _load(tmp_path, data)
    assert (
        f"{SERVICES}.office365_reporting_DlpDetail_service.override_time_delay_in_seconds: "
        "must be shorter than collection.horizon_secs (90000)"
    ) in str(info.value)


def test_a_start_time_on_one_service_starts_that_stream_only(tmp_path) -> None:
    start = datetime.now(UTC) - timedelta(days=3)
    data = _seed(
        office365_reporting_DlpDetail_service={"start_time": start.strftime("%Y-%m-%dT%H:%M:%S.%f")}
    )
    settings = _load(tmp_path, data)
    plans = {str(s): stream_plan(settings.collection, s) for s in settings.tenants[0].streams}
    lookback = plans.pop("rws.DlpDetailReport").initial_lookback_secs
    assert 3 * 86400 <= lookback <= 3 * 86400 + 60
    assert {p.initial_lookback_secs for p in plans.values()} == {86400}


def test_requests_per_second_caps_the_input_on_top_of_the_budget(tmp_path) -> None:
    data = _seed()
    data["inputs"]["office365_reporting_message"]["requests_per_second"] = 2
    settings = _load(tmp_path, data)
    budget = settings.tenants[0].budget
    assert (budget.requests, budget.window_secs, budget.requests_per_second) == (80, 300, 2)


def test_enabled_false_loads_and_says_nothing_is_collected(tmp_path) -> None:
    data = _seed()
    data["inputs"]["office365_reporting_message"]["enabled"] = False
    settings = _load(tmp_path, data)
    assert isinstance(settings, CompatSettings)
    assert settings.tenants[0].enabled is False
    text = "\n".join(describe(settings))
    assert "NOT collected (enabled: false) ← inputs.office365_reporting_message.enabled" in text


def test_native_streams_override_collection_pace(tmp_path) -> None:
    native = {
        "state_dir": str(tmp_path / "state"),
        "collection": {"mode": "fixed_delay", "fixed_delay_secs": 7200, "poll_interval_secs": 30},
        "tenants": [
            {
                "tenant_id": "contoso.onmicrosoft.com",
                "client_id": "5f6a7b8c-0000-4000-8000-0000000000cc",
                "client_secret": "s3cr3t-value",
                "streams": [
                    "message_trace",
                    {"name": "rws.MailDetailATP", "poll_interval_secs": 600,
                     "settle_delay_secs": 3600},
                ],
            }
        ],
        "sinks": [{"type": "stdout"}],
    }  # fmt: skip
    settings = parse_settings(native)
    trace, atp = settings.tenants[0].streams
    lane = _only_lane(stream_plan(settings.collection, trace))
    assert (lane.settle_secs, lane.min_window_secs) == (7200, 30)
    lane = _only_lane(stream_plan(settings.collection, atp))
    assert (lane.settle_secs, lane.min_window_secs) == (3600, 600)
    rows = {r["stream"]: r for r in stream_settings(settings)}
    assert rows["message_trace"]["poll_interval_from"] == "collection.poll_interval_secs"
    assert rows["rws.MailDetailATP"]["poll_interval_from"] == (
        "tenants[0].streams[1].poll_interval_secs"
    )
    assert rows["message_trace"]["initial_lookback_from"] == (
        "default of collection.initial_lookback_secs"
    )


def test_native_fresh_stream_delay_must_stay_under_the_horizon() -> None:
    native = {
        "tenants": [
            {
                "tenant_id": "contoso.onmicrosoft.com",
                "client_id": "5f6a7b8c-0000-4000-8000-0000000000cc",
                "client_secret": "s3cr3t-value",
                "streams": [{"name": "message_trace", "settle_delay_secs": 90000}],
            }
        ],
        "sinks": [{"type": "stdout"}],
    }
    with pytest.raises(ConfigError) as info:
        parse_settings(native)
    message = str(info.value)
    assert "tenants[0].streams[0] (message_trace): settle_delay_secs 90000 must be shorter" in (
        message
    )
    assert "collection.mode: fixed_delay" in message


def test_state_show_prints_the_effective_settings_per_stream(tmp_path) -> None:
    layout = Layout(tmp_path)
    path = layout.config
    path.write_text(yaml.safe_dump(_per_service()), encoding="utf-8")
    runner = CliRunner()
    table = runner.invoke(main, ["state", "show", "--config", str(path)])
    assert table.exit_code == 0, table.output
    dlp = f"{SERVICES}.office365_reporting_DlpDetail_service"
    assert "Effective settings (value ← where it came from):" in table.output
    assert f"poll interval   300 s ← {dlp}.request_period_in_seconds" in table.output
    shown = runner.invoke(main, ["state", "show", "--config", str(path), "--json"])
    assert shown.exit_code == 0, shown.output
    rows = {r["stream"]: r for r in json.loads(shown.output[shown.output.index("[") :])}
    row = rows["rws.DlpDetailReport"]
    assert (row["poll_interval_secs"], row["settle_delay_secs"]) == (300, 43200)
    assert row["settle_delay_from"] == f"{dlp}.override_time_delay_in_seconds"
    assert row["reset_marker"] == "2024-05-01"
    assert row["lane"] == "—"  # never run: the state's own columns are unchanged


def test_a_period_beyond_a_reports_longest_query_is_lowered_and_said(tmp_path) -> None:
    data = _seed(office365_reporting_DlpDetail_service={"request_period_in_seconds": 172800})
    settings = _load(tmp_path, data)
    streams = {str(s): s for s in settings.tenants[0].streams}
    plan = stream_plan(settings.collection, streams["rws.DlpDetailReport"])
    # RWS answers one day per query: waiting two days would leave no window ever ready
    assert _only_lane(plan).min_window_secs == plan.max_window_secs == 86400
    row = {r["stream"]: r for r in stream_settings(settings)}["rws.DlpDetailReport"]
    assert row["poll_interval_secs"] == 86400
    assert row["poll_interval_note"].startswith("172800 s lowered to 86400 s")


def test_globals_debug_asks_for_debug_logs_unless_the_command_line_says(tmp_path) -> None:
    data = _seed()
    assert data["globals"]["debug"] is True  # the seed's example
    settings = _load(tmp_path, data)
    assert isinstance(settings, CompatSettings) and settings.compat_debug
    plain = run.make_context("run", ["--config", "c.yaml"])
    assert wants_debug(settings, plain)
    explicit = run.make_context("run", ["--config", "c.yaml", "--log-level", "info"])
    assert not wants_debug(settings, explicit)
    data["globals"]["debug"] = False
    assert not wants_debug(_load(tmp_path, data), plain)
