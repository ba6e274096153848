"""``state show``: each stream's watermark, in-flight window and lag, as a table or JSON."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson
from rich.console import Console
from rich.table import Table

from o365collector.config.model import Settings
from o365collector.state.sqlite import SqliteStateStore


def state_rows(settings: Settings, now: datetime | None = None) -> list[dict[str, Any]]:
    """One row per configured (tenant, stream), whether it ran yet or not."""
    moment = now or datetime.now(UTC)
    store = SqliteStateStore(settings.state_dir / "state.db")
    try:
        rows: list[dict[str, Any]] = []
        for tenant in settings.tenants:
            for stream in tenant.streams:
                cp = store.load(tenant.label, stream)
                lag = (moment - cp.watermark).total_seconds() if cp.watermark else None
                rows.append(
                    {
                        "tenant": tenant.label,
                        "stream": stream,
                        "watermark": cp.watermark.isoformat() if cp.watermark else None,
                        "inflight_window": str(cp.inflight) if cp.inflight else None,
                        "resumes_mid_window": cp.next_link is not None,
                        "lag_secs": round(lag, 1) if lag is not None else None,
                        "updated_at": cp.updated_at.isoformat() if cp.updated_at else None,
                    }
                )
        return rows
    finally:
        store.close()


def show_state(settings: Settings, *, as_json: bool) -> None:
    """Print :func:`state_rows` for a person (table) or a program (JSON)."""
    rows = state_rows(settings)
    console = Console()
    if as_json:
        console.out(orjson.dumps(rows, option=orjson.OPT_INDENT_2).decode(), highlight=False)
        return
    table = Table(title=f"State in {settings.state_dir}")
    for column in ("tenant", "stream", "watermark", "inflight_window", "lag_secs"):
        table.add_column(column)
    for row in rows:
        table.add_row(
            *(
                str(row[c]) if row[c] is not None else "—"
                for c in ("tenant", "stream", "watermark", "inflight_window", "lag_secs")
            )
        )
    console.print(table)
