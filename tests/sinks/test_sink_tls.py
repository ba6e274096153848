"""The four HTTP sinks (Sekoia, Splunk HEC, Elasticsearch, HTTP) over real TLS.

The receiver is pytest-httpserver over HTTPS, its certificate issued by the suite's
private trustme CA. A sink whose ``ca_file`` is that CA delivers; one given another CA,
or none (the system store, which does not know the private CA), or facing a certificate
the CA issued for another host name, is refused in the handshake: nothing reaches the
receiver, and the batch is kept for a retry whose reason names the certificate check.
Only ``tls_verify: false`` delivers to a receiver it cannot verify.
"""

from __future__ import annotations

import json
import ssl
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import trustme
from pydantic import TypeAdapter
from pytest_httpserver import HTTPServer
from sinks_support import Certs, FakeClock, make_events
from werkzeug import Request, Response

from o365collector.config.sinks import SinkSettings
from o365collector.sinks.base import DeliveryResult, DeliveryStatus
from o365collector.sinks.factory import build_sink
from o365collector.sinks.probe import ProbeError
from support.https import https_server

ADAPTER: TypeAdapter[Any] = TypeAdapter(SinkSettings)
EVENTS = 3


def _sekoia(body: bytes) -> Response:
    count = len(json.loads(body)["jsons"])
    return Response(json.dumps({"event_ids": [str(i) for i in range(count)]}), status=200)


def _hec(body: bytes) -> Response:
    del body
    return Response('{"text":"Success","code":0}', status=200, content_type="application/json")


def _bulk(body: bytes) -> Response:
    count = len(body.splitlines()) // 2  # an action line and a document per event
    items = [{"create": {"_index": "o365-message_trace", "status": 201}}] * count
    text = json.dumps({"took": 1, "errors": False, "items": items})
    return Response(text, status=200, content_type="application/json")


def _plain(body: bytes) -> Response:
    del body
    return Response("", status=200)


# kind -> (delivery path, settings without TLS keys, the receiver's answer to a delivery)
KINDS: dict[str, tuple[str, Callable[[str], dict[str, Any]], Callable[[bytes], Response]]] = {
    "sekoia": (
        "/batch",
        lambda base: {"type": "sekoia", "base_url": base, "intake_key": "K-123456"},
        _sekoia,
    ),
    "splunk_hec": (
        "/services/collector/event",
        lambda base: {"type": "splunk_hec", "url": base, "token": "hec-tok-1"},
        _hec,
    ),
    "elasticsearch": (
        "/_bulk",
        lambda base: {"type": "elasticsearch", "url": base, "index": "o365-{stream}"},
        _bulk,
    ),
    "http": ("/ingest", lambda base: {"type": "http", "url": f"{base}ingest"}, _plain),
}


@pytest.fixture(scope="module")
def stranger(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The certificate of a CA that signed nothing the receivers present."""
    path = tmp_path_factory.mktemp("stranger") / "stranger-ca.pem"
    trustme.CA().cert_pem.write_to_path(str(path))
    return path


@pytest.fixture
def receiver(certs: Certs) -> Iterator[HTTPServer]:
    """HTTPS on 127.0.0.1 with a certificate from the suite's CA (``certs.ca_file``)."""
    with https_server(certs.ca) as server:
        yield server


@pytest.fixture
def misnamed(certs: Certs) -> Iterator[HTTPServer]:
    """HTTPS on 127.0.0.1 with a certificate from the suite's CA for another host name."""
    with https_server(certs.ca, ("receiver.contoso.test",)) as server:
        yield server


def _script(server: HTTPServer, kind: str) -> None:
    path, _, answer = KINDS[kind]
    server.expect_request(path, method="POST").respond_with_handler(
        lambda request: answer(request.get_data())
    )


@pytest.fixture
def deliver(clock: FakeClock) -> Callable[..., Any]:
    """``await deliver(kind, server, **tls)``: build, start, send three events, close."""

    async def run(kind: str, server: HTTPServer, **tls: Any) -> DeliveryResult:
        settings = {**KINDS[kind][1](server.url_for("/")), **tls}
        sink = build_sink(ADAPTER.validate_python(settings), clock)
        await sink.start()
        try:
            return await sink.send(make_events(EVENTS))
        finally:
            await sink.close()

    return run


def _delivered(server: HTTPServer) -> list[Request]:
    return [request for request, _ in server.log]


@pytest.mark.parametrize("kind", KINDS)
async def test_a_trusted_ca_file_delivers_over_verified_tls(
    kind: str, receiver: HTTPServer, certs: Certs, deliver: Any
) -> None:
    """With ``ca_file`` the CA that signed the receiver's certificate, the batch is delivered
    in one request to the sink's path, every event in it."""
    _script(receiver, kind)
    result = await deliver(kind, receiver, ca_file=str(certs.ca_file))
    assert result.status is DeliveryStatus.DELIVERED, result.reason
    assert receiver.url_for("/").startswith("https://127.0.0.1:")
    (request,) = _delivered(receiver)
    assert request.path == KINDS[kind][0]
    body = request.get_data()
    assert all(f"rcpt{n}@fabrikam.com".encode() in body for n in range(EVENTS)), body[:300]


# case -> (the receiver fixture, which CA file the sink is given, what the refusal says)
REFUSED = {
    "another-ca": ("receiver", "stranger", "unable to get local issuer certificate"),
    "system-store": ("receiver", None, "unable to get local issuer certificate"),
    "another-host": ("misnamed", "suite", "IP address mismatch"),
}


def _refusing(request: pytest.FixtureRequest, case: str) -> tuple[HTTPServer, dict[str, str]]:
    """The receiver of ``case`` and the sink's TLS keys for it."""
    server_fixture, ca, _ = REFUSED[case]
    server: HTTPServer = request.getfixturevalue(server_fixture)
    if ca is None:
        return server, {}
    if ca == "stranger":
        return server, {"ca_file": str(request.getfixturevalue("stranger"))}
    return server, {"ca_file": str(request.getfixturevalue("certs").ca_file)}


@pytest.mark.parametrize("case", REFUSED)
@pytest.mark.parametrize("kind", KINDS)
async def test_an_unverifiable_receiver_is_refused_in_the_handshake(
    kind: str, case: str, request: pytest.FixtureRequest, deliver: Any
) -> None:
    """Another CA's ca_file, no ca_file (the system store) or a certificate for another host:
    the batch is kept for a retry naming the failed check, and nothing reaches the receiver."""
    server, tls = _refusing(request, case)
    _script(server, kind)
    result = await deliver(kind, server, **tls)
    assert result.status is DeliveryStatus.RETRY
    assert result.pending == frozenset(range(EVENTS)) and result.rejected == {}  # all again
    assert "CERTIFICATE_VERIFY_FAILED" in result.reason
    assert REFUSED[case][2] in result.reason
    assert _delivered(server) == []


@pytest.mark.parametrize("kind", KINDS)
async def test_check_names_ca_file_for_a_receiver_signed_by_another_ca(
    kind: str, receiver: HTTPServer, stranger: Path, clock: FakeClock
) -> None:
    """``check``'s probe of the sink fails as a TLS problem whose fix is ``ca_file``."""
    settings = {**KINDS[kind][1](receiver.url_for("/")), "ca_file": str(stranger)}
    sink = build_sink(ADAPTER.validate_python(settings), clock)
    with pytest.raises(ProbeError) as refused:
        await sink.probe()
    assert refused.value.problem == "sink_tls"
    assert "ca_file" in refused.value.fix
    assert "CERTIFICATE_VERIFY_FAILED" in str(refused.value)
    assert _delivered(receiver) == []


@pytest.mark.parametrize("kind", KINDS)
async def test_tls_verify_false_delivers_to_an_unverified_receiver(
    kind: str, receiver: HTTPServer, deliver: Any
) -> None:
    """``tls_verify: false`` (no ca_file) is the one way to deliver without verification."""
    _script(receiver, kind)
    result = await deliver(kind, receiver, tls_verify=False)
    assert result.status is DeliveryStatus.DELIVERED, result.reason
    assert len(_delivered(receiver)) == 1


def test_the_receivers_here_really_speak_tls(receiver: HTTPServer, certs: Certs) -> None:
    """Guard: the receiver answers only a TLS client that trusts the suite's CA."""
    receiver.expect_request("/").respond_with_data("hello")
    trusted = ssl.create_default_context(cafile=str(certs.ca_file))
    assert httpx.get(receiver.url_for("/"), verify=trusted).text == "hello"
    with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
        httpx.get(receiver.url_for("/"))
