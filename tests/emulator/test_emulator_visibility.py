"""Late visibility, status changes over time, and getDetailsByRecipient, with a frozen clock."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from emulator_support import ANCHOR, TENANT_ID, TRACES, Graph, status_at, window_filter

from support import FakeClock


def when(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def lookup(graph: Graph, row: dict, clock: FakeClock) -> list[dict]:
    """Serve the row's (id, recipient) at the clock's current time."""
    now = clock.now().replace(microsecond=0)
    received = when(row["receivedDateTime"]).replace(microsecond=0)
    filt = (
        window_filter(received - timedelta(seconds=1), now)
        + f" and id eq '{row['id']}' and recipientAddress eq '{row['recipientAddress']}'"
    )
    response = graph.list(**{"$filter": filt})
    assert response.status_code == 200, response.text
    return response.json()["value"]


@pytest.fixture
def truth(graph: Graph) -> list[dict]:
    return graph.emulator.ground_truth(TENANT_ID)


def test_late_row_appears_only_after_its_visibility_time(
    graph: Graph, clock: FakeClock, truth: list[dict]
) -> None:
    row = next(
        r
        for r in truth
        if when(r["history"][0]["visible_at"]) - when(r["receivedDateTime"]) > timedelta(hours=2)
        and when(r["history"][0]["visible_at"]) > ANCHOR
    )
    visible_at = when(row["history"][0]["visible_at"])
    clock.set(visible_at - timedelta(seconds=1))
    assert lookup(graph, row, clock) == []
    clock.set(visible_at)
    served = lookup(graph, row, clock)
    assert [(r["id"], r["recipientAddress"]) for r in served] == [
        (row["id"], row["recipientAddress"])
    ]
    assert served[0]["status"] == row["history"][0]["status"]


def test_status_changes_over_time_and_never_repeat(
    graph: Graph, clock: FakeClock, truth: list[dict]
) -> None:
    changing = [r for r in truth if len(r["history"]) > 1]
    assert len(changing) > 0.2 * len(truth)
    for r in changing:
        statuses = [step["status"] for step in r["history"]]
        assert statuses[0] in ("gettingStatus", "pending")
        assert len(set(statuses)) == len(statuses), "a later status never equals an earlier one"
        times = [step["visible_at"] for step in r["history"]]
        assert times == sorted(times)
    row = next(
        r
        for r in changing
        if len(r["history"]) == 3
        and when(r["history"][0]["visible_at"]) > ANCHOR - timedelta(days=1)
    )
    for step in row["history"]:
        clock.set(when(step["visible_at"]))
        assert [r["status"] for r in lookup(graph, row, clock)] == [step["status"]]
        clock.set(clock.now() - timedelta(microseconds=1))
        previous = status_at(row, clock.now())
        assert [r["status"] for r in lookup(graph, row, clock)] == ([previous] if previous else [])


def test_details_follow_the_current_status(
    graph: Graph, clock: FakeClock, truth: list[dict]
) -> None:
    row = next(
        r
        for r in truth
        if [s["status"] for s in r["history"]][-1] == "delivered"
        and len(r["history"]) == 2
        and r["recipientAddress"].endswith("@contoso.com")
        and when(r["history"][0]["visible_at"]) > ANCHOR - timedelta(days=1)
    )
    url = (
        f"{TRACES}/{row['id']}/getDetailsByRecipient(recipientAddress='{row['recipientAddress']}')"
    )
    clock.set(when(row["history"][0]["visible_at"]))
    body = graph.get(url).json()
    assert body["@odata.context"].endswith(
        "#Collection(microsoft.graph.exchangeMessageTraceDetail)"
    )
    events = [d["event"] for d in body["value"]]
    assert events[0] == "Receive"
    assert "Deliver" not in events
    clock.set(when(row["history"][1]["visible_at"]))
    detail = graph.get(url).json()["value"]
    assert detail[-1]["event"] == "Deliver"
    assert {d["id"] for d in detail} == {row["id"]}
    assert len({d["messageId"] for d in detail}) == 1
    assert set(detail[0]) == {
        "id",
        "messageId",
        "dateTime",
        "event",
        "action",
        "description",
        "data",
    }
    assert [d["dateTime"] for d in detail] == sorted(d["dateTime"] for d in detail)


def test_details_not_found(graph: Graph, truth: list[dict]) -> None:
    visible = next(r for r in truth if status_at(r, ANCHOR))
    unknown_id = (
        f"{TRACES}/00000000-0000-4000-8000-000000000000/getDetailsByRecipient("
        f"recipientAddress='{visible['recipientAddress']}')"
    )
    wrong_recipient = (
        f"{TRACES}/{visible['id']}/getDetailsByRecipient(recipientAddress='nobody@nowhere.example')"
    )
    for url in (unknown_id, wrong_recipient):
        response = graph.get(url)
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "NotFound"
    missing_arg = graph.get(f"{TRACES}/{visible['id']}/getDetailsByRecipient()")
    assert missing_arg.status_code == 400


def test_live_rows_keep_arriving_after_the_anchor(serve, clock: FakeClock) -> None:
    graph = serve(rows=500, live_rows_per_sec=1.0, live_secs=600, late_fraction=0.0)
    truth = graph.emulator.ground_truth(TENANT_ID)
    assert len(truth) == 1100
    clock.set(ANCHOR + timedelta(minutes=5))
    before = len(graph.all_pages()[0])
    clock.set(ANCHOR + timedelta(minutes=12))
    after = len(graph.all_pages()[0])
    assert after - before > 200
    visible_by = graph.emulator.ground_truth(TENANT_ID, visible_by=clock.now())
    assert len(visible_by) == after + sum(
        1 for r in visible_by if when(r["receivedDateTime"]) < clock.now() - timedelta(hours=48)
    )
