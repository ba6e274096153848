"""The receiving ends of the kill-anywhere benchmark: real servers in the bench process.

- :class:`HttpIntake`: one threaded HTTP server on loopback. ``/batch`` is a Sekoia-style
  intake (``{"intake_key", "jsons": [...]}``) that keeps every event it is sent and can
  *stall* one request (hold it open, unanswered, until the harness has killed the
  collector). ``/es/…`` forwards verbatim to an Elasticsearch-compatible server
  (osmem-server) and notes, per ``_bulk`` ``create``, whether it was stored (201) or
  refused as already there (409).
- :class:`DevoTls`: a mutual-TLS server (client certificate required) reading Devo lines
  (``<14>… HOST TABLE: {json}\\n``); a line cut by a kill is not counted.

Every arrival is kept as ``(wall time, envelope)``: the envelope payload carries the event
id and the record, so facts can be compared with the emulator's ground truth.
"""

from __future__ import annotations

import contextlib
import gzip
import socket
import ssl
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import orjson
import trustme

Arrival = tuple[float, dict[str, Any]]  # (time.time() when received, envelope)


@dataclass
class Stall:
    """One armed stall: the next ``/batch`` request is held until :meth:`release`."""

    arrived: threading.Event = field(default_factory=threading.Event)
    released: threading.Event = field(default_factory=threading.Event)
    events: int = 0

    def release(self) -> None:
        """Let the held request end (its connection is closed without an answer)."""
        self.released.set()


class HttpIntake:
    """Sekoia-style ``/batch`` and a counting ``/es`` forwarder, on one loopback port."""

    def __init__(self, es_url: str | None = None) -> None:
        """Start serving on a free port; ``es_url`` is where ``/es/…`` is forwarded."""
        self.es_url = es_url.rstrip("/") if es_url else None
        self.lock = threading.Lock()
        self.sekoia: list[Arrival] = []
        self.es_stored: list[Arrival] = []  # created (201)
        self.es_conflicts: list[Arrival] = []  # refused as already stored (409)
        self.es_other: list[tuple[float, int]] = []  # any other item status
        self.cut_requests = 0  # requests whose body a kill cut short (never counted)
        self._stall: Stall | None = None
        self._client = httpx.Client(timeout=60)
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *_args: Any) -> None:
                return

            def _body(self) -> bytes:
                return self.rfile.read(int(self.headers.get("Content-Length") or 0))

            def do_HEAD(self) -> None:
                owner.route(self, b"")

            def do_GET(self) -> None:
                owner.route(self, self._body())

            def do_PUT(self) -> None:
                owner.route(self, self._body())

            def do_POST(self) -> None:
                owner.route(self, self._body())

        self.server = _Server(("127.0.0.1", 0), Handler)
        self.port = int(self.server.server_address[1])
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        """Base URL of the server."""
        return f"http://127.0.0.1:{self.port}"

    def stall_next(self) -> Stall:
        """Arm a stall: the next ``/batch`` request is kept and held unanswered."""
        stall = Stall()
        with self.lock:
            self._stall = stall
        return stall

    def disarm(self) -> None:
        """Forget an armed stall that no request took."""
        with self.lock:
            self._stall = None

    def route(self, handler: BaseHTTPRequestHandler, body: bytes) -> None:
        """Answer one request."""
        if handler.headers.get("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
        if handler.path.startswith("/batch"):
            self._sekoia(handler, body)
        elif handler.path.startswith("/es") and self.es_url is not None:
            self._forward(handler, body)
        else:
            _answer(handler, 404, b"{}")

    def _sekoia(self, handler: BaseHTTPRequestHandler, body: bytes) -> None:
        if handler.command == "HEAD":
            _answer(handler, 200, b"")
            return
        now = time.time()
        try:
            envelopes = [orjson.loads(text) for text in orjson.loads(body)["jsons"]]
        except orjson.JSONDecodeError:  # the sender was killed before its body was complete
            with self.lock:
                self.cut_requests += 1
            handler.close_connection = True
            return
        with self.lock:
            self.sekoia += [(now, e) for e in envelopes]
            stall, self._stall = self._stall, None
        if stall is not None:  # received (it may have been ingested), never answered
            stall.events = len(envelopes)
            stall.arrived.set()
            stall.released.wait(120)
            handler.close_connection = True
            return
        _answer(handler, 200, b'{"event_ids":[]}')

    def _forward(self, handler: BaseHTTPRequestHandler, body: bytes) -> None:
        assert self.es_url is not None
        path = handler.path[len("/es") :] or "/"
        headers = {"Content-Type": handler.headers.get("Content-Type", "application/json")}
        answer = self._client.request(
            handler.command, self.es_url + path, content=body or None, headers=headers
        )
        if handler.command == "POST" and path.split("?", 1)[0].endswith("/_bulk"):
            self._note_bulk(body, answer)
        _answer(handler, answer.status_code, answer.content, answer.headers.get("content-type"))

    def _note_bulk(self, body: bytes, answer: httpx.Response) -> None:
        if answer.status_code != 200:  # e.g. a body cut by a kill: nothing was stored
            return
        now = time.time()
        lines = [line for line in body.splitlines() if line.strip()]
        sources = [orjson.loads(line) for line in lines[1::2]]
        items = answer.json().get("items", [])
        with self.lock:
            for source, item in zip(sources, items, strict=False):
                status = int(next(iter(item.values()))["status"])
                if status == 201:
                    self.es_stored.append((now, source))
                elif status == 409:
                    self.es_conflicts.append((now, source))
                else:
                    self.es_other.append((now, status))

    def close(self) -> None:
        """Stop serving."""
        self.server.shutdown()
        self.server.server_close()
        self._client.close()


class _Server(ThreadingHTTPServer):
    """Threaded; a client killed mid-request is expected here, not an error to print."""

    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Ignore a connection the (killed) collector dropped; report anything else."""
        error = sys.exc_info()[1]
        if not isinstance(error, ConnectionError):
            super().handle_error(request, client_address)


def _answer(
    handler: BaseHTTPRequestHandler, status: int, body: bytes, kind: str | None = None
) -> None:
    handler.send_response(status)
    handler.send_header("Content-Type", kind or "application/json")
    handler.send_header("Content-Length", str(len(body)))
    handler.end_headers()
    if handler.command != "HEAD":
        handler.wfile.write(body)


@dataclass
class TlsFiles:
    """A CA, the server's certificate and the collector's client certificate, on disk."""

    ca_file: Path
    cert_file: Path
    key_file: Path
    server_context: ssl.SSLContext


def tls_files(folder: Path) -> TlsFiles:
    """Issue the certificates with trustme: server for 127.0.0.1, a client for the collector."""
    folder.mkdir(parents=True, exist_ok=True)
    ca = trustme.CA()
    server = ca.issue_cert("127.0.0.1", "localhost")
    client = ca.issue_cert("o365collector-bench")
    ca.cert_pem.write_to_path(str(folder / "ca.pem"))
    client.cert_chain_pems[0].write_to_path(str(folder / "client.pem"))
    client.private_key_pem.write_to_path(str(folder / "client.key"))
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.configure_cert(ctx)
    ca.configure_trust(ctx)
    ctx.verify_mode = ssl.CERT_REQUIRED
    return TlsFiles(folder / "ca.pem", folder / "client.pem", folder / "client.key", ctx)


class DevoTls:
    """A Devo-style mutual-TLS collector on loopback: every complete line, with its time."""

    def __init__(self, context: ssl.SSLContext) -> None:
        """Start accepting on a free port."""
        self.context = context
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self.listener.getsockname()[1])
        self.lock = threading.Lock()
        self.lines: list[Arrival] = []
        self.partial_lines = 0  # lines cut by a kill (never counted as received)
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self) -> None:
        while True:
            try:
                raw, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(raw,), daemon=True).start()

    def _serve(self, raw: socket.socket) -> None:
        try:
            sock = self.context.wrap_socket(raw, server_side=True)
        except (ssl.SSLError, OSError):
            raw.close()
            return
        pending = b""
        with contextlib.suppress(OSError, ssl.SSLError), sock:
            while chunk := sock.recv(65536):
                now = time.time()
                *complete, pending = (pending + chunk).split(b"\n")
                parsed = [(now, orjson.loads(line.partition(b": ")[2])) for line in complete]
                with self.lock:
                    self.lines += parsed
        if pending:
            with self.lock:
                self.partial_lines += 1

    def close(self) -> None:
        """Stop accepting."""
        self.listener.close()


def wait_for(condition: Callable[[], bool], seconds: float, what: str) -> None:
    """Poll ``condition`` every 20 ms; RuntimeError naming ``what`` after ``seconds``."""
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {what}")
        time.sleep(0.02)
