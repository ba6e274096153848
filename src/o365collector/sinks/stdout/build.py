"""Build the standard-output sink from its settings."""

from __future__ import annotations

from o365collector.clock import Clock
from o365collector.config.sinks import StdoutSinkSettings, sink_name
from o365collector.sinks.encode import Payload
from o365collector.sinks.stdout.sink import StdoutSink


def build(settings: StdoutSinkSettings, clock: Clock, payload: Payload | None = None) -> StdoutSink:
    """A sink writing to this process's standard output."""
    return StdoutSink(sink_name(settings), payload=payload or settings.payload, clock=clock)
