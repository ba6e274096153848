"""List results: row shape, inclusive bounds, newest-first keyset paging, nextLink, filters."""

from __future__ import annotations

import re
from collections import defaultdict
from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

from emulator_support import (
    ANCHOR,
    DOMAIN,
    TENANT_ID,
    TRACES,
    Graph,
    sort_key,
    status_at,
    ticks_of,
    ticks_text,
    window_filter,
)

from support import FakeClock

FIELDS = [
    "id",
    "senderAddress",
    "recipientAddress",
    "messageId",
    "receivedDateTime",
    "subject",
    "size",
    "fromIP",
    "toIP",
    "status",
]
STATUSES = {
    "gettingStatus",
    "pending",
    "delivered",
    "failed",
    "expanded",
    "quarantined",
    "filteredAsSpam",
}
GUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")
RECEIVED = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,7})?Z")


def ten_days(clock: FakeClock) -> str:
    now = clock.now().replace(microsecond=0)
    return window_filter(now - timedelta(days=10), now)


def keys(rows: list[dict]) -> list[tuple[int, str, str]]:
    return [sort_key(r) for r in rows]


def expected_visible(graph: Graph, clock: FakeClock, start: int, end: int) -> dict:
    return {
        (r["id"], r["recipientAddress"]): status_at(r, clock.now())
        for r in graph.emulator.ground_truth(TENANT_ID)
        if start <= ticks_of(r["receivedDateTime"]) <= end and status_at(r, clock.now())
    }


def test_rows_have_exactly_the_documented_shape(graph: Graph, clock: FakeClock) -> None:
    clock.set(ANCHOR + timedelta(seconds=60))  # recent rows still settling their status
    rows = [
        r for page in graph.all_pages(**{"$filter": ten_days(clock), "$top": "5000"}) for r in page
    ]
    assert len(rows) > 2500
    for row in rows:
        assert list(row) == FIELDS
        assert GUID.fullmatch(row["id"])
        assert row["messageId"].startswith("<") and row["messageId"].endswith(">")
        assert RECEIVED.fullmatch(row["receivedDateTime"])
        assert isinstance(row["size"], int) and row["size"] > 0
        assert row["status"] in STATUSES
        inbound = row["recipientAddress"].endswith("@" + DOMAIN)
        assert (row["toIP"] == "") == inbound
    assert any("." in r["receivedDateTime"] for r in rows), "no fractional seconds"
    assert any(len(r["receivedDateTime"]) == len("2026-01-01T00:00:00.1234567Z") for r in rows)
    assert any(not r["subject"].isascii() for r in rows), "no non-ASCII subjects"
    assert any("\n" in r["subject"] for r in rows), "no subjects with newlines"
    assert {"gettingStatus", "pending", "delivered"} <= {r["status"] for r in rows}


def test_bounds_are_inclusive_at_100ns(graph: Graph, clock: FakeClock) -> None:
    truth = graph.emulator.ground_truth(TENANT_ID)
    row = next(r for r in truth if len(r["receivedDateTime"]) == 28 and status_at(r, clock.now()))
    t = ticks_of(row["receivedDateTime"])
    wanted = (row["id"], row["recipientAddress"])

    def served(start: int, end: int) -> set:
        filt = window_filter(ticks_text(start), ticks_text(end))
        pages = graph.all_pages(**{"$filter": filt})
        return {(r["id"], r["recipientAddress"]) for page in pages for r in page}

    second = 10_000_000
    assert wanted in served(t - second, t), "a row exactly at the le bound is included"
    assert wanted not in served(t - second, t - 1), "100 ns before the row excludes it"
    assert wanted in served(t, t + second), "a row exactly at the ge bound is included"
    assert wanted not in served(t + 1, t + second), "100 ns after the row excludes it"


def test_newest_first_across_pages_and_each_row_once(graph: Graph, clock: FakeClock) -> None:
    filt = ten_days(clock)
    pages = graph.all_pages(**{"$filter": filt, "$top": "97"})
    assert len(pages) > 5
    assert all(len(page) == 97 for page in pages[:-1])
    served = keys([r for page in pages for r in page])
    assert served == sorted(served, reverse=True)
    assert len(set(served)) == len(served)
    start, end = (ticks_of(x) for x in re.findall(r"\S+Z", filt))
    expected = expected_visible(graph, clock, start, end)
    rows = [r for page in pages for r in page]
    assert {(r["id"], r["recipientAddress"]): r["status"] for r in rows} == expected


def test_next_link_is_absolute_and_carries_filter_and_top(graph: Graph, clock: FakeClock) -> None:
    filt = ten_days(clock)
    body = graph.list(**{"$filter": filt, "$top": "10"}).json()
    link = body["@odata.nextLink"]
    assert link.startswith(f"{graph.client.base_url}{TRACES}?")
    query = parse_qs(urlsplit(link).query)
    assert query["$filter"] == [filt]
    assert query["$top"] == ["10"]
    assert query["$skiptoken"][0]
    assert " " not in link
    hosted = graph.client.get(
        TRACES, params={"$top": "10"}, headers={**graph.bearer(), "Host": "graph.example:8443"}
    )
    assert hosted.json()["@odata.nextLink"].startswith(f"http://graph.example:8443{TRACES}?")
    assert body["@odata.context"] == (
        "https://graph.microsoft.com/v1.0/$metadata#admin/exchange/tracing/messageTraces"
    )


def test_last_page_has_no_next_link(graph: Graph, clock: FakeClock) -> None:
    pages = graph.all_pages(**{"$filter": ten_days(clock), "$top": "5000"})
    assert len(pages) == 1
    exact = graph.list(**{"$filter": ten_days(clock), "$top": str(len(pages[0]))}).json()
    assert "@odata.nextLink" not in exact, "no nextLink when nothing remains"


def test_keyset_cursor_serves_rows_that_became_visible_during_paging(
    serve, clock: FakeClock
) -> None:
    graph = serve(late_fraction=0.3)
    now = clock.now().replace(microsecond=0)
    filt = window_filter(ANCHOR - timedelta(days=2), now)
    headers = graph.bearer()
    first = graph.client.get(TRACES, params={"$filter": filt, "$top": "50"}, headers=headers).json()
    cursor = sort_key(first["value"][-1])
    start = ticks_of(filt.split()[2])
    late = [
        r
        for r in graph.emulator.ground_truth(TENANT_ID)
        if start <= ticks_of(r["receivedDateTime"])
        and sort_key(r) < cursor
        and status_at(r, clock.now()) is None
    ]
    assert late, "the dataset should hold rows not yet visible below the cursor"
    newcomer = min(late, key=lambda r: r["history"][0]["visible_at"])
    clock.set(ANCHOR.fromisoformat(newcomer["history"][0]["visible_at"].replace("Z", "+00:00")))
    headers = graph.bearer()
    rest: list[dict] = []
    link = first.get("@odata.nextLink")
    while link:
        body = graph.client.get(link, headers=headers).json()
        rest += body["value"]
        link = body.get("@odata.nextLink")
    served = keys(first["value"] + rest)
    assert len(set(served)) == len(served), "no row twice"
    assert all(k < cursor for k in keys(rest))
    assert sort_key(newcomer) in set(keys(rest)), "the newly visible older row was served"


def test_multi_recipient_rows_share_id_and_message(graph: Graph, clock: FakeClock) -> None:
    rows = [
        r for page in graph.all_pages(**{"$filter": ten_days(clock), "$top": "5000"}) for r in page
    ]
    by_id: dict[str, list[dict]] = defaultdict(list)
    for row in rows:
        by_id[row["id"]].append(row)
    groups = [g for g in by_id.values() if len(g) > 1]
    assert len(groups) > 50
    for group in groups:
        for field in ("messageId", "receivedDateTime", "senderAddress", "subject", "size"):
            assert len({r[field] for r in group}) == 1, field
        assert len({r["recipientAddress"] for r in group}) == len(group)


def test_default_window_is_the_previous_48_hours(graph: Graph, clock: FakeClock) -> None:
    rows = [r for page in graph.all_pages() for r in page]
    now = clock.now()
    start = ticks_of((now - timedelta(hours=48)).strftime("%Y-%m-%dT%H:%M:%S.%fZ"))
    end = ticks_of(now.strftime("%Y-%m-%dT%H:%M:%S.%fZ"))
    assert {(r["id"], r["recipientAddress"]) for r in rows} == set(
        expected_visible(graph, clock, start, end)
    )
    assert len(rows) > 1000


def test_property_filters(graph: Graph, clock: FakeClock) -> None:
    filt = ten_days(clock)
    rows = graph.all_pages(**{"$filter": filt, "$top": "5000"})[0]
    sample = next(r for r in rows if r["status"] == "delivered")

    def select(extra: str) -> list[dict]:
        return [r for page in graph.all_pages(**{"$filter": f"{filt} and {extra}"}) for r in page]

    by_recipient = select(f"recipientAddress eq '{sample['recipientAddress'].upper()}'")
    assert sample in by_recipient
    assert {r["recipientAddress"] for r in by_recipient} == {sample["recipientAddress"]}
    by_sender = select(f"senderAddress eq '{sample['senderAddress']}'")
    assert {r["senderAddress"] for r in by_sender} == {sample["senderAddress"]}
    spam = select("status eq 'FilteredAsSpam'")
    assert spam and {r["status"] for r in spam} == {"filteredAsSpam"}
    by_id = select(f"id eq '{sample['id']}'")
    assert by_id == [r for r in rows if r["id"] == sample["id"]]
    by_message = select(f"messageId eq '{sample['messageId']}'")
    assert by_message == by_id
    assert select("id eq '00000000-0000-4000-8000-000000000000'") == []
    word = sample["subject"].split()[0]
    by_subject = select(f"contains(subject,'{word}')")
    assert sample in by_subject and all(word.lower() in r["subject"].lower() for r in by_subject)
    other = next(r for r in rows if r["recipientAddress"] != sample["recipientAddress"])
    either = select(
        f"recipientAddress eq '{sample['recipientAddress']}' or "
        f"recipientAddress eq '{other['recipientAddress']}'"
    )
    assert {r["recipientAddress"] for r in either} == {other["recipientAddress"]}


def test_beta_path(graph: Graph, clock: FakeClock) -> None:
    response = graph.get("/beta/admin/exchange/tracing/messageTraces", **{"$top": "3"})
    body = response.json()
    assert body["@odata.context"].startswith("https://graph.microsoft.com/beta/$metadata#")
    assert body["value"][0]["@odata.type"] == "#microsoft.graph.exchangeMessageTrace"
    assert "/beta/admin/exchange/tracing/messageTraces?" in body["@odata.nextLink"]
