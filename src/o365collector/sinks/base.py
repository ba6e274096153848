"""The sink contract: three outcomes, never a swallowed failure."""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from o365collector.pipeline.event import Event


class DeliveryStatus(enum.Enum):
    """Outcome of one ``send``."""

    DELIVERED = "delivered"  # every event not listed in ``rejected`` is durably handed over
    RETRY = "retry"  # nothing may be assumed delivered; send the same batch again later
    REJECTED = "rejected"  # the sink refuses the listed events for good


@dataclass(frozen=True, slots=True)
class DeliveryResult:
    """A sink's answer for a batch. ``rejected`` maps batch indexes to reasons."""

    status: DeliveryStatus
    reason: str = ""
    retry_after_secs: float | None = None
    rejected: dict[int, str] = field(default_factory=dict)

    @classmethod
    def delivered(cls) -> DeliveryResult:
        """Everything was delivered."""
        return cls(DeliveryStatus.DELIVERED)

    @classmethod
    def retry(cls, reason: str, retry_after_secs: float | None = None) -> DeliveryResult:
        """Nothing may be assumed delivered; try again."""
        return cls(DeliveryStatus.RETRY, reason, retry_after_secs)

    @classmethod
    def reject(cls, rejected: dict[int, str], reason: str = "") -> DeliveryResult:
        """The listed events are refused for good; the others were delivered."""
        return cls(DeliveryStatus.REJECTED, reason, None, rejected)


class Sink(Protocol):
    """A destination. ``send`` answers only when the batch's fate is known."""

    name: str

    async def start(self) -> None:
        """Open connections or files; raise SinkError with the fix if impossible."""
        ...

    async def send(self, events: Sequence[Event]) -> DeliveryResult:
        """Deliver ``events`` and say what happened to them."""
        ...

    async def close(self) -> None:
        """Flush and release resources."""
        ...
