"""One contract for every sink: delivered, retry and rejected, against real loopback receivers."""

from __future__ import annotations

import gzip
import json
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import TypeAdapter
from pytest_httpserver import HTTPServer
from sinks_servers import RSYSLOG_SKIP, RSYSLOGD, CaptureServer, Rsyslog, stop_osmem
from sinks_support import (
    Certs,
    FakeClock,
    free_port,
    make_event,
    make_events,
    split_frames,
    wait_for,
)
from werkzeug import Request, Response

from o365collector.config.sinks import SinkSettings
from o365collector.event import Event
from o365collector.sinks.base import DeliveryStatus, Sink
from o365collector.sinks.factory import build_sink

ADAPTER: TypeAdapter[Any] = TypeAdapter(SinkSettings)
BIG = "x" * 5000  # over the 4096-byte cap the socket harnesses configure


def canonical(records: list[dict[str, Any]]) -> list[str]:
    return sorted(json.dumps(r, sort_keys=True) for r in records)


class Harness:
    """A sink type with its receiver: how to configure it, read what arrived, break it."""

    retry_after: float | None = None

    def settings(self) -> dict[str, Any]:
        raise NotImplementedError

    def received(self, expected: int) -> list[dict[str, Any]]:
        raise NotImplementedError

    def down(self) -> None:
        raise NotImplementedError

    def up(self) -> None:
        raise NotImplementedError

    def reject_case(self) -> tuple[list[Event], dict[int, str]]:
        """Events of which some will be refused; their indexes and reason prefixes."""
        events = [make_event(0), make_event(1, subject=BIG), make_event(2)]
        return events, {1: "oversize"}

    def close(self) -> None:
        pass


class DevoHarness(Harness):
    def __init__(self, certs: Certs, *, tls: bool) -> None:
        self.tls = tls
        self.certs = certs
        self.server = CaptureServer(certs if tls else None).start()

    def settings(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "type": "devo",
            "host": "127.0.0.1",
            "port": self.server.port,
            "transport": "tls" if self.tls else "tcp",
            "max_message_bytes": 4096,
        }
        if self.tls:
            c = self.certs
            out |= {"ca_file": c.ca_file, "cert_file": c.client_cert, "key_file": c.client_key}
        return out

    def received(self, expected: int) -> list[dict[str, Any]]:
        wait_for(lambda: len(split_frames(self.server.data)) >= expected, what="devo frames")
        frames = split_frames(self.server.data)
        return [json.loads(f.split(b": ", 1)[1]) for f in frames]

    def down(self) -> None:
        self.server.stop()

    def up(self) -> None:
        self.server.connections.clear()
        self.server.start()

    def close(self) -> None:
        self.server.stop()


class SyslogHarness(Harness):
    def __init__(self, folder: Path, certs: Certs, transport: str) -> None:
        if RSYSLOGD is None:
            pytest.skip(RSYSLOG_SKIP)
        self.transport = transport
        self.certs = certs
        self.rsyslog = Rsyslog(folder, certs).start()
        self.offset = 0

    def settings(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "type": "syslog",
            "host": "127.0.0.1",
            "port": self.rsyslog.ports[self.transport],
            "transport": self.transport,
        }
        if self.transport != "udp":
            out["max_message_bytes"] = 4096
        if self.transport == "tls":
            c = self.certs
            out |= {"ca_file": c.ca_file, "cert_file": c.client_cert, "key_file": c.client_key}
        return out

    def received(self, expected: int) -> list[dict[str, Any]]:
        entries = self.rsyslog.wait_entries(self.transport, self.offset + expected)
        return [json.loads(e.msg) for e in entries[self.offset :]]

    def down(self) -> None:
        self.rsyslog.stop()

    def up(self) -> None:
        self.offset = len(self.rsyslog.entries(self.transport))
        self.rsyslog.start()

    def close(self) -> None:
        self.rsyslog.stop()


class HttpHarness(Harness):
    """pytest-httpserver scripted per mode: ok, down (503 + Retry-After), reject."""

    path = "/"
    reject_status = 400
    retry_after = 7.0

    def __init__(self, server: HTTPServer) -> None:
        self.server = server
        self.mode = "ok"
        self.bodies: list[bytes] = []
        server.expect_request(self.path, method="POST").respond_with_handler(self.handle)

    def handle(self, request: Request) -> Response:
        if self.mode == "down":
            return Response("busy", status=503, headers={"Retry-After": "7"})
        if self.mode == "reject":
            return Response('{"text":"Invalid token","code":4}', status=self.reject_status)
        data = request.get_data()
        if request.headers.get("Content-Encoding") == "gzip":
            data = gzip.decompress(data)
        self.bodies.append(data)
        return Response(self.ok_body(data), status=200, content_type="application/json")

    def ok_body(self, data: bytes) -> str:
        del data
        return "{}"

    def records(self, body: bytes) -> list[dict[str, Any]]:
        return [json.loads(line) for line in body.splitlines() if line]

    def received(self, expected: int) -> list[dict[str, Any]]:
        del expected
        return [r for body in self.bodies for r in self.records(body)]

    def down(self) -> None:
        self.mode = "down"

    def up(self) -> None:
        self.mode = "ok"

    def reject_case(self) -> tuple[list[Event], dict[int, str]]:
        self.mode = "reject"
        return make_events(2), {0: self.reject_reason, 1: self.reject_reason}

    reject_reason = "HTTP 400"


class SekoiaHarness(HttpHarness):
    path = "/batch"

    def settings(self) -> dict[str, Any]:
        return {"type": "sekoia", "base_url": self.server.url_for("/"), "intake_key": "K-123456"}

    def ok_body(self, data: bytes) -> str:
        return json.dumps({"event_ids": [str(i) for i in range(len(json.loads(data)["jsons"]))]})

    def records(self, body: bytes) -> list[dict[str, Any]]:
        return [json.loads(text) for text in json.loads(body)["jsons"]]

    def reject_case(self) -> tuple[list[Event], dict[int, str]]:
        events = [make_event(0), make_event(1, subject="y" * 260_000), make_event(2)]
        return events, {1: "oversize"}


class HecHarness(HttpHarness):
    path = "/services/collector/event"
    reject_status = 403
    reject_reason = "HEC token refused: check token"

    def settings(self) -> dict[str, Any]:
        return {"type": "splunk_hec", "url": self.server.url_for("/"), "token": "hec-tok-1"}

    def ok_body(self, data: bytes) -> str:
        return '{"text":"Success","code":0}'

    def records(self, body: bytes) -> list[dict[str, Any]]:
        return [json.loads(line)["event"] for line in body.splitlines() if line]


class GenericHttpHarness(HttpHarness):
    path = "/ingest"

    def settings(self) -> dict[str, Any]:
        return {"type": "http", "url": self.server.url_for("/ingest"), "gzip": True}


class ElasticHarness(Harness):
    def __init__(self) -> None:
        osmem = pytest.importorskip(
            "osmem_server", reason="osmem-server not installed: add it to the test extra"
        )
        self.osmem = osmem
        self.addr = f"127.0.0.1:{free_port()}"
        self.index = f"t{uuid.uuid4().hex[:8]}-{{stream}}"
        self.server = osmem.OsmemServer.start(addr=self.addr, japanese=False)

    def settings(self) -> dict[str, Any]:
        return {"type": "elasticsearch", "url": f"http://{self.addr}", "index": self.index}

    def received(self, expected: int) -> list[dict[str, Any]]:
        index = self.index.replace("{stream}", "message_trace")
        httpx.post(f"http://{self.addr}/{index}/_refresh")
        hits = httpx.get(f"http://{self.addr}/{index}/_search", params={"size": 1000}).json()
        return [h["_source"] for h in hits["hits"]["hits"]]

    def down(self) -> None:
        stop_osmem(self.server)

    def up(self) -> None:
        self.server = self.osmem.OsmemServer.start(addr=self.addr, japanese=False)

    def reject_case(self) -> tuple[list[Event], dict[int, str]]:
        events = [make_event(0), make_event(1, size="not a number"), make_event(2)]
        return events, {1: "400 mapper_parsing_exception"}

    def close(self) -> None:
        stop_osmem(self.server)


class FileHarness(Harness):
    def __init__(self, folder: Path) -> None:
        self.path = folder / "out.jsonl"

    def settings(self) -> dict[str, Any]:
        return {"type": "jsonl", "path": self.path}

    def received(self, expected: int) -> list[dict[str, Any]]:
        lines = self.path.read_bytes().splitlines()
        return [json.loads(line)["record"] for line in lines]

    def reject_case(self) -> tuple[list[Event], dict[int, str]]:
        events = [make_event(0), make_event(1, blob=b"not JSON"), make_event(2)]
        return events, {1: "unencodable"}


RETRY_KINDS = [
    "devo_tls",
    "devo_tcp",
    "syslog_udp",
    "syslog_tcp",
    "syslog_tls",
    "sekoia",
    "splunk_hec",
    "elasticsearch",
    "http",
]
KINDS = [*RETRY_KINDS, "jsonl"]  # a local file has no outage to script (disk full)


@pytest.fixture
def harness(
    request: pytest.FixtureRequest, certs: Certs, tmp_path: Path, httpserver: HTTPServer
) -> Iterator[Harness]:
    kind = request.param
    made: Harness
    if kind.startswith("devo"):
        made = DevoHarness(certs, tls=kind == "devo_tls")
    elif kind.startswith("syslog"):
        made = SyslogHarness(tmp_path, certs, kind.split("_")[1])
    elif kind == "sekoia":
        made = SekoiaHarness(httpserver)
    elif kind == "splunk_hec":
        made = HecHarness(httpserver)
    elif kind == "http":
        made = GenericHttpHarness(httpserver)
    elif kind == "elasticsearch":
        made = ElasticHarness()
    else:
        made = FileHarness(tmp_path)
    try:
        yield made
    finally:
        made.close()


@pytest.fixture
async def sink(harness: Harness, clock: FakeClock) -> AsyncIterator[Sink]:
    built = build_sink(ADAPTER.validate_python(harness.settings()), clock)
    await built.start()
    try:
        yield built
    finally:
        await built.close()


@pytest.mark.parametrize("harness", KINDS, indirect=True)
async def test_delivered_events_arrive_intact(harness: Harness, sink: Sink) -> None:
    events = make_events(5)
    result = await sink.send(events)
    assert result.status is DeliveryStatus.DELIVERED, result.reason
    assert canonical(harness.received(5)) == canonical([e.record for e in events])


@pytest.mark.parametrize("harness", RETRY_KINDS, indirect=True)
async def test_retry_when_receiver_down_then_pending_events_delivered(
    harness: Harness, sink: Sink
) -> None:
    events = make_events(4)
    harness.down()
    first = await sink.send(events)
    assert first.status is DeliveryStatus.RETRY
    assert first.reason
    assert first.retry_after_secs == harness.retry_after
    pending = sorted(first.pending) if first.pending is not None else list(range(4))
    assert pending, "a RETRY must leave something to retry"
    harness.up()
    again = [events[i] for i in pending]
    second = await sink.send(again)
    assert second.status is DeliveryStatus.DELIVERED, second.reason
    assert canonical(harness.received(len(again))) == canonical([e.record for e in again])


@pytest.mark.parametrize("harness", KINDS, indirect=True)
async def test_rejected_events_are_named_with_a_reason(harness: Harness, sink: Sink) -> None:
    events, expected = harness.reject_case()
    result = await sink.send(events)
    assert result.status is DeliveryStatus.REJECTED, result.reason
    assert sorted(result.rejected) == sorted(expected)
    for index, prefix in expected.items():
        assert result.rejected[index].startswith(prefix), result.rejected[index]
    kept = [e.record for i, e in enumerate(events) if i not in expected]
    if kept:
        assert canonical(harness.received(len(kept))) == canonical(kept)
