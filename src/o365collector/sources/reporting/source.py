"""One RWS report read window by window: query ranges, paging, ceiling splits, resumable links.

A window becomes one or more *queries* ``(start, end, partition)``, read in time order and,
within a range, partition by partition. Every page's next link names its query in its own
``$filter``, so the work left after any link follows from the link alone: a stored link
resumes the window after a restart without other state.

- Per-row reports query the window as it is. RWS bound inclusivity is undocumented (the
  emulator includes both), so windows are contiguous (next start = previous end) and a
  query drops rows at or after its end: a row exactly on a bound is delivered by the query
  that starts there, once, even where no dedup store runs (``fixed_delay``).
- Aggregates query whole buckets only: ``[floor(start), floor(end))``. A bucket is read by
  the window during which it ended, so the plan's settle delay applies to the whole
  bucket; rows of other buckets (a range bound the service may include) are left to the
  window that owns them. Summary reports query one bucket at a time.
- A query is complete only when the service says so (:meth:`ReportSource.continuation`):
  every next link is followed, and a page without one ends the query only when it is empty
  or short of the ``$top`` in force for it. The service may page at fewer rows than asked,
  answering a next link that carries the *remaining* ``$top``; a chain that ends exactly
  at its ``$top`` continues at the next offset with the collector's own ``$top``.
- ``$skiptoken`` is a row offset and fails past 999,999: a query whose next page would
  cross it is not followed but read again in two halves. The rows the abandoned range
  delivered (every partition of it) are dropped from the halves by the reader itself, as
  ``fixed_delay`` and aggregated streams run no dedup store; after a restart inside a
  half that memory is gone, and the rest of the range may repeat such rows (same event
  ids).
"""

from __future__ import annotations

import functools
import math
import re
from array import array
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, cast
from urllib.parse import quote

import structlog

from o365collector.errors import BadRequestError, RestartWindowError, SourceError
from o365collector.event import RowFact, row_facts
from o365collector.http.classify import classify_reporting
from o365collector.http.client import ApiClient
from o365collector.page_gate import Permit
from o365collector.sources.base import Page
from o365collector.sources.reporting.dates import filter_literal
from o365collector.sources.reporting.envelope import ReportPage, parse_envelope
from o365collector.sources.reporting.paging import (
    SKIPTOKEN_CEILING,
    origin_of,
    passes_ceiling,
    query_value,
    resolve_link,
    skiptoken_of,
    top_of,
    with_options,
)
from o365collector.sources.reporting.records import record_key, record_time
from o365collector.streams.catalog import ReportSpec
from o365collector.windows import TimeWindow, parse_iso

log = structlog.get_logger(__name__)

MAX_TOP = 2000  # RWS pages hold at most 2000 rows (api-facts §1.5)
# Services page at round sizes. A short page without a next link whose length is a multiple
# of this may be one the service cut at its own page size without saying so: it is
# confirmed by reading the next offset (an empty page ends the query). The cost is one
# request for about one short page in fifty.
ROUND_PAGE = 50
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_BOUND = r"{}\s+eq\s+datetime'([^']+)'"
_START = re.compile(_BOUND.format("StartDate"), re.IGNORECASE)
_END = re.compile(_BOUND.format("EndDate"), re.IGNORECASE)
classify_report_page = functools.partial(classify_reporting, decode=parse_envelope)


@dataclass(frozen=True, slots=True)
class Query:
    """One query of a window: the range ``[start, end)`` and the partition index."""

    start: datetime
    end: datetime
    partition: int = 0


class _Repeats:
    """Rows that halves of a split range would deliver again, and the rows to remember for it.

    ``current`` holds an identity (a hash of key fields, status and time as sent) of each row
    delivered for the range being read, over all its partitions, 8 bytes a row (a split is
    rare: a range of a million rows costs 8 MB, not a set's 60); a split moves them to
    ``skip`` until the reading has passed the abandoned range's end.
    """

    def __init__(self) -> None:
        self.bounds: tuple[datetime, datetime] | None = None
        self.current = array("q")
        self.skip: set[int] = set()
        self.skip_until: datetime | None = None

    def enter(self, query: Query) -> None:
        """Start remembering for ``query``'s range (a range read again starts afresh)."""
        if (query.start, query.end) != self.bounds:
            self.bounds = (query.start, query.end)
            self.current = array("q")
        if self.skip_until is not None and query.start >= self.skip_until:
            self.skip = set()
            self.skip_until = None

    def split(self, abandoned: Query) -> None:
        """``abandoned``'s range is read again in halves: what it delivered is not sent twice."""
        self.skip.update(self.current)
        self.current = array("q")
        self.bounds = None
        until = self.skip_until
        self.skip_until = abandoned.end if until is None else max(until, abandoned.end)

    def fresh(self, identities: list[int]) -> list[int]:
        """Indexes of the rows to deliver; each is remembered for the current range."""
        skip = self.skip
        kept = [i for i, identity in enumerate(identities) if identity not in skip]
        self.current.extend(identities[i] for i in kept)
        return kept


class ReportSource:
    """Reads one report of one tenant; a :class:`~o365collector.sources.base.WindowSource`."""

    def __init__(
        self,
        api: ApiClient,
        spec: ReportSpec,
        *,
        base: str,
        scope: str,
        page_size: int = MAX_TOP,
        max_pages: int = 10_000,
        skiptoken_ceiling: int = SKIPTOKEN_CEILING,
    ) -> None:
        """Bind to one tenant's API client and RWS root (``…/reporting.svc``)."""
        if not 1 <= page_size <= MAX_TOP:
            raise ValueError(f"page_size must be 1..{MAX_TOP}")
        self.spec = spec
        self._api = api
        self._base = base.rstrip("/")
        self._origin = origin_of(self._base)
        self._scope = scope
        self._page_size = page_size
        self._max_pages = max_pages
        self._ceiling = skiptoken_ceiling

    # ------------------------------------------------------------------ query plan
    def report_base(self) -> str:
        """``…/reporting.svc/{Report}``."""
        return f"{self._base}/{self.spec.name}"

    def first_query(self, start: datetime, end: datetime) -> Query | None:
        """The first query of ``[start, end)``, or ``None`` when it holds no whole query."""
        bucket = self.spec.bucket_secs
        if bucket is not None:
            start, end = _floor(start, bucket), _floor(end, bucket)
        if end <= start:
            return None
        step = bucket if bucket is not None and self.spec.query_per_bucket else None
        span = step or max(self.spec.max_query_secs, bucket or 0.0)
        return Query(start, min(end, start + timedelta(seconds=span)))

    def query_filter(self, query: Query) -> str:
        """The ``$filter`` of ``query``: both bounds with ``eq`` (they are input parameters)."""
        clauses = [
            f"StartDate eq {filter_literal(query.start)}",
            f"EndDate eq {filter_literal(query.end)}",
        ]
        if self.spec.aggregate_by is not None:
            clauses.append(f"AggregateBy eq '{self.spec.aggregate_by}'")
        if self.spec.partitions:
            clauses.append(self.spec.partitions[query.partition])
        return " and ".join(clauses)

    def query_url(self, query: Query) -> str:
        """The URL of the first page of ``query`` (verbose JSON via ``$format=json``)."""
        return (
            f"{self.report_base()}?$filter={quote(self.query_filter(query), safe='')}"
            f"&$top={self._page_size}&$format=json"
        )

    def first_url(self, window: TimeWindow) -> str | None:
        """The URL of the window's first page; ``None`` when it holds no whole bucket."""
        query = self.first_query(window.start, window.end)
        return None if query is None else self.query_url(query)

    def query_of(self, url: str) -> Query | None:
        """The query a URL belongs to, read from its ``$filter``; ``None`` if it is not ours."""
        text = query_value(url, "$filter")
        if text is None:
            return None
        start, end = _START.search(text), _END.search(text)
        if start is None or end is None:
            return None
        lowered = text.lower()
        matches = [i for i, p in enumerate(self.spec.partitions) if p.lower() in lowered]
        if self.spec.partitions and len(matches) != 1:
            return None
        try:
            bounds = parse_iso(start.group(1)), parse_iso(end.group(1))
        except ValueError:
            return None
        return Query(*bounds, matches[0] if matches else 0)

    # ---------------------------------------------------------------------- reading
    async def pages(
        self, window: TimeWindow, resume_link: str | None, *, priority: int = 0
    ) -> AsyncIterator[Page]:
        """Yield every page of ``window``, from ``resume_link`` if given.

        A window with no whole bucket yields one empty page (so it is committed) without
        asking Microsoft.

        Raises:
            RestartWindowError: the stored ``resume_link`` is unusable or was refused.
            SourceError: a link loops or leaves the host, a range with ~1 M rows cannot be
                split further, or the window has more than ``max_pages`` pages.
        """
        if resume_link is not None:
            query = self.query_of(resume_link)
            if query is None or origin_of(resume_link) != self._origin:
                msg = f"stored link is not a {self.spec.name} query; reading {window} again"
                raise RestartWindowError(msg)
            url = resume_link
        else:
            first = self.first_query(window.start, window.end)
            if first is None:
                yield Page([], None, [])
                return
            query, url = first, self.query_url(first)
        seen = {url}
        repeats = _Repeats()
        for index in range(self._max_pages):
            body, permit = await self._get_page(
                url, priority, refused_resume=index == 0 and bool(resume_link)
            )
            try:
                page, follow = self._page_of(url, body, query, window, (seen, repeats), permit)
            except BaseException:
                permit.release()  # no page to hand over
                raise
            del body  # not held while the next request waits for its place (page_gate)
            yield page
            del page
            if follow is None:
                return
            url, query = follow
        msg = f"window {window} of {self.spec.name} has more than {self._max_pages} pages"
        raise SourceError(msg)

    def _page_of(
        self,
        url: str,
        body: ReportPage,
        query: Query,
        window: TimeWindow,
        memory: tuple[set[str], _Repeats],
        permit: Permit,
    ) -> tuple[Page, tuple[str, Query] | None]:
        """The page (holding ``permit``) for ``body`` and where the window goes on (``None``: done).

        ``memory``: the links read so far and the rows a split must not deliver again.

        Raises:
            SourceError: the next link came before (a loop).
        """
        seen, repeats = memory
        records = self._in_range(body.records, query)
        facts = self.facts_of(records)
        if not self.spec.query_per_bucket:  # such a range is never split
            repeats.enter(query)
            time_field = self.spec.time_field
            identities = [
                hash((*fact[:3], str(record.get(time_field))))  # any JSON type
                for fact, record in zip(facts, records, strict=True)
            ]
            kept = repeats.fresh(identities)
            if len(kept) < len(records):
                records, facts = [records[i] for i in kept], [facts[i] for i in kept]
        follow = self._advance(url, body, query, window)
        if follow is not None:
            if follow[0] in seen:
                msg = f"{self.spec.name}: the same next link came twice; stopping to avoid a loop"
                raise SourceError(msg)
            seen.add(follow[0])
            half = follow[1]
            if (half.start, half.partition) == (query.start, query.partition) and (
                half.end < query.end
            ):
                repeats.split(query)
        next_link = None if follow is None else follow[0]
        return Page(records, next_link, facts, permit), follow

    async def fetch_all(self, url: str, *, priority: int) -> list[dict[str, Any]]:
        """Every row of one query URL, following its next links (for per-message detail)."""
        rows: list[dict[str, Any]] = []
        seen = {url}
        for _ in range(self._max_pages):
            page = await self._get(url, priority)
            rows.extend(page.records)
            following = self.continuation(url, page)
            if following is None:
                return rows
            url = following
            if url in seen:
                break
            seen.add(url)
        msg = f"{self.spec.name}: paging did not end; stopping to avoid a loop"
        raise SourceError(msg)

    def continuation(self, url: str, page: ReportPage) -> str | None:
        """The URL of the next page of ``url``'s query, or ``None`` when the query is done.

        Done means the service said so: no next link, and a page that is empty or short of
        the ``$top`` in force for ``url`` (a short page whose length is a multiple of
        :data:`ROUND_PAGE` is confirmed first). A page that fills its ``$top`` continues at
        the next offset with the collector's own ``$top``: a next link may carry only the
        rest of an earlier ``$top``, and the query goes on after that.
        """
        if page.next_link is not None:
            return resolve_link(url, page.next_link, self._origin)
        count = len(page.records)
        if count == 0:
            return None
        if count < top_of(url, self._page_size) and count % ROUND_PAGE:
            return None
        return with_options(url, top=self._page_size, skiptoken=skiptoken_of(url) + count)

    def key_of(self, record: dict[str, Any]) -> tuple[str, str, str]:
        """The row's identity from the catalog's key fields (and status, if any)."""
        return record_key(self.spec, record)

    def facts_of(self, records: list[dict[str, Any]]) -> list[RowFact]:
        """Each row's identity (:meth:`key_of`) and receive time, read once per page."""
        return row_facts(records, functools.partial(record_key, self.spec))

    async def _get_page(
        self, url: str, priority: int, *, refused_resume: bool
    ) -> tuple[ReportPage, Permit]:
        """A page of the window and its place in the page gate (owned by the caller)."""
        try:
            body, permit = await self._api.get_page(
                url,
                scope=self._scope,
                classify=classify_report_page,
                api="reporting",
                priority=priority,
            )
        except BadRequestError as exc:
            if refused_resume:
                msg = f"stored next link refused ({exc}); reading the window again"
                raise RestartWindowError(msg) from exc
            raise
        return cast(ReportPage, body), permit

    async def _get(self, url: str, priority: int) -> ReportPage:
        """A page of a detail query: read within the listing page that holds the place."""
        body = await self._api.get_json(
            url,
            scope=self._scope,
            classify=classify_report_page,
            api="reporting",
            priority=priority,
        )
        return cast(ReportPage, body)

    def _in_range(self, records: list[dict[str, Any]], query: Query) -> list[dict[str, Any]]:
        """Drop rows another query owns.

        Aggregates: rows of buckets outside ``[start, end)``. Per-row reports: rows at or
        after ``EndDate`` (RWS may include both bounds): the query starting there reads them.
        """
        start = query.start if self.spec.aggregated else None
        kept = []
        for record in records:
            moment = record_time(self.spec, record)
            if moment is None or ((start is None or start <= moment) and moment < query.end):
                kept.append(record)
        return kept

    def _advance(
        self, url: str, page: ReportPage, query: Query, window: TimeWindow
    ) -> tuple[str, Query] | None:
        """The next URL to read and its query, or ``None`` when the window is done."""
        link = self.continuation(url, page)
        if link is None:
            return self._after(query, window)
        if passes_ceiling(skiptoken_of(link), top_of(link, self._page_size), self._ceiling):
            half = self._split(query)
            return self.query_url(half), half
        return link, query

    def _after(self, query: Query, window: TimeWindow) -> tuple[str, Query] | None:
        """The query after ``query`` is complete: the next partition, else the next range."""
        if query.partition + 1 < len(self.spec.partitions):
            following = Query(query.start, query.end, query.partition + 1)
            return self.query_url(following), following
        nxt = self.first_query(query.end, window.end)
        return None if nxt is None else (self.query_url(nxt), nxt)

    def _split(self, query: Query) -> Query:
        unit = self.spec.bucket_secs or 1.0
        units = math.floor((query.end - query.start).total_seconds() / unit)
        if units < 2 or self.spec.query_per_bucket:
            msg = (
                f"{self.spec.name}: [{query.start.isoformat()}, {query.end.isoformat()}) holds "
                f"more than {self._ceiling} rows and cannot be split further"
            )
            raise SourceError(msg)
        half = Query(
            query.start, query.start + timedelta(seconds=units // 2 * unit), query.partition
        )
        log.warning(
            "Query would pass the $skiptoken ceiling; reading it again in halves.",
            tenant=self._api.tenant,
            report=self.spec.name,
            start=query.start.isoformat(),
            end=query.end.isoformat(),
        )
        return half


def _floor(moment: datetime, seconds: float) -> datetime:
    """``moment`` floored to a multiple of ``seconds`` since the epoch (UTC buckets)."""
    elapsed = (moment - _EPOCH).total_seconds()
    return _EPOCH + timedelta(seconds=math.floor(elapsed / seconds) * seconds)
