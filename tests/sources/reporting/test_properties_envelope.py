"""Properties of the Reporting Web Service envelope parser (verbose ``d`` and light ``value``)."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from o365collector.http.classify import Action, classify_reporting
from o365collector.sources.reporting.envelope import ReportPage, parse_envelope

FAST = settings(max_examples=150, deadline=None, database=None)

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text()
)
json_values = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
rows = st.lists(st.dictionaries(st.text(max_size=10), json_values, max_size=4), max_size=5)
links = st.none() | st.text(min_size=1, max_size=40)
# bodies that are almost envelopes: the right keys, anything inside
near_envelopes = st.dictionaries(
    st.sampled_from(["value", "d", "results", "__next", "odata.nextLink", "@odata.nextLink",
                     "error", "odata.error", "x"]),
    json_values | st.dictionaries(st.sampled_from(["results", "__next", "@odata.nextLink"]),
                                  json_values, max_size=3),
    max_size=4,
)  # fmt: skip


@FAST
@given(
    content=st.binary(max_size=300)
    | json_values.map(orjson.dumps)
    | near_envelopes.map(orjson.dumps)
)
def test_any_body_is_a_page_or_a_value_error(content: bytes) -> None:
    try:
        page = parse_envelope(content)
    except ValueError:
        return
    assert isinstance(page, ReportPage)
    assert isinstance(page.records, list)
    assert all(isinstance(row, dict) for row in page.records)
    assert page.next_link is None or (isinstance(page.next_link, str) and page.next_link)


@FAST
@given(content=st.binary(max_size=300) | near_envelopes.map(orjson.dumps))
def test_a_200_the_parser_refuses_is_retried_never_read_as_no_rows(content: bytes) -> None:
    verdict = classify_reporting(_response(200, content), parse_envelope)
    try:
        page = parse_envelope(content)
    except ValueError:
        assert verdict.action is Action.RETRY
        assert verdict.body is None
    else:
        assert verdict.action is Action.OK
        assert verdict.body == page


@FAST
@given(records=rows, link=links, extra=json_values)
def test_json_light_round_trips(
    records: list[dict[str, Any]], link: str | None, extra: Any
) -> None:
    body: dict[str, Any] = {"odata.metadata": extra, "value": records}
    if link is not None:
        body["odata.nextLink"] = link
    assert parse_envelope(orjson.dumps(body)) == ReportPage(records, link)


@FAST
@given(records=rows, link=links, as_list=st.booleans())
def test_verbose_json_round_trips(
    records: list[dict[str, Any]], link: str | None, as_list: bool
) -> None:
    if as_list:  # ``$top`` given: the rows sit directly in ``d``, the link beside it
        body: dict[str, Any] = {"d": records}
        if link is not None:
            body["odata.nextLink"] = link
    else:
        inner: dict[str, Any] = {"results": records}
        if link is not None:
            inner["__next"] = link
        body = {"d": inner}
    assert parse_envelope(orjson.dumps(body)) == ReportPage(records, link)


@FAST
@given(body=json_values.filter(lambda b: not isinstance(b, dict)))
def test_json_that_is_not_an_object_is_refused(body: Any) -> None:
    with pytest.raises(ValueError, match="not a JSON object"):
        parse_envelope(orjson.dumps(body))


def _response(status: int, content: bytes) -> Any:
    import httpx

    return httpx.Response(status, content=content)
