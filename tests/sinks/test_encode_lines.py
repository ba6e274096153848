"""JSON lines of a batch: the fast path and the one-by-one fallback give the same bytes."""

from __future__ import annotations

import json

import orjson

from o365collector.event import Event, StreamIds, event_id, row_facts
from o365collector.sinks.encode import UNENCODABLE, envelope, lines

STAMP = "2026-11-22T10:00:00.000000Z"


def _event(n: int, record: dict[str, object]) -> Event:
    return Event("contoso", "message_trace", f"id{n}", record)


def test_envelope_lines_are_the_single_event_encoding() -> None:
    events = [_event(i, {"id": f"m{i}", "status": "Delivered", "size": i}) for i in range(3)]
    body, rejected = lines(events, "envelope", STAMP)
    assert rejected == {}
    one_by_one = (
        orjson.dumps(envelope(e, STAMP), option=orjson.OPT_APPEND_NEWLINE) for e in events
    )
    assert body == b"".join(one_by_one)
    raw, _ = lines(events, "raw", STAMP)
    assert [orjson.loads(line) for line in raw.splitlines()] == [e.record for e in events]


def test_one_value_orjson_refuses_falls_back_and_rejects_only_what_json_cannot_hold() -> None:
    events = [
        _event(0, {"id": "a"}),
        _event(1, {"id": "b", "huge": 2**70}),  # orjson refuses, the stdlib writes it
        _event(2, {"id": "c", "bad": object()}),  # not JSON at all
        _event(3, {"id": "d"}),
    ]
    body, rejected = lines(events, "raw", STAMP)
    assert rejected == {2: UNENCODABLE}
    decoded = [json.loads(line) for line in body.splitlines()]
    assert [d["id"] for d in decoded] == ["a", "b", "d"]
    assert decoded[1]["huge"] == 2**70


def test_event_ids_of_a_page_are_each_rows_event_id() -> None:
    keys = [("t1", "A@x.com", "Delivered"), ("t2", "b@x.com", "failed"), ("t1", "a@x.com", "x")]
    rest = iter(keys)
    facts = row_facts([{}, {}, {}], lambda _: next(rest))
    assert StreamIds("tid", "message_trace").event_ids(facts) == [
        event_id("tid", "message_trace", *key) for key in keys
    ]
