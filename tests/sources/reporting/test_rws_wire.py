"""Small pieces of the RWS wire: dates, envelopes, links and the classification table."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx
import pytest

from o365collector.errors import SourceError
from o365collector.http.classify import Action, classify_reporting
from o365collector.sources.reporting.dates import canonical_date, filter_literal, parse_rws_date
from o365collector.sources.reporting.envelope import parse_envelope, read_envelope
from o365collector.sources.reporting.paging import (
    passes_ceiling,
    query_value,
    skiptoken_of,
    with_options,
)

MOMENT = datetime(2022, 7, 25, 12, 26, 13, 240000, tzinfo=UTC)


@pytest.mark.parametrize(
    "text",
    [
        "/Date(1658751973240)/",
        "\\/Date(1658751973240)\\/",
        "/Date(1658751973240+0200)/",  # the offset names the sender's zone; ms are UTC
        "/Date(1658751973240-0500)/",
        "2022-07-25T12:26:13.24Z",
        "2022-07-25T12:26:13.2400000",  # JSON light without Z
        "2022-07-25T14:26:13.2400000+02:00",
    ],
)
def test_every_date_shape_is_the_same_utc_instant(text: str) -> None:
    assert parse_rws_date(text) == MOMENT
    assert canonical_date(text) == "2022-07-25T12:26:13.240Z"


@pytest.mark.parametrize("value", [None, 12, "", "not a date", "/Date(x)/", "2022-13-45T00:00"])
def test_non_dates_are_none_and_keep_their_text(value: object) -> None:
    assert parse_rws_date(value) is None
    assert canonical_date(value) == ("" if value is None else str(value))


def test_seven_fractional_digits_are_read_not_refused() -> None:
    assert parse_rws_date("2022-09-05T18:10:13.4907658") == datetime(
        2022, 9, 5, 18, 10, 13, 490765, tzinfo=UTC
    )
    assert parse_rws_date("/Date(-1000)/") == datetime(1969, 12, 31, 23, 59, 59, tzinfo=UTC)
    assert filter_literal(MOMENT) == "datetime'2022-07-25T12:26:13Z'"


def test_both_envelopes_and_d_as_a_list() -> None:
    rows = [{"a": 1}]
    assert read_envelope({"value": rows, "odata.nextLink": "n"}).next_link == "n"
    assert read_envelope({"d": {"results": rows, "__next": "v"}}).next_link == "v"
    assert read_envelope({"d": rows}).records == rows
    assert read_envelope({"d": {"results": []}}).next_link is None


@pytest.mark.parametrize(
    ("body", "says"),
    [
        (b"<html>sign in</html>", "not JSON"),
        (b"[1]", "not a JSON object"),
        (b'{"odata.error": {"code": ""}}', "error object"),
        (b'{"value": [1]}', "not a list of row objects"),
        (b'{"d": {"x": 1}}', "neither"),
        (b'{"value": [], "odata.nextLink": 3}', "not a link"),
        (b'{"something": []}', "neither `value`"),
    ],
)
def test_anything_else_is_refused_never_read_as_no_rows(body: bytes, says: str) -> None:
    with pytest.raises(ValueError, match=says):
        parse_envelope(body)


def test_skiptoken_is_set_without_touching_the_rest() -> None:
    url = "https://r/x.svc/MessageTrace?$filter=A%20eq%20'b'&$top=2000&$format=json"
    assert skiptoken_of(url) == 0
    moved = with_options(url, skiptoken=4000)
    assert moved == url + "&$skiptoken=4000"
    assert with_options(moved, skiptoken=6000) == url + "&$skiptoken=6000"
    assert query_value(moved, "$FILTER") == "A eq 'b'"
    with pytest.raises(SourceError, match="non-numeric"):
        skiptoken_of(url + "&%24skiptoken=abc")
    assert not passes_ceiling(996_000, 2000)
    assert passes_ceiling(998_000, 2000)


def _response(status: int, body: bytes, **headers: str) -> httpx.Response:
    request = httpx.Request("GET", "https://r/ecp/reportingwebservice/reporting.svc/MailTraffic")
    return httpx.Response(status, content=body, headers=headers, request=request)


@pytest.mark.parametrize(
    ("status", "body", "action", "says"),
    [
        (200, b'{"value": []}', Action.OK, "ok"),
        (200, b"<html/>", Action.RETRY, "HTTP 200 with an unexpected body"),
        (401, b"<title>401 - Unauthorized</title>", Action.REFRESH_AUTH, "401 - Unauthorized"),
        (403, b'{"Message": "Forbidden"}', Action.FAIL_PERMISSION, "Global Reader"),
        (404, b"", Action.FAIL_SETUP, "report MailTraffic is not offered"),
        (400, b'{"odata.error": {"message": {"value": "bad"}}}', Action.FAIL_REQUEST, "bad"),
        (408, b"", Action.RETRY, "HTTP 408"),
        (502, b"gateway", Action.RETRY, "HTTP 502: gateway"),
        (418, b"teapot", Action.FAIL_REQUEST, "HTTP 418: teapot"),
    ],
)
def test_the_classification_table(status, body, action, says) -> None:
    verdict = classify_reporting(_response(status, body))
    assert verdict.action is action
    assert says in verdict.reason


def test_retry_after_is_read_on_429_and_5xx() -> None:
    throttled = classify_reporting(_response(429, b"{}", **{"Retry-After": "7"}))
    assert throttled.action is Action.RATE_LIMITED and throttled.retry_after_secs == 7.0
    busy = classify_reporting(_response(503, b"{}", **{"Retry-After": "3"}))
    assert busy.action is Action.RETRY and busy.retry_after_secs == 3.0


def test_a_decoder_decides_what_a_good_200_is() -> None:
    def decode(content: bytes) -> object:
        if not content.startswith(b"<service"):
            raise ValueError("not a service document")
        return "parsed"

    assert classify_reporting(_response(200, b"<service/>"), decode).body == "parsed"
    refused = classify_reporting(_response(200, b'{"value": []}'), decode)
    assert refused.action is Action.RETRY and "not a service document" in refused.reason
