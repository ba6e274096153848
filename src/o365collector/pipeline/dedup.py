"""Deliver only new facts: a row not seen before, or a known row with a new status.

Facts are remembered (hashed, no message content) only once every sink acknowledged them,
so a crash can repeat a fact (with the same event id) but never lose one. Lanes of a
stream share one deduplicator: a fact already on its way through another lane is not sent
twice, and the page that skipped it is acknowledged only when that other delivery is.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from o365collector.pipeline.event import Event, event_id, row_key
from o365collector.state.sqlite import SqliteStateStore, dedup_scope

Fact = tuple[bytes, str]  # (row key, status)


@dataclass
class PageFacts:
    """What a page brings: events to deliver, their facts, and deliveries it depends on."""

    events: list[Event] = field(default_factory=list)
    facts: list[Fact] = field(default_factory=list)
    waits: list[asyncio.Future[None]] = field(default_factory=list)
    new_rows: int = 0
    status_changes: int = 0
    known: int = 0


class Deduplicator:
    """The dedup store of one (tenant, stream), over the state database."""

    def __init__(
        self,
        store: SqliteStateStore,
        *,
        tenant: str,
        tenant_id: str,
        stream: str,
        keep_secs: float,
    ) -> None:
        """Remember facts for ``keep_secs`` after the end of the window they were read in."""
        self.store = store
        self.tenant = tenant
        self.tenant_id = tenant_id
        self.stream = stream
        self.scope = dedup_scope(tenant, stream)
        self.keep = timedelta(seconds=keep_secs)
        self._inflight: dict[Fact, asyncio.Future[None]] = {}

    def split(
        self, keys: Sequence[tuple[str, str, str]], records: Sequence[dict[str, Any]]
    ) -> PageFacts:
        """Sort a page's records into new facts (as events) and known or in-flight ones."""
        tenant_id, stream = self.tenant_id, self.stream
        row_keys = [row_key(tenant_id, stream, trace, rcpt) for trace, rcpt, _ in keys]
        known = self.store.seen_statuses(list(set(row_keys)))
        out = PageFacts()
        for record, (trace, rcpt, status), key in zip(records, keys, row_keys, strict=True):
            prior = known.get(key)
            if prior is not None and status in prior.split("|"):
                out.known += 1
                continue
            pending = self._inflight.get((key, status))
            if pending is not None:
                out.waits.append(pending)
                out.known += 1
                continue
            if prior is None:
                out.new_rows += 1
            else:
                out.status_changes += 1
            out.events.append(
                Event(self.tenant, stream, event_id(tenant_id, stream, trace, rcpt, status), record)
            )
            out.facts.append((key, status))
        return out

    def release(self, facts: Sequence[Fact]) -> None:
        """Forget that ``facts`` are on their way (their page never reached the sinks)."""
        for fact in facts:
            self._inflight.pop(fact, None)

    def track(self, facts: Sequence[Fact], ack: asyncio.Future[None]) -> None:
        """Mark ``facts`` as on their way; other lanes wait for ``ack`` instead of resending."""
        for fact in facts:
            self._inflight[fact] = ack

    def settle(self, facts: Sequence[Fact], window_end: datetime) -> None:
        """Remember acknowledged ``facts`` until the horizon after ``window_end`` has passed."""
        expires = int((window_end + self.keep).timestamp())
        self.store.remember(self.scope, [(key, status, expires) for key, status in facts])
        for fact in facts:
            self._inflight.pop(fact, None)
