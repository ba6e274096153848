"""``o365collector state migrate``: copy an SQLite state into PostgreSQL, as it stands.

Checkpoints (watermarks, in-flight windows and their resume links, backfill lanes), the
delivered facts with their expiries, stream health and reset markers are copied in one
PostgreSQL transaction, so replicas started on the copy resume where the SQLite collector
stopped: nothing is read or delivered again. The caller holds the SQLite state lock, so no
collector writes the source meanwhile. Leases are not copied: replicas take them.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from o365collector.errors import StateError
from o365collector.state.pg_database import Connection, PgDatabase
from o365collector.state.sqlite import SqliteStateStore
from o365collector.windows import parse_iso

_SEP = "\x1f"  # dedup_scope's separator: a scope starts with its tenant
_TENANTS_HELD = (
    "SELECT tenant FROM {s}.checkpoints WHERE tenant = ANY(%(t)s::text[]) "
    "UNION SELECT tenant FROM {s}.stream_status WHERE tenant = ANY(%(t)s::text[]) "
    "UNION SELECT tenant FROM {s}.stream_resets WHERE tenant = ANY(%(t)s::text[]) "
    "UNION SELECT split_part(scope, chr(31), 1) FROM {s}.seen "
    "WHERE split_part(scope, chr(31), 1) = ANY(%(t)s::text[]) ORDER BY 1"
)
_FORGET = (
    "DELETE FROM {s}.checkpoints WHERE tenant = ANY(%(t)s::text[])",
    "DELETE FROM {s}.stream_status WHERE tenant = ANY(%(t)s::text[])",
    "DELETE FROM {s}.stream_resets WHERE tenant = ANY(%(t)s::text[])",
    "DELETE FROM {s}.seen WHERE split_part(scope, chr(31), 1) = ANY(%(t)s::text[])",
)
_INSERT_CHECKPOINT = (
    "INSERT INTO {s}.checkpoints (tenant, stream, lane, watermark, inflight_start, "
    "inflight_end, next_link, updated_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)"
)
_INSERT_STATUS = (
    "INSERT INTO {s}.stream_status (tenant, stream, state, error, updated_at) "
    "VALUES (%s, %s, %s, %s, %s)"
)
_INSERT_MARKER = (
    "INSERT INTO {s}.stream_resets (tenant, stream, marker, applied_at) VALUES (%s, %s, %s, %s)"
)
_COPY_SEEN = "COPY {s}.seen (row_key, scope, statuses, expires_at) FROM STDIN"


@dataclass(frozen=True, slots=True)
class MigrationReport:
    """What was copied, for the command to print."""

    tenants: list[str]
    checkpoints: int
    facts: int
    statuses: int
    markers: int
    replaced: list[str]  # tenants whose earlier PostgreSQL state --force replaced


def migrate_to_postgres(
    source: Path, target: PgDatabase, *, force: bool = False
) -> MigrationReport:
    """Copy the SQLite state at ``source`` into ``target``'s schema (already migrated).

    Refused when ``target`` already holds state (checkpoints, health, facts or markers) of
    a tenant of ``source``, unless ``force``, which replaces that tenant's state there.

    Raises:
        StateError: ``source`` is missing or unreadable, the target holds state of these
            tenants (without ``force``), or PostgreSQL refused the copy (nothing is copied).
    """
    if not source.is_file():
        msg = f"no SQLite state to migrate: {source} does not exist; check --config's state_dir"
        raise StateError(msg)
    SqliteStateStore(source).close()  # brings an older SQLite schema up to date first
    rows = _SqliteRows(source)
    try:
        tenants = rows.tenants()
        return target.run(
            "copy the state into", lambda conn: _copy(conn, target, rows, tenants, force)
        )
    finally:
        rows.close()


def _copy(
    conn: Connection, target: PgDatabase, rows: _SqliteRows, tenants: list[str], force: bool
) -> MigrationReport:
    with conn.transaction():
        held = [str(r[0]) for r in conn.execute(target.q(_TENANTS_HELD), {"t": tenants})]
        if held and not force:
            msg = (
                f"{target.where} already holds state of tenant(s) {', '.join(held)}; nothing "
                "was copied. Migrate into an empty schema (--schema), or pass --force to "
                "replace their state there with this copy"
            )
            raise StateError(msg)
        for statement in _FORGET:
            conn.execute(target.q(statement), {"t": tenants})
        with conn.cursor() as cursor:
            checkpoints = [_times(r, 3, 4, 5, 7) for r in rows.select("checkpoints")]
            cursor.executemany(target.q(_INSERT_CHECKPOINT), checkpoints)
            statuses = [_times(r, 4) for r in rows.select("stream_status")]
            cursor.executemany(target.q(_INSERT_STATUS), statuses)
            markers = [_times(r, 3) for r in rows.select("stream_resets")]
            cursor.executemany(target.q(_INSERT_MARKER), markers)
            facts = 0
            with cursor.copy(target.q(_COPY_SEEN)) as copy:
                for fact in rows.select("seen"):
                    copy.write_row(fact)
                    facts += 1
    return MigrationReport(tenants, len(checkpoints), facts, len(statuses), len(markers), held)


class _SqliteRows:
    """The raw rows of an SQLite state file, read-only."""

    _COLUMNS = {  # noqa: RUF012 - a constant table
        "checkpoints": "tenant, stream, lane, watermark, inflight_start, inflight_end, "
        "next_link, updated_at",
        "stream_status": "tenant, stream, state, error, updated_at",
        "stream_resets": "tenant, stream, marker, applied_at",
        "seen": "row_key, scope, statuses, expires_at",
    }

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            uri = path.resolve().as_uri() + "?mode=ro"
            self._db = sqlite3.connect(uri, uri=True, check_same_thread=False)
            names = self._db.execute("SELECT name FROM sqlite_master WHERE type='table'")
            self._tables = {str(row[0]) for row in names}
        except sqlite3.Error as exc:
            raise StateError(f"cannot read the SQLite state {path}: {exc}") from exc

    def tenants(self) -> list[str]:
        """Every tenant with a row in any table, sorted."""
        found = {
            str(r[0]) for table in self._COLUMNS if table != "seen" for r in self.select(table)
        }
        found |= {str(r[1]).split(_SEP, 1)[0] for r in self.select("seen")}
        return sorted(found)

    def select(self, table: str) -> Iterator[tuple[Any, ...]]:
        """Every row of ``table`` (none if the table was never created); a fact's scope is
        read by its number from ``scopes``."""
        if table not in self._tables:
            return iter(())
        query = f"SELECT {self._COLUMNS[table]} FROM {table}"  # noqa: S608
        if table == "seen":
            query = (
                "SELECT s.row_key, c.scope, s.statuses, s.expires_at FROM seen s "
                "JOIN scopes c ON c.id = s.scope_id"
            )
        try:
            return self._db.execute(query)
        except sqlite3.Error as exc:
            raise StateError(f"cannot read {table} from {self.path}: {exc}") from exc

    def close(self) -> None:
        self._db.close()


def _times(row: tuple[Any, ...], *columns: int) -> tuple[Any, ...]:
    """``row`` with the ISO texts at ``columns`` read as UTC datetimes."""
    return tuple(
        parse_iso(value) if i in columns and value is not None else value
        for i, value in enumerate(row)
    )
