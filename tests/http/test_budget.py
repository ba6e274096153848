"""The per-tenant request budget, on a fake clock."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import httpx

from o365collector.http.budget import RequestBudget
from o365collector.http.classify import classify_graph
from support import FakeClock
from support.mock_api import SCOPE, token_response


async def _spend(budget: RequestBudget, priority: int = 0) -> None:
    async with budget.spend(priority):
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


async def test_a_request_cancelled_while_waiting_takes_no_slot() -> None:
    """A waiter cancelled before its grant is skipped: the next one gets the freed slot."""
    clock = FakeClock(sleep_advances=False)
    budget = RequestBudget(1, 10.0, clock)
    await _spend(budget)  # fills the window until t=10
    cancelled = asyncio.create_task(_spend(budget))
    await _until(lambda: clock.sleeping == 1)  # waiting for the slot
    cancelled.cancel()
    await asyncio.gather(cancelled, return_exceptions=True)
    assert cancelled.cancelled()
    after = asyncio.create_task(_spend(budget))
    clock.advance(10)
    await _until(after.done)
    await after
    assert clock.monotonic() == 10
    assert budget.used == 2  # the cancelled request was never counted
    assert budget.in_window() == 1


async def test_a_request_cancelled_after_its_grant_gives_the_slot_back() -> None:
    """Granted but cancelled before it was sent: Microsoft never saw it, the slot is free."""
    clock = FakeClock(sleep_advances=False)
    budget = RequestBudget(1, 10.0, clock)
    sent: list[str] = []

    async def request() -> None:
        async with budget.spend():
            sent.append("request")

    granted = asyncio.create_task(request())
    await _until(lambda: budget.used == 1)  # granted; the task has not resumed yet
    granted.cancel()
    await asyncio.gather(granted, return_exceptions=True)
    assert granted.cancelled() and sent == []
    assert budget.in_window() == 0 and budget.used == 0
    following = asyncio.create_task(_spend(budget))
    await _until(following.done)  # at once: no slot is held by the unsent request
    await following
    assert clock.monotonic() == 0 and budget.used == 1


async def test_a_request_cancelled_in_flight_holds_its_slot_a_window_from_then() -> None:
    """Cancelled while sent: it counts until one window after the cancellation, not forever."""
    clock = FakeClock(sleep_advances=False)
    budget = RequestBudget(1, 10.0, clock)
    answered = asyncio.Event()
    sent: list[float] = []

    async def slow() -> None:
        async with budget.spend():
            sent.append(clock.monotonic())
            await answered.wait()  # the answer never comes

    in_flight = asyncio.create_task(slow())
    await _until(lambda: sent == [0])
    clock.advance(3)
    in_flight.cancel()
    await asyncio.gather(in_flight, return_exceptions=True)
    assert budget.in_window() == 1
    following = asyncio.create_task(_spend(budget))
    await _until(lambda: clock.sleeping == 1)
    clock.advance(9.5)  # t=12.5: the cancelled request still counts
    await _until(lambda: clock.sleeping == 1)
    assert not following.done()
    clock.advance(0.5)  # t=13: one window after the cancellation
    await _until(following.done)
    await following
    assert budget.used == 2


async def test_a_fractional_limit_allows_only_whole_requests(clock) -> None:
    """6 × 0.75 = 4.5 after a 429: four requests per window, not five; background three."""
    budget = RequestBudget(6, 100.0, clock)
    budget.throttled_for(0)
    assert budget.limit == 4.5
    times = []
    for _ in range(5):
        await _spend(budget)
        times.append(clock.monotonic())
    assert times == [0, 0, 0, 0, 100]

    background = RequestBudget(6, 100.0, clock, reserve_share=0.25, background_priority=3)
    background.throttled_for(0)  # 4.5, of which background may use 3.375: three
    start = clock.monotonic()
    spent = []
    for _ in range(4):
        async with background.spend(3):
            spent.append(clock.monotonic() - start)
    assert spent == [0, 0, 0, 100]


async def test_a_limit_never_drops_below_one_request(clock) -> None:
    """However many bursts of 429s, one request per window still goes out."""
    budget = RequestBudget(1, 100.0, clock)
    times = []
    for _ in range(3):
        budget.throttled_for(0)  # each after a new request: a new burst, lowered again
        assert budget.limit == 1.0  # not 0.75: floored, that would be no request at all
        await _spend(budget)
        times.append(clock.monotonic())
    assert times == [0, 100, 200]  # one request per window, never none
    # the background share of a one-request limit (0.75) is still one request, not none
    background = RequestBudget(1, 100.0, clock, reserve_share=0.25, background_priority=3)
    first = asyncio.create_task(_spend(background, 3))
    await _until(first.done)
    await first
    assert background.used == 1


async def test_429s_of_requests_sent_before_the_lowering_lower_the_limit_once(clock) -> None:
    """A burst: 429s answered seconds apart to requests all in flight lower the limit once.

    A request sent after the lowering that meets a 429 again is new evidence: it lowers.
    """
    budget = RequestBudget(100, 300.0, clock)
    answers = [asyncio.Event() for _ in range(4)]

    async def throttled(answer: asyncio.Event) -> None:
        async with budget.spend():
            await answer.wait()
        budget.throttled_for(30)  # as ApiClient does, as the 429 arrives

    tasks = [asyncio.create_task(throttled(answer)) for answer in answers]
    await _until(lambda: budget.in_window() == 4)  # all four sent
    for answer, task in zip(answers, tasks, strict=True):
        clock.advance(2)  # the answers come 2 s apart: one burst all the same
        answer.set()
        await _until(task.done)
    assert budget.throttled == 4
    assert budget.limit == 75
    await _spend(budget)  # after the 30 s pause, a new request...
    budget.throttled_for(30)  # ...is throttled again: the quota is still short
    assert budget.limit == 75 * 0.75


async def test_a_burst_of_429s_through_the_client_lowers_the_limit_once(api_factory, clock) -> None:
    """Three pages requested at once all meet a 429; the retries succeed; limit lowered once."""
    budget = RequestBudget(100, 300.0, clock)
    arrived: list[httpx.Request] = []
    all_sent = asyncio.Event()

    async def graph(request: httpx.Request) -> httpx.Response:
        if request.url.host == "login.microsoftonline.com":
            return token_response()
        arrived.append(request)
        if len(arrived) > 3:
            return httpx.Response(200, json={"value": []})
        if len(arrived) == 3:
            all_sent.set()
        await all_sent.wait()
        clock.advance(2)  # the three 429s come 2 s apart
        return httpx.Response(429, headers={"Retry-After": "5"})

    api = api_factory(graph, budget=budget)
    url = "https://graph.microsoft.com/v1.0/admin/exchange/tracing/messageTraces"
    bodies = await asyncio.gather(
        *(api.get_json(url, scope=SCOPE, classify=classify_graph, api="graph") for _ in range(3))
    )
    assert bodies == [{"value": []}] * 3
    assert len(arrived) == 6
    assert budget.throttled == 3
    assert budget.limit == 75
