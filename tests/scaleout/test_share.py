"""The fair-share policy: every tenant owned, none twice, spread evenly across replicas."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from o365collector.scaleout.share import fair_share, preference, rebalance

TENANTS = [f"tenant-{i:02d}" for i in range(30)]


def test_fair_share_rounds_up_so_every_tenant_has_room() -> None:
    assert fair_share(30, 3) == 10
    assert fair_share(30, 4) == 8
    assert fair_share(31, 3) == 11
    assert fair_share(5, 0) == 5  # alone (no live replica recorded yet): everything
    assert fair_share(0, 3) == 0


def test_preference_differs_between_replicas_and_is_stable() -> None:
    a, b = preference("replica-a", TENANTS), preference("replica-b", TENANTS)
    assert sorted(a) == sorted(TENANTS)
    assert a != b
    assert preference("replica-a", reversed(TENANTS)) == a


def test_above_share_gives_back_the_least_preferred() -> None:
    moves = rebalance("r1", held=TENANTS[:15], free=[], tenants=30, live_replicas=3)
    assert moves.take == [] and moves.room == 0
    assert len(moves.give_back) == 5
    kept = [t for t in preference("r1", TENANTS[:15]) if t not in moves.give_back]
    assert kept == preference("r1", TENANTS[:15])[:10]


def test_below_share_takes_free_tenants_in_preference_order() -> None:
    moves = rebalance("r1", held=TENANTS[:4], free=TENANTS[10:], tenants=30, live_replicas=3)
    assert moves.give_back == []
    assert moves.room == 6
    assert moves.take == preference("r1", TENANTS[10:])


def _settle(replicas: list[str], tenants: list[str]) -> dict[str, set[str]]:
    """Rounds of rebalance, one replica at a time, until nothing moves."""
    held: dict[str, set[str]] = {r: set() for r in replicas}
    for _ in range(20):
        moved = False
        for r in replicas:
            owned = set().union(*held.values())
            free = [t for t in tenants if t not in owned]
            moves = rebalance(
                r, held=held[r], free=free, tenants=len(tenants), live_replicas=len(replicas)
            )
            for t in moves.give_back:
                held[r].discard(t)
                moved = True
            for t in moves.take[: moves.room]:
                held[r].add(t)
                moved = True
        if not moved:
            break
    return held


@given(
    replicas=st.integers(min_value=1, max_value=8),
    tenants=st.integers(min_value=0, max_value=120),
)
def test_rounds_settle_with_every_tenant_owned_once_and_an_even_spread(
    replicas: int, tenants: int
) -> None:
    names = [f"t{i}" for i in range(tenants)]
    held = _settle([f"r{i}" for i in range(replicas)], names)
    owned = [t for ts in held.values() for t in ts]
    assert sorted(owned) == sorted(names)  # each tenant exactly once
    assert max(len(ts) for ts in held.values()) <= fair_share(tenants, replicas)


def test_a_joining_replica_gets_its_share() -> None:
    held = _settle(["r1", "r2", "r3"], TENANTS)
    assert sorted(len(ts) for ts in held.values()) == [10, 10, 10]
    moves = [
        rebalance(r, held=held[r], free=[], tenants=30, live_replicas=4) for r in ("r1", "r2", "r3")
    ]
    freed = [t for m in moves for t in m.give_back]
    assert len(freed) == 6  # each of the three drops to the new share of 8
    joined = rebalance("r4", held=[], free=freed, tenants=30, live_replicas=4)
    assert joined.take[: joined.room] == preference("r4", freed)
