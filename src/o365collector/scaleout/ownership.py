"""The lease manager: keeps this replica's fair share of tenant leases and runs their work.

Every ``check_every_secs`` (a quarter of the lease period by default) a round:

1. renews the leases held (which heartbeats the replica too). A lease that could not be
   renewed is *lost*: it is dropped from the fence first, so the tenant's next state
   write is refused, and the tenant's work is stopped;
2. reads the lease table and the live replicas, and computes the fair share
   (:mod:`o365collector.scaleout.share`);
3. above the share (a replica joined), hands tenants back: their work is stopped and
   drained (every acknowledged page committed), then the lease is released so another
   replica takes the tenant at once;
4. below it, acquires free tenants (never leased, released, expired, or held by a
   replica whose heartbeat stopped) and starts their work.

A replica is live while its heartbeat is younger than the lease period minus one round,
so the tenants of a replica that died are taken over within one lease period of its last
heartbeat. Its unexpired leases can be taken then because every acquisition bumps the
generation that fences the old owner's writes (:class:`~o365collector.state.leases.Fence`).
On stop, every tenant's work is drained and every lease handed back.

The lease table's calls are blocking (one round trip each); they run in a thread.
"""

from __future__ import annotations

import asyncio
import functools
import os
import secrets
import socket
from collections.abc import Sequence
from dataclasses import dataclass, field

import structlog

from o365collector.clock import Clock
from o365collector.errors import StateError
from o365collector.observability import metrics
from o365collector.scaleout.runs import TenantRuns
from o365collector.scaleout.share import preference, rebalance
from o365collector.state.leases import Fence, LeaseTable

log = structlog.get_logger(__name__)


def new_replica_id() -> str:
    """A replica id unique to this process: host, pid and a random suffix."""
    return f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}"


@dataclass
class OwnershipStatus:
    """What ``/readyz`` and the demo display read."""

    held: set[str] = field(default_factory=set)
    last_renewal: float | None = None  # the clock's monotonic seconds
    error: str = ""


class TenantOwnership:
    """Holds this replica's share of the tenants and runs exactly their work."""

    def __init__(
        self,
        leases: LeaseTable,
        fence: Fence,
        tenants: Sequence[str],
        work: TenantRuns,
        clock: Clock,
        *,
        lease_secs: float,
        check_every_secs: float | None = None,
    ) -> None:
        """Manage ``tenants``' leases for ``fence.replica_id``; :meth:`run` until stopped."""
        self.leases = leases
        self.fence = fence
        self.replica_id = fence.replica_id
        self.tenants = list(tenants)
        self.work = work
        self.clock = clock
        self.lease_secs = lease_secs
        self.every = check_every_secs if check_every_secs is not None else lease_secs / 4
        # Live while the heartbeat is younger than this: a dead replica's tenants are
        # taken over at most one round after, i.e. within one lease period.
        self.heartbeat_secs = max(self.every, lease_secs - self.every)
        self.status = OwnershipStatus()
        self._leaving: dict[str, asyncio.Task[None]] = {}  # being drained, still renewed
        self._stopping: set[asyncio.Task[None]] = set()  # work of lost leases, stopping
        metrics.LEASE_OLDEST_RENEWAL_AGE.set_function(self._renewal_age)

    async def run(self, stop: asyncio.Event) -> None:
        """Rounds until ``stop``; then drain every tenant and hand every lease back."""
        try:
            while not stop.is_set():
                try:
                    await self.round()
                except StateError as exc:
                    # The database is unreachable: keep what is held until renewal fails
                    # for good (the fence refuses writes once a lease has moved on).
                    self.status.error = str(exc)
                    metrics.ERRORS.labels(stage="leases", error_type="state").inc()
                    log.error("Cannot reach the lease table; retrying.", error=str(exc))
                await _wait(stop, self.every)
        finally:
            await self.hand_back_all()

    async def run_once(self) -> None:
        """``--once``: take every tenant no live replica holds, catch up, hand back.

        Tenants another live replica holds are left to it (and named in the log).
        """
        try:
            await self._renew()
            live = await asyncio.to_thread(self.leases.live_replicas)
            rows = await asyncio.to_thread(self.leases.leases)
            busy = {r.tenant: r.owner for r in rows if r.active and r.owner in live}
            busy = {t: o for t, o in busy.items() if o != self.replica_id}
            previous = {r.tenant: r.owner for r in rows}
            for tenant in preference(self.replica_id, set(self.tenants) - busy.keys()):
                await self._acquire(tenant, previous.get(tenant))
            if busy:
                log.warning(
                    "Tenants held by other running replicas are left to them.",
                    tenants=sorted(busy),
                )
            self._publish()
            work = asyncio.create_task(self.work.wait_all())
            while not work.done():
                await asyncio.wait({work}, timeout=self.every)
                if not work.done():
                    await self._renew()
        finally:
            await self.hand_back_all()

    async def round(self) -> None:
        """One round: renew, then take or give back towards the fair share."""
        await self._renew()
        live = await asyncio.to_thread(self.leases.live_replicas)
        rows = await asyncio.to_thread(self.leases.leases)
        busy = {r.tenant: r.owner for r in rows if r.active and r.owner in live}
        mine = set(self.fence.held())
        # A tenant lost earlier whose old work is still stopping is not free yet: taking it
        # now would hand the new lease's generation to work that is on its way out.
        stopping = set(self.work.running()) - mine
        free = [t for t in self.tenants if t not in busy and t not in mine | stopping]
        moves = rebalance(
            self.replica_id,
            held=mine - self._leaving.keys(),
            free=free,
            tenants=len(self.tenants),
            live_replicas=max(1, len(live)),
        )
        for tenant in moves.give_back:
            self._leaving[tenant] = asyncio.create_task(self._give_back(tenant))
        previous = {r.tenant: r.owner for r in rows}
        won = 0
        for tenant in moves.take:
            if won >= moves.room:
                break
            if await self._acquire(tenant, previous.get(tenant)):
                won += 1
        self._publish()

    async def _renew(self) -> None:
        """Heartbeat and renew every lease held; stop the work of those lost."""
        held = self.fence.held()
        await asyncio.to_thread(self.leases.heartbeat, self.replica_id, self.heartbeat_secs)
        kept = await asyncio.to_thread(
            functools.partial(
                self.leases.renew,
                self.replica_id,
                held,
                self.lease_secs,
                heartbeat_secs=self.heartbeat_secs,
            )
        )
        self.status.last_renewal = self.clock.monotonic()
        self.status.error = ""
        self._lose(sorted(held.keys() - kept))

    async def _acquire(self, tenant: str, previous_owner: str | None) -> bool:
        generation = await asyncio.to_thread(
            self.leases.acquire, tenant, self.replica_id, self.lease_secs
        )
        if generation is None:
            return False  # another replica won the race
        self.fence.hold(tenant, generation)
        takeover = previous_owner not in (None, "", self.replica_id)  # "": handed back
        metrics.LEASE_CHANGES.labels(change="takeover" if takeover else "acquired").inc()
        log.info(
            "Tenant lease acquired; collecting it.",
            tenant=tenant,
            generation=generation,
            previous_owner=previous_owner if takeover else None,
        )
        self.status.held.add(tenant)
        self.work.start(tenant, takeover=takeover)
        return True

    def _lose(self, tenants: list[str]) -> None:
        """Drop lost leases from the fence at once; their work stops in the background."""
        for tenant in tenants:
            self.fence.drop(tenant)  # first: the tenant's next write is refused
            self.status.held.discard(tenant)
            metrics.LEASE_CHANGES.labels(change="lost").inc()
            log.warning(
                "Tenant lease lost (this replica was paused or cut off, and another took "
                "the tenant over); its work stops and no more of its state is written.",
                tenant=tenant,
            )
            task = asyncio.create_task(self.work.stop(tenant))
            self._stopping.add(task)
            task.add_done_callback(self._stopping.discard)

    async def _give_back(self, tenant: str) -> None:
        """Drain the tenant (renewals go on meanwhile), then release its lease."""
        try:
            await self.work.stop(tenant)  # every acknowledged page committed
            if self.fence.generation(tenant) is not None:  # not lost meanwhile
                await asyncio.to_thread(self.leases.release, self.replica_id, [tenant])
                self.fence.drop(tenant)
                self.status.held.discard(tenant)
                metrics.LEASE_CHANGES.labels(change="given_back").inc()
                log.info("Tenant handed to another replica (fair share).", tenant=tenant)
        except StateError as exc:
            log.error("Could not hand the tenant back; its lease expires alone.", error=str(exc))
        finally:
            self._leaving.pop(tenant, None)
            self._publish()

    async def hand_back_all(self) -> None:
        """Drain every tenant's work, then release every lease and leave (on shutdown).

        Leases are still renewed while the work drains, so no other replica takes a
        tenant whose last pages are being committed.
        """
        held = sorted(self.fence.held())
        drain = asyncio.gather(
            *(self.work.stop(t) for t in held),
            *self._leaving.values(),
            *self._stopping,
            return_exceptions=True,
        )
        while not drain.done():
            await asyncio.wait({drain}, timeout=self.every)
            if not drain.done():
                try:
                    await self._renew()
                except StateError as exc:
                    log.error("Cannot renew leases while draining.", error=str(exc))
        await drain
        try:
            await asyncio.to_thread(self.leases.leave, self.replica_id)
        except StateError as exc:
            log.error("Could not hand the leases back; they expire alone.", error=str(exc))
        for tenant in held:
            self.fence.drop(tenant)
        self.status.held.clear()
        self._publish()
        if held:
            log.info("Leases handed back.", tenants=len(held))

    def _renewal_age(self) -> float:
        last = self.status.last_renewal
        return 0.0 if last is None else self.clock.monotonic() - last

    def _publish(self) -> None:
        metrics.LEASES_HELD.set(len(self.status.held))


async def _wait(stop: asyncio.Event, seconds: float) -> None:
    try:
        await asyncio.wait_for(stop.wait(), timeout=seconds)
    except TimeoutError:
        return
