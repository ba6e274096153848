"""Standard-output sink: one JSON event per line, flushed before acknowledging."""

from __future__ import annotations

import sys
from collections.abc import Sequence

from o365collector.clock import Clock
from o365collector.config.sinks import PayloadKind
from o365collector.event import Event
from o365collector.sinks.base import DeliveryResult
from o365collector.sinks.encode import Payload, delivered_at, lines


class StdoutSink:
    """Writes JSON lines to the process's standard output."""

    def __init__(
        self, name: str, *, payload: Payload | PayloadKind = "envelope", clock: Clock | None = None
    ) -> None:
        """Name the sink and choose its payload."""
        self.name = name
        self.payload = Payload.of(payload)
        self.clock = clock

    async def start(self) -> None:
        """Nothing to open."""

    async def send(self, events: Sequence[Event]) -> DeliveryResult:
        """Write and flush; a closed pipe means retry (the reader may come back)."""
        data, rejected = lines(events, self.payload, delivered_at(self.clock))
        try:
            sys.stdout.buffer.write(data)
            sys.stdout.buffer.flush()
        except OSError as exc:
            return DeliveryResult.retry(f"stdout write failed: {exc.strerror}")
        return DeliveryResult.reject(rejected) if rejected else DeliveryResult.delivered()

    async def close(self) -> None:
        """Flush what is left."""
        sys.stdout.flush()
