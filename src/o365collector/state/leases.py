"""Tenant leases of a shared PostgreSQL state: who collects which tenant, and fencing.

Replicas that share one PostgreSQL state split the tenants between them: each tenant is
leased to one replica at a time. A lease row is (tenant, owner, generation, expires_at);
every acquisition bumps the generation. A :class:`Fence` is what one replica holds
(tenant → generation): a :class:`~o365collector.state.postgresql.PostgresStateStore` built
with it applies a write that names a tenant only if the lease row still has this owner
and generation and has not expired, checked in the write's own statement with a row lock
on the lease (:data:`FENCE_CHECK`), so a takeover (an ``UPDATE`` of that row) and the
writes of the previous owner are ordered: after it, they are refused with
:class:`~o365collector.errors.LeaseLostError` and write nothing.

:class:`LeaseTable` holds the primitives (heartbeats, acquire, renew, release); the policy
that decides which tenants to take (a fair share) lives in the lease manager. Expiry is
decided by the database's clock (``now()``), never a replica's.

This module loads no database driver until :meth:`LeaseTable.open` is called, so a
SQLite collector can import :class:`Fence` for nothing.
"""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, LiteralString

from o365collector.windows import to_utc

if TYPE_CHECKING:
    from o365collector.state.pg_database import PgDatabase

# The lease check of a fenced write, as a CTE: a row only while the lease is ours. FOR SHARE
# makes a concurrent takeover wait for the write, or the write see the takeover (and fail).
FENCE_CHECK: LiteralString = (
    "SELECT 1 FROM {s}.leases WHERE tenant = %(f_tenant)s AND owner = %(f_owner)s "
    "AND generation = %(f_generation)s AND expires_at > now() FOR SHARE"
)

_HEARTBEAT: LiteralString = (
    # Rows of replicas gone for over a day are deleted on the way.
    "WITH gone AS (DELETE FROM {s}.replicas WHERE expires_at < now() - interval '1 day' "
    "AND replica_id <> %(owner)s) "
    "INSERT INTO {s}.replicas AS r (replica_id, host, pid, started_at, heartbeat_at, expires_at) "
    "VALUES (%(owner)s, %(host)s, %(pid)s, now(), now(), now() + make_interval(secs => %(ttl)s)) "
    "ON CONFLICT (replica_id) DO UPDATE SET heartbeat_at = now(), "
    "expires_at = EXCLUDED.expires_at, host = EXCLUDED.host, pid = EXCLUDED.pid"
)
_LIVE: LiteralString = (
    "SELECT replica_id FROM {s}.replicas WHERE expires_at > now() ORDER BY replica_id"
)
_ACQUIRE: LiteralString = (
    "INSERT INTO {s}.leases AS l (tenant, owner, generation, expires_at, acquired_at) "
    "SELECT %(tenant)s, %(owner)s, 1, now() + make_interval(secs => %(ttl)s), now() "
    "WHERE EXISTS (SELECT 1 FROM {s}.replicas WHERE replica_id = %(owner)s "
    "AND expires_at > now()) "
    "ON CONFLICT (tenant) DO UPDATE SET owner = EXCLUDED.owner, generation = l.generation + 1, "
    "expires_at = EXCLUDED.expires_at, acquired_at = EXCLUDED.acquired_at "
    "WHERE l.expires_at <= now() OR l.owner = EXCLUDED.owner OR NOT EXISTS ("
    "SELECT 1 FROM {s}.replicas WHERE replica_id = l.owner AND expires_at > now()) "
    "RETURNING l.generation"
)
_RENEW: LiteralString = (
    "WITH beat AS (UPDATE {s}.replicas SET heartbeat_at = now(), "
    "expires_at = now() + make_interval(secs => %(beat_ttl)s) WHERE replica_id = %(owner)s) "
    "UPDATE {s}.leases AS l SET expires_at = now() + make_interval(secs => %(ttl)s) "
    "FROM unnest(%(tenants)s::text[], %(generations)s::bigint[]) AS h(tenant, generation) "
    "WHERE l.tenant = h.tenant AND l.generation = h.generation AND l.owner = %(owner)s "
    "AND l.expires_at > now() RETURNING l.tenant"
)
_RELEASE: LiteralString = (
    "UPDATE {s}.leases SET expires_at = now(), owner = '' WHERE owner = %(owner)s "
    "AND tenant = ANY(%(tenants)s::text[]) AND expires_at > now() RETURNING tenant"
)
_LEAVE: LiteralString = (
    "WITH gone AS (UPDATE {s}.replicas SET expires_at = now() WHERE replica_id = %(owner)s) "
    "UPDATE {s}.leases SET expires_at = now(), owner = '' WHERE owner = %(owner)s "
    "AND expires_at > now() RETURNING tenant"
)
_LEASES: LiteralString = (
    "SELECT tenant, owner, generation, expires_at, acquired_at, expires_at > now() "
    "FROM {s}.leases ORDER BY tenant"
)


class Fence:
    """The leases one replica holds, which its writes carry: tenant → generation.

    Thread-safe: the lease manager changes it while stream workers write through a store
    built with it. A tenant not held here is refused without a round trip.
    """

    def __init__(self, replica_id: str) -> None:
        """An empty fence for ``replica_id`` (the ``owner`` of its lease rows)."""
        self.replica_id = replica_id
        self._lock = threading.Lock()
        self._held: dict[str, int] = {}

    def hold(self, tenant: str, generation: int) -> None:
        """Record that ``tenant``'s lease of ``generation`` is held (after acquire)."""
        with self._lock:
            self._held[tenant] = generation

    def drop(self, tenant: str) -> None:
        """Forget ``tenant`` (released or lost): its writes are refused from now on."""
        with self._lock:
            self._held.pop(tenant, None)

    def generation(self, tenant: str) -> int | None:
        """The generation held for ``tenant``, if any."""
        with self._lock:
            return self._held.get(tenant)

    def held(self) -> dict[str, int]:
        """A copy of every lease held (what :meth:`LeaseTable.renew` takes)."""
        with self._lock:
            return dict(self._held)


@dataclass(frozen=True, slots=True)
class Lease:
    """One lease row, for display: ``active`` is ``expires_at`` after the database's now."""

    tenant: str
    owner: str
    generation: int
    expires_at: datetime
    acquired_at: datetime
    active: bool


class LeaseTable:
    """The lease and replica rows of one PostgreSQL state schema; thread-safe.

    Each method is one statement (one round trip). A replica heartbeats (or renews) before
    it acquires, and keeps doing so: a replica whose heartbeat has expired is no longer
    live, and its leases may be taken before they expire.
    """

    def __init__(self, database: PgDatabase, *, owned: bool = False) -> None:
        """Use ``database`` (shared with a store, or ``owned`` and closed with this)."""
        self._db = database
        self._owned = owned
        self.where = database.where

    @classmethod
    def open(
        cls, dsn: str, schema: str, *, connect_timeout_secs: float = 10.0, pool_size: int = 2
    ) -> LeaseTable:
        """Connect with a small pool of its own (creating or upgrading the schema).

        Its own pool keeps renewals from waiting behind the store's writes.

        Raises:
            StateError: the database cannot be reached, or holds a newer schema.
        """
        from o365collector.state.pg_database import PgDatabase  # noqa: PLC0415 - psycopg

        database = PgDatabase(
            dsn, schema, pool_size=pool_size, connect_timeout_secs=connect_timeout_secs
        )
        return cls(database, owned=True)

    def close(self) -> None:
        """Close the pool if this table owns it."""
        if self._owned:
            self._db.close()

    def heartbeat(self, replica_id: str, ttl_secs: float) -> None:
        """Mark ``replica_id`` live for ``ttl_secs`` more (registering it the first time).

        Rows of replicas gone for more than a day are deleted on the way.
        """
        params = {"owner": replica_id, "ttl": ttl_secs, "host": socket.gethostname()}
        params["pid"] = os.getpid()
        self._db.run(
            "record a replica heartbeat in",
            lambda conn: conn.execute(self._db.q(_HEARTBEAT), params),
        )

    def live_replicas(self) -> list[str]:
        """The replicas whose heartbeat has not expired, by id."""
        rows = self._db.run(
            "read the replicas of", lambda conn: conn.execute(self._db.q(_LIVE)).fetchall()
        )
        return [str(row[0]) for row in rows]

    def acquire(self, tenant: str, replica_id: str, ttl_secs: float) -> int | None:
        """Take ``tenant``'s lease for ``ttl_secs``; returns its new generation, or ``None``.

        It is taken when free, expired, owned by a replica that is no longer live, or
        already ``replica_id``'s own; the generation moves on in every case, so writes
        fenced with an older one are refused. ``None``: another live replica holds it, or
        ``replica_id`` itself is not live (heartbeat first).
        """
        params = {"tenant": tenant, "owner": replica_id, "ttl": ttl_secs}
        row = self._db.run(
            "acquire a tenant lease in",
            lambda conn: conn.execute(self._db.q(_ACQUIRE), params).fetchone(),
        )
        return int(row[0]) if row else None

    def renew(
        self,
        replica_id: str,
        held: Mapping[str, int],
        ttl_secs: float,
        *,
        heartbeat_secs: float | None = None,
    ) -> set[str]:
        """Extend the leases ``held`` (tenant → generation) by ``ttl_secs``; heartbeat too.

        The heartbeat lasts ``heartbeat_secs`` (default ``ttl_secs``). Returns the tenants
        still held. A lease that expired or moved to another owner or generation is not
        renewed, even if nobody took it yet: acquire it again.
        """
        params = {
            "owner": replica_id,
            "ttl": ttl_secs,
            "beat_ttl": ttl_secs if heartbeat_secs is None else heartbeat_secs,
            "tenants": list(held),
            "generations": list(held.values()),
        }
        rows = self._db.run(
            "renew tenant leases in",
            lambda conn: conn.execute(self._db.q(_RENEW), params).fetchall(),
        )
        return {str(row[0]) for row in rows}

    def release(self, replica_id: str, tenants: Iterable[str]) -> set[str]:
        """Hand ``tenants`` back (on shutdown): they expire now, free for others at once.

        The owner is cleared: whoever acquires the tenant next resumes from a clean
        hand-back, not a takeover.

        Returns the tenants released (those ``replica_id`` still held).
        """
        params = {"owner": replica_id, "tenants": list(tenants)}
        rows = self._db.run(
            "release tenant leases in",
            lambda conn: conn.execute(self._db.q(_RELEASE), params).fetchall(),
        )
        return {str(row[0]) for row in rows}

    def leave(self, replica_id: str) -> set[str]:
        """Release every lease of ``replica_id`` and mark it gone; returns the tenants."""
        rows = self._db.run(
            "release the leases of a leaving replica in",
            lambda conn: conn.execute(self._db.q(_LEAVE), {"owner": replica_id}).fetchall(),
        )
        return {str(row[0]) for row in rows}

    def leases(self) -> list[Lease]:
        """Every lease row (held, expired or released), ordered by tenant."""
        rows = self._db.run(
            "read the leases of", lambda conn: conn.execute(self._db.q(_LEASES)).fetchall()
        )
        return [
            Lease(str(t), str(o), int(g), to_utc(e), to_utc(a), bool(active))
            for t, o, g, e, a, active in rows
        ]
