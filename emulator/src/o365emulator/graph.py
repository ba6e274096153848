"""Graph message trace endpoints: auth, per-tenant quota, list paging with nextLink, details."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any
from urllib.parse import quote

import orjson

from .dataset import TenantData
from .filters import (
    Cursor,
    TraceFilter,
    decode_skiptoken,
    encode_skiptoken,
    filter_digest,
    parse_filter,
    parse_query,
    parse_top,
    resolve_window,
)
from .generate import mix_extra_statuses
from .quota import TenantQuota
from .responses import (
    ODATA_JSON_TYPE,
    GraphError,
    Response,
    bad_request,
    graph_error_response,
    json_response,
)
from .settings import MESSAGE_TRACE_ROLE, EmulatorSettings
from .ticks import to_ticks
from .tokens import InvalidTokenError, TokenService
from .traces import compile_filter, detail_rows, find_row, select_page

TRACE_PATH = "/admin/exchange/tracing/messageTraces"
_LIST = re.compile(r"/(v1\.0|beta)/admin/exchange/tracing/messagetraces/?", re.IGNORECASE)
_DETAIL = re.compile(
    r"/(v1\.0|beta)/admin/exchange/tracing/messagetraces/([^/()]+)/getdetailsbyrecipient"
    r"(?:\((.*)\))?/?",
    re.IGNORECASE,
)
_GRAPH_PREFIX = re.compile(r"/(v1\.0|beta)/", re.IGNORECASE)
_RECIPIENT_ARG = re.compile(r"\s*recipientaddress\s*=\s*'((?:[^']|'')*)'\s*", re.IGNORECASE)
SERVICE_PRINCIPAL_MESSAGE = (
    "Service principal-less Authentication failed: the service principal for App ID "
    "8bd644d1-64a1-4d4b-ae52-2e0cbf64e373 was not found. Please create a service principal "
    "for this app in your tenant. Provisioning may take several hours to complete."
)
PREFER_UNKNOWN_MEMBERS = "include-unknown-enum-members"
THROTTLED_MESSAGE = (
    "Your recent queries have surpassed the permitted limit. Please try again later."
)


class GraphApi:
    """Serves ``/{v1.0|beta}/admin/exchange/tracing/messageTraces[...]`` for all tenants.

    Order of checks: bearer token (401), service principal (401), role (403), quota (429),
    then the request itself (400/404/200). Every request past the role check takes a quota
    slot, whatever its outcome; 429s take none.

    Status members added after clients were written (``extra_statuses``) are listed as
    ``unknownFutureValue`` unless the request sends ``Prefer: include-unknown-enum-members``;
    then under their names, and the response says ``Preference-Applied``.
    """

    def __init__(
        self,
        settings: EmulatorSettings,
        datasets: Mapping[str, TenantData],
        quotas: Mapping[str, TenantQuota],
        tokens: TokenService,
        clock: Callable[[], datetime],
    ) -> None:
        """Wire the API to the tenants' data, quotas, token service and clock."""
        self._settings = settings
        self._datasets = datasets
        self._quotas = quotas
        self._tokens = tokens
        self._clock = clock
        self._extras = {
            tenant: mix_extra_statuses(data, settings) for tenant, data in datasets.items()
        }

    @staticmethod
    def owns(path: str) -> bool:
        """True when ``path`` (decoded) is a Graph path this API answers."""
        return _GRAPH_PREFIX.match(path) is not None

    def handle(self, method: str, path: str, query: str, headers: Mapping[str, str]) -> Response:
        """Answer one Graph request; ``headers`` have lower-case names."""
        now = self._clock()
        request_id = str(uuid.uuid4())
        client_request_id = headers.get("client-request-id") or request_id
        quota: TenantQuota | None = None
        rows = 0
        try:
            match, is_list = _route(method, path)
            try:
                claims = self._tokens.authenticate(headers.get("authorization"))
            except InvalidTokenError as exc:
                quota = self._quotas.get(exc.tenant.lower()) if exc.tenant else None
                raise
            tenant = str(claims["tid"]).lower()
            data, quota = self._datasets[tenant], self._quotas[tenant]
            _admit(data, claims, quota, now.timestamp())
            version = match.group(1).lower()
            applied: list[tuple[str, str]] = []
            if is_list:
                payload = self._list(data, version, query, headers, to_ticks(now))
                if reveals_new_members(headers):
                    applied.append(("Preference-Applied", PREFER_UNKNOWN_MEMBERS))
            else:
                payload = self._details(data, version, match, to_ticks(now))
            rows = len(payload["value"])
            response = Response(
                200, orjson.dumps(payload), [("Content-Type", ODATA_JSON_TYPE), *applied]
            )
        except GraphError as exc:
            response = graph_error_response(
                exc,
                request_id=request_id,
                client_request_id=client_request_id,
                date=now.strftime("%Y-%m-%dT%H:%M:%S"),
            )
        if quota is not None:
            quota.record(response.status, rows)
        response.headers += [("request-id", request_id), ("client-request-id", client_request_id)]
        return response

    def _list(
        self, data: TenantData, version: str, query: str, headers: Mapping[str, str], now: int
    ) -> dict[str, Any]:
        params = parse_query(query)
        filter_text = params.get("$filter")
        flt = parse_filter(filter_text) if filter_text is not None else TraceFilter()
        top = parse_top(params.get("$top"), self._settings.default_top, self._settings.max_top)
        digest = filter_digest(filter_text)
        token = params.get("$skiptoken")
        if token is not None:
            cursor = decode_skiptoken(token)
            if cursor.filter_digest != digest:
                raise bad_request(
                    "Invalid $skiptoken value: it belongs to a different $filter; "
                    "follow @odata.nextLink unchanged."
                )
            window, below = cursor.window, cursor.key
        else:
            window, below = resolve_window(flt, now), None
        extra = self._extras[data.spec.tenant_id.lower()]
        matcher = compile_filter(data, flt, extra)
        page, more = select_page(data, matcher, window, below, top, now, extra)
        beta, reveal = version == "beta", reveals_new_members(headers)
        payload: dict[str, Any] = {
            "@odata.context": f"https://graph.microsoft.com/{version}/$metadata#admin/exchange/"
            "tracing/messageTraces",
            "value": [
                extra.render(data, i, status, beta=beta, reveal=reveal) for i, status in page
            ],
        }
        if more:
            next_token = encode_skiptoken(Cursor(data.key(page[-1][0]), window, digest))
            parts = [] if filter_text is None else [f"$filter={quote(filter_text, safe='')}"]
            parts += [f"$top={top}", f"$skiptoken={next_token}"]
            host = headers.get("host", "127.0.0.1")
            payload["@odata.nextLink"] = f"http://{host}/{version}{TRACE_PATH}?{'&'.join(parts)}"
        return payload

    @staticmethod
    def _details(data: TenantData, version: str, match: re.Match[str], now: int) -> dict[str, Any]:
        trace_id, args = match.group(2), match.group(3) or ""
        arg = _RECIPIENT_ARG.fullmatch(args)
        if arg is None:
            raise bad_request(
                "getDetailsByRecipient requires the parameter recipientAddress='user@domain'."
            )
        recipient = arg.group(1).replace("''", "'")
        row = find_row(data, trace_id, recipient)
        if row is None or data.vis[row] > now:
            raise GraphError(
                404,
                "NotFound",
                f"No message trace with id '{trace_id}' and recipient '{recipient}' was found.",
            )
        return {
            "@odata.context": f"https://graph.microsoft.com/{version}/$metadata#Collection("
            "microsoft.graph.exchangeMessageTraceDetail)",
            "value": detail_rows(data, row, now),
        }


def reveals_new_members(headers: Mapping[str, str]) -> bool:
    """True when the ``Prefer`` header asks for enum members by name (RFC 7240 list)."""
    preferences = headers.get("prefer", "").split(",")
    return any(
        p.split(";")[0].split("=")[0].strip().lower() == PREFER_UNKNOWN_MEMBERS for p in preferences
    )


def _route(method: str, path: str) -> tuple[re.Match[str], bool]:
    """Match a message trace path: (match, is_list); 404 / 405 otherwise."""
    match = _LIST.fullmatch(path)
    is_list = match is not None
    match = match or _DETAIL.fullmatch(path)
    if match is None:
        raise GraphError(404, "NotFound", f"Resource not found for the segment '{path}'.")
    if method != "GET":
        raise GraphError(
            405, "MethodNotAllowed", f"The {method} method is not supported here; use GET."
        )
    return match, is_list


def _admit(data: TenantData, claims: Mapping[str, Any], quota: TenantQuota, now: float) -> None:
    """Service principal (401), role (403), then a quota slot (429 with Retry-After)."""
    if not data.spec.service_principal:
        raise GraphError(401, "Unauthorized", SERVICE_PRINCIPAL_MESSAGE)
    roles = claims.get("roles")
    if not isinstance(roles, list):  # a delegated token: the user's consented scopes
        roles = str(claims.get("scp", "")).split()
    if MESSAGE_TRACE_ROLE not in roles:
        have = ",".join(str(r) for r in roles) if isinstance(roles, list) else ""
        raise GraphError(
            403,
            "Forbidden",
            f"Missing role permissions on the request. API requires one of "
            f"'{MESSAGE_TRACE_ROLE}'. Roles on the request '{have}'.",
        )
    retry_after = quota.admit(now)
    if retry_after is not None:
        raise GraphError(
            429, "TooManyRequests", THROTTLED_MESSAGE, [("Retry-After", str(retry_after))]
        )


def not_found(method: str, path: str) -> Response:
    """404 for paths the emulator does not serve."""
    return json_response(
        404, {"error": {"code": "NotFound", "message": f"No such endpoint: {method} {path}"}}
    )
