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
from structlog.testing import capture_logs
from werkzeug import Request, Response

from o365collector.config.sinks import SinkSettings
from o365collector.event import Event
from o365collector.normalize.normalizer import Normalizer
from o365collector.sinks.base import DeliveryStatus
from o365collector.sinks.elastic import ElasticsearchSink
from o365collector.sinks.elastic.template import FIELDS, data_stream
from o365collector.sinks.encode import Payload
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


# --- payload: ecs → data streams and their index template -----------------------------------


def leaf_paths(document: dict[str, Any], prefix: str = "") -> set[str]:
    out: set[str] = set()
    for key, value in document.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict):
            out |= leaf_paths(value, path + ".")
        else:
            out.add(path)
    return out


def bulk_lines(request: Request) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    lines = [json.loads(line) for line in request.get_data().splitlines()]
    return [a["create"] for a in lines[0::2]], lines[1::2]


def requests_to(server: HTTPServer, path: str) -> list[Request]:
    return [request for request, _ in server.log if request.path == path]


TEMPLATE_PATH = "/_index_template/o365collector-ecs"


async def test_ecs_goes_to_a_data_stream_per_stream_after_the_template(
    httpserver: HTTPServer, clock: FakeClock
) -> None:
    seen: list[Request] = []
    httpserver.expect_request(TEMPLATE_PATH, method="PUT").respond_with_json({"acknowledged": True})
    httpserver.expect_request("/_bulk", method="POST").respond_with_handler(
        bulk_handler([201, 409, 201], seen)
    )
    sink = await make(clock, url=httpserver.url_for("/"), payload="ecs", api_key="a2V5")
    events = [make_event(0), make_event(1), make_event(2, stream="rws.MessageTrace")]
    result = await sink.send(events)
    assert result.status is DeliveryStatus.DELIVERED  # 409: an earlier attempt got through
    assert [r.path for r, _ in httpserver.log] == [TEMPLATE_PATH, "/_bulk"]
    (put,) = requests_to(httpserver, TEMPLATE_PATH)
    assert put.headers["Authorization"] == "ApiKey a2V5"
    assert put.headers["Content-Type"] == "application/json"
    template = json.loads(put.get_data())
    assert template["index_patterns"] == ["logs-o365collector.*-*"]
    assert template["data_stream"] == {}
    assert template["priority"] > 100  # above Elastic's built-in logs-*-*
    props = template["template"]["mappings"]["properties"]
    assert props["@timestamp"] == {"type": "date"}
    for side in ("source", "destination"):
        assert props[side]["properties"]["ip"] == {"type": "ip"}
    assert props["related"]["properties"]["ip"] == {"type": "ip"}
    email = props["email"]["properties"]
    assert email["attachments"]["properties"]["file"]["properties"]["size"] == {"type": "long"}
    assert email["from"]["properties"]["address"]["type"] == "keyword"
    assert props["event"]["properties"]["original"]["index"] is False
    assert props["o365"]["type"] == "flattened"
    assert props["o365collector"]["properties"]["tenant"]["type"] == "keyword"
    (bulk,) = seen
    actions, sources = bulk_lines(bulk)
    assert [a["_index"] for a in actions] == [
        "logs-o365collector.message_trace-default",
        "logs-o365collector.message_trace-default",
        "logs-o365collector.rws_messagetrace-default",
    ]
    assert [a["_id"] for a in actions] == [e.event_id for e in events]
    assert sources == [Normalizer("ecs").document(e) for e in events]
    await sink.close()


def test_the_template_maps_every_field_of_a_message_trace_document() -> None:
    mapped = {path for path, _ in FIELDS}
    for event in (make_event(3), make_event(4, stream="rws.MessageTrace")):
        mapper = Normalizer("ecs", local_domains={"contoso": ["fabrikam.com"]},
                            include_original=True)  # fmt: skip
        paths = leaf_paths(mapper.document(event))
        unmapped = {p for p in paths if not p.startswith("o365.") and p not in mapped}
        assert unmapped == set()


@pytest.mark.parametrize(
    ("stream", "namespace", "name"),
    [
        ("message_trace", "default", "logs-o365collector.message_trace-default"),
        ("rws.MailTraffic", "default", "logs-o365collector.rws_mailtraffic-default"),
        ("rws.MailTrafficATP", "prod", "logs-o365collector.rws_mailtrafficatp-prod"),
        ("odd-name with:chars", "eu_1", "logs-o365collector.odd_name_with_chars-eu_1"),
    ],
)
def test_data_stream_names(stream: str, namespace: str, name: str) -> None:
    assert data_stream(stream, namespace) == name


async def test_template_refused_warns_with_the_privilege_and_delivery_goes_on(
    httpserver: HTTPServer, clock: FakeClock
) -> None:
    httpserver.expect_request(TEMPLATE_PATH, method="PUT").respond_with_json(
        {"error": {"type": "security_exception"}}, status=403
    )
    seen: list[Request] = []
    httpserver.expect_request("/_bulk").respond_with_handler(bulk_handler([201, 201], seen))
    with capture_logs() as logs:
        sink = await make(clock, url=httpserver.url_for("/"), payload="ecs",
                          username="writer", password="pw-1", namespace="prod")  # fmt: skip
    (warning,) = [x for x in logs if x["log_level"] == "warning"]
    assert "manage_index_templates" in warning["event"]
    assert (warning["status"], warning["privilege"]) == (403, "manage_index_templates")
    assert (await sink.send(make_events(2))).status is DeliveryStatus.DELIVERED
    actions, _ = bulk_lines(seen[0])
    assert {a["_index"] for a in actions} == {"logs-o365collector.message_trace-prod"}
    await sink.close()


async def test_template_errors_and_an_unreachable_cluster_only_warn(
    httpserver: HTTPServer, clock: FakeClock
) -> None:
    httpserver.expect_request(TEMPLATE_PATH, method="PUT").respond_with_data(
        "mapper_parsing_exception: No handler for type [flattened]", status=400
    )
    with capture_logs() as logs:
        sink = await make(clock, url=httpserver.url_for("/"), payload="ecs")
        down = await make(clock, url="http://127.0.0.1:9", payload="ecs")
    warnings = [x for x in logs if x["log_level"] == "warning"]
    assert [w["sink"] for w in warnings] == ["elasticsearch", "elasticsearch"]
    assert warnings[0]["status"] == 400
    assert "flattened" in warnings[0]["reason"]
    assert "Connect" in warnings[1]["reason"]
    await sink.close()
    await down.close()


async def test_explicit_index_wins_and_installs_no_template(
    httpserver: HTTPServer, clock: FakeClock
) -> None:
    seen: list[Request] = []
    httpserver.expect_request("/_bulk").respond_with_handler(bulk_handler([201], seen))
    sink = await make(clock, url=httpserver.url_for("/"), payload="ecs",
                      index="o365-{tenant}-{stream}")  # fmt: skip
    assert (await sink.send(make_events(1))).status is DeliveryStatus.DELIVERED
    assert requests_to(httpserver, TEMPLATE_PATH) == []
    actions, sources = bulk_lines(seen[0])
    assert actions[0]["_index"] == "o365-contoso-message_trace"
    assert sources[0]["event"]["id"] == make_event(0).event_id
    await sink.close()


async def test_ocsf_goes_to_regular_indexes(httpserver: HTTPServer, clock: FakeClock) -> None:
    seen: list[Request] = []
    httpserver.expect_request("/_bulk").respond_with_handler(bulk_handler([201, 201], seen))
    sink = await make(clock, url=httpserver.url_for("/"), payload="ocsf", include_original=True)
    events = [make_event(0), make_event(1, stream="rws.MessageTrace")]
    assert (await sink.send(events)).status is DeliveryStatus.DELIVERED
    assert requests_to(httpserver, TEMPLATE_PATH) == []
    actions, sources = bulk_lines(seen[0])
    assert [a["_index"] for a in actions] == ["o365-message_trace", "o365-rws.messagetrace"]
    assert [a["_id"] for a in actions] == [e.event_id for e in events]
    mapper = Normalizer("ocsf", include_original=True)
    assert sources == [mapper.document(e) for e in events]
    assert "@timestamp" not in sources[0]
    await sink.close()


async def test_a_data_stream_document_always_has_a_timestamp(
    httpserver: HTTPServer, clock: FakeClock
) -> None:
    seen: list[Request] = []
    httpserver.expect_request("/_bulk").respond_with_handler(bulk_handler([201, 201], seen))
    sink = await make(clock, url=httpserver.url_for("/"), payload="ecs", index_template=False)
    with_time = make_event(0, stream="rws.FutureReport")  # the generic mapper: no @timestamp
    without = make_event(1, stream="rws.FutureReport", receivedDateTime=None)
    assert (await sink.send([with_time, without])).status is DeliveryStatus.DELIVERED
    assert requests_to(httpserver, TEMPLATE_PATH) == []
    actions, sources = bulk_lines(seen[0])
    assert {a["_index"] for a in actions} == {"logs-o365collector.rws_futurereport-default"}
    assert sources[0]["@timestamp"] == "2026-11-22T08:30:00.123Z"  # the record's time
    assert sources[1]["@timestamp"].startswith("20")  # the delivery time
    await sink.close()


async def test_an_unmappable_event_is_refused_and_the_rest_indexed(
    httpserver: HTTPServer,
) -> None:
    events = make_events(3)

    class Failing(Normalizer):
        def document(self, event: Event) -> dict[str, Any]:
            if event is events[1]:
                raise TypeError("odd record")
            return super().document(event)

    seen: list[Request] = []
    httpserver.expect_request("/_bulk").respond_with_handler(bulk_handler([201, 201], seen))
    sink = ElasticsearchSink("es", url=httpserver.url_for("/"), index_template=False,
                             payload=Payload("ecs", Failing("ecs")))  # fmt: skip
    await sink.start()
    result = await sink.send(events)
    assert result.status is DeliveryStatus.REJECTED
    assert result.rejected == {1: "unmappable: ecs TypeError: odd record"}
    actions, _ = bulk_lines(seen[0])
    assert [a["_id"] for a in actions] == [events[0].event_id, events[2].event_id]
    await sink.close()


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"payload": "ecs", "namespace": "Prod"}, "not a valid data stream namespace"),
        ({"payload": "ecs", "namespace": "eu-west"}, "not a valid data stream namespace"),
        ({"payload": "ecs", "namespace": "n" * 101}, "not a valid data stream namespace"),
        ({"namespace": "prod"}, "namespace applies only to the ECS data streams"),
        ({"payload": "ecs", "index": "x-{stream}", "index_template": False},
         "index_template applies only"),
        ({"payload": "raw", "include_original": True}, "include_original: true"),
    ],
)  # fmt: skip
def test_invalid_data_stream_settings(settings: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError) as caught:
        ADAPTER.validate_python({"type": "elasticsearch", "url": "http://es:9200", **settings})
    assert message in str(caught.value)
