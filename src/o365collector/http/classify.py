"""Turn an HTTP response or transport failure into one action; the retry loop acts on it."""

from __future__ import annotations

import enum
import re
from collections.abc import Callable
from dataclasses import dataclass

import httpx
import orjson

from o365collector.http.backoff import parse_retry_after

GRAPH_SP_APP_ID = "8bd644d1-64a1-4d4b-ae52-2e0cbf64e373"
_HTML_TITLE = re.compile(r"<title>(.*?)</title>", re.IGNORECASE | re.DOTALL)


class Action(enum.Enum):
    """What to do with a response."""

    OK = "ok"
    RETRY = "retry"  # transient: network, timeout, 5xx, a 200 that is not JSON
    RATE_LIMITED = "rate_limited"  # 429: wait Retry-After, tell the budget
    REFRESH_AUTH = "refresh_auth"  # 401: renew the token once, then it is FAIL_AUTH
    FAIL_AUTH = "fail_auth"
    FAIL_PERMISSION = "fail_permission"  # 403
    FAIL_SETUP = "fail_setup"  # Graph service principal missing, report not offered (404)
    FAIL_REQUEST = "fail_request"  # 400: our query is wrong


@dataclass(frozen=True, slots=True)
class Verdict:
    """An action and what an operator should read about it."""

    action: Action
    reason: str
    retry_after_secs: float | None = None
    body: object = None  # the decoded JSON body when the action is OK


def classify_transport_error(exc: httpx.TransportError) -> Verdict:
    """Network failures and timeouts are transient."""
    kind = "timed out" if isinstance(exc, httpx.TimeoutException) else "failed"
    return Verdict(Action.RETRY, f"connection {kind}: {type(exc).__name__}: {exc}")


def classify_graph(  # noqa: PLR0911 - one return per row of the table
    response: httpx.Response, decode: Callable[[bytes], object] | None = None
) -> Verdict:
    """Classify a Microsoft Graph response (api-facts §3.3).

    ``decode`` turns a 200 body into the verdict's ``body`` and raises ``ValueError`` when
    it is not a page (then the 200 is retried); by default the body must be a JSON object
    with a ``value`` list.
    """
    status = response.status_code
    if status == 200:
        if decode is not None:
            try:
                body = decode(response.content)
            except ValueError as exc:
                ctype = response.headers.get("content-type", "?")
                return Verdict(Action.RETRY, f"HTTP 200 with an unexpected body ({ctype}): {exc}")
            return Verdict(Action.OK, "ok", body=body)
        try:
            body = orjson.loads(response.content)
        except orjson.JSONDecodeError:
            ctype = response.headers.get("content-type", "?")
            return Verdict(Action.RETRY, f"HTTP 200 with a non-JSON body ({ctype})")
        if not isinstance(body, dict) or not isinstance(body.get("value"), list):
            return Verdict(Action.RETRY, "HTTP 200 without a `value` list")
        return Verdict(Action.OK, "ok", body=body)
    message = _graph_error_message(response)
    if status == 429:
        retry_after = parse_retry_after(response.headers.get("retry-after"))
        return Verdict(Action.RATE_LIMITED, f"HTTP 429 throttled: {message}", retry_after)
    if status == 401:
        if GRAPH_SP_APP_ID in message or "service principal" in message.lower():
            return Verdict(
                Action.FAIL_SETUP,
                "Graph refused the app because the tenant has no service principal for "
                f"app {GRAPH_SP_APP_ID}: create it with `New-MgServicePrincipal -AppId "
                f"{GRAPH_SP_APP_ID}` (provisioning can take hours). Microsoft said: {message}",
            )
        return Verdict(Action.REFRESH_AUTH, f"HTTP 401: {message}")
    if status == 403:
        return Verdict(
            Action.FAIL_PERMISSION,
            "HTTP 403: the app lacks ExchangeMessageTrace.Read.All (application permission, "
            f"admin consent granted). Microsoft said: {message}",
        )
    if status == 400:
        return Verdict(Action.FAIL_REQUEST, f"HTTP 400: {message}")
    if status == 404:
        return Verdict(Action.FAIL_SETUP, f"HTTP 404: endpoint not found: {message}")
    if status in (408, 409, 425) or status >= 500:
        retry_after = parse_retry_after(response.headers.get("retry-after"))
        return Verdict(Action.RETRY, f"HTTP {status}: {message}", retry_after)
    return Verdict(Action.FAIL_REQUEST, f"HTTP {status}: {message}")


def _graph_error_message(response: httpx.Response) -> str:
    try:
        body = orjson.loads(response.content)
    except orjson.JSONDecodeError:
        text = response.text.strip().replace("\n", " ")
        return text[:200] or "(empty body)"
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        err = body["error"]
        return f"{err.get('code', '?')}: {err.get('message', '')}"
    return str(body)[:200]


# --- Reporting Web Service (api-facts §2.6) ------------------------------------------------

RWS_ROLE_FIX = (
    "assign the app's service principal the Global Reader or Security Reader role "
    "(Entra ID > Roles and administrators), then restart so a fresh token carries it"
)
RWS_CREDENTIALS_FIX = (
    "check tenant_id, client_id and the credential, that the token scope is Exchange "
    "Online's (https://outlook.office365.com/.default), and that the app has the Office 365 "
    "Exchange Online application permission ReportingWebService.Read.All with admin consent"
)
_NO_PERMISSION = "no permission to access the report"


def classify_reporting(  # noqa: PLR0911 - one return per row of the table
    response: httpx.Response, decode: Callable[[bytes], object] | None = None
) -> Verdict:
    """Classify a Reporting Web Service response (api-facts §2.6).

    ``decode`` turns a 200 body into the verdict's ``body`` (a report page, the service
    document) and raises ``ValueError`` for anything else: an HTML sign-in page, Atom XML
    where JSON was asked, an error object. Such a 200 is retried, never read as "no rows".
    Without ``decode`` a 200 must be a JSON object.
    """
    status = response.status_code
    if status == 200:
        try:
            body = (decode or _json_object)(response.content)
        except ValueError as exc:
            ctype = response.headers.get("content-type", "?")
            return Verdict(Action.RETRY, f"HTTP 200 with an unexpected body ({ctype}): {exc}")
        return Verdict(Action.OK, "ok", body=body)
    message = _rws_error_message(response)
    report = _report_name(response)
    if status == 401:
        return Verdict(
            Action.REFRESH_AUTH,
            f"HTTP 401 from the Reporting Web Service, credentials refused: {RWS_CREDENTIALS_FIX}. "
            f"Microsoft said: {message}",
        )
    if status == 403:
        if _NO_PERMISSION in message.lower():
            return Verdict(
                Action.FAIL_PERMISSION,
                f"HTTP 403: no directory role may read reports: {RWS_ROLE_FIX}. "
                f"Microsoft said: {message}",
            )
        return Verdict(
            Action.FAIL_PERMISSION,
            f"HTTP 403: {RWS_ROLE_FIX}; and check ReportingWebService.Read.All has admin "
            f"consent. Microsoft said: {message}",
        )
    if status == 404:
        return Verdict(
            Action.FAIL_SETUP,
            f"HTTP 404: report {report} is not offered to this tenant (it is missing from the "
            f"tenant's service document, or retired): remove `rws.{report}` from the tenant's "
            f"streams, or license the tenant for it. Microsoft said: {message}",
        )
    if status == 429:
        retry_after = parse_retry_after(response.headers.get("retry-after"))
        return Verdict(Action.RATE_LIMITED, f"HTTP 429 throttled: {message}", retry_after)
    if status == 400:
        return Verdict(
            Action.FAIL_REQUEST,
            f"HTTP 400: the Reporting Web Service rejected the query for {report}; this is a "
            f"collector bug, please report it. Microsoft said: {message}",
        )
    if status in (408, 409, 425) or status >= 500:
        retry_after = parse_retry_after(response.headers.get("retry-after"))
        return Verdict(Action.RETRY, f"HTTP {status}: {message}", retry_after)
    return Verdict(Action.FAIL_REQUEST, f"HTTP {status}: {message}")


def _json_object(content: bytes) -> object:
    try:
        body = orjson.loads(content)
    except orjson.JSONDecodeError as exc:
        raise ValueError("the body is not JSON") from exc
    if not isinstance(body, dict):
        raise ValueError("the body is not a JSON object")  # noqa: TRY004 - decoder contract
    return body


def _report_name(response: httpx.Response) -> str:
    """The report a request asked for: the last segment of its path (``?`` if none)."""
    try:
        path = response.request.url.path
    except RuntimeError:  # a response built without its request (tests)
        return "?"
    segment = path.rstrip("/").rsplit("/", 1)[-1]
    return "?" if not segment or segment.lower() == "reporting.svc" else segment


def _rws_error_message(response: httpx.Response) -> str:
    """What RWS said: OData verbose/light error, its 403 object, or an HTML page's title."""
    try:
        body = orjson.loads(response.content)
    except orjson.JSONDecodeError:
        text = response.text
        title = _HTML_TITLE.search(text)
        if title is not None:
            return title.group(1).strip()
        return text.strip().replace("\n", " ")[:200] or "(empty body)"
    if isinstance(body, dict):
        error = body.get("odata.error") or body.get("error")
        if isinstance(error, dict):
            inner = error.get("message")
            text = str(inner.get("value", "") if isinstance(inner, dict) else inner or "")
            code = error.get("code") or ""
            return f"{code}: {text}" if code else str(text)
        if "Message" in body:
            return str(body["Message"])
    return str(body)[:200]
