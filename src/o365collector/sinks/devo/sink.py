"""Devo sink: syslog-style lines tagged with the Devo table, over mutual TLS or to a relay."""

from __future__ import annotations

import socket
from collections.abc import Mapping, Sequence

import structlog

from o365collector.clock import Clock
from o365collector.config.sinks import PayloadKind
from o365collector.event import Event
from o365collector.sinks.base import DeliveryResult, Outcome
from o365collector.sinks.batching import split_by_bytes
from o365collector.sinks.encode import Payload, delivered_at, encode_batch, stream_slug
from o365collector.sinks.framing import devo_frame, devo_header, gzip_member
from o365collector.sinks.probe import ProbeError, socket_failure
from o365collector.sinks.transport import Endpoint, StreamConnection, TransportError
from o365collector.streams.catalog import devo_table

log = structlog.get_logger(__name__)

TABLE_PREFIX = "cloud.office365.reporting."
OVERSIZE = "oversize"


def devo_endpoint(region: str) -> tuple[str, int]:
    """The TLS collector of a Devo region: ``collector-{region}.devo.io:443``."""
    return f"collector-{region}.devo.io", 443


def default_table(stream: str) -> str:
    """The Devo table of a stream: ``message_trace`` → ``cloud.office365.reporting.messagetrace``.

    The seed's table from the report catalog (``rws.MailTrafficATP`` →
    ``…atptraffic``); streams Devo has no table for get the prefix plus their slug.
    """
    return devo_table(stream) or TABLE_PREFIX + stream_slug(stream)


class DevoSink:
    """Writes each event as ``<14>Jan  1 00:00:00 {hostname} {table}: {payload}\\n``.

    "Delivered" means written to the connection and drained to the kernel: Devo has no
    application-level acknowledgement. A connection error answers RETRY and the next
    send reconnects. Connections are replaced before the balancer's idle timeout and
    after ``max_age_secs``. With ``gzip`` each write is one gzip member.
    """

    def __init__(
        self,
        name: str,
        endpoint: Endpoint,
        clock: Clock,
        *,
        hostname: str | None = None,
        tag: str | None = None,
        tables: Mapping[str, str] | None = None,
        payload: Payload | PayloadKind = "raw",
        gzip_level: int | None = None,
        batch_max_bytes: int | None = None,
        max_message_bytes: int | None = None,
        client_cert: bool = True,
    ) -> None:
        """Configure the sink; the connection opens on the first send.

        ``client_cert`` tells whether the TLS context holds a client certificate (for
        :meth:`probe`'s report).
        """
        self.name = name
        self.client_cert = client_cert
        self.hostname = hostname or socket.gethostname()
        self.tag = tag
        self.tables = dict(tables or {})
        self.payload = Payload.of(payload)
        self.gzip_level = gzip_level
        self.batch_max_bytes = batch_max_bytes
        self.max_message_bytes = max_message_bytes
        self.clock = clock
        self.connection = StreamConnection(endpoint, clock)
        self._headers: dict[str, bytes] = {}

    def table_for(self, stream: str) -> str:
        """The table (tag) of ``stream``: ``tables`` entry, else ``tag``, else the default."""
        return self.tables.get(stream) or self.tag or default_table(stream)

    async def start(self) -> None:
        """Nothing to open yet: the first send connects (so a down Devo only delays)."""
        log.info(
            "Devo sink ready.",
            sink=self.name,
            peer=self.connection.endpoint.describe(),
            tls=self.connection.endpoint.ssl_context is not None,
            gzip=self.gzip_level is not None,
        )

    async def probe(self) -> str:
        """For ``check``: connect and complete the TLS handshake with the client certificate.

        With TLS 1.3 it waits up to ``tls13_settle_secs`` for Devo to refuse the
        certificate (the refusal comes after the handshake), as the first send does.
        Nothing is written; the connection is closed again.

        Raises:
            ProbeError: the connection, the handshake or the certificate failed.
        """
        tls = self.connection.endpoint.ssl_context is not None
        try:
            done = await self.connection.probe()
        except TransportError as exc:
            failed = socket_failure(exc, tls=tls, host_key="region, or host and port")
            raise ProbeError(f"Devo: {failed}", failed.fix, failed.problem) from exc
        if not tls:
            return f"{done}; transport tcp is for an in-house relay, which forwards to Devo"
        if not self.client_cert:
            return f"{done}; no client certificate is configured; nothing was sent"
        return f"{done}; the client certificate was offered; nothing was sent"

    def frames(self, events: Sequence[Event]) -> tuple[dict[int, bytes], dict[int, str]]:
        """Frame every event; return the frames by batch index and the events refused."""
        bodies, rejected = encode_batch(events, self.payload, delivered_at(self.clock))
        frames: dict[int, bytes] = {}
        for index, (event, body) in enumerate(zip(events, bodies, strict=True)):
            if body is None:
                continue
            frame = devo_frame(self._header(event.stream), body)
            if self.max_message_bytes is not None and len(frame) > self.max_message_bytes:
                rejected[index] = OVERSIZE
                continue
            frames[index] = frame
        return frames, rejected

    async def send(self, events: Sequence[Event]) -> DeliveryResult:
        """Write the batch and drain it; a connection error answers RETRY for what is unsent.

        Writes already drained before the error count as delivered (only later writes
        are retried), so ``batch_max_bytes`` also bounds what a broken connection resends.
        """
        frames, rejected = self.frames(events)
        outcome = Outcome()
        for index, reason in rejected.items():
            outcome.reject(index, reason)
        order = list(frames)
        groups = split_by_bytes([len(frames[i]) for i in order], self.batch_max_bytes)
        for number, group in enumerate(groups):
            data = b"".join(frames[order[i]] for i in group)
            if self.gzip_level is not None:
                data = gzip_member(data, self.gzip_level)
            try:
                await self.connection.write(data)
            except TransportError as exc:
                unsent = [order[i] for g in groups[number:] for i in g]
                outcome.retry(unsent, str(exc))
                break
        return outcome.result()

    async def close(self) -> None:
        """Close the connection politely so the balancer reads everything."""
        await self.connection.close()

    def _header(self, stream: str) -> bytes:
        header = self._headers.get(stream)
        if header is None:
            header = self._headers[stream] = devo_header(self.hostname, self.table_for(stream))
        return header
