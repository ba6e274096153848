"""Graph message trace: ``/v1.0/admin/exchange/tracing/messageTraces`` read window by window."""

from __future__ import annotations

import codecs
import functools
from collections.abc import AsyncIterator
from urllib.parse import quote, urlsplit

import msgspec
import orjson

from o365collector.errors import BadRequestError, RestartWindowError, SourceError
from o365collector.event import Record, RowFact
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
                    classify=_CLASSIFY,
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
                next_link = body.next_link
                if next_link is not None:
                    next_link = self._check_link(str(next_link), seen)
                rows = _rows(body.content)
                unknown.observe_values(row.status_value for row in rows)
                page = Page(body.value, next_link, row_facts_of(rows), permit)
            except BaseException:
                permit.release()  # no page to hand over
                raise
            del body, rows  # nothing of this page is held while the next request waits
            yield page
            del page
            if next_link is None:
                return
            url = next_link
        msg = f"window {window} has more than {self._max_pages} pages (max_pages_per_window)"
        raise SourceError(msg)

    def key_of(self, record: Record) -> tuple[str, str, str]:
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


class PageBody(msgspec.Struct, frozen=True):
    """A page as Graph sent it: each row's JSON text, the next link, and the body itself.

    Rows stay text (``msgspec.Raw``, views of ``content``): a 5,000-row page costs its
    1.8 MiB body plus ~50 bytes a row, where decoded rows cost ~5 MiB and their decoding
    up to 25 MiB more for a moment (orjson sizes its buffer for the worst case).
    """

    value: list[msgspec.Raw]
    next_link: object = msgspec.field(default=None, name="@odata.nextLink")
    content: bytes = b""


class _Row(msgspec.Struct):
    """What the collector reads of a row: its identity (the rest stays text)."""

    id: object = msgspec.UNSET
    recipientAddress: object = msgspec.UNSET  # noqa: N815 - Graph's name
    status: object = msgspec.UNSET
    receivedDateTime: object = None  # noqa: N815 - Graph's name
    Received: object = None

    @property
    def status_value(self) -> object:
        """``status`` as ``record.get("status")`` reads it (``None`` if absent)."""
        return None if self.status is msgspec.UNSET else self.status


class _Rows(msgspec.Struct):
    value: list[_Row]


_PAGE = msgspec.json.Decoder(PageBody)
_ROWS = msgspec.json.Decoder(_Rows)
_ROW = msgspec.json.Decoder(_Row)


def decode_page(content: bytes) -> PageBody:
    """A 200 body as a :class:`PageBody`.

    Raises:
        ValueError: the body is not a JSON object with a ``value`` list.
    """
    try:
        page = _PAGE.decode(content)
        if b"\n" in content or b"\r" in content:  # whitespace between tokens: a line each
            content = orjson.dumps(orjson.loads(content))
            page = _PAGE.decode(content)
    except (msgspec.DecodeError, orjson.JSONDecodeError) as exc:
        msg = f"not a Graph page: {exc}"
        raise ValueError(msg) from exc
    except RecursionError:  # msgspec's limit on nesting: not a page either (it is retried)
        msg = "not a Graph page: its JSON is nested too deeply"
        raise ValueError(msg) from None
    _check_utf8(content)
    return msgspec.structs.replace(page, content=content)


_UTF8_PART = 1 << 12
"""Bytes checked per call: 64 KiB parts raised the peak RSS of issue 19's backlog by ~16 MiB
(each part's decoded text, made and dropped at once, was placed among the pages in the
heap); 4 KiB parts left it unchanged."""


def _check_utf8(content: bytes) -> None:
    """Refuse a body that is not UTF-8 (the rows are written as the text that came).

    msgspec checks the text of the fields it decodes (a row's identity), not of those it
    keeps as text: a subject that is not UTF-8 would reach the sinks as such. Checked in
    parts of :data:`_UTF8_PART` bytes (never a copy of the whole body), ~0.04 µs per row.

    Raises:
        ValueError: the first byte that is not UTF-8.
    """
    if content.isascii():
        return
    decoder = codecs.getincrementaldecoder("utf-8")()
    view = memoryview(content)
    offset = 0  # where the decoder's input begins: the bytes it held back, then the part
    try:
        for start in range(0, len(content), _UTF8_PART):
            offset = start - len(decoder.getstate()[0])
            decoder.decode(view[start : start + _UTF8_PART])
        offset = len(content) - len(decoder.getstate()[0])
        decoder.decode(b"", final=True)
    except UnicodeDecodeError as exc:
        msg = f"not a Graph page: its body is not UTF-8 at byte {offset + exc.start}"
        raise ValueError(msg) from None


_CLASSIFY = functools.partial(classify_graph, decode=decode_page)


def _rows(content: bytes) -> list[_Row]:
    """The identity of each row of the page.

    Raises:
        SourceError: a row is not an object: nothing of the page is delivered.
    """
    try:
        return _ROWS.decode(content).value
    except msgspec.DecodeError as exc:
        msg = f"Graph returned a page whose `value` holds rows that are not JSON objects ({exc})"
        raise SourceError(msg) from exc


def _text(value: object) -> str:
    return "" if value is msgspec.UNSET else str(value)


def facts_of(records: list[Record]) -> list[RowFact]:
    """Each record's :data:`~o365collector.event.RowFact` (a record kept as text is read)."""
    return row_facts_of(
        [
            msgspec.convert(r, _Row) if isinstance(r, dict) else _ROW.decode(memoryview(r))
            for r in records
        ]
    )


def row_facts_of(rows: list[_Row]) -> list[RowFact]:
    """Each row's :data:`~o365collector.event.RowFact`, read once per page.

    The identity is (``id``, ``recipientAddress``, ``status``), recipient and status
    lower-cased (Graph's case varies); any status counts, known or not, and ``|`` (the
    dedup store's separator) becomes ``/``. The receive time is ``receivedDateTime``
    (``Received`` as :func:`~o365collector.event.row_facts` reads it). An absent value is
    ``""``; any other is read as ``str()`` reads it.

    Each status is one string per page, not a copy per row.
    """
    statuses: dict[str, str] = {}
    facts: list[RowFact] = []
    append = facts.append
    for row in rows:
        recipient = _text(row.recipientAddress)
        lowered = recipient.lower()
        status = _text(row.status)
        fact_status = statuses.get(status)
        if fact_status is None:
            fact_status = statuses[status] = status.lower().replace(_FACT_SEPARATOR, "/")
        append(
            (
                _text(row.id),
                recipient if lowered == recipient else lowered,
                fact_status,
                row.receivedDateTime or row.Received,
            )
        )
    return facts


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()
