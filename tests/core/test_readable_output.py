"""``state show`` and the demo's live table read well at 80 columns and piped: nothing cut."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner
from rich.console import Console

from o365collector.cli import main
from o365collector.demo import _render
from o365collector.observability.progress import Progress
from o365collector.show_state import plain_lines
from o365collector.windows import TimeWindow

BOX = set("─│┃━┏┓┗┛┡┩└┘├┤┼╇")
STREAMS = ["message_trace", "rws.DlpDetectionsReport", "rws.MailTrafficSummary"]


def _config(tmp_path: Path) -> Path:
    tenant = {
        "tenant_id": "7d1b2c3e-0000-4000-8000-00000000a001",
        "client_id": "5f6a7b8c-0000-4000-8000-00000000c001",
        "client_secret": "S3cr3t~Unit-Value.0123456789",
        "streams": STREAMS,
    }
    data = {
        "state_dir": str(tmp_path / "state"),
        "tenants": [{"name": "contoso-europe-west", **tenant}],
        "sinks": [{"type": "jsonl", "name": "file", "path": str(tmp_path / "e.jsonl")}],
    }
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


@pytest.mark.parametrize("terminal", [True, False])
def test_state_show_at_80_columns_cuts_no_stream_name(tmp_path, monkeypatch, terminal) -> None:
    if terminal:
        monkeypatch.setenv("TTY_COMPATIBLE", "1")  # rich: treat the output as a terminal
    monkeypatch.setenv("COLUMNS", "80")
    shown = CliRunner().invoke(main, ["state", "show", "--config", str(_config(tmp_path))])
    assert shown.exit_code == 0, shown.output
    assert "…" not in shown.output
    assert not BOX & set(shown.output)
    for stream in STREAMS:
        assert f"contoso-europe-west/{stream}  lane —  health unknown" in shown.output


def test_state_show_on_a_wide_terminal_is_a_table(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("TTY_COMPATIBLE", "1")
    monkeypatch.setenv("COLUMNS", "200")
    shown = CliRunner().invoke(main, ["state", "show", "--config", str(_config(tmp_path))])
    assert shown.exit_code == 0, shown.output
    assert BOX & set(shown.output)
    assert "…" not in shown.output
    assert all(stream in shown.output for stream in STREAMS)


def test_plain_state_lines_carry_every_value() -> None:
    row = {
        "tenant": "t",
        "stream": "message_trace",
        "lane": "live",
        "watermark": "2026-11-02T08:00:00+00:00",
        "lag_secs": 61.3,
        "inflight_window": "2026-11-02T08:00:00Z/2026-11-02T08:01:00Z",
        "resumes_mid_window": True,
        "health": "failed",
        "error": "consent missing: grant Reports.Read.All",
    }
    assert plain_lines([row]) == [
        "t/message_trace  lane live  health failed",
        "  watermark 2026-11-02T08:00:00+00:00  lag 61.3 s",
        "  in flight 2026-11-02T08:00:00Z/2026-11-02T08:01:00Z (resumes mid-window)",
        "  error: consent missing: grant Reports.Read.All",
    ]


@pytest.mark.parametrize("tenants", [["demo"], ["demo", "contoso"]])
def test_the_demo_table_fits_80_columns_without_cutting(tenants) -> None:
    progress = Progress()
    now = datetime.now(UTC)
    for tenant in tenants:
        for name in STREAMS:
            p = progress.stream(tenant, name)
            p.state, p.events, p.pages = "stopped", 1_234_567, 12_345
            p.late_rows, p.status_changes = 1_234, 12_345
            p.watermark = now - timedelta(seconds=75)
            p.window = TimeWindow(now - timedelta(days=1), now - timedelta(seconds=70)).short()
    console = Console(width=80, record=True, force_terminal=True)
    console.print(_render(progress))
    text = console.export_text()
    assert "…" not in text
    assert max(len(line) for line in text.splitlines()) <= 80
    for tenant in tenants:
        for name in STREAMS:
            whole = name if len(tenants) == 1 else f"{tenant}/{name}"
            assert whole in text, text
    assert "stopped" in text
