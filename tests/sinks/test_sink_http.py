"""Sekoia, Splunk HEC and generic HTTP sinks against a real loopback HTTP server."""

from __future__ import annotations

import base64
import gzip
import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import orjson
import pytest
from pydantic import TypeAdapter
from pytest_httpserver import HTTPServer
from sinks_support import EPOCH, FakeClock, make_event, make_events
from werkzeug import Request, Response

from o365collector.config.sinks import SinkSettings
from o365collector.observability.redact import redact
from o365collector.sinks.base import DeliveryStatus, Sink
from o365collector.sinks.encode import record_time
from o365collector.sinks.factory import build_sink

ADAPTER: TypeAdapter[Any] = TypeAdapter(SinkSettings)
KEY = "sekoia-intake-KEY-0123456789"
MIB = 1024 * 1024


@pytest.fixture
async def build(clock: FakeClock) -> AsyncIterator[Callable[..., Any]]:
    """Build and start sinks from settings; all are closed after the test."""
    built: list[Sink] = []

    async def make(**settings: Any) -> Sink:
        sink = build_sink(ADAPTER.validate_python(settings), clock)
        await sink.start()
        built.append(sink)
        return sink

    yield make
    for sink in built:
        await sink.close()


def bodies(server: HTTPServer) -> list[bytes]:
    out = []
    for request, _ in server.log:
        data = request.get_data()
        if request.headers.get("Content-Encoding") == "gzip":
            data = gzip.decompress(data)
        out.append(data)
    return out


def ok_json(payload: Any, status: int = 200) -> Callable[[Request], Response]:
    def handler(request: Request) -> Response:
        del request
        return Response(json.dumps(payload), status=status, content_type="application/json")

    return handler


# --- Sekoia ---------------------------------------------------------------------------


async def test_sekoia_body_is_intake_key_and_raw_records_as_json_text(
    httpserver: HTTPServer, build: Any
) -> None:
    httpserver.expect_request("/api/v1/intake-http/batch", method="POST").respond_with_json(
        {"event_ids": ["a", "b", "c"]}
    )
    sink = await build(type="sekoia", intake_key=KEY,
                       base_url=httpserver.url_for("/api/v1/intake-http"))  # fmt: skip
    events = make_events(3)
    assert (await sink.send(events)).status is DeliveryStatus.DELIVERED
    ((request, _),) = httpserver.log
    assert request.headers["Content-Type"] == "application/json"
    assert KEY not in request.headers.get("User-Agent", "")
    body = json.loads(request.get_data())
    assert body["intake_key"] == KEY
    assert body["jsons"] == [orjson.dumps(e.record).decode() for e in events]
    await sink.close()


async def test_sekoia_splits_requests_at_9_mib_and_keeps_order(
    httpserver: HTTPServer, build: Any
) -> None:
    httpserver.expect_request("/batch").respond_with_json({"event_ids": []})
    sink = await build(type="sekoia", intake_key=KEY, base_url=httpserver.url_for("/"), gzip=True)
    events = [make_event(n, subject="s" * 230_000) for n in range(45)]  # ~10.4 MB in all
    assert (await sink.send(events)).status is DeliveryStatus.DELIVERED
    sent = bodies(httpserver)
    assert len(sent) == 2
    assert all(len(b) <= 9 * MIB for b in sent)
    assert all(r.headers["Content-Encoding"] == "gzip" for r, _ in httpserver.log)
    texts = [t for b in sent for t in json.loads(b)["jsons"]]
    assert [json.loads(t)["id"] for t in texts] == [e.record["id"] for e in events]
    await sink.close()


@pytest.mark.parametrize(
    ("status", "reason"),
    [
        (401, "intake key refused: check intake_key (HTTP 401)"),
        (403, "intake key refused: check intake_key (HTTP 403)"),
        (400, "HTTP 400: malformed ***"),  # the echoed key is masked
    ],
)
async def test_sekoia_refusals_are_rejected_with_a_clear_reason(
    httpserver: HTTPServer, build: Any, status: int, reason: str
) -> None:
    httpserver.expect_request("/batch").respond_with_data(f"malformed {KEY}", status=status)
    sink = await build(type="sekoia", intake_key=KEY, base_url=httpserver.url_for("/"))
    result = await sink.send(make_events(2))
    assert result.status is DeliveryStatus.REJECTED
    assert result.rejected == {0: reason, 1: reason}
    assert KEY not in repr(result)
    assert redact(f"key={KEY}") == "key=***"  # registered when the sink was built
    await sink.close()


async def test_sekoia_retry_after_and_only_unsent_requests_are_pending(
    httpserver: HTTPServer, build: Any
) -> None:
    httpserver.expect_ordered_request("/batch").respond_with_json({"event_ids": []})
    httpserver.expect_ordered_request("/batch").respond_with_data(
        "slow down", status=429, headers={"Retry-After": "3"}
    )
    sink = await build(type="sekoia", intake_key=KEY, base_url=httpserver.url_for("/"),
                       batch_max_bytes=400_000)  # fmt: skip
    events = [make_event(n, subject="s" * 150_000) for n in range(4)]  # two per request
    result = await sink.send(events)
    assert result.status is DeliveryStatus.RETRY
    assert result.retry_after_secs == 3.0
    assert result.pending == frozenset({2, 3})
    await sink.close()


async def test_sekoia_network_error_means_retry(build: Any) -> None:
    sink = await build(type="sekoia", intake_key=KEY, base_url="http://127.0.0.1:9")
    result = await sink.send(make_events(2))
    assert result.status is DeliveryStatus.RETRY
    assert "Connect" in result.reason
    await sink.close()


# --- Splunk HEC -----------------------------------------------------------------------


async def test_hec_envelopes_carry_time_sourcetype_index_and_the_raw_record(
    httpserver: HTTPServer, build: Any
) -> None:
    httpserver.expect_request("/services/collector/event").respond_with_json(
        {"text": "Success", "code": 0}
    )
    sink = await build(type="splunk_hec", url=httpserver.url_for("/"), token="hec-TOKEN-42",
                       index="o365", host="collector-1")  # fmt: skip
    events = make_events(3)
    assert (await sink.send(events)).status is DeliveryStatus.DELIVERED
    ((request, _),) = httpserver.log
    assert request.headers["Authorization"] == "Splunk hec-TOKEN-42"
    assert "X-Splunk-Request-Channel" not in request.headers
    envelopes = [json.loads(line) for line in request.get_data().splitlines()]
    assert [x["event"] for x in envelopes] == [e.record for e in events]
    assert {x["sourcetype"] for x in envelopes} == {"o365:reporting:messagetrace"}
    assert {(x["index"], x["host"], x["source"]) for x in envelopes} == {
        ("o365", "collector-1", "o365collector")
    }
    assert envelopes[1]["time"] == pytest.approx(EPOCH.timestamp() + 1.123456)
    await sink.close()


async def test_hec_batches_by_bytes(httpserver: HTTPServer, build: Any) -> None:
    httpserver.expect_request("/services/collector/event").respond_with_json({"code": 0})
    sink = await build(type="splunk_hec", url=httpserver.url_for("/"), token="t-123",
                       batch_max_bytes=1200, gzip=True)  # fmt: skip
    events = make_events(12)
    assert (await sink.send(events)).status is DeliveryStatus.DELIVERED
    sent = bodies(httpserver)
    assert len(sent) > 3
    assert all(len(b) <= 1200 for b in sent)
    got = [json.loads(line)["event"] for b in sent for line in b.splitlines()]
    assert got == [e.record for e in events]
    await sink.close()


async def test_hec_ack_delivers_only_once_indexers_confirm(
    httpserver: HTTPServer, build: Any, clock: FakeClock
) -> None:
    channel = "0e8a0f5e-3b6b-4c37-a3c0-5b7f0a4a1c11"
    ids = iter([7, 8])
    httpserver.expect_request("/services/collector/event").respond_with_handler(
        lambda r: Response(json.dumps({"text": "Success", "code": 0, "ackId": next(ids)}))
    )
    polls = iter([{"acks": {"7": True, "8": False}}, {"acks": {"8": True}}])
    httpserver.expect_request("/services/collector/ack").respond_with_handler(
        lambda r: Response(json.dumps(next(polls)))
    )
    sink = await build(type="splunk_hec", url=httpserver.url_for("/"), token="t-123", ack=True,
                       channel=channel, batch_max_bytes=1500)  # fmt: skip
    assert (await sink.send(make_events(6))).status is DeliveryStatus.DELIVERED
    assert all(r.headers["X-Splunk-Request-Channel"] == channel for r, _ in httpserver.log)
    ack_bodies = [json.loads(r.get_data()) for r, _ in httpserver.log if r.path.endswith("/ack")]
    assert ack_bodies == [{"acks": [7, 8]}, {"acks": [8]}]
    assert clock.sleeps == [2.0]
    await sink.close()


async def test_hec_unacknowledged_events_are_retried(
    httpserver: HTTPServer, build: Any, clock: FakeClock
) -> None:
    httpserver.expect_request("/services/collector/event").respond_with_json({"ackId": 1})
    httpserver.expect_request("/services/collector/ack").respond_with_json({"acks": {"1": False}})
    sink = await build(type="splunk_hec", url=httpserver.url_for("/"), token="t-123", ack=True,
                       ack_timeout_secs=10, ack_poll_interval_secs=4)  # fmt: skip
    result = await sink.send(make_events(2))
    assert result.status is DeliveryStatus.RETRY
    assert result.pending == frozenset({0, 1})
    assert "not acknowledged" in result.reason
    assert sum(clock.sleeps) >= 10
    await sink.close()


async def test_hec_invalid_event_number_refuses_one_and_retries_the_rest(
    httpserver: HTTPServer, build: Any
) -> None:
    httpserver.expect_request("/services/collector/event").respond_with_handler(
        ok_json({"text": "Invalid data format", "code": 6, "invalid-event-number": 1}, 400)
    )
    sink = await build(type="splunk_hec", url=httpserver.url_for("/"), token="t-123")
    result = await sink.send(make_events(3))
    assert result.status is DeliveryStatus.RETRY
    assert result.rejected == {1: "HTTP 400: Invalid data format (code 6)"}
    assert result.pending == frozenset({2})
    await sink.close()


def test_record_time_reads_graph_and_reporting_forms() -> None:
    assert record_time({"receivedDateTime": "2026-11-22T08:30:00.1234567Z"}) == pytest.approx(
        EPOCH.timestamp() + 0.123456
    )
    assert record_time({"Received": "/Date(1795336200000)/"}) == 1795336200.0
    # no offset: UTC, as RWS JSON light writes Received (api-facts §1.4)
    assert record_time({"receivedDateTime": "2026-11-22T08:30:00"}) == EPOCH.timestamp()
    assert record_time({"subject": "no time"}) is None


# --- Generic HTTP ---------------------------------------------------------------------


async def test_http_ndjson_with_headers_and_basic_auth(httpserver: HTTPServer, build: Any) -> None:
    httpserver.expect_request("/in", method="PUT").respond_with_data("ok")
    sink = await build(type="http", url=httpserver.url_for("/in"), method="PUT",
                       headers={"X-Tenant-Tag": "blue"}, username="u1",
                       password="p-secret-1")  # fmt: skip
    events = make_events(3)
    assert (await sink.send(events)).status is DeliveryStatus.DELIVERED
    ((request, _),) = httpserver.log
    assert request.headers["Content-Type"] == "application/x-ndjson"
    assert request.headers["X-Tenant-Tag"] == "blue"
    assert (
        request.headers["Authorization"] == "Basic " + base64.b64encode(b"u1:p-secret-1").decode()
    )
    body = request.get_data()
    assert body.endswith(b"\n")
    assert [json.loads(line) for line in body.splitlines()] == [e.record for e in events]
    await sink.close()


async def test_http_json_array_gzip_bearer_envelope(httpserver: HTTPServer, build: Any) -> None:
    httpserver.expect_request("/in").respond_with_data("", status=204)
    sink = await build(type="http", url=httpserver.url_for("/in"), format="json_array",
                       gzip=True, token="bearer-T0ken", payload="envelope",
                       batch_max_bytes=3000)  # fmt: skip
    events = make_events(8)
    assert (await sink.send(events)).status is DeliveryStatus.DELIVERED
    assert all(r.headers["Authorization"] == "Bearer bearer-T0ken" for r, _ in httpserver.log)
    assert all(r.headers["Content-Type"] == "application/json" for r, _ in httpserver.log)
    sent = bodies(httpserver)
    assert len(sent) > 1
    assert all(len(b) <= 3000 for b in sent)
    envelopes = [x for b in sent for x in json.loads(b)]
    assert [x["record"] for x in envelopes] == [e.record for e in events]
    assert {x["tenant"] for x in envelopes} == {"contoso"}
    await sink.close()


@pytest.mark.parametrize(("status", "fate"), [(408, "retry"), (500, "retry"), (302, "retry"),
                                               (404, "rejected"), (413, "rejected")])  # fmt: skip
async def test_http_status_mapping(
    httpserver: HTTPServer, build: Any, status: int, fate: str
) -> None:
    location = {"Location": "/elsewhere"}
    httpserver.expect_request("/in").respond_with_data("x", status=status, headers=location)
    sink = await build(type="http", url=httpserver.url_for("/in"))
    result = await sink.send(make_events(1))
    assert result.status.value == fate
    await sink.close()
