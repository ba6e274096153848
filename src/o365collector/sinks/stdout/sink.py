"""Standard-output sink: one JSON event per line, flushed before acknowledging."""

from __future__ import annotations

import sys
from collections.abc import Sequence

from o365collector.clock import Clock
from o365collector.config.sinks import PayloadKind
from o365collector.event import Event
from o365collector.sinks.base import DeliveryResult
from o365collector.sinks.encode import Payload, delivered_at, lines
from o365collector.sinks.probe import ProbeError


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

    async def probe(self) -> str:
        """For ``check``: standard output is open (nothing else can be checked).

        Raises:
            ProbeError: standard output is closed.
        """
        if sys.stdout is None or sys.stdout.closed:
            fix = "run the collector with a standard output (or use a jsonl sink)"
            raise ProbeError("standard output is closed", fix, "sink_unwritable")
        return "writes to standard output: nothing to reach or authenticate"

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
