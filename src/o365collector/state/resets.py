"""``reset_persistence_auth`` bookkeeping: reset a stream once each time its marker changes."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

import structlog

from o365collector.config.compat.settings import CompatSettings, ResetMarker
from o365collector.config.model import Settings
from o365collector.errors import StateError
from o365collector.state.sqlite import SqliteStateStore
from o365collector.windows import to_utc

log = structlog.get_logger(__name__)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS stream_resets (
    tenant TEXT NOT NULL,
    stream TEXT NOT NULL,
    marker TEXT NOT NULL,
    applied_at TEXT NOT NULL,
    PRIMARY KEY (tenant, stream)
)
"""


@dataclass(frozen=True, slots=True)
class AppliedReset:
    """A stream whose state was cleared because its marker changed from ``previous``."""

    tenant: str
    stream: str
    marker: str
    previous: str | None
    checkpoints_removed: int


def apply_configured_resets(
    settings: Settings, store: SqliteStateStore, now: datetime
) -> list[AppliedReset]:
    """Apply the resets ``settings`` asks for (only Devo layouts have any; see apply_resets)."""
    if not isinstance(settings, CompatSettings):
        return []
    return apply_resets(store, settings.reset_markers(), now)


def apply_resets(
    store: SqliteStateStore, markers: Iterable[ResetMarker], now: datetime
) -> list[AppliedReset]:
    """Reset each stream whose marker differs from the last one applied, then remember it.

    Must run before the streams start. A marker never applied before counts as changed (a
    stream without state loses nothing). The reset is done before the marker is recorded,
    so a crash in between resets again on the next start rather than not at all.

    Raises:
        StateError: the state database cannot be read or written.
    """
    markers = list(markers)
    if not markers:
        return []
    applied = []
    try:
        db = sqlite3.connect(store.path, isolation_level=None)
    except sqlite3.Error as exc:
        raise StateError(f"cannot open state database {store.path}: {exc}") from exc
    try:
        db.execute("PRAGMA busy_timeout=5000")
        db.execute(_SCHEMA)
        for marker in markers:
            row = db.execute(
                "SELECT marker FROM stream_resets WHERE tenant=? AND stream=?",
                (marker.tenant, marker.stream),
            ).fetchone()
            previous = row[0] if row else None
            if previous == marker.marker:
                continue
            removed = store.reset(marker.tenant, marker.stream)
            db.execute(
                "INSERT INTO stream_resets(tenant, stream, marker, applied_at) VALUES (?,?,?,?) "
                "ON CONFLICT(tenant, stream) DO UPDATE SET marker=excluded.marker, "
                "applied_at=excluded.applied_at",
                (marker.tenant, marker.stream, marker.marker, to_utc(now).isoformat()),
            )
            applied.append(
                AppliedReset(marker.tenant, marker.stream, marker.marker, previous, removed)
            )
            first = previous is None and removed == 0
            (log.info if first else log.warning)(
                "reset_persistence_auth recorded for a stream without state."
                if first
                else "State cleared: reset_persistence_auth changed; the stream starts again.",
                tenant=marker.tenant,
                stream=marker.stream,
                parameter=marker.parameter,
                marker=marker.marker,
                previous=previous,
                checkpoints_removed=removed,
            )
    except sqlite3.Error as exc:
        raise StateError(f"cannot record a stream reset in {store.path}: {exc}") from exc
    finally:
        db.close()
    return applied


def applied_markers(store: SqliteStateStore) -> dict[tuple[str, str], str]:
    """The last marker applied per (tenant, stream), for ``state show`` and tests."""
    try:
        db = sqlite3.connect(store.path)
        try:
            db.execute(_SCHEMA)
            rows = db.execute("SELECT tenant, stream, marker FROM stream_resets").fetchall()
        finally:
            db.close()
    except sqlite3.Error as exc:
        raise StateError(f"cannot read stream resets from {store.path}: {exc}") from exc
    return {(t, s): m for t, s, m in rows}
