"""Graph message trace source: the filter, the first URL, and following next links."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from o365collector.errors import BadRequestError, RestartWindowError, SourceError
from o365collector.event import decoded
from o365collector.sources.graph.message_trace import PATH, GraphMessageTraceSource
from o365collector.sources.graph.message_trace import window_filter as graph_filter
from o365collector.windows import TimeWindow
from support.mock_api import GRAPH, SCOPE, token_response

WINDOW = TimeWindow(datetime(2024, 5, 1, tzinfo=UTC), datetime(2024, 5, 1, 1, tzinfo=UTC))
BASE = f"{GRAPH}{PATH}"


def _link(token: str) -> str:
    return f"{BASE}?$filter=receivedDateTime%20ge%202024-05-01T00%3A00%3A00Z&$skiptoken={token}"


class Pages:
    """Serves Graph pages keyed by URL; records the URLs asked."""

    def __init__(self, pages: dict[str, httpx.Response] | None = None) -> None:
        self.pages = pages or {}
        self.asked: list[str] = []
        self.default: httpx.Response | None = None

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.url.host == "login.microsoftonline.com":
            return token_response()
        url = str(request.url)
        self.asked.append(url)
        if url in self.pages:
            return self.pages[url]
        if self.default is not None:
            return self.default
        return httpx.Response(404, json={"error": {"code": "NotFound", "message": url}})


def _page(records: list[dict[str, object]], next_link: str | None = None) -> httpx.Response:
    body: dict[str, object] = {"value": records}
    if next_link is not None:
        body["@odata.nextLink"] = next_link
    return httpx.Response(200, json=body)


def _source(api_factory, handler, *, page_size: int = 1000, max_pages: int = 100):
    return GraphMessageTraceSource(
        api_factory(handler),
        graph_base=GRAPH + "/",
        scope=SCOPE,
        page_size=page_size,
        max_pages=max_pages,
    )


async def _collect(source: GraphMessageTraceSource, resume: str | None = None) -> list:
    return [page async for page in source.pages(WINDOW, resume)]


def test_window_filter_exact_text() -> None:
    assert graph_filter(WINDOW) == (
        "receivedDateTime ge 2024-05-01T00:00:00Z and "
        "receivedDateTime le 2024-05-01T00:59:59.9999999Z"
    )


def test_window_filter_converts_to_utc() -> None:
    plus2 = timezone(timedelta(hours=2))
    window = TimeWindow(
        datetime(2024, 5, 1, 2, tzinfo=plus2), datetime(2024, 5, 1, 3, tzinfo=plus2)
    )
    assert graph_filter(window) == graph_filter(WINDOW)


def test_first_url_encodes_filter_and_top(api_factory) -> None:
    source = _source(api_factory, Pages(), page_size=1234)
    url = source.first_url(WINDOW)
    parts = urlsplit(url)
    assert f"{parts.scheme}://{parts.netloc}{parts.path}" == BASE
    assert " " not in url
    query = parse_qs(parts.query)
    assert query == {"$filter": [graph_filter(WINDOW)], "$top": ["1234"]}
    assert "%20ge%202024-05-01T00%3A00%3A00Z" in url


async def test_pages_follow_next_links_verbatim(api_factory) -> None:
    second, third = _link("abc%3D%3D"), _link("de+f/g==")
    graph = Pages()
    source = _source(api_factory, graph)
    first = source.first_url(WINDOW)
    graph.pages = {
        first: _page([{"id": "1"}, {"id": "2"}], second),
        second: _page([{"id": "3"}], third),
        third: _page([{"id": "4"}]),
    }
    pages = await _collect(source)
    assert [[decoded(r) for r in p.records] for p in pages] == [
        [{"id": "1"}, {"id": "2"}],
        [{"id": "3"}],
        [{"id": "4"}],
    ]
    assert [p.next_link for p in pages] == [second, third, None]
    assert graph.asked == [first, second, third]


async def test_single_page_stops_without_next_link(api_factory) -> None:
    graph = Pages()
    source = _source(api_factory, graph)
    graph.pages = {source.first_url(WINDOW): _page([])}
    pages = await _collect(source)
    assert len(pages) == 1
    assert pages[0].records == []
    assert pages[0].next_link is None
    assert len(graph.asked) == 1


async def test_resume_starts_at_the_stored_link(api_factory) -> None:
    stored = _link("resume-here")
    graph = Pages({stored: _page([{"id": "9"}])})
    source = _source(api_factory, graph)
    pages = await _collect(source, stored)
    assert graph.asked == [stored]
    assert [decoded(r) for r in pages[0].records] == [{"id": "9"}]


async def test_next_link_to_another_host_is_refused(api_factory) -> None:
    graph = Pages()
    source = _source(api_factory, graph)
    evil = "https://graph.evil.example/v1.0/admin/exchange/tracing/messageTraces?$skiptoken=x"
    graph.pages = {source.first_url(WINDOW): _page([{"id": "1"}], evil)}
    with pytest.raises(SourceError, match="another host"):
        await _collect(source)
    assert graph.asked == [source.first_url(WINDOW)]


async def test_next_link_downgraded_to_http_is_refused(api_factory) -> None:
    graph = Pages()
    source = _source(api_factory, graph)
    downgraded = _link("x").replace("https://", "http://")
    graph.pages = {source.first_url(WINDOW): _page([], downgraded)}
    with pytest.raises(SourceError, match="another host"):
        await _collect(source)


async def test_same_next_link_twice_is_refused(api_factory) -> None:
    a, b = _link("a"), _link("b")
    graph = Pages()
    source = _source(api_factory, graph)
    graph.pages = {
        source.first_url(WINDOW): _page([{"id": "1"}], a),
        a: _page([{"id": "2"}], b),
        b: _page([{"id": "3"}], a),
    }
    with pytest.raises(SourceError, match="same next link twice"):
        await _collect(source)
    assert graph.asked == [source.first_url(WINDOW), a, b]


async def test_400_on_resumed_link_restarts_the_window(api_factory) -> None:
    stored = _link("expired")
    bad = httpx.Response(400, json={"error": {"code": "BadRequest", "message": "bad skiptoken"}})
    graph = Pages({stored: bad})
    source = _source(api_factory, graph)
    with pytest.raises(RestartWindowError, match="bad skiptoken"):
        await _collect(source, stored)


async def test_400_on_a_fresh_window_is_a_bad_request(api_factory) -> None:
    graph = Pages()
    source = _source(api_factory, graph)
    graph.pages = {
        source.first_url(WINDOW): httpx.Response(
            400, json={"error": {"code": "BadRequest", "message": "bad filter"}}
        )
    }
    with pytest.raises(BadRequestError) as info:
        await _collect(source)
    assert not isinstance(info.value, RestartWindowError)


async def test_400_after_the_resumed_page_is_a_bad_request(api_factory) -> None:
    stored, later = _link("ok"), _link("later")
    graph = Pages(
        {
            stored: _page([{"id": "1"}], later),
            later: httpx.Response(400, json={"error": {"code": "BadRequest", "message": "x"}}),
        }
    )
    source = _source(api_factory, graph)
    pages: list = []
    with pytest.raises(BadRequestError) as info:
        async for page in source.pages(WINDOW, stored):
            pages.append(page)
    assert not isinstance(info.value, RestartWindowError)
    assert len(pages) == 1


async def test_max_pages_enforced(api_factory) -> None:
    graph = Pages()
    source = _source(api_factory, graph, max_pages=3)
    links = [_link(str(i)) for i in range(10)]
    graph.pages = {source.first_url(WINDOW): _page([{"id": "0"}], links[0])}
    for i, link in enumerate(links[:-1]):
        graph.pages[link] = _page([{"id": str(i + 1)}], links[i + 1])
    pages: list = []
    with pytest.raises(SourceError, match="more than 3 pages"):
        async for page in source.pages(WINDOW, None):
            pages.append(page)
    assert len(pages) == 3
    assert len(graph.asked) == 3


async def test_exactly_max_pages_is_fine(api_factory) -> None:
    graph = Pages()
    source = _source(api_factory, graph, max_pages=2)
    second = _link("2")
    graph.pages = {source.first_url(WINDOW): _page([{"id": "1"}], second), second: _page([])}
    pages = await _collect(source)
    assert len(pages) == 2


def test_key_of_lower_cases_recipient_and_status(api_factory) -> None:
    source = _source(api_factory, Pages())
    record = {
        "id": "4A5B-Trace-ID",
        "recipientAddress": "Alice@Contoso.COM",
        "status": "Delivered",
        "senderAddress": "Bob@Fabrikam.com",
    }
    assert source.key_of(record) == ("4A5B-Trace-ID", "alice@contoso.com", "delivered")
    assert source.key_of({}) == ("", "", "")


async def test_each_page_carries_the_identity_of_each_record(api_factory) -> None:
    graph = Pages()
    source = _source(api_factory, graph)
    rows = [
        {"id": "T1", "recipientAddress": "A@X.com", "status": "Pending", "receivedDateTime": "r1"},
        {"id": "T1", "recipientAddress": "b@x.com", "status": "new|Value"},
    ]
    graph.pages = {source.first_url(WINDOW): _page(rows)}
    [page] = await _collect(source)
    assert page.facts == [("T1", "a@x.com", "pending", "r1"), ("T1", "b@x.com", "new/value", None)]
    assert [source.key_of(r) for r in page.records] == [fact[:3] for fact in page.facts]
