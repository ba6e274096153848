"""Elasticsearch/OpenSearch sink: idempotent ``create`` on osmem-server, per-item outcomes."""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from pydantic import TypeAdapter, ValidationError
from pytest_httpserver import HTTPServer
from sinks_support import FakeClock, make_event, make_events
from werkzeug import Request, Response

from o365collector.config.sinks import SinkSettings
from o365collector.sinks.base import DeliveryStatus
from o365collector.sinks.elastic import ElasticsearchSink
from o365collector.sinks.factory import build_sink

ADAPTER: TypeAdapter[Any] = TypeAdapter(SinkSettings)


async def make(clock: FakeClock, **settings: Any) -> ElasticsearchSink:
    sink = build_sink(ADAPTER.validate_python({"type": "elasticsearch", **settings}), clock)
    assert isinstance(sink, ElasticsearchSink)
    await sink.start()
    return sink


@pytest.fixture
async def os_sink(opensearch: Any, clock: FakeClock) -> AsyncIterator[ElasticsearchSink]:
    index = f"o365-{uuid.uuid4().hex[:8]}-{{tenant}}-{{stream}}"
    sink = await make(clock, url=opensearch.url, index=index, gzip=True)
    yield sink
    await sink.close()


def documents(opensearch: Any, index: str) -> dict[str, dict[str, Any]]:
    httpx.post(f"{opensearch.url}/{index}/_refresh")
    found = httpx.get(f"{opensearch.url}/{index}/_search", params={"size": 1000}).json()
    return {h["_id"]: h["_source"] for h in found["hits"]["hits"]}


async def test_replays_are_idempotent_with_event_id_as_document_id(
    opensearch: Any, os_sink: ElasticsearchSink
) -> None:
    events = make_events(10)
    assert (await os_sink.send(events)).status is DeliveryStatus.DELIVERED
    replay = await os_sink.send(events[3:] + make_events(2, start=10))  # 7 conflicts, 2 new
    assert replay.status is DeliveryStatus.DELIVERED
    index = os_sink.index_for(events[0])
    assert index.endswith("-contoso-message_trace")
    docs = documents(opensearch, index)
    assert len(docs) == 12
    assert docs[events[4].event_id] == events[4].record


async def test_mapping_conflict_rejects_only_that_document(
    opensearch: Any, os_sink: ElasticsearchSink
) -> None:
    events = [make_event(0), make_event(1, size="huge"), make_event(2)]
    result = await os_sink.send(events)
    assert result.status is DeliveryStatus.REJECTED
    assert list(result.rejected) == [1]
    assert result.rejected[1].startswith("400 mapper_parsing_exception: ")
    docs = documents(opensearch, os_sink.index_for(events[0]))
    assert set(docs) == {events[0].event_id, events[2].event_id}


async def test_small_batch_max_bytes_splits_bulk_requests(
    opensearch: Any, clock: FakeClock
) -> None:
    index = f"o365-{uuid.uuid4().hex[:8]}"
    sink = await make(clock, url=opensearch.url, index=index, batch_max_bytes=2048)
    events = make_events(15)
    assert (await sink.send(events)).status is DeliveryStatus.DELIVERED
    assert set(documents(opensearch, index)) == {e.event_id for e in events}
    await sink.close()


def bulk_handler(statuses: list[int], seen: list[Request]) -> Any:
    def handle(request: Request) -> Response:
        seen.append(request)
        items = []
        for status in statuses:
            item: dict[str, Any] = {"_index": "x", "status": status}
            if status >= 300:
                item["error"] = {"type": f"e{status}", "reason": f"because {status}"}
            items.append({"create": item})
        body = {"took": 1, "errors": any(s >= 300 for s in statuses), "items": items}
        return Response(json.dumps(body), content_type="application/json")

    return handle


async def test_per_item_statuses_settle_each_event(
    httpserver: HTTPServer, clock: FakeClock
) -> None:
    seen: list[Request] = []
    httpserver.expect_request("/_bulk", method="POST").respond_with_handler(
        bulk_handler([201, 409, 429, 400, 503, 200], seen)
    )
    sink = await make(clock, url=httpserver.url_for("/"), pipeline="o365-pipeline",
                      api_key="ZXMta2V5OnNlY3JldA==")  # fmt: skip
    result = await sink.send(make_events(6))
    assert result.status is DeliveryStatus.RETRY
    assert result.pending == frozenset({2, 4})
    assert result.rejected == {3: "400 e400: because 400"}
    (request,) = seen
    assert request.args["pipeline"] == "o365-pipeline"
    assert request.headers["Authorization"] == "ApiKey ZXMta2V5OnNlY3JldA=="
    assert request.headers["Content-Type"] == "application/x-ndjson"
    lines = request.get_data().splitlines()
    actions = [json.loads(line) for line in lines[0::2]]
    assert [a["create"]["_id"] for a in actions] == [e.event_id for e in make_events(6)]
    assert {a["create"]["_index"] for a in actions} == {"o365-message_trace"}
    await sink.close()


async def test_basic_auth_and_whole_request_failures(
    httpserver: HTTPServer, clock: FakeClock
) -> None:
    httpserver.expect_ordered_request("/_bulk").respond_with_data("no", status=401)
    httpserver.expect_ordered_request("/_bulk").respond_with_data(
        "busy", status=429, headers={"Retry-After": "5"}
    )
    httpserver.expect_ordered_request("/_bulk").respond_with_data("not json", status=200)
    sink = await make(clock, url=httpserver.url_for("/"), username="elastic", password="pw-9")
    refused = await sink.send(make_events(2))
    assert refused.status is DeliveryStatus.REJECTED
    assert set(refused.rejected.values()) == {
        "credentials refused: check username/password or api_key (HTTP 401)"
    }
    busy = await sink.send(make_events(2))
    assert (busy.status, busy.retry_after_secs) == (DeliveryStatus.RETRY, 5.0)
    garbled = await sink.send(make_events(2))
    assert garbled.status is DeliveryStatus.RETRY
    request, _ = httpserver.log[0]
    assert request.headers["Authorization"] == "Basic " + base64.b64encode(b"elastic:pw-9").decode()
    await sink.close()


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"index": "O365"}, "not a valid index name"),
        ({"index": "o365-{date}"}, "only the placeholders"),
        ({"username": "u"}, "together"),
        ({"username": "u", "password": "p", "api_key": "k"}, "either api_key"),
    ],
)
def test_invalid_settings(settings: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError) as caught:
        ADAPTER.validate_python({"type": "elasticsearch", "url": "http://es:9200", **settings})
    assert message in str(caught.value)
