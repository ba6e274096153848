"""Build the Splunk HEC sink from its settings."""

from __future__ import annotations

from o365collector.clock import Clock
from o365collector.config.sinks import SplunkHecSinkSettings, sink_name
from o365collector.sinks.encode import Payload
from o365collector.sinks.options import tls_options
from o365collector.sinks.splunk.sink import SplunkHecSink


def build(
    settings: SplunkHecSinkSettings, clock: Clock, payload: Payload | None = None
) -> SplunkHecSink:
    """A HEC sink (its HTTP client, and TLS files, are made in ``start``)."""
    return SplunkHecSink(
        sink_name(settings),
        clock,
        url=str(settings.url),
        token=settings.token.get_secret_value(),
        index=settings.index,
        sourcetype=settings.sourcetype,
        source=settings.source,
        host=settings.host,
        tls=tls_options(settings),
        payload=payload or settings.payload,
        batch_max_bytes=settings.batch_max_bytes,
        gzip=settings.gzip,
        request_timeout_secs=settings.request_timeout_secs,
        ack=settings.ack,
        channel=settings.channel,
        ack_poll_interval_secs=settings.ack_poll_interval_secs,
        ack_timeout_secs=settings.ack_timeout_secs,
    )
