"""HTTP plumbing: control endpoints, ground truth over NDJSON, 404/405, lifecycle, quietness."""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
import time
from datetime import timedelta

import httpx
import orjson
import pytest
from emulator_support import ANCHOR, SECRET, TENANT_ID, TRACES, Graph, make_settings

from o365emulator import Emulator
from support import FakeClock


def test_health(graph: Graph) -> None:
    response = graph.client.get("/_emulator/health")
    assert response.status_code == 200
    assert response.text == "ok"


def test_unknown_paths_are_json_404_and_wrong_methods_405(graph: Graph) -> None:
    for path in ("/nope", "/v1.0/users", "/_emulator/nothing"):
        response = graph.client.get(path)
        assert response.status_code == 404, path
        assert response.json()["error"]["code"] == "NotFound"
    response = graph.client.post(TRACES, headers=graph.bearer())
    assert response.status_code == 405


def test_ground_truth_over_http_matches_in_process(graph: Graph, clock: FakeClock) -> None:
    response = graph.client.get("/_emulator/ground-truth", params={"tenant": TENANT_ID})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/x-ndjson")
    lines = [orjson.loads(line) for line in response.content.splitlines()]
    assert lines == graph.emulator.ground_truth(TENANT_ID)
    assert len(lines) == 3000
    assert set(lines[0]) == {"id", "recipientAddress", "receivedDateTime", "history"}
    assert set(lines[0]["history"][0]) == {"status", "visible_at"}
    assert lines[0]["history"][0]["visible_at"].endswith("Z")
    default_tenant = graph.client.get("/_emulator/ground-truth")
    assert default_tenant.content == response.content


def test_ground_truth_visible_by_cuts_rows_and_history(graph: Graph) -> None:
    moment = ANCHOR - timedelta(hours=6)
    text = moment.strftime("%Y-%m-%dT%H:%M:%SZ")
    response = graph.client.get("/_emulator/ground-truth", params={"visible_by": text})
    lines = [orjson.loads(line) for line in response.content.splitlines()]
    assert lines == graph.emulator.ground_truth(TENANT_ID, visible_by=moment)
    assert 0 < len(lines) < 3000
    assert all(
        step["visible_at"] <= text.replace("Z", ".000000Z")
        for row in lines
        for step in row["history"]
    )
    bad = graph.client.get("/_emulator/ground-truth", params={"visible_by": "yesterday"})
    assert bad.status_code == 400


def test_ground_truth_of_unknown_tenant(graph: Graph) -> None:
    assert graph.client.get("/_emulator/ground-truth", params={"tenant": "x"}).status_code == 404
    with pytest.raises(KeyError):
        graph.emulator.ground_truth("x")


def test_requests_are_not_logged(graph: Graph, capfd: pytest.CaptureFixture[str]) -> None:
    graph.list()
    graph.token(client_secret="wrong")
    out, err = capfd.readouterr()
    assert out == "" and err == ""
    assert SECRET not in out + err


def test_stop_closes_keep_alive_connections_and_start_again(clock: FakeClock) -> None:
    emulator = Emulator(make_settings(100), clock=clock.now)
    with pytest.raises(RuntimeError):
        _ = emulator.base_url
    url = emulator.start()
    assert url == emulator.base_url and url.startswith("http://127.0.0.1:")
    with pytest.raises(RuntimeError):
        emulator.start()
    client = httpx.Client(base_url=url)
    assert client.get("/_emulator/health").status_code == 200
    emulator.stop()
    emulator.stop()
    with pytest.raises(httpx.TransportError):
        client.get("/_emulator/health")
    client.close()
    with emulator as running:
        assert httpx.get(f"{running.base_url}/_emulator/health").status_code == 200


def test_serve_forever_returns_after_stop(clock: FakeClock) -> None:
    emulator = Emulator(make_settings(100), clock=clock.now)
    ready: list[str] = []
    thread = threading.Thread(
        target=emulator.serve_forever, kwargs={"on_ready": ready.append}, daemon=True
    )
    thread.start()
    deadline = time.monotonic() + 10
    while not ready and time.monotonic() < deadline:
        time.sleep(0.01)
    assert httpx.get(f"{ready[0]}/_emulator/health").status_code == 200
    emulator.stop()
    thread.join(5)
    assert not thread.is_alive()


SERVE_SCRIPT = """
import sys
from o365emulator import Emulator, EmulatorSettings, TenantSpec
settings = EmulatorSettings(tenants=[TenantSpec(tenant_id="t", client_id="c",
                                                client_secret="s", rows=10)])
Emulator(settings).serve_forever(on_ready=lambda url: print(url, flush=True))
print("stopped", flush=True)
"""


def test_serve_forever_stops_cleanly_on_sigterm() -> None:
    proc = subprocess.Popen([sys.executable, "-c", SERVE_SCRIPT], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().strip()
        assert httpx.get(f"{url}/_emulator/health").status_code == 200
        proc.terminate()
        assert proc.wait(10) == 0
        assert proc.stdout.read().strip() == "stopped"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_http10_request_without_host_still_gets_an_absolute_next_link(graph: Graph) -> None:
    host, port = graph.emulator.base_url.removeprefix("http://").split(":")
    token = graph.bearer()["Authorization"]
    request = f"GET {TRACES}?$top=1 HTTP/1.0\r\nAuthorization: {token}\r\n\r\n".encode()
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(request)
        raw = b""
        while chunk := sock.recv(65536):
            raw += chunk
    head, _, body = raw.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200")
    link = orjson.loads(body)["@odata.nextLink"]
    assert link.startswith(f"{graph.emulator.base_url}{TRACES}?")
