"""``state show`` beside a collector that is creating ``state.db`` sees "never run", not an error.

A collector creates the file and then its tables; a reader opening it in between found an
empty database ("no such table: meta") and ``state show`` exited 1.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path

import pytest

from o365collector.state import sqlite as sqlite_state
from o365collector.state.sqlite import SqliteStateStore, StateNotReadyError


def _empty_database(path: Path) -> None:
    sqlite3.connect(path).close()  # the file exists; no table yet


def test_an_empty_file_is_not_ready_after_the_wait(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sqlite_state, "SCHEMA_WAIT_SECS", 0.2)
    path = tmp_path / "state.db"
    _empty_database(path)
    with pytest.raises(StateNotReadyError, match="still being created"):
        SqliteStateStore(path, read_only=True)


def test_a_reader_waits_for_the_tables_of_a_starting_collector(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    _empty_database(path)

    def start_collector() -> None:
        time.sleep(0.3)
        SqliteStateStore(path).close()  # writes the schema

    writer = threading.Thread(target=start_collector)
    writer.start()
    try:
        store = SqliteStateStore(path, read_only=True)
    finally:
        writer.join()
    assert store.lanes("t", "message_trace") == []
    store.close()
