"""``payload: ecs`` and ``payload: ocsf``: one encoder for every sink, mapping failures refused."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from pydantic import TypeAdapter, ValidationError
from pytest_httpserver import HTTPServer
from sinks_support import FakeClock, make_event, make_events

from o365collector.config.sinks import SinkSettings
from o365collector.event import Event
from o365collector.normalize.normalizer import Normalizer
from o365collector.sinks.base import DeliveryStatus, Sink
from o365collector.sinks.devo import DevoSink
from o365collector.sinks.encode import (
    UNENCODABLE,
    Payload,
    UnmappableError,
    encode_batch,
    envelope,
    lines,
    refusal,
)
from o365collector.sinks.factory import build_sink, sink_payload
from o365collector.sinks.jsonl import JsonlSink
from o365collector.sinks.splunk.sink import default_sourcetype

ADAPTER: TypeAdapter[Any] = TypeAdapter(SinkSettings)
STAMP = "2026-11-22T08:31:00.000000Z"
DOMAINS = {"contoso": ["contoso.com"]}


class Failing(Normalizer):
    """A normalizer whose mapper fails on the events listed."""

    def __init__(self, form: Any, fail: set[str]) -> None:
        super().__init__(form)
        self.fail = fail

    def document(self, event: Event) -> dict[str, Any]:
        if event.event_id in self.fail:
            raise KeyError("senderAddress")
        return super().document(event)


@pytest.fixture
async def build(clock: FakeClock) -> AsyncIterator[Callable[..., Any]]:
    built: list[Sink] = []

    async def make(local_domains: Any = None, **settings: Any) -> Sink:
        sink = build_sink(ADAPTER.validate_python(settings), clock, local_domains=local_domains)
        await sink.start()
        built.append(sink)
        return sink

    yield make
    for sink in built:
        await sink.close()


# --- the payload object ---------------------------------------------------------------------


def test_payload_kinds_ship_record_envelope_or_document() -> None:
    event = make_event(1)
    assert Payload("raw").object(event, STAMP) is event.record
    assert Payload.of("envelope").object(event, STAMP) == envelope(event, STAMP)
    ecs = Payload("ecs").object(event, STAMP)
    assert ecs == Normalizer("ecs").document(event)
    assert ecs["event"]["id"] == event.event_id
    ocsf = Payload("ocsf").object(event, STAMP)
    assert ocsf == Normalizer("ocsf").document(event)
    ready = Payload("ecs", Normalizer("ecs"))
    assert Payload.of(ready) is ready
    assert not Payload("envelope").normalized
    assert ready.normalized


def test_payload_refuses_a_normalizer_of_another_kind() -> None:
    with pytest.raises(ValueError, match="ships no normalized document"):
        Payload("raw", Normalizer("ecs"))
    with pytest.raises(ValueError, match="normalizer of ocsf"):
        Payload("ecs", Normalizer("ocsf"))


def test_factory_builds_the_normalizer_from_settings_and_local_domains() -> None:
    settings = ADAPTER.validate_python(
        {"type": "stdout", "payload": "ocsf", "include_original": True}
    )
    payload = sink_payload(settings, DOMAINS)
    assert payload.kind == "ocsf"
    assert payload.normalizer is not None
    assert payload.normalizer.include_original is True
    assert sink_payload(ADAPTER.validate_python({"type": "stdout"})).kind == "envelope"
    assert sink_payload(ADAPTER.validate_python({"type": "devo", "host": "relay",
                                                 "transport": "tcp"})).kind == "raw"  # fmt: skip


@pytest.mark.parametrize("form", ["ecs", "ocsf"])
def test_a_mapping_failure_refuses_only_that_event(form: Any) -> None:
    events = make_events(3)
    payload = Payload(form, Failing(form, {events[1].event_id}))
    body, rejected = lines(events, payload, STAMP)
    assert list(rejected) == [1]
    assert rejected[1] == f"{'unmappable'}: {form} KeyError: 'senderAddress'"
    docs = [json.loads(line) for line in body.splitlines()]
    assert docs == [Normalizer(form).document(e) for e in (events[0], events[2])]
    texts, refused = encode_batch(events, payload, STAMP)
    assert refused == rejected
    assert texts[1] is None
    assert texts[0] is not None


def test_refusal_reasons() -> None:
    assert refusal(ValueError("NaN")) == UNENCODABLE
    error = UnmappableError("ecs", RuntimeError("x" * 1000))
    assert refusal(error).startswith("unmappable: ecs RuntimeError: xxx")
    assert len(refusal(error)) <= 300


def test_include_original_needs_a_normalized_payload() -> None:
    for payload in ("raw", "envelope"):
        with pytest.raises(ValidationError, match="include_original: true adds the raw record"):
            ADAPTER.validate_python({"type": "stdout", "payload": payload,
                                     "include_original": True})  # fmt: skip
    for payload in ("ecs", "ocsf"):
        settings = ADAPTER.validate_python(
            {"type": "http", "url": "http://h", "payload": payload, "include_original": True}
        )
        assert settings.include_original


# --- file and socket sinks (the shared lines / encode_batch path) ---------------------------


async def test_jsonl_writes_ecs_documents_with_each_tenants_direction(
    tmp_path: Path, build: Any
) -> None:
    path = tmp_path / "ecs.jsonl"
    sink = await build(type="jsonl", path=path, payload="ecs", include_original=True,
                       local_domains=DOMAINS)  # fmt: skip
    assert isinstance(sink, JsonlSink)
    events = make_events(3)
    assert (await sink.send(events)).status is DeliveryStatus.DELIVERED
    docs = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    mapper = Normalizer("ecs", local_domains=DOMAINS, include_original=True)
    assert docs == [mapper.document(e) for e in events]
    assert {d["email"]["direction"] for d in docs} == {"outbound"}  # contoso.com → fabrikam
    assert json.loads(docs[0]["event"]["original"]) == events[0].record


async def test_jsonl_without_local_domains_leaves_direction_unknown(
    tmp_path: Path, build: Any
) -> None:
    ecs_path, ocsf_path = tmp_path / "ecs.jsonl", tmp_path / "ocsf.jsonl"
    ecs = await build(type="jsonl", path=ecs_path, payload="ecs")
    ocsf = await build(type="jsonl", path=ocsf_path, payload="ocsf", name="o")
    events = make_events(2)
    assert (await ecs.send(events)).status is DeliveryStatus.DELIVERED
    assert (await ocsf.send(events)).status is DeliveryStatus.DELIVERED
    ecs_docs = [json.loads(x) for x in ecs_path.read_text(encoding="utf-8").splitlines()]
    ocsf_docs = [json.loads(x) for x in ocsf_path.read_text(encoding="utf-8").splitlines()]
    assert all("direction" not in d["email"] for d in ecs_docs)
    assert all("original" not in d["event"] for d in ecs_docs)
    assert ocsf_docs == [Normalizer("ocsf").document(e) for e in events]
    assert all(d.get("direction_id", 0) == 0 and "raw_data" not in d for d in ocsf_docs)


async def test_jsonl_dead_letters_an_unmappable_event_and_keeps_the_rest(
    tmp_path: Path, clock: FakeClock
) -> None:
    events = make_events(3)
    payload = Payload("ecs", Failing("ecs", {events[0].event_id}))
    sink = JsonlSink("j", tmp_path / "x.jsonl", max_bytes=1 << 20, keep_files=2,
                     payload=payload, clock=clock)  # fmt: skip
    await sink.start()
    result = await sink.send(events)
    await sink.close()
    assert result.status is DeliveryStatus.REJECTED
    assert list(result.rejected) == [0]
    assert result.rejected[0].startswith("unmappable: ecs KeyError")
    written = (tmp_path / "x.jsonl").read_text(encoding="utf-8").splitlines()
    assert [json.loads(x)["event"]["id"] for x in written] == [e.event_id for e in events[1:]]


def test_devo_frames_carry_the_ocsf_document(clock: FakeClock) -> None:
    settings = ADAPTER.validate_python({"type": "devo", "host": "relay.local", "port": 13000,
                                        "transport": "tcp", "payload": "ocsf"})  # fmt: skip
    sink = build_sink(settings, clock, local_domains=DOMAINS)
    assert isinstance(sink, DevoSink)
    events = make_events(2)
    frames, rejected = sink.frames(events)
    assert rejected == {}
    tag = b"cloud.office365.reporting.messagetrace: "
    docs = [json.loads(frames[i].split(tag, 1)[1]) for i in range(2)]
    assert docs == [Normalizer("ocsf", local_domains=DOMAINS).document(e) for e in events]
    assert docs[0]["metadata"]["uid"] == events[0].event_id


# --- HTTP sinks -----------------------------------------------------------------------------


async def test_http_sink_posts_ocsf_documents(httpserver: HTTPServer, build: Any) -> None:
    httpserver.expect_request("/in").respond_with_data("ok")
    sink = await build(type="http", url=httpserver.url_for("/in"), payload="ocsf",
                       format="json_array")  # fmt: skip
    events = make_events(3)
    assert (await sink.send(events)).status is DeliveryStatus.DELIVERED
    ((request, _),) = httpserver.log
    assert json.loads(request.get_data()) == [Normalizer("ocsf").document(e) for e in events]


async def test_sekoia_can_ship_ecs_documents(httpserver: HTTPServer, build: Any) -> None:
    httpserver.expect_request("/batch").respond_with_json({"event_ids": []})
    sink = await build(type="sekoia", intake_key="k" * 20, base_url=httpserver.url_for("/"),
                       payload="ecs")  # fmt: skip
    events = make_events(2)
    assert (await sink.send(events)).status is DeliveryStatus.DELIVERED
    ((request, _),) = httpserver.log
    texts = json.loads(request.get_data())["jsons"]
    assert [json.loads(t) for t in texts] == [Normalizer("ecs").document(e) for e in events]


@pytest.mark.parametrize(
    ("stream", "payload", "sourcetype"),
    [
        ("message_trace", "raw", "o365:reporting:messagetrace"),
        ("message_trace", "envelope", "o365:reporting:messagetrace"),
        ("message_trace", "ecs", "o365:reporting:messagetrace:ecs"),
        ("rws.MessageTrace", "ocsf", "o365:reporting:messagetrace:ocsf"),
        ("rws.MailTraffic", "ecs", "o365:reporting:mailtraffic:ecs"),
        ("message_trace_detail", "ocsf", "o365:reporting:messagetracedetail:ocsf"),
    ],
)
def test_splunk_default_sourcetypes(stream: str, payload: Any, sourcetype: str) -> None:
    assert default_sourcetype(stream, payload) == sourcetype


async def test_splunk_event_is_the_ecs_document_with_its_sourcetype(
    httpserver: HTTPServer, build: Any
) -> None:
    httpserver.expect_request("/services/collector/event").respond_with_json({"code": 0})
    sink = await build(type="splunk_hec", url=httpserver.url_for("/"), token="t-1",
                       payload="ecs", local_domains=DOMAINS)  # fmt: skip
    named = await build(type="splunk_hec", url=httpserver.url_for("/"), token="t-1",
                        payload="ocsf", sourcetype="mine", name="n")  # fmt: skip
    events = [make_event(0), make_event(1, stream="rws.FutureReport")]  # a generic mapper
    assert (await sink.send(events)).status is DeliveryStatus.DELIVERED
    assert (await named.send(events[:1])).status is DeliveryStatus.DELIVERED
    first, second = (request.get_data() for request, _ in httpserver.log)
    envelopes = [json.loads(line) for line in first.splitlines()]
    mapper = Normalizer("ecs", local_domains=DOMAINS)
    assert [x["event"] for x in envelopes] == [mapper.document(e) for e in events]
    assert [x["sourcetype"] for x in envelopes] == [
        "o365:reporting:messagetrace:ecs",
        "o365:reporting:futurereport:ecs",
    ]
    assert "time" in envelopes[0]
    (only,) = [json.loads(line) for line in second.splitlines()]
    assert only["sourcetype"] == "mine"
    assert only["event"]["metadata"]["uid"] == events[0].event_id
