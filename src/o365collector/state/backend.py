"""The one place that chooses and opens the state backend (SQLite in ``state_dir`` today).

A second backend (PostgreSQL, configured as ``state: {backend: …}``) is chosen here from
the settings; everything else holds a :class:`~o365collector.state.store.StateStore` or a
narrower protocol of :mod:`o365collector.state.store`.
"""

from __future__ import annotations

from pathlib import Path

from o365collector.config.model import Settings
from o365collector.state.sqlite import DATABASE_FILE, SqliteStateStore
from o365collector.state.store import StateStore


def state_path(settings: Settings) -> Path:
    """Where the SQLite backend keeps the state of ``settings``."""
    return settings.state_dir / DATABASE_FILE


def open_state(settings: Settings, *, read_only: bool = False) -> StateStore:
    """Open the state of ``settings``; the caller closes it.

    Writing (the default) creates or upgrades the state as needed; the caller holds the
    state lock (:mod:`o365collector.state.lock`). ``read_only`` is for ``state show``
    beside a running collector: nothing is created, upgraded or written, and state that
    does not exist yet reads as empty (every stream never ran).

    Raises:
        StateError: the state cannot be opened (or was written by a newer collector).
    """
    path = state_path(settings)
    if not read_only:
        return SqliteStateStore(path)
    if path.is_file():
        return SqliteStateStore(path, read_only=True)
    return SqliteStateStore(Path(":memory:"))  # SQLite's name for a private in-memory database
