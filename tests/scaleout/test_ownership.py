"""The lease manager on a real PostgreSQL lease table: shares, hand-backs, losses, shutdown."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
from pg_support import PG_DSN, admin, temp_schema
from psycopg import sql

from o365collector.scaleout.ownership import TenantOwnership
from o365collector.scaleout.runs import TenantRuns
from o365collector.state.leases import Fence, LeaseTable
from support import FakeClock

TENANTS = [f"tenant-{i:02d}" for i in range(12)]
LEASE = 8.0


@pytest.fixture
def schema() -> Iterator[str]:
    with temp_schema() as name:
        yield name


class Replica:
    """One replica's lease manager whose tenant work just records that it runs."""

    def __init__(self, name: str, schema: str) -> None:
        self.table = LeaseTable.open(PG_DSN, schema)
        self.running: set[str] = set()
        self.drained: list[str] = []
        self.taken_over: list[str] = []  # started after a previous owner stopped unannounced
        self.drain_gate = asyncio.Event()  # cleared: a stopped tenant's drain hangs
        self.drain_gate.set()
        self.ownership = TenantOwnership(
            self.table,
            Fence(name),
            TENANTS,
            TenantRuns(self._work),
            FakeClock(),
            lease_secs=LEASE,
        )

    async def _work(self, tenant: str, stop: asyncio.Event, takeover: bool) -> None:
        if takeover:
            self.taken_over.append(tenant)
        self.running.add(tenant)
        try:
            await stop.wait()
            await self.drain_gate.wait()
        finally:
            self.running.discard(tenant)
            self.drained.append(tenant)

    @property
    def held(self) -> set[str]:
        return set(self.ownership.fence.held())

    async def round(self) -> None:
        await self.ownership.round()
        for _ in range(5):  # let started and stopped work run
            await asyncio.sleep(0)

    async def close(self) -> None:
        await self.ownership.hand_back_all()
        self.table.close()


async def _settle(replicas: list[Replica], rounds: int = 4) -> None:
    for _ in range(rounds):
        for replica in replicas:
            await replica.round()
    for replica in replicas:  # hand-backs drain in the background
        await asyncio.gather(*replica.ownership._leaving.values())


async def test_replicas_split_the_tenants_and_run_exactly_what_they_hold(schema: str) -> None:
    replicas = [Replica(f"r{i}", schema) for i in range(3)]
    try:
        await _settle(replicas)
        held = [r.held for r in replicas]
        assert sorted(len(h) for h in held) == [4, 4, 4]
        assert set().union(*held) == set(TENANTS)
        assert sum(len(h) for h in held) == len(TENANTS)  # none twice
        for replica in replicas:
            assert replica.running == replica.held
    finally:
        for replica in replicas:
            await replica.close()


async def test_a_joining_replica_gets_tenants_the_others_drained_first(schema: str) -> None:
    first, second = Replica("r1", schema), Replica("r2", schema)
    try:
        await _settle([first])
        assert first.held == set(TENANTS)
        await second.round()  # registers; live replicas are now two
        await _settle([first, second])
        assert len(first.held) == 6 and len(second.held) == 6
        given = set(TENANTS) - first.held
        assert given <= set(first.drained)  # stopped (drained) before it was released
        assert second.running == second.held == given
        assert second.taken_over == []  # handed back cleanly: nothing may come twice
    finally:
        await first.close()
        await second.close()


async def test_a_lost_lease_stops_the_work_and_fences_it_at_once(schema: str) -> None:
    victim, thief = Replica("victim", schema), Replica("thief", schema)
    try:
        await _settle([victim])
        tenant = sorted(victim.held)[0]
        # Another replica takes the tenant (as after a pause past the lease).
        await asyncio.to_thread(thief.table.heartbeat, "thief", LEASE)
        with admin() as conn:  # the victim's lease runs out (it was paused)
            conn.execute(
                sql.SQL("UPDATE {}.leases SET expires_at = now() WHERE tenant = %s").format(
                    sql.Identifier(schema)
                ),
                (tenant,),
            )
        generation = await asyncio.to_thread(thief.table.acquire, tenant, "thief", LEASE)
        assert generation is not None
        await victim.round()
        assert tenant not in victim.held
        assert victim.ownership.fence.generation(tenant) is None  # its writes are refused
        await asyncio.gather(*victim.ownership._stopping)
        assert tenant not in victim.running and tenant in victim.drained
    finally:
        await victim.close()
        thief.table.close()


async def test_shutdown_drains_everything_and_frees_the_leases_for_others(schema: str) -> None:
    leaving, staying = Replica("leaving", schema), Replica("staying", schema)
    try:
        await _settle([leaving])
        await leaving.close()
        assert leaving.running == set() and sorted(leaving.drained) == TENANTS
        assert leaving.held == set()
        await _settle([staying], rounds=1)  # no waiting for the leases to expire
        assert staying.held == set(TENANTS)
    finally:
        await staying.close()


async def test_a_lost_tenant_is_not_taken_again_until_its_old_work_has_drained(
    schema: str,
) -> None:
    victim, thief = Replica("victim", schema), Replica("thief", schema)
    try:
        await _settle([victim])
        tenant = sorted(victim.held)[0]
        await asyncio.to_thread(thief.table.heartbeat, "thief", LEASE)
        with admin() as conn:
            conn.execute(
                sql.SQL("UPDATE {}.leases SET expires_at = now() WHERE tenant = %s").format(
                    sql.Identifier(schema)
                ),
                (tenant,),
            )
        assert await asyncio.to_thread(thief.table.acquire, tenant, "thief", LEASE)
        victim.drain_gate.clear()  # the lost tenant's last pages take a while to commit
        await victim.round()
        assert tenant not in victim.held and tenant in victim.running
        # The thief leaves while the victim's old work is still draining.
        await asyncio.to_thread(thief.table.leave, "thief")
        await victim.round()
        assert tenant not in victim.held  # free, but its old work has not ended
        victim.drain_gate.set()
        await asyncio.gather(*victim.ownership._stopping)
        await victim.round()
        assert tenant in victim.held and tenant in victim.running  # taken and collected
    finally:
        await victim.close()
        thief.table.close()


async def test_a_restart_waits_for_the_previous_run_of_the_tenant_to_end() -> None:
    events: list[str] = []
    gate = asyncio.Event()

    async def work(tenant: str, stop: asyncio.Event, takeover: bool) -> None:
        events.append("start")
        await stop.wait()
        await gate.wait()
        events.append("end")

    runs = TenantRuns(work)
    runs.start("t")
    await asyncio.sleep(0)
    stopping = asyncio.create_task(runs.stop("t"))
    await asyncio.sleep(0)
    runs.start("t")  # while the first run still drains
    await asyncio.sleep(0)
    assert events == ["start"]
    gate.set()
    await stopping
    for _ in range(5):
        await asyncio.sleep(0)
    assert events == ["start", "end", "start"]
    assert runs.running() == ["t"]
    await runs.stop("t")
    assert events[-1] == "end" and runs.running() == []


async def test_tenants_of_a_replica_that_vanished_are_started_as_takeovers(schema: str) -> None:
    gone, survivor = Replica("gone", schema), Replica("survivor", schema)
    try:
        await _settle([gone, survivor])
        lost = set(gone.held)
        assert lost
        with admin() as conn:  # "gone" stops heartbeating (SIGKILL) and its leases run out
            conn.execute(
                sql.SQL(
                    "UPDATE {}.replicas SET expires_at = now() WHERE replica_id = 'gone'"
                ).format(sql.Identifier(schema))
            )
        await _settle([survivor], rounds=2)
        assert survivor.held == set(TENANTS)
        assert set(survivor.taken_over) == lost
    finally:
        await asyncio.gather(*(gone.ownership.work.stop(t) for t in TENANTS))
        await survivor.close()
        gone.table.close()
