"""Build the generic HTTP sink from its settings."""

from __future__ import annotations

from o365collector.clock import Clock
from o365collector.config.sinks import HttpSinkSettings, sink_name
from o365collector.sinks.encode import Payload
from o365collector.sinks.http.sink import HttpSink
from o365collector.sinks.options import plain, tls_options


def build(settings: HttpSinkSettings, clock: Clock, payload: Payload | None = None) -> HttpSink:
    """An HTTP sink (its HTTP client, and TLS files, are made in ``start``)."""
    return HttpSink(
        sink_name(settings),
        url=str(settings.url),
        method=settings.method,
        format=settings.format,
        headers=settings.headers,
        username=settings.username,
        password=plain(settings.password),
        token=plain(settings.token),
        tls=tls_options(settings),
        payload=payload or settings.payload,
        batch_max_bytes=settings.batch_max_bytes,
        gzip=settings.gzip,
        request_timeout_secs=settings.request_timeout_secs,
        clock=clock,
    )
