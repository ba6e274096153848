"""Each stream's lanes, watermarks, in-flight windows, lag and health, as rows (``state show``)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from o365collector.config.model import Settings
from o365collector.planning.lanes import backfill_finished
from o365collector.state.backend import open_state
from o365collector.state.store import Checkpoint


def state_rows(settings: Settings, now: datetime | None = None) -> list[dict[str, Any]]:
    """One row per (tenant, stream, lane); a stream that never ran gets one row of its own.

    Finished backfill lanes are left out (see :func:`_shown_lanes`).
    """
    moment = now or datetime.now(UTC)
    store = open_state(settings, read_only=True)  # beside a running collector, unlocked
    try:
        rows: list[dict[str, Any]] = []
        for tenant in settings.tenants:
            for stream in tenant.streams:
                status = store.status(tenant.label, stream)
                health = "unknown" if status is None else status[0]
                error = "" if status is None else status[1]
                lanes: list[tuple[str, Checkpoint | None]] = [
                    *_shown_lanes(store.lanes(tenant.label, stream))
                ] or [("—", None)]
                for lane, cp in lanes:
                    mark = cp.watermark if cp else None
                    lag = (moment - mark).total_seconds() if mark else None
                    rows.append(
                        {
                            "tenant": tenant.label,
                            "stream": stream,
                            "lane": lane,
                            "watermark": mark.isoformat() if mark else None,
                            "lag_secs": round(lag, 1) if lag is not None else None,
                            "inflight_window": str(cp.inflight) if cp and cp.inflight else None,
                            "resumes_mid_window": bool(cp and cp.next_link),
                            "health": health,
                            "error": error,
                            "updated_at": cp.updated_at.isoformat()
                            if cp and cp.updated_at
                            else None,
                        }
                    )
        return rows
    finally:
        store.close()


def _shown_lanes(lanes: list[tuple[str, Checkpoint]]) -> list[tuple[str, Checkpoint]]:
    """Every lane but finished backfills: those have nothing left to resume.

    Their checkpoints stay in the database, so running the same backfill again reads
    nothing; an interrupted backfill (watermark before its end) is shown.
    """
    return [(lane, cp) for lane, cp in lanes if not backfill_finished(lane, cp.watermark)]
