"""``check`` probes every sink for real: real receivers on loopback, good and bad setups.

Devo and syslog meet a TLS server that requires a client certificate (and a private
rsyslogd); the HTTP sinks meet pytest-httpserver; the file sink meets folders it may and
may not write. Probes deliver nothing, never print a secret, and a failed or unprobeable
sink makes the whole check fail.
"""

from __future__ import annotations

import asyncio
import base64
import io
import ssl
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from pydantic import TypeAdapter
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

sys.path.insert(0, str(Path(__file__).parents[1] / "sinks"))

from sinks_servers import RSYSLOG_SKIP, RSYSLOGD, CaptureServer, Rsyslog
from sinks_support import Certs, free_port, make_certs

from o365collector.check import sinks as check_sinks
from o365collector.check.model import Finding
from o365collector.check.render import render
from o365collector.check.sinks import probe_sink
from o365collector.config.sinks import SinkSettings
from support.auth import check, config, tenant_config

ADAPTER: TypeAdapter[Any] = TypeAdapter(SinkSettings)
TOKEN = "hec-token-5b1e2c7d-very-secret"
BAD_TOKEN = "hec-token-wrong-0000-also-secret"
PASSWORD = "elastic-pass-9f8e7d6c"
BAD_PASSWORD = "elastic-wrong-1a2b3c4d"
INTAKE_KEY = "sekoia-intake-key-3c4d5e6f"
BEARER = "http-bearer-7a6b5c4d3e"
KEY_PASSWORD = "pkcs-password-1234abcd"
SECRETS = (TOKEN, BAD_TOKEN, PASSWORD, BAD_PASSWORD, INTAKE_KEY, BEARER, KEY_PASSWORD)


def probe(settings: dict[str, Any], limit: float = 5.0) -> Finding:
    parsed = ADAPTER.validate_python(settings)
    target = f"sink {settings.get('name', settings['type'])}"
    result = asyncio.run(probe_sink(target, parsed, limit))
    text = str(result)
    for secret in SECRETS:
        assert secret not in text, f"secret in finding: {result}"
    if result.status == "fail":
        assert result.problem and result.fix, result
    else:
        assert result.detail, result
    return result


# ---------------------------------------------------------------------------------- Devo


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certs:
    return make_certs(tmp_path_factory.mktemp("certs"))


@pytest.fixture(scope="module")
def stranger(tmp_path_factory: pytest.TempPathFactory) -> Certs:
    """Certificates from another CA: a client the receiver does not trust."""
    return make_certs(tmp_path_factory.mktemp("stranger"))


@pytest.fixture
def devo_server(certs: Certs) -> Iterator[CaptureServer]:
    server = CaptureServer(certs).start()
    yield server
    server.stop()


def devo(server: CaptureServer, certs: Certs, client: Certs | None = None, **extra: Any) -> Any:
    client = client or certs
    return {
        "type": "devo",
        "name": "devo",
        "host": "127.0.0.1",
        "port": server.port,
        "ca_file": str(certs.ca_file),
        "cert_file": str(client.client_cert),
        "key_file": str(client.client_key),
        **extra,
    }


def test_devo_good_certificate_passes_and_sends_nothing(devo_server, certs) -> None:
    finding = probe(devo(devo_server, certs))
    assert finding.status == "pass", finding
    assert "TLSv1.3 handshake with 127.0.0.1" in finding.detail
    assert "accepted the connection" in finding.detail
    assert "client certificate was offered" in finding.detail
    assert devo_server.peer_certs and devo_server.peer_certs[0] is not None
    assert devo_server.data == b""  # nothing was delivered


def test_devo_refused_certificate_tls13_fails_naming_the_certificate(
    devo_server, certs, stranger
) -> None:
    finding = probe(devo(devo_server, certs, client=stranger))
    assert (finding.status, finding.problem) == ("fail", "sink_client_cert_refused"), finding
    assert "client certificate" in finding.detail
    assert "cert_file" in finding.fix
    assert devo_server.handshake_failures == 1


def test_devo_refused_certificate_tls12_fails_in_the_handshake(certs, stranger) -> None:
    server = CaptureServer(certs)
    assert server.context is not None
    server.context.maximum_version = ssl.TLSVersion.TLSv1_2
    server.start()
    try:
        finding = probe(devo(server, certs, client=stranger))
    finally:
        server.stop()
    assert (finding.status, finding.problem) == ("fail", "sink_client_cert_refused"), finding
    assert "cert_file" in finding.fix


def test_devo_untrusted_server_fails_naming_ca_file(devo_server, certs, stranger) -> None:
    settings = devo(devo_server, certs, ca_file=str(stranger.ca_file))
    finding = probe(settings)
    assert (finding.status, finding.problem) == ("fail", "sink_tls"), finding
    assert "ca_file" in finding.fix


def test_devo_relay_over_plain_tcp() -> None:
    server = CaptureServer().start()
    try:
        finding = probe(
            {"type": "devo", "host": "127.0.0.1", "port": server.port, "transport": "tcp"}
        )
    finally:
        server.stop()
    assert finding.status == "pass", finding
    assert "TCP connection" in finding.detail and "relay" in finding.detail
    assert server.data == b""


def test_devo_nobody_listening_fails(certs) -> None:
    settings = {
        "type": "devo",
        "host": "127.0.0.1",
        "port": free_port(),
        "ca_file": str(certs.ca_file),
        "cert_file": str(certs.client_cert),
        "key_file": str(certs.client_key),
    }
    finding = probe(settings)
    assert (finding.status, finding.problem) == ("fail", "sink_unreachable"), finding
    assert "127.0.0.1" in finding.detail and "listens" in finding.fix


def test_devo_unreadable_key_password_is_a_config_failure_without_the_password(
    devo_server, certs, tmp_path
) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    key = load_pem_private_key(certs.client_key.read_bytes(), None)
    locked = tmp_path / "locked.key"
    locked.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(b"the-right-password"),
        )
    )
    settings = devo(devo_server, certs, key_file=str(locked), private_key_password=KEY_PASSWORD)
    finding = probe(settings)
    assert (finding.status, finding.problem) == ("fail", "sink_config"), finding


# -------------------------------------------------------------------------------- syslog


@pytest.fixture(scope="module")
def rsyslog(tmp_path_factory: pytest.TempPathFactory, certs: Certs) -> Iterator[Rsyslog]:
    if RSYSLOGD is None:
        pytest.skip(RSYSLOG_SKIP)
    server = Rsyslog(tmp_path_factory.mktemp("rsyslog"), certs).start()
    yield server
    server.stop()


def syslog(rsyslog: Rsyslog, transport: str, **extra: Any) -> Any:
    return {
        "type": "syslog",
        "name": f"syslog-{transport}",
        "host": "127.0.0.1",
        "port": rsyslog.ports[transport],
        "transport": transport,
        **extra,
    }


def test_syslog_tcp_connects_and_sends_nothing(rsyslog) -> None:
    finding = probe(syslog(rsyslog, "tcp"))
    assert finding.status == "pass", finding
    assert "TCP connection to 127.0.0.1" in finding.detail and "nothing was sent" in finding.detail
    assert rsyslog.entries("tcp") == []


def test_syslog_tls_with_client_certificate(rsyslog, certs) -> None:
    tls = {
        "ca_file": str(certs.ca_file),
        "cert_file": str(certs.client_cert),
        "key_file": str(certs.client_key),
    }
    finding = probe(syslog(rsyslog, "tls", **tls))
    assert finding.status == "pass", finding
    assert "handshake with 127.0.0.1" in finding.detail
    assert "certificate was verified" in finding.detail
    assert rsyslog.entries("tls") == []


def test_syslog_tls_untrusted_server(rsyslog, stranger) -> None:
    finding = probe(syslog(rsyslog, "tls", ca_file=str(stranger.ca_file)))
    assert (finding.status, finding.problem) == ("fail", "sink_tls"), finding
    assert "ca_file" in finding.fix


def test_syslog_udp_says_what_it_cannot_verify(rsyslog) -> None:
    finding = probe(syslog(rsyslog, "udp"))
    assert finding.status == "pass", finding
    assert "UDP socket" in finding.detail and "not verified" in finding.detail


def test_syslog_udp_unresolvable_host_fails() -> None:
    settings = {"type": "syslog", "host": "no-such-host.invalid", "port": 514, "transport": "udp"}
    finding = probe(settings)
    assert (finding.status, finding.problem) == ("fail", "sink_unreachable"), finding


def test_syslog_tcp_nobody_listening_fails() -> None:
    settings = {"type": "syslog", "host": "127.0.0.1", "port": free_port(), "transport": "tcp"}
    finding = probe(settings)
    assert (finding.status, finding.problem) == ("fail", "sink_unreachable"), finding
    assert "listens" in finding.fix


# --------------------------------------------------------------------------- jsonl, stdout


def jsonl(path: Path) -> Any:
    return {"type": "jsonl", "name": "file", "path": str(path)}


def test_jsonl_writable_folder_passes_and_leaves_nothing(tmp_path) -> None:
    folder = tmp_path / "out"
    folder.mkdir()
    finding = probe(jsonl(folder / "e.jsonl"))
    assert finding.status == "pass", finding
    assert "temporary file was created and removed" in finding.detail
    assert list(folder.iterdir()) == []


def test_jsonl_existing_file_is_appendable_and_unchanged(tmp_path) -> None:
    path = tmp_path / "e.jsonl"
    path.write_bytes(b'{"a":1}\n{"partial"')
    finding = probe(jsonl(path))
    assert finding.status == "pass", finding
    assert "opens for appending" in finding.detail
    assert path.read_bytes() == b'{"a":1}\n{"partial"'
    assert sorted(p.name for p in tmp_path.iterdir()) == ["e.jsonl"]


def test_jsonl_missing_folder_is_creatable_but_not_created(tmp_path) -> None:
    finding = probe(jsonl(tmp_path / "a" / "b" / "e.jsonl"))
    assert finding.status == "pass", finding
    assert "does not exist yet" in finding.detail
    assert list(tmp_path.iterdir()) == []


def test_jsonl_folder_that_is_a_file_fails(tmp_path) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("x")
    finding = probe(jsonl(blocker / "e.jsonl"))
    assert (finding.status, finding.problem) == ("fail", "sink_unwritable"), finding


def test_jsonl_path_that_is_a_folder_fails(tmp_path) -> None:
    (tmp_path / "e.jsonl").mkdir()
    finding = probe(jsonl(tmp_path / "e.jsonl"))
    assert (finding.status, finding.problem) == ("fail", "sink_unwritable"), finding
    assert "not a file" in finding.detail


def test_jsonl_unwritable_folder_fails_even_for_root() -> None:
    """/proc takes no new files, whoever asks (os.access would say yes to root)."""
    finding = probe(jsonl(Path("/proc/o365collector-check/e.jsonl")))
    assert (finding.status, finding.problem) == ("fail", "sink_unwritable"), finding
    assert "/proc" in finding.detail and "collector's user" in finding.fix


def test_stdout_always_passes() -> None:
    assert probe({"type": "stdout"}).status == "pass"


# ------------------------------------------------------------------------------ HTTP sinks


def auth_handler(expected: str, good: Response, bad: Response) -> Any:
    def handle(request: Request) -> Response:
        return good if request.headers.get("Authorization") == expected else bad

    return handle


def hec_answer(status: int, text: str, code: int) -> Response:
    body = orjson.dumps({"text": text, "code": code})
    return Response(body, status=status, content_type="application/json")


def splunk(httpserver: HTTPServer, token: str, **extra: Any) -> Any:
    return {"type": "splunk_hec", "name": "hec", "url": httpserver.url_for("/"), "token": token}


@pytest.fixture
def hec(httpserver: HTTPServer) -> HTTPServer:
    httpserver.expect_request("/services/collector/health", method="GET").respond_with_json(
        {"text": "HEC is healthy", "code": 17}
    )
    httpserver.expect_request("/services/collector/event", method="POST").respond_with_handler(
        auth_handler(
            f"Splunk {TOKEN}",
            hec_answer(400, "No data", 5),
            hec_answer(403, "Invalid token", 4),
        )
    )
    return httpserver


def test_splunk_valid_token(hec) -> None:
    finding = probe(splunk(hec, TOKEN))
    assert finding.status == "pass", finding
    assert "HEC is healthy" in finding.detail and "token was accepted" in finding.detail
    posted = [r for r, _ in hec.log if r.method == "POST"]
    assert len(posted) == 1 and posted[0].get_data() == b""  # nothing to index


def test_splunk_invalid_token_fails_naming_the_token(hec) -> None:
    finding = probe(splunk(hec, BAD_TOKEN))
    assert (finding.status, finding.problem) == ("fail", "sink_credentials"), finding
    assert "Invalid token" in finding.detail and "token" in finding.fix


def test_splunk_disabled_token(httpserver) -> None:
    httpserver.expect_request("/services/collector/health").respond_with_json({"code": 17})
    httpserver.expect_request("/services/collector/event").respond_with_response(
        hec_answer(403, "Token disabled", 1)
    )
    finding = probe(splunk(httpserver, TOKEN))
    assert (finding.status, finding.problem) == ("fail", "sink_credentials"), finding
    assert "enable the token" in finding.fix


def test_splunk_token_needing_ack(httpserver) -> None:
    httpserver.expect_request("/services/collector/health").respond_with_json({"code": 17})
    httpserver.expect_request("/services/collector/event").respond_with_response(
        hec_answer(400, "Data channel is missing", 10)
    )
    finding = probe(splunk(httpserver, TOKEN))
    assert (finding.status, finding.problem) == ("fail", "sink_config"), finding
    assert "ack: true" in finding.fix


def test_splunk_busy(httpserver) -> None:
    httpserver.expect_request("/services/collector/health").respond_with_response(
        hec_answer(503, "Server is busy", 9)
    )
    finding = probe(splunk(httpserver, TOKEN))
    assert (finding.status, finding.problem) == ("fail", "sink_unavailable"), finding


def test_splunk_receiver_error(httpserver) -> None:
    finding = probe(splunk(httpserver, TOKEN))  # nothing registered: 500 for every path
    assert (finding.status, finding.problem) == ("fail", "sink_unavailable"), finding


def test_splunk_wrong_url(httpserver) -> None:
    httpserver.expect_request("/services/collector/health").respond_with_data("", status=404)
    httpserver.expect_request("/services/collector/event").respond_with_data("", status=404)
    finding = probe(splunk(httpserver, TOKEN))
    assert (finding.status, finding.problem) == ("fail", "sink_url"), finding
    assert "without /services/collector" in finding.fix


@pytest.fixture
def tls_server(certs: Certs) -> Iterator[HTTPServer]:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(str(certs.server_cert), str(certs.server_key))
    server = HTTPServer(host="127.0.0.1", port=0, ssl_context=context)
    server.start()
    yield server
    server.clear()
    server.stop()


def test_https_untrusted_receiver_fails_naming_ca_file(tls_server, stranger) -> None:
    settings = {**splunk(tls_server, TOKEN), "ca_file": str(stranger.ca_file)}
    finding = probe(settings)
    assert (finding.status, finding.problem) == ("fail", "sink_tls"), finding
    assert "ca_file" in finding.fix


def test_https_trusted_receiver_passes_over_verified_tls(tls_server, certs) -> None:
    tls_server.expect_request("/services/collector/health").respond_with_json({"code": 17})
    tls_server.expect_request("/services/collector/event").respond_with_response(
        hec_answer(400, "No data", 5)
    )
    finding = probe({**splunk(tls_server, TOKEN), "ca_file": str(certs.ca_file)})
    assert finding.status == "pass", finding
    assert "certificate was verified" in finding.detail


def test_http_nobody_listening() -> None:
    finding = probe({"type": "http", "url": f"http://127.0.0.1:{free_port()}/in"})
    assert (finding.status, finding.problem) == ("fail", "sink_unreachable"), finding


def elastic(httpserver: HTTPServer, **extra: Any) -> Any:
    return {"type": "elasticsearch", "name": "es", "url": httpserver.url_for("/"), **extra}


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def test_elasticsearch_good_credentials(httpserver) -> None:
    httpserver.expect_request("/_security/_authenticate").respond_with_handler(
        auth_handler(
            basic("writer", PASSWORD),
            Response(orjson.dumps({"username": "writer"}), content_type="application/json"),
            Response(b'{"error":"unable to authenticate user"}', status=401),
        )
    )
    finding = probe(elastic(httpserver, username="writer", password=PASSWORD))
    assert finding.status == "pass", finding
    assert "as writer" in finding.detail
    assert all(r.method == "GET" for r, _ in httpserver.log)


def test_elasticsearch_bad_credentials(httpserver) -> None:
    httpserver.expect_request("/_security/_authenticate").respond_with_handler(
        auth_handler(
            basic("writer", PASSWORD),
            Response(orjson.dumps({"username": "writer"}), content_type="application/json"),
            Response(b'{"error":"unable to authenticate user"}', status=401),
        )
    )
    finding = probe(elastic(httpserver, username="writer", password=BAD_PASSWORD))
    assert (finding.status, finding.problem) == ("fail", "sink_credentials"), finding
    assert "password" in finding.fix and "api_key" in finding.fix


def test_elasticsearch_api_key_refused(httpserver) -> None:
    httpserver.expect_request("/_security/_authenticate").respond_with_data("no", status=401)
    finding = probe(elastic(httpserver, api_key=BEARER))
    assert (finding.status, finding.problem) == ("fail", "sink_credentials"), finding
    assert httpserver.log[0][0].headers["Authorization"] == f"ApiKey {BEARER}"


def test_elasticsearch_without_security_api_falls_back_to_root(httpserver) -> None:
    httpserver.expect_request("/_security/_authenticate").respond_with_data("x", status=404)
    httpserver.expect_request("/").respond_with_json(
        {"cluster_name": "osmem", "version": {"number": "2.19.0"}}
    )
    finding = probe(elastic(httpserver))
    assert finding.status == "pass", finding
    assert "cluster osmem" in finding.detail and "2.19.0" in finding.detail


def test_elasticsearch_not_a_cluster(httpserver) -> None:
    httpserver.expect_request("/_security/_authenticate").respond_with_data("x", status=404)
    httpserver.expect_request("/").respond_with_data("x", status=404)
    finding = probe(elastic(httpserver))
    assert (finding.status, finding.problem) == ("fail", "sink_url"), finding


def http_sink(httpserver: HTTPServer, **extra: Any) -> Any:
    return {"type": "http", "name": "web", "url": httpserver.url_for("/in"), **extra}


def test_http_head_with_good_token_passes(httpserver) -> None:
    httpserver.expect_request("/in", method="HEAD").respond_with_handler(
        auth_handler(f"Bearer {BEARER}", Response(status=405), Response(status=401))
    )
    finding = probe(http_sink(httpserver, token=BEARER))
    assert finding.status == "pass", finding
    assert "HEAD" in finding.detail and "405" in finding.detail
    assert [r.method for r, _ in httpserver.log] == ["HEAD"]


def test_http_head_with_bad_token_fails(httpserver) -> None:
    httpserver.expect_request("/in", method="HEAD").respond_with_handler(
        auth_handler(f"Bearer {BEARER}", Response(status=405), Response(status=401))
    )
    finding = probe(http_sink(httpserver, token=BAD_TOKEN))
    assert (finding.status, finding.problem) == ("fail", "sink_credentials"), finding
    assert "token" in finding.fix


def test_http_redirect_fails(httpserver) -> None:
    httpserver.expect_request("/in").respond_with_response(
        Response(status=301, headers={"Location": "https://elsewhere.example/in"})
    )
    finding = probe(http_sink(httpserver))
    assert (finding.status, finding.problem) == ("fail", "sink_url"), finding


def test_sekoia_reaches_the_intake_without_sending_the_key(httpserver) -> None:
    httpserver.expect_request("/batch", method="HEAD").respond_with_response(Response(status=405))
    settings = {"type": "sekoia", "intake_key": INTAKE_KEY, "base_url": httpserver.url_for("/")}
    finding = probe(settings)
    assert finding.status == "pass", finding
    assert "intake key was NOT verified" in finding.detail
    request = httpserver.log[0][0]
    assert request.method == "HEAD" and request.get_data() == b""
    assert INTAKE_KEY not in str(request.headers) and INTAKE_KEY not in request.url


def test_sekoia_unavailable(httpserver) -> None:
    httpserver.expect_request("/batch").respond_with_data("down", status=503)
    settings = {"type": "sekoia", "intake_key": INTAKE_KEY, "base_url": httpserver.url_for("/")}
    finding = probe(settings)
    assert (finding.status, finding.problem) == ("fail", "sink_unavailable"), finding


# ------------------------------------------------------------------------- the whole check


def test_a_sink_without_a_probe_fails_instead_of_being_skipped(monkeypatch) -> None:
    class Opaque:
        name = "opaque"

    monkeypatch.setattr(check_sinks, "build_sink", lambda settings: Opaque())
    finding = probe({"type": "stdout"})
    assert (finding.status, finding.problem) == ("fail", "sink_not_checked"), finding


def test_check_does_not_pass_when_one_sink_fails(emulator, tmp_path, httpserver) -> None:
    httpserver.expect_request("/in").respond_with_data("", status=401)
    sinks = [
        {"type": "jsonl", "name": "file", "path": str(tmp_path / "out" / "e.jsonl")},
        {"type": "stdout"},
        {"type": "http", "name": "web", "url": httpserver.url_for("/in"), "token": BEARER},
    ]
    report = check(config(tmp_path, tenant_config(emulator().base_url), sinks=sinks))
    statuses = {f.target: f.status for f in report.findings if f.probe == "sink"}
    assert statuses == {"sink file": "pass", "sink stdout": "pass", "sink web": "fail"}
    assert not report.ok and report.exit_code == 1
    out = io.StringIO()
    render(report, as_json=False, stream=out)
    assert "all checks passed" not in out.getvalue()
    assert "some checks failed" in out.getvalue()
    assert BEARER not in out.getvalue()
    as_json = io.StringIO()
    render(report, as_json=True, stream=as_json)
    assert orjson.loads(as_json.getvalue())["ok"] is False
    assert BEARER not in as_json.getvalue()


def test_check_with_every_sink_reachable_passes_without_skips(
    emulator, tmp_path, devo_server, certs, hec
) -> None:
    sinks = [
        {"type": "jsonl", "name": "file", "path": str(tmp_path / "out" / "e.jsonl")},
        {"type": "stdout"},
        devo(devo_server, certs),
        splunk(hec, TOKEN),
    ]
    report = check(config(tmp_path, tenant_config(emulator().base_url), sinks=sinks))
    sink_findings = [f for f in report.findings if f.probe == "sink"]
    assert [f.status for f in sink_findings] == ["pass"] * 4, sink_findings
    assert report.ok and all(f.status != "skip" for f in report.findings)
    assert TOKEN not in str(report.as_dict())
