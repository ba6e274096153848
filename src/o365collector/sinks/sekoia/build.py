"""Build the Sekoia.io sink from its settings."""

from __future__ import annotations

from o365collector.clock import Clock
from o365collector.config.sinks import SekoiaSinkSettings, sink_name
from o365collector.sinks.encode import Payload
from o365collector.sinks.options import tls_options
from o365collector.sinks.sekoia.sink import SekoiaSink


def build(settings: SekoiaSinkSettings, clock: Clock, payload: Payload | None = None) -> SekoiaSink:
    """A Sekoia sink (its HTTP client, and TLS files, are made in ``start``)."""
    return SekoiaSink(
        sink_name(settings),
        intake_key=settings.intake_key.get_secret_value(),
        base_url=str(settings.base_url),
        tls=tls_options(settings),
        payload=payload or settings.payload,
        batch_max_bytes=settings.batch_max_bytes,
        max_event_bytes=settings.max_event_bytes,
        gzip=settings.gzip,
        request_timeout_secs=settings.request_timeout_secs,
        clock=clock,
    )
