"""Turn an HTTP response or transport failure into one action; the retry loop acts on it."""

from __future__ import annotations

import enum
from dataclasses import dataclass

import httpx
import orjson

from o365collector.http.backoff import parse_retry_after

GRAPH_SP_APP_ID = "8bd644d1-64a1-4d4b-ae52-2e0cbf64e373"


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


def classify_graph(response: httpx.Response) -> Verdict:  # noqa: PLR0911 - one return per row of the table
    """Classify a Microsoft Graph response (api-facts §3.3)."""
    status = response.status_code
    if status == 200:
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
