"""RWS wire formats: verbose JSON, JSON light, Atom XML, the service document and error bodies.

Shapes follow api-facts §1.2–§1.5 and §2.6 and the captured samples: verbose rows carry
``__metadata`` and ``\\/Date(ms)\\/`` dates (slashes escaped as WCF writes them); JSON light
rows carry ISO dates with seven fractional digits, the report's own time field without
``Z``; JSON light next links are relative (``../../reportingwebservice/…``).
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from typing import Any, Literal
from xml.sax.saxutils import escape, quoteattr

import orjson

from .responses import Response
from .ticks import TICKS_PER_SEC

Format = Literal["verbose", "light", "atom"]
VERBOSE_TYPE = "application/json;odata=verbose;charset=utf-8"
LIGHT_TYPE = "application/json;odata=minimalmetadata;streaming=true;charset=utf-8"
ATOM_TYPE = "application/atom+xml;type=feed;charset=utf-8"
XML_TYPE = "application/xml;charset=utf-8"
_DATE_TOKEN = re.compile(rb'"/Date\((-?\d+)\)/"')

UNAUTHORIZED_HTML = (
    b"<title>401 - Unauthorized: Access is denied due to invalid credentials.</title><body>"
    b'<div id="header"><h1>Server Error</h1></div><div id="content"><div class="content-'
    b'container"><fieldset><h2>401 - Unauthorized: Access is denied due to invalid '
    b"credentials.</h2><h3>You do not have permission to view this directory or page using the "
    b"credentials that you supplied.</h3></fieldset></div></div></body>"
)
NO_PERMISSION = {
    "ErrorCode": "",
    "Message": "No permission to access the report for the organization .",
}
SERVER_ERROR = "An error has occurred on the server."


@dataclass(frozen=True, slots=True)
class When:
    """A date value of a row, in 100 ns ticks; rendered per format."""

    ticks: int


def iso7(ticks: int, *, zone: bool = True) -> str:
    """ISO-8601 with seven fractional digits, ``Z`` unless ``zone`` is False."""
    sec, frac = divmod(ticks, TICKS_PER_SEC)
    second = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(sec))
    return f"{second}.{frac:07d}" + ("Z" if zone else "")


def _plain(value: Any, fmt: Format, naive: bool) -> Any:
    if isinstance(value, When):
        if fmt == "verbose":
            return f"/Date({value.ticks // 10_000})/"
        return iso7(value.ticks, zone=not naive)
    return value


def render_row(row: dict[str, Any], fmt: Format, time_field: str) -> dict[str, Any]:
    """A row's fields for ``fmt``; JSON light writes the time field without ``Z``."""
    return {k: _plain(v, fmt, naive=fmt == "light" and k == time_field) for k, v in row.items()}


def truth_row(row: dict[str, Any]) -> dict[str, Any]:
    """A row for the ground truth: every date as ISO with ``Z``."""
    return {k: iso7(v.ticks) if isinstance(v, When) else v for k, v in row.items()}


def json_page(
    fmt: Format,
    *,
    base: str,
    report: str,
    rows: list[dict[str, Any]],
    first_index: int,
    time_field: str,
    next_query: str | None,
) -> bytes:
    """One page as verbose JSON or JSON light (``next_query`` continues it, if any)."""
    rendered = [render_row(row, fmt, time_field) for row in rows]
    if fmt == "light":
        body: dict[str, Any] = {"odata.metadata": f"{base}$metadata#{report}", "value": rendered}
        if next_query is not None:
            body["odata.nextLink"] = (
                f"../../reportingwebservice/reporting.svc/{report}?{next_query}"
            )
        return orjson.dumps(body)
    results = []
    for offset, row in enumerate(rendered):
        uri = f"{base}{report}({first_index + offset})"
        meta = {"id": uri, "uri": uri, "type": f"TenantReporting.{report}"}
        results.append({"__metadata": meta, **row})
    inner: dict[str, Any] = {"results": results}
    if next_query is not None:
        inner["__next"] = f"{base}{report}?{next_query}"
    # WCF escapes the slashes of its dates: "\/Date(…)\/"
    return _DATE_TOKEN.sub(rb'"\\/Date(\1)\\/"', orjson.dumps({"d": inner}))


def atom_feed(
    *, base: str, report: str, rows: list[dict[str, Any]], first_index: int, time_field: str
) -> bytes:
    """One page as the Atom feed RWS answers when JSON is not asked for."""
    entries = []
    for offset, row in enumerate(rows):
        props = []
        for name, value in row.items():
            if value is None:
                props.append(f'<d:{name} m:null="true" />')
            elif isinstance(value, When):
                text = iso7(value.ticks, zone=name != time_field)
                props.append(f'<d:{name} m:type="Edm.DateTime">{text}</d:{name}>')
            elif isinstance(value, bool) or not isinstance(value, int):
                props.append(f"<d:{name}>{escape(str(value))}</d:{name}>")
            else:
                props.append(f'<d:{name} m:type="Edm.Int32">{value}</d:{name}>')
        uri = f"{base}{report}({first_index + offset})"
        entries.append(
            f"<entry><id>{escape(uri)}</id><category term={quoteattr('TenantReporting.' + report)}"
            ' scheme="http://schemas.microsoft.com/ado/2007/08/dataservices/scheme" />'
            f'<content type="application/xml"><m:properties>{"".join(props)}</m:properties>'
            "</content></entry>"
        )
    feed = (
        '<?xml version="1.0" encoding="utf-8" standalone="yes"?>'
        f'<feed xml:base={quoteattr(base)} xmlns="http://www.w3.org/2005/Atom" '
        'xmlns:d="http://schemas.microsoft.com/ado/2007/08/dataservices" '
        'xmlns:m="http://schemas.microsoft.com/ado/2007/08/dataservices/metadata">'
        f'<title type="text">{escape(report)}</title><id>{escape(base + report)}</id>'
        f"{''.join(entries)}</feed>"
    )
    return feed.encode()


def service_document(base: str, reports: list[str]) -> Response:
    """The AtomPub service document listing ``reports`` (api-facts §1.1)."""
    collections = "".join(
        f"<collection href={quoteattr(name)}><atom:title>{escape(name)}</atom:title></collection>"
        for name in reports
    )
    body = (
        '<?xml version="1.0" encoding="utf-8" standalone="yes"?>'
        f'<service xml:base={quoteattr(base)} xmlns="http://www.w3.org/2007/app" '
        'xmlns:atom="http://www.w3.org/2005/Atom"><workspace><atom:title>Default</atom:title>'
        f"{collections}</workspace></service>"
    )
    return Response(200, body.encode(), [("Content-Type", XML_TYPE)])


def page_response(fmt: Format, body: bytes) -> Response:
    """A 200 with the content type of ``fmt``."""
    ctype = {"verbose": VERBOSE_TYPE, "light": LIGHT_TYPE, "atom": ATOM_TYPE}[fmt]
    return Response(200, body, [("Content-Type", ctype)])


def unauthorized() -> Response:
    """401: the IIS HTML page of the captured sample (never JSON)."""
    return Response(401, UNAUTHORIZED_HTML, [("Content-Type", "text/html")])


def no_permission() -> Response:
    """403: the JSON object of the captured sample (no admin role for reports)."""
    return Response(
        403, orjson.dumps(NO_PERMISSION), [("Content-Type", "application/json; charset=utf-8")]
    )


def odata_error(
    status: int,
    fmt: Format,
    message: str,
    *,
    code: str = "",
    lang: str = "en-US",
    headers: list[tuple[str, str]] | None = None,
) -> Response:
    """An OData error: ``error`` (verbose), ``odata.error`` (light) or XML ``<error>``."""
    extra = headers or []
    if fmt == "atom":
        body = (
            '<?xml version="1.0" encoding="utf-8" standalone="yes"?><error xmlns="http://schemas.'
            f'microsoft.com/ado/2007/08/dataservices/metadata"><code>{escape(code)}</code>'
            f"<message xml:lang={quoteattr(lang)}>{escape(message)}</message></error>"
        )
        return Response(status, body.encode(), [("Content-Type", XML_TYPE), *extra])
    inner = {"code": code, "message": {"lang": lang, "value": message}}
    key = "error" if fmt == "verbose" else "odata.error"
    ctype = VERBOSE_TYPE if fmt == "verbose" else LIGHT_TYPE
    return Response(status, orjson.dumps({key: inner}), [("Content-Type", ctype), *extra])


def server_error(fmt: Format) -> Response:
    """500 of the captured ``$skiptoken`` ceiling sample."""
    return odata_error(500, fmt, SERVER_ERROR, code="UnknownError", lang="")
