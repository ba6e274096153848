"""The SQLite backend's own behaviour: files, schema versions, read-only opens, WAL.

What every backend must do is in test_state_contract.py.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from o365collector.config.loader import parse_settings
from o365collector.config.model import Settings
from o365collector.errors import StateError
from o365collector.state import sqlite as sqlite_module
from o365collector.state.backend import open_state, state_path
from o365collector.state.sqlite import SCHEMA_VERSION, SqliteStateStore
from o365collector.state.store import Checkpoint, dedup_scope
from o365collector.windows import TimeWindow

T0 = datetime(2024, 5, 1, tzinfo=UTC)
NOW = datetime(2024, 5, 2, 8, 30, 15, 123456, tzinfo=UTC)
W1 = TimeWindow(T0, T0 + timedelta(hours=1))


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "state" / "state.db"


@pytest.fixture
def store(db_path: Path) -> Iterator[SqliteStateStore]:
    opened = SqliteStateStore(db_path)
    yield opened
    opened.close()


def test_creates_the_folder(db_path: Path, store: SqliteStateStore) -> None:
    assert db_path.is_file()


def test_newer_schema_is_refused(db_path: Path) -> None:
    SqliteStateStore(db_path).close()
    raw = sqlite3.connect(db_path)
    with raw:
        raw.execute(
            "UPDATE meta SET value=? WHERE key='schema_version'", (str(SCHEMA_VERSION + 1),)
        )
    raw.close()
    with pytest.raises(StateError, match=r"newer o365collector") as info:
        SqliteStateStore(db_path)
    assert str(db_path) in str(info.value)


def test_unopenable_path_is_state_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(StateError):
        SqliteStateStore(blocker / "state.db")


def test_not_a_database_is_state_error(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    path.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(StateError, match="cannot open state database"):
        SqliteStateStore(path)


def test_schema_2_is_upgraded_keeping_every_fact_and_expiring_it_by_hour(db_path: Path) -> None:
    """Schema 2 indexed every fact's expiry; 3 keeps the facts and expires them by hour."""
    hour = b"2024-05-01T05"
    early, late, unhoured = hour + bytes(16), hour + b"\x01" * 16, b"\x02" * 16
    scope = "contoso\x1fmessage_trace"
    store = SqliteStateStore(db_path)
    store.close()
    raw = sqlite3.connect(db_path)
    with raw:  # the dedup tables as schema 2 left them
        raw.execute("DROP TABLE seen")
        raw.execute("DROP TABLE seen_hours")
        raw.execute("DROP TABLE scopes")
        raw.execute(
            "CREATE TABLE seen (row_key BLOB PRIMARY KEY, scope TEXT NOT NULL, "
            "statuses TEXT NOT NULL, expires_at INTEGER NOT NULL) WITHOUT ROWID"
        )
        raw.execute("CREATE INDEX seen_expiry ON seen(expires_at)")
        raw.executemany(
            "INSERT INTO seen VALUES (?, ?, 'delivered', ?)",
            [(early, scope, 1000), (late, scope, 3000), (unhoured, scope, 1000)],
        )
        raw.execute("UPDATE meta SET value='2' WHERE key='schema_version'")
    raw.close()

    upgraded = SqliteStateStore(db_path)
    try:
        assert set(upgraded.seen_statuses([early, late, unhoured])) == {early, late, unhoured}
        assert upgraded.expire_seen(2000) == 2
        assert set(upgraded.seen_statuses([early, late, unhoured])) == {late}
        assert upgraded.expire_seen(3001) == 1
        upgraded.remember(scope, [(late, "delivered", 5000)])  # the scope keeps its number
        upgraded.reset("contoso")
        assert upgraded.seen_statuses([late]) == {}
    finally:
        upgraded.close()
    raw = sqlite3.connect(db_path)
    indexes = {r[0] for r in raw.execute("SELECT name FROM sqlite_master WHERE type='index'")}
    version = raw.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()[0]
    raw.close()
    assert "seen_expiry" not in indexes
    assert "seen_unhoured" in indexes
    assert version == "3"


def test_a_fact_remembered_writes_no_index_of_its_expiry(db_path: Path) -> None:
    """What makes a page's commit cheap: only hourless keys are indexed by expiry."""
    store = SqliteStateStore(db_path)
    try:
        store.remember("s", [(b"2024-05-01T05" + bytes(16), "delivered", 1000)])
        store.remember("s", [(bytes(16), "delivered", 1000)])
    finally:
        store.close()
    raw = sqlite3.connect(db_path)
    indexed = raw.execute(
        "SELECT count(*) FROM seen INDEXED BY seen_unhoured "
        "WHERE length(row_key) <= 16 AND expires_at > 0"
    ).fetchone()[0]
    hours = raw.execute(
        "SELECT c.scope, h.hour, h.expires_at FROM seen_hours h JOIN scopes c ON c.id = h.scope_id"
    ).fetchall()
    raw.close()
    assert indexed == 1
    assert hours == [("s", b"2024-05-01T05", 1000)]


def test_schema_1_is_upgraded_keeping_checkpoints_and_dropping_old_dedup_keys(
    db_path: Path,
) -> None:
    store = SqliteStateStore(db_path)
    store.commit_window("contoso", "message_trace", W1, W1.end)
    store.remember("contoso/message_trace", [(b"old-format-key", "delivered", 2**40)])
    store.close()
    raw = sqlite3.connect(db_path)
    with raw:
        raw.execute("UPDATE meta SET value='1' WHERE key='schema_version'")
    raw.close()

    upgraded = SqliteStateStore(db_path)
    try:
        assert upgraded.load("contoso", "message_trace").watermark == W1.end
        assert upgraded.seen_statuses([b"old-format-key"]) == {}
        upgraded.remember("contoso/message_trace", [(b"new-key", "delivered", 2**40)])
    finally:
        upgraded.close()
    raw = sqlite3.connect(db_path)
    version = raw.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()[0]
    raw.close()
    assert int(version) == SCHEMA_VERSION == 3
    reopened = SqliteStateStore(db_path)  # a second open keeps what the new schema stored
    try:
        assert reopened.seen_statuses([b"new-key"]) == {b"new-key": "delivered"}
    finally:
        reopened.close()


def test_uses_wal(store: SqliteStateStore, db_path: Path) -> None:
    raw = sqlite3.connect(db_path)
    try:
        assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    finally:
        raw.close()


def _tables(db_path: Path) -> set[str]:
    raw = sqlite3.connect(db_path)
    try:
        return {r[0] for r in raw.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    finally:
        raw.close()


def test_reset_markers_table_is_created_on_first_use(
    store: SqliteStateStore, db_path: Path
) -> None:
    assert "stream_resets" not in _tables(db_path)
    store.record_reset_marker("contoso", "message_trace", "m1", NOW)
    assert "stream_resets" in _tables(db_path)


def test_read_only_reads_without_writing(db_path: Path) -> None:
    writer = SqliteStateStore(db_path)
    writer.commit_window("contoso", "message_trace", W1, NOW)
    writer.close()
    reader = SqliteStateStore(db_path, read_only=True)
    try:
        assert reader.load("contoso", "message_trace").watermark == W1.end
        assert reader.reset_markers() == {}  # no table yet, and none is created
        with pytest.raises(sqlite3.OperationalError, match="readonly"):
            reader.set_status("contoso", "message_trace", "ok", "", NOW)
    finally:
        reader.close()
    assert "stream_resets" not in _tables(db_path)


def test_read_only_refuses_a_missing_database(tmp_path: Path) -> None:
    with pytest.raises(StateError, match="no state yet"):
        SqliteStateStore(tmp_path / "state.db", read_only=True)


def test_read_only_refuses_a_newer_schema(db_path: Path) -> None:
    SqliteStateStore(db_path).close()
    raw = sqlite3.connect(db_path)
    with raw:
        raw.execute(
            "UPDATE meta SET value=? WHERE key='schema_version'", (str(SCHEMA_VERSION + 1),)
        )
    raw.close()
    with pytest.raises(StateError, match=r"newer o365collector"):
        SqliteStateStore(db_path, read_only=True)


# --- open_state: the factory picks SQLite in state_dir ------------------------------------


def _settings(state_dir: Path) -> Settings:
    return parse_settings(
        {
            "state_dir": str(state_dir),
            "tenants": [
                {
                    "tenant_id": "contoso.onmicrosoft.com",
                    "client_id": "5f6a7b8c-0000-4000-8000-0000000000cc",
                    "client_secret": "s3cr3t-value",
                }
            ],
            "sinks": [{"type": "stdout"}],
        }
    )


def test_open_state_is_sqlite_in_state_dir(tmp_path: Path) -> None:
    settings = _settings(tmp_path / "state")
    store = open_state(settings)
    try:
        assert isinstance(store, SqliteStateStore)
        assert store.path == state_path(settings) == tmp_path / "state" / "state.db"
        store.commit_window("contoso", "message_trace", W1, NOW)
    finally:
        store.close()
    reader = open_state(settings, read_only=True)
    try:
        assert isinstance(reader, SqliteStateStore) and reader.read_only
        assert reader.load("contoso", "message_trace").watermark == W1.end
    finally:
        reader.close()


def test_open_state_read_only_without_state_is_empty_and_creates_nothing(tmp_path: Path) -> None:
    settings = _settings(tmp_path / "state")
    reader = open_state(settings, read_only=True)
    try:
        assert reader.lanes("contoso", "message_trace") == []
        assert reader.status("contoso", "message_trace") is None
        assert reader.load("contoso", "message_trace") == Checkpoint()
    finally:
        reader.close()
    assert not (tmp_path / "state").exists()


def test_a_scope_numbered_in_a_failed_commit_is_numbered_again(db_path: Path) -> None:
    """The number a failed transaction gave a scope went with it: not reused from a cache."""
    key = b"2024-05-01T05" + bytes(16)
    scope = "fabrikam\x1fmessage_trace"
    store = SqliteStateStore(db_path)
    try:
        with pytest.raises(StateError, match="cannot write dedup fingerprints"):
            store.commit_page(scope, [(key, None, 1000)], None)  # type: ignore[list-item]
        store.remember(scope, [(key, "delivered", 2**40)])
        assert store.seen_statuses([key]) == {key: "delivered"}
        store.reset("fabrikam")  # finds the fact through its scope's number
        assert store.seen_statuses([key]) == {}
    finally:
        store.close()


def test_one_scopes_expiry_forgets_every_scopes_expired_facts_of_an_hour(db_path: Path) -> None:
    """An hour's facts of all tenants sit side by side: read once, not once per scope."""
    hour = b"2024-05-01T05"
    mine, theirs, idle = hour + bytes(16), hour + b"\x01" * 16, hour + b"\x02" * 16
    store = SqliteStateStore(db_path)
    try:
        store.remember("a\x1fmessage_trace", [(mine, "delivered", 1000)])
        store.remember("b\x1fmessage_trace", [(theirs, "delivered", 1000)])
        store.remember("c\x1fmessage_trace", [(idle, "delivered", 1000)])
        assert store.expire_seen(1500, "b\x1fmessage_trace") == 0  # b's cutoff; not an hour past
        assert store.expire_seen(4700, "a\x1fmessage_trace") == 2  # a's and b's facts go
        # c never expired anything: its facts wait for its own cutoff.
        assert set(store.seen_statuses([mine, theirs, idle])) == {idle}
        assert store.expire_seen(4700, "c\x1fmessage_trace") == 1
    finally:
        store.close()


def test_a_lookup_reads_beside_an_open_commit_and_sees_only_committed_facts(
    db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Lookups have their own connection: one run on another thread while a commit's
    # transaction is open neither waits for it nor sees its facts before they are
    # committed (the dedup's in-flight marks cover them until then).
    store = SqliteStateStore(db_path)
    scope = dedup_scope("t", "s")
    store.commit_page(scope, [(b"2026112205old", "delivered", 2**40)], None)
    inside, release = threading.Event(), threading.Event()
    hours = sqlite_module._hours

    def held_hours(number: int, facts: list[tuple[bytes, str, int]]) -> object:
        inside.set()  # the page's facts are inserted, not committed
        assert release.wait(10), "the test never released the commit"
        return hours(number, facts)

    monkeypatch.setattr(sqlite_module, "_hours", held_hours)
    commit = threading.Thread(
        target=store.commit_page, args=(scope, [(b"2026112205new", "pending", 2**40)], None)
    )
    commit.start()
    try:
        assert inside.wait(10)
        keys = [b"2026112205old", b"2026112205new"]
        assert store.seen_statuses(keys) == {b"2026112205old": "delivered"}
    finally:
        release.set()
        commit.join(10)
    assert store.seen_statuses(keys) == {
        b"2026112205old": "delivered",
        b"2026112205new": "pending",
    }
    store.close()


def test_an_in_memory_store_looks_up_what_it_remembered() -> None:
    # SQLite's private in-memory database is one connection: lookups share it.
    store = SqliteStateStore(Path(":memory:"))
    store.commit_page(dedup_scope("t", "s"), [(b"2026112205key", "delivered", 2**40)], None)
    assert store.seen_statuses([b"2026112205key"]) == {b"2026112205key": "delivered"}
    store.close()


def test_lookups_of_every_size_share_a_few_statements(store: SqliteStateStore) -> None:
    # Each distinct SQL text is a prepared statement in the connection's cache (128 of
    # them): lookups of every page size would keep ~14 MiB of statements in a daemon.
    keys = [b"2026112205" + i.to_bytes(16, "big") for i in range(1000)]
    store.commit_page(dedup_scope("t", "s"), [(k, "delivered", 2**40) for k in keys[::3]], None)
    sizes: set[int] = set()

    def trace(sql: str) -> None:
        if " IN (" in sql:
            sizes.add(sql.split(" IN (", 1)[1].count(",") + 1)

    store._reader.set_trace_callback(trace)
    for count in range(1, 1001, 7):
        found = store.seen_statuses(keys[:count])
        assert set(found) == set(keys[:count:3])
    assert max(sizes) <= 900
    assert len(sizes) <= 11, sorted(sizes)
