"""Changing reset_persistence_auth resets that service once, and only once, across restarts."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from o365collector.app import Collector, RunOptions
from o365collector.config.compat import CompatSettings
from o365collector.config.loader import load_settings, parse_settings
from o365collector.state.resets import applied_markers, apply_configured_resets
from o365collector.state.sqlite import SqliteStateStore
from o365collector.windows import TimeWindow
from support.compat import (
    SEED_CLOUD_JSON,
    Layout,
    emulator_for,
    native_block,
    read_jsonl,
    seed_yaml,
)

NOW = datetime(2026, 11, 22, 8, 0, tzinfo=UTC)
TRAFFIC = "office365_reporting_MailTraffic_service"


def _settings(layout: Layout, traffic_marker: str | None) -> CompatSettings:
    data = yaml.safe_load(seed_yaml())
    data["inputs"]["services"][TRAFFIC]["reset_persistence_auth"] = traffic_marker
    settings = parse_settings(data, base_dir=layout.root / "config")
    assert isinstance(settings, CompatSettings)
    return settings


def _progress(store: SqliteStateStore, tenant: str, streams: list[str]) -> None:
    window = TimeWindow(NOW - timedelta(hours=2), NOW - timedelta(hours=1))
    for stream in streams:
        store.commit_window(tenant, stream, window, NOW)


def _restart(layout: Layout, marker: str | None) -> tuple[list[str], set[str]]:
    """One start: apply resets; return the reset streams and the streams still holding state."""
    settings = _settings(layout, marker)
    store = SqliteStateStore(settings.state_dir / "state.db")
    try:
        applied = apply_configured_resets(settings, store, NOW)
        kept = {stream for _, stream, _, _ in store.all()}
        _progress(store, settings.tenants[0].label, [str(s) for s in settings.tenants[0].streams])
    finally:
        store.close()
    return [a.stream for a in applied], kept


def test_marker_change_resets_only_that_service_once(tmp_path) -> None:
    layout = Layout(tmp_path)
    reset, _ = _restart(layout, "2024-05-01")  # first start: recorded (nothing to clear)
    assert "rws.MailTraffic" in reset
    reset, kept = _restart(layout, "2024-05-01")  # same marker: nothing happens
    assert reset == []
    assert "rws.MailTraffic" in kept
    reset, kept = _restart(layout, "2024-06-01")  # changed: that service only
    assert reset == ["rws.MailTraffic"]
    assert "rws.MailTraffic" not in kept
    assert {"message_trace", "rws.DlpDetailReport"} <= kept
    for _ in range(2):  # later restarts with the same value: never again
        reset, kept = _restart(layout, "2024-06-01")
        assert reset == []
        assert "rws.MailTraffic" in kept
    reset, kept = _restart(layout, None)  # removed: no reset, the last value is kept
    assert reset == []
    assert "rws.MailTraffic" in kept
    store = SqliteStateStore(layout.root / "state" / "state.db")
    try:
        markers = applied_markers(store)
    finally:
        store.close()
    tenant = _settings(layout, None).tenants[0].label
    assert markers[(tenant, "rws.MailTraffic")] == "2024-06-01"
    assert markers[(tenant, "message_trace")] == "2024-05-01"


def test_native_settings_have_no_resets(tmp_path) -> None:
    native = {
        "state_dir": str(tmp_path / "state"),
        "tenants": [
            {
                "tenant_id": "contoso.onmicrosoft.com",
                "client_id": "5f6a7b8c-0000-4000-8000-0000000000cc",
                "client_secret": "s3cr3t-value",
            }
        ],
        "sinks": [{"type": "stdout"}],
    }
    settings = parse_settings(native)
    store = SqliteStateStore(tmp_path / "state" / "state.db")
    try:
        assert apply_configured_resets(settings, store, NOW) == []
    finally:
        store.close()


def _write_cloud(path: Path, marker: str, url: str, out: Path) -> None:
    data: dict[str, Any] = copy.deepcopy(SEED_CLOUD_JSON)
    services = data["office365_reporting_message"]["services"]
    services["office365_reporting_MessageTrace_service"]["reset_persistence_auth"] = marker
    services["office365_reporting_MessageTrace_service"]["override_time_delay_in_seconds"] = 60
    data["o365collector"] = native_block(url, sinks=[{"type": "jsonl", "path": str(out)}])
    path.write_text(json.dumps(data), encoding="utf-8")


@pytest.mark.timeout(60)
async def test_reset_redelivers_once_across_restarts(tmp_path) -> None:
    emulator = emulator_for(rows=120)
    config, out = tmp_path / "config" / "params.json", tmp_path / "out" / "events.jsonl"
    config.parent.mkdir()
    counts = []
    try:
        for marker in ("2024-05-01", "2024-05-01", "2024-07-01", "2024-07-01"):
            _write_cloud(config, marker, emulator.base_url, out)
            settings = load_settings(config)
            before = len(read_jsonl(out))
            options = RunOptions(once=True, install_signal_handlers=False)
            result = await Collector(settings, options).run()
            assert result.failures == []
            counts.append(len(read_jsonl(out)) - before)
    finally:
        emulator.stop()
    first, again, after_reset, last = counts
    assert first >= 120
    assert again == 0  # same marker: the checkpoint holds
    assert after_reset == first  # changed marker: state cleared, everything once more
    assert last == 0  # and only once
    assert (tmp_path / "state" / "state.db").is_file()
