"""What the collector keeps between runs, as protocols split by concern (any backend).

* :class:`CheckpointStore`: per (tenant, stream, lane), the watermark, the in-flight window
  and the link to resume it from. Backfill jobs are lanes too (``backfill:<start>-<end>``,
  see :mod:`o365collector.planning.lanes`): :meth:`CheckpointStore.lanes` lists them, and a
  finished one keeps its checkpoint so that running it again reads nothing.
* :class:`StreamHealth`: the last health recorded per (tenant, stream), for ``state show``.
* :class:`DedupStore`: the facts already delivered, per row key, until their horizon.
* :class:`ResetMarkers`: the last ``reset_persistence_auth`` marker applied per stream.
* :class:`StreamState`: what one stream worker uses; :class:`StateStore`: everything, plus
  the resets that span every concern and ``close``.

Consumers take the narrowest of these; only :func:`o365collector.state.backend.open_state`
chooses and builds an implementation (:class:`~o365collector.state.sqlite.SqliteStateStore`
or :class:`~o365collector.state.postgresql.PostgresStateStore`). A backend passes
``tests/state/test_state_contract.py``.

Every write names its tenant (a dedup scope starts with it, see :func:`dedup_scope`), so a
backend shared by several collectors can fence each write with the generation of the lease
it holds on that tenant without changing these signatures.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from o365collector.windows import TimeWindow


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


@dataclass(frozen=True, slots=True)
class LaneStep:
    """How far a lane got with a page: what its checkpoint becomes once the page is committed.

    ``next_link`` set: the pages of ``window`` before it are delivered (as
    :meth:`CheckpointStore.save_inflight`); ``None``: the whole window is (as
    :meth:`CheckpointStore.commit_window`).
    """

    tenant: str
    stream: str
    lane: str
    window: TimeWindow
    next_link: str | None
    now: datetime


def dedup_scope(tenant: str, stream: str) -> str:
    """The scope under which a stream's delivered facts are remembered.

    It starts with the tenant, so a tenant's reset (and a lease on it) covers its scopes.
    """
    return f"{tenant}\x1f{stream}"


class CheckpointStore(Protocol):
    """Watermarks, in-flight windows and resume links of every lane of every stream.

    Times come back in UTC whatever offset they were saved with. A lane never seen reads
    as an empty :class:`Checkpoint`.
    """

    def load(self, tenant: str, stream: str, lane: str = "live") -> Checkpoint:
        """The checkpoint of one lane of a stream (empty if it never ran)."""
        ...

    def all(self) -> list[tuple[str, str, str, Checkpoint]]:
        """Every (tenant, stream, lane) checkpoint, ordered by tenant, stream, lane."""
        ...

    def lanes(self, tenant: str, stream: str) -> list[tuple[str, Checkpoint]]:
        """Every lane checkpoint of one stream (backfills included), ordered by lane."""
        ...

    def save_inflight(
        self,
        tenant: str,
        stream: str,
        window: TimeWindow,
        next_link: str,
        now: datetime,
        lane: str = "live",
    ) -> None:
        """Record that ``window``'s pages before ``next_link`` are delivered.

        The watermark is kept.
        """
        ...

    def ensure_watermark(
        self, tenant: str, stream: str, lane: str, watermark: datetime, now: datetime
    ) -> datetime:
        """Set a lane's first watermark unless it has one; return the lane's watermark.

        An in-flight window and its link are kept.
        """
        ...

    def commit_window(
        self, tenant: str, stream: str, window: TimeWindow, now: datetime, lane: str = "live"
    ) -> None:
        """Record that all of ``window`` is delivered.

        The watermark moves to its end (never back) and the in-flight window and link are
        cleared.
        """
        ...


class StreamHealth(Protocol):
    """The last health recorded per (tenant, stream)."""

    def set_status(self, tenant: str, stream: str, state: str, error: str, now: datetime) -> None:
        """Record a stream's health (``ok`` or ``failed`` with a redacted reason)."""
        ...

    def status(self, tenant: str, stream: str) -> tuple[str, str] | None:
        """``(state, error)`` last recorded for the stream, if any."""
        ...


class DedupStore(Protocol):
    """Facts delivered to every sink: row key → statuses, until an expiry.

    :meth:`seen_statuses` and :meth:`remember` run once per page: implementations keep
    them to one round trip each.
    """

    def seen_statuses(self, row_keys: list[bytes]) -> dict[bytes, str]:
        """For each already delivered row key, the ``|``-joined statuses delivered for it.

        Keys never remembered (or expired and forgotten) are absent. A lookup may run on
        another thread while a write runs; it sees every write that returned before it
        began (the dedup unmarks a fact in flight only after its commit returned).
        """
        ...

    def remember(self, scope: str, facts: list[tuple[bytes, str, int]]) -> None:
        """Record delivered facts as (row key, status, expiry epoch seconds).

        A status already known for a key is not repeated; a key keeps its latest expiry.
        ``scope`` is :func:`dedup_scope` of the stream.
        """
        ...

    def expire_seen(self, now_epoch: int, scope: str | None = None) -> int:
        """Forget facts whose expiry is before ``now_epoch``; returns how many keys.

        ``scope`` (see :func:`dedup_scope`): that stream's facts (``None``: every stream's).
        A stream expires its own facts, against its own lanes' progress. A backend may
        forget a fact later than asked, never earlier, and may forget other streams' facts
        past the cutoffs those streams gave it (SQLite reads an hour of every tenant's
        facts once, an hour late).
        """
        ...


class ResetMarkers(Protocol):
    """The ``reset_persistence_auth`` marker last applied per (tenant, stream)."""

    def reset_markers(self) -> dict[tuple[str, str], str]:
        """The last marker applied per (tenant, stream)."""
        ...

    def record_reset_marker(self, tenant: str, stream: str, marker: str, now: datetime) -> None:
        """Record that ``marker`` was applied to the stream (replacing an earlier one)."""
        ...


class StreamState(CheckpointStore, StreamHealth, DedupStore, Protocol):
    """What a stream worker uses: its checkpoints, its health, and dedup expiry."""

    def commit_page(
        self, scope: str, facts: list[tuple[bytes, str, int]], step: LaneStep | None
    ) -> None:
        """Commit a page: :meth:`~DedupStore.remember` ``facts``, then take the lane's ``step``.

        Both in one transaction, so in one round trip: the page's commit is whole or
        absent. ``facts`` may be empty (nothing to remember) and ``step`` ``None`` (a lane
        without a checkpoint).
        """
        ...


class StateStore(StreamState, ResetMarkers, Protocol):
    """Every concern of one collector's state, as :func:`~.backend.open_state` returns it."""

    def reset(self, tenant: str | None = None, stream: str | None = None) -> int:
        """Forget checkpoints, health and delivered facts of a scope; returns checkpoints removed.

        The scope is everything, one tenant, one stream of one tenant, or (``tenant`` left
        out) one stream of every tenant, which forgets every delivered fact: only repeats,
        never losses, can follow from forgetting too many. Reset markers are kept.
        """
        ...

    def close(self) -> None:
        """Release the backend's connections; the store is not used afterwards."""
        ...
