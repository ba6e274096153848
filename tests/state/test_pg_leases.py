"""Tenant leases and fenced writes on a real PostgreSQL (state/leases.py).

Two replicas are two :class:`LeaseTable` users with pools of their own in this process;
expiry is short lease times on the database's clock.
"""

from __future__ import annotations

import pickle
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import pytest
from pg_support import PG_DSN, admin, temp_schema
from psycopg import sql

from o365collector.errors import LeaseLostError, StateError
from o365collector.state.leases import Fence, LeaseTable
from o365collector.state.postgresql import PostgresStateStore
from o365collector.state.store import Checkpoint, StateStore, dedup_scope
from o365collector.windows import TimeWindow

T0 = datetime(2024, 5, 1, tzinfo=UTC)
W1 = TimeWindow(T0, T0 + timedelta(hours=1))
W2 = TimeWindow(T0 + timedelta(hours=1), T0 + timedelta(hours=2))
MT = "message_trace"
TTL = 60.0
SHORT = 0.3  # a lease or heartbeat meant to run out during the test


@pytest.fixture
def schema() -> Iterator[str]:
    with temp_schema() as name:
        yield name


@pytest.fixture
def tables(schema: str) -> Iterator[tuple[LeaseTable, LeaseTable]]:
    """Replicas ``a`` and ``b``, live for a minute, each with its own pool."""
    a, b = LeaseTable.open(PG_DSN, schema), LeaseTable.open(PG_DSN, schema)
    a.heartbeat("a", TTL)
    b.heartbeat("b", TTL)
    yield a, b
    a.close()
    b.close()


@pytest.fixture
def stores(schema: str) -> Iterator[Callable[[Fence | None], PostgresStateStore]]:
    opened: list[PostgresStateStore] = []

    def open_store(fence: Fence | None) -> PostgresStateStore:
        store = PostgresStateStore(PG_DSN, schema=schema, fence=fence)
        opened.append(store)
        return store

    yield open_store
    for store in opened:
        store.close()


def _held(table: LeaseTable, replica: str, tenant: str) -> int:
    generation = table.acquire(tenant, replica, TTL)
    assert generation is not None
    return generation


# --- leases ---------------------------------------------------------------------------------


def test_a_free_lease_is_taken_once(tables: tuple[LeaseTable, LeaseTable]) -> None:
    a, b = tables
    assert a.acquire("contoso", "a", TTL) == 1
    assert b.acquire("contoso", "b", TTL) is None
    assert b.acquire("fabrikam", "b", TTL) == 1
    assert a.live_replicas() == ["a", "b"]
    shown = {lease.tenant: lease for lease in b.leases()}
    assert (shown["contoso"].owner, shown["contoso"].generation) == ("a", 1)
    assert shown["fabrikam"].owner == "b"
    assert shown["contoso"].active
    assert shown["contoso"].expires_at.utcoffset() == timedelta(0)


def test_renew_keeps_only_what_is_still_held(tables: tuple[LeaseTable, LeaseTable]) -> None:
    a, b = tables
    contoso, fabrikam = _held(a, "a", "contoso"), _held(b, "b", "fabrikam")
    assert a.renew("a", {"contoso": contoso}, TTL) == {"contoso"}
    assert a.renew("a", {"contoso": contoso + 1}, TTL) == set()  # not that generation
    assert a.renew("a", {"fabrikam": fabrikam}, TTL) == set()  # not its owner
    assert a.renew("a", {"contoso": contoso, "nobody": 1}, TTL) == {"contoso"}
    assert a.renew("a", {}, TTL) == set()


def test_an_expired_lease_is_taken_over_with_a_new_generation(
    tables: tuple[LeaseTable, LeaseTable],
) -> None:
    a, b = tables
    assert a.acquire("contoso", "a", SHORT) == 1
    assert b.acquire("contoso", "b", TTL) is None
    time.sleep(SHORT + 0.2)
    assert b.acquire("contoso", "b", TTL) == 2
    assert a.renew("a", {"contoso": 1}, TTL) == set()
    assert [(x.owner, x.generation) for x in a.leases()] == [("b", 2)]


def test_the_leases_of_a_replica_no_longer_live_are_taken_at_once(
    tables: tuple[LeaseTable, LeaseTable],
) -> None:
    a, b = tables
    assert a.acquire("contoso", "a", TTL) == 1
    a.heartbeat("a", SHORT)  # its last heartbeat: then it stops (paused, cut off, killed)
    time.sleep(SHORT + 0.2)
    assert b.live_replicas() == ["b"]
    assert b.acquire("contoso", "b", TTL) == 2  # long before the lease itself expires


def test_a_replica_that_is_not_live_takes_nothing(schema: str) -> None:
    table = LeaseTable.open(PG_DSN, schema)
    try:
        assert table.acquire("contoso", "ghost", TTL) is None
        table.heartbeat("ghost", TTL)
        assert table.acquire("contoso", "ghost", TTL) == 1
    finally:
        table.close()


def test_released_leases_are_free_for_others_at_once(
    tables: tuple[LeaseTable, LeaseTable],
) -> None:
    a, b = tables
    _held(a, "a", "contoso")
    _held(a, "a", "fabrikam")
    assert b.release("b", ["contoso"]) == set()  # not its own
    assert a.release("a", ["contoso", "nobody"]) == {"contoso"}
    # Handed back, not abandoned: the next owner sees no previous owner.
    assert {lease.tenant: lease.owner for lease in b.leases()}["contoso"] == ""
    assert b.acquire("contoso", "b", TTL) == 2
    assert b.acquire("fabrikam", "b", TTL) is None
    assert a.leave("a") == {"fabrikam"}
    assert {lease.tenant: lease.owner for lease in b.leases()}["fabrikam"] == ""
    assert b.live_replicas() == ["b"]
    assert b.acquire("fabrikam", "b", TTL) == 2


def test_taking_ones_own_lease_again_moves_the_generation_on(
    tables: tuple[LeaseTable, LeaseTable],
) -> None:
    a, _ = tables
    assert a.acquire("contoso", "a", TTL) == 1
    assert a.acquire("contoso", "a", TTL) == 2
    assert a.renew("a", {"contoso": 1}, TTL) == set()
    assert a.renew("a", {"contoso": 2}, TTL) == {"contoso"}


def test_replicas_racing_for_one_lease_get_it_once(schema: str) -> None:
    tables = [LeaseTable.open(PG_DSN, schema) for _ in range(6)]
    won: list[tuple[str, int | None]] = []
    start = threading.Barrier(len(tables))

    def race(n: int) -> None:
        tables[n].heartbeat(f"r{n}", TTL)
        start.wait()
        won.append((f"r{n}", tables[n].acquire("contoso", f"r{n}", TTL)))

    threads = [threading.Thread(target=race, args=(n,)) for n in range(len(tables))]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
    finally:
        for table in tables:
            table.close()
    winners = [(r, g) for r, g in won if g is not None]
    assert len(won) == 6
    assert len(winners) == 1
    assert winners[0][1] == 1


def test_a_store_shares_its_pool_with_its_lease_table(
    stores: Callable[[Fence | None], PostgresStateStore],
) -> None:
    table = stores(None).lease_table()
    table.heartbeat("a", TTL)
    assert table.acquire("contoso", "a", TTL) == 1


def test_lease_lost_errors_keep_their_tenant_through_pickling() -> None:
    error = pickle.loads(pickle.dumps(LeaseLostError("contoso", "tenant contoso: lost")))
    assert isinstance(error, LeaseLostError)
    assert (error.tenant, str(error)) == ("contoso", "tenant contoso: lost")


def test_the_fence_is_a_thread_safe_map() -> None:
    fence = Fence("a")
    fence.hold("contoso", 3)
    fence.hold("fabrikam", 1)
    fence.drop("fabrikam")
    fence.drop("never-held")
    assert fence.generation("contoso") == 3
    assert fence.generation("fabrikam") is None
    assert fence.held() == {"contoso": 3}


# --- fenced writes --------------------------------------------------------------------------

WRITES: dict[str, Callable[[StateStore], object]] = {
    "save_inflight": lambda s: s.save_inflight("contoso", MT, W2, "link-b", T0),
    "ensure_watermark": lambda s: s.ensure_watermark("contoso", MT, "final", W2.end, T0),
    "commit_window": lambda s: s.commit_window("contoso", MT, W2, T0),
    "set_status": lambda s: s.set_status("contoso", MT, "failed", "stale", T0),
    "remember": lambda s: s.remember(dedup_scope("contoso", MT), [(b"k2", "stale", 9)]),
    "record_reset_marker": lambda s: s.record_reset_marker("contoso", MT, "stale", T0),
    "reset": lambda s: s.reset("contoso", MT),
    "reset_tenant": lambda s: s.reset("contoso"),
}


def _snapshot(store: StateStore) -> tuple[object, ...]:
    return (
        store.all(),
        store.status("contoso", MT),
        store.seen_statuses([b"k1", b"k2"]),
        store.reset_markers(),
    )


def _fill(store: StateStore) -> None:
    store.save_inflight("contoso", MT, W1, "link-a", T0)
    store.set_status("contoso", MT, "ok", "", T0)
    store.remember(dedup_scope("contoso", MT), [(b"k1", "delivered", 9)])
    store.record_reset_marker("contoso", MT, "m1", T0)


@pytest.mark.parametrize("write", sorted(WRITES))
def test_a_write_fenced_with_an_old_generation_is_refused_after_a_takeover(
    tables: tuple[LeaseTable, LeaseTable],
    stores: Callable[[Fence | None], PostgresStateStore],
    write: str,
) -> None:
    a, b = tables
    fence_a, fence_b = Fence("a"), Fence("b")
    fence_a.hold("contoso", _held(a, "a", "contoso"))
    old = stores(fence_a)
    _fill(old)  # while the lease is a's, its writes pass
    a.heartbeat("a", SHORT)
    time.sleep(SHORT + 0.2)  # a stops beating (paused past its lease)
    fence_b.hold("contoso", _held(b, "b", "contoso"))
    before = _snapshot(stores(None))
    with pytest.raises(LeaseLostError) as info:
        WRITES[write](old)  # a comes back and writes as if it still held the lease
    assert info.value.tenant == "contoso"
    assert "contoso" in str(info.value) and "generation 1" in str(info.value)
    assert _snapshot(stores(None)) == before  # nothing was written
    WRITES[write](stores(fence_b))  # the new owner's write passes


def test_a_write_for_a_tenant_not_held_is_refused_without_writing(
    tables: tuple[LeaseTable, LeaseTable],
    stores: Callable[[Fence | None], PostgresStateStore],
) -> None:
    a, _ = tables
    fence = Fence("a")
    fence.hold("contoso", _held(a, "a", "contoso"))
    store = stores(fence)
    with pytest.raises(LeaseLostError, match="fabrikam: replica a holds no lease"):
        store.commit_window("fabrikam", MT, W1, T0)
    with pytest.raises(LeaseLostError):
        store.remember(dedup_scope("fabrikam", MT), [(b"k", "delivered", 9)])
    assert store.all() == []
    assert store.seen_statuses([b"k"]) == {}


def test_a_released_lease_fences_its_former_holder(
    tables: tuple[LeaseTable, LeaseTable],
    stores: Callable[[Fence | None], PostgresStateStore],
) -> None:
    a, _ = tables
    fence = Fence("a")
    fence.hold("contoso", _held(a, "a", "contoso"))
    store = stores(fence)
    store.commit_window("contoso", MT, W1, T0)
    a.release("a", ["contoso"])
    with pytest.raises(LeaseLostError):
        store.commit_window("contoso", MT, W2, T0)
    assert store.load("contoso", MT).watermark == W1.end


def test_a_fenced_store_resets_one_tenant_at_a_time(
    tables: tuple[LeaseTable, LeaseTable],
    stores: Callable[[Fence | None], PostgresStateStore],
) -> None:
    a, _ = tables
    fence = Fence("a")
    fence.hold("contoso", _held(a, "a", "contoso"))
    store = stores(fence)
    store.commit_window("contoso", MT, W1, T0)
    with pytest.raises(StateError, match="one tenant at a time"):
        store.reset()
    with pytest.raises(StateError, match="one tenant at a time"):
        store.reset(stream=MT)
    assert store.reset("contoso") == 1


def test_without_a_fence_writes_ignore_the_leases(
    tables: tuple[LeaseTable, LeaseTable],
    stores: Callable[[Fence | None], PostgresStateStore],
) -> None:
    a, _ = tables
    _held(a, "a", "contoso")
    store = stores(None)
    store.commit_window("contoso", MT, W1, T0)
    assert store.load("contoso", MT) == Checkpoint(watermark=W1.end, updated_at=T0)


def test_a_takeover_is_ordered_with_a_write_in_flight(
    schema: str,
    tables: tuple[LeaseTable, LeaseTable],
    stores: Callable[[Fence | None], PostgresStateStore],
) -> None:
    """A write that waits on a takeover's row lock sees the takeover and is refused."""
    a, _ = tables
    fence = Fence("a")
    fence.hold("contoso", _held(a, "a", "contoso"))
    store = stores(fence)
    outcome: list[BaseException | None] = []
    leases = sql.SQL("{}.leases").format(sql.Identifier(schema))
    with admin() as takeover:
        with takeover.transaction():
            takeover.execute(  # b takes the lease over; not committed yet
                sql.SQL(
                    "UPDATE {} SET owner = 'b', generation = generation + 1 WHERE tenant = %s"
                ).format(leases),
                ("contoso",),
            )

            def write() -> None:
                try:
                    store.commit_window("contoso", MT, W1, T0)
                    outcome.append(None)
                except BaseException as exc:
                    outcome.append(exc)

            writer = threading.Thread(target=write)
            writer.start()
            _wait_for_a_lock_wait(schema)
            assert outcome == []  # the write waits for the takeover
        writer.join(timeout=30)
    assert len(outcome) == 1
    assert isinstance(outcome[0], LeaseLostError)
    assert store.load("contoso", MT) == Checkpoint()


def _wait_for_a_lock_wait(schema: str) -> None:
    """Until a backend of the store waits on a row lock (the lease row)."""
    deadline = time.monotonic() + 20
    with admin() as conn:
        while time.monotonic() < deadline:
            row = conn.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                "AND application_name = 'o365collector' AND query LIKE %s",
                (f"%{schema}%",),
            ).fetchone()
            if row and row[0]:
                return
            time.sleep(0.02)
    pytest.fail("the fenced write never waited on the lease row")
