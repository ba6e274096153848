"""Standard-output sink: one JSON event per line, flushed before acknowledging."""

from __future__ import annotations

import sys
from collections.abc import Sequence

from o365collector.pipeline.event import Event
from o365collector.sinks.base import DeliveryResult
from o365collector.sinks.encode import delivered_at, json_line


class StdoutSink:
    """Writes JSON lines to the process's standard output."""

    def __init__(self, name: str) -> None:
        """Name the sink."""
        self.name = name

    async def start(self) -> None:
        """Nothing to open."""

    async def send(self, events: Sequence[Event]) -> DeliveryResult:
        """Write and flush; a closed pipe means retry (the reader may come back)."""
        stamp = delivered_at()
        try:
            sys.stdout.buffer.write(b"".join(json_line(e, stamp) for e in events))
            sys.stdout.buffer.flush()
        except OSError as exc:
            return DeliveryResult.retry(f"stdout write failed: {exc.strerror}")
        return DeliveryResult.delivered()

    async def close(self) -> None:
        """Flush what is left."""
        sys.stdout.flush()
