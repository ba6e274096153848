"""Live per-stream progress, read by the demo display, ``state show`` and metrics."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime


@dataclass
class StreamProgress:
    """What one (tenant, stream) has done so far in this process."""

    tenant: str
    stream: str
    events: int = 0
    pages: int = 0
    windows: int = 0
    window: str = ""
    watermark: datetime | None = None
    state: str = "starting"
    error: str = ""
    lane_marks: dict[str, datetime] = field(default_factory=dict)
    late_rows: int = 0  # first delivered by a re-sweep: late rows the live lane missed
    status_changes: int = 0


@dataclass
class Progress:
    """All streams' progress."""

    streams: dict[tuple[str, str], StreamProgress] = field(default_factory=dict)

    def stream(self, tenant: str, stream: str) -> StreamProgress:
        """Get or create the entry of one stream."""
        key = (tenant, stream)
        if key not in self.streams:
            self.streams[key] = StreamProgress(tenant, stream)
        return self.streams[key]
