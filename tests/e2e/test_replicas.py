"""Issue 15: replicas share the tenants through PostgreSQL, none lost, none twice.

Real processes: one emulator with 30 tenants (live traffic, late rows, status changes), a
real PostgreSQL (a schema per test), and ``o365collector run`` replicas, each with its own
``state_dir`` and jsonl file. The union of the replicas' outputs is checked against the
emulator's ground truth as ``test_fresh_and_complete`` checks one collector's.
"""

from __future__ import annotations

import itertools
import signal
import sys
import threading
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
from harness import now, parse_time
from replicas_support import (
    LEASE_SECS,
    PAGE_SIZE,
    TENANTS,
    Replica,
    Union,
    check_union,
    checkpoints,
    held_by,
    replica,
    start_emulator,
    tenant_of_owner,
    wait_until,
)

sys.path.insert(0, str(Path(__file__).parents[1] / "state"))

from pg_support import admin, require_postgres, temp_schema

from o365collector.state.leases import LeaseTable

pytestmark = pytest.mark.integration

TAIL_SECS = 22  # after the last disturbance: the cutoff (18 s before the stop) lies past it
SHARE = TENANTS // 3


@pytest.fixture(scope="module")
def emulator(tmp_path_factory: pytest.TempPathFactory):
    emulator = start_emulator(tmp_path_factory.mktemp("emulator"))
    yield emulator
    emulator.stop()


class Deployment:
    """Replicas on one schema, and the lease table to watch them."""

    def __init__(self, tmp_path: Path, emulator_url: str, dsn: str, schema: str) -> None:
        self.tmp_path = tmp_path
        self.url = emulator_url
        self.dsn = dsn
        self.schema = schema
        self.replicas: list[Replica] = []
        self.table = LeaseTable.open(dsn, schema)

    def add(self) -> Replica:
        one = replica(self.tmp_path / f"r{len(self.replicas)}", self.url, self.dsn, self.schema)
        self.replicas.append(one.start())
        wait_until(f"{one.workdir} never logged its replica id", lambda: one.replica_id, 60)
        return one

    def counts(self) -> dict[str, int]:
        """Active leases per replica (by index-free replica id)."""
        return dict(held_by(self.table.leases()))

    def held(self, one: Replica) -> set[str]:
        assert one.replica_id is not None
        return tenant_of_owner(self.table.leases(), one.replica_id)

    def settled(self, *expected: tuple[Replica, int, int]) -> bool:
        """Every tenant leased, each replica holding between its bounds."""
        leases = self.table.leases()
        if sum(1 for lease in leases if lease.active) != TENANTS:
            return False
        counts = held_by(leases)
        return all(lo <= counts.get(r.replica_id or "", 0) <= hi for r, lo, hi in expected)

    def describe(self) -> str:
        counts = self.counts()
        return ", ".join(f"{r.workdir.name}={counts.get(r.replica_id or '', 0)}" for r in self)

    def __iter__(self) -> Iterator[Replica]:
        return iter(self.replicas)

    def stop_all(self) -> datetime:
        stopped = now()
        for one in self.replicas:
            if one.proc is not None and one.proc.poll() is None:
                one.signal(signal.SIGTERM)
        for one in self.replicas:
            if one.proc is not None and one.proc.returncode is None:
                assert one.proc.wait(60) == 0, f"{one.workdir.name} did not stop cleanly"
        return stopped

    def start_settled(self, count: int, share: int) -> list[Replica]:
        """Start ``count`` replicas and wait until each holds ``share`` tenants."""
        started = [self.add() for _ in range(count)]
        wait_until(
            lambda: f"never settled at {share} each: {self.describe()}",
            lambda: self.settled(*((r, share, share) for r in started)),
        )
        return started

    def stop_and_check(self, emulator, started: datetime) -> Union:
        """Stop every replica; the union of their outputs against the ground truth."""
        stopped = self.stop_all()
        return check_union(
            emulator, self.replicas, started, stopped, self.tmp_path / "truth.ndjson"
        )

    def close(self) -> None:
        for one in self.replicas:
            one.kill()
        self.table.close()


@pytest.fixture
def deployment(tmp_path: Path, emulator) -> Iterator[Deployment]:
    dsn = require_postgres()
    with temp_schema() as schema:
        deployment = Deployment(tmp_path, emulator.url, dsn, schema)
        try:
            yield deployment
        finally:
            deployment.close()


def _acquired_from(
    replicas: list[Replica], previous: str, since: datetime
) -> list[tuple[str, datetime]]:
    """(tenant, log time) of every takeover from ``previous`` logged ``since``.

    Earlier ones are the hand-backs of the start (the first replica up takes everything).
    """
    found = [
        (entry["tenant"], parse_time(entry["timestamp"]))
        for one in replicas
        for entry in one.events("Tenant lease acquired")
        if entry.get("previous_owner") == previous
    ]
    return [(tenant, at) for tenant, at in found if at >= since]


def _repeats_only_of(union: Union, tenants: set[str], who: str) -> int:
    """Events delivered more than once, after checking they are all of ``tenants``."""
    outside = {f for f in union.repeated if f[0] not in tenants}
    assert not outside, f"repeats of tenants {who} never held: {sorted(outside)[:3]}"
    return sum(n - 1 for n in union.repeated.values())


def test_three_replicas_spread_thirty_tenants_and_deliver_each_row_once(deployment, emulator):
    started = now()
    replicas = deployment.start_settled(3, SHARE)
    spread = deployment.describe()
    owners = {lease.tenant: lease.owner for lease in deployment.table.leases() if lease.active}
    time.sleep(TAIL_SECS)
    # still the same spread: nobody kept moving tenants around once settled
    assert deployment.settled(*((r, SHARE, SHARE) for r in replicas)), deployment.describe()
    assert {lease.tenant: lease.owner for lease in deployment.table.leases()} == owners
    union = deployment.stop_and_check(emulator, started)
    assert not union.repeated, f"{len(union.repeated)} facts twice: {list(union.repeated)[:3]}"
    # each replica delivered (only) tenants it was leased at some point
    for one in replicas:
        mine = {e["tenant"] for e in one.output()}
        taken = {e["tenant"] for e in one.events("Tenant lease acquired")}
        assert mine <= taken, (one.workdir.name, sorted(mine - taken))
        assert len(mine) >= SHARE
    assert set(union.by_tenant) == {f"t{i:02d}" for i in range(TENANTS)}
    print(f"\nspread {spread}; {union.delivered} events, {union.due_rows} rows due")


def test_sigkilled_replica_tenants_are_taken_over_with_nothing_missing(deployment, emulator):
    started = now()
    replicas = deployment.start_settled(3, SHARE)
    victim, survivors = replicas[0], replicas[1:]
    victim_tenants = deployment.held(victim)
    assert len(victim_tenants) == SHARE
    # mid-work: it keeps delivering live rows; wait for a few more after settling
    before = len(victim.output())
    wait_until("the victim delivered nothing new", lambda: len(victim.output()) > before + 5)
    delivered_by_victim = len(victim.output())
    killed = now()
    victim.kill()  # SIGKILL: no drain, no hand-back, its leases stay until taken over
    assert victim.proc is not None and victim.proc.returncode == -signal.SIGKILL
    wait_until(
        lambda: f"the dead replica's tenants were not taken over: {deployment.describe()}",
        lambda: (
            deployment.settled(*((r, SHARE, SHARE + 5) for r in survivors))
            and not deployment.held(victim)
        ),
    )

    def takeovers() -> list[tuple[str, datetime]] | None:
        found = _acquired_from(survivors, victim.replica_id or "", killed)
        return found if {t for t, _ in found} >= victim_tenants else None

    moves = wait_until("no takeover logged", takeovers, 15)
    takeover = max(at for _, at in moves) - killed
    assert takeover.total_seconds() <= 3 * LEASE_SECS, f"takeover took {takeover}"
    assert {t for t, _ in moves} == victim_tenants
    time.sleep(TAIL_SECS)
    union = deployment.stop_and_check(emulator, started)
    # only what the dead replica delivered and had not committed comes twice: its tenants
    repeats = _repeats_only_of(union, victim_tenants, "the victim")
    bound = PAGE_SIZE * len(victim_tenants)  # one page per stream (one here) per tenant
    assert repeats <= bound, f"{repeats} repeats > {bound}"
    assert repeats <= delivered_by_victim
    print(
        f"\ntakeover {takeover.total_seconds():.1f} s after SIGKILL (lease {LEASE_SECS} s); "
        f"{repeats} repeated events (bound {bound}); {union.delivered} events"
    )


def test_paused_replica_writes_nothing_stale_after_its_tenants_moved(deployment, emulator):
    started = now()
    replicas = deployment.start_settled(3, SHARE)
    paused, others = replicas[0], replicas[1:]
    its_tenants = deployment.held(paused)
    paused.signal(signal.SIGSTOP)
    stopped_at = time.monotonic()
    wait_until(
        lambda: f"the paused replica's tenants were not taken over: {deployment.describe()}",
        lambda: (
            not deployment.held(paused)
            and deployment.settled(*((r, SHARE, SHARE + 5) for r in others))
        ),
    )
    took = time.monotonic() - stopped_at
    time.sleep(max(0.0, 2.5 * LEASE_SECS - took))
    conn = admin()
    samples = [checkpoints(conn, deployment.schema)]
    before_logs = len(paused.logs())
    sampling = threading.Event()

    def sample() -> None:
        with admin() as own:
            while not sampling.is_set():
                samples.append(checkpoints(own, deployment.schema))
                time.sleep(0.05)

    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        paused.signal(signal.SIGCONT)

        def all_lost() -> list[dict[str, object]] | None:
            found = paused.events("Tenant lease lost")
            return found if {e["tenant"] for e in found} >= its_tenants else None

        lost = wait_until("the resumed replica never noticed its leases were lost", all_lost, 30)
        time.sleep(TAIL_SECS)
    finally:
        sampling.set()
        sampler.join()
    samples.append(checkpoints(conn, deployment.schema))
    conn.close()
    # checkpoints of the moved tenants never went backwards, from before SIGCONT on
    backwards = []
    for earlier, later in itertools.pairwise(samples):
        for point, mark in earlier.items():
            if point[0] in its_tenants and mark is not None:
                after = later.get(point)
                if after is None or after < mark:
                    backwards.append((point, mark, after))
    assert not backwards, f"checkpoints moved backwards: {backwards[:3]}"
    assert len(samples) > 20
    after_resume = paused.logs()[before_logs:]
    stream_stopped = [
        e for e in after_resume if e.get("event", "").startswith("Stream stopped: its tenant")
    ]
    union = deployment.stop_and_check(emulator, started)
    repeats = _repeats_only_of(union, its_tenants, "the paused replica")
    assert repeats <= PAGE_SIZE * len(its_tenants)
    print(
        f"\npaused {len(its_tenants)} tenants taken over in {took:.1f} s; after SIGCONT "
        f"{len(lost)} 'lease lost', {len(stream_stopped)} 'stream stopped'; "
        f"{len(samples)} checkpoint samples; {repeats} repeated events"
    )


def test_a_joining_replica_takes_its_share_and_nothing_comes_twice(deployment, emulator):
    started = now()
    first = deployment.start_settled(2, 15)
    time.sleep(3)  # collecting (catch-up done or under way) when the third joins
    joining = now()
    third = deployment.add()
    wait_until(
        lambda: f"the joiner never got its share: {deployment.describe()}",
        lambda: deployment.settled((third, 8, SHARE), *((r, SHARE - 1, SHARE + 1) for r in first)),
    )
    joined = deployment.describe()
    time.sleep(TAIL_SECS)
    union = deployment.stop_and_check(emulator, started)
    # the joiner's tenants were handed back (drained, then released) after it joined, not
    # taken over: the first two stayed live throughout (earlier hand-backs are the start's)
    handed = [
        e["tenant"]
        for r in first
        for e in r.events("Tenant handed to another replica")
        if parse_time(e["timestamp"]) >= joining
    ]
    assert len(handed) >= 8, f"only {handed} handed back after the join"
    gained = {e["tenant"] for e in third.events("Tenant lease acquired")}
    assert gained <= set(handed), (sorted(gained), handed)  # every tenant was leased at join
    assert not union.repeated, f"{len(union.repeated)} facts twice: {list(union.repeated)[:3]}"
    print(f"\nafter the join {joined}; {len(handed)} handed back; {union.delivered} events")
