"""The PostgreSQL backend's own behaviour: schema migration, read-only opens, errors, round trips.

What every backend does is in test_state_contract.py; this is what only PostgreSQL has. Each
test runs in its own schema of the machine's PostgreSQL (pg_support.py).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
from pg_support import PG_DSN, admin, temp_schema
from psycopg import sql

from o365collector.errors import StateError
from o365collector.state.pg_schema import SCHEMA_VERSION
from o365collector.state.postgresql import PostgresStateStore
from o365collector.state.store import LaneStep, dedup_scope
from o365collector.windows import TimeWindow

T0 = datetime(2024, 5, 1, tzinfo=UTC)
W1 = TimeWindow(T0, T0 + timedelta(hours=1))
MT = "message_trace"
PASSWORD = "Pg-Secret~0365.test"  # trust auth accepts and ignores it


@pytest.fixture
def schema() -> Iterator[str]:
    with temp_schema() as name:
        yield name


def _version(schema: str) -> list[str]:
    with admin() as conn:
        query = sql.SQL("SELECT value FROM {}.meta WHERE key = 'schema_version'")
        return [str(r[0]) for r in conn.execute(query.format(sql.Identifier(schema)))]


def _tables(schema: str) -> set[str]:
    with admin() as conn:
        rows = conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = %s", (schema,))
        return {str(r[0]) for r in rows}


def _with_password(dsn: str, password: str = PASSWORD) -> str:
    return dsn.replace("postgresql://postgres@", f"postgresql://postgres:{password}@")


# --- schema and migration -------------------------------------------------------------------


def test_opening_an_empty_database_creates_the_schema_at_the_current_version(
    schema: str,
) -> None:
    PostgresStateStore(PG_DSN, schema=schema).close()
    assert _version(schema) == [str(SCHEMA_VERSION)]
    assert _tables(schema) == {
        "meta",
        "checkpoints",
        "seen",
        "stream_status",
        "stream_resets",
        "leases",
        "replicas",
    }


def test_reopening_keeps_the_state_and_the_version(schema: str) -> None:
    store = PostgresStateStore(PG_DSN, schema=schema)
    store.commit_window("contoso", MT, W1, T0)
    store.close()
    again = PostgresStateStore(PG_DSN, schema=schema)
    try:
        assert again.load("contoso", MT).watermark == W1.end
    finally:
        again.close()
    assert _version(schema) == [str(SCHEMA_VERSION)]


def test_five_stores_starting_at_once_migrate_once_without_error(schema: str) -> None:
    start = threading.Barrier(5)
    errors: list[BaseException] = []
    stores: list[PostgresStateStore] = []
    lock = threading.Lock()

    def open_one() -> None:
        start.wait()
        try:
            store = PostgresStateStore(PG_DSN, schema=schema)
        except BaseException as exc:
            with lock:
                errors.append(exc)
            return
        with lock:
            stores.append(store)

    threads = [threading.Thread(target=open_one) for _ in range(5)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    for store in stores:
        store.close()
    assert errors == []
    assert len(stores) == 5
    assert _version(schema) == [str(SCHEMA_VERSION)]


def test_a_schema_from_a_newer_collector_is_refused(schema: str) -> None:
    PostgresStateStore(PG_DSN, schema=schema).close()
    with admin() as conn:
        query = sql.SQL("UPDATE {}.meta SET value = '99' WHERE key = 'schema_version'")
        conn.execute(query.format(sql.Identifier(schema)))
    for read_only in (False, True):
        with pytest.raises(StateError) as info:
            PostgresStateStore(PG_DSN, schema=schema, read_only=read_only)
        message = str(info.value)
        assert f"schema {schema}" in message
        assert "version 99" in message
        assert "upgrade o365collector" in message
    assert _version(schema) == ["99"]  # left as it was


def test_an_existing_schema_without_tables_is_filled(schema: str) -> None:
    """A DBA may create the schema for a role that cannot create one."""
    with admin() as conn:
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
    PostgresStateStore(PG_DSN, schema=schema).close()
    assert "checkpoints" in _tables(schema)


# --- read-only opens (state show) -----------------------------------------------------------


def test_read_only_on_a_missing_schema_reads_empty_and_creates_nothing(schema: str) -> None:
    store = PostgresStateStore(PG_DSN, schema=schema, read_only=True)
    try:
        assert store.all() == []
        assert store.lanes("contoso", MT) == []
        assert store.status("contoso", MT) is None
        assert store.seen_statuses([b"k"]) == {}
        assert store.reset_markers() == {}
    finally:
        store.close()
    assert _tables(schema) == set()


def test_read_only_reads_what_is_there_and_refuses_writes(schema: str) -> None:
    writer = PostgresStateStore(PG_DSN, schema=schema)
    writer.commit_window("contoso", MT, W1, T0)
    reader = PostgresStateStore(PG_DSN, schema=schema, read_only=True)
    try:
        assert reader.load("contoso", MT).watermark == W1.end
        with pytest.raises(StateError, match="read-only"):
            reader.commit_window("contoso", MT, W1, T0)
        with pytest.raises(StateError, match="read-only"):
            reader.remember(dedup_scope("contoso", MT), [(b"k", "delivered", 1)])
    finally:
        reader.close()
        writer.close()


# --- errors never show the password ---------------------------------------------------------


@pytest.mark.parametrize(
    ("dsn", "named"),
    [
        ("postgresql://postgres:{pw}@127.0.0.1:1/test", "127.0.0.1:1/test"),
        ("postgresql://postgres:{pw}@127.0.0.1:5432/o365_no_such_db", "o365_no_such_db"),
        ("postgresql://o365_no_such_role:{pw}@127.0.0.1:5432/test", "o365_no_such_role"),
        ("host=127.0.0.1 port=1 dbname=test user=postgres password={pw}", "127.0.0.1:1/test"),
        ("postgresql://postgres:{pw}@127.0.0.1:5432/test?sslmode=bogus", "127.0.0.1:5432/test"),
        ("host=127.0.0.1 password={pw} = broken", "state.dsn"),
    ],
)
def test_connection_errors_name_the_database_but_never_the_password(
    schema: str, dsn: str, named: str
) -> None:
    with pytest.raises(StateError) as info:
        PostgresStateStore(dsn.format(pw=PASSWORD), schema=schema, connect_timeout_secs=3)
    message = str(info.value)
    assert named in message
    assert PASSWORD not in message
    assert PASSWORD not in str(info.value.__cause__)  # logged with a traceback, if ever


def test_errors_of_a_running_store_never_show_the_password(schema: str) -> None:
    store = PostgresStateStore(_with_password(PG_DSN), schema=schema)
    try:
        with admin() as conn:
            conn.execute(sql.SQL("DROP TABLE {}.checkpoints").format(sql.Identifier(schema)))
        with pytest.raises(StateError) as info:
            store.commit_window("contoso", MT, W1, T0)
        message = str(info.value)
        assert "checkpoints" in message
        assert schema in message
        assert "127.0.0.1:5432/test" in message
        assert PASSWORD not in message
    finally:
        store.close()


def test_a_connection_the_server_dropped_is_replaced(schema: str) -> None:
    store = PostgresStateStore(PG_DSN, schema=schema, pool_size=1)
    try:
        store.commit_window("contoso", MT, W1, T0)
        with admin() as conn:
            conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE application_name = 'o365collector' AND datname = current_database() "
                "AND pid <> pg_backend_pid() AND query LIKE %s",
                (f"%{schema}%",),
            )
        assert store.load("contoso", MT).watermark == W1.end
    finally:
        store.close()


# --- round trips ----------------------------------------------------------------------------


@pytest.fixture
def statements(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every statement sent (autocommit: one round trip each), recorded as sent."""
    sent: list[str] = []
    execute = psycopg.Connection.execute

    def counting(self: psycopg.Connection[Any], query: Any, *args: Any, **kwargs: Any) -> Any:
        sent.append(query.as_string(self) if hasattr(query, "as_string") else str(query))
        return execute(self, query, *args, **kwargs)

    monkeypatch.setattr(psycopg.Connection, "execute", counting)
    return sent


def test_remember_and_seen_statuses_are_one_round_trip_whatever_the_page(
    schema: str, statements: list[str]
) -> None:
    store = PostgresStateStore(PG_DSN, schema=schema)
    try:
        keys = [i.to_bytes(4, "big") for i in range(5000)]
        facts = [(k, "delivered", 2**40) for k in keys] + [(keys[0], "pending", 1)]
        statements.clear()
        store.remember(dedup_scope("contoso", MT), facts)
        assert len(statements) == 1
        statements.clear()
        found = store.seen_statuses(keys)
        assert len(statements) == 1
        assert len(found) == 5000
        assert found[keys[0]] == "delivered|pending"
    finally:
        store.close()


def test_a_pages_commit_is_one_round_trip_facts_and_checkpoint_together(
    schema: str, statements: list[str]
) -> None:
    """Issue 19: a page costs at most two round trips, its lookup and this commit."""
    store = PostgresStateStore(PG_DSN, schema=schema)
    try:
        scope = dedup_scope("contoso", MT)
        facts = [(i.to_bytes(4, "big"), "delivered", 2**40) for i in range(5000)]
        for step in (LaneStep("contoso", MT, "live", W1, "link", T0), None):
            statements.clear()
            store.commit_page(scope, facts, step)
            assert len(statements) == 1
        statements.clear()
        store.commit_page(scope, facts[:1], LaneStep("contoso", MT, "live", W1, None, T0))
        assert len(statements) == 1
        assert store.load("contoso", MT).watermark == W1.end
        assert len(store.seen_statuses([k for k, _, _ in facts])) == 5000
    finally:
        store.close()


def test_every_write_is_one_round_trip(schema: str, statements: list[str]) -> None:
    store = PostgresStateStore(PG_DSN, schema=schema)
    try:
        writes = [
            lambda: store.save_inflight("contoso", MT, W1, "link", T0),
            lambda: store.ensure_watermark("contoso", MT, "live", T0, T0),
            lambda: store.ensure_watermark("contoso", MT, "live", W1.end, T0),
            lambda: store.commit_window("contoso", MT, W1, T0),
            lambda: store.set_status("contoso", MT, "ok", "", T0),
            lambda: store.record_reset_marker("contoso", MT, "m", T0),
            lambda: store.expire_seen(10),
            lambda: store.reset("contoso", MT),
        ]
        for write in writes:
            statements.clear()
            write()
            assert len(statements) == 1, statements
    finally:
        store.close()


def test_facts_of_one_key_in_one_page_merge_as_sqlite_merges_them(schema: str) -> None:
    store = PostgresStateStore(PG_DSN, schema=schema)
    scope = dedup_scope("contoso", MT)
    try:
        store.remember(
            scope, [(b"a", "pending", 50), (b"a", "delivered", 10), (b"a", "pending", 5)]
        )
        assert store.seen_statuses([b"a"]) == {b"a": "pending|delivered"}
        store.remember(scope, [(b"a", "failed", 1), (b"a", "delivered", 1), (b"a", "x", 1)])
        assert store.seen_statuses([b"a"]) == {b"a": "pending|delivered|failed|x"}
        assert store.expire_seen(50) == 0  # the latest expiry (50) was kept
        assert store.expire_seen(51) == 1
    finally:
        store.close()


def test_calls_from_many_threads_at_once(schema: str) -> None:
    store = PostgresStateStore(PG_DSN, schema=schema, pool_size=3)
    errors: list[BaseException] = []

    def work(n: int) -> None:
        try:
            tenant = f"t{n}"
            for hour in range(10):
                window = TimeWindow(T0 + timedelta(hours=hour), T0 + timedelta(hours=hour + 1))
                store.save_inflight(tenant, MT, window, f"link{hour}", T0)
                store.remember(dedup_scope(tenant, MT), [(f"{tenant}/{hour}".encode(), "d", 9)])
                store.commit_window(tenant, MT, window, T0)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        assert errors == []
        assert [cp.watermark for *_, cp in store.all()] == [T0 + timedelta(hours=10)] * 8
        assert (
            len(store.seen_statuses([f"t{n}/{h}".encode() for n in range(8) for h in range(10)]))
            == 80
        )
    finally:
        store.close()
