"""The RWS report source: queries, paging, ceiling splits, aggregate alignment, resuming."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import orjson
import pytest

from o365collector.errors import BadRequestError, RestartWindowError, SourceError
from o365collector.sources.reporting.source import ReportSource
from o365collector.streams.catalog import CATALOG
from o365collector.windows import TimeWindow, parse_iso
from support.rws import token_response

RWS = "https://reports.office365.com/ecp/reportingwebservice/reporting.svc"
T0 = datetime(2024, 5, 1, tzinfo=UTC)
_BOUND = re.compile(r"(StartDate|EndDate) eq datetime'([^']+)'", re.IGNORECASE)


class FakeRws:
    """A tiny RWS: rows with a ``Received`` time, inclusive bounds, numeric offsets, JSON light.

    ``link``: "relative" (service next links, as RWS sends them), or "none" (only
    ``$top``-sized pages, as Elastic's mock). Offsets at or past ``ceiling`` answer 500.
    """

    def __init__(self, rows: list[dict[str, Any]], *, link: str = "relative", ceiling: int = 10**9):
        self.rows = rows
        self.link = link
        self.ceiling = ceiling
        self.asked: list[str] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.url.host == "login.microsoftonline.com":
            return token_response()
        url = str(request.url)
        self.asked.append(url)
        query = parse_qs(urlsplit(url).query)
        bounds = dict(_BOUND.findall(query["$filter"][0]))
        low, high = parse_iso(bounds["StartDate"]), parse_iso(bounds["EndDate"])
        skip = int(query.get("$skiptoken", ["0"])[0])
        if skip >= self.ceiling:
            body = {"odata.error": {"code": "UnknownError", "message": {"lang": "", "value": "x"}}}
            return httpx.Response(500, json=body)
        top = int(query["$top"][0])
        hits = [r for r in self.rows if low <= parse_iso(r["Received"]) <= high]
        body: dict[str, Any] = {"value": hits[skip : skip + top]}
        if self.link == "relative" and skip + top < len(hits):
            rest = "&".join(p for p in urlsplit(url).query.split("&") if "skiptoken" not in p)
            relative = "../../reportingwebservice/reporting.svc/MessageTrace"
            body["odata.nextLink"] = f"{relative}?{rest}&$skiptoken={skip + top}"
        return httpx.Response(200, content=orjson.dumps(body))


def _rows(count: int, every: timedelta) -> list[dict[str, Any]]:
    return [
        {
            "MessageTraceId": f"00000000-0000-0000-0000-{i:012d}",
            "RecipientAddress": f"u{i}@contoso.com",
            "Status": "Delivered",
            "Received": (T0 + i * every).strftime("%Y-%m-%dT%H:%M:%S.0000000"),
        }
        for i in range(count)
    ]


def _source(api, report: str = "MessageTrace", **kwargs: Any) -> ReportSource:
    return ReportSource(api, CATALOG[report], base=RWS + "/", scope="s", **kwargs)


async def _read(source: ReportSource, window: TimeWindow, resume: str | None = None) -> list:
    return [page async for page in source.pages(window, resume)]


def _window(hours: float, start: datetime = T0) -> TimeWindow:
    return TimeWindow(start, start + timedelta(hours=hours))


def test_first_url_asks_for_the_window_with_eq_bounds_top_and_json(api_factory) -> None:
    url = _source(api_factory(FakeRws([])), page_size=1500).first_url(_window(1))
    assert url is not None
    parts = urlsplit(url)
    assert f"{parts.scheme}://{parts.netloc}{parts.path}" == f"{RWS}/MessageTrace"
    assert " " not in url
    assert parse_qs(parts.query) == {
        "$filter": [
            "StartDate eq datetime'2024-05-01T00:00:00Z' and "
            "EndDate eq datetime'2024-05-01T01:00:00Z'"
        ],
        "$top": ["1500"],
        "$format": ["json"],
    }


def test_page_size_above_2000_is_refused(api_factory) -> None:
    with pytest.raises(ValueError, match="2000"):
        _source(api_factory(FakeRws([])), page_size=2001)


async def test_relative_next_links_are_followed_to_the_end(api_factory) -> None:
    service = FakeRws(_rows(7, timedelta(minutes=1)))
    pages = await _read(_source(api_factory(service), page_size=3), _window(1))
    assert [len(p.records) for p in pages] == [3, 3, 1]
    assert all(p.next_link and p.next_link.startswith(RWS) for p in pages[:-1])
    assert pages[-1].next_link is None
    assert [parse_qs(urlsplit(u).query).get("$skiptoken") for u in service.asked] == [
        None,
        ["3"],
        ["6"],
    ]


async def test_without_links_a_full_page_asks_for_the_next_offset(api_factory) -> None:
    service = FakeRws(_rows(6, timedelta(minutes=1)), link="none")
    pages = await _read(_source(api_factory(service), page_size=3), _window(1))
    assert [len(p.records) for p in pages] == [3, 3, 0]
    assert len(service.asked) == 3


async def test_a_link_to_another_host_is_refused(api_factory) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.host == "login.microsoftonline.com":
            return token_response()
        return httpx.Response(
            200, json={"value": [{}], "odata.nextLink": "https://evil.example/x?$skiptoken=1"}
        )

    with pytest.raises(SourceError, match=r"another host \(https://evil.example\)"):
        await _read(_source(api_factory(handler)), _window(1))


async def test_a_repeated_link_stops_as_a_loop(api_factory) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.host == "login.microsoftonline.com":
            return token_response()
        link = f"{_source(None).first_url(_window(1))}&$skiptoken=5"
        return httpx.Response(200, json={"value": [{}], "odata.nextLink": link})

    with pytest.raises(SourceError, match="same next link came twice"):
        await _read(_source(api_factory(handler)), _window(1))


async def test_a_range_that_would_pass_the_skiptoken_ceiling_is_read_in_halves(
    api_factory,
) -> None:
    rows = _rows(40, timedelta(minutes=3))  # 40 rows over two hours
    service = FakeRws(rows, ceiling=12)
    source = _source(api_factory(service), page_size=4, skiptoken_ceiling=12)
    pages = await _read(source, _window(2))
    delivered = {r["MessageTraceId"] for p in pages for r in p.records}
    assert delivered == {r["MessageTraceId"] for r in rows}
    offsets = [int(parse_qs(urlsplit(u).query).get("$skiptoken", ["0"])[0]) for u in service.asked]
    assert max(offsets) + 4 <= 12  # never asked a page the service would fail
    ranges = {
        dict(_BOUND.findall(parse_qs(urlsplit(u).query)["$filter"][0]))["EndDate"]
        for u in service.asked
    }
    assert len(ranges) > 1  # the window was split


async def test_a_second_that_alone_passes_the_ceiling_fails_loudly(api_factory) -> None:
    rows = _rows(30, timedelta(0))  # all in one instant
    source = _source(api_factory(FakeRws(rows, ceiling=12)), page_size=4, skiptoken_ceiling=12)
    with pytest.raises(SourceError, match="cannot be split further"):
        await _read(source, TimeWindow(T0, T0 + timedelta(seconds=1)))


async def test_resume_continues_from_the_stored_link(api_factory) -> None:
    service = FakeRws(_rows(7, timedelta(minutes=1)))
    source = _source(api_factory(service), page_size=3)
    first = await _read(source, _window(1))
    service.asked.clear()
    resumed = await _read(source, _window(1), first[0].next_link)
    assert [len(p.records) for p in resumed] == [3, 1]
    assert service.asked[0] == first[0].next_link


async def test_a_foreign_resume_link_reads_the_window_again(api_factory) -> None:
    source = _source(api_factory(FakeRws([])))
    with pytest.raises(RestartWindowError):
        await _read(source, _window(1), "https://reports.office365.com/ecp/x?$skiptoken=3")


async def test_a_refused_resume_link_reads_the_window_again(api_factory) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.host == "login.microsoftonline.com":
            return token_response()
        return httpx.Response(400, json={"odata.error": {"code": "", "message": {"value": "bad"}}})

    source = _source(api_factory(handler))
    link = source.first_url(_window(1))
    with pytest.raises(RestartWindowError):
        await _read(source, _window(1), link)
    with pytest.raises(BadRequestError, match="collector bug"):
        await _read(source, _window(1))


def _bucket_rows(report: str, days: int, per_day: int) -> list[dict[str, Any]]:
    out = []
    for d in range(days):
        for h in range(0, 24, 24 // per_day):
            out.append(
                {
                    "Date": (T0 + timedelta(days=d, hours=h)).strftime("%Y-%m-%dT%H:%M:%SZ"),
                    "Direction": "Inbound",
                    "Domain": "contoso.com",
                    "EventType": "GoodMail",
                    "Action": None,
                    "MessageCount": d + h,
                }
            )
    return out


async def test_aggregates_read_whole_buckets_only(api_factory) -> None:
    asked: list[dict[str, str]] = []
    rows = _bucket_rows("MailTraffic", 1, 24)

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.host == "login.microsoftonline.com":
            return token_response()
        flt = parse_qs(urlsplit(str(request.url)).query)["$filter"][0]
        bounds = dict(_BOUND.findall(flt))
        asked.append({**bounds, "filter": flt})
        low, high = parse_iso(bounds["StartDate"]), parse_iso(bounds["EndDate"])
        # inclusive bounds: the bucket at EndDate comes back too
        return httpx.Response(
            200, json={"value": [r for r in rows if low <= parse_iso(r["Date"]) <= high]}
        )

    source = _source(api_factory(handler), "MailTraffic")
    window = TimeWindow(T0 + timedelta(hours=1, minutes=30), T0 + timedelta(hours=4, minutes=15))
    pages = await _read(source, window)
    assert asked == [
        {
            "StartDate": "2024-05-01T01:00:00Z",
            "EndDate": "2024-05-01T04:00:00Z",
            "filter": "StartDate eq datetime'2024-05-01T01:00:00Z' and EndDate eq "
            "datetime'2024-05-01T04:00:00Z' and AggregateBy eq 'Hour'",
        }
    ]
    dates = [r["Date"] for p in pages for r in p.records]
    assert dates == ["2024-05-01T01:00:00Z", "2024-05-01T02:00:00Z", "2024-05-01T03:00:00Z"]
    asked.clear()
    inside = TimeWindow(T0 + timedelta(hours=4, minutes=15), T0 + timedelta(hours=4, minutes=59))
    pages = await _read(source, inside)
    assert [p.records for p in pages] == [[]]
    assert asked == []  # no whole bucket: nothing asked, the window still commits


async def test_summary_reads_each_day_and_category_and_resumes_between_them(api_factory) -> None:
    asked: list[tuple[str, str]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.host == "login.microsoftonline.com":
            return token_response()
        flt = parse_qs(urlsplit(str(request.url)).query)["$filter"][0]
        start = dict(_BOUND.findall(flt))["StartDate"]
        category = re.search(r"Category eq '(\w+)'", flt).group(1)  # type: ignore[union-attr]
        asked.append((start[:10], category))
        row = {
            "Category": category,
            "C1": "a@contoso.com",
            "C2": "3",
            "StartDate": start,
            "Domain": "contoso.com",
        }
        return httpx.Response(200, json={"value": [row]})

    source = _source(api_factory(handler), "MailTrafficSummary")
    window = TimeWindow(T0 + timedelta(hours=5), T0 + timedelta(days=2, hours=5))
    pages = await _read(source, window)
    categories = ["TopMailSender", "TopMailRecipient", "TopSpamRecipient"]
    expected = [(day, c) for day in ("2024-05-01", "2024-05-02") for c in categories]
    assert asked == expected
    assert [p.next_link is None for p in pages] == [False] * 5 + [True]
    keys = {source.key_of(r) for p in pages for r in p.records}
    assert len(keys) == 6
    asked.clear()
    await _read(source, window, pages[2].next_link)
    assert asked == expected[3:]


def test_keys_follow_the_catalog(api_factory) -> None:
    api = api_factory(FakeRws([]))
    trace = _source(api)
    row = {
        "MessageTraceId": "g",
        "RecipientAddress": "U@x",
        "Status": "Delivered",
        "Received": "2024-05-01T00:00:00Z",
    }
    assert trace.key_of(row) == ("g", "U@x", "Delivered")
    traffic = _source(api, "MailTraffic")
    verbose = {
        "Date": "/Date(1714521600000)/",
        "Direction": "Inbound",
        "Domain": "d",
        "EventType": "GoodMail",
        "Action": None,
    }
    light = {**verbose, "Date": "2024-05-01T00:00:00.0000000"}
    assert traffic.key_of(verbose) == traffic.key_of(light)
    assert traffic.key_of(verbose) != traffic.key_of({**verbose, "Direction": "Outbound"})


async def test_each_page_carries_the_identity_and_receive_time_of_each_row(api_factory) -> None:
    rows = _rows(5, timedelta(minutes=1))
    rows[0]["RecipientAddress"] = "U0@Contoso.COM"
    pages = await _read(_source(api_factory(FakeRws(rows)), page_size=3), _window(1))
    source = _source(None)
    records = [r for p in pages for r in p.records]
    facts = [f for p in pages for f in p.facts]
    assert len(records) == len(facts) == 5
    for record, (trace, rest, status, received) in zip(records, facts, strict=True):
        key = source.key_of(record)
        assert (trace, rest, status) == (key[0], key[1].lower(), key[2])
        assert received == record["Received"]
    assert facts[0][1] == "u0@contoso.com" and facts[0][2] == "Delivered"
