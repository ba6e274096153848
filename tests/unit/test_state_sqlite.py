"""SQLite checkpoint store: round trips, a watermark that never goes back, resets, schema."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from o365collector.errors import StateError
from o365collector.state.sqlite import SCHEMA_VERSION, Checkpoint, SqliteStateStore
from o365collector.windows import TimeWindow

T0 = datetime(2024, 5, 1, tzinfo=UTC)
NOW = datetime(2024, 5, 2, 8, 30, 15, 123456, tzinfo=UTC)
W1 = TimeWindow(T0, T0 + timedelta(hours=1))
W2 = TimeWindow(T0 + timedelta(hours=1), T0 + timedelta(hours=2))
LINK = "https://graph.microsoft.com/v1.0/admin/exchange/tracing/messageTraces?$skiptoken=a%3D"


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "state" / "state.db"


@pytest.fixture
def store(db_path: Path) -> Iterator[SqliteStateStore]:
    opened = SqliteStateStore(db_path)
    yield opened
    opened.close()


def test_unknown_stream_is_empty(store: SqliteStateStore) -> None:
    assert store.load("contoso", "message_trace") == Checkpoint()


def test_creates_the_folder(db_path: Path, store: SqliteStateStore) -> None:
    assert db_path.is_file()


def test_inflight_round_trip(store: SqliteStateStore) -> None:
    store.save_inflight("contoso", "message_trace", W1, LINK, NOW)
    checkpoint = store.load("contoso", "message_trace")
    assert checkpoint.inflight == W1
    assert checkpoint.next_link == LINK
    assert checkpoint.watermark is None
    assert checkpoint.updated_at == NOW
    assert checkpoint.inflight is not None
    assert checkpoint.inflight.start.utcoffset() == timedelta(0)


def test_commit_moves_watermark_and_clears_inflight(store: SqliteStateStore) -> None:
    store.save_inflight("contoso", "message_trace", W1, LINK, NOW)
    store.commit_window("contoso", "message_trace", W1, NOW + timedelta(seconds=5))
    checkpoint = store.load("contoso", "message_trace")
    assert checkpoint.watermark == W1.end
    assert checkpoint.inflight is None
    assert checkpoint.next_link is None
    assert checkpoint.updated_at == NOW + timedelta(seconds=5)


def test_inflight_after_commit_keeps_watermark(store: SqliteStateStore) -> None:
    store.commit_window("contoso", "message_trace", W1, NOW)
    store.save_inflight("contoso", "message_trace", W2, LINK, NOW)
    checkpoint = store.load("contoso", "message_trace")
    assert checkpoint.watermark == W1.end
    assert checkpoint.inflight == W2
    assert checkpoint.next_link == LINK


def test_watermark_never_moves_backwards(store: SqliteStateStore) -> None:
    store.commit_window("contoso", "message_trace", W2, NOW)
    store.commit_window("contoso", "message_trace", W1, NOW)
    assert store.load("contoso", "message_trace").watermark == W2.end


def test_non_utc_times_are_stored_as_utc(store: SqliteStateStore) -> None:
    plus2 = timezone(timedelta(hours=2))
    window = TimeWindow(W1.start.astimezone(plus2), W1.end.astimezone(plus2))
    store.save_inflight("contoso", "message_trace", window, LINK, NOW.astimezone(plus2))
    checkpoint = store.load("contoso", "message_trace")
    assert checkpoint.inflight == W1
    assert checkpoint.inflight is not None
    assert checkpoint.inflight.start.utcoffset() == timedelta(0)
    assert checkpoint.updated_at == NOW


def test_streams_and_tenants_are_separate(store: SqliteStateStore) -> None:
    store.commit_window("contoso", "message_trace", W1, NOW)
    store.commit_window("fabrikam", "message_trace", W2, NOW)
    assert store.load("contoso", "message_trace").watermark == W1.end
    assert store.load("fabrikam", "message_trace").watermark == W2.end
    assert store.load("contoso", "other_stream") == Checkpoint()


def _fill(store: SqliteStateStore) -> None:
    for tenant in ("contoso", "fabrikam"):
        for stream in ("message_trace", "mail_reports"):
            store.commit_window(tenant, stream, W1, NOW)


def test_reset_one_stream(store: SqliteStateStore) -> None:
    _fill(store)
    assert store.reset("contoso", "message_trace") == 1
    assert store.load("contoso", "message_trace") == Checkpoint()
    assert store.load("contoso", "mail_reports").watermark == W1.end
    assert store.load("fabrikam", "message_trace").watermark == W1.end


def test_reset_one_tenant(store: SqliteStateStore) -> None:
    _fill(store)
    assert store.reset("fabrikam") == 2
    assert store.load("fabrikam", "message_trace") == Checkpoint()
    assert store.load("fabrikam", "mail_reports") == Checkpoint()
    assert store.load("contoso", "message_trace").watermark == W1.end


def test_reset_one_stream_of_every_tenant(store: SqliteStateStore) -> None:
    _fill(store)
    assert store.reset(stream="mail_reports") == 2
    assert store.load("contoso", "mail_reports") == Checkpoint()
    assert store.load("contoso", "message_trace").watermark == W1.end


def test_reset_all(store: SqliteStateStore) -> None:
    _fill(store)
    assert store.reset() == 4
    assert store.reset() == 0
    assert store.load("contoso", "message_trace") == Checkpoint()


def test_survives_reopen(db_path: Path) -> None:
    first = SqliteStateStore(db_path)
    first.commit_window("contoso", "message_trace", W1, NOW)
    first.save_inflight("contoso", "message_trace", W2, LINK, NOW)
    first.close()
    second = SqliteStateStore(db_path)
    try:
        checkpoint = second.load("contoso", "message_trace")
        assert checkpoint.watermark == W1.end
        assert checkpoint.inflight == W2
        assert checkpoint.next_link == LINK
    finally:
        second.close()


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
    assert int(version) == SCHEMA_VERSION == 2
    reopened = SqliteStateStore(db_path)  # a second open keeps what the new schema stored
    try:
        assert reopened.seen_statuses([b"new-key"]) == {b"new-key": "delivered"}
    finally:
        reopened.close()
