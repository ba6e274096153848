"""Per-tenant running-window quota: 429 + Retry-After, shared by list and detail, counters."""

from __future__ import annotations

from emulator_support import TENANT_ID, TRACES, Graph

from support import FakeClock

THROTTLE_BODY = {
    "code": "TooManyRequests",
    "message": "Your recent queries have surpassed the permitted limit. Please try again later.",
}


def test_quota_429_with_retry_after_and_counters(serve, clock: FakeClock) -> None:
    graph: Graph = serve(tenant={"quota_requests": 3, "quota_window_secs": 10.0})
    headers = graph.bearer()
    first = graph.get(TRACES, headers=headers, **{"$top": "1"}).json()["value"][0]
    detail = (
        f"{TRACES}/{first['id']}/getDetailsByRecipient("
        f"recipientAddress='{first['recipientAddress']}')"
    )
    assert graph.get(detail, headers=headers).status_code == 200
    clock.advance(seconds=2)
    assert graph.get(TRACES, headers=headers).status_code == 200
    throttled = graph.get(detail, headers=headers)
    assert throttled.status_code == 429
    assert throttled.headers["Retry-After"] == "8"
    error = throttled.json()["error"]
    assert {k: error[k] for k in ("code", "message")} == THROTTLE_BODY
    clock.advance(seconds=7.5)
    again = graph.get(TRACES, headers=headers)
    assert again.status_code == 429
    assert again.headers["Retry-After"] == "1", "rounded up, at least 1"
    clock.advance(seconds=0.5)  # both t0 requests leave the window: two slots free
    assert graph.get(TRACES, headers=headers).status_code == 200
    assert graph.get(TRACES, headers=headers).status_code == 200
    last = graph.get(TRACES, headers=headers)
    assert last.status_code == 429
    assert last.headers["Retry-After"] == "2"
    stats = graph.emulator.stats(TENANT_ID)
    assert stats["accepted"] == 5
    assert stats["throttled"] == 3
    assert stats["by_status"] == {"200": 5, "429": 3}
    assert stats["quota_requests"] == 3
    assert stats["quota_window_secs"] == 10.0
    start = stats["accepted_times"][0]
    assert [round(t - start, 3) for t in stats["accepted_times"]] == [0, 0, 2, 10, 10]
    assert stats["rows_served"] >= 1


def test_errors_take_a_slot_but_auth_failures_do_not(serve) -> None:
    graph: Graph = serve(tenant={"quota_requests": 2, "quota_window_secs": 300.0})
    assert graph.client.get(TRACES).status_code == 401
    assert graph.list(**{"$top": "0"}).status_code == 400
    assert graph.list().status_code == 200
    assert graph.list().status_code == 429
    stats = graph.emulator.stats(TENANT_ID)
    assert stats["accepted"] == 2
    assert stats["by_status"] == {"200": 1, "400": 1, "429": 1}
    assert stats["token_requests"] == 3


def test_stats_over_http_match_in_process(serve) -> None:
    graph: Graph = serve(tenant={"quota_requests": 1})
    graph.list()
    graph.list()
    over_http = graph.client.get("/_emulator/stats", params={"tenant": TENANT_ID}).json()
    assert over_http == graph.emulator.stats(TENANT_ID)
    assert over_http["throttled"] == 1
    unknown = graph.client.get("/_emulator/stats", params={"tenant": "nope"})
    assert unknown.status_code == 404
