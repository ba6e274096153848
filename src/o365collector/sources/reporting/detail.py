"""Message trace detail: the processing events of selected rows, from Graph or from RWS.

The ``message_trace_detail`` stream lists message trace windows like the listing streams,
keeps the rows whose status was selected (failed, quarantined, filtered as spam, …) and
asks for each one's detail: Graph ``getDetailsByRecipient`` or RWS ``MessageTraceDetail``
(one request per message and recipient, api-facts §1.7 and §3.3). Every request is charged
to the tenant's budget at the lane's priority (``Priority.DETAIL``): live reads and
re-sweeps of the listing streams always go first.

A page of this stream is the detail of one listing page, so the listing's next link is
also this stream's resume point.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Collection
from typing import Any
from urllib.parse import quote

import structlog

from o365collector.errors import SetupError
from o365collector.event import decoded, row_facts
from o365collector.http.classify import classify_graph
from o365collector.http.client import ApiClient
from o365collector.sources.base import Page, WindowSource
from o365collector.sources.reporting.dates import canonical_date, filter_literal
from o365collector.sources.reporting.source import ReportSource
from o365collector.windows import TimeWindow

log = structlog.get_logger(__name__)

GRAPH_TRACES = "/v1.0/admin/exchange/tracing/messageTraces"
Fetch = Callable[[dict[str, Any], TimeWindow, int], Awaitable[list[dict[str, Any]]]]


def detail_key(record: dict[str, Any]) -> tuple[str, str, str]:
    """(trace id, recipient, ``event@date``) of a Graph or RWS detail row.

    Detail rows have no id of their own; the step's event and time identify it within
    the (message, recipient) they belong to.
    """
    trace = record.get("id", record.get("MessageTraceId"))
    recipient = record.get("recipientAddress", record.get("RecipientAddress"))
    event = record.get("event", record.get("Event"))
    when = record.get("dateTime", record.get("Date"))
    step = f"{'' if event is None else event}@{canonical_date(when)}".replace("|", "/")
    return ("" if trace is None else str(trace), "" if recipient is None else str(recipient), step)


def _status(row: dict[str, Any]) -> str:
    return str(row.get("status", row.get("Status", ""))).lower()


class DetailSource:
    """Detail rows of the listed rows whose status is selected; a ``WindowSource``."""

    def __init__(self, listing: WindowSource, fetch: Fetch, statuses: Collection[str]) -> None:
        """Expand rows of ``listing`` with ``fetch``; ``statuses`` compare case-insensitively."""
        self._listing = listing
        self._fetch = fetch
        self._statuses = frozenset(s.lower() for s in statuses)

    async def pages(
        self, window: TimeWindow, resume_link: str | None, *, priority: int = 0
    ) -> AsyncIterator[Page]:
        """Yield, per listing page, the detail rows of its selected rows.

        Each page carries its listing page's place in the page gate: the detail requests
        are read within it.
        """
        async for page in self._listing.pages(window, resume_link, priority=priority):
            try:
                details: list[dict[str, Any]] = []
                for row in map(decoded, page.records):  # Graph's are texts
                    if _status(row) in self._statuses:
                        details.extend(await self._fetch(row, window, priority))
                out = Page(details, page.next_link, row_facts(details, detail_key), page.permit)
            except BaseException:
                page.permit.release()  # no page to hand over
                raise
            del page
            yield out
            del out

    def key_of(self, record: dict[str, Any]) -> tuple[str, str, str]:
        """See :func:`detail_key`."""
        return detail_key(record)


class GraphDetail:
    """``getDetailsByRecipient`` for one Graph message trace row."""

    def __init__(self, api: ApiClient, *, graph_base: str, scope: str) -> None:
        """Bind to one tenant's API client and Graph root."""
        self._api = api
        self._base = graph_base.rstrip("/")
        self._scope = scope

    def url(self, row: dict[str, Any]) -> str:
        """The detail URL of a listed row (its id and recipient)."""
        recipient = str(row.get("recipientAddress", "")).replace("'", "''")
        return (
            f"{self._base}{GRAPH_TRACES}/{quote(str(row.get('id', '')), safe='')}"
            f"/getDetailsByRecipient(recipientAddress='{quote(recipient, safe='@')}')"
        )

    async def __call__(
        self, row: dict[str, Any], window: TimeWindow, priority: int
    ) -> list[dict[str, Any]]:
        """The row's detail events, each with the row's ``recipientAddress`` added.

        Graph detail rows name the message but not the recipient they were asked for;
        it is added under Graph's own property name so each event says whom it is about.
        A row Graph no longer knows (404) is skipped with a warning.
        """
        try:
            body = await self._api.get_json(
                self.url(row),
                scope=self._scope,
                classify=classify_graph,
                api="graph",
                priority=priority,
            )
        except SetupError as exc:
            if not str(exc).startswith("HTTP 404"):
                raise
            log.warning("No detail for a listed row; skipped.", tenant=self._api.tenant)
            return []
        recipient = row.get("recipientAddress")
        return [
            {**step, "recipientAddress": step.get("recipientAddress", recipient)}
            for step in body["value"]
        ]


class RwsDetail:
    """``MessageTraceDetail`` for one RWS MessageTrace row (api-facts §1.7 query shape)."""

    def __init__(self, detail_report: ReportSource) -> None:
        """Read through a source bound to the MessageTraceDetail report."""
        self._source = detail_report

    def query(self, row: dict[str, Any], window: TimeWindow) -> str:
        """The ``$filter`` for one message and recipient within the listing window."""

        def text(name: str) -> str:
            return str(row.get(name) or "").replace("'", "''")

        return (
            f"MessageTraceId eq guid'{text('MessageTraceId')}' and "
            f"RecipientAddress eq '{text('RecipientAddress')}' and "
            f"SenderAddress eq '{text('SenderAddress')}' and "
            f"StartDate eq {filter_literal(window.start)} and "
            f"EndDate eq {filter_literal(window.end)}"
        )

    def url(self, row: dict[str, Any], window: TimeWindow) -> str:
        """The detail URL of a listed row."""
        base = self._source.report_base()
        return f"{base}?$filter={quote(self.query(row, window), safe='')}&$format=json"

    async def __call__(
        self, row: dict[str, Any], window: TimeWindow, priority: int
    ) -> list[dict[str, Any]]:
        """The row's detail events, exactly as RWS sends them."""
        return await self._source.fetch_all(self.url(row, window), priority=priority)
