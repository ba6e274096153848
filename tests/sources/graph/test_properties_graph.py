"""Properties of Graph page handling: classify_graph and the message trace source's pages."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from o365collector.errors import SourceError
from o365collector.event import decoded
from o365collector.http.classify import Action, classify_graph
from o365collector.page_gate import Permit
from o365collector.sources.graph.message_trace import GraphMessageTraceSource, PageBody, decode_page
from o365collector.windows import TimeWindow
from support.mock_api import EPOCH

FAST = settings(max_examples=150, deadline=None, database=None)
GRAPH = "https://graph.microsoft.com"

json_scalars = st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.text(max_size=20)
json_values = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
rows = st.lists(st.dictionaries(st.text(max_size=8), json_values, max_size=4), max_size=5)


def _is_page(body: object) -> bool:
    return isinstance(body, dict) and isinstance(body.get("value"), list)


def _decodes(content: bytes) -> object:
    try:
        return orjson.loads(content)
    except orjson.JSONDecodeError:
        return None


@FAST
@given(
    status=st.integers(100, 599),
    content=st.binary(max_size=200) | json_values.map(orjson.dumps),
    retry_after=st.none() | st.text(max_size=12),
)
def test_any_response_gets_one_action_and_only_a_page_is_ok(
    status: int, content: bytes, retry_after: str | None
) -> None:
    headers = {"retry-after": retry_after} if retry_after is not None else {}
    try:
        response = httpx.Response(status, content=content, headers=headers)
    except (UnicodeEncodeError, ValueError):
        return  # not a header httpx can carry: no such response reaches the classifier
    verdict = classify_graph(response)
    assert isinstance(verdict.action, Action)
    assert verdict.reason
    if verdict.action is Action.OK:
        assert status == 200
        assert _is_page(verdict.body)
    if verdict.retry_after_secs is not None:
        assert verdict.retry_after_secs >= 0


@FAST
@given(content=st.binary(max_size=200) | json_values.map(orjson.dumps))
def test_a_200_that_is_not_a_page_is_retried_never_read_as_rows(content: bytes) -> None:
    verdict = classify_graph(httpx.Response(200, content=content))
    if _is_page(_decodes(content)):
        assert verdict.action is Action.OK
    else:
        assert verdict.action is Action.RETRY
        assert verdict.body is None


@FAST
@given(records=rows, link=st.none() | st.text(min_size=1, max_size=40), extra=json_values)
def test_a_page_round_trips_through_the_classifier(
    records: list[dict[str, Any]], link: str | None, extra: object
) -> None:
    page: dict[str, Any] = {"@odata.context": extra, "value": records}
    if link is not None:
        page["@odata.nextLink"] = link
    verdict = classify_graph(httpx.Response(200, content=orjson.dumps(page)))
    assert verdict.action is Action.OK
    assert verdict.body == page


# --- the source's page loop -----------------------------------------------------------------


class _PagesApi:
    """The ApiClient surface ``pages`` uses: answers each URL with a prepared body."""

    tenant = "t"

    def __init__(self, bodies: dict[str, dict[str, Any]]) -> None:
        self.bodies = bodies
        self.asked: list[str] = []

    async def get_page(self, url: str, **_: Any) -> tuple[PageBody, Permit]:
        self.asked.append(url)
        return decode_page(orjson.dumps(self.bodies[url])), Permit()  # as classify_graph does


WINDOW = TimeWindow(EPOCH, EPOCH.replace(hour=13))
links = st.sampled_from(
    [f"{GRAPH}/v1.0/admin/exchange/tracing/messageTraces?$skiptoken={n}" for n in range(4)]
    + ["https://evil.example.com/steal?$skiptoken=0", "HTTPS://GRAPH.microsoft.com/x?p=1"]
)


def _source(max_pages: int) -> tuple[GraphMessageTraceSource, Any]:
    api = _PagesApi({})
    source = GraphMessageTraceSource(
        api,  # type: ignore[arg-type]
        graph_base=GRAPH,
        scope="https://graph.microsoft.com/.default",
        page_size=100,
        max_pages=max_pages,
    )
    return source, api


async def _read(source: GraphMessageTraceSource) -> list[Any]:
    return [page async for page in source.pages(WINDOW, None)]


@FAST
@given(
    chain=st.lists(st.tuples(rows, links), min_size=1, max_size=6),
    last=rows,
    max_pages=st.integers(1, 8),
)
def test_pages_follow_next_links_until_the_last_or_refuse(
    chain: list[tuple[list[dict[str, Any]], str]], last: list[dict[str, Any]], max_pages: int
) -> None:
    """Rows come out untouched page by page; a loop, a foreign host or too many pages stop it.

    ``chain`` are the pages with a next link (to the URL given), ``last`` the page without;
    a URL met twice answers as it did the first time.
    """
    source, api = _source(max_pages)
    url = source.first_url(WINDOW)
    script: list[tuple[str, dict[str, Any]]] = []
    for records, link in chain:
        if any(u == url for u, _ in script):
            break
        script.append((url, {"value": records, "@odata.nextLink": link}))
        url = link
    if all(u != url for u, _ in script):
        script.append((url, {"value": last}))
    api.bodies = dict(script)
    expected: list[list[dict[str, Any]]] = []
    seen: set[str] = set()
    error = None
    for n, (at, body) in enumerate(script):
        if n >= max_pages:
            error = "more than"
            break
        seen.add(at)
        link = body.get("@odata.nextLink")
        if link is not None and not link.lower().startswith(GRAPH):
            error = "another host"
            break
        if link is not None and link in seen:
            error = "same next link"
            break
        expected.append(body["value"])
        if link is None:
            break
    else:
        error = error or "more than"
    if error is None:
        pages = asyncio.run(_read(source))
        assert [[decoded(r) for r in p.records] for p in pages] == expected
        assert pages[-1].next_link is None
        assert all(p.next_link for p in pages[:-1])
        assert [len(p.facts) for p in pages] == [len(r) for r in expected]
    else:
        with pytest.raises(SourceError, match=error):
            asyncio.run(_read(source))
    assert len(api.asked) <= max_pages
