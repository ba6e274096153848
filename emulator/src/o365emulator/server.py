"""The Emulator: request routing, ground truth and stats, and the threaded loopback HTTP server."""

from __future__ import annotations

import contextlib
import logging
import signal
import socket
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import FrameType
from typing import Any, cast
from urllib.parse import parse_qsl, unquote, urlsplit

import orjson

from .dataset import TenantData
from .faults import DROP, FaultPlan, FaultRule
from .generate import generate_tenant
from .graph import GraphApi, not_found
from .quota import TenantQuota
from .reporting import ReportingApi
from .reporting_registry import RowSource
from .responses import Response, json_response
from .settings import EmulatorSettings
from .ticks import parse_odata_datetime, to_ticks
from .tokens import TokenService

_NDJSON_BATCH = 2000
_log = logging.getLogger(__name__)


def _utc_now() -> datetime:
    return datetime.now(UTC)


class Emulator:
    """A fake of Entra ID's token endpoint and the Graph message trace API.

    The dataset is generated at construction (deterministic from the settings' seed and
    anchor). All "now" decisions - token expiry, row visibility, status changes, range
    checks, quota - use ``clock``, so tests can freeze or advance time.
    """

    def __init__(
        self, settings: EmulatorSettings, clock: Callable[[], datetime] | None = None
    ) -> None:
        """Generate every tenant's rows.

        Args:
            settings: Dataset and API settings; needs at least one tenant.
            clock: Returns the current aware UTC datetime; defaults to the wall clock.

        Raises:
            ValueError: If no tenant is configured.
        """
        if not settings.tenants:
            raise ValueError("tenants: at least one tenant is required")
        self.settings = settings
        self._clock = clock or _utc_now
        self.anchor = (settings.anchor or self._clock()).astimezone(UTC)
        anchor = to_ticks(self.anchor)
        self._data = {
            t.tenant_id.lower(): generate_tenant(t, settings, anchor) for t in settings.tenants
        }
        self._quotas = {
            t.tenant_id.lower(): TenantQuota(t.quota_requests, t.quota_window_secs)
            for t in settings.tenants
        }
        self._tokens = TokenService(settings.tenants, settings.token_lifetime_secs, self._clock)
        self.faults = FaultPlan()
        self._graph = GraphApi(settings, self._data, self._quotas, self._tokens, self._clock)
        self._reporting = ReportingApi(
            settings, self._data, self._quotas, self._tokens, self._clock
        )
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()

    # ----------------------------------------------------------------- in-process views
    def _tenant(self, tenant_id: str) -> TenantData:
        data = self._data.get(tenant_id.lower())
        if data is None:
            raise KeyError(f"unknown tenant {tenant_id!r}")
        return data

    def iter_ground_truth(
        self, tenant_id: str, visible_by: datetime | None = None
    ) -> Iterator[dict[str, Any]]:
        """Yield ground-truth rows of a tenant in ascending (receivedDateTime, id, recipient).

        With ``visible_by`` only rows first visible by then, with history cut there.
        """
        data = self._tenant(tenant_id)
        limit = None if visible_by is None else to_ticks(visible_by)
        for row in range(len(data)):
            record = data.ground_truth_row(row, limit)
            if record is not None:
                yield record

    def ground_truth(
        self, tenant_id: str, visible_by: datetime | None = None
    ) -> list[dict[str, Any]]:
        """Every row of a tenant with its full status history (see ``iter_ground_truth``).

        Rows not yet visible (late or live rows) are included; their history says when
        they become visible. Pass ``visible_by`` to see only what a reader could have seen.

        Returns:
            Dicts ``{"id", "recipientAddress", "receivedDateTime", "history": [{"status",
            "visible_at"}, ...]}``; ``history[0]`` is the first visibility.

        Raises:
            KeyError: Unknown tenant.
        """
        return list(self.iter_ground_truth(tenant_id, visible_by))

    def stats(self, tenant_id: str) -> dict[str, Any]:
        """Request counters of a tenant (see ``TenantQuota.snapshot``); KeyError if unknown."""
        quota = self._quotas.get(tenant_id.lower())
        if quota is None:
            raise KeyError(f"unknown tenant {tenant_id!r}")
        return quota.snapshot()

    def dataset(self, tenant_id: str) -> TenantData:
        """The tenant's generated rows (read-only; for tests and benchmarks)."""
        return self._tenant(tenant_id)

    def serve_report_rows(self, tenant_id: str, report: str, source: RowSource) -> None:
        """Serve ``report`` of a tenant from ``source`` instead of the generated dataset.

        For tests and benchmarks that need a report larger than a dataset gives (a 20k-row
        aggregate window, say): paging, filters, formats and faults work as for any report.

        Raises:
            KeyError: unknown tenant or report.
        """
        self._reporting.serve_rows(self._tenant(tenant_id), report, source)

    # ----------------------------------------------------------------------- routing
    def dispatch(self, method: str, target: str, headers: dict[str, str], body: bytes) -> Response:
        """Answer one request (``headers`` with lower-case names); never raises."""
        split = urlsplit(target)
        path = unquote(split.path)
        if path.startswith("/_emulator/"):
            return self._control(path, split.query, method, body)
        parts = path.strip("/").split("/")
        is_token = len(parts) in (3, 4) and parts[1].lower() == "oauth2"
        fault = self.faults.take("token" if is_token else "graph")
        if fault is not None:
            return fault
        if is_token and parts[-1].lower() == "token":
            v1 = len(parts) == 3
            if v1 or parts[2].lower() == "v2.0":
                form = dict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
                spec = self._tokens.tenant(parts[0])
                if spec is not None:
                    self._quotas[spec.tenant_id.lower()].record_token()
                return self._tokens.token_endpoint(parts[0], v1=v1, method=method, form=form)
        if GraphApi.owns(path):
            return self._graph.handle(method, path, split.query, headers)
        if ReportingApi.owns(path):
            return self._reporting.handle(method, path, split.query, headers)
        return not_found(method, path)

    def _faults_control(self, method: str, body: bytes) -> Response:
        if method == "DELETE":
            self.faults.set([])
        elif method == "POST":
            try:
                data = orjson.loads(body or b"{}")
                rules = [FaultRule.from_mapping(rule) for rule in data.get("rules", [])]
            except (ValueError, TypeError, AttributeError) as exc:
                return json_response(400, {"error": {"code": "BadRequest", "message": str(exc)}})
            self.faults.set(rules)
        return json_response(
            200, {"pending": self.faults.pending(), "injected": self.faults.injected}
        )

    def _control(self, path: str, query: str, method: str, body: bytes) -> Response:  # noqa: PLR0911 - one answer per control route
        params = dict(parse_qsl(query))
        if path == "/_emulator/health":
            return Response(200, b"ok", [("Content-Type", "text/plain; charset=utf-8")])
        if path == "/_emulator/faults":
            return self._faults_control(method, body)
        if path not in ("/_emulator/stats", "/_emulator/ground-truth"):
            return not_found("GET", path)
        tenant = params.get("tenant")
        if tenant is None and len(self._data) == 1:
            tenant = next(iter(self._data))
        if tenant is None or tenant.lower() not in self._data:
            return json_response(
                404, {"error": {"code": "NotFound", "message": f"unknown tenant {tenant!r}"}}
            )
        if path == "/_emulator/stats":
            return json_response(200, self.stats(tenant))
        if "report" in params:  # an RWS report's ground truth
            return self._reporting.ground_truth_response(self._tenant(tenant), params["report"])
        visible_by = None
        if "visible_by" in params:
            try:
                visible_by = datetime.fromtimestamp(
                    parse_odata_datetime(params["visible_by"]) / 10**7, UTC
                )
            except ValueError as exc:
                return json_response(400, {"error": {"code": "BadRequest", "message": str(exc)}})
        return Response(
            200, self._ndjson(tenant, visible_by), [("Content-Type", "application/x-ndjson")]
        )

    def _ndjson(self, tenant: str, visible_by: datetime | None) -> Iterator[bytes]:
        batch: list[bytes] = []
        for record in self.iter_ground_truth(tenant, visible_by):
            batch.append(orjson.dumps(record, option=orjson.OPT_APPEND_NEWLINE))
            if len(batch) >= _NDJSON_BATCH:
                yield b"".join(batch)
                batch = []
        if batch:
            yield b"".join(batch)

    # ------------------------------------------------------------------------ server
    @property
    def base_url(self) -> str:
        """``http://host:port`` of the running server; RuntimeError when not started."""
        if self._server is None:
            raise RuntimeError("the emulator is not running; call start() first")
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Serve on ``host:port`` (0 = any free port) from a daemon thread; return base URL."""
        if self._server is not None:
            raise RuntimeError("the emulator is already running")
        server = _Server((host, port), _Handler)
        server.emulator = self
        self._server = server
        self._stopping.clear()
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.1},
            name="o365-emulator",
            daemon=True,
        )
        self._thread.start()
        return self.base_url

    def stop(self) -> None:
        """Stop serving and close every open connection; safe to call twice, from any thread."""
        self._stopping.set()
        server, thread = self._server, self._thread
        self._server = self._thread = None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        server.close_connections()
        if thread is not None:
            thread.join(timeout=5)

    def serve_forever(
        self, host: str = "127.0.0.1", port: int = 0, on_ready: Callable[[str], None] | None = None
    ) -> None:
        """Serve until KeyboardInterrupt, SIGTERM or ``stop()``, then stop cleanly.

        SIGTERM is handled only when called from the main thread.

        Args:
            host: Interface to bind.
            port: TCP port (0 = any free port).
            on_ready: Called with the base URL once the server accepts connections.
        """
        url = self.start(host, port)
        in_main = threading.current_thread() is threading.main_thread()

        def on_sigterm(_signum: int, _frame: FrameType | None) -> None:
            self._stopping.set()

        previous = signal.signal(signal.SIGTERM, on_sigterm) if in_main else None
        try:
            if on_ready is not None:
                on_ready(url)
            while not self._stopping.wait(0.5):
                pass
        except KeyboardInterrupt:
            pass
        finally:
            self.stop()
            if in_main and previous is not None:
                signal.signal(signal.SIGTERM, previous)

    def __enter__(self) -> Emulator:
        """Start on a free loopback port."""
        if self._server is None:
            self.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        """Stop the server."""
        self.stop()


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    emulator: Emulator

    def __init__(self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler]) -> None:
        super().__init__(address, handler)
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()

    def track(self, conn: socket.socket, *, add: bool) -> None:
        with self._connections_lock:
            if add:
                self._connections.add(conn)
            else:
                self._connections.discard(conn)

    def close_connections(self) -> None:
        with self._connections_lock:
            connections = list(self._connections)
        for conn in connections:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out in separate writes
    server_version = "o365collector-emulator"
    sys_version = ""
    timeout = 120

    def setup(self) -> None:
        super().setup()
        cast(_Server, self.server).track(self.connection, add=True)

    def finish(self) -> None:
        cast(_Server, self.server).track(self.connection, add=False)
        super().finish()

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: never log requests (they may carry secrets in bodies)."""

    def _handle(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length > 0 else b""
        headers = {k.lower(): v for k, v in self.headers.items()}
        if "host" not in headers:  # HTTP/1.0 clients: nextLinks still need an address
            host, port = cast(_Server, self.server).server_address[:2]
            headers["host"] = f"{host!s}:{port}"
        emulator = cast(_Server, self.server).emulator
        try:
            response = emulator.dispatch(self.command, self.path, headers, body)
        except Exception:  # noqa: BLE001 - a fake server must answer, never die
            _log.exception("emulator failed on %s %s", self.command, urlsplit(self.path).path)
            response = json_response(
                500, {"error": {"code": "InternalServerError", "message": "emulator failure"}}
            )
        self._send(response)

    def _send(self, response: Response) -> None:
        if response is DROP:
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)
            return
        self.send_response(response.status)
        for name, value in response.headers:
            self.send_header(name, value)
        if isinstance(response.body, bytes):
            self.send_header("Content-Length", str(len(response.body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(response.body)
            return
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        for chunk in response.body:
            if chunk:
                self.wfile.write(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
        self.wfile.write(b"0\r\n\r\n")

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _handle  # noqa: N815
