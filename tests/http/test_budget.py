"""The per-tenant request budget, on a fake clock."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from o365collector.http.budget import RequestBudget
from support import FakeClock


async def _spend(budget: RequestBudget) -> None:
    async with budget.spend():
        pass


async def _until(condition: Callable[[], bool], turns: int = 100) -> None:
    """Let the event loop run until ``condition`` holds (no time passes on the fake clock)."""
    for _ in range(turns):
        if condition():
            return
        await asyncio.sleep(0)
    raise AssertionError(f"not reached in {turns} event-loop turns")


def _max_in_any_window(times: list[float], window: float) -> int:
    return max(sum(1 for t in times if start <= t < start + window) for start in times)


async def test_sequential_acquires_respect_the_window(clock) -> None:
    budget = RequestBudget(3, 10.0, clock)
    times = []
    for _ in range(10):
        await _spend(budget)
        times.append(clock.monotonic())
    assert times == [0, 0, 0, 10, 10, 10, 20, 20, 20, 30]
    assert budget.used == 10
    assert budget.throttled == 0


async def test_concurrent_acquires_never_exceed_the_budget(clock) -> None:
    budget = RequestBudget(5, 60.0, clock)
    times: list[float] = []

    async def worker() -> None:
        for _ in range(6):
            async with budget.spend():
                times.append(clock.monotonic())
                clock.advance(1.5)  # each request takes a while

    await asyncio.gather(*(worker() for _ in range(4)))
    assert len(times) == 24
    assert budget.used == 24
    assert _max_in_any_window(times, 60.0) <= 5
    # ...and it is not needlessly slow: 24 requests at 5 per minute need 4 more windows.
    assert max(times) <= 6 * (60.0 + 1.5) + 24 * 1.5


async def test_running_window_not_fixed_buckets(clock) -> None:
    budget = RequestBudget(2, 10.0, clock)
    await _spend(budget)  # t=0
    clock.advance(6)
    await _spend(budget)  # t=6
    assert budget.in_window() == 2
    await _spend(budget)  # must wait until the t=0 request leaves: t=10
    assert clock.monotonic() == 10
    assert budget.in_window() == 2
    await _spend(budget)  # until the t=6 one leaves: t=16
    assert clock.monotonic() == 16


async def test_in_window_counts_only_recent(clock) -> None:
    budget = RequestBudget(100, 10.0, clock)
    for _ in range(3):
        await _spend(budget)
    assert budget.in_window() == 3
    clock.advance(9.9)
    assert budget.in_window() == 3
    clock.advance(0.2)
    assert budget.in_window() == 0
    assert budget.used == 3


async def test_throttled_for_pauses_every_acquirer(clock) -> None:
    budget = RequestBudget(100, 300.0, clock)
    await _spend(budget)
    budget.throttled_for(30)
    assert budget.throttled == 1
    times: list[float] = []

    async def one() -> None:
        await _spend(budget)
        times.append(clock.monotonic())

    await asyncio.gather(one(), one(), one())
    assert len(times) == 3
    assert all(t >= 30 for t in times)
    assert budget.used == 4


async def test_shorter_throttle_does_not_shorten_a_pause(clock) -> None:
    budget = RequestBudget(100, 300.0, clock)
    budget.throttled_for(30)
    budget.throttled_for(5)
    assert budget.throttled == 2
    await _spend(budget)
    assert clock.monotonic() == 30


async def test_pause_expires(clock) -> None:
    budget = RequestBudget(100, 300.0, clock)
    budget.throttled_for(10)
    clock.advance(11)
    await _spend(budget)
    assert clock.sleeps == []
    assert clock.monotonic() == 11


async def test_window_of_a_request_starts_when_its_answer_arrives(clock) -> None:
    budget = RequestBudget(1, 10.0, clock)
    async with budget.spend():
        clock.advance(4)  # a slow answer: the server counted it somewhere in these 4 s
    await _spend(budget)
    assert clock.monotonic() == 14  # not 10: the first slot frees 10 s after its answer


async def test_lower_priority_waits_behind_higher(clock) -> None:
    budget = RequestBudget(1, 10.0, clock)
    order: list[str] = []
    await _spend(budget)  # fills the window until t=10

    async def one(name: str, priority: int) -> None:
        async with budget.spend(priority):
            order.append(name)

    await asyncio.gather(one("backfill", 3), one("resweep", 1), one("live", 0))
    assert order == ["live", "resweep", "backfill"]


async def test_background_priority_keeps_a_reserve(clock) -> None:
    budget = RequestBudget(4, 100.0, clock, reserve_share=0.5, background_priority=3)
    for _ in range(2):
        async with budget.spend(3):
            pass
    assert clock.monotonic() == 0
    async with budget.spend(3):  # a third background request must wait for the window
        pass
    assert clock.monotonic() == 100
    async with budget.spend(0):  # live may still use the reserved half at once
        pass
    assert clock.monotonic() == 100


async def test_429_lowers_the_limit_and_it_recovers(clock) -> None:
    budget = RequestBudget(80, 300.0, clock)
    budget.throttled_for(10)
    assert budget.limit == 60
    clock.advance(301)
    await _spend(budget)
    assert budget.limit == 68


async def test_a_live_request_is_not_held_behind_a_background_wait() -> None:
    # Time stands still unless the test moves it: the background request stays parked in
    # the clock's sleep, and the live one must be granted without any time passing.
    clock = FakeClock(sleep_advances=False)
    budget = RequestBudget(2, 60.0, clock, reserve_share=0.5, background_priority=3)
    async with budget.spend(3):
        pass

    async def background() -> None:
        async with budget.spend(3):  # over the background share: waits 60 s
            pass

    waiting = asyncio.create_task(background())
    await _until(lambda: clock.sleeping == 1)  # the background request is waiting
    live = asyncio.create_task(_spend(budget))
    await _until(live.done)  # live: uses the reserve at once
    await live
    assert clock.monotonic() == 0
    assert budget.used == 2
    assert not waiting.done()
    clock.advance(60)  # both t=0 slots leave the window: the background one goes
    await _until(waiting.done)
    await waiting
    assert budget.used == 3


async def test_per_second_cap_spaces_requests_on_top_of_the_window(clock) -> None:
    budget = RequestBudget(5, 10.0, clock, per_second=2)  # Devo's requests_per_second
    times = []
    for _ in range(7):
        await _spend(budget)
        times.append(clock.monotonic())
    assert times[:5] == [0, 0.5, 1.0, 1.5, 2.0]  # half a second apart, never in a burst
    assert times[5] == 10.0  # and the window still holds: 5 per 10 s
    assert times[6] == 10.5
