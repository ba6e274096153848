"""The sink contract: three outcomes, never a swallowed failure."""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from o365collector.event import Event


class DeliveryStatus(enum.Enum):
    """Outcome of one ``send``."""

    DELIVERED = "delivered"  # every event not listed in ``rejected`` is durably handed over
    RETRY = "retry"  # the ``pending`` events (all if unset) must be sent again later
    REJECTED = "rejected"  # the sink refuses the listed events for good


@dataclass(frozen=True, slots=True)
class DeliveryResult:
    """A sink's answer for a batch. ``rejected`` maps batch indexes to reasons.

    A RETRY normally means nothing of the batch may be assumed delivered. A sink that
    knows better (it sent the batch in several requests, or the receiver answered per
    item) lists the indexes still to send in ``pending``; every index that is neither
    pending nor rejected was then delivered, and only the pending events are sent again.
    """

    status: DeliveryStatus
    reason: str = ""
    retry_after_secs: float | None = None
    rejected: dict[int, str] = field(default_factory=dict)
    pending: frozenset[int] | None = None

    @classmethod
    def delivered(cls) -> DeliveryResult:
        """Everything was delivered."""
        return cls(DeliveryStatus.DELIVERED)

    @classmethod
    def retry(
        cls,
        reason: str,
        retry_after_secs: float | None = None,
        *,
        pending: frozenset[int] | None = None,
        rejected: dict[int, str] | None = None,
    ) -> DeliveryResult:
        """Try again: all events, or only ``pending`` (the others are settled)."""
        return cls(DeliveryStatus.RETRY, reason, retry_after_secs, rejected or {}, pending)

    @classmethod
    def reject(cls, rejected: dict[int, str], reason: str = "") -> DeliveryResult:
        """The listed events are refused for good; the others were delivered."""
        return cls(DeliveryStatus.REJECTED, reason, None, rejected)


class Outcome:
    """Accumulates per-event fates while a sink works through a batch in pieces."""

    def __init__(self) -> None:
        """Start with everything delivered."""
        self.rejected: dict[int, str] = {}
        self.pending: set[int] = set()
        self.reason = ""
        self.retry_after_secs: float | None = None

    def reject(self, index: int, reason: str) -> None:
        """Refuse one event for good."""
        self.rejected[index] = reason

    def retry(
        self, indexes: Sequence[int], reason: str, retry_after_secs: float | None = None
    ) -> None:
        """Mark events to send again; the first reason and the longest Retry-After win."""
        self.pending.update(indexes)
        self.reason = self.reason or reason
        if retry_after_secs is not None:
            self.retry_after_secs = max(self.retry_after_secs or 0.0, retry_after_secs)

    def result(self) -> DeliveryResult:
        """The batch's answer: RETRY if anything is pending, else REJECTED or DELIVERED."""
        if self.pending:
            return DeliveryResult.retry(
                self.reason,
                self.retry_after_secs,
                pending=frozenset(self.pending),
                rejected=dict(self.rejected),
            )
        if self.rejected:
            return DeliveryResult.reject(dict(self.rejected))
        return DeliveryResult.delivered()


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
