"""How many tenants a replica should own, and which ones it tries first.

Pure functions, so the policy is tested apart from the lease table and the clock:

* :func:`fair_share`: about tenants / live replicas (rounded up, so every tenant has room);
* :func:`preference`: the order a replica tries free tenants in. Each replica ranks the
  tenants by a hash of (replica, tenant) (rendezvous hashing): replicas starting together
  reach for different tenants first instead of all racing for the same one, and a tenant
  tends to return to the same replica after a restart;
* :func:`rebalance`: what to take and what to hand back, given what is held and free.
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Iterable
from dataclasses import dataclass


def fair_share(tenants: int, live_replicas: int) -> int:
    """Tenants one replica should own: ``ceil(tenants / live_replicas)`` (all when alone)."""
    return -(-tenants // max(1, live_replicas))


def preference(replica_id: str, tenants: Iterable[str]) -> list[str]:
    """``tenants`` in the order ``replica_id`` tries them (its highest rendezvous hash first)."""

    def weight(tenant: str) -> bytes:
        return hashlib.blake2b(f"{replica_id}\x1f{tenant}".encode(), digest_size=8).digest()

    return sorted(tenants, key=weight, reverse=True)


@dataclass(frozen=True, slots=True)
class Moves:
    """What a replica does this round.

    Try ``take`` in order until ``room`` of them were won (another replica may win a
    race for some), and hand back ``give_back``.
    """

    take: list[str]
    room: int
    give_back: list[str]


def rebalance(
    replica_id: str,
    *,
    held: Collection[str],
    free: Collection[str],
    tenants: int,
    live_replicas: int,
) -> Moves:
    """Move towards the fair share: take free tenants while below it, give back above it.

    ``free`` are tenants nobody holds (never leased, released, or their lease expired).
    Tenants given back are the ones this replica likes least, so the ones it keeps are
    the ones it would take again.
    """
    share = fair_share(tenants, live_replicas)
    if len(held) > share:
        ranked = preference(replica_id, held)
        return Moves(take=[], room=0, give_back=ranked[share:])
    room = share - len(held)
    return Moves(take=preference(replica_id, free) if room else [], room=room, give_back=[])
