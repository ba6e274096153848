"""Graph rows kept as the JSON text Graph sent: identities, decoding, and lines written."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from o365collector.errors import SourceError
from o365collector.event import Event
from o365collector.sinks.encode import envelope, lines
from o365collector.sources.graph import message_trace
from o365collector.sources.graph.message_trace import (
    GraphMessageTraceSource,
    decode_page,
    facts_of,
    row_facts_of,
)
from o365collector.sources.graph.message_trace import _rows as rows_of
from o365collector.windows import TimeWindow
from support.mock_api import GRAPH, SCOPE, token_response

WINDOW = TimeWindow(datetime(2024, 5, 1, tzinfo=UTC), datetime(2024, 5, 1, 1, tzinfo=UTC))
ROW = {
    "id": "t1",
    "recipientAddress": "Bob@X.com",
    "status": "Delivered",
    "receivedDateTime": "2024-05-01T00:10:00Z",
    "subject": 'Überprüfung \u2028 "quoted"',
    "size": 12345678901234567890,
}


def _source(api_factory, body: bytes) -> GraphMessageTraceSource:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.host == "login.microsoftonline.com":
            return token_response()
        return httpx.Response(200, content=body, headers={"content-type": "application/json"})

    return GraphMessageTraceSource(
        api_factory(handler), graph_base=GRAPH, scope=SCOPE, page_size=10, max_pages=5
    )


async def _pages(source: GraphMessageTraceSource) -> list:
    return [page async for page in source.pages(WINDOW, None)]


async def test_rows_stay_the_text_graph_sent_and_decode_to_the_record(api_factory) -> None:
    body = b'{"value":[' + orjson.dumps(ROW) + b',{"id":"t2","status":"Failed"}]}'
    [page] = await _pages(_source(api_factory, body))
    assert [bytes(memoryview(r)) for r in page.records] == [
        orjson.dumps(ROW),
        b'{"id":"t2","status":"Failed"}',
    ]
    assert page.facts == facts_of([ROW, {"id": "t2", "status": "Failed"}])
    event = Event("t", "message_trace", "id", page.records[0])
    assert event.record == ROW
    assert event == Event("t", "message_trace", "id", dict(ROW))
    raw_lines, rejected = lines([event], "raw", "2024-05-01T00:00:00Z")
    assert rejected == {}
    assert bytes(raw_lines) == orjson.dumps(ROW) + b"\n"  # the vendor's bytes, as they came


async def test_a_pretty_printed_page_still_gives_one_line_per_event(api_factory) -> None:
    body = orjson.dumps({"value": [ROW, ROW | {"id": "t2"}]}, option=orjson.OPT_INDENT_2)
    assert b"\n" in body
    [page] = await _pages(_source(api_factory, body))
    events = [Event("t", "s", str(i), r) for i, r in enumerate(page.records)]
    for kind in ("raw", "envelope"):
        out, _ = lines(events, kind, "2024-05-01T00:00:00Z")
        assert len(bytes(out).splitlines()) == 2
        docs = [orjson.loads(line) for line in out.splitlines()]
        records = docs if kind == "raw" else [doc["record"] for doc in docs]
        assert records == [ROW, ROW | {"id": "t2"}]


async def test_a_row_that_is_not_an_object_fails_the_page(api_factory) -> None:
    with pytest.raises(SourceError, match="not JSON objects"):
        await _pages(_source(api_factory, b'{"value":[{"id":"a"},"text"]}'))


@pytest.mark.parametrize(
    ("text", "bad"),
    [(b"\xff\xfe", 0), (b"\xed\xa0\x80", 0), (b"caf\xc3", 3)],  # not UTF-8, a surrogate, cut
)
@pytest.mark.parametrize("part", [1, 3, 4, 1 << 16])  # checked in parts of this size
def test_a_page_with_bytes_that_are_not_utf8_is_refused_whole(
    text: bytes, bad: int, part: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Rows are written as the text that came; a field no identity reads (the subject)
    # holding bytes that are not UTF-8 would reach the sinks as such. The page is
    # refused instead (a 200 that is not a page is retried; nothing is delivered).
    monkeypatch.setattr(message_trace, "_UTF8_PART", part)
    body = b'{"value":[{"id":"a","subject":"ok"},{"id":"b","subject":"' + text + b'"}]}'
    with pytest.raises(ValueError, match=rf"not UTF-8 at byte {body.index(text) + bad}$"):
        decode_page(body)
    with pytest.raises(ValueError, match=r"not UTF-8 at byte 6$"):
        message_trace._check_utf8(b"\xc3\xbcber \xc3")  # the text ends inside a character
    assert decode_page('{"value":[{"id":"a","subject":"Über 😀"}]}'.encode())


def test_a_page_nested_too_deeply_is_not_a_page() -> None:
    # A ValueError is what the classifier retries; a RecursionError would fail the lane.
    body = b'{"value":[{"id":"a","x":' + b"[" * 5000 + b"]" * 5000 + b"}]}"
    with pytest.raises(ValueError, match="nested too deeply"):
        decode_page(body)


def test_the_envelope_around_a_kept_text_is_the_envelope_of_the_record() -> None:
    text_event = Event('ten"ant', "message_trace", "abc", _raw(ROW))
    dict_event = Event('ten"ant', "message_trace", "abc", dict(ROW))
    stamp = "2024-05-01T00:00:00.000000Z"
    spliced, _ = lines([text_event], "envelope", stamp)
    dumped, _ = lines([dict_event], "envelope", stamp)
    assert orjson.loads(spliced) == envelope(dict_event, stamp)
    assert bytes(spliced) == bytes(dumped)


def _raw(record: dict[str, object]):
    return rows_text(orjson.dumps({"value": [record]}))[0]


def rows_text(body: bytes) -> list:
    from o365collector.sources.graph.message_trace import decode_page

    return decode_page(body).value


_values = st.one_of(st.none(), st.booleans(), st.integers(-(2**63), 2**63 - 1), st.text(max_size=8))
_records = st.dictionaries(
    st.sampled_from(["id", "recipientAddress", "status", "receivedDateTime", "Received", "x"]),
    _values,
)


@settings(suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(st.lists(_records, max_size=5))
def test_identities_read_from_text_match_those_read_from_dicts(records) -> None:
    """A row's identity is the same read from its text or from its decoded dict."""
    body = orjson.dumps({"value": records})
    from_text = row_facts_of(rows_of(body))
    assert from_text == facts_of(records)
    assert from_text == facts_of(rows_text(body))
    for record, (trace, recipient, status, received) in zip(records, from_text, strict=True):
        assert trace == str(record.get("id", ""))
        assert recipient == str(record.get("recipientAddress", "")).lower()
        assert status == str(record.get("status", "")).lower().replace("|", "/")
        assert received == (record.get("receivedDateTime") or record.get("Received"))
