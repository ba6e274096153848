"""The Reporting Web Service (``/ecp/reportingwebservice/reporting.svc``): routing and checks.

Order of checks: bearer token for Exchange Online (401 HTML page), the application
permission ``ReportingWebService.Read.All`` (401), a directory role that may read reports
(403 "No permission…"), the tenant's quota shared with Graph (429), then the request
(404 for a report the tenant is not offered, 400 for a bad query, 500 at the ``$skiptoken``
ceiling). The service document lists the reports offered to the tenant.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterator, Mapping
from datetime import datetime
from typing import Any

import orjson

from .dataset import TenantData
from .quota import TenantQuota
from .reporting_format import (
    Format,
    When,
    atom_feed,
    json_page,
    no_permission,
    odata_error,
    page_response,
    server_error,
    service_document,
    unauthorized,
)
from .reporting_query import QueryError, RwsQuery, negotiate, parse_params, parse_request
from .reporting_registry import BY_LOWER, REPORTS, ReportDef, RowSource
from .reporting_rows import DAY, Row
from .responses import Response, json_response
from .settings import READER_ROLES, REPORTING_ROLE, RWS_DELEGATED_SCOPE, EmulatorSettings
from .ticks import TICKS_PER_SEC, to_ticks
from .tokens import InvalidTokenError, TokenService

_PATH = re.compile(r"/ecp/reportingwebservice/reporting\.svc(?P<rest>/.*)?", re.IGNORECASE)
AUDIENCES = ("https://outlook.office365.com", "https://outlook.office.com")
_INDEXED = ("MessageTrace", "MessageTraceDetail")  # rows carry their ordinal as `Index`


class _RefusedError(Exception):
    """Stop handling with ``response`` (charged to ``quota`` when the tenant is known)."""

    def __init__(self, response: Response, quota: TenantQuota | None = None) -> None:
        super().__init__(response.status)
        self.response = response
        self.quota = quota


class ReportingApi:
    """Serves the RWS paths of every tenant, over the same datasets and quotas as Graph."""

    def __init__(
        self,
        settings: EmulatorSettings,
        datasets: Mapping[str, TenantData],
        quotas: Mapping[str, TenantQuota],
        tokens: TokenService,
        clock: Callable[[], datetime],
    ) -> None:
        """Wire the API; report row sources are built on first use and cached."""
        self._settings = settings
        self._datasets = datasets
        self._quotas = quotas
        self._tokens = tokens
        self._clock = clock
        self._delay = int(settings.rws_aggregate_delay_secs * TICKS_PER_SEC)
        self._cache: dict[tuple[str, str], RowSource] = {}
        self._lock = threading.Lock()

    @staticmethod
    def owns(path: str) -> bool:
        """True for ``…/ecp/reportingwebservice/reporting.svc[/…]`` in any letter case."""
        return _PATH.fullmatch(path) is not None

    @staticmethod
    def offered(data: TenantData) -> list[str]:
        """The reports the tenant's service document lists (all when not configured)."""
        wanted = data.spec.rws_reports
        if wanted is None:
            return list(REPORTS)
        lowered = {w.lower() for w in wanted}
        return [name for name in REPORTS if name.lower() in lowered]

    def handle(self, method: str, path: str, query: str, headers: Mapping[str, str]) -> Response:
        """Answer one RWS request; ``headers`` have lower-case names."""
        quota: TenantQuota | None
        try:
            response, quota, rows = self._answer(method, path, query, headers)
        except _RefusedError as refused:
            response, quota, rows = refused.response, refused.quota, 0
        if quota is not None:
            quota.record(response.status, rows)
        return response

    def _answer(
        self, method: str, path: str, query: str, headers: Mapping[str, str]
    ) -> tuple[Response, TenantQuota, int]:
        match = _PATH.fullmatch(path)
        rest = ((match and match.group("rest")) or "/").strip("/")
        try:
            params = parse_params(query)
        except QueryError as exc:
            raise _RefusedError(odata_error(400, negotiate({}, headers), str(exc))) from None
        fmt = negotiate(params, headers)
        data, quota = self._admit(headers, fmt)
        if method != "GET":
            message = f"The {method} method is not supported."
            raise _RefusedError(odata_error(405, fmt, message), quota)
        base = f"http://{headers.get('host', '127.0.0.1')}/ecp/ReportingWebService/Reporting.svc/"
        if not rest:
            return service_document(base, self.offered(data)), quota, 0
        report = BY_LOWER.get(rest.lower())
        if report is None or report.name not in self.offered(data):
            message = f"Resource not found for the segment '{rest}'."
            raise _RefusedError(odata_error(404, fmt, message), quota)
        try:
            response, rows = self._page(data, report, params, fmt, base)
        except QueryError as exc:
            raise _RefusedError(odata_error(400, fmt, str(exc)), quota) from None
        return response, quota, rows

    def _admit(self, headers: Mapping[str, str], fmt: Format) -> tuple[TenantData, TenantQuota]:
        """Token (401), permission (401), directory role (403), then a quota slot (429)."""
        try:
            claims = self._tokens.authenticate(headers.get("authorization"), AUDIENCES)
        except InvalidTokenError as exc:
            quota = self._quotas.get(exc.tenant.lower()) if exc.tenant else None
            raise _RefusedError(unauthorized(), quota) from None
        tenant = str(claims["tid"]).lower()
        data, quota = self._datasets[tenant], self._quotas[tenant]
        roles = claims.get("roles")
        granted = roles if isinstance(roles, list) else str(claims.get("scp", "")).split()
        if REPORTING_ROLE not in granted and RWS_DELEGATED_SCOPE not in granted:
            raise _RefusedError(unauthorized(), quota)
        if not READER_ROLES & set(data.spec.directory_roles):
            raise _RefusedError(no_permission(), quota)
        retry_after = quota.admit(self._clock().timestamp())
        if retry_after is not None:
            message = "The request was throttled; retry after the time in Retry-After."
            throttled = odata_error(429, fmt, message, headers=[("Retry-After", str(retry_after))])
            raise _RefusedError(throttled, quota)
        return data, quota

    def _page(
        self, data: TenantData, report: ReportDef, params: dict[str, str], fmt: Format, base: str
    ) -> tuple[Response, int]:
        props = frozenset((*report.fields, "StartDate", "EndDate", "AggregateBy"))
        query = parse_request(params, report.name, props, self._settings.rws_max_top)
        if query.skip >= self._settings.rws_skiptoken_ceiling:
            return server_error(fmt), 0
        now = to_ticks(self._clock())
        rows = self._select(data, report, query, now)
        size, next_top = self._paging(query)
        start, end = query.window(now)
        echo: Row = {"StartDate": When(start), "EndDate": When(end)}
        page = [
            {**row, **echo, **({"Index": query.skip + i} if report.name in _INDEXED else {})}
            for i, row in enumerate(rows[query.skip : query.skip + size])
        ]
        more = bool(page) and query.skip + len(page) < len(rows)
        if self._settings.rws_page_size is not None:
            # Server-driven paging (OData v3): a link only after a page cut at the service's
            # size, asking for the rest of the $top; a page that completes the $top has none.
            more = more and len(page) == size and next_top != 0
        more = more and self._settings.rws_next_links
        if fmt == "atom":
            body = atom_feed(
                base=base, report=report.name, rows=page, first_index=query.skip,
                time_field=report.time_field,
            )  # fmt: skip
        else:
            body = json_page(
                fmt, base=base, report=report.name, rows=page, first_index=query.skip,
                time_field=report.time_field,
                next_query=query.next_query(query.skip + len(page), next_top) if more else None,
            )  # fmt: skip
        return page_response(fmt, body), len(page)

    def _paging(self, query: RwsQuery) -> tuple[int, int | None]:
        """Rows in this page, and the ``$top`` its next link asks for (None: as asked).

        Without ``rws_page_size`` a page holds the asked ``$top`` (the largest without one)
        and its link repeats that ``$top``. With it, a page holds at most the service's size
        and its link asks for what is left of the ``$top`` (0 when nothing is left).
        """
        server = self._settings.rws_page_size
        if server is None:
            return query.top or self._settings.rws_max_top, None
        if query.top is None:
            return server, None
        return min(query.top, server), max(0, query.top - server)

    def _select(self, data: TenantData, report: ReportDef, query: RwsQuery, now: int) -> list[Row]:
        eq = dict(query.eq)
        wanted = eq.pop("AggregateBy", None)
        if wanted is not None and wanted.lower() != (report.aggregate_by or "").lower():
            if report.aggregate_by is None:
                raise QueryError(f"Type 'TenantReporting.{report.name}' takes no AggregateBy.")
            raise QueryError(f"{report.name} answers AggregateBy '{report.aggregate_by}' only.")
        low, high = query.window(now)
        low = max(low, now - report.retention_days * DAY)  # older rows are purged
        return self.source(data, report.name).select(low, high, now, eq)

    def source(self, data: TenantData, name: str) -> RowSource:
        """The cached row source of report ``name`` for one tenant."""
        key = (data.spec.tenant_id.lower(), name)
        with self._lock:
            cached = self._cache.get(key)
            if cached is None:
                cached = REPORTS[name].build(data, self._delay)
                self._cache[key] = cached
            return cached

    def serve_rows(self, data: TenantData, report: str, source: RowSource) -> None:
        """Answer ``report`` of one tenant from ``source`` from now on (KeyError if unknown)."""
        name = BY_LOWER[report.lower()].name
        with self._lock:
            self._cache[(data.spec.tenant_id.lower(), name)] = source

    def ground_truth(self, data: TenantData, report: str) -> Iterator[dict[str, Any]]:
        """Every row the report will ever serve, with when it becomes visible.

        Each item is ``{"record": {...dates as ISO with Z...}, "visible_at": iso}``;
        MessageTrace items add ``history`` (each ``Status`` and when it became visible).

        Raises:
            KeyError: unknown report name.
        """
        return self.source(data, BY_LOWER[report.lower()].name).truth()

    def ground_truth_response(self, data: TenantData, report: str) -> Response:
        """``/_emulator/ground-truth?report=…`` as NDJSON (404 for an unknown report)."""
        if report.lower() not in BY_LOWER:
            message = f"unknown report {report!r}"
            return json_response(404, {"error": {"code": "NotFound", "message": message}})
        option = orjson.OPT_APPEND_NEWLINE
        lines = (orjson.dumps(item, option=option) for item in self.ground_truth(data, report))
        return Response(200, lines, [("Content-Type", "application/x-ndjson")])
