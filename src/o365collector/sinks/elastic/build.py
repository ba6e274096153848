"""Build the Elasticsearch/OpenSearch sink from its settings."""

from __future__ import annotations

from o365collector.clock import Clock
from o365collector.config.sinks import ElasticsearchSinkSettings, sink_name
from o365collector.sinks.elastic.sink import ElasticsearchSink
from o365collector.sinks.encode import Payload
from o365collector.sinks.options import plain, tls_options


def build(
    settings: ElasticsearchSinkSettings, clock: Clock, payload: Payload | None = None
) -> ElasticsearchSink:
    """A ``_bulk`` sink (its HTTP client, and TLS files, are made in ``start``)."""
    return ElasticsearchSink(
        sink_name(settings),
        url=str(settings.url),
        index=settings.index,
        namespace=settings.namespace,
        index_template=settings.index_template,
        pipeline=settings.pipeline,
        username=settings.username,
        password=plain(settings.password),
        api_key=plain(settings.api_key),
        tls=tls_options(settings),
        payload=payload or settings.payload,
        batch_max_bytes=settings.batch_max_bytes,
        gzip=settings.gzip,
        request_timeout_secs=settings.request_timeout_secs,
        clock=clock,
    )
