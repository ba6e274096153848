"""Build sinks from their settings (the one place that knows every sink type)."""

from __future__ import annotations

from o365collector.config.sinks import JsonlSinkSettings, SinkSettings, sink_name
from o365collector.sinks.base import Sink
from o365collector.sinks.jsonl import JsonlSink
from o365collector.sinks.stdout import StdoutSink


def build_sink(settings: SinkSettings, index: int) -> Sink:
    """Instantiate the sink described by ``settings``."""
    del index
    name = sink_name(settings)
    if isinstance(settings, JsonlSinkSettings):
        return JsonlSink(
            name, settings.path, max_bytes=settings.max_bytes, keep_files=settings.keep_files
        )
    return StdoutSink(name)
