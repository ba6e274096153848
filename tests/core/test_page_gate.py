"""The process-wide limit on pages in memory: bounded, by priority, never leaked."""

from __future__ import annotations

import asyncio

import pytest

from o365collector.page_gate import PageGate, Permit


async def _take(gate: PageGate, priority: int, order: list[str], name: str) -> None:
    permit = await gate.acquire(priority)
    order.append(name)
    del permit  # handed to a page, released later by whoever holds it


async def test_at_most_limit_pages_and_waiters_served_by_priority():
    gate = PageGate(2)
    order: list[str] = []
    held = []
    for name in ("a", "b"):
        held.append(await gate.acquire())
        order.append(name)
    assert gate.in_use == 2
    tasks = [
        asyncio.create_task(_take(gate, 3, order, "history")),
        asyncio.create_task(_take(gate, 0, order, "live")),
        asyncio.create_task(_take(gate, 1, order, "resweep")),
    ]
    await asyncio.sleep(0)
    assert gate.waiting == 3 and order == ["a", "b"]
    held[0].release()
    await asyncio.sleep(0)
    assert order == ["a", "b", "live"] and gate.in_use == 2
    held[1].release()
    held[1].release()  # idempotent: a second release frees nothing
    await asyncio.sleep(0)
    assert order == ["a", "b", "live", "resweep"] and gate.waiting == 1
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


async def test_a_permit_is_released_once_and_a_no_op_permit_holds_nothing():
    # (a retry of the same page takes no second place: see test_client's retry test)
    gate = PageGate(1)
    permit = await gate.acquire()
    assert gate.in_use == 1
    permit.release()
    assert gate.in_use == 0
    permit.release()  # released already: nothing happens
    Permit().release()  # holds nothing: nothing happens
    assert gate.in_use == 0
    assert (await asyncio.wait_for(gate.acquire(), 1)) is not permit
    assert gate.in_use == 1


async def test_a_claimed_permit_follows_the_acknowledgement():
    gate = PageGate(1)
    permit = await gate.acquire()
    ack: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    ack.add_done_callback(permit.release)
    waiter = asyncio.create_task(gate.acquire())
    await asyncio.sleep(0)
    assert not waiter.done()
    ack.set_result(None)
    await asyncio.wait_for(waiter, 1)
    assert gate.in_use == 1


async def test_a_cancelled_waiter_does_not_keep_its_place():
    gate = PageGate(1)
    permit = await gate.acquire()
    waiter = asyncio.create_task(gate.acquire())
    await asyncio.sleep(0)
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    permit.release()
    assert gate.in_use == 0 and gate.waiting == 0
    await asyncio.wait_for(gate.acquire(), 1)
    assert gate.in_use == 1


async def test_without_a_limit_nothing_waits():
    gate = PageGate(None)
    permits = [await gate.acquire() for _ in range(100)]  # none released
    assert gate.in_use == 0 and gate.waiting == 0
    for permit in permits:
        permit.release()  # no-op permits
    assert gate.in_use == 0
