"""RWS paging: resolve (relative) next links, read and set the numeric ``$skiptoken``.

``$skiptoken`` is a row offset (api-facts §1.5). Service links may be relative
(``../../reportingwebservice/reporting.svc/MessageTrace?…``) and are resolved against the
URL of the request that returned them; a link to any other host is refused, because the
bearer token would go with it.
"""

from __future__ import annotations

from urllib.parse import unquote, urljoin, urlsplit, urlunsplit

from o365collector.errors import SourceError

SKIPTOKEN_CEILING = 999_999  # following $skiptoken=999999 answered HTTP 500 (api-facts §1.5)


def origin_of(url: str) -> str:
    """``scheme://host[:port]``, lower-cased."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


def resolve_link(request_url: str, link: str, origin: str) -> str:
    """The absolute URL of ``link`` as sent in answer to ``request_url``.

    Raises:
        SourceError: the link leads to another host than ``origin`` (the configured
            ``endpoints.reporting``); the token is never sent there.
    """
    try:
        absolute = urljoin(request_url, link)
        target = origin_of(absolute)
    except ValueError:  # not a URL at all (``http://[::1``)
        target = "?"
    if target != origin:
        msg = (
            f"the Reporting Web Service returned a next link to another host "
            f"({target}); refusing to send the token there. Expected {origin}: "
            "check endpoints.reporting"
        )
        raise SourceError(msg)
    return absolute


def _params(url: str) -> list[tuple[str, str]]:
    """The query as (decoded lower-case name, raw part) pairs, order kept."""
    query = urlsplit(url).query
    out = []
    for part in query.split("&") if query else []:
        name = unquote(part.split("=", 1)[0]).lower()
        out.append((name, part))
    return out


def query_value(url: str, name: str) -> str | None:
    """The decoded value of query option ``name`` (case-insensitive), if present."""
    for key, part in _params(url):
        if key == name.lower():
            _, _, value = part.partition("=")
            return unquote(value.replace("+", " "))
    return None


def skiptoken_of(url: str) -> int:
    """The row offset a URL asks for: its numeric ``$skiptoken``, 0 when absent.

    Raises:
        SourceError: the ``$skiptoken`` is not a number (RWS offsets always are).
    """
    value = query_value(url, "$skiptoken")
    if value is None:
        return 0
    if not _is_number(value):
        msg = f"the Reporting Web Service sent a non-numeric $skiptoken ({value[:40]!r})"
        raise SourceError(msg)
    return int(value)


def top_of(url: str, default: int) -> int:
    """The ``$top`` a URL asks for (the page size in force for it); ``default`` when absent.

    Raises:
        SourceError: the ``$top`` is not a positive number.
    """
    value = query_value(url, "$top")
    if value is None:
        return default
    if not _is_number(value) or int(value) < 1:
        msg = f"the Reporting Web Service sent a next link with a bad $top ({value[:40]!r})"
        raise SourceError(msg)
    return int(value)


def with_options(url: str, **options: int) -> str:
    """``url`` with the given numeric query options set (``skiptoken=5`` sets ``$skiptoken``).

    Every other option is kept as it was; the options set go last, in the order given.
    """
    names = {f"${name}" for name in options}
    parts = urlsplit(url)
    kept = [part for key, part in _params(url) if key not in names]
    kept.extend(f"${name}={value}" for name, value in options.items())
    return urlunsplit((parts.scheme, parts.netloc, parts.path, "&".join(kept), parts.fragment))


def passes_ceiling(offset: int, page_size: int, ceiling: int = SKIPTOKEN_CEILING) -> bool:
    """True when a page at ``offset`` could reach the offset where RWS fails with HTTP 500."""
    return offset + page_size > ceiling


def _is_number(value: str) -> bool:
    """ASCII digits only: ``str.isdigit`` also accepts ``²``, which ``int`` refuses."""
    text = value.strip()
    return text.isascii() and text.isdigit()
