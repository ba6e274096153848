"""RWS query options: ``$filter`` (``eq`` clauses ANDed), ``$top``, ``$skiptoken``, format."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, quote

from .reporting_format import Format
from .ticks import TICKS_PER_SEC, parse_odata_datetime

DEFAULT_SPAN = 48 * 3600 * TICKS_PER_SEC  # no filter: roughly the last 48 hours (§1.3)
_CLAUSE = re.compile(
    r"\s*(?P<name>[A-Za-z][A-Za-z0-9]*)\s+eq\s+"
    r"(?:(?P<kind>datetime|guid)?'(?P<text>(?:[^']|'')*)'|(?P<number>-?\d+))\s*",
    re.IGNORECASE,
)
_AND = re.compile(r"and\s+", re.IGNORECASE)
OPTIONS = ("$filter", "$top", "$skiptoken", "$format", "$select", "$orderby")


class QueryError(Exception):
    """A 400 the service would answer, with its message."""


@dataclass
class RwsQuery:
    """A parsed report request.

    Attributes:
        start: ``StartDate`` in ticks, if given.
        end: ``EndDate`` in ticks, if given.
        eq: Other ``eq`` clauses: property name (as the report spells it) -> value text.
        top: Page size asked for (``$top``), if any.
        skip: Row offset (``$skiptoken``).
        raw: The decoded query options, to build next links from.
    """

    start: int | None = None
    end: int | None = None
    eq: dict[str, str] = field(default_factory=dict)
    top: int | None = None
    skip: int = 0
    raw: dict[str, str] = field(default_factory=dict)

    def window(self, now: int) -> tuple[int, int]:
        """The [start, end] the request covers (the last 48 hours when it gives none)."""
        if self.start is None or self.end is None:
            return now - DEFAULT_SPAN, now
        return self.start, self.end

    def next_query(self, skip: int, top: int | None = None) -> str:
        """The query string of the next page (service style: ``DateTime'…'`` literals).

        ``top`` replaces the asked ``$top`` (server-driven paging asks for the rest of it).
        """
        parts = []
        for name, value in self.raw.items():
            if name == "$skiptoken" or (name == "$top" and top is not None):
                continue
            if name == "$filter":
                value = re.sub(r"datetime'", "DateTime'", value, flags=re.IGNORECASE)
            parts.append(name + "=" + quote(value, safe="'"))
        if top is not None:
            parts.append(f"$top={top}")
        parts.append(f"$skiptoken={skip}")
        return "&".join(parts)


def negotiate(params: Mapping[str, str], headers: Mapping[str, str]) -> Format:
    """Verbose for ``$format=json`` or ``odata=verbose``, light for ``application/json``."""
    fmt = params.get("$format", "").lower()
    if fmt in ("json", "verbosejson"):
        return "verbose"
    if fmt in ("atom", "xml"):
        return "atom"
    accept = headers.get("accept", "").lower()
    if "application/json" in accept:
        return "verbose" if "odata=verbose" in accept else "light"
    return "atom"


def parse_params(query: str) -> dict[str, str]:
    """The system query options, names lower-cased; a repeated option is a 400."""
    out: dict[str, str] = {}
    for name, value in parse_qsl(query, keep_blank_values=True):
        key = name.lower()
        if key in OPTIONS:
            if key in out:
                raise QueryError(f"Query option '{name}' was specified more than once.")
            out[key] = value
    return out


def parse_request(
    params: dict[str, str], report: str, properties: frozenset[str], max_top: int
) -> RwsQuery:
    """Validate the options of a request for ``report`` with these ``properties``.

    Raises:
        QueryError: bad syntax, unknown property, one bound without the other, bad
            ``$top`` or a non-numeric ``$skiptoken`` (each with the service's wording).
    """
    query = RwsQuery(raw={k: v for k, v in params.items() if k != "$skiptoken"})
    text = params.get("$filter")
    if text:
        _parse_filter(text, report, properties, query)
    if (query.start is None) != (query.end is None):
        raise QueryError("If you supply StartDate you must also supply EndDate, and vice versa.")
    if query.start is not None and query.end is not None and query.end < query.start:
        raise QueryError("EndDate must not be earlier than StartDate.")
    top = params.get("$top")
    if top is not None:
        if not top.isdigit() or not 1 <= int(top) <= max_top:
            raise QueryError(f"The value of $top must be an integer from 1 to {max_top}.")
        query.top = int(top)
    token = params.get("$skiptoken")
    if token is not None:
        if not token.isdigit():
            raise QueryError(f"The $skiptoken value '{token}' is not valid.")
        query.skip = int(token)
    return query


def _parse_filter(text: str, report: str, properties: frozenset[str], query: RwsQuery) -> None:
    by_lower = {p.lower(): p for p in properties}
    pos = 0
    while True:
        match = _CLAUSE.match(text, pos)
        if match is None:
            raise QueryError(f"Syntax error at position {pos} in '{text}'.")
        name = by_lower.get(match["name"].lower())
        if name is None:
            raise QueryError(
                f"Type 'TenantReporting.{report}' does not have a property named "
                f"'{match['name']}'; there is no service action named '{match['name']}' "
                f"that is bindable to the type 'TenantReporting.{report}'."
            )
        value = match["text"].replace("''", "'") if match["text"] is not None else match["number"]
        if name in ("StartDate", "EndDate"):
            try:
                ticks = parse_odata_datetime(value if value.endswith("Z") else value + "Z")
            except ValueError as exc:
                raise QueryError(f"The {name} value '{value}' is not a valid DateTime.") from exc
            if name == "StartDate":
                query.start = ticks
            else:
                query.end = ticks
        else:
            query.eq[name] = value
        pos = match.end()
        if pos >= len(text):
            return
        conj = _AND.match(text, pos)
        if conj is None:
            raise QueryError(f"Syntax error at position {pos} in '{text}': expected 'and'.")
        pos = conj.end()
