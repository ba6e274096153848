"""Build the JSON-lines file sink from its settings."""

from __future__ import annotations

from o365collector.clock import Clock
from o365collector.config.sinks import JsonlSinkSettings, sink_name
from o365collector.sinks.jsonl.sink import JsonlSink


def build(settings: JsonlSinkSettings, clock: Clock) -> JsonlSink:
    """A file sink appending to ``path``."""
    del clock
    return JsonlSink(
        sink_name(settings),
        settings.path,
        max_bytes=settings.max_bytes,
        keep_files=settings.keep_files,
        payload=settings.payload,
    )
