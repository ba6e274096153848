"""Syslog sink: RFC 5424 or RFC 3164 messages over UDP, TCP or TLS (RFC 5425)."""

from __future__ import annotations

import socket
from collections.abc import Sequence
from datetime import datetime
from typing import Literal

import structlog

from o365collector.clock import Clock
from o365collector.config.sinks import PayloadKind
from o365collector.event import Event
from o365collector.sinks.base import DeliveryResult, Outcome
from o365collector.sinks.encode import Payload, delivered_at, encode_batch
from o365collector.sinks.framing import pri, rfc3164_header, rfc5424_header, stream_frame
from o365collector.sinks.probe import socket_failure
from o365collector.sinks.transport import (
    DatagramConnection,
    Endpoint,
    StreamConnection,
    TransportError,
)

log = structlog.get_logger(__name__)

OVERSIZE = "oversize"
Transport = Literal["udp", "tcp", "tls"]
Format = Literal["rfc5424", "rfc3164"]


class SyslogSink:
    """Sends each event's payload as the MSG of one syslog message.

    The timestamp is the collector's send time in UTC (the record keeps its own times);
    MSGID (RFC 5424) is ``msg_id`` or the event's stream. Over TCP/TLS messages are
    octet-counted by default; ``lf`` framing is safe too because payloads are JSON,
    which never holds a raw newline. A message over ``max_message_bytes`` is refused
    (``oversize``), never cut.

    "Delivered" means drained to the kernel on TCP/TLS, and handed to the kernel on UDP
    (UDP cannot tell whether the receiver got it).
    """

    def __init__(
        self,
        name: str,
        endpoint: Endpoint,
        clock: Clock,
        *,
        transport: Transport,
        format: Format = "rfc5424",
        octet_counting: bool = True,
        app_name: str = "o365collector",
        hostname: str | None = None,
        msg_id: str | None = None,
        facility: str = "user",
        severity: str = "info",
        payload: Payload | PayloadKind = "raw",
        max_message_bytes: int | None = None,
    ) -> None:
        """Configure the sink; the socket opens on the first send."""
        self.name = name
        self.clock = clock
        self.transport = transport
        self.format: Format = format
        self.octet_counting = octet_counting
        self.app_name = app_name
        self.hostname = hostname or socket.gethostname()
        self.msg_id = msg_id
        self.pri = pri(facility, severity)
        self.payload = Payload.of(payload)
        self.max_message_bytes = max_message_bytes
        self.stream: StreamConnection | None = None
        self.datagram: DatagramConnection | None = None
        if transport == "udp":
            self.datagram = DatagramConnection(endpoint)
        else:
            self.stream = StreamConnection(endpoint, clock)
        self.endpoint = endpoint

    async def start(self) -> None:
        """Nothing to open yet: the first send connects."""
        log.info(
            "Syslog sink ready.",
            sink=self.name,
            peer=self.endpoint.describe(),
            transport=self.transport,
            format=self.format,
        )

    async def probe(self) -> str:
        """For ``check``: TCP connect, plus the TLS handshake for ``tls``; UDP: resolve only.

        Nothing is sent; a TCP/TLS connection is closed again at once. Over UDP the name
        is resolved and a socket created: UDP has no handshake to verify a receiver with.

        Raises:
            ProbeError: resolving, connecting or the TLS handshake failed.
        """
        try:
            if self.datagram is not None:
                return await self.datagram.probe()
            assert self.stream is not None
            done = await self.stream.probe()
        except TransportError as exc:
            raise socket_failure(
                exc, tls=self.transport == "tls", host_key="host and port"
            ) from exc
        return f"{done}; nothing was sent"

    def messages(self, events: Sequence[Event]) -> tuple[dict[int, bytes], dict[int, str]]:
        """Build every event's message (unframed); return them and the events refused."""
        bodies, rejected = encode_batch(events, self.payload, delivered_at(self.clock))
        now = self.clock.now()
        out: dict[int, bytes] = {}
        headers: dict[str, bytes] = {}
        for index, (event, body) in enumerate(zip(events, bodies, strict=True)):
            if body is None:
                continue
            header = headers.get(event.stream)
            if header is None:
                header = headers[event.stream] = self._header(event.stream, now)
            message = header + body
            if self.max_message_bytes is not None and len(message) > self.max_message_bytes:
                rejected[index] = OVERSIZE
            else:
                out[index] = message
        return out, rejected

    async def send(self, events: Sequence[Event]) -> DeliveryResult:
        """Send the batch; a transport error answers RETRY for the whole batch."""
        messages, rejected = self.messages(events)
        outcome = Outcome()
        for index, reason in rejected.items():
            outcome.reject(index, reason)
        indexes = list(messages)
        try:
            if self.datagram is not None:
                await self.datagram.send(list(messages.values()))
            elif self.stream is not None and messages:
                data = b"".join(
                    stream_frame(m, octet_counting=self.octet_counting) for m in messages.values()
                )
                await self.stream.write(data)
        except TransportError as exc:
            outcome.retry(indexes[exc.sent :], str(exc))
        return outcome.result()

    async def close(self) -> None:
        """Close the socket."""
        if self.stream is not None:
            await self.stream.close()
        if self.datagram is not None:
            self.datagram.close()

    def _header(self, stream: str, now: datetime) -> bytes:
        if self.format == "rfc3164":
            return rfc3164_header(self.pri, now, self.hostname, self.app_name)
        return rfc5424_header(self.pri, now, self.hostname, self.app_name, self.msg_id or stream)
