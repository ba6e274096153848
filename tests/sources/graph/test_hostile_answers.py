"""Hostile Microsoft answers: any body, any status, never a crash, never a moved checkpoint.

Each example reads one window through the real path (a source over a real ``ApiClient``
behind ``httpx.MockTransport``, the lane's ``WindowReader``, the dedup store and a SQLite
state store): page 1 is a good page with a link to page 2, and page 2 is a generated
hostile answer (random bytes, a truncated page, an HTML or XML error page, JSON of wrong
types or missing fields, huge strings or arrays, next links to other hosts or schemes,
dates out of range) with a generated status code. Proven for Graph message trace and for
the Reporting Web Service (MessageTrace):

- only the project's classified source errors (``SourceError`` and its subclasses) come
  out: nothing else escapes the reader;
- when page 2 is refused, the checkpoint stays where page 1 left it (watermark at the
  window's start, the in-flight window resumable from page 2's URL) and nothing of page 2
  reached the sinks; a body meant to be refused (any non-200, non-JSON, truncated, rows
  that are not objects, a link elsewhere) always is;
- when page 2 is accepted, the rows delivered are rows of its body, untouched, and the
  window is committed;
- no request ever leaves the configured hosts (the bearer token is never sent elsewhere).

Each test prints how many bodies it tried (``-rP`` shows it) and records it as the
``bodies_tried`` property (JUnit XML).
"""

from __future__ import annotations

import asyncio
import collections
import itertools
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any, cast

import httpx
import orjson
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from o365collector.errors import O365CollectorError, SourceError
from o365collector.event import Event
from o365collector.http.client import ApiClient
from o365collector.observability.progress import StreamProgress
from o365collector.pipeline.dedup import Deduplicator
from o365collector.pipeline.delivery import Dispatcher
from o365collector.pipeline.lane import LaneContext, StreamIdentity, WindowReader
from o365collector.planning.lanes import Priority
from o365collector.sources.base import WindowSource
from o365collector.sources.graph.message_trace import PATH, GraphMessageTraceSource
from o365collector.sources.reporting.paging import with_options
from o365collector.sources.reporting.source import ReportSource
from o365collector.state.sqlite import SqliteStateStore
from o365collector.state.writer import StateWriter
from o365collector.streams.catalog import CATALOG
from o365collector.windows import TimeWindow
from support.clock import FakeClock
from support.mock_api import EPOCH, GRAPH, SCOPE, ApiFactory, token_response

EXAMPLES = int(
    os.environ.get("HOSTILE_EXAMPLES", "800")
)  # per API; both tests together stay well under 30 s
HOSTILE = settings(max_examples=EXAMPLES, deadline=None, database=None)
RWS = "https://reports.office365.com/ecp/reportingwebservice/reporting.svc"
WINDOW = TimeWindow(EPOCH, EPOCH + timedelta(hours=1))
ALLOWED_HOSTS = {"login.microsoftonline.com", "graph.microsoft.com", "reports.office365.com"}
TENANTS = itertools.count()  # a tenant per example: nothing remembered across examples
MAX_HUGE = 400_000  # characters of a huge string: large, within a sane memory limit

# --- what Microsoft may answer ---------------------------------------------------------------

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70).filter(lambda n: abs(n) < 2**63)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=30)
)
json_values = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=10,
)
bad_dates = st.sampled_from([
    "9999-12-31T23:59:59.9999999-14:00", "0001-01-01T00:00:00+14:00", "/Date(-99999999999999)/",
    "/Date(99999999999999999999)/", "/Date(1714564800000+9999)/", "2024-02-30T00:00:00Z",
    "2024-05-01T24:00:00Z", "0000-00-00T00:00:00", "", "2024-05-01T12:30:00.0000000Z",
]) | st.datetimes().map(lambda d: d.isoformat())  # fmt: skip
hostile_links = st.sampled_from([
    "https://evil.example.com/v1.0/admin/exchange/tracing/messageTraces?$skiptoken=1",
    "http://graph.microsoft.com/v1.0/admin/exchange/tracing/messageTraces?$skiptoken=1",
    "http://reports.office365.com/ecp/reportingwebservice/reporting.svc/MessageTrace",
    "ftp://graph.microsoft.com/x", "//evil.example.com/x", "javascript:alert(1)", "",
    "https://graph.microsoft.com@evil.example.com/x", "file:///etc/passwd", "http://[::1",
    "https://reports.office365.com.evil.example.com/x", "https://[graph.microsoft.com/x",
]) | st.sampled_from([5, 0, True, False, [], {}, ["x"], {"href": "x"}, 1.5])  # fmt: skip
# Same host, broken paging options (RWS reads $skiptoken and $top as numbers).
bad_options = st.sampled_from(["$skiptoken=²", "$skiptoken=-1", "$skiptoken=x", "$top=0", "$top=³"])


@dataclass(frozen=True)
class Body:
    """A generated answer: its bytes, whether it must be refused, and its kind (for counts)."""

    content: bytes
    must_fail: bool
    kind: str


def _json(value: object, must_fail: bool, kind: str) -> Body:
    return Body(orjson.dumps(value), must_fail, kind)


def _rows_strategy(fields: Sequence[str]) -> st.SearchStrategy[list[dict[str, Any]]]:
    """Rows whose known fields hold any JSON value (wrong types), or are missing."""
    row = st.fixed_dictionaries({}, optional={name: json_values | bad_dates for name in fields})
    return st.lists(row, max_size=4)


def _html(title: str, body: str) -> bytes:
    return (
        f"<!DOCTYPE html><html><head><title>{title}</title></head><body>{body}</body></html>"
    ).encode()


def _xml(title: str) -> bytes:
    return (
        '<?xml version="1.0" encoding="utf-8"?><feed xmlns="http://www.w3.org/2005/Atom">'
        f"<title>{title}</title><entry><content>x</content></entry></feed>"
    ).encode()


def _bodies(
    good_page: dict[str, Any], envelope: Callable[[object], dict[str, Any]], fields: Sequence[str]
) -> st.SearchStrategy[Body]:
    """Hostile bodies for one API; ``envelope(rows)`` wraps rows as that API's page."""
    good = orjson.dumps(good_page)
    rows = _rows_strategy(fields)
    return st.one_of(
        st.binary(max_size=300).map(lambda b: Body(b, not _decodes_to_object(b), "random bytes")),
        st.integers(0, len(good) - 1).map(lambda n: Body(good[:n], True, "truncated page")),
        st.builds(_html, st.text(max_size=40), st.text(max_size=80)).map(
            lambda b: Body(b, True, "HTML page")
        ),
        st.text(max_size=40).map(lambda t: Body(_xml(t), True, "XML page")),
        json_values.map(lambda v: _json(v, not isinstance(v, dict), "random JSON")),
        # rows that are not objects
        st.lists(json_scalars | st.lists(json_scalars, max_size=2), min_size=1, max_size=4).map(
            lambda v: _json(envelope(v), True, "non-object rows")
        ),
        # the rows list itself of a wrong type, or the envelope missing
        (json_scalars | st.dictionaries(st.text(max_size=5), json_scalars, max_size=2)).map(
            lambda v: _json(envelope(v), True, "rows of a wrong type")
        ),
        st.sampled_from([{}, {"@odata.context": "x"}, {"d": {}}, {"d": None}, {"error": {}}]).map(
            lambda v: _json(v, True, "missing envelope")
        ),
        # rows with wrong-typed, missing or out-of-range fields: handed on untouched
        rows.map(lambda r: _json(envelope(r), False, "rows of wrong field types")),
        st.lists(
            st.fixed_dictionaries({name: bad_dates for name in fields}), min_size=1, max_size=3
        ).map(lambda r: _json(envelope(r), False, "dates out of range")),
        st.integers(10_000, MAX_HUGE).map(
            lambda n: _json(envelope([{fields[0]: "x" * n}]), False, "huge string")
        ),
        st.integers(1_000, 20_000).map(
            lambda n: _json(envelope(list(range(n))), True, "huge array")
        ),
        st.tuples(rows, hostile_links).map(
            lambda t: _json({**envelope(t[0]), **_link_fields(t[1])}, True, "link elsewhere")
        ),
        bad_options.map(lambda o: _linked(envelope([]), f"{RWS}/MessageTrace?{o}")),
    )


def _linked(page: dict[str, Any], link: str) -> Body:
    return _json({**page, **_link_fields(link)}, True, "bad paging options")


def _link_fields(link: object) -> dict[str, object]:
    """The link under every name either API reads one from."""
    return {"@odata.nextLink": link, "odata.nextLink": link, "__next": link}


def _decodes_to_object(content: bytes) -> bool:
    try:
        return isinstance(orjson.loads(content), dict)
    except orjson.JSONDecodeError:
        return False


statuses = st.just(200) | st.sampled_from(
    [200, 204, 301, 302, 400, 401, 403, 404, 408, 409, 410, 418, 425, 429, 500, 502, 503, 504]
)
retry_afters = st.none() | st.sampled_from(
    ["0", "1", "-5", "soon", "99999999999", "Wed, 21 Oct 2015 07:28:00 GMT"]
)
content_types = st.sampled_from(
    ["application/json", "application/json;odata=verbose", "text/html", "application/atom+xml", ""]
)


def with_known_cases(
    envelope: Callable[[object], dict[str, Any]], time_field: str
) -> Callable[[Callable[..., None]], Callable[..., None]]:
    """The bodies that once crashed a reader, always tried (as HTTP 200) on top of the draws."""
    cases = [
        _json(envelope([1]), True, "non-object rows"),
        _json(envelope([{time_field: []}]), False, "rows of wrong field types"),
        _json({**envelope([]), **_link_fields("http://[::1")}, True, "link elsewhere"),
        _linked(envelope([]), f"{RWS}/MessageTrace?$top=³"),
        _linked(envelope([]), f"{RWS}/MessageTrace?$skiptoken=²"),
    ]

    def apply(test: Callable[..., None]) -> Callable[..., None]:
        for body in cases:
            test = example(body=body, status=200, ctype="application/json", retry_after=None)(test)
        return test

    return apply


# --- one read of one window ------------------------------------------------------------------


class Recorder(Dispatcher):
    """The sinks: every event they were given, acknowledged at once."""

    def __init__(self) -> None:
        super().__init__([])
        self.events: list[Event] = []

    async def submit(self, events: Sequence[Event]) -> asyncio.Future[None]:
        self.events.extend(events)
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        done.set_result(None)
        return done


@dataclass
class Tenant:
    """Answers page 1 with ``first``, page 2 with the hostile answer, anything else empty."""

    second_url: str
    first: dict[str, Any]
    answer: httpx.Response
    empty: dict[str, Any]
    first_url: str = ""  # known once the source is built
    hosts: list[str] = field(default_factory=list)

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.hosts.append(request.url.host)
        if request.url.host == "login.microsoftonline.com":
            return token_response()
        url = str(request.url)
        if url == self.first_url:
            return httpx.Response(200, content=orjson.dumps(self.first))
        if url == self.second_url:
            answer = self.answer
            return httpx.Response(
                answer.status_code, content=answer.content, headers=answer.headers
            )
        return httpx.Response(200, content=orjson.dumps(self.empty))


@dataclass
class Outcome:
    error: BaseException | None
    delivered: list[dict[str, Any]]
    watermark: object
    inflight: object
    next_link: str | None


async def _read_window(source: WindowSource, store: SqliteStateStore, tenant: str) -> Outcome:
    """Read ``WINDOW`` as a live lane does: link after each page, watermark after the last."""
    writer = StateWriter(store)
    dispatcher = Recorder()
    stream = "s"
    store.ensure_watermark(tenant, stream, "live", WINDOW.start, EPOCH)
    dedup = Deduplicator(
        writer, tenant=tenant, tenant_id=f"{tenant}-id", stream=stream, keep_secs=3600
    )
    ctx = LaneContext(
        StreamIdentity(tenant, f"{tenant}-id", stream),
        source,
        dispatcher,
        dedup,
        FakeClock(EPOCH + timedelta(hours=2)),  # the lane reads it only to decide what to remember
        StreamProgress(tenant, stream),
    )
    reader = WindowReader(ctx, "live", Priority.LIVE)
    reader.start()

    error: BaseException | None = None
    try:
        await reader.read(WINDOW, None, asyncio.Event(), checkpoint=True)
    except Exception as exc:
        error = exc
    finally:
        await asyncio.wait_for(reader.drain(), 10)
        writer.close()
    checkpoint = store.load(tenant, stream, "live")
    return Outcome(
        error,
        [event.record for event in dispatcher.events],
        checkpoint.watermark,
        checkpoint.inflight,
        checkpoint.next_link,
    )


def _rows_of(content: bytes) -> list[object]:
    """Every row an accepted body could hold, whichever envelope it used."""
    try:
        body = orjson.loads(content)
    except orjson.JSONDecodeError:
        return []
    if not isinstance(body, dict):
        return []
    found: list[object] = []
    for value in (body.get("value"), body.get("d")):
        if isinstance(value, list):
            found.extend(value)
        elif isinstance(value, dict) and isinstance(value.get("results"), list):
            found.extend(value["results"])
    return found


def _check(outcome: Outcome, tenant: Tenant, body: Body, status: int, page_one_link: str) -> bool:
    """Assert the properties of the module docstring; True if page 2 was refused."""
    page_one = tenant.first["value"] if "value" in tenant.first else tenant.first["d"]["results"]
    assert set(tenant.hosts) <= ALLOWED_HOSTS, (
        f"a request left the configured hosts: {tenant.hosts}"
    )
    assert outcome.delivered[: len(page_one)] == page_one
    if outcome.error is not None:
        assert isinstance(outcome.error, SourceError), repr(outcome.error)
        assert isinstance(outcome.error, O365CollectorError)
        assert str(outcome.error)
        assert outcome.delivered == page_one, "rows of a refused page reached the sinks"
        assert outcome.watermark == WINDOW.start, "a refused page moved the watermark"
        assert (outcome.inflight, outcome.next_link) == (WINDOW, page_one_link)
        return True
    assert not (body.must_fail or status != 200), f"{body.kind} (HTTP {status}) was accepted"
    rows = _rows_of(body.content)
    assert all(row in rows for row in outcome.delivered[len(page_one) :])
    assert outcome.watermark == WINDOW.end
    assert (outcome.inflight, outcome.next_link) == (None, None)
    return False


def _response(status: int, body: Body, ctype: str, retry_after: str | None) -> httpx.Response:
    headers = {"content-type": ctype} if ctype else {}
    if retry_after is not None:
        headers["retry-after"] = retry_after
    return httpx.Response(status, content=body.content, headers=headers)


@dataclass
class Tally:
    """Bodies tried, refused and accepted, by kind."""

    tried: collections.Counter[str] = field(default_factory=collections.Counter)
    refused: int = 0

    def report(self, api: str, record_property: Callable[[str, object], None]) -> None:
        total = sum(self.tried.values())
        record_property("bodies_tried", total)
        print(f"{api}: {total} hostile bodies tried, {self.refused} refused; {dict(self.tried)}")
        assert total >= EXAMPLES // 2
        assert self.refused > total // 2  # most generated bodies are refusals, as meant


# --- the two APIs ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Api:
    """One API's page shape, its first page (linking to ``page_two``) and its source."""

    envelope: Callable[[object], dict[str, Any]]
    fields: tuple[str, ...]  # identity and time fields, the time field fourth
    first: dict[str, Any]
    page_two: str
    source: Callable[[ApiClient], GraphMessageTraceSource | ReportSource]


def _graph() -> Api:
    page_two = f"{GRAPH}{PATH}?$skiptoken=page-2"
    rows = [
        {"id": f"trace-{n}", "recipientAddress": "a@contoso.com", "status": "Delivered",
         "receivedDateTime": "2024-05-01T12:10:00Z"}
        for n in range(2)
    ]  # fmt: skip
    return Api(
        lambda rows: {"@odata.context": f"{GRAPH}/v1.0/$metadata#messageTraces", "value": rows},
        ("id", "recipientAddress", "status", "receivedDateTime", "senderAddress"),
        {"value": rows, "@odata.nextLink": page_two},
        page_two,
        lambda api: GraphMessageTraceSource(
            api, graph_base=GRAPH, scope=SCOPE, page_size=2, max_pages=10
        ),
    )


def _rws() -> Api:
    def source(api: ApiClient) -> ReportSource:
        return ReportSource(
            api, CATALOG["MessageTrace"], base=RWS, scope="s", page_size=2, max_pages=10
        )

    page_two = with_options(str(source(cast(ApiClient, None)).first_url(WINDOW)), skiptoken=2)
    rows = [
        {"MessageTraceId": f"trace-{n}", "RecipientAddress": "a@contoso.com", "Status": "Delivered",
         "Received": "/Date(1714565400000)/"}  # 12:10 UTC, inside WINDOW
        for n in range(2)
    ]  # fmt: skip
    return Api(
        lambda rows: {"d": {"results": rows}},
        ("MessageTraceId", "RecipientAddress", "Status", "Received", "SenderAddress"),
        {"d": {"results": rows, "__next": page_two}},
        page_two,
        source,
    )


@pytest.mark.parametrize("make", [_graph, _rws], ids=["graph", "rws"])
def test_pages_refuse_hostile_answers_without_crash_or_progress(
    make: Callable[[], Api],
    api_factory: ApiFactory,
    tmp_path: Path,
    record_property: Callable[[str, object], None],
) -> None:
    spec = make()
    tally = Tally()
    store = SqliteStateStore(tmp_path / "state.db")

    @HOSTILE
    @with_known_cases(spec.envelope, spec.fields[3])
    @given(
        body=_bodies(spec.first, spec.envelope, spec.fields),
        status=statuses,
        ctype=content_types,
        retry_after=retry_afters,
    )
    def one(body: Body, status: int, ctype: str, retry_after: str | None) -> None:
        answer = _response(status, body, ctype, retry_after)
        tenant = Tenant(spec.page_two, spec.first, answer, spec.envelope([]))
        source = spec.source(api_factory(tenant))
        tenant.first_url = str(source.first_url(WINDOW))
        outcome = asyncio.run(_read_window(source, store, f"t{next(TENANTS)}"))
        tally.tried[body.kind] += 1
        tally.refused += _check(outcome, tenant, body, status, spec.page_two)

    try:
        one()
    finally:
        store.close()
    tally.report(make.__name__.strip("_"), record_property)
