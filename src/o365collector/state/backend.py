"""The one place that chooses and opens the state backend: SQLite or PostgreSQL.

``state: {backend: sqlite}`` (the default) keeps the state in ``state_dir``;
``state: {backend: postgresql, dsn: …}`` in a PostgreSQL schema shared by replicas. The
PostgreSQL modules (and psycopg) are imported only when that backend is chosen. Everything
else holds a :class:`~o365collector.state.store.StateStore` or a narrower protocol of
:mod:`o365collector.state.store`.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from o365collector.config.model import Settings
from o365collector.errors import StateError
from o365collector.state.sqlite import DATABASE_FILE, SqliteStateStore, StateNotReadyError
from o365collector.state.store import StateStore

if TYPE_CHECKING:
    from o365collector.state.leases import Fence, LeaseTable


def state_path(settings: Settings) -> Path:
    """Where the SQLite backend keeps the state of ``settings``."""
    return settings.state_dir / DATABASE_FILE


def state_location(settings: Settings) -> str:
    """Where the state of ``settings`` lives, for people (never a password)."""
    state = settings.state
    if state.backend == "postgresql" and state.dsn is not None:
        from o365collector.state.pg_database import describe  # noqa: PLC0415 - psycopg

        return f"PostgreSQL {describe(state.dsn.get_secret_value())} (schema {state.db_schema})"
    return str(settings.state_dir)


def open_state(
    settings: Settings, *, read_only: bool = False, fence: Fence | None = None
) -> StateStore:
    """Open the state of ``settings``; the caller closes it.

    Writing (the default) creates or upgrades the state as needed; with SQLite the caller
    holds the state lock (:mod:`o365collector.state.lock`). ``read_only`` is for ``state
    show`` beside a running collector: nothing is created, upgraded or written, and state
    that does not exist yet reads as empty (every stream never ran). ``fence`` (PostgreSQL
    only) makes every tenant's write conditional on the replica's lease on it.

    Raises:
        StateError: the state cannot be opened (or was written by a newer collector).
        ValueError: a ``fence`` with the SQLite backend, which one process holds alone.
    """
    if settings.state.backend == "postgresql":
        from o365collector.state.postgresql import PostgresStateStore  # noqa: PLC0415

        return PostgresStateStore.from_settings(settings.state, read_only=read_only, fence=fence)
    if fence is not None:
        raise ValueError("a lease fence needs state.backend: postgresql")
    path = state_path(settings)
    if not read_only:
        return SqliteStateStore(path)
    if path.is_file():
        try:
            return SqliteStateStore(path, read_only=True)
        except StateNotReadyError:
            pass  # a collector is creating it: nothing is recorded yet
    return SqliteStateStore(Path(":memory:"))  # SQLite's name for a private in-memory database


def open_leases(settings: Settings) -> LeaseTable:
    """The lease table of a PostgreSQL state, on a small pool of its own; the caller closes it.

    Raises:
        StateError: the backend is not PostgreSQL, or the database cannot be reached.
    """
    state = settings.state
    if state.backend != "postgresql" or state.dsn is None:
        raise StateError("tenant leases need state.backend: postgresql (see docs/scale-out.md)")
    from o365collector.state.leases import LeaseTable  # noqa: PLC0415

    return LeaseTable.open(
        state.dsn.get_secret_value(),
        state.db_schema,
        connect_timeout_secs=state.connect_timeout_secs,
    )
