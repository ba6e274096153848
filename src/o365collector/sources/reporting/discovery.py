"""Report discovery: the tenant's RWS service document says which reports this caller may read.

``GET …/reporting.svc/`` answers an AtomPub ``<service>`` document with one
``<collection href="Report">`` per report the caller is privileged to see (api-facts §1.1).
It is read once per tenant and shared by all its RWS streams.
"""

from __future__ import annotations

import asyncio
import functools
import xml.etree.ElementTree as ET
from typing import cast

from o365collector.clock import Clock
from o365collector.errors import SourceError
from o365collector.http.classify import classify_reporting
from o365collector.http.client import ApiClient

_APP = "{http://www.w3.org/2007/app}"


def parse_service_document(content: bytes) -> frozenset[str]:
    """The report names (lower-cased) of an Atom service document.

    The body comes from the configured Microsoft host; a document type or entity
    declaration is refused outright, and expat (≥ 2.4.1, bundled with Python 3.11)
    bounds entity expansion anyway.

    Raises:
        ValueError: the body is not an Atom ``<service>`` document (an HTML page, JSON).
    """
    head = content[:4096].lower()
    if b"<!doctype" in head or b"<!entity" in head:
        raise ValueError("the body declares a document type; not a service document")
    try:
        root = ET.fromstring(content)  # noqa: S314 - DTDs refused above
    except ET.ParseError as exc:
        raise ValueError("the body is not XML") from exc
    if root.tag not in (f"{_APP}service", "service"):
        raise ValueError(f"the XML root is <{root.tag}>, not an Atom <service>")
    names = set()
    for element in root.iter():
        if element.tag in (f"{_APP}collection", "collection"):
            href = element.get("href", "").strip().rstrip("/")
            if href:
                names.add(href.rsplit("/", 1)[-1].lower())
    return frozenset(names)


classify_service_document = functools.partial(classify_reporting, decode=parse_service_document)


class ServiceDocument:
    """The reports one tenant offers, fetched on first use and shared by its streams.

    A failure (401, 403, retries exhausted) is raised to every stream that asks within
    ``failure_ttl_secs``, so streams starting together make one request, not one each.
    """

    def __init__(
        self,
        api: ApiClient,
        *,
        base: str,
        scope: str,
        clock: Clock,
        failure_ttl_secs: float = 60.0,
    ) -> None:
        """Bind to one tenant's API client and RWS root (``…/reporting.svc``)."""
        self._api = api
        self.url = base.rstrip("/") + "/"
        self._scope = scope
        self._clock = clock
        self._failure_ttl = failure_ttl_secs
        self._lock = asyncio.Lock()
        self._offered: frozenset[str] | None = None
        self._failure: tuple[float, SourceError] | None = None

    async def offered(self, *, refresh: bool = False, priority: int = 0) -> frozenset[str]:
        """Lower-cased names of the reports the tenant offers.

        Raises:
            SourceError: the service document could not be read (with the reason and fix).
        """
        async with self._lock:
            if self._offered is not None and not refresh:
                return self._offered
            now = self._clock.monotonic()
            if self._failure is not None and not refresh:
                failed_at, error = self._failure
                if now - failed_at < self._failure_ttl:
                    raise error
            try:
                body = await self._api.get_json(
                    self.url,
                    scope=self._scope,
                    classify=classify_service_document,
                    api="reporting",
                    priority=priority,
                )
            except SourceError as exc:
                self._failure = (now, exc)
                raise
            self._failure = None
            self._offered = cast(frozenset[str], body)
            return self._offered
