"""SQLite checkpoint store (WAL): the watermark and the in-flight window of every stream."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from o365collector.errors import StateError
from o365collector.windows import TimeWindow, parse_iso, to_utc

SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS checkpoints (
    tenant TEXT NOT NULL,
    stream TEXT NOT NULL,
    watermark TEXT,
    inflight_start TEXT,
    inflight_end TEXT,
    next_link TEXT,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (tenant, stream)
);
"""


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """Where a stream stands.

    Everything before ``watermark`` has been delivered to every sink. ``inflight`` is the
    window being read and ``next_link`` the page to continue it from; pages before it
    are delivered.
    """

    watermark: datetime | None = None
    inflight: TimeWindow | None = None
    next_link: str | None = None
    updated_at: datetime | None = None


class SqliteStateStore:
    """One SQLite file, ``{state_dir}/state.db``; safe for one collector process at a time."""

    def __init__(self, path: Path) -> None:
        """Open (creating if needed) the database."""
        self.path = path
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute("PRAGMA busy_timeout=5000")
            self._db.executescript(_SCHEMA)
            row = self._db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
            if row is None:
                self._db.execute(
                    "INSERT INTO meta(key, value) VALUES ('schema_version', ?)",
                    (str(SCHEMA_VERSION),),
                )
            elif int(row[0]) > SCHEMA_VERSION:
                msg = (
                    f"{path} was written by a newer o365collector (schema {row[0]}); "
                    "upgrade o365collector or point state_dir elsewhere"
                )
                raise StateError(msg)
        except sqlite3.Error as exc:
            msg = f"cannot open state database {path}: {exc}; check state_dir and its permissions"
            raise StateError(msg) from exc

    def close(self) -> None:
        """Close the database."""
        self._db.close()

    def load(self, tenant: str, stream: str) -> Checkpoint:
        """The stream's checkpoint (empty if it never ran)."""
        row = self._db.execute(
            "SELECT watermark, inflight_start, inflight_end, next_link, updated_at "
            "FROM checkpoints WHERE tenant=? AND stream=?",
            (tenant, stream),
        ).fetchone()
        return _row_to_checkpoint(row) if row else Checkpoint()

    def all(self) -> list[tuple[str, str, Checkpoint]]:
        """Every stream's checkpoint, ordered by tenant and stream."""
        rows = self._db.execute(
            "SELECT tenant, stream, watermark, inflight_start, inflight_end, next_link, "
            "updated_at FROM checkpoints ORDER BY tenant, stream"
        ).fetchall()
        return [(r[0], r[1], _row_to_checkpoint(r[2:])) for r in rows]

    def save_inflight(
        self, tenant: str, stream: str, window: TimeWindow, next_link: str, now: datetime
    ) -> None:
        """Record that ``window``'s pages before ``next_link`` are delivered."""
        self._upsert(tenant, stream, window, next_link, None, now)

    def commit_window(self, tenant: str, stream: str, window: TimeWindow, now: datetime) -> None:
        """Record that all of ``window`` is delivered: the watermark moves to its end."""
        self._upsert(tenant, stream, None, None, window.end, now)

    def reset(self, tenant: str | None = None, stream: str | None = None) -> int:
        """Forget checkpoints (all, one tenant's, or one stream's); returns rows removed."""
        query, args = "DELETE FROM checkpoints WHERE 1=1", []
        if tenant is not None:
            query += " AND tenant=?"
            args.append(tenant)
        if stream is not None:
            query += " AND stream=?"
            args.append(stream)
        return self._db.execute(query, args).rowcount

    def _upsert(
        self,
        tenant: str,
        stream: str,
        inflight: TimeWindow | None,
        next_link: str | None,
        watermark: datetime | None,
        now: datetime,
    ) -> None:
        current = self.load(tenant, stream)
        mark = current.watermark
        if watermark is not None and (mark is None or watermark > mark):
            mark = watermark
        try:
            self._db.execute(
                "INSERT INTO checkpoints(tenant, stream, watermark, inflight_start, "
                "inflight_end, next_link, updated_at) VALUES (?,?,?,?,?,?,?) "
                "ON CONFLICT(tenant, stream) DO UPDATE SET watermark=excluded.watermark, "
                "inflight_start=excluded.inflight_start, inflight_end=excluded.inflight_end, "
                "next_link=excluded.next_link, updated_at=excluded.updated_at",
                (
                    tenant,
                    stream,
                    _iso(mark),
                    _iso(inflight.start if inflight else None),
                    _iso(inflight.end if inflight else None),
                    next_link,
                    _iso(now),
                ),
            )
        except sqlite3.Error as exc:
            msg = f"cannot write checkpoint to {self.path}: {exc}"
            raise StateError(msg) from exc


def _iso(moment: datetime | None) -> str | None:
    return to_utc(moment).isoformat() if moment is not None else None


def _row_to_checkpoint(row: tuple[str | None, ...]) -> Checkpoint:
    watermark, start, end, link, updated = row
    inflight = TimeWindow(parse_iso(start), parse_iso(end)) if start and end else None
    return Checkpoint(
        watermark=parse_iso(watermark) if watermark else None,
        inflight=inflight,
        next_link=link,
        updated_at=parse_iso(updated) if updated else None,
    )
