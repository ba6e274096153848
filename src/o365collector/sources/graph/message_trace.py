"""Graph message trace: ``/v1.0/admin/exchange/tracing/messageTraces`` read window by window."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import quote, urlsplit

from o365collector.errors import BadRequestError, RestartWindowError, SourceError
from o365collector.event import RowFact
from o365collector.http.classify import classify_graph
from o365collector.http.client import ApiClient
from o365collector.sources.base import Page
from o365collector.sources.graph.statuses import PREFER_UNKNOWN_ENUM_MEMBERS, UnknownValueCounter
from o365collector.windows import TimeWindow, iso_z, iso_z_last_tick

PATH = "/v1.0/admin/exchange/tracing/messageTraces"
_FACT_SEPARATOR = "|"  # the dedup store joins a row's statuses with it


def window_filter(window: TimeWindow) -> str:
    """The ``$filter`` for ``[start, end)``: Graph bounds are inclusive, so end is one tick less."""
    return (
        f"receivedDateTime ge {iso_z(window.start)} and "
        f"receivedDateTime le {iso_z_last_tick(window.end)}"
    )


class GraphMessageTraceSource:
    """Reads message trace rows, newest first, following ``@odata.nextLink`` verbatim.

    Rows of a window come newest first and ``$orderby`` is not honoured, so a window is
    complete only when its last page was read; the caller commits it then, or resumes from
    the stored next link after a restart.

    Rows are handed on untouched whatever their ``status``: a value Microsoft added
    (``unknownFutureValue``, ``recalled``…) is only counted, see :mod:`.statuses`.
    """

    def __init__(
        self,
        api: ApiClient,
        *,
        graph_base: str,
        scope: str,
        page_size: int,
        max_pages: int,
        stream: str = "message_trace",
    ) -> None:
        """Bind to one tenant's API client and Graph root (``https://graph.microsoft.com``).

        ``stream`` labels the count of unknown status values.
        """
        self._api = api
        self._base = graph_base.rstrip("/")
        self._origin = _origin(self._base)
        self._scope = scope
        self._page_size = page_size
        self._max_pages = max_pages
        self._stream = stream

    def first_url(self, window: TimeWindow) -> str:
        """The URL of the window's first page."""
        return (
            f"{self._base}{PATH}?$filter={quote(window_filter(window), safe='')}"
            f"&$top={self._page_size}"
        )

    async def pages(
        self, window: TimeWindow, resume_link: str | None, *, priority: int = 0
    ) -> AsyncIterator[Page]:
        """Yield the window's pages; see the class docstring.

        Raises:
            RestartWindowError: the stored ``resume_link`` was refused.
            SourceError: a next link loops or points to another host.
        """
        url = resume_link or self.first_url(window)
        seen: set[str] = {url}
        unknown = UnknownValueCounter(tenant=self._api.tenant, stream=self._stream)
        for index in range(self._max_pages):
            try:
                body, permit = await self._api.get_page(
                    url,
                    scope=self._scope,
                    classify=classify_graph,
                    api="graph",
                    priority=priority,
                    headers={"Prefer": PREFER_UNKNOWN_ENUM_MEMBERS},
                )
            except BadRequestError as exc:
                if index == 0 and resume_link is not None:
                    msg = f"stored next link refused ({exc}); reading window {window} again"
                    raise RestartWindowError(msg) from exc
                raise
            try:
                next_link = body.get("@odata.nextLink")
                if next_link is not None:
                    next_link = self._check_link(str(next_link), seen)
                records = _rows(body["value"])
                unknown.observe(records)
                page = Page(records, next_link, facts_of(records), permit)
            except BaseException:
                permit.release()  # no page to hand over
                raise
            del body, records  # nothing of this page is held while the next request waits
            yield page
            del page
            if next_link is None:
                return
            url = next_link
        msg = f"window {window} has more than {self._max_pages} pages (max_pages_per_window)"
        raise SourceError(msg)

    def key_of(self, record: dict[str, Any]) -> tuple[str, str, str]:
        """(trace id, recipient, status) as event ids and the dedup store see them."""
        trace, recipient, status, _ = facts_of([record])[0]
        return trace, recipient, status

    def _check_link(self, link: str, seen: set[str]) -> str:
        try:
            target = _origin(link)
        except ValueError:  # not a URL at all (``http://[::1``)
            target = "?"
        if target != self._origin:
            msg = (
                f"Graph returned a next link to another host ({target}); refusing to "
                f"send the token there. Expected {self._origin}: check endpoints.graph"
            )
            raise SourceError(msg)
        if link in seen:
            msg = "Graph returned the same next link twice; stopping to avoid a loop"
            raise SourceError(msg)
        seen.add(link)
        return link


def facts_of(records: list[dict[str, Any]]) -> list[RowFact]:
    """Each record's :data:`~o365collector.event.RowFact`, read once per page.

    The identity is (``id``, ``recipientAddress``, ``status``), recipient and status
    lower-cased (Graph's case varies); any status counts, known or not, and ``|`` (the
    dedup store's separator) becomes ``/``. The receive time is ``receivedDateTime``.

    The facts live as long as the page: a recipient already in lower case is the record's
    own string and each status one string per page, not a copy per row (~0.6 MiB a page).
    """
    statuses: dict[str, str] = {}  # a page holds a few statuses: one string each, not per row
    facts: list[RowFact] = []
    append = facts.append
    for record in records:
        recipient = str(record.get("recipientAddress", ""))
        lowered = recipient.lower()
        status = str(record.get("status", ""))
        fact_status = statuses.get(status)
        if fact_status is None:
            fact_status = statuses[status] = status.lower().replace(_FACT_SEPARATOR, "/")
        append(
            (
                str(record.get("id", "")),
                recipient if lowered == recipient else lowered,  # the record's own string
                fact_status,
                record.get("receivedDateTime") or record.get("Received"),  # as row_facts reads it
            )
        )
    return facts


def _rows(value: list[Any]) -> list[dict[str, Any]]:
    """The page's rows, each a JSON object (``classify_graph`` checked the list itself).

    Raises:
        SourceError: a row is not an object: nothing of the page is delivered.
    """
    if not all(isinstance(row, dict) for row in value):
        msg = "Graph returned a page whose `value` holds rows that are not JSON objects"
        raise SourceError(msg)
    return value


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()
