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

from o365collector.event import Event, RowFact, StreamIds
from o365collector.sources.base import Page
from o365collector.state.store import LaneStep, dedup_scope
from o365collector.state.writer import StateWriter

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
        store: StateWriter,
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
        self.ids = StreamIds(tenant_id, stream)
        self._inflight: dict[Fact, asyncio.Future[None]] = {}
        # A lookup and the in-flight marks it is checked against must not interleave with
        # the unmarking of a settle (remember, then unmark) of another lane: the fact
        # would be in neither. The remembering itself may run beside lookups: a fact is
        # unmarked only once it is stored, so a lookup finds it in one or the other.
        self._lock = asyncio.Lock()
        # One commit at a time per stream: two lanes' facts may share a row key (a status
        # change), and a pooled backend could then lock its rows in two orders at once.
        self._commits = asyncio.Lock()

    async def split(self, page: Page, handed: asyncio.Future[None]) -> PageFacts:
        """Sort a page's records into new facts (as events) and known or in-flight ones.

        Each record's identity comes from ``page.facts`` (read once by the source) and is
        hashed into its row key; a fact to deliver is hashed again into its event id.
        The new facts are marked as on their way until ``handed`` resolves: other lanes
        that read them meanwhile wait for it instead of sending them again (see
        :meth:`release` if the page never reaches the sinks).
        """
        if not self.shared:
            return PageFacts(self._events(page.records, page.facts), new_rows=len(page.records))
        # The receive hour leads the row key: a page's rows then sit side by side in the
        # store's B-tree, so inserts and lookups touch a few pages instead of one per row.
        row_keys = self.ids.row_keys(page.facts)
        async with self._lock:
            known = await self.store.seen_statuses(list(dict.fromkeys(row_keys)))
            out = self._classify(page, row_keys, known)
            self._inflight.update(dict.fromkeys(out.facts, handed))
        return out

    def _classify(self, page: Page, row_keys: list[bytes], known: dict[bytes, str]) -> PageFacts:
        records = page.records
        inflight = self._inflight
        facts = [(key, fact[2]) for key, fact in zip(row_keys, page.facts, strict=True)]
        if (
            not known
            and (not inflight or inflight.keys().isdisjoint(facts))
            and len(set(facts)) == len(facts)
        ):
            # Every fact is new (a first read, a backlog): no bookkeeping per record.
            return PageFacts(self._events(records, page.facts), facts, new_rows=len(facts))
        out = PageFacts()
        in_page: set[Fact] = set()  # new facts of this page: an API may list a row twice
        new: list[RowFact] = []
        new_records: list[dict[str, Any]] = []
        for record, row, fact in zip(records, page.facts, facts, strict=True):
            key, status = fact
            prior = known.get(key)
            if prior is not None and status in prior.split("|"):
                out.known += 1
                continue
            pending = inflight.get(fact) if inflight else None
            if pending is not None:
                out.waits.append(pending)
                out.known += 1
                continue
            if fact in in_page:
                out.known += 1
                continue
            in_page.add(fact)
            if prior is None:
                out.new_rows += 1
            else:
                out.status_changes += 1
            new.append(row)
            new_records.append(record)
            out.facts.append(fact)
        out.events = self._events(new_records, new)
        return out

    def _events(self, records: list[dict[str, Any]], facts: list[RowFact]) -> list[Event]:
        """The events of ``records`` to deliver, whose identities are ``facts``."""
        tenant, stream = self.tenant, self.stream
        ids = self.ids.event_ids(facts)
        return [
            Event(tenant, stream, id_, record) for id_, record in zip(ids, records, strict=True)
        ]

    def release(self, facts: Sequence[Fact]) -> None:
        """Forget that ``facts`` are on their way (their page never reached the sinks)."""
        inflight = self._inflight
        for fact in facts:
            inflight.pop(fact, None)
        if not inflight:  # a dict keeps its table when emptied: ~150 KiB per stream idle
            self._inflight = {}

    async def settle(
        self,
        facts: Sequence[Fact],
        window_end: datetime,
        *,
        remember: bool = True,
        step: LaneStep | None = None,
    ) -> None:
        """Commit a page: remember its acknowledged ``facts``, and take its lane's ``step``.

        Facts are kept until the horizon after ``window_end`` has passed, in the same
        transaction (one round trip) as the step. ``remember=False`` (``final`` on history
        no lane reads again) only releases their in-flight marks.
        """
        if not remember or not facts:
            self.release(facts)
            if step is not None:
                await self.store.commit_page(self.scope, [], step)
            return
        expires = int((window_end + self.keep).timestamp())
        async with self._commits:
            await self.store.commit_page(
                self.scope, [(key, status, expires) for key, status in facts], step
            )
        async with self._lock:  # not while a lookup that may have read before the commit
            self.release(facts)
