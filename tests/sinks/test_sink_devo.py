"""Devo sink: mutual TLS, byte-for-byte agreement with devo-sdk, reconnects, rsyslog as a peer."""

from __future__ import annotations

import json
import socket
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import pkcs12
from pydantic import TypeAdapter, ValidationError
from sinks_servers import CaptureServer, Rsyslog
from sinks_support import (
    Certs,
    FakeClock,
    gunzip_members,
    make_event,
    make_events,
    split_frames,
    wait_for,
)

from o365collector.config.sinks import SinkSettings
from o365collector.errors import SinkError
from o365collector.sinks.base import DeliveryStatus
from o365collector.sinks.devo import DevoSink, default_table
from o365collector.sinks.factory import build_sink
from o365collector.sinks.framing import devo_frame, devo_header

ADAPTER: TypeAdapter[Any] = TypeAdapter(SinkSettings)
TABLE = "cloud.office365.reporting.messagetrace"


def devo_settings(server: CaptureServer, certs: Certs, **extra: Any) -> dict[str, Any]:
    return {
        "type": "devo",
        "host": "127.0.0.1",
        "port": server.port,
        "ca_file": certs.ca_file,
        "cert_file": certs.client_cert,
        "key_file": certs.client_key,
        **extra,
    }


def make_sink(settings: dict[str, Any], clock: FakeClock) -> DevoSink:
    sink = build_sink(ADAPTER.validate_python(settings), clock)
    assert isinstance(sink, DevoSink)
    return sink


@pytest.fixture
def server(certs: Certs) -> Any:
    capture = CaptureServer(certs).start()
    yield capture
    capture.stop()


@pytest.fixture
async def sink(server: CaptureServer, certs: Certs, clock: FakeClock) -> AsyncIterator[DevoSink]:
    made = make_sink(devo_settings(server, certs), clock)
    await made.start()
    yield made
    await made.close()


async def test_mtls_server_receives_every_event_with_the_table_as_tag(
    server: CaptureServer, sink: DevoSink
) -> None:
    events = make_events(20)
    result = await sink.send(events)
    assert result.status is DeliveryStatus.DELIVERED
    await sink.close()
    wait_for(lambda: server.closed_connections == 1, what="polite close")
    frames = split_frames(server.data)
    head = f"<14>Jan  1 00:00:00 {socket.gethostname()} {TABLE}: ".encode()
    assert all(f.startswith(head) and f.endswith(b"\n") for f in frames)
    assert [json.loads(f[len(head) :]) for f in frames] == [e.record for e in events]
    subject = dict(x[0] for x in server.peer_certs[0]["subject"])  # type: ignore[index]
    assert server.peer_certs[0] is not None
    assert "commonName" in subject or server.peer_certs[0].get("subjectAltName")


async def test_bytes_match_devo_sdk_for_the_same_events(
    server: CaptureServer, sink: DevoSink, certs: Certs
) -> None:
    data = pytest.importorskip("devo.sender.data", reason="devo-sdk not installed (test extra)")
    events = make_events(12)
    sdk = data.Sender(
        config=data.SenderConfigSSL(
            address=("localhost", server.port),
            key=str(certs.client_key),
            cert=str(certs.client_cert),
            chain=str(certs.ca_file),
        )
    )
    for event in events:
        sdk.send(tag=TABLE, msg=orjson.dumps(event.record).decode())
    sdk.close()
    wait_for(lambda: server.closed_connections == 1, what="devo-sdk close")
    assert (await sink.send(events)).status is DeliveryStatus.DELIVERED
    await sink.close()
    wait_for(lambda: server.closed_connections == 2, what="sink close")
    sdk_bytes, our_bytes = (bytes(c) for c in server.connections)
    assert our_bytes == sdk_bytes  # same default hostname, same date placeholder


async def test_gzip_member_matches_devo_sdk_zip_flush(
    server: CaptureServer, certs: Certs, clock: FakeClock
) -> None:
    data = pytest.importorskip("devo.sender.data", reason="devo-sdk not installed (test extra)")
    events = make_events(6)
    sdk = data.Sender(
        config=data.SenderConfigSSL(
            address=("localhost", server.port),
            key=str(certs.client_key),
            cert=str(certs.client_cert),
            chain=str(certs.ca_file),
        )
    )
    for event in events:
        sdk.send(tag=TABLE.encode(), msg=orjson.dumps(event.record), zip=True)
    assert sdk.flush_buffer() == len(events)
    sdk.close()
    wait_for(lambda: server.closed_connections == 1, what="devo-sdk close")
    sink = make_sink(devo_settings(server, certs, gzip=True), clock)
    assert (await sink.send(events)).status is DeliveryStatus.DELIVERED
    await sink.close()
    wait_for(lambda: server.closed_connections == 2, what="sink close")
    sdk_bytes, our_bytes = (bytes(c) for c in server.connections)
    assert our_bytes == sdk_bytes
    (plain,) = gunzip_members(our_bytes)
    assert len(plain.splitlines()) == len(events)


def test_multiline_message_is_octet_counted_like_devo_sdk(certs: Certs) -> None:
    data = pytest.importorskip("devo.sender.data", reason="devo-sdk not installed (test extra)")
    server = CaptureServer(certs).start()
    try:
        sdk = data.Sender(
            config=data.SenderConfigSSL(
                address=("localhost", server.port),
                key=str(certs.client_key),
                cert=str(certs.client_cert),
                chain=str(certs.ca_file),
            )
        )
        sdk.send(tag="my.app.test.multi", msg="line1\nline2 — é", multiline=True)
        sdk.close()
        wait_for(lambda: server.closed_connections == 1, what="devo-sdk close")
    finally:
        server.stop()
    ours = devo_frame(
        devo_header(socket.gethostname(), "my.app.test.multi"), "line1\nline2 — é".encode()
    )
    assert ours == server.data
    assert ours.split(b" ", 1)[0] == str(len(ours.split(b" ", 1)[1])).encode()


async def test_gzip_with_batch_max_bytes_sends_one_member_per_write(
    server: CaptureServer, certs: Certs, clock: FakeClock
) -> None:
    sink = make_sink(devo_settings(server, certs, gzip=True, batch_max_bytes=2048), clock)
    events = make_events(30)
    assert (await sink.send(events)).status is DeliveryStatus.DELIVERED
    await sink.close()
    wait_for(lambda: server.closed_connections == 1, what="close")
    members = gunzip_members(server.data)
    assert len(members) > 3
    assert all(len(m) <= 2048 for m in members)
    lines = [line for m in members for line in m.splitlines()]
    assert [json.loads(line.split(b": ", 1)[1]) for line in lines] == [e.record for e in events]


async def test_reconnects_before_idle_timeout_and_after_max_age(
    server: CaptureServer, certs: Certs, clock: FakeClock
) -> None:
    sink = make_sink(devo_settings(server, certs, max_connection_age_secs=60), clock)
    await sink.send(make_events(1))
    clock.advance(24)
    await sink.send(make_events(1, start=1))  # still inside the 25 s idle window
    assert sink.connection.connections == 1
    clock.advance(26)
    await sink.send(make_events(1, start=2))  # idle too long: new connection
    assert sink.connection.connections == 2
    for n in range(3, 6):
        clock.advance(20)
        await sink.send(make_events(1, start=n))
    assert sink.connection.connections == 3  # 60 s old: rotated although never idle
    await sink.close()
    wait_for(lambda: server.closed_connections == 3, what="three closed connections")
    records = [json.loads(f.split(b": ", 1)[1]) for f in split_frames(server.data)]
    assert [r["id"] for r in records] == [make_event(n).record["id"] for n in range(6)]


async def test_connection_closed_by_peer_is_replaced_without_losing_events(
    server: CaptureServer, sink: DevoSink
) -> None:
    assert (await sink.send(make_events(3))).status is DeliveryStatus.DELIVERED
    wait_for(lambda: len(split_frames(server.data)) == 3, what="first batch")
    server.stop()  # the balancer drops the connection
    server.start()
    result = await sink.send(make_events(3, start=3))
    assert result.status is DeliveryStatus.DELIVERED
    wait_for(lambda: len(split_frames(server.data)) == 6, what="second batch")
    assert sink.connection.connections == 2


async def test_pkcs12_bundle_with_chain_and_password(
    server: CaptureServer, certs: Certs, clock: FakeClock, tmp_path: Path
) -> None:
    key = serialization.load_pem_private_key(certs.client_key.read_bytes(), None)
    cert = x509.load_pem_x509_certificate(certs.client_cert.read_bytes())
    ca = x509.load_pem_x509_certificate(certs.ca_file.read_bytes())
    bundle = tmp_path / "devo.p12"
    bundle.write_bytes(
        pkcs12.serialize_key_and_certificates(
            b"devo",
            key,  # type: ignore[arg-type]
            cert,
            [ca],
            serialization.BestAvailableEncryption(b"p12-Secret-pw"),
        )
    )
    settings = {
        "type": "devo",
        "host": "127.0.0.1",
        "port": server.port,
        "pkcs12_file": bundle,
        "private_key_password": "p12-Secret-pw",
    }
    sink = make_sink(settings, clock)
    assert (await sink.send(make_events(2))).status is DeliveryStatus.DELIVERED
    await sink.close()
    wait_for(lambda: len(split_frames(server.data)) == 2, what="events over PKCS#12 identity")
    with pytest.raises(SinkError) as caught:
        make_sink({**settings, "private_key_password": "wrong-password-1"}, clock)
    assert "wrong-password-1" not in str(caught.value)
    assert "private_key_password" in str(caught.value)


def test_config_refuses_tls_without_cert_key_and_chain(certs: Certs) -> None:
    with pytest.raises(ValidationError) as caught:
        ADAPTER.validate_python({"type": "devo", "region": "eu", "cert_file": certs.client_cert,
                                 "key_file": certs.client_key})  # fmt: skip
    assert "tls_verify: false" in str(caught.value)
    unverified = ADAPTER.validate_python({"type": "devo", "region": "eu", "tls_verify": False})
    assert unverified.tls_verify is False


async def test_unverified_connection_is_explicit_and_works(certs: Certs, clock: FakeClock) -> None:
    server = CaptureServer(certs, require_client_cert=False).start()
    try:
        settings = {"type": "devo", "host": "127.0.0.1", "port": server.port, "tls_verify": False}
        sink = make_sink(settings, clock)
        assert (await sink.send(make_events(1))).status is DeliveryStatus.DELIVERED
        await sink.close()
        wait_for(lambda: len(split_frames(server.data)) == 1, what="unverified event")
    finally:
        server.stop()


async def test_server_requiring_client_cert_refuses_a_sink_without_one(
    server: CaptureServer, clock: FakeClock
) -> None:
    settings = {"type": "devo", "host": "127.0.0.1", "port": server.port, "tls_verify": False}
    sink = make_sink(settings, clock)
    result = await sink.send(make_events(1))
    await sink.close()
    assert result.status is DeliveryStatus.RETRY  # not "delivered" into a refused connection
    assert "client certificate" in result.reason
    assert server.data == b""
    assert server.handshake_failures == 1


def test_endpoints_tables_and_tags(certs: Certs, clock: FakeClock) -> None:
    tls = {"ca_file": certs.ca_file, "cert_file": certs.client_cert, "key_file": certs.client_key}
    sink = make_sink({"type": "devo", "region": "ap", **tls}, clock)
    assert (sink.connection.endpoint.host, sink.connection.endpoint.port) == (
        "collector-ap.devo.io",
        443,
    )
    assert sink.table_for("message_trace") == TABLE
    assert default_table("mail_detail_atp") == "cloud.office365.reporting.maildetailatp"
    tagged = make_sink({"type": "devo", "region": "eu", "tag": "my.app.o365.trace", **tls}, clock)
    assert tagged.table_for("message_trace") == "my.app.o365.trace"
    mapped = make_sink(
        {"type": "devo", "region": "eu", "tag": "my.app.x", "tables": {"spoof_mail": "my.app.y"},
         **tls},
        clock,
    )  # fmt: skip
    assert (mapped.table_for("spoof_mail"), mapped.table_for("message_trace")) == (
        "my.app.y",
        "my.app.x",
    )
    relay = make_sink({"type": "devo", "host": "relay.local", "port": 13000,
                       "transport": "tcp"}, clock)  # fmt: skip
    assert relay.connection.endpoint.ssl_context is None


async def test_rsyslog_with_mutual_tls_accepts_the_devo_stream(
    rsyslog: Rsyslog, certs: Certs, clock: FakeClock
) -> None:
    settings = {
        "type": "devo",
        "host": "127.0.0.1",
        "port": rsyslog.ports["tls"],
        "ca_file": certs.ca_file,
        "cert_file": certs.client_cert,
        "key_file": certs.client_key,
        "hostname": "devo-probe-host",
    }
    sink = make_sink(settings, clock)
    events = make_events(15)
    assert (await sink.send(events)).status is DeliveryStatus.DELIVERED
    await sink.close()

    def mine() -> list[Any]:
        return [e for e in rsyslog.entries("tls") if e.hostname == "devo-probe-host"]

    wait_for(lambda: len(mine()) == len(events), what="devo events in rsyslog")
    assert {e.programname for e in mine()} == {TABLE}
    assert [json.loads(e.msg) for e in mine()] == [e.record for e in events]
