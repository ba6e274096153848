"""The classification table: one Action per (status, headers, body)."""

from __future__ import annotations

import httpx
import orjson
import pytest

from o365collector.http.classify import (
    GRAPH_SP_APP_ID,
    Action,
    classify_graph,
    classify_transport_error,
)
from support.shared import SAMPLES, shared_or_skip

REQUEST = httpx.Request("GET", "https://graph.microsoft.com/x")
JSON = {"content-type": "application/json"}


def _response(
    status: int, body: object = b"", headers: dict[str, str] | None = None
) -> httpx.Response:
    content = body if isinstance(body, bytes) else orjson.dumps(body)
    return httpx.Response(status, headers=headers or {}, content=content, request=REQUEST)


def _error(code: str, message: str) -> dict[str, object]:
    return {"error": {"code": code, "message": message}}


@pytest.mark.parametrize(
    ("status", "headers", "body", "action"),
    [
        (200, JSON, {"value": []}, Action.OK),
        (200, JSON, {"value": [{"id": "1"}], "@odata.nextLink": "https://x"}, Action.OK),
        (200, {"content-type": "text/html"}, b"<html><body>Sign in</body></html>", Action.RETRY),
        (200, JSON, {"error": "nope"}, Action.RETRY),
        (200, JSON, {"value": "not a list"}, Action.RETRY),
        (200, JSON, [1, 2], Action.RETRY),
        (200, JSON, b"", Action.RETRY),
        (429, {"Retry-After": "7"}, _error("TooManyRequests", "slow down"), Action.RATE_LIMITED),
        (429, {}, b"", Action.RATE_LIMITED),
        (401, JSON, _error("InvalidAuthenticationToken", "Lifetime expired"), Action.REFRESH_AUTH),
        (401, {}, b"", Action.REFRESH_AUTH),
        (403, JSON, _error("Forbidden", "Missing role"), Action.FAIL_PERMISSION),
        (400, JSON, _error("BadRequest", "Invalid filter clause"), Action.FAIL_REQUEST),
        (404, JSON, _error("NotFound", "Resource not found"), Action.FAIL_SETUP),
        (500, JSON, _error("InternalServerError", "oops"), Action.RETRY),
        (502, {"content-type": "text/html"}, b"<html>Bad gateway</html>", Action.RETRY),
        (503, {"Retry-After": "30"}, b"", Action.RETRY),
        (504, {}, b"", Action.RETRY),
        (408, {}, b"", Action.RETRY),
        (405, {}, b"", Action.FAIL_REQUEST),
    ],
)
def test_classify_table(status: int, headers: dict[str, str], body: object, action: Action) -> None:
    verdict = classify_graph(_response(status, body, headers))
    assert verdict.action is action
    assert verdict.reason
    if action is Action.OK:
        assert verdict.body == body
    else:
        assert verdict.body is None


def test_429_carries_retry_after_seconds() -> None:
    verdict = classify_graph(_response(429, _error("TooManyRequests", "x"), {"Retry-After": "7"}))
    assert verdict.action is Action.RATE_LIMITED
    assert verdict.retry_after_secs == 7.0
    assert "TooManyRequests" in verdict.reason


def test_429_without_retry_after() -> None:
    verdict = classify_graph(_response(429))
    assert verdict.action is Action.RATE_LIMITED
    assert verdict.retry_after_secs is None


def test_503_carries_retry_after() -> None:
    verdict = classify_graph(_response(503, b"", {"Retry-After": "30"}))
    assert verdict.retry_after_secs == 30.0


def test_error_message_is_in_the_reason() -> None:
    verdict = classify_graph(_response(400, _error("BadRequest", "Invalid filter clause")))
    assert "BadRequest: Invalid filter clause" in verdict.reason
    assert "400" in verdict.reason


def test_html_body_reason_names_content_type() -> None:
    verdict = classify_graph(
        _response(200, b"<html/>", {"content-type": "text/html; charset=utf-8"})
    )
    assert "text/html" in verdict.reason


def test_401_missing_service_principal_is_setup_failure() -> None:
    sample = shared_or_skip(SAMPLES / "msgraph_401_missing_service_principal_partial.json")
    verdict = classify_graph(_response(401, sample.read_bytes(), JSON))
    assert verdict.action is Action.FAIL_SETUP
    assert "8bd644d1-64a1-4d4b-ae52-2e0cbf64e373" in verdict.reason
    assert GRAPH_SP_APP_ID == "8bd644d1-64a1-4d4b-ae52-2e0cbf64e373"
    assert "New-MgServicePrincipal" in verdict.reason


def test_403_names_the_permission() -> None:
    verdict = classify_graph(_response(403, _error("Forbidden", "Missing role")))
    assert verdict.action is Action.FAIL_PERMISSION
    assert "ExchangeMessageTrace.Read.All" in verdict.reason
    assert "Missing role" in verdict.reason


def test_long_non_json_error_body_is_truncated() -> None:
    verdict = classify_graph(_response(500, b"x" * 5000))
    assert verdict.action is Action.RETRY
    assert len(verdict.reason) < 300


@pytest.mark.parametrize(
    ("exc", "word"),
    [
        (httpx.ConnectError("connection refused", request=REQUEST), "failed"),
        (httpx.ReadTimeout("read timed out", request=REQUEST), "timed out"),
        (httpx.ConnectTimeout("connect timed out", request=REQUEST), "timed out"),
        (httpx.RemoteProtocolError("peer closed", request=REQUEST), "failed"),
    ],
)
def test_transport_errors_retry(exc: httpx.TransportError, word: str) -> None:
    verdict = classify_transport_error(exc)
    assert verdict.action is Action.RETRY
    assert word in verdict.reason
    assert type(exc).__name__ in verdict.reason
