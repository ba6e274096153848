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

from o365collector.event import Event, event_id, event_ids, row_key
from o365collector.state.store import DedupStore, dedup_scope

Fact = tuple[bytes, str]  # (row key, status)


def _hour(record: dict[str, Any]) -> bytes:
    """The receive time's leading 13 characters (``2026-11-22T05``): orders keys by time."""
    return str(record.get("receivedDateTime") or record.get("Received") or "")[:13].encode()


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
        store: DedupStore,
        *,
        tenant: str,
        tenant_id: str,
        stream: str,
        keep_secs: float,
        shared: bool = True,
    ) -> None:
        """Remember facts for ``keep_secs`` after the end of the window they were read in.

        ``shared=False``: the stream has one lane that reads each window once
        (``fixed_delay``), so nothing is looked up or remembered: every row is delivered.
        """
        self.shared = shared
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
        if not self.shared:
            tenant = self.tenant
            ids = event_ids(tenant_id, stream, keys)
            return PageFacts(
                events=[
                    Event(tenant, stream, id_, record)
                    for id_, record in zip(ids, records, strict=True)
                ],
                new_rows=len(records),
            )
        # The receive hour first: a page's rows then sit side by side in the store's B-tree,
        # so inserts and lookups touch a few pages instead of one page per row.
        row_keys = [
            _hour(record) + row_key(tenant_id, stream, trace, rcpt)
            for record, (trace, rcpt, _) in zip(records, keys, strict=True)
        ]
        known = self.store.seen_statuses(sorted(set(row_keys)))
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

    def settle(self, facts: Sequence[Fact], window_end: datetime, *, remember: bool = True) -> None:
        """Remember acknowledged ``facts`` until the horizon after ``window_end`` has passed.

        ``remember=False`` (``final`` on history no lane reads again) only releases the
        in-flight marks.
        """
        if remember:
            expires = int((window_end + self.keep).timestamp())
            self.store.remember(self.scope, sorted((key, status, expires) for key, status in facts))
        for fact in facts:
            self._inflight.pop(fact, None)
