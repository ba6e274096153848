"""PostgreSQL state, shared by replicas: checkpoints, health, delivered facts and markers.

The second implementation of :class:`~o365collector.state.store.StateStore`; build it with
:func:`~o365collector.state.backend.open_state` (``state: {backend: postgresql}``). The
tables live in their own schema (:mod:`o365collector.state.pg_schema`), migrated at open.

Every call is one statement, so one round trip (``seen_statuses`` and ``commit_page`` too,
whatever the number of keys: a page costs a lookup and a commit), on a connection of a
thread-safe pool: calls may come from several threads at once. With a
:class:`~o365collector.state.leases.Fence`, each write that names a tenant carries the
lease check (:data:`~o365collector.state.leases.FENCE_CHECK`) in the same statement and
raises :class:`~o365collector.errors.LeaseLostError`, having written nothing, when the
lease has moved on.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from operator import itemgetter
from typing import Any

from o365collector.config.model import StateSettings
from o365collector.errors import LeaseLostError, StateError
from o365collector.state.leases import Fence, LeaseTable
from o365collector.state.pg_database import Connection, PgDatabase
from o365collector.state.pg_statements import statements
from o365collector.state.store import Checkpoint, LaneStep, dedup_scope
from o365collector.windows import TimeWindow, to_utc


class PostgresStateStore:
    """The state in one schema of a PostgreSQL database, shared by the replicas using it.

    Implements :class:`~o365collector.state.store.StateStore`; thread-safe.
    """

    def __init__(
        self,
        dsn: str,
        *,
        schema: str = "o365collector",
        pool_size: int = 4,
        connect_timeout_secs: float = 10.0,
        read_only: bool = False,
        fence: Fence | None = None,
    ) -> None:
        """Connect, creating or upgrading the schema (unless ``read_only``).

        ``read_only`` is for ``state show``: nothing is created, upgraded or written, and
        a schema that does not exist yet reads as empty. With ``fence``, writes naming a
        tenant apply only while its lease is held (see :mod:`o365collector.state.leases`).

        Raises:
            StateError: the database cannot be reached (the message names host, port and
                database, never the password) or holds a newer schema version.
        """
        self.read_only = read_only
        self.fence = fence
        self.database = PgDatabase(
            dsn,
            schema,
            pool_size=pool_size,
            connect_timeout_secs=connect_timeout_secs,
            migrate=not read_only,
        )
        self._absent = self.database.version is None  # read-only, and nothing written yet
        self._sql = statements(schema, fenced=fence is not None)

    @classmethod
    def from_settings(
        cls, settings: StateSettings, *, read_only: bool = False, fence: Fence | None = None
    ) -> PostgresStateStore:
        """The store ``state:`` configures (``backend: postgresql``)."""
        if settings.dsn is None:
            raise StateError("state.dsn is required with state.backend: postgresql")
        return cls(
            settings.dsn.get_secret_value(),
            schema=settings.db_schema,
            pool_size=settings.pool_size,
            connect_timeout_secs=settings.connect_timeout_secs,
            read_only=read_only,
            fence=fence,
        )

    def lease_table(self) -> LeaseTable:
        """The leases of this state, on this store's pool (closed with the store)."""
        return LeaseTable(self.database)

    def close(self) -> None:
        """Close the connection pool."""
        self.database.close()

    def load(self, tenant: str, stream: str, lane: str = "live") -> Checkpoint:
        """The checkpoint of one lane of a stream (empty if it never ran)."""
        rows = self._read("load", {"tenant": tenant, "stream": stream, "lane": lane})
        return _checkpoint(rows[0]) if rows else Checkpoint()

    def all(self) -> list[tuple[str, str, str, Checkpoint]]:
        """Every (tenant, stream, lane) checkpoint, ordered."""
        return [(r[0], r[1], r[2], _checkpoint(r[3:])) for r in self._read("all", {})]

    def lanes(self, tenant: str, stream: str) -> list[tuple[str, Checkpoint]]:
        """Every lane checkpoint of one stream."""
        rows = self._read("lanes", {"tenant": tenant, "stream": stream})
        return [(r[0], _checkpoint(r[1:])) for r in rows]

    def save_inflight(
        self,
        tenant: str,
        stream: str,
        window: TimeWindow,
        next_link: str,
        now: datetime,
        lane: str = "live",
    ) -> None:
        """Record that ``window``'s pages before ``next_link`` are delivered."""
        self.commit_page("", [], LaneStep(tenant, stream, lane, window, next_link, now))

    def ensure_watermark(
        self, tenant: str, stream: str, lane: str, watermark: datetime, now: datetime
    ) -> datetime:
        """Set a lane's first watermark unless it has one; return the lane's watermark."""
        params = _row(tenant, stream, lane, now, watermark=watermark)
        row = self._write("ensure_watermark", tenant, params, "write checkpoint")
        assert row is not None and row[1] is not None  # written, or there already
        return to_utc(row[1])

    def commit_window(
        self, tenant: str, stream: str, window: TimeWindow, now: datetime, lane: str = "live"
    ) -> None:
        """Record that all of ``window`` is delivered: the watermark moves to its end."""
        self.commit_page("", [], LaneStep(tenant, stream, lane, window, None, now))

    def set_status(self, tenant: str, stream: str, state: str, error: str, now: datetime) -> None:
        """Record a stream's health (``ok`` or ``failed`` with a redacted reason)."""
        params = {"tenant": tenant, "stream": stream, "state": state, "error": error}
        self._write("set_status", tenant, {**params, "now": to_utc(now)}, "write stream health")

    def status(self, tenant: str, stream: str) -> tuple[str, str] | None:
        """``(state, error)`` last recorded for the stream, if any."""
        rows = self._read("status", {"tenant": tenant, "stream": stream})
        return (str(rows[0][0]), str(rows[0][1])) if rows else None

    def seen_statuses(self, row_keys: list[bytes]) -> dict[bytes, str]:
        """For each already delivered row key, the ``|``-joined statuses delivered for it."""
        if not row_keys:
            return {}
        return {bytes(k): str(s) for k, s in self._read("seen", {"keys": row_keys})}

    def remember(self, scope: str, facts: list[tuple[bytes, str, int]]) -> None:
        """Record delivered facts as (row key, status, expiry epoch seconds)."""
        self.commit_page(scope, facts, None)

    def commit_page(
        self, scope: str, facts: list[tuple[bytes, str, int]], step: LaneStep | None
    ) -> None:
        """Remember a page's facts and take its lane's step: one statement, one round trip."""
        if step is None:
            if facts:
                tenant = scope.split("\x1f", 1)[0]  # see dedup_scope
                self._write("remember", tenant, _facts(scope, facts), "write dedup fingerprints")
            return
        window = step.window
        if step.next_link is None:
            name, params = (
                "commit_window",
                _row(step.tenant, step.stream, step.lane, step.now, watermark=window.end),
            )
        else:
            name, params = (
                "save_inflight",
                _row(
                    step.tenant,
                    step.stream,
                    step.lane,
                    step.now,
                    start=window.start,
                    end=window.end,
                ),
            )
            params["link"] = step.next_link
        action = "write checkpoint"
        if facts:
            name = "page_window" if step.next_link is None else "page_inflight"
            params |= _facts(scope, facts)
            action = "write dedup fingerprints and checkpoint"
        self._write(name, step.tenant, params, action)

    def expire_seen(self, now_epoch: int, scope: str | None = None) -> int:
        """Forget delivered facts whose re-read horizon has passed; returns how many rows."""
        self._writable("expire dedup fingerprints")
        params: dict[str, int | str] = {"now": now_epoch}
        sql = self._sql["expire"]
        if scope is not None:
            sql, params["scope"] = self._sql["expire_scope"], scope
        return self.database.run(
            "expire dedup fingerprints in", lambda conn: conn.execute(sql, params).rowcount
        )

    def reset(self, tenant: str | None = None, stream: str | None = None) -> int:
        """Forget checkpoints (all, one tenant's, or one stream's); returns rows removed.

        Health goes with them, and the delivered facts of the scope: all of them unless a
        tenant is named. A fenced store resets one tenant at a time (its lease).
        """
        if self.fence is not None and tenant is None:
            msg = (
                "a replica resets one tenant at a time (under its lease); reset every tenant "
                "with `o365collector state reset --all` while no replica runs"
            )
            raise StateError(msg)
        params = {
            "tenant": tenant,
            "stream": stream,
            "prefix": dedup_scope(tenant, "") if tenant is not None else None,
            "scope": (
                dedup_scope(tenant, stream) if tenant is not None and stream is not None else None
            ),
        }
        row = self._write("reset", tenant or "", params, "reset state")
        assert row is not None
        return int(row[1])

    def reset_markers(self) -> dict[tuple[str, str], str]:
        """The last ``reset_persistence_auth`` marker applied per (tenant, stream)."""
        return {(str(t), str(s)): str(m) for t, s, m in self._read("markers", {})}

    def record_reset_marker(self, tenant: str, stream: str, marker: str, now: datetime) -> None:
        """Record that ``marker`` was applied to the stream (replacing an earlier one)."""
        params = {"tenant": tenant, "stream": stream, "marker": marker, "now": to_utc(now)}
        self._write("record_reset_marker", tenant, params, "record a stream reset")

    def _read(self, name: str, params: Mapping[str, Any]) -> list[tuple[Any, ...]]:
        if self._absent:
            return []
        statement = self._sql[name]
        return self.database.run(
            f"read {name} from", lambda conn: conn.execute(statement, params).fetchall()
        )

    def _write(
        self, name: str, tenant: str, params: dict[str, Any], action: str
    ) -> tuple[Any, ...] | None:
        """Run write ``name`` (fenced on ``tenant`` if a fence is set); its first row.

        Raises:
            LeaseLostError: fenced, and the lease on ``tenant`` is no longer this replica's.
        """
        self._writable(action)
        generation = None
        if self.fence is not None:
            generation = self.fence.generation(tenant)
            if generation is None:
                raise LeaseLostError(tenant, self._lost(tenant, None))
            params |= {
                "f_tenant": tenant,
                "f_owner": self.fence.replica_id,
                "f_generation": generation,
            }
        statement = self._sql[name]

        def work(conn: Connection) -> tuple[int, tuple[Any, ...] | None]:
            cursor = conn.execute(statement, params)
            return cursor.rowcount, cursor.fetchone() if cursor.description else None

        count, row = self.database.run(f"{action} in", work)
        held = bool(row[0]) if row is not None else count > 0
        if self.fence is not None and not held:
            raise LeaseLostError(tenant, self._lost(tenant, generation))
        return row

    def _writable(self, action: str) -> None:
        if self.read_only:
            raise StateError(f"cannot {action}: {self.database.where} was opened read-only")

    def _lost(self, tenant: str, generation: int | None) -> str:
        assert self.fence is not None
        lease = f"lost its lease (generation {generation})" if generation else "holds no lease"
        return (
            f"tenant {tenant}: replica {self.fence.replica_id} {lease} in "
            f"{self.database.where}; nothing was written. Another replica took the tenant "
            "over or the lease expired: stop this tenant's work (its new owner resumes from "
            "the last commit)"
        )


def _row(
    tenant: str,
    stream: str,
    lane: str,
    now: datetime,
    *,
    watermark: datetime | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
) -> dict[str, Any]:
    """The parameters of a checkpoint upsert, times in UTC."""
    return {
        "tenant": tenant,
        "stream": stream,
        "lane": lane,
        "watermark": _utc(watermark),
        "start": _utc(start),
        "end": _utc(end),
        "link": None,
        "now": to_utc(now),
    }


def _facts(scope: str, facts: list[tuple[bytes, str, int]]) -> dict[str, Any]:
    """The parameters of a remember: facts of one key merged, keys in order.

    One statement may not update a row twice, and concurrent writers then lock rows in
    the same order.
    """
    ordered = sorted(facts, key=itemgetter(0))  # stable: a key's statuses keep their order
    keys = [key for key, _, _ in ordered]
    if len(set(keys)) == len(keys):  # one fact per key, as a page's facts nearly always are
        return {
            "scope": scope,
            "keys": keys,
            "statuses": [status for _, status, _ in ordered],
            "expiries": [expires for _, _, expires in ordered],
        }
    merged: dict[bytes, tuple[list[str], int]] = {}
    for key, status, expires in ordered:
        statuses, latest = merged.setdefault(key, ([], expires))
        if status not in statuses:
            statuses.append(status)
        merged[key] = (statuses, max(latest, expires))
    return {
        "scope": scope,
        "keys": list(merged),
        "statuses": ["|".join(statuses) for statuses, _ in merged.values()],
        "expiries": [latest for _, latest in merged.values()],
    }


def _utc(moment: datetime | None) -> datetime | None:
    return to_utc(moment) if moment is not None else None


def _checkpoint(row: tuple[Any, ...]) -> Checkpoint:
    watermark, start, end, link, updated = row
    inflight = TimeWindow(to_utc(start), to_utc(end)) if start and end else None
    return Checkpoint(
        watermark=_utc(watermark), inflight=inflight, next_link=link, updated_at=_utc(updated)
    )
