"""Build the JSON-lines file sink from its settings."""

from __future__ import annotations

from concurrent.futures import Executor

from o365collector.clock import Clock
from o365collector.config.sinks import JsonlSinkSettings, sink_name
from o365collector.sinks.encode import Payload
from o365collector.sinks.jsonl.sink import JsonlSink


def build(
    settings: JsonlSinkSettings,
    clock: Clock,
    executor: Executor | None = None,
    payload: Payload | None = None,
) -> JsonlSink:
    """A file sink appending to ``path``; writes run in ``executor`` (default: thread pool)."""
    return JsonlSink(
        sink_name(settings),
        settings.path,
        max_bytes=settings.max_bytes,
        keep_files=settings.keep_files,
        payload=payload or settings.payload,
        clock=clock,
        executor=executor,
    )
