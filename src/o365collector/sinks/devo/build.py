"""Build the Devo sink from its settings: a region's collector or a relay."""

from __future__ import annotations

from o365collector.clock import Clock
from o365collector.config.sinks import DevoSinkSettings, sink_name
from o365collector.sinks.devo.sink import DevoSink, devo_endpoint
from o365collector.sinks.encode import Payload
from o365collector.sinks.options import socket_endpoint


def build(settings: DevoSinkSettings, clock: Clock, payload: Payload | None = None) -> DevoSink:
    """A Devo sink; with TLS the context is built now (a CA is required when verifying).

    Raises:
        SinkError: the TLS files cannot be loaded.
    """
    name = sink_name(settings)
    region = settings.region
    host, port = devo_endpoint(region) if region else (settings.host, settings.port)
    assert host is not None
    endpoint = socket_endpoint(
        name,
        settings,
        host,
        port,
        tls=settings.transport == "tls",
        idle_reconnect_secs=settings.idle_reconnect_secs,
        max_age_secs=settings.max_connection_age_secs,
        require_ca=True,
    )
    return DevoSink(
        name,
        endpoint,
        clock,
        hostname=settings.hostname,
        tag=settings.tag,
        tables=settings.tables,
        payload=payload or settings.payload,
        gzip_level=settings.gzip_level if settings.gzip else None,
        batch_max_bytes=settings.batch_max_bytes,
        max_message_bytes=settings.max_message_bytes,
        client_cert=settings.pkcs12_file is not None or settings.cert_file is not None,
    )
