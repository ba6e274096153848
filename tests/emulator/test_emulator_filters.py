"""$filter / $top / $skiptoken parsing and the documented range rules."""

from __future__ import annotations

from datetime import timedelta

import pytest
from emulator_support import TRACES, Graph, iso, ticks_of, window_filter

from o365emulator.filters import (
    Cursor,
    decode_skiptoken,
    encode_skiptoken,
    parse_filter,
    parse_top,
)
from o365emulator.responses import GraphError
from support import FakeClock


def test_parse_conjunction_of_documented_properties() -> None:
    flt = parse_filter(
        "receivedDateTime ge 2026-01-18T00:00:00Z and receivedDateTime le 2026-01-19T00:00:00Z "
        "and recipientAddress eq 'bob@contoso.com' and senderAddress eq 'o''brien@fabrikam.com' "
        "and status eq 'Delivered' and messageId eq '<a@b>' and id eq 'x'"
    )
    assert flt.start == ticks_of("2026-01-18T00:00:00Z")
    assert flt.end == ticks_of("2026-01-19T00:00:00Z")
    assert flt.eq == {
        "recipientAddress": "bob@contoso.com",
        "senderAddress": "o'brien@fabrikam.com",
        "status": "Delivered",
        "messageId": "<a@b>",
        "id": "x",
    }


@pytest.mark.parametrize("digits", range(1, 8))
def test_fractional_seconds_of_1_to_7_digits(digits: int) -> None:
    fraction = "1234567"[:digits]
    flt = parse_filter(f"receivedDateTime ge 2026-01-18T00:00:00.{fraction}Z")
    assert flt.start == ticks_of("2026-01-18T00:00:00Z") + int(fraction.ljust(7, "0"))


def test_plus_zero_offset_equals_z() -> None:
    a = parse_filter("receivedDateTime le 2026-01-18T10:00:00+00:00")
    b = parse_filter("receivedDateTime le 2026-01-18T10:00:00Z")
    assert a.end == b.end is not None


def test_or_is_ignored_and_the_last_value_wins() -> None:
    flt = parse_filter("recipientAddress eq 'a@contoso.com' or recipientAddress eq 'b@contoso.com'")
    assert flt.eq == {"recipientAddress": "b@contoso.com"}


def test_subject_functions_and_parentheses() -> None:
    flt = parse_filter("(contains(subject,'Weekly digest') and recipientAddress eq 'x@y')")
    assert flt.subject == ("contains", "Weekly digest")
    assert flt.eq == {"recipientAddress": "x@y"}


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("receivedDateTime ge 2026-01-18T00:00:00", "DateTimeOffset"),
        ("receivedDateTime ge 2026-01-18T00:00:00.12345678Z", "DateTimeOffset"),
        ("receivedDateTime ge 2026-01-18T00:00:00+02:00", "DateTimeOffset"),
        ("receivedDateTime ge 2026-02-30T00:00:00Z", "not a valid date"),
        ("receivedDateTime ge '2026-01-18T00:00:00Z'", "unquoted"),
        ("receivedDateTime gt 2026-01-18T00:00:00Z", "use ge and le"),
        ("recipientAddress eq bob@contoso.com", "quoted"),
        ("recipientAddress ne 'bob@contoso.com'", "use eq"),
        ("nosuch eq 'x'", "could not find a property named 'nosuch'"),
        ("status eq 'shipped'", "exchangeMessageTraceStatus"),
        ("recipientAddress eq 'unterminated", "syntax error"),
        ("recipientAddress eq 'a' xor status eq 'delivered'", "expected 'and' or 'or'"),
        ("not status eq 'delivered'", "'not' is not supported"),
        ("contains(senderAddress,'x')", "only supported on subject"),
        ("", "empty"),
    ],
)
def test_unparseable_filters_name_the_problem(text: str, problem: str) -> None:
    with pytest.raises(GraphError) as info:
        parse_filter(text)
    assert info.value.status == 400
    assert info.value.code == "BadRequest"
    assert problem in info.value.message


@pytest.mark.parametrize("value", ["0", "5001", "-1", "abc", "1.5", ""])
def test_bad_top(value: str) -> None:
    with pytest.raises(GraphError) as info:
        parse_top(value, 1000, 5000)
    assert "Invalid $top value" in info.value.message


def test_top_bounds_and_default() -> None:
    assert parse_top(None, 1000, 5000) == 1000
    assert parse_top("1", 1000, 5000) == 1
    assert parse_top("5000", 1000, 5000) == 5000


def test_skiptoken_round_trip_and_garbage() -> None:
    cursor = Cursor((17, bytes(range(16)), "a@b"), (1, 2), "digest")
    assert decode_skiptoken(encode_skiptoken(cursor)) == cursor
    for bad in ("", "%%%", "bm90IGpzb24", encode_skiptoken(cursor)[:-3]):
        with pytest.raises(GraphError):
            decode_skiptoken(bad)


# ------------------------------------------------------------------------ over HTTP
def _bad_request(response, part: str) -> None:
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["code"] == "BadRequest"
    assert part in error["message"]


def test_range_rules_over_http(graph: Graph, clock: FakeClock) -> None:
    now = clock.now().replace(microsecond=0)
    ok = graph.list(**{"$filter": window_filter(now - timedelta(days=10), now)})
    assert ok.status_code == 200, "exactly 10 days is allowed"
    _bad_request(
        graph.list(**{"$filter": window_filter(now - timedelta(days=10, seconds=1), now)}),
        "10 days",
    )
    old = now - timedelta(days=91)
    _bad_request(graph.list(**{"$filter": window_filter(old, old + timedelta(days=1))}), "90 days")
    _bad_request(
        graph.list(
            **{"$filter": window_filter(now - timedelta(hours=1), now + timedelta(seconds=1))}
        ),
        "future",
    )
    _bad_request(
        graph.list(**{"$filter": window_filter(now, now - timedelta(hours=1))}), "not be later"
    )
    _bad_request(graph.list(**{"$filter": f"receivedDateTime ge {iso(now)}"}), "Both")
    _bad_request(graph.list(**{"$filter": f"receivedDateTime le {iso(now)}"}), "Both")
    _bad_request(
        graph.list(**{"$filter": "receivedDateTime ge 2026-01-18T00:00:00"}), "DateTimeOffset"
    )


def test_end_exactly_now_is_allowed(graph: Graph, clock: FakeClock) -> None:
    clock.set(clock.now().replace(microsecond=0))
    response = graph.list(
        **{"$filter": window_filter(clock.now() - timedelta(hours=2), clock.now())}
    )
    assert response.status_code == 200


def test_bad_top_over_http(graph: Graph) -> None:
    _bad_request(graph.list(**{"$top": "0"}), "Invalid $top value")
    _bad_request(graph.list(**{"$top": "5001"}), "Invalid $top value")
    _bad_request(graph.list(**{"$top": "ten"}), "Invalid $top value")


def test_duplicate_query_option_is_rejected(graph: Graph) -> None:
    response = graph.client.get(f"{TRACES}?$top=5&$top=6", headers=graph.bearer())
    _bad_request(response, "more than once")


def test_unknown_query_options_are_ignored(graph: Graph) -> None:
    plain = graph.list(**{"$top": "20"}).json()["value"]
    extra = graph.list(
        **{"$top": "20", "$orderby": "receivedDateTime asc", "$select": "id"}
    ).json()["value"]
    assert extra == plain
    assert set(extra[0]) >= {"id", "recipientAddress", "status"}, "$select is not honoured"


def test_malformed_skiptoken_and_foreign_filter(graph: Graph, clock: FakeClock) -> None:
    _bad_request(graph.list(**{"$skiptoken": "not-a-token"}), "$skiptoken")
    first = graph.list(**{"$top": "5"}).json()
    token = first["@odata.nextLink"].split("$skiptoken=")[1]
    now = clock.now().replace(microsecond=0)
    other = window_filter(now - timedelta(hours=3), now)
    _bad_request(graph.list(**{"$filter": other, "$skiptoken": token}), "$skiptoken")
