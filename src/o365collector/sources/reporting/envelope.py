"""Reporting Web Service JSON envelopes: verbose (``d``) and light (``value``), both accepted."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

# Where each envelope keeps the link to the next page (api-facts §1.2, §1.5).
_LIGHT_NEXT = ("odata.nextLink", "@odata.nextLink")
_VERBOSE_NEXT = ("__next", "@odata.nextLink")


@dataclass(frozen=True, slots=True)
class ReportPage:
    """The rows of one response, untouched, and the next link exactly as sent (maybe relative)."""

    records: list[dict[str, Any]]
    next_link: str | None


def parse_envelope(content: bytes) -> ReportPage:
    """Decode a report response body.

    Raises:
        ValueError: the body is not JSON or not an RWS envelope (an HTML sign-in page, Atom
            XML, an error object); the caller retries it and never reads it as "no rows".
    """
    try:
        body = orjson.loads(content)
    except orjson.JSONDecodeError as exc:
        raise ValueError("the body is not JSON") from exc
    return read_envelope(body)


def read_envelope(body: object) -> ReportPage:
    """Read an already decoded body; see :func:`parse_envelope`.

    Verbose JSON keeps rows in ``d.results`` (or, when ``$top`` was given, directly in a
    ``d`` list) and the next link in ``d.__next``; JSON light keeps rows in ``value`` and
    the link in ``odata.nextLink``. A v4-style ``@odata.nextLink`` is accepted in both.

    Raises:
        ValueError: ``body`` is neither envelope.
    """
    if not isinstance(body, dict):
        raise ValueError("the body is not a JSON object")  # noqa: TRY004 - decoder contract
    if "value" in body:
        return ReportPage(_rows(body["value"], "value"), _link(body, _LIGHT_NEXT))
    if "d" in body:
        inner = body["d"]
        if isinstance(inner, list):
            return ReportPage(_rows(inner, "d"), _link(body, _LIGHT_NEXT))
        if isinstance(inner, dict) and "results" in inner:
            link = _link(inner, _VERBOSE_NEXT) or _link(body, _LIGHT_NEXT)
            return ReportPage(_rows(inner["results"], "d.results"), link)
        raise ValueError("`d` holds neither a `results` list nor a list of rows")
    if "error" in body or "odata.error" in body:
        raise ValueError("the body is an OData error object")
    raise ValueError("the body has neither `value` (JSON light) nor `d` (verbose JSON)")


def _rows(value: object, where: str) -> list[dict[str, Any]]:
    if not isinstance(value, list) or not all(isinstance(row, dict) for row in value):
        raise ValueError(f"`{where}` is not a list of row objects")
    return value


def _link(container: dict[str, Any], names: tuple[str, ...]) -> str | None:
    for name in names:
        link = container.get(name)
        if link is None:
            continue
        if not isinstance(link, str) or not link:
            raise ValueError(f"`{name}` is not a link")
        return link
    return None
