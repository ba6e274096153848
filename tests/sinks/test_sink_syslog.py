"""Syslog sink against a real rsyslogd over UDP, TCP and TLS, plus exact header formats."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import TypeAdapter, ValidationError
from sinks_servers import Rsyslog
from sinks_support import SUBJECTS, Certs, FakeClock, make_event, make_events, wait_for

from o365collector.config.sinks import SinkSettings
from o365collector.sinks.base import DeliveryStatus
from o365collector.sinks.factory import build_sink
from o365collector.sinks.framing import octet_counted, pri, rfc3164_header, rfc5424_header
from o365collector.sinks.syslog import SyslogSink
from o365collector.sinks.transport import Endpoint, StreamConnection

ADAPTER: TypeAdapter[Any] = TypeAdapter(SinkSettings)


def syslog_sink(
    rsyslog: Rsyslog, certs: Certs, clock: FakeClock, transport: str, **extra: Any
) -> SyslogSink:
    settings: dict[str, Any] = {
        "type": "syslog",
        "host": "127.0.0.1",
        "port": rsyslog.ports[transport],
        "transport": transport,
        **extra,
    }
    if transport == "tls":
        settings.setdefault("ca_file", certs.ca_file)
        settings.setdefault("cert_file", certs.client_cert)
        settings.setdefault("key_file", certs.client_key)
    sink = build_sink(ADAPTER.validate_python(settings), clock)
    assert isinstance(sink, SyslogSink)
    return sink


def mine(rsyslog: Rsyslog, transport: str, hostname: str) -> list[Any]:
    return [e for e in rsyslog.entries(transport) if e.hostname == hostname]


@pytest.mark.parametrize("transport", ["udp", "tcp", "tls"])
@pytest.mark.parametrize("fmt", ["rfc5424", "rfc3164"])
async def test_rsyslog_receives_every_event_intact(
    rsyslog: Rsyslog, certs: Certs, clock: FakeClock, transport: str, fmt: str
) -> None:
    host = f"h-{uuid.uuid4().hex[:10]}"
    sink = syslog_sink(rsyslog, certs, clock, transport, format=fmt, hostname=host)
    await sink.start()
    events = make_events(60)
    assert {e.record["subject"] for e in events} == set(SUBJECTS)  # newlines, CR, non-ASCII
    for start in range(0, 60, 20):
        result = await sink.send(events[start : start + 20])
        assert result.status is DeliveryStatus.DELIVERED, result.reason
    await sink.close()
    wait_for(lambda: len(mine(rsyslog, transport, host)) == 60, what=f"60 {transport} events")
    got = mine(rsyslog, transport, host)
    assert [json.loads(e.msg) for e in got] == [e.record for e in events]
    assert {e.programname for e in got} == {"o365collector"}
    if fmt == "rfc5424":
        assert {e.msgid for e in got} == {"message_trace"}


async def test_udp_oversize_is_rejected_not_truncated(
    rsyslog: Rsyslog, certs: Certs, clock: FakeClock
) -> None:
    host = f"h-{uuid.uuid4().hex[:10]}"
    sink = syslog_sink(rsyslog, certs, clock, "udp", hostname=host)
    events = [make_event(0), make_event(1, subject="é" * 1100), make_event(2)]
    result = await sink.send(events)
    await sink.close()
    assert result.status is DeliveryStatus.REJECTED
    assert result.rejected == {1: "oversize"}
    wait_for(lambda: len(mine(rsyslog, "udp", host)) == 2, what="the two small events")
    got = [json.loads(e.msg) for e in mine(rsyslog, "udp", host)]
    assert got == [events[0].record, events[2].record]


async def test_octet_counting_carries_a_raw_newline_to_rsyslog(
    rsyslog: Rsyslog, certs: Certs, clock: FakeClock
) -> None:
    host = f"h-{uuid.uuid4().hex[:10]}"
    header = rfc5424_header(pri("user", "info"), clock.now(), host, "framing", "-")
    connection = StreamConnection(Endpoint("127.0.0.1", rsyslog.ports["tcp"]), clock)
    await connection.write(octet_counted(header + "first line\nsecond — ligne".encode()))
    await connection.write(octet_counted(header + b"next message"))
    await connection.close()
    wait_for(lambda: len(mine(rsyslog, "tcp", host)) == 2, what="two framed messages")
    assert [e.msg for e in mine(rsyslog, "tcp", host)] == [
        "first line\nsecond — ligne",
        "next message",
    ]


async def test_tls_receiver_refusing_our_missing_certificate_means_retry(
    rsyslog: Rsyslog, certs: Certs, clock: FakeClock
) -> None:
    sink = syslog_sink(rsyslog, certs, clock, "tls", cert_file=None, key_file=None)
    result = await sink.send(make_events(1))
    await sink.close()
    assert result.status is DeliveryStatus.RETRY
    assert "client certificate" in result.reason


async def test_lf_framing_and_envelope_payload(
    rsyslog: Rsyslog, certs: Certs, clock: FakeClock
) -> None:
    host = f"h-{uuid.uuid4().hex[:10]}"
    sink = syslog_sink(
        rsyslog, certs, clock, "tcp", framing="lf", payload="envelope", hostname=host
    )
    events = make_events(5)
    assert (await sink.send(events)).status is DeliveryStatus.DELIVERED
    await sink.close()
    wait_for(lambda: len(mine(rsyslog, "tcp", host)) == 5, what="lf-framed events")
    envelopes = [json.loads(e.msg) for e in mine(rsyslog, "tcp", host)]
    assert [x["record"] for x in envelopes] == [e.record for e in events]
    assert {x["event_id"] for x in envelopes} == {e.event_id for e in events}


def test_headers_are_exact() -> None:
    now = datetime(2026, 3, 5, 7, 8, 9, 123456, tzinfo=UTC)
    assert pri("local4", "warning") == b"<164>"
    assert rfc5424_header(b"<14>", now, "col-1", "o365collector", "message_trace") == (
        b"<14>1 2026-03-05T07:08:09.123456Z col-1 o365collector - message_trace - "
    )
    assert rfc3164_header(b"<14>", now, "col-1", "o365") == b"<14>Mar  5 07:08:09 col-1 o365: "


async def test_facility_severity_app_name_and_msg_id_are_configurable(
    certs: Certs, clock: FakeClock
) -> None:
    settings = {"type": "syslog", "host": "127.0.0.1", "port": 9, "transport": "udp",
                "facility": "local3", "severity": "notice", "app_name": "o365mt",
                "hostname": "edge-7", "msg_id": "MT"}  # fmt: skip
    sink = build_sink(ADAPTER.validate_python(settings), clock)
    assert isinstance(sink, SyslogSink)
    messages, rejected = sink.messages([make_event(3)])
    assert rejected == {}
    assert messages[0].startswith(b"<157>1 2026-11-22T08:30:00.000000Z edge-7 o365mt - MT - {")


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"transport": "udp", "ca_file": "CA"}, "transport udp cannot use TLS"),
        ({"transport": "udp", "tls_verify": False}, "transport udp cannot use TLS"),
        ({"transport": "tcp", "ca_file": "CA"}, "need transport: tls"),
        ({"transport": "udp", "framing": "lf"}, "framing applies to tcp and tls"),
        ({"transport": "udp", "max_message_bytes": 70000}, "at most 65507"),
        ({"transport": "tcp", "format": "rfc3164", "app_name": "a" * 40}, "at most 32"),
        ({"transport": "tcp", "app_name": "has space"}, "app_name"),
    ],
)
def test_invalid_combinations_are_refused(
    certs: Certs, settings: dict[str, Any], message: str
) -> None:
    data = {"type": "syslog", "host": "h", **settings}
    if data.get("ca_file") == "CA":
        data["ca_file"] = certs.ca_file
    with pytest.raises(ValidationError) as caught:
        ADAPTER.validate_python(data)
    assert message in str(caught.value)


def test_ports_and_size_defaults() -> None:
    udp = ADAPTER.validate_python({"type": "syslog", "host": "h", "transport": "udp"})
    tls = ADAPTER.validate_python({"type": "syslog", "host": "h", "transport": "tls"})
    assert (udp.effective_port(), udp.effective_max_bytes()) == (514, 2048)
    assert (tls.effective_port(), tls.effective_max_bytes()) == (6514, None)
