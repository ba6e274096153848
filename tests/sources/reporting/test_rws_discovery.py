"""Discovery: the service document is read once per tenant and gates each report's stream."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import httpx
import pytest
from structlog.testing import capture_logs

from o365collector.errors import PermissionDeniedError
from o365collector.pipeline.offered import OfferedReportWorker
from o365collector.pipeline.stream import StreamWorker
from o365collector.sources.reporting.discovery import ServiceDocument, parse_service_document
from support.rws import token_response

DOC = (
    b'<?xml version="1.0" encoding="utf-8"?><service xml:base="https://r/x.svc/" '
    b'xmlns="http://www.w3.org/2007/app" xmlns:atom="http://www.w3.org/2005/Atom"><workspace>'
    b'<atom:title>Default</atom:title><collection href="MessageTrace"><atom:title>MessageTrace'
    b'</atom:title></collection><collection href="https://r/x.svc/MailTraffic" /></workspace>'
    b"</service>"
)


def test_the_service_document_names_its_collections() -> None:
    assert parse_service_document(DOC) == {"messagetrace", "mailtraffic"}


@pytest.mark.parametrize(
    ("body", "says"),
    [
        (b"<html><title>Sign in</title></html>", "not an Atom <service>"),
        (b'{"d": {"EntitySets": []}}', "not XML"),
        (b'<!DOCTYPE service [<!ENTITY a "b">]><service/>', "document type"),
    ],
)
def test_anything_but_a_service_document_is_refused(body: bytes, says: str) -> None:
    with pytest.raises(ValueError, match=says):
        parse_service_document(body)


async def test_one_request_per_tenant_and_a_failure_is_shared_for_a_while(
    api_factory, clock
) -> None:
    asked = []
    answers = [httpx.Response(403, json={"Message": "No permission to access the report"})]

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.host == "login.microsoftonline.com":
            return token_response()
        asked.append(str(request.url))
        return answers.pop(0) if answers else httpx.Response(200, content=DOC)

    doc = ServiceDocument(api_factory(handler), base="https://r/x.svc", scope="s", clock=clock)
    for _ in range(2):
        with pytest.raises(PermissionDeniedError, match="Global Reader"):
            await doc.offered()
    assert asked == ["https://r/x.svc/"]
    clock.t += 61
    offered = await asyncio.gather(doc.offered(), doc.offered())
    assert offered == [frozenset({"messagetrace", "mailtraffic"})] * 2
    assert len(asked) == 2


class FakeDiscovery:
    def __init__(self, *answers: frozenset[str]) -> None:
        self.answers = list(answers)
        self.calls = 0

    async def offered(self, *, refresh: bool = False) -> frozenset[str]:
        self.calls += 1
        return self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]


def _worker(discovery: FakeDiscovery, recheck_secs: float = 0.01) -> OfferedReportWorker:
    ctx = SimpleNamespace(
        identity=SimpleNamespace(tenant="t", stream="rws.MailTraffic"),
        progress=SimpleNamespace(state="starting"),
    )
    plan = SimpleNamespace(lanes=[])
    return OfferedReportWorker(
        ctx,  # type: ignore[arg-type]
        None,  # type: ignore[arg-type]
        plan,  # type: ignore[arg-type]
        discovery=discovery,  # type: ignore[arg-type]
        reports=("MailTraffic",),
        recheck_secs=recheck_secs,
    )


@pytest.fixture
def lanes_ran(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    ran: list[bool] = []

    async def run(self, stop, *, once):
        ran.append(once)

    monkeypatch.setattr(StreamWorker, "run", run)
    return ran


async def test_an_offered_report_runs_its_lanes(lanes_ran) -> None:
    await _worker(FakeDiscovery(frozenset({"mailtraffic"}))).run(asyncio.Event(), once=True)
    assert lanes_ran == [True]


async def test_a_missing_report_is_reported_once_and_skipped_without_failing(lanes_ran) -> None:
    worker = _worker(FakeDiscovery(frozenset({"messagetrace"})))
    with capture_logs() as logs:
        await worker.run(asyncio.Event(), once=True)
        await worker.run(asyncio.Event(), once=True)
    assert lanes_ran == []
    errors = [e for e in logs if e["log_level"] == "error"]
    assert len(errors) == 1
    assert errors[0]["report"] == "MailTraffic"
    assert "remove `rws.MailTraffic`" in errors[0]["fix"]
    assert worker.progress.state == "skipped"


async def test_a_daemon_starts_the_stream_once_the_report_appears(lanes_ran) -> None:
    discovery = FakeDiscovery(frozenset(), frozenset(), frozenset({"mailtraffic"}))
    with capture_logs() as logs:
        await _worker(discovery).run(asyncio.Event(), once=False)
    assert lanes_ran == [False]
    assert discovery.calls == 3
    assert [e["log_level"] for e in logs] == ["error", "info"]


async def test_a_daemon_stops_waiting_when_asked(lanes_ran) -> None:
    stop = asyncio.Event()
    stop.set()
    await _worker(FakeDiscovery(frozenset()), recheck_secs=60).run(stop, once=False)
    assert lanes_ran == []
