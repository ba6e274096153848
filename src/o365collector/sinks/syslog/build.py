"""Build the syslog sink from its settings."""

from __future__ import annotations

from o365collector.clock import Clock
from o365collector.config.sinks import SyslogSinkSettings, sink_name
from o365collector.sinks.encode import Payload
from o365collector.sinks.options import socket_endpoint
from o365collector.sinks.syslog.sink import SyslogSink


def build(settings: SyslogSinkSettings, clock: Clock, payload: Payload | None = None) -> SyslogSink:
    """A syslog sink; with TLS the context is built now.

    Raises:
        SinkError: the TLS files cannot be loaded.
    """
    name = sink_name(settings)
    endpoint = socket_endpoint(
        name,
        settings,
        settings.host,
        settings.effective_port(),
        tls=settings.transport == "tls",
        idle_reconnect_secs=settings.idle_reconnect_secs,
        max_age_secs=settings.max_connection_age_secs,
    )
    return SyslogSink(
        name,
        endpoint,
        clock,
        transport=settings.transport,
        format=settings.format,
        octet_counting=settings.framing == "octet_counting",
        app_name=settings.app_name,
        hostname=settings.hostname,
        msg_id=settings.msg_id,
        facility=settings.facility,
        severity=settings.severity,
        payload=payload or settings.payload,
        max_message_bytes=settings.effective_max_bytes(),
    )
