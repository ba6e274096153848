"""ApiClient: bearer token, one renewal on 401, Retry-After on 429, bounded retries."""

from __future__ import annotations

import asyncio
import re

import httpx
import pytest

from o365collector.config.model import RetrySettings
from o365collector.errors import (
    AuthError,
    BadRequestError,
    PermissionDeniedError,
    SetupError,
    UnavailableError,
)
from o365collector.http.budget import RequestBudget
from o365collector.http.classify import classify_graph
from o365collector.page_gate import PageGate
from support.mock_api import SCOPE, token_response

URL = "https://graph.microsoft.com/v1.0/admin/exchange/tracing/messageTraces?$top=10"
OK_BODY = {"value": [{"id": "a"}]}


class Graph:
    """A scripted Graph and token endpoint; records what was asked."""

    def __init__(self, *answers: httpx.Response | Exception) -> None:
        self.answers = list(answers)
        self.api_requests: list[httpx.Request] = []
        self.token_requests = 0

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.url.host == "login.microsoftonline.com":
            self.token_requests += 1
            return token_response(f"tok-{self.token_requests}")
        self.api_requests.append(request)
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        if isinstance(answer, Exception):
            raise answer
        return answer


async def _get(api) -> object:
    return await api.get_json(URL, scope=SCOPE, classify=classify_graph, api="graph")


async def test_success_sends_the_bearer_token(api_factory) -> None:
    graph = Graph(httpx.Response(200, json=OK_BODY))
    api = api_factory(graph)
    assert await _get(api) == OK_BODY
    assert len(graph.api_requests) == 1
    request = graph.api_requests[0]
    assert request.headers["Authorization"] == "Bearer tok-1"
    assert str(request.url) == URL
    assert api.budget.used == 1


async def test_token_is_reused_across_requests(api_factory) -> None:
    graph = Graph(httpx.Response(200, json=OK_BODY))
    api = api_factory(graph)
    for _ in range(3):
        await _get(api)
    assert graph.token_requests == 1
    assert api.budget.used == 3


async def test_401_then_200_renews_token_once(api_factory, clock) -> None:
    graph = Graph(
        httpx.Response(401, json={"error": {"code": "InvalidAuthenticationToken", "message": "x"}}),
        httpx.Response(200, json=OK_BODY),
    )
    api = api_factory(graph)
    assert await _get(api) == OK_BODY
    assert graph.token_requests == 2
    assert [r.headers["Authorization"] for r in graph.api_requests] == [
        "Bearer tok-1",
        "Bearer tok-2",
    ]
    assert clock.sleeps == []  # renewal is immediate


async def test_401_twice_is_auth_error(api_factory) -> None:
    graph = Graph(httpx.Response(401, json={"error": {"code": "Unauthorized", "message": "no"}}))
    api = api_factory(graph)
    with pytest.raises(AuthError, match="still refused after renewing"):
        await _get(api)
    assert len(graph.api_requests) == 2
    assert graph.token_requests == 2


async def test_429_waits_retry_after_and_tells_the_budget(api_factory, clock) -> None:
    graph = Graph(
        httpx.Response(429, headers={"Retry-After": "2"}),
        httpx.Response(200, json=OK_BODY),
    )
    api = api_factory(graph)
    assert await _get(api) == OK_BODY
    assert clock.sleeps == [2.0]
    assert clock.monotonic() == 2.0
    assert api.budget.throttled == 1
    assert len(graph.api_requests) == 2


async def test_429_without_retry_after_pauses_the_budget(api_factory, clock) -> None:
    budget = RequestBudget(100, 300.0, clock)
    times: list[float] = []

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.host == "login.microsoftonline.com":
            return token_response()
        times.append(clock.monotonic())
        if len(times) == 1:
            return httpx.Response(429)
        return httpx.Response(200, json=OK_BODY)

    api = api_factory(handler, budget=budget)
    assert await _get(api) == OK_BODY
    assert budget.throttled == 1
    # The pause is the first backoff interval (1 s); the jittered sleep is shorter or
    # equal, so the budget holds the retry until the pause is over.
    assert times[0] == 0
    assert times[1] == pytest.approx(1.0)


async def test_503_beyond_max_elapsed_is_unavailable(api_factory, clock) -> None:
    graph = Graph(httpx.Response(503, headers={"Retry-After": "1"}, text="busy"))
    retry = RetrySettings(initial_interval_secs=1, max_interval_secs=2, max_elapsed_secs=3.5)
    api = api_factory(graph, retry=retry)
    with pytest.raises(UnavailableError) as info:
        await _get(api)
    message = str(info.value)
    assert "HTTP 503" in message
    assert "gave up after 4 attempts" in message
    assert len(graph.api_requests) == 4
    assert clock.sleeps == [1.0, 1.0, 1.0]


async def test_jittered_retries_report_attempts_made(api_factory, clock) -> None:
    graph = Graph(httpx.Response(500, text="boom"))
    retry = RetrySettings(initial_interval_secs=0.5, max_interval_secs=2, max_elapsed_secs=20)
    api = api_factory(graph, retry=retry)
    with pytest.raises(UnavailableError) as info:
        await _get(api)
    match = re.search(r"gave up after (\d+) attempts", str(info.value))
    assert match is not None
    assert int(match.group(1)) == len(graph.api_requests)
    assert len(graph.api_requests) > 2
    assert sum(clock.sleeps) <= 20
    assert all(0 <= s <= 2 for s in clock.sleeps)


async def test_transient_errors_then_success(api_factory) -> None:
    request = httpx.Request("GET", URL)
    graph = Graph(
        httpx.ConnectError("refused", request=request),
        httpx.ReadTimeout("slow", request=request),
        httpx.Response(502, text="bad gateway"),
        httpx.Response(200, text="<html>not json</html>"),
        httpx.Response(200, json=OK_BODY),
    )
    api = api_factory(graph)
    assert await _get(api) == OK_BODY
    assert len(graph.api_requests) == 5


async def test_unreachable_token_endpoint_is_retried(api_factory) -> None:
    token_answers = [httpx.Response(503), token_response("tok-late")]
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.host == "login.microsoftonline.com":
            return token_answers.pop(0)
        seen.append(request)
        return httpx.Response(200, json=OK_BODY)

    api = api_factory(handler)
    assert await _get(api) == OK_BODY
    assert [r.headers["Authorization"] for r in seen] == ["Bearer tok-late"]


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (400, BadRequestError),
        (403, PermissionDeniedError),
        (404, SetupError),
    ],
)
async def test_permanent_refusals_raise_at_once(
    api_factory, clock, status: int, error: type[Exception]
) -> None:
    graph = Graph(httpx.Response(status, json={"error": {"code": "X", "message": "refused"}}))
    api = api_factory(graph)
    with pytest.raises(error, match="refused"):
        await _get(api)
    assert len(graph.api_requests) == 1
    assert clock.sleeps == []


async def test_401_missing_service_principal_is_setup_error_without_renewal(api_factory) -> None:
    body = {
        "error": {
            "code": "Unauthorized",
            "message": "the service principal for App ID "
            "8bd644d1-64a1-4d4b-ae52-2e0cbf64e373 was not found.",
        }
    }
    graph = Graph(httpx.Response(401, json=body))
    api = api_factory(graph)
    with pytest.raises(SetupError, match="New-MgServicePrincipal"):
        await _get(api)
    assert len(graph.api_requests) == 1
    assert graph.token_requests == 1


async def test_a_page_request_keeps_its_place_in_the_page_gate(api_factory) -> None:
    api = api_factory(Graph(httpx.Response(200, json=OK_BODY)))
    api.gate = PageGate(1)
    body, permit = await api.get_page(URL, scope=SCOPE, classify=classify_graph, api="graph")
    assert body == OK_BODY
    assert api.gate.in_use == 1  # left to the reader, released once the sinks have the page
    permit.release()
    assert api.gate.in_use == 0
    await _get(api)  # not a page: no place taken
    assert api.gate.in_use == 0


async def test_a_failed_page_request_gives_its_place_back(api_factory, clock) -> None:
    graph = Graph(httpx.Response(503), httpx.Response(403, json={"error": {"code": "x"}}))
    api = api_factory(graph)
    api.gate = PageGate(1)
    with pytest.raises(PermissionDeniedError):
        await api.get_page(URL, scope=SCOPE, classify=classify_graph, api="graph")
    assert len(graph.api_requests) == 2  # retried once, then refused
    assert api.gate.in_use == 0


async def test_a_retried_page_request_holds_one_place(api_factory, clock) -> None:
    graph = Graph(httpx.Response(503), httpx.Response(200, json=OK_BODY))
    api = api_factory(graph)
    api.gate = PageGate(1)
    body, permit = await asyncio.wait_for(
        api.get_page(URL, scope=SCOPE, classify=classify_graph, api="graph"), 5
    )  # a retry of the same page: no second place, no deadlock
    assert body == OK_BODY and len(graph.api_requests) == 2
    assert api.gate.in_use == 1
    permit.release()
    assert api.gate.in_use == 0


class _Held:
    """A Graph whose answers wait until the test lets them go; counts requests in flight."""

    def __init__(self) -> None:
        self.arrived = 0
        self.in_flight = 0
        self.most_in_flight = 0
        self.go = asyncio.Event()

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.url.host == "login.microsoftonline.com":
            return token_response("tok")
        self.arrived += 1
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            await self.go.wait()
        finally:
            self.in_flight -= 1
        return httpx.Response(200, json=OK_BODY)


async def _page(api):
    return await api.get_page(URL, scope=SCOPE, classify=classify_graph, api="graph")


async def _until(condition) -> None:
    """Let the event loop run until ``condition()`` holds (a bounded number of turns)."""
    for _ in range(1000):
        if condition():
            return
        await asyncio.sleep(0)
    raise AssertionError("the condition never held")


async def test_page_requests_in_flight_are_not_bounded_by_the_pages_in_memory(
    api_factory,
) -> None:
    graph = _Held()
    api = api_factory(graph)
    api.gate, api.flights = PageGate(1), PageGate(3)
    readers = [asyncio.create_task(_page(api)) for _ in range(3)]
    # One place for pages, yet all three requests wait for Microsoft at once: a place is
    # taken when an answer comes, not while it is awaited.
    await _until(lambda: graph.arrived == 3)
    assert api.gate.in_use == 0
    graph.go.set()
    done, _ = await asyncio.wait(readers, return_when=asyncio.FIRST_COMPLETED)
    assert len(done) == 1 and api.gate.in_use == 1  # the others wait for the page's place
    for _ in range(2):
        body, permit = done.pop().result()
        assert body == OK_BODY
        permit.release()
        done, _ = await asyncio.wait(
            [r for r in readers if not r.done()], return_when=asyncio.FIRST_COMPLETED
        )
    body, permit = done.pop().result()
    permit.release()
    assert api.gate.in_use == 0


async def test_page_requests_in_flight_are_bounded_by_flights(api_factory) -> None:
    graph = _Held()
    api = api_factory(graph)
    api.gate, api.flights = PageGate(10), PageGate(2)
    readers = [asyncio.create_task(_page(api)) for _ in range(5)]
    await _until(lambda: graph.arrived == 2)
    for _ in range(50):
        await asyncio.sleep(0)
    assert graph.arrived == 2  # the third waits for a flight, not for Microsoft
    graph.go.set()
    for body, permit in await asyncio.gather(*readers):
        assert body == OK_BODY
        permit.release()
    assert graph.most_in_flight == 2 and graph.arrived == 5
    assert api.gate.in_use == 0 and api.flights.in_use == 0


async def test_no_page_request_is_sent_while_the_pages_in_memory_fill_the_gate(
    api_factory,
) -> None:
    graph = Graph(httpx.Response(200, json=OK_BODY))
    api = api_factory(graph)
    api.gate, api.flights = PageGate(1), PageGate(4)
    held = await api.gate.acquire()  # a page the sinks have not taken yet
    reader = asyncio.create_task(_page(api))
    for _ in range(100):
        await asyncio.sleep(0)
    assert graph.api_requests == []  # its answer would wait, unread, for the place
    held.release()
    body, permit = await reader
    assert body == OK_BODY and len(graph.api_requests) == 1
    permit.release()


class _Parts(httpx.AsyncByteStream):
    """A body sent in parts that fails after the first; records its closing."""

    def __init__(self, body: bytes) -> None:
        self.body, self.closed = body, False

    async def __aiter__(self):
        yield self.body[:10]
        raise httpx.ReadError("connection reset in the middle of the body")

    async def aclose(self) -> None:
        self.closed = True


async def test_a_page_cut_off_midway_is_retried_and_holds_nothing_meanwhile(
    api_factory, clock
) -> None:
    broken = _Parts(b'{"value": [{"id": "a"}, {"id": "b"}]}')
    graph = Graph(httpx.Response(200, stream=broken), httpx.Response(200, json=OK_BODY))
    api = api_factory(graph)
    api.gate, api.flights = PageGate(1), PageGate(1)
    body, permit = await asyncio.wait_for(_page(api), 5)  # one place each: no deadlock
    assert body == OK_BODY and len(graph.api_requests) == 2
    assert broken.closed  # the failed read gave its connection back
    assert api.gate.in_use == 1 and api.flights.in_use == 0
    permit.release()
    assert api.gate.in_use == 0


async def test_a_page_response_is_freed_without_waiting_for_the_cyclic_gc(api_factory) -> None:
    import gc
    import weakref

    seen: list[weakref.ref[httpx.Response]] = []

    async def handler(request: httpx.Request) -> httpx.Response:
        return Graph(httpx.Response(200, json=OK_BODY))(request)

    api = api_factory(handler)
    original = api.http.send

    async def send(*args, **kwargs):  # keeps only a weak reference to each response
        response = await original(*args, **kwargs)
        seen.append(weakref.ref(response))
        return response

    api.http.send = send
    gc.disable()  # only reference counting may free it
    try:
        assert await _get(api) == OK_BODY
        assert seen and seen[-1]() is None  # httpx's response <-> stream cycle was broken
    finally:
        gc.enable()


@pytest.mark.parametrize(
    ("action", "renewed", "expected"),
    [
        ("OK", False, "DONE"),
        ("REFRESH_AUTH", False, "RENEW_TOKEN"),
        ("RETRY", False, "WAIT"),
        ("RATE_LIMITED", True, "WAIT"),
        ("REFRESH_AUTH", True, AuthError),
        ("FAIL_AUTH", False, AuthError),
        ("FAIL_PERMISSION", False, PermissionDeniedError),
        ("FAIL_SETUP", False, SetupError),
        ("FAIL_REQUEST", False, BadRequestError),
    ],
)
def test_the_retry_decision_after_each_kind_of_answer(action, renewed, expected) -> None:
    from o365collector.http.classify import Action, Verdict
    from o365collector.http.client import _next_step

    verdict = Verdict(Action[action], "HTTP 4xx: why")
    if isinstance(expected, str):
        assert _next_step(verdict, renewed=renewed).name == expected
        return
    with pytest.raises(expected, match="why"):
        _next_step(verdict, renewed=renewed)
