"""Each RWS error class: the line an operator reads, and that no checkpoint moved.

A scripted Microsoft (pytest-httpserver) answers the token endpoint and the service
document, and the report with the error under test; the collector runs in-process, once.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from pytest_httpserver import HTTPServer
from structlog.testing import capture_logs
from werkzeug import Request, Response

from o365collector.app import Collector, RunOptions, RunResult
from o365collector.config.loader import parse_settings
from o365collector.state.sqlite import SqliteStateStore
from support.rws import CLIENT_ID, RWS_PATH, SECRET, TENANT_ID
from support.shared import SAMPLES, shared_or_skip

STREAM = "rws.MessageTrace"
LOOKBACK = 3600
SERVICE_DOC = (
    '<?xml version="1.0" encoding="utf-8"?><service xmlns="http://www.w3.org/2007/app" '
    'xmlns:atom="http://www.w3.org/2005/Atom"><workspace><atom:title>Default</atom:title>'
    '<collection href="MessageTrace"><atom:title>MessageTrace</atom:title></collection>'
    "</workspace></service>"
)
EMPTY_PAGE = '{"d":{"results":[]}}'
Handler = Callable[[Request], Response]


def _sample(name: str) -> str:
    """A captured Microsoft answer from ../shared/reference/samples (skips, or fails in CI, when
    the samples are not checked out)."""
    return shared_or_skip(SAMPLES / name).read_text(encoding="utf-8")


def _server_error() -> str:
    """The 500 body the service answered at the skiptoken ceiling (a Microsoft Q&A capture)."""
    sample = orjson.loads(_sample("msqa_rws_nextlink_and_500.json"))
    return orjson.dumps(sample["http_500_body_when_following_that_link"]).decode()


class Microsoft:
    """Token endpoint, service document and a report answering with ``report``."""

    def __init__(self, server: HTTPServer, report: Handler, service: Handler | None = None):
        self.server = server
        self.tokens = 0
        self.report_calls = 0
        server.expect_request(
            f"/{TENANT_ID}/oauth2/v2.0/token", method="POST"
        ).respond_with_handler(self._token)
        server.expect_request(f"{RWS_PATH}/", method="GET").respond_with_handler(
            service or (lambda _: Response(SERVICE_DOC, 200, content_type="application/xml"))
        )

        def counted(request: Request) -> Response:
            self.report_calls += 1
            return report(request)

        server.expect_request(f"{RWS_PATH}/MessageTrace", method="GET").respond_with_handler(
            counted
        )

    def _token(self, _: Request) -> Response:
        self.tokens += 1
        token = f'{{"token_type":"Bearer","expires_in":3600,"access_token":"tok-{self.tokens}"}}'
        return Response(token, 200, content_type="application/json")


def _run(
    server: HTTPServer, tmp_path: Path, **collection: Any
) -> tuple[RunResult, list[dict[str, Any]], datetime]:
    base = server.url_for("").rstrip("/")
    settings = parse_settings(
        {
            "state_dir": str(tmp_path / "state"),
            "tenants": [
                {
                    "name": "err",
                    "tenant_id": TENANT_ID,
                    "client_id": CLIENT_ID,
                    "client_secret": SECRET,
                    "endpoints": {"authority": base, "graph": base, "reporting": base + RWS_PATH},
                    "budget": {"requests": 10_000},
                    "streams": [STREAM],
                }
            ],
            "collection": {
                "initial_lookback_secs": LOOKBACK,
                "horizon_secs": LOOKBACK,
                "settle_delay_secs": 60,
                "retry": {
                    "initial_interval_secs": 0.01,
                    "max_interval_secs": 0.05,
                    "max_elapsed_secs": 0.3,
                    "request_timeout_secs": 0.5,
                    **collection.pop("retry", {}),
                },
                **collection,
            },
            "sinks": [{"type": "jsonl", "name": "file", "path": str(tmp_path / "out.jsonl")}],
        }
    )
    started = datetime.now(UTC)
    collector = Collector(settings, RunOptions(once=True, install_signal_handlers=False))
    with capture_logs() as logs:
        import asyncio

        result = asyncio.run(collector.run())
    return result, logs, started


def _assert_not_moved(tmp_path: Path, started: datetime, *, lanes_started: bool = True) -> None:
    store = SqliteStateStore(tmp_path / "state" / "state.db")
    try:
        lanes = [cp for _, stream, _, cp in store.all() if stream == STREAM]
    finally:
        store.close()
    assert bool(lanes) is lanes_started
    first = started - timedelta(seconds=LOOKBACK)
    for cp in lanes:
        assert cp.inflight is None and cp.next_link is None
        assert cp.watermark is not None and cp.watermark <= first + timedelta(seconds=2)
    out = tmp_path / "out.jsonl"
    assert not out.exists() or out.read_text() == ""


def _failure_line(result: RunResult, logs: list[dict[str, Any]]) -> str:
    """The stream's one failure, as ``run --once`` prints it and as the ERROR log says it."""
    assert len(result.failures) == 1, result.failures
    failed = [e for e in logs if e["event"] == "Stream failed."]
    assert failed and all(e["log_level"] == "error" for e in failed)
    assert failed[0]["stream"] == STREAM
    assert failed[0]["error"] in result.failures[0]
    assert SECRET not in repr(logs) and SECRET not in result.failures[0]
    return result.failures[0]


def test_401_html_renews_the_token_once_then_names_the_credential_fix(httpserver, tmp_path):
    html = _sample("sekoia_rws_error_401.html")
    ms = Microsoft(httpserver, lambda _: Response(html, 401, content_type="text/html"))
    result, logs, started = _run(httpserver, tmp_path)
    line = _failure_line(result, logs)
    assert "HTTP 401 from the Reporting Web Service" in line
    assert "401 - Unauthorized: Access is denied due to invalid credentials." in line
    assert "ReportingWebService.Read.All" in line and "outlook.office365.com" in line
    assert "still refused after renewing the token" in line
    assert ms.tokens >= 2  # renewed once per refusal
    _assert_not_moved(tmp_path, started)


def test_403_no_permission_names_the_missing_role(httpserver, tmp_path):
    body = _sample("sekoia_rws_error_403.json")
    ms = Microsoft(httpserver, lambda _: Response(body, 403, content_type="application/json"))
    result, logs, started = _run(httpserver, tmp_path)
    line = _failure_line(result, logs)
    assert "Global Reader or Security Reader" in line
    assert "No permission to access the report" in line
    assert ms.report_calls <= 6  # one per lane at most: never retried
    _assert_not_moved(tmp_path, started)


def test_403_on_the_service_document_stops_before_any_report_is_asked(httpserver, tmp_path):
    body = _sample("sekoia_rws_error_403.json")

    def refuse(_: Request) -> Response:
        return Response(body, 403, content_type="application/json")

    ms = Microsoft(httpserver, lambda _: Response(EMPTY_PAGE, 200), service=refuse)
    result, logs, started = _run(httpserver, tmp_path)
    assert "Global Reader or Security Reader" in _failure_line(result, logs)
    assert ms.report_calls == 0
    _assert_not_moved(tmp_path, started, lanes_started=False)


def test_404_says_the_report_is_not_offered(httpserver, tmp_path):
    not_found = (
        '{"odata.error":{"code":"","message":{"lang":"en-US","value":"Resource not found"}}}'
    )
    Microsoft(httpserver, lambda _: Response(not_found, 404, content_type="application/json"))
    result, logs, started = _run(httpserver, tmp_path)
    line = _failure_line(result, logs)
    assert "report MessageTrace is not offered to this tenant" in line
    assert "remove `rws.MessageTrace`" in line
    _assert_not_moved(tmp_path, started)


def test_400_is_a_loud_collector_bug(httpserver, tmp_path):
    body = _sample("msdocs_rws_error_400_partial.json")
    ms = Microsoft(httpserver, lambda _: Response(body, 400, content_type="application/json"))
    result, logs, started = _run(httpserver, tmp_path)
    line = _failure_line(result, logs)
    assert "collector bug" in line and "does not have a property named 'Organizations'" in line
    assert ms.report_calls <= 6
    _assert_not_moved(tmp_path, started)


@pytest.mark.parametrize(
    ("status", "make_body", "ctype", "says"),
    [
        (500, _server_error, "application/json", "HTTP 500: UnknownError: An error has occurred"),
        (503, lambda: "busy", "text/plain", "HTTP 503: busy"),
        (
            200,
            lambda: _sample("sekoia_rws_error_401.html"),
            "text/html",
            "HTTP 200 with an unexpected body (text/html",
        ),
        (200, lambda: SERVICE_DOC, "application/atom+xml", "HTTP 200 with an unexpected body"),
    ],
    ids=["500", "503", "html-200", "atom-200"],
)
def test_transient_answers_are_retried_then_reported_never_read_as_no_rows(
    httpserver, tmp_path, status, make_body, ctype, says
):
    body = make_body()
    ms = Microsoft(httpserver, lambda _: Response(body, status, content_type=ctype))
    result, logs, started = _run(httpserver, tmp_path)
    line = _failure_line(result, logs)
    assert says in line and "gave up after" in line
    retries = [e for e in logs if e["event"] == "Request failed; retrying."]
    assert retries and ms.report_calls > len(result.failures)
    _assert_not_moved(tmp_path, started)


def test_a_timeout_is_retried_then_reported(httpserver, tmp_path):
    def slow(_: Request) -> Response:
        time.sleep(0.6)
        return Response(EMPTY_PAGE, 200, content_type="application/json")

    Microsoft(httpserver, slow)
    # one lane, so the single-threaded scripted server answers one slow request at a time
    result, logs, started = _run(
        httpserver,
        tmp_path,
        mode="fixed_delay",
        fixed_delay_secs=60,
        retry={"max_elapsed_secs": 0.02},
    )
    line = _failure_line(result, logs)
    assert "connection timed out" in line and "gave up after" in line
    _assert_not_moved(tmp_path, started)


def test_429_waits_retry_after_then_collects(httpserver, tmp_path):
    answers = iter([Response('{"odata.error":{}}', 429, headers={"Retry-After": "1"})])

    def throttled_once(_: Request) -> Response:
        return next(answers, Response(EMPTY_PAGE, 200, content_type="application/json"))

    Microsoft(httpserver, throttled_once)
    result, logs, started = _run(httpserver, tmp_path, retry={"max_elapsed_secs": 30})
    assert result.failures == []
    retry = [e for e in logs if e["event"] == "Request failed; retrying."]
    assert retry[0]["reason"].startswith("HTTP 429 throttled")
    assert retry[0]["retry_in_secs"] == 1.0  # Retry-After obeyed exactly
    store = SqliteStateStore(tmp_path / "state" / "state.db")
    try:
        marks = [cp.watermark for _, s, _, cp in store.all() if s == STREAM]
    finally:
        store.close()
    assert max(m for m in marks if m) > started - timedelta(seconds=120)  # it did move
